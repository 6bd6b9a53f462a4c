//! `-i/--input`: a list of URLs, one per line, read lazily, each saved under a name derived from
//! its URL.
//!
//! Names are a pure function of the URL, so they are deterministic whatever the order in which
//! downloads finish: `{host}[_{port}]/{path segments}` under DEST, each segment made safe. A URL
//! with a query, an empty last segment, or a segment that had to be changed to be safe gets a tag
//! in its last segment: 128 bits of the SHA-256 of the whole URL, in hex. That hash is the same on
//! every machine and every Rust release (so `--skip-existing` keeps working after an upgrade), and
//! two URLs of a list would share a tag with odds of about n² / 2^129: out of reach. (Two jobs of
//! one run that still end at the same name, such as a URL listed twice, are refused by the engine
//! with an error, never silently overwritten.)

use std::io::BufRead;
use std::path::PathBuf;

use flags_actors::Job;

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
    let file = file_for(url).unwrap_or_else(|| PathBuf::from(format!("invalid-{}", tag(url))));
    Job::new(url, url, file)
}

/// The first 128 bits of the URL's SHA-256, as 32 hex digits: stable everywhere, forever.
fn tag(url: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file name segment that cannot escape or hide: control characters and separators dropped,
/// leading dots removed, at most 100 bytes. `None` when nothing is left.
pub fn safe_segment(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
            continue;
        }
        if out.len() + c.len_utf8() > 100 {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches('.');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The relative path a URL is saved under, or `None` for something that is not an http(s) URL.
pub fn file_for(raw: &str) -> Option<PathBuf> {
    let url = url::Url::parse(raw).ok()?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return None;
    }
    let host = safe_segment(&url.host_str()?.replace(':', "_"))?;
    let mut path = PathBuf::from(match url.port() {
        Some(port) => format!("{host}_{port}"),
        None => host,
    });
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let mut changed = url.query().is_some();
    let (last, dirs) = segments.split_last().unwrap_or((&"", &[]));
    for dir in dirs {
        let decoded = percent_decode(dir);
        match safe_segment(&decoded) {
            Some(s) => {
                changed |= s != decoded;
                path.push(s);
            }
            None => changed |= !dir.is_empty(),
        }
    }
    let decoded = percent_decode(last);
    let mut name = match safe_segment(&decoded) {
        Some(s) => {
            changed |= s != decoded;
            s
        }
        None => {
            changed = true;
            "index".to_string()
        }
    };
    if changed {
        let tag = format!("-{}", tag(raw));
        match name.rfind('.') {
            Some(dot) if dot > 0 => name.insert_str(dot, &tag),
            _ => name.push_str(&tag),
        }
    }
    path.push(name);
    Some(path)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flags_actors::is_safe_relative;

    #[test]
    fn names_follow_the_url() {
        assert_eq!(
            file_for("http://127.0.0.1:8080/flags/br/br.gif").unwrap(),
            PathBuf::from("127.0.0.1_8080/flags/br/br.gif")
        );
        assert_eq!(
            file_for("https://example.com/a%20b.txt").unwrap(),
            PathBuf::from("example.com/a b.txt")
        );
        assert!(file_for("ftp://example.com/x").is_none());
        assert!(file_for("not a url").is_none());
    }

    #[test]
    fn distinct_urls_get_distinct_safe_names() {
        let urls = [
            "http://h/get?id=1",
            "http://h/get?id=2",
            "http://h/get",
            "http://h/",
            "http://h",
            "http://h/dir/",
            "http://h/%2e%2e/%2e%2e/etc/passwd",
            "http://h/..%2f..%2fetc",
            "http://h/a%2Fb",
            "http://h/a/b",
            "http://h/.hidden",
            "http://h/hidden",
            "http://[::1]:81/x",
        ];
        let names: Vec<PathBuf> = urls.iter().map(|u| file_for(u).unwrap()).collect();
        for (u, n) in urls.iter().zip(&names) {
            assert!(is_safe_relative(n), "{u} -> {n:?}");
        }
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(
            names,
            urls.iter()
                .map(|u| file_for(u).unwrap())
                .collect::<Vec<_>>(),
            "deterministic"
        );
    }

    #[test]
    fn tags_are_stable_across_machines_and_releases() {
        // Pinned (it is `sha256sum` of the URL, cut to 32 digits): a changed tag would make
        // --skip-existing fetch everything again.
        assert_eq!(
            file_for("http://h/get?id=1").unwrap(),
            PathBuf::from("h/get-53622624a8ce0172c7af666fedb0d53c")
        );
    }

    #[test]
    fn lines_skip_blanks_and_comments_and_keep_bad_lines_as_jobs() {
        let text = "# list\n\nhttp://h/a\n  http://h/b  \nnot a url\n#http://h/c\n";
        let jobs: Vec<Job> = UrlLines::new(text.as_bytes()).collect();
        let keys: Vec<&str> = jobs.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys, ["http://h/a", "http://h/b", "not a url"]);
        assert!(jobs[2].file.to_string_lossy().starts_with("invalid-"));
    }
}
