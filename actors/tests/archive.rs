//! The web archive against the tools that will read it: our own reader, and, when installed,
//! warcio (`warcio check`, `warcio index`, `warcio extract`) and pywb (replay of a page from a
//! collection, through pywb's own index and through ours).
//!
//! `pip install warcio pywb` puts both on PATH (`.ci/run` installs them in a virtualenv and names
//! its `bin` in `FLAGS_ARCHIVE_TOOLS`); without them those parts print `SKIPPED: …` and pass. Run: `cargo test -p flags-actors --test archive -- --nocapture`.

use std::fs;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use flags_actors::archive::{cdxj, read, Exchange, WarcOptions, WarcWriter, Written};

mod common;
use common::archive_tools::{noise, tool, warcio_check};

/// One exchange of the sample crawl.
struct Sample {
    url: &'static str,
    head: Vec<u8>,
    body: Vec<u8>,
    /// The payload as `warcio extract --payload` gives it (content coding removed).
    decoded: Vec<u8>,
}

fn request_for(url: &str) -> Vec<u8> {
    let path = url.splitn(4, '/').nth(3).unwrap_or("");
    let host = url.split('/').nth(2).unwrap_or("");
    format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: flags/test\r\nAccept-Encoding: gzip\r\n\r\n")
        .into_bytes()
}

fn samples() -> Vec<Sample> {
    let page =
        b"<!doctype html><title>Home</title><h1>Hello, archive</h1><a href=\"/a\">a</a>".to_vec();
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b"body sent gzip-encoded").unwrap();
        e.finish().unwrap()
    };
    let simple = |url, head: &str, body: Vec<u8>| Sample {
        url,
        head: head.as_bytes().to_vec(),
        decoded: body.clone(),
        body,
    };
    vec![
        simple(
            "http://example.com/",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n",
            page,
        ),
        simple(
            "http://example.com/missing",
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n",
            b"not found".to_vec(),
        ),
        simple(
            "http://example.com/old",
            "HTTP/1.1 301 Moved Permanently\r\nLocation: http://example.com/\r\nContent-Length: 0\r\n\r\n",
            Vec::new(),
        ),
        simple(
            "http://example.com/flag.gif",
            "HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: 4096\r\n\r\n",
            binary,
        ),
        simple(
            "http://example.com/busy",
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n\r\n",
            b"try later".to_vec(),
        ),
        simple(
            "http://example.com/robots.txt",
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
            b"User-agent: *\nDisallow:\nSitemap: http://example.com/sitemap.xml\n".to_vec(),
        ),
        Sample {
            url: "http://example.com/gz?b=2&a=1",
            head: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n\r\n"
                .to_vec(),
            body: gz,
            decoded: b"body sent gzip-encoded".to_vec(),
        },
    ]
}

const BIG: usize = 8 * 1024 * 1024;
const BIG_URL: &str = "http://example.com/big.bin";

