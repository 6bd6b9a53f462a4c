//! Servers this project did not write, and raw servers that end connections the way real ones do:
//! HTTP/1.0 without keep-alive, keep-alive connections closed without warning or when idle, and
//! bodies that end when the connection closes (issue: every real server). With `--retries 0` every
//! one of them must give the same 194 / 482 / 0 as a well-behaved server, byte for byte, and a
//! request is sent again only when its pooled connection turned out to be closed.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use super::faults::{assert_no_temp_files, code_of, crawl, is_country};
use super::names;
use crate::common::raw::{reset, ConnServer, RawServer, Style};

/// The flag a path asks for, or `None` (404).
fn flag_body(path: &str) -> Option<Vec<u8>> {
    code_of(path)
        .filter(|cc| is_country(cc))
        .map(|cc| flags::server::flag_gif(&cc))
}

/// Every file in `dir` is the flag of its code, and all 194 are there.
pub(super) fn assert_all_flags_identical(dir: &Path, what: &str) {
    let files = names(dir);
    assert_eq!(files.len(), 194, "{what}: {files:?}");
    for name in files {
        let cc = name.trim_end_matches(".gif");
        assert_eq!(
            std::fs::read(dir.join(&name)).unwrap(),
            flags::server::flag_gif(cc),
            "{what}: {name}"
        );
    }
}

/// `-e` at `-m 1` and `-m 50` with no retries against a fresh server of `style`: the book's
/// 194 / 482 / 0, identical files, and no job answered twice.
fn every_code_against(style: Style) {
    for m in ["1", "50"] {
        let what = format!("{style:?} -m {m}");
        let server = ConnServer::start(style, flag_body);
        let (text, code, dir) = crawl(&server.base, &["-e", "-m", m, "--retries", "0"]);
        assert_eq!(code, Some(0), "{what}: {text}");
        assert!(
            text.contains("194 flags downloaded.\n482 not found.\nElapsed"),
            "{what}: {text}"
        );
        assert_all_flags_identical(dir.path(), &what);
        assert_no_temp_files(dir.path());
        let (connections, requests, unanswered) = server.stats.get();
        // Each code is answered exactly once; a request the server read and never answered was
        // on a connection it closed, and is the only kind sent again.
        assert_eq!(requests - unanswered, 676, "{what}: {requests} requests");
        assert!(
            unanswered <= connections,
            "{what}: {unanswered} unanswered on {connections} connections"
        );
        if matches!(style, Style::Http10) {
            // The response said the connection closes: it is never offered another request.
            assert_eq!((unanswered, connections), (0, 676), "{what}");
        }
    }
}

#[test]
fn http10_without_keep_alive() {
    every_code_against(Style::Http10);
}

#[test]
fn keep_alive_closed_after_a_few_requests_without_warning() {
    every_code_against(Style::CloseAfterFew);
}

#[test]
fn keep_alive_closed_when_idle_for_50ms() {
    every_code_against(Style::IdleClose);
}

#[test]
fn close_delimited_http11_bodies() {
    every_code_against(Style::CloseDelimited);
}

#[test]
fn keep_alive_connections_are_reused() {
    let server = ConnServer::start(Style::KeepAlive, flag_body);
    let (text, code, dir) = crawl(&server.base, &["-e", "-m", "10"]);
    assert_eq!(code, Some(0), "{text}");
    assert_all_flags_identical(dir.path(), "keep-alive");
    let (connections, requests, _) = server.stats.get();
    assert_eq!(requests, 676);
    assert!(connections <= 15, "{connections} connections for -m 10");
}

