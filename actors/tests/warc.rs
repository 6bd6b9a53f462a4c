//! The web archive of a crawl (`CrawlSpec::warc`) against responses a tidy site never sends: a
//! body too large to hold in memory (spooled on its way to the archive), a chunked body, a
//! gzip-encoded one, one that ends when the connection closes, error bodies small and large, a
//! body over the size limit, one cut short by the server, a redirect; all through a sink that
//! stores nothing, so the archive is shown not to depend on the files. Each record is checked
//! byte for byte against what the raw server wrote, and by warcio when it is installed.
//!
//! Run: `cargo test -p flags-actors --test warc -- --nocapture`.

mod common;

use std::io::{self, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use flags_actors::archive::{read, WarcOptions};
use flags_actors::{Config, CrawlSpec, Crawler, Job, Sink, Summary};

use common::archive_tools::{noise, warcio_check};
use common::raw::{head, respond, RawServer};

/// Stores nothing: reads each body to its end and drops it.
struct Nowhere;

impl Sink for Nowhere {
    fn store(&self, _: &Job, _: &Path, body: &mut dyn io::Read) -> io::Result<()> {
        io::copy(body, &mut io::sink()).map(|_| ())
    }
}

const BIG: usize = 5 * 1024 * 1024;
const LIMIT: u64 = 8 * 1024 * 1024;

fn gzipped() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b"a body the server sent gzip-encoded, though identity was asked for")
        .unwrap();
    e.finish().unwrap()
}

/// What the server answers at each path (and, for a test, what the record must hold).
fn answer(path: &str, s: &mut TcpStream) {
    match path {
        "/big" => respond(
            s,
            "200 OK",
            &[("Content-Type", "application/octet-stream")],
            &noise(BIG),
        ),
        "/chunked" => {
            head(
                s,
                "200 OK",
                &[
                    ("Content-Type", "text/plain"),
                    ("Transfer-Encoding", "chunked"),
                ],
            );
            for part in [&b"first piece, "[..], b"second piece, ", b"last piece"] {
                let _ = write!(s, "{:x}\r\n", part.len());
                let _ = s.write_all(part);
                let _ = s.write_all(b"\r\n");
            }
            let _ = s.write_all(b"0\r\n\r\n");
        }
        "/gz" => respond(
            s,
            "200 OK",
            &[("Content-Type", "text/plain"), ("Content-Encoding", "gzip")],
            &gzipped(),
        ),
        "/close" => {
            // HTTP/1.1 without Content-Length or chunking: the body ends with the connection.
            head(s, "200 OK", &[("Content-Type", "text/plain")]);
            let _ = s.write_all(b"a body that ends when the connection closes");
        }
        "/forbidden" => respond(
            s,
            "403 Forbidden",
            &[("Content-Type", "text/plain")],
            b"not for you",
        ),
        "/gone" => respond(
            s,
            "410 Gone",
            &[("Content-Type", "text/plain")],
            &noise(100_000),
        ),
        "/too-large" => respond(s, "200 OK", &[], &noise(LIMIT as usize + 1)),
        "/cut" => {
            head(s, "200 OK", &[("Content-Length", "1000")]);
            let _ = s.write_all(&[b'x'; 400]);
        }
        "/moved" => respond(s, "302 Found", &[("Location", "/gz")], b"see /gz"),
        _ => respond(
            s,
            "404 Not Found",
            &[("Content-Type", "text/plain")],
            b"nothing here",
        ),
    }
}

fn crawl(base: &str, archive: &Path) -> Summary {
    let mut spec = CrawlSpec::builder().warc(WarcOptions::new(archive, "odd"));
    for path in [
        "/big",
        "/chunked",
        "/gz",
        "/close",
        "/forbidden",
        "/gone",
        "/too-large",
        "/cut",
        "/moved",
    ] {
        spec = spec.seed(format!("{base}{path}"));
    }
    let spec = spec.build().unwrap();
    let config = Config::builder()
        .pool_size(4)
        .retries(0)
        .max_body(LIMIT)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    actix_rt::System::new()
        .block_on(Crawler::new(config, Nowhere).crawl(spec, std::future::pending()))
        .unwrap()
}

