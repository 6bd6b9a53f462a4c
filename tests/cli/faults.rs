//! Faults the network and hostile servers inject: every invariant holds under each (issue: nothing
//! lost). Servers are raw TCP on 127.0.0.1 port 0, or actix-web where it can do the fault.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{flags, names, stdout};
use crate::common::raw::{head, reset, respond, RawServer};

/// No `.part` (or any hidden) file is left in `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    let hidden: Vec<String> = names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "temp files left: {hidden:?}");
}

pub(super) fn code_of(path: &str) -> Option<String> {
    // /flags/{cc}/{cc}.gif
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("flags"), Some(cc), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (file == format!("{cc}.gif")).then(|| cc.to_uppercase())
}

pub(super) fn is_country(cc: &str) -> bool {
    flags::countries::name_of(cc).is_some()
}

/// A flag server that fails about 25 % of requests with 503 and resets another 10 %, for the first
/// three tries of each path (so a crawl with enough retries always completes).
fn flaky_server() -> RawServer {
    let tries: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    RawServer::start(move |path, stream| {
        let n = {
            let mut t = tries.lock().unwrap();
            let n = t.entry(path.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let roll = path.bytes().fold(n.wrapping_mul(2654435761), |h, b| {
            h.wrapping_mul(31).wrapping_add(b as u32)
        }) % 100;
        if n <= 3 && roll < 25 {
            return respond(stream, "503 Service Unavailable", &[], b"busy");
        }
        if n <= 3 && roll < 35 {
            let s = stream.try_clone().unwrap();
            return reset(s);
        }
        match code_of(path) {
            Some(cc) if is_country(&cc) => respond(
                stream,
                "200 OK",
                &[("Content-Type", "image/gif")],
                &flags::server::flag_gif(&cc),
            ),
            _ => respond(stream, "404 Not Found", &[], b"no"),
        }
    })
}

#[test]
fn flaky_server_with_retries_delivers_every_flag_identical() {
    let server = flaky_server();
    let (text, code, dir) = crawl(&server.base, &["-a", "--retries", "8"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("194 flags downloaded.\nElapsed"), "{text}");
    for name in names(dir.path()) {
        let cc = name.trim_end_matches(".gif");
        assert_eq!(
            std::fs::read(dir.path().join(&name)).unwrap(),
            flags::server::flag_gif(cc),
            "{name}"
        );
    }
    assert_eq!(names(dir.path()).len(), 194);
}

#[test]
fn flaky_server_without_retries_counts_errors_with_messages() {
    let server = flaky_server();
    let (text, code, dir) = crawl(&server.base, &["-a", "-v"]);
    assert_eq!(code, Some(1), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(" error: ")).collect();
    let ok = text.lines().filter(|l| l.ends_with(" OK")).count();
    assert!(errors.len() > 20, "{text}");
    assert_eq!(ok + errors.len(), 194, "every job has one outcome");
    assert!(
        errors
            .iter()
            .any(|l| l.ends_with("error: HTTP error 503 - Service Unavailable")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|l| !l.contains("503")),
        "resets are errors too: {errors:?}"
    );
    assert!(
        text.contains(&format!("{:3} errors.", errors.len())),
        "{text}"
    );
    assert_eq!(names(dir.path()).len(), ok);
    assert_no_temp_files(dir.path());
}

/// Runs `flags ARGS -s {server}/flags -d TEMP`; returns stdout, the exit code and the folder.
pub(super) fn crawl(server: &str, args: &[&str]) -> (String, Option<i32>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = flags()
        .args(args)
        .arg("-s")
        .arg(format!("{server}/flags"))
        .arg("-d")
        .arg(dir.path())
        .output()
        .unwrap();
    (stdout(&out), out.status.code(), dir)
}

fn crawl_one(server: &str, extra: &[&str]) -> (String, i32, tempfile::TempDir) {
    let args: Vec<&str> = ["BR", "-v"].iter().chain(extra).copied().collect();
    let (text, code, dir) = crawl(server, &args);
    (text, code.unwrap_or(-1), dir)
}

#[test]
fn a_truncated_body_is_an_error_and_leaves_no_file() {
    let server = RawServer::start(|_, stream| {
        head(stream, "200 OK", &[("Content-Length", "1000")]);
        let _ = stream.write_all(&[7u8; 500]);
    });
    let (text, code, dir) = crawl_one(&server.base, &["--retries", "2"]);
    assert!(text.contains("BR error: reading body:"), "{text}");
    assert_eq!(code, 1);
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

#[test]
fn a_body_that_stalls_times_out_and_the_run_ends() {
    let server = RawServer::start(|_, stream| {
        head(stream, "200 OK", &[("Content-Length", "1000")]);
        let _ = stream.write_all(&[7u8; 500]);
        std::thread::sleep(Duration::from_secs(60));
    });
    let (text, code, dir) = crawl_one(&server.base, &["--timeout", "1"]);
    assert!(text.contains("BR error: timed out after 1s"), "{text}");
    assert_eq!(code, 1);
    assert!(names(dir.path()).is_empty());
}

#[test]
fn bodies_over_max_size_are_errors() {
    let server = RawServer::start(|path, stream| {
        if path.contains("/br/") {
            // Announced: refused before reading.
            head(stream, "200 OK", &[("Content-Length", "10000000000")]);
            let _ = stream.write_all(&[1u8; 65536]);
        } else if path.contains("/fr/") {
            // Not announced: counted while streaming (chunked).
            head(stream, "200 OK", &[("Transfer-Encoding", "chunked")]);
            for _ in 0..64 {
                let mut chunk = format!("{:x}\r\n", 65536).into_bytes();
                chunk.extend_from_slice(&[2u8; 65536]);
                chunk.extend_from_slice(b"\r\n");
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        } else {
            // Neither length nor chunks: the body ends at close, and its size is counted too.
            head(stream, "200 OK", &[]);
            let _ = stream.write_all(&[3u8; 1_000_001]);
        }
    });
    let (text, code, dir) = crawl(
        &server.base,
        &["BR", "FR", "DE", "-v", "--max-size", "1000000"],
    );
    assert!(
        text.contains(
            "BR error: body of 10000000000 bytes or more exceeds the limit of 1000000 bytes"
        ),
        "{text}"
    );
    assert!(
        text.contains("FR error: body of ") && text.contains(" exceeds the limit of 1000000 bytes"),
        "{text}"
    );
    assert!(
        text.contains("DE error: body of 1000001 bytes or more exceeds the limit of 1000000 bytes"),
        "{text}"
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

#[test]
fn redirect_loops_and_non_http_redirects_are_errors() {
    let server = RawServer::start(|path, stream| {
        if path.contains("/br/") {
            respond(stream, "302 Found", &[("Location", path)], b"");
        } else if path.contains("/fr/") {
            let to = [("Location", "ftp://127.0.0.1/flag.gif")];
            respond(stream, "302 Found", &to, b"");
        } else if path == "/flags/de/de.gif" {
            // A relative redirect to a real file is followed.
            respond(
                stream,
                "301 Moved Permanently",
                &[("Location", "../de/moved.gif")],
                b"",
            );
        } else if path == "/flags/de/moved.gif" {
            respond(stream, "200 OK", &[], b"the DE flag");
        } else {
            respond(stream, "404 Not Found", &[], b"");
        }
    });
    let (text, code, dir) = crawl(&server.base, &["BR", "FR", "DE", "-v"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("BR error: HTTP error 302 - too many redirects (limit 10)"),
        "{text}"
    );
    assert!(
        text.contains("FR error: redirect to a non-http(s) URL refused: ftp://127.0.0.1/flag.gif"),
        "{text}"
    );
    assert!(text.contains("\nDE OK\n"), "{text}");
    assert_eq!(
        std::fs::read(dir.path().join("DE.gif")).unwrap(),
        b"the DE flag"
    );
    assert!(text.contains("  2 errors."), "{text}");
}

#[test]
fn a_large_body_streams_to_disk_intact() {
    // 8 MiB, in odd-sized writes, so it crosses the in-memory threshold in pieces.
    let body: Arc<Vec<u8>> = Arc::new((0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect());
    let served = Arc::clone(&body);
    let server = RawServer::start(move |_, stream| {
        let len = served.len().to_string();
        head(stream, "200 OK", &[("Content-Length", &len)]);
        for piece in served.chunks(12_345) {
            if stream.write_all(piece).is_err() {
                return;
            }
        }
    });
    let (text, code, dir) = crawl_one(&server.base, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        std::fs::read(dir.path().join("BR.gif")).unwrap() == *body,
        "byte-identical"
    );
    assert_no_temp_files(dir.path());
}

#[test]
fn a_200_whose_body_fails_says_200_in_json() {
    let server = RawServer::start(|_, stream| {
        head(stream, "200 OK", &[("Content-Length", "1000")]);
        let _ = stream.write_all(&[7u8; 500]);
    });
    let (text, code, _dir) = crawl(&server.base, &["BR", "--json"]);
    assert_eq!(code, Some(1), "{text}");
    let job = text
        .lines()
        .find(|l| l.contains(r#""type":"job""#))
        .unwrap();
    let job: serde_json::Value = serde_json::from_str(job).unwrap();
    assert_eq!(
        (job["outcome"].as_str(), job["status"].as_u64()),
        (Some("error"), Some(200)),
        "{job}"
    );
    assert_eq!(job["error_kind"], "truncated", "{job}");
}