/// Writes the samples, then a large body streamed from a spool file.
fn write_all(writer: &mut WarcWriter) -> Vec<(String, Vec<u8>, Vec<u8>, Written)> {
    let when = SystemTime::now();
    let mut out = Vec::new();
    for s in samples() {
        let request = request_for(s.url);
        let ex = Exchange {
            url: s.url,
            date: when,
            ip: Some(Ipv4Addr::new(93, 184, 215, 14).into()),
            request: &request,
            response_head: &s.head,
            truncated: None,
        };
        let written = writer
            .write_exchange(&ex, &mut Cursor::new(&s.body))
            .unwrap();
        out.push((s.url.to_string(), s.body, s.decoded, written));
    }
    let mut spool = tempfile::tempfile().unwrap();
    let big = noise(BIG);
    spool.write_all(&big).unwrap();
    spool.seek(SeekFrom::Start(0)).unwrap();
    let request = request_for(BIG_URL);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BIG}\r\n\r\n"
    );
    let ex = Exchange {
        url: BIG_URL,
        date: when,
        ip: None,
        request: &request,
        response_head: head.as_bytes(),
        truncated: None,
    };
    let written = writer.write_exchange(&ex, &mut spool).unwrap();
    out.push((BIG_URL.to_string(), big.clone(), big, written));
    out
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn every_response_reads_back_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WarcOptions::new(dir.path(), "crawl-w0").info("robots", "obey");
    let mut writer = WarcWriter::create(opts).unwrap();
    let written = write_all(&mut writer);
    let closed = writer.finish().unwrap();
    assert_eq!(closed.len(), 1);
    assert!(files(dir.path(), ".open").is_empty());
    let warc = &closed[0];
    let name = warc.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("crawl-w0-") && name.ends_with("-00000.warc.gz"),
        "{name}"
    );

    let records: Vec<read::Record> = read::open(warc)
        .unwrap()
        .with_payloads(true)
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), 1 + 2 * written.len());
    let info = &records[0];
    assert_eq!(info.kind(), "warcinfo");
    let info_block = String::from_utf8(info.payload.clone().unwrap()).unwrap();
    assert!(info_block.starts_with("software: flags/"), "{info_block}");
    assert!(info_block.contains("format: WARC File Format 1.1\r\n"));
    assert!(info_block.contains("robots: obey\r\n"));
    assert_eq!(info.field("WARC-Filename"), Some(name.as_str()));

    for (i, (url, body, _, w)) in written.iter().enumerate() {
        let req = &records[1 + 2 * i];
        let resp = &records[2 + 2 * i];
        assert_eq!((req.kind(), resp.kind()), ("request", "response"));
        assert_eq!(req.field("WARC-Target-URI"), Some(url.as_str()));
        assert_eq!(resp.field("WARC-Target-URI"), Some(url.as_str()));
        assert_eq!(resp.field("WARC-Record-ID"), Some(w.response_id.as_str()));
        assert_eq!(
            req.field("WARC-Concurrent-To"),
            Some(w.response_id.as_str())
        );
        assert_eq!(
            resp.field("WARC-Concurrent-To"),
            req.field("WARC-Record-ID")
        );
        assert_eq!(resp.field("WARC-Warcinfo-ID"), info.field("WARC-Record-ID"));
        assert_eq!(
            resp.field("Content-Type"),
            Some("application/http;msgtype=response")
        );
        assert_eq!(resp.payload.as_ref(), Some(body), "{url}");
        assert_eq!(req.http_head.as_deref(), Some(&request_for(url)[..]));
        assert_eq!(req.payload.as_deref(), Some(&b""[..]), "a GET has no body");
        assert_eq!(
            resp.field("WARC-Payload-Digest"),
            Some(w.payload_digest.as_str())
        );
        assert_eq!(
            (resp.offset, resp.length),
            (w.response.offset, w.response.length)
        );
        assert_eq!(
            (req.offset, req.length),
            (w.request.offset, w.request.length)
        );
    }
    // The chunked page's head lost its Transfer-Encoding, nothing else.
    let head = String::from_utf8(records[2].http_head.clone().unwrap()).unwrap();
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    );
    assert_eq!(records[2].field("WARC-IP-Address"), Some("93.184.215.14"));

    // The index: one sorted line per response, pointing at its record.
    let index = dir.path().join(format!("{name}.cdxj"));
    let text = fs::read_to_string(&index).unwrap();
    let lines: Vec<cdxj::Line> = cdxj::read(text.as_bytes()).map(|l| l.unwrap()).collect();
    assert_eq!(lines.len(), written.len());
    let mut sorted: Vec<String> = text.lines().map(str::to_string).collect();
    sorted.sort();
    assert_eq!(text.lines().collect::<Vec<_>>(), sorted);
    for (url, _, _, w) in &written {
        let line = lines.iter().find(|l| &l.url == url).unwrap();
        assert_eq!(line, &w.line);
        assert_eq!(line.offset, Some(w.response.offset));
        assert_eq!(line.filename.as_deref(), Some(name.as_str()));
    }
    let missing = lines.iter().find(|l| l.url.ends_with("/missing")).unwrap();
    assert_eq!(
        (missing.status, missing.mime.as_deref()),
        (Some(404), Some("text/html"))
    );
    let moved = lines.iter().find(|l| l.url.ends_with("/old")).unwrap();
    assert_eq!(
        (moved.status, moved.mime.as_deref()),
        (Some(301), Some("unk"))
    );
    let gz = lines.iter().find(|l| l.url.contains("/gz?")).unwrap();
    assert_eq!(gz.urlkey, "com,example)/gz?a=1&b=2");

    warcio_accepts(warc, &written);
}