#[test]
fn odd_responses_are_recorded_as_they_came_whatever_the_sink_keeps() {
    let server = RawServer::start(answer);
    let archive = tempfile::tempdir().unwrap();
    let summary = crawl(&server.base, archive.path());
    let a = summary.archive.clone().expect("an archive summary");
    assert_eq!(a.failed, 0, "{a:?}");
    assert_eq!(a.files.len(), 1, "{a:?}");
    let records: Vec<read::Record> = read::open(&a.files[0])
        .unwrap()
        .with_payloads(true)
        .map(|r| r.unwrap())
        .collect();
    let responses: Vec<&read::Record> = records.iter().filter(|r| r.kind() == "response").collect();
    // robots.txt and sitemap.xml (404s) and the nine seeds (the redirect's target is one of
    // them: seen).
    assert_eq!(responses.len() as u64, a.exchanges, "{a:?}");
    assert_eq!(responses.len(), 11, "{a:?}");
    let find = |path: &str| {
        let url = format!("{}{path}", server.base);
        *responses
            .iter()
            .find(|r| r.field("WARC-Target-URI") == Some(url.as_str()))
            .unwrap_or_else(|| panic!("{path} not recorded"))
    };
    let head_of = |r: &read::Record| String::from_utf8(r.http_head.clone().unwrap()).unwrap();
    let payload = |r: &read::Record| r.payload.clone().unwrap();

    let big = find("/big");
    assert!(payload(big) == noise(BIG), "the large body, byte for byte");
    assert_eq!(big.field("WARC-Truncated"), None);

    let chunked = find("/chunked");
    assert_eq!(payload(chunked), b"first piece, second piece, last piece");
    let h = head_of(chunked);
    assert!(!h.contains("Transfer-Encoding"), "{h}");
    assert!(
        h.starts_with("HTTP/1.1 200 OK\r\nConnection: close\r\n"),
        "as read: {h}"
    );

    let gz = find("/gz");
    assert_eq!(payload(gz), gzipped(), "content coding kept");
    assert!(head_of(gz).contains("Content-Encoding: gzip\r\n"));

    // The wire shows awc this response as HTTP/1.0; the record has the head as it came.
    let close = find("/close");
    assert_eq!(
        payload(close),
        b"a body that ends when the connection closes"
    );
    assert!(
        head_of(close).starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        head_of(close)
    );

    let forbidden = find("/forbidden");
    assert_eq!(payload(forbidden), b"not for you");
    assert!(head_of(forbidden).starts_with("HTTP/1.1 403 Forbidden\r\n"));

    // An error body is read up to 64 KiB (so the connection can be reused): cut there.
    let gone = find("/gone");
    assert_eq!(payload(gone), noise(100_000)[..64 * 1024]);
    assert_eq!(gone.field("WARC-Truncated"), Some("length"));

    // Over the body limit, announced: refused before its body is read.
    let too_large = find("/too-large");
    assert_eq!(payload(too_large), b"");
    assert_eq!(too_large.field("WARC-Truncated"), Some("length"));

    // The server promised 1000 bytes and closed after 400: what came, marked.
    let cut = find("/cut");
    assert_eq!(payload(cut), vec![b'x'; 400]);
    assert_eq!(cut.field("WARC-Truncated"), Some("disconnect"));
    assert_eq!(a.truncated, 3, "{a:?}");

    let moved = find("/moved");
    assert!(head_of(moved).starts_with("HTTP/1.1 302 Found\r\n"));
    assert!(head_of(moved).contains("Location: /gz\r\n"));
    assert_eq!(payload(moved), b"see /gz");

    let robots = find("/robots.txt");
    assert!(head_of(robots).starts_with("HTTP/1.1 404 Not Found\r\n"));

    // Every request as written: awc's request line first, the host with its port.
    for r in records.iter().filter(|r| r.kind() == "request") {
        let h = head_of(r);
        let url = r.field("WARC-Target-URI").unwrap();
        let path = url.strip_prefix(&server.base).unwrap();
        assert!(h.starts_with(&format!("GET {path} HTTP/1.1\r\n")), "{h}");
        assert!(
            h.to_ascii_lowercase().contains("\r\nhost: 127.0.0.1:"),
            "{h}"
        );
    }
    assert_eq!(summary.downloaded, 4, "{summary:?}");
    warcio_check(&a.files[0]);
}

#[test]
fn an_archive_that_cannot_be_opened_stops_the_crawl_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let spec = CrawlSpec::builder()
        .seed("http://127.0.0.1:9/")
        .warc(WarcOptions::new(blocker.join("archive"), "x"))
        .build()
        .unwrap();
    let result = actix_rt::System::new().block_on(
        Crawler::new(Config::builder().build().unwrap(), Nowhere)
            .crawl(spec, std::future::pending()),
    );
    let err = result.expect_err("no crawl");
    assert!(err.to_string().starts_with("web archive: "), "{err}");
}