#[test]
fn a_close_delimited_body_of_8_mib_streams_intact() {
    let big: Arc<Vec<u8>> = Arc::new((0..8 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect());
    let served = Arc::clone(&big);
    let server = ConnServer::start(Style::CloseDelimited, move |path| {
        path.contains("/br/").then(|| served.to_vec())
    });
    let (text, code, dir) = crawl(&server.base, &["BR", "ZZ", "-v"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("BR OK") && text.contains("ZZ not found"),
        "{text}"
    );
    assert!(std::fs::read(dir.path().join("BR.gif")).unwrap() == *big);
    assert_no_temp_files(dir.path());
}

#[test]
fn a_close_delimited_body_cut_by_a_reset_is_an_error() {
    let server = RawServer::start(|_, stream| {
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\n\r\n".to_vec();
        out.extend_from_slice(&[9u8; 5000]);
        let _ = stream.write_all(&out);
        std::thread::sleep(std::time::Duration::from_millis(20));
        reset(stream.try_clone().unwrap());
    });
    let (text, code, dir) = crawl(&server.base, &["BR", "FR", "-v"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("BR error: reading body:"), "{text}");
    assert!(text.contains("FR error: reading body:"), "{text}");
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
}

/// A folder laid out as the book's site: `flags/{cc}/{cc}.gif` for the 194 countries, readable by
/// servers whose workers run as another user.
pub(super) fn flag_site() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for cc in flags::countries::every_code() {
        if !is_country(&cc) {
            continue;
        }
        let lc = cc.to_lowercase();
        let dir = root.path().join("flags").join(&lc);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{lc}.gif")), flags::server::flag_gif(&cc)).unwrap();
    }
    root
}

/// `python3 -m http.server` (the book's LOCAL server), killed when dropped.
struct PythonServer {
    child: Child,
    base: String,
}

impl PythonServer {
    fn start(dir: &Path) -> Option<PythonServer> {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut()?)
            .read_line(&mut line)
            .ok()?;
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line.split_whitespace().nth(5)?.to_string();
        Some(PythonServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_http_server_the_books_local_server() {
    let site = flag_site();
    let Some(server) = PythonServer::start(site.path()) else {
        println!("SKIPPED: python3 is not installed (apt-get install -y python3)");
        return;
    };
    // -m 100 is the default for a server on this machine: 100 connections at once overflow
    // Python's listen backlog of 5 unless new connections are opened gently.
    for m in ["1", "100"] {
        let (text, code, dir) = crawl(&server.base, &["-e", "-m", m, "--retries", "0"]);
        assert_eq!(code, Some(0), "-m {m}: {text}");
        assert!(
            text.contains("194 flags downloaded.\n482 not found.\nElapsed"),
            "-m {m}: {text}"
        );
        assert_all_flags_identical(dir.path(), &format!("python -m {m}"));
    }
}

/// Responses no server should send: every job still ends in one outcome, the run ends, and only
/// a complete body is ever a file.
#[test]
fn hostile_responses_each_end_in_one_outcome() {
    let big_head = format!(
        "HTTP/1.1 200 OK\r\nX-Pad: {}\r\n\r\nbody",
        "a".repeat(100_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("aa", b"not http at all\r\n\r\n".to_vec(), "error"),
        ("ab", big_head.into_bytes(), "error"),
        ("ac", b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), "OK"),
        (
            "ad",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nafter continue".to_vec(),
            "OK",
        ),
        (
            "ae",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
            "error",
        ),
        (
            "af",
            b"HTTP/1.0 200 OK\r\n\r\nold style, ends at close".to_vec(),
            "OK",
        ),
        (
            "ag",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".to_vec(),
            "error",
        ),
        ("ah", b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(), "error"),
        ("ai", b"".to_vec(), "error"),
        (
            "aj",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec(),
            "error",
        ),
        (
            "ak",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx".to_vec(),
            "error",
        ),
        (
            "al",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
            "OK",
        ),
    ];
    let served: Vec<(String, Vec<u8>)> = cases
        .iter()
        .map(|(cc, bytes, _)| (cc.to_string(), bytes.clone()))
        .collect();
    let server = RawServer::start(move |path, stream| {
        if let Some((_, bytes)) = served
            .iter()
            .find(|(cc, _)| path.contains(&format!("/{cc}/")))
        {
            let _ = stream.write_all(bytes);
        }
    });
    let codes: Vec<String> = cases.iter().map(|(cc, _, _)| cc.to_uppercase()).collect();
    let mut args: Vec<&str> = codes.iter().map(String::as_str).collect();
    args.extend(["-v", "--timeout", "3"]);
    let (text, code, dir) = crawl(&server.base, &args);
    assert_eq!(code, Some(1), "{text}");
    for (cc, _, want) in &cases {
        let cc = cc.to_uppercase();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{cc} ")))
            .unwrap_or_else(|| panic!("no outcome for {cc}: {text}"));
        assert!(line.contains(want), "{cc}: {line}");
    }
    let ok = cases.iter().filter(|c| c.2 == "OK").count();
    assert_eq!(names(dir.path()).len(), ok, "{:?}", names(dir.path()));
    assert_eq!(
        std::fs::read(dir.path().join("AD.gif")).unwrap(),
        b"after continue"
    );
    assert_eq!(std::fs::read(dir.path().join("AC.gif")).unwrap(), b"");
    assert_eq!(std::fs::read(dir.path().join("AL.gif")).unwrap(), b"hello");
    assert_no_temp_files(dir.path());
}
