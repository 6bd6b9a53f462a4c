//! Where bodies go: the [`Sink`] trait and the default [`DirSink`].
//!
//! A sink is called from the writer's blocking threads, never from a fetcher's arbiter, so it may
//! do blocking I/O. Every body reaches it as a reader, never as one buffer of the body's size: a
//! small body is read from memory, a large one from a spool file the writer filled as the body
//! arrived (unless the sink takes the pieces itself through [`Sink::begin`]), so memory per job
//! stays at a small buffer whatever `max_body` allows.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use crate::job::Job;

/// Stores bodies. Implement it to keep downloads somewhere other than a folder.
pub trait Sink: Send + Sync + 'static {
    /// Stores the complete body of `job` under `file` (the job's file, or the name a
    /// [`Namer`](crate::Namer) chose), reading it from `body` (read it in pieces: it may be as
    /// large as the body limit). When this returns `Ok`, the job counts as downloaded.
    fn store(&self, job: &Job, file: &Path, body: &mut dyn io::Read) -> io::Result<()>;

    /// [`Sink::store`] for a body already in memory (most pages). The default reads it through
    /// [`Sink::store`]; a sink that can take the bytes whole overrides it (a reader behind `dyn`
    /// is copied in 8 KiB pieces: two writes for a 16 KiB page where one would do).
    fn store_bytes(&self, job: &Job, file: &Path, body: &[u8]) -> io::Result<()> {
        self.store(job, file, &mut &body[..])
    }

    /// True when `file` is already stored completely (used with `skip_existing`).
    fn exists(&self, _file: &Path) -> bool {
        false
    }

    /// Reads back a stored `file`, for a crawl with `skip_existing`: a page that is not fetched
    /// again still gives its links. The default (`None`) means the sink cannot: such a page is
    /// skipped without its links.
    fn open(&self, _file: &Path) -> io::Result<Option<Box<dyn io::Read + Send>>> {
        Ok(None)
    }

    /// Starts storing a body too large to hold in memory, written in pieces as it arrives. The
    /// default (`None`) makes the writer spool the pieces to an anonymous temp file and call
    /// [`Sink::store`] once with a reader over it.
    fn begin(&self, _job: &Job) -> io::Result<Option<Box<dyn Part>>> {
        Ok(None)
    }

    /// Removes what stores cut short by a killed worker left behind (for [`DirSink`], its temp
    /// files). Called at the end of a complete shared crawl, when no store of it can be under way
    /// any more; the default does nothing.
    fn tidy(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A body being stored in pieces. Dropping it without [`Part::commit`] must discard it.
pub trait Part: Send {
    /// Appends the next piece.
    fn write(&mut self, piece: &[u8]) -> io::Result<()>;
    /// Completes the body and stores it under `file`.
    fn commit(self: Box<Self>, file: &Path) -> io::Result<()>;
}

/// The prefix and suffix of in-progress files; a file with such a name is never complete.
const TEMP_PREFIX: &str = ".flags-";
const TEMP_SUFFIX: &str = ".part";

/// Stores each body in a folder: temp file in the same folder, write, fsync, rename. A file under
/// its final name is therefore always complete; a crash leaves only temp files, which
/// [`DirSink::new`] removes.
#[derive(Debug, Clone)]
pub struct DirSink {
    dir: PathBuf,
    fsync: bool,
    /// The folder is made when the first file is stored (a worker joining a shared crawl); else
    /// a folder that vanished is an error for every store.
    lazy: bool,
}

impl DirSink {
    /// Creates the folder if needed and removes temp files left by a killed run.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        remove_temp_files(&dir)?;
        Ok(DirSink {
            dir,
            fsync: true,
            lazy: false,
        })
    }

    /// A folder shared with other workers of a crawl that may be storing files in it now: temp
    /// files are left alone (they may be another worker's; a complete shared crawl removes the
    /// ones killed workers left, see [`Sink::tidy`]), and the folder is made only when the first
    /// file is stored, so a worker the crawl refuses writes nothing.
    pub fn joining(dir: impl Into<PathBuf>) -> io::Result<Self> {
        Ok(DirSink {
            dir: dir.into(),
            fsync: true,
            lazy: true,
        })
    }

    /// Whether to fsync each file before the rename (default true). Without it a power loss may
    /// leave an empty file under a final name; a killed process still cannot.
    pub fn fsync(mut self, yes: bool) -> Self {
        self.fsync = yes;
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn target(&self, file: &Path) -> io::Result<PathBuf> {
        if !is_safe_relative(file) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to write outside the destination: {}",
                    file.display()
                ),
            ));
        }
        Ok(self.dir.join(file))
    }
}

