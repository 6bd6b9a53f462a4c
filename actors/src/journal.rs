//! The crawl journal: an append-only text file that lets a crawl go on after any stop, `kill -9`
//! included.
//!
//! One line per event, tab-separated: `Q depth url parent hops role` when a URL is queued (seen),
//! `D url`
//! when its page has its final outcome. The frontier writes a page's `Q` lines before its `D`
//! line, through one buffer flushed in order after each page, so whatever prefix of the file
//! reached the system is consistent: a page whose `D` line was lost is fetched again, with its
//! links found again. A crash of the process therefore loses at most the pages in flight, which
//! are fetched again. (There is no fsync: a power cut may lose more, never consistency.)
//! Replaying the file gives the seen-set and what is left.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use crate::job::Role;
use crate::seen::{fingerprint, SeenSet};

const HEADER: &str = "flags-crawl-journal 1";

pub(crate) struct Journal {
    out: BufWriter<File>,
}

/// A URL left to visit, as the journal recorded it.
pub(crate) struct Left {
    pub depth: u32,
    pub url: String,
    pub parent: Option<String>,
    /// Redirects in a row that led to it.
    pub hops: u32,
    /// What it is fetched for.
    pub role: Role,
}

/// What a journal says: every URL seen, the ones left (in the order they were queued), and how
/// many pages are done.
#[derive(Default)]
pub(crate) struct Replay {
    pub seen: SeenSet,
    pub left: Vec<Left>,
    pub done: u64,
}

impl Journal {
    /// Opens the journal at `path`: replayed and appended to when `resume`, else started afresh.
    pub fn open(path: &Path, resume: bool) -> io::Result<(Journal, Replay)> {
        let replay = if resume && path.exists() {
            replay(path)?
        } else {
            Replay::default()
        };
        let fresh = replay.seen.is_empty();
        let file = if fresh {
            File::create(path)?
        } else {
            OpenOptions::new().append(true).open(path)?
        };
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        if fresh {
            writeln!(out, "{HEADER}")?;
        } else {
            // A crash may have cut the last line short: start on a line of our own.
            writeln!(out)?;
        }
        Ok((Journal { out }, replay))
    }

    pub fn queued(
        &mut self,
        depth: u32,
        url: &str,
        parent: Option<&str>,
        hops: u32,
        role: Role,
    ) -> io::Result<()> {
        writeln!(
            self.out,
            "Q\t{depth}\t{url}\t{}\t{hops}\t{}",
            parent.unwrap_or("-"),
            role.letter()
        )
    }

    pub fn done(&mut self, url: &str) -> io::Result<()> {
        writeln!(self.out, "D\t{url}")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn replay(path: &Path) -> io::Result<Replay> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.trim_end() != HEADER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a flags crawl journal", path.display()),
        ));
    }
    let mut replay = Replay::default();
    // Left to visit, by fingerprint, with the order they were queued in.
    let mut left: HashMap<u128, (u64, Left)> = HashMap::new();
    let mut order = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        // A line without its newline was cut short by a crash: it did not happen.
        let Some(text) = line.strip_suffix('\n') else {
            break;
        };
        let mut fields = text.split('\t');
        match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some("Q"), Some(depth), Some(url), Some(parent)) => {
                let Ok(depth) = depth.parse() else { continue };
                // Journals written before hops and roles were recorded have none: 0, a page.
                let hops = fields.next().and_then(|h| h.parse().ok()).unwrap_or(0);
                let role = Role::of_letter(fields.next().unwrap_or("p"));
                if replay.seen.insert(url) {
                    order += 1;
                    let parent = (parent != "-").then(|| parent.to_string());
                    let url = url.to_string();
                    let l = Left {
                        depth,
                        url,
                        parent,
                        hops,
                        role,
                    };
                    left.insert(fingerprint(&l.url), (order, l));
                }
            }
            (Some("D"), Some(url), None, None) if left.remove(&fingerprint(url)).is_some() => {
                replay.done += 1;
            }
            _ => {} // blank (written after a crash) or unknown: skipped
        }
    }
    let mut left: Vec<(u64, Left)> = left.into_values().collect();
    left.sort_unstable_by_key(|(order, _)| *order);
    replay.left = left.into_iter().map(|(_, l)| l).collect();
    Ok(replay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_gives_seen_and_left_and_ignores_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let (mut j, replay) = Journal::open(&path, true).unwrap();
            assert_eq!(replay.seen.len(), 0);
            j.queued(0, "http://h/", None, 0, Role::Page).unwrap();
            j.queued(1, "http://h/a", Some("http://h/"), 0, Role::Page)
                .unwrap();
            j.queued(1, "http://h/b", Some("http://h/"), 2, Role::Asset)
                .unwrap();
            j.done("http://h/").unwrap();
            j.flush().unwrap();
        }
        // A crash in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"D\thttp://h/a").unwrap();
        drop(f);
        let (mut j, replay) = Journal::open(&path, true).unwrap();
        assert_eq!(replay.seen.len(), 3);
        assert_eq!(replay.done, 1);
        let left: Vec<&str> = replay.left.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(left, ["http://h/a", "http://h/b"]);
        assert_eq!(replay.left[0].parent.as_deref(), Some("http://h/"));
        assert_eq!((replay.left[1].hops, replay.left[1].role), (2, Role::Asset));
        j.done("http://h/a").unwrap();
        j.flush().unwrap();
        drop(j);
        let (_, replay) = Journal::open(&path, true).unwrap();
        assert_eq!(replay.left.len(), 1, "the line after the cut one counts");
        // Without resume, the journal starts afresh.
        let (_, replay) = Journal::open(&path, false).unwrap();
        assert_eq!(replay.seen.len(), 0);
    }
}