/// `warcio check` and `warcio index` accept the file, and `warcio extract --payload` gives back
/// every body.
fn warcio_accepts(warc: &Path, written: &[(String, Vec<u8>, Vec<u8>, Written)]) {
    let Some(warcio) = tool("warcio") else {
        println!("SKIPPED: warcio is not on PATH (pip install warcio)");
        return;
    };
    let check = Command::new(&warcio)
        .args(["check", "-v"])
        .arg(warc)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    println!("warcio check -v:\n{report}");
    assert!(check.status.success(), "warcio check failed: {report}");
    assert!(!report.contains("failed"), "{report}");
    assert_eq!(
        report.matches("digest pass").count(),
        1 + 2 * written.len(),
        "every record's digests checked: {report}"
    );

    let index = Command::new(&warcio)
        .args([
            "index",
            "-f",
            "warc-type,warc-target-uri,http:status,offset,length",
        ])
        .arg(warc)
        .output()
        .unwrap();
    assert!(index.status.success());
    let index = String::from_utf8_lossy(&index.stdout);
    assert_eq!(index.lines().count(), 1 + 2 * written.len(), "{index}");
    for (url, _, _, w) in written {
        let want = format!(
            "{{\"warc-type\": \"response\", \"warc-target-uri\": \"{url}\", \"http:status\": \"{}\", \"offset\": \"{}\", \"length\": \"{}\"}}",
            w.line.status.unwrap(),
            w.response.offset,
            w.response.length
        );
        assert!(index.lines().any(|l| l == want), "{want}\nnot in\n{index}");
    }

    for (url, _, decoded, w) in written {
        let out = Command::new(&warcio)
            .args(["extract", "--payload"])
            .arg(warc)
            .arg(w.response.offset.to_string())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(&out.stdout == decoded, "warcio's payload of {url} differs");
    }
}

#[test]
fn files_rotate_and_a_restart_never_touches_a_closed_file() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        WarcOptions::new(dir.path(), "w1")
            .max_size(2_000)
            .gzip_level(1)
    };
    let mut writer = WarcWriter::create(opts()).unwrap();
    let body = noise(1_500);
    let request = request_for("http://example.com/x");
    for i in 0..5 {
        let url = format!("http://example.com/{i}");
        let ex = Exchange {
            url: &url,
            date: SystemTime::now(),
            ip: None,
            request: &request,
            response_head: b"HTTP/1.1 200 OK\r\n\r\n",
            truncated: None,
        };
        writer.write_exchange(&ex, &mut Cursor::new(&body)).unwrap();
    }
    let first = writer.finish().unwrap();
    assert!(first.len() >= 3, "rotated: {first:?}");
    let before: Vec<(PathBuf, Vec<u8>)> = first
        .iter()
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect();
    for (path, _) in &before {
        let records: Vec<_> = read::open(path).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(
            records[0].kind(),
            "warcinfo",
            "{path:?} starts with warcinfo"
        );
        assert!(records.len() >= 3);
    }

    // A resumed crawl: the same prefix, a new file, the old ones unchanged.
    let mut again = WarcWriter::create(opts()).unwrap();
    let ex = Exchange {
        url: "http://example.com/again",
        date: SystemTime::now(),
        ip: None,
        request: &request,
        response_head: b"HTTP/1.1 200 OK\r\n\r\n",
        truncated: None,
    };
    again.write_exchange(&ex, &mut Cursor::new(b"x")).unwrap();
    let second = again.finish().unwrap();
    assert_eq!(second.len(), 1);
    assert!(!first.contains(&second[0]));
    for (path, bytes) in &before {
        assert_eq!(&fs::read(path).unwrap(), bytes, "{path:?} untouched");
    }
    assert_eq!(files(dir.path(), ".warc.gz").len(), first.len() + 1);
    assert_eq!(files(dir.path(), ".cdxj").len(), first.len() + 1);
}