/// True when `path` is relative, non-empty and made only of normal components (no `..`, no root,
/// no prefix), so joining it to a folder stays inside that folder.
pub fn is_safe_relative(path: &Path) -> bool {
    let mut any = false;
    for c in path.components() {
        match c {
            Component::Normal(_) => any = true,
            _ => return false,
        }
    }
    any
}

/// Downloads get the usual permissions (0666 less the umask), not tempfile's private 0600.
fn file_permissions() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o666)
}

fn remove_temp_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX)
            && name.ends_with(TEMP_SUFFIX)
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            // Another worker's store may have renamed it meanwhile.
            match fs::remove_file(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// A body on its way into a [`DirSink`]: a temp file that becomes the final file on commit.
struct DirPart {
    sink: DirSink,
    tmp: tempfile::NamedTempFile,
}

impl DirSink {
    // The temp file lives in DEST so the rename never crosses filesystems; NamedTempFile deletes
    // it when dropped, so a failed or abandoned body leaves nothing behind.
    fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        let make = || {
            tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .suffix(TEMP_SUFFIX)
                .permissions(file_permissions())
                .tempfile_in(&self.dir)
        };
        match make() {
            Err(e) if self.lazy && e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.dir)?;
                make()
            }
            other => other,
        }
    }

    fn finish(&self, tmp: tempfile::NamedTempFile, file: &Path) -> io::Result<()> {
        let target = self.target(file)?;
        if self.fsync {
            tmp.as_file().sync_all()?;
        }
        // Folders are created only when the rename finds one missing: a mkdir per file costs
        // more than the rename itself when files are small.
        match tmp.persist(&target) {
            Ok(_) => Ok(()),
            Err(e)
                if e.error.kind() == io::ErrorKind::NotFound
                    && target.parent() != Some(&self.dir) =>
            {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)?;
                }
                e.file.persist(&target).map(|_| ()).map_err(|e| e.error)
            }
            Err(e) => Err(e.error),
        }
    }
}

impl Part for DirPart {
    fn write(&mut self, piece: &[u8]) -> io::Result<()> {
        self.tmp.write_all(piece)
    }

    fn commit(self: Box<Self>, file: &Path) -> io::Result<()> {
        self.sink.finish(self.tmp, file)
    }
}

impl Sink for DirSink {
    fn store(&self, _job: &Job, file: &Path, body: &mut dyn io::Read) -> io::Result<()> {
        self.target(file)?;
        let mut tmp = self.temp_file()?;
        io::copy(body, &mut tmp)?;
        self.finish(tmp, file)
    }

    fn store_bytes(&self, _job: &Job, file: &Path, body: &[u8]) -> io::Result<()> {
        self.target(file)?;
        let mut tmp = self.temp_file()?;
        tmp.write_all(body)?;
        self.finish(tmp, file)
    }

    fn exists(&self, file: &Path) -> bool {
        self.target(file).map(|t| t.is_file()).unwrap_or(false)
    }

    fn open(&self, file: &Path) -> io::Result<Option<Box<dyn io::Read + Send>>> {
        let file = std::fs::File::open(self.target(file)?)?;
        Ok(Some(Box::new(file)))
    }

    fn begin(&self, _job: &Job) -> io::Result<Option<Box<dyn Part>>> {
        Ok(Some(Box::new(DirPart {
            sink: self.clone(),
            tmp: self.temp_file()?,
        })))
    }

    fn tidy(&self) -> io::Result<()> {
        match remove_temp_files(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_relative_paths() {
        assert!(is_safe_relative(Path::new("BR.gif")));
        assert!(is_safe_relative(Path::new("a/b.gif")));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "."] {
            assert!(!is_safe_relative(Path::new(bad)), "{bad}");
        }
    }

    #[test]
    fn store_is_atomic_and_cleans_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".flags-abc.part");
        fs::write(&stale, b"half").unwrap();
        let sink = DirSink::new(dir.path()).unwrap();
        assert!(!stale.exists(), "leftover temp file removed at start");
        let job = Job::new("BR", "http://x/br.gif", "BR.gif");
        sink.store(&job, Path::new("BR.gif"), &mut &b"GIF89a"[..])
            .unwrap();
        assert_eq!(fs::read(dir.path().join("BR.gif")).unwrap(), b"GIF89a");
        assert!(sink.exists(Path::new("BR.gif")));
        let err = sink
            .store(&job, Path::new("../out.gif"), &mut &b"x"[..])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("BR.gif")]);
    }
}
