//! The tools that check the web archives the tests write: warcio (`warcio check`, `warcio
//! index`) and pywb (`wb-manager`, `wayback`). They are looked for in `FLAGS_ARCHIVE_TOOLS` (a
//! folder of executables: `.ci/run` installs both into a virtualenv and points it at its `bin`),
//! then on PATH. A test that needs a missing one prints `SKIPPED: …` and goes on without it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `name` is: `FLAGS_ARCHIVE_TOOLS`, then PATH.
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("FLAGS_ARCHIVE_TOOLS")
        .map(|d| vec![PathBuf::from(d)])
        .unwrap_or_default();
    if let Some(paths) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&paths));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// `warcio check -v` accepts the file, every record's digests checked; false (SKIPPED printed)
/// without warcio.
pub fn warcio_check(warc: &Path) -> bool {
    let Some(warcio) = tool("warcio") else {
        println!("SKIPPED: warcio is not installed (pip install warcio, or run .ci/run)");
        return false;
    };
    let out = Command::new(warcio)
        .args(["check", "-v"])
        .arg(warc)
        .output()
        .expect("run warcio check");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "warcio check {}: {report}{}",
        warc.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!report.contains("digest failed"), "{report}");
    true
}

/// `warcio index` of the file with these fields (`-f`), one JSON object per record; `None`
/// without warcio.
pub fn warcio_index(warc: &Path, fields: &str) -> Option<Vec<serde_json::Value>> {
    let warcio = tool("warcio")?;
    let out = Command::new(warcio)
        .args(["index", "-f", fields])
        .arg(warc)
        .output()
        .expect("run warcio index");
    assert!(
        out.status.success(),
        "warcio index {}: {}",
        warc.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect(),
    )
}

/// A pywb replaying a collection made of WARC files, on 127.0.0.1; stopped when dropped.
pub struct Pywb {
    child: Child,
    port: u16,
    started: Instant,
    _root: tempfile::TempDir,
}

impl Pywb {
    /// Makes the collection `coll` with `wb-manager init` and `wb-manager add` (pywb copies the
    /// files in and indexes them itself), then starts `wayback`. `None` (SKIPPED printed)
    /// without pywb.
    pub fn start(coll: &str, warcs: &[PathBuf]) -> Option<Pywb> {
        let (Some(manager), Some(wayback)) = (tool("wb-manager"), tool("wayback")) else {
            println!("SKIPPED: pywb is not installed (pip install pywb, or run .ci/run)");
            return None;
        };
        let root = tempfile::tempdir().expect("tempdir");
        let manage = |args: &[&str], files: &[PathBuf]| {
            let out = Command::new(&manager)
                .args(args)
                .args(files)
                .current_dir(root.path())
                .output()
                .expect("run wb-manager");
            assert!(out.status.success(), "wb-manager {args:?}: {out:?}");
        };
        manage(&["init", coll], &[]);
        manage(&["add", coll], warcs);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(wayback)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--threads", "2"])
            .current_dir(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wayback");
        Some(Pywb {
            child,
            port,
            started: Instant::now(),
            _root: root,
        })
    }

    /// GETs `path` (HTTP/1.0), asking again until pywb answers (it takes about 2 s to start),
    /// within a minute of its start: the status and the body.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let deadline = self.started + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(20)))
                    .expect("timeout");
                write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
                let mut resp = Vec::new();
                if s.read_to_end(&mut resp).is_ok() && !resp.is_empty() {
                    let end = resp
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(resp.len(), |i| i + 4);
                    let status = String::from_utf8_lossy(&resp[..end])
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    return (status, resp[end..].to_vec());
                }
            }
            assert!(Instant::now() < deadline, "pywb did not answer {path}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Pywb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic bytes that do not compress (a xorshift stream).
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