#[test]
fn a_killed_writer_leaves_only_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = WarcWriter::create(WarcOptions::new(dir.path(), "k")).unwrap();
    let written = write_all(&mut writer);
    // kill -9: no Drop, no close; the file keeps its `.open` name. Then a torn last member.
    std::mem::forget(writer);
    let open = files(dir.path(), ".open");
    assert_eq!(open.len(), 1);
    {
        let mut f = fs::OpenOptions::new().append(true).open(&open[0]).unwrap();
        let member = &fs::read(&open[0]).unwrap()[written[0].3.response.offset as usize..];
        f.write_all(&member[..member.len().min(100)]).unwrap();
    }
    // A file whose very first member is torn is removed.
    let empty = dir.path().join("k-20240101000000-00009.warc.gz.open");
    fs::write(&empty, [0x1f, 0x8b, 8, 0]).unwrap();
    // Another writer's open file is not ours to touch.
    let other = dir.path().join("other-20240101000000-00000.warc.gz.open");
    fs::write(&other, b"busy").unwrap();

    // A writer thread of this worker that a restart will not create again.
    let thread = dir.path().join("k-t3-20240101000000-00000.warc.gz.open");
    fs::copy(&open[0], &thread).unwrap();

    let done = flags_actors::archive::recover(dir.path(), "k", true).unwrap();
    assert_eq!(done.len(), 2, "{done:?}");
    let kept = done.iter().find(|r| !r.removed).unwrap();
    assert_eq!(kept.records, 1 + 2 * written.len() as u64);
    assert_eq!(kept.cut, 100);
    assert!(done.iter().any(|r| r.removed && r.records == 0));
    assert!(!empty.exists());
    assert!(other.exists());
    let records: Vec<_> = read::open(&kept.path)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(records.len() as u64, kept.records);
    let index = fs::read_to_string(format!("{}.cdxj", kept.path.display())).unwrap();
    assert_eq!(index.lines().count(), written.len());
    warcio_check(&kept.path);

    assert!(thread.exists(), "not the writer `k`'s file");
    let worker = flags_actors::archive::recover_worker(dir.path(), "k", true).unwrap();
    assert_eq!(worker.len(), 1, "{worker:?}");
    assert_eq!(worker[0].records, kept.records);
    assert!(!thread.exists() && other.exists());
}

