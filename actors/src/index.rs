//! The crawl's **index** of what it fetched: one CDXJ line per fetched URL (`urlkey timestamp
//! {json}`, the web-archive index format pywb and the archive tools read) with its status,
//! content type, length, digest, and the file it is stored in (or none), written as the crawl goes.
//!
//! It is also the record of who owns which file: a resumed crawl (and one with `skip_existing`)
//! reads it first, so no file ever replaces the file of another URL, and a page already stored is
//! found under the name it was stored with. Each line is one write call: a kill loses no line of a
//! page that was stored (a torn last line is cut when the index is opened again).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::archive::cdxj::{self, Line};
use crate::seen::fingerprint;

/// The index, shared by the threads that write it (the writer's, the reporter's).
pub(crate) struct Index {
    out: Mutex<Option<File>>,
    path: PathBuf,
}

/// What an index already said when it was opened.
#[derive(Default)]
pub(crate) struct Known {
    /// Who owns each stored file: the file's hash → the [`owner_key`] of the URL.
    pub owners: HashMap<u64, u64>,
    /// Where each URL's body is (only when asked for: it costs a path per page).
    pub files: HashMap<u128, PathBuf>,
}

/// The key a crawled URL owns files by: a 64-bit hash of the URL, never 0 (0 stands for a list's
/// job, which owns its name alone). Two URLs that end at one name and share this key too are not
/// to be met; it costs a fraction of the URL's SHA-256 fingerprint, on every page stored.
pub(crate) fn owner_key(url: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    url.hash(&mut h);
    h.finish().max(1)
}

/// The hash a file is known by.
pub(crate) fn file_key(file: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    file.hash(&mut h);
    h.finish()
}

impl Index {
    /// Opens the index at `path`: read first and appended to when `keep` (a resumed crawl, or
    /// one that skips what is stored), else started afresh. With `files`, also learns where each
    /// URL's body is.
    pub fn open(path: &Path, keep: bool, files: bool) -> io::Result<(Index, Known)> {
        let mut known = Known::default();
        let out = if keep && path.exists() {
            let mut lines = cdxj::read(BufReader::new(File::open(path)?));
            for line in lines.by_ref() {
                let Ok(line) = line else { continue };
                let Some(file) = line.file else { continue };
                let file = PathBuf::from(file);
                known.owners.insert(file_key(&file), owner_key(&line.url));
                if files {
                    known.files.insert(fingerprint(&line.url), file);
                }
            }
            cdxj::open_append(path)?
        } else {
            File::create(path)?
        };
        let index = Index {
            out: Mutex::new(Some(out)),
            path: path.to_path_buf(),
        };
        Ok((index, known))
    }

    /// Appends a line (one write call). An index that cannot be written is reported once and
    /// dropped: the crawl goes on without it.
    pub fn record(&self, line: &Line) {
        // Formatted before the lock: the writer threads wait on each other only for the write.
        let text = format!("{line}\n");
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        if let Some(Err(e)) = out.as_mut().map(|f| f.write_all(text.as_bytes())) {
            eprintln!(
                "flags: the index {} cannot be written ({e}); going on without it",
                self.path.display()
            );
            *out = None;
        }
    }
}
