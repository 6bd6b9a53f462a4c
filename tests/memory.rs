//! Memory stays small whatever size a server sends or announces. Its own test binary, so
//! `RUSAGE_CHILDREN` (the peak RSS of this process's finished children) sees only these crawls.

#[path = "../actors/tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::Command;

use common::raw::{head, RawServer};

/// The largest peak RSS of any finished child process, in KiB.
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss
    }
}

const BODY: usize = 96 * 1024 * 1024;

#[test]
fn huge_bodies_never_sit_in_memory() {
    let server = RawServer::start(|path, stream| {
        if path.contains("/us/") {
            // Announces 10 GB: refused from the header alone.
            head(stream, "200 OK", &[("Content-Length", "10000000000")]);
            let _ = stream.write_all(&[0u8; 4096]);
            return;
        }
        let len = BODY.to_string();
        head(stream, "200 OK", &[("Content-Length", &len)]);
        let piece = vec![b'x'; 64 * 1024];
        for _ in 0..BODY / piece.len() {
            if stream.write_all(&piece).is_err() {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("flags"))
        .args(["BR", "US", "-v", "-s"])
        .arg(format!("{}/flags", server.base))
        .arg("-d")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BR OK"), "{text}");
    assert!(
        text.contains("US error: body of 10000000000 bytes or more exceeds the limit"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("BR.gif")).unwrap().len(),
        BODY as u64
    );
    assert!(!dir.path().join("US.gif").exists());
    let peak_mib = children_peak_rss_kib() / 1024;
    // The 96 MiB body went to disk in 1 MiB pieces; a buffered body would have needed ≥ 96 MiB.
    assert!(peak_mib < 64, "peak RSS {peak_mib} MiB");
}