#[test]
fn a_body_that_fails_leaves_no_trace() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("spool file lost"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }
    impl Seek for Failing {
        fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
            Ok(0)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut writer = WarcWriter::create(WarcOptions::new(dir.path(), "f")).unwrap();
    let request = request_for("http://example.com/");
    let ex = |url| Exchange {
        url,
        date: SystemTime::now(),
        ip: None,
        request: &request,
        response_head: b"HTTP/1.1 200 OK\r\n\r\n",
        truncated: None,
    };
    writer
        .write_exchange(&ex("http://example.com/1"), &mut Cursor::new(b"one"))
        .unwrap();
    // Fails in the digest pass: nothing written.
    assert!(writer
        .write_exchange(&ex("http://example.com/2"), &mut Failing(10))
        .is_err());
    // Reads fine for the digest, then the body is shorter the second time: cut back.
    let mut shrinking = Cursor::new(vec![b'y'; 100_000]);
    struct Shrink<'a>(&'a mut Cursor<Vec<u8>>, bool);
    impl Read for Shrink<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Seek for Shrink<'_> {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            if self.1 {
                self.0.get_mut().truncate(50_000);
            }
            self.1 = true;
            self.0.seek(pos)
        }
    }
    assert!(writer
        .write_exchange(
            &ex("http://example.com/3"),
            &mut Shrink(&mut shrinking, false)
        )
        .is_err());
    writer
        .write_exchange(&ex("http://example.com/4"), &mut Cursor::new(b"four"))
        .unwrap();
    let closed = writer.finish().unwrap();
    let urls: Vec<String> = read::open(&closed[0])
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.kind() == "response")
        .map(|r| r.field("WARC-Target-URI").unwrap().to_string())
        .collect();
    assert_eq!(urls, ["http://example.com/1", "http://example.com/4"]);
    warcio_check(&closed[0]);
}

/// pywb replays the archived page byte for byte, from the collection `wb-manager add` indexed
/// and from one that uses our CDXJ index as it is.
#[test]
fn pywb_replays_the_archive() {
    let (Some(manager), Some(wayback)) = (tool("wb-manager"), tool("wayback")) else {
        println!("SKIPPED: pywb is not on PATH (pip install pywb)");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("out");
    let mut writer = WarcWriter::create(WarcOptions::new(&archive, "replay")).unwrap();
    let written = write_all(&mut writer);
    let warc = writer.finish().unwrap().remove(0);
    let name = warc.file_name().unwrap().to_string_lossy().to_string();

    let run = |args: &[&str]| {
        let out = Command::new(&manager)
            .args(args)
            .current_dir(root.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "wb-manager {args:?}: {out:?}");
    };
    // Their index: wb-manager copies the file in and indexes it itself.
    run(&["init", "theirs"]);
    run(&["add", "theirs", warc.to_str().unwrap()]);
    // Ours: the file and our .cdxj, as they are.
    run(&["init", "ours"]);
    let coll = root.path().join("collections/ours");
    fs::copy(&warc, coll.join("archive").join(&name)).unwrap();
    fs::copy(
        archive.join(format!("{name}.cdxj")),
        coll.join("indexes/index.cdxj"),
    )
    .unwrap();

    let port = free_port();
    let started = Instant::now();
    let _server = Kill(
        Command::new(&wayback)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--threads",
                "2",
            ])
            .current_dir(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ts = &written[0].3.line.timestamp;
    for coll in ["theirs", "ours"] {
        for (url, body, _, _) in written.iter().filter(|(u, ..)| {
            u.ends_with("example.com/") || u.ends_with("flag.gif") || u.ends_with("/missing")
        }) {
            let path = format!("/{coll}/{ts}id_/{url}");
            let (status, got) = get(port, &path, started + Duration::from_secs(60));
            println!(
                "pywb {coll}: GET {path} -> {status} ({} bytes) after {:.1}s",
                got.len(),
                started.elapsed().as_secs_f64()
            );
            let want_status = if url.ends_with("/missing") { 404 } else { 200 };
            assert_eq!(status, want_status, "{path}");
            assert!(&got == body, "pywb {coll} replays {url} as archived");
        }
    }
}

/// Kills the child when dropped, so a failed assertion leaves no server behind.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET over plain HTTP/1.0, retried until the server answers or `deadline`: the status and body.
fn get(port: u16, path: &str, deadline: Instant) -> (u16, Vec<u8>) {
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
            let mut resp = Vec::new();
            if s.read_to_end(&mut resp).is_ok() && !resp.is_empty() {
                let end = resp
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|i| i + 4)
                    .unwrap_or(resp.len());
                let status = String::from_utf8_lossy(&resp[..end])
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return (status, resp[end..].to_vec());
            }
        }
        assert!(
            Instant::now() < deadline,
            "pywb did not answer {path} in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
