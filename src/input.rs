//! `-i/--input`: a list of URLs, one per line, read lazily, each saved under a name derived from
//! its URL.
//!
//! Names come from the engine's [`file_for_url`]: `{host}[_{port}]/{path segments}` under DEST,
//! each segment made safe, with a stable tag where the URL had to be changed. (Two jobs of one run
//! that still end at the same name, such as a URL listed twice, are refused by the engine with an
//! error, never silently overwritten.)

use std::io::BufRead;
use std::path::PathBuf;

use flags_actors::{file_for_url, url_tag, Job};

/// The jobs of a URL list: blank lines and `#` comments skipped, one job per other line.
pub struct UrlLines<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> UrlLines<R> {
    /// Reads from `reader`, one line at a time as jobs are needed.
    pub fn new(reader: R) -> Self {
        UrlLines {
            reader,
            line: 0,
            buf: Vec::new(),
        }
    }
}

impl<R: BufRead> Iterator for UrlLines<R> {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {
                    self.line += 1;
                    let text = String::from_utf8_lossy(&self.buf);
                    let url = text.trim();
                    if url.is_empty() || url.starts_with('#') {
                        continue;
                    }
                    return Some(job_for(url));
                }
                Err(e) => {
                    eprintln!(
                        "flags: stopped reading the URL list after line {}: {e}",
                        self.line
                    );
                    return None;
                }
            }
        }
    }
}

/// The job for one URL line. A line that is not an http(s) URL still becomes a job: the fetcher
/// refuses it, so it is counted as an error with a message rather than lost.
pub fn job_for(url: &str) -> Job {
    let file =
        file_for_url(url).unwrap_or_else(|| PathBuf::from(format!("invalid-{}", url_tag(url))));
    Job::new(url, url, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_blanks_and_comments_and_keep_bad_lines_as_jobs() {
        let text = "# list\n\nhttp://h/a\n  http://h/b  \nnot a url\n#http://h/c\n";
        let jobs: Vec<Job> = UrlLines::new(text.as_bytes()).collect();
        let keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys, ["http://h/a", "http://h/b", "not a url"]);
        assert!(jobs[2].file.to_string_lossy().starts_with("invalid-"));
    }
}
