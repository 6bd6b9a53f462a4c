//! `flags crawl --warc`: every exchange of a crawl of the built-in site recorded in WARC files,
//! checked against what the server served (byte for byte), against the server's own log (every
//! request it answered is in the archive, once), by warcio (`check`, `index`) and by pywb
//! (replaying pages from a collection). Also: rotation at `--warc-max-size`, `--resume` after
//! `--max-pages` and after `kill -9` (new files; closed ones untouched; a killed run's open file
//! finished), https (heads rebuilt from what awc parsed, over HTTP/2), and workers sharing a
//! crawl through Redis (a file per worker).
//!
//! warcio and pywb come from `.ci/run` (`FLAGS_ARCHIVE_TOOLS`) or PATH; without them those checks
//! print `SKIPPED: …`. Run: `cargo test --test tests warc -- --nocapture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flags::site::{Answer, Site};
use flags_actors::archive::read;

use super::crawl::{is_meta, json_lines, summary, Quirks, SiteServer};
use super::redis::Redis;
use super::{flags, stderr, stdout};
use crate::common::archive_tools::{warcio_check, warcio_index, Pywb};

/// The closed WARC files of a folder, sorted (by name: timestamp, then serial).
fn warcs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(".warc.gz"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// One exchange read back: the response record's target, status, head and payload.
#[derive(Debug, Clone)]
struct Recorded {
    url: String,
    status: u16,
    head: String,
    payload: Vec<u8>,
    request: String,
    truncated: Option<String>,
}

/// The exchanges of the files, in order; checks each file's framing on the way: a warcinfo
/// first, then request/response pairs that point at each other.
fn exchanges(files: &[PathBuf]) -> Vec<Recorded> {
    let mut out = Vec::new();
    for file in files {
        let records: Vec<read::Record> = read::open(file)
            .unwrap()
            .with_payloads(true)
            .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", file.display())))
            .collect();
        assert_eq!(records[0].kind(), "warcinfo", "{}", file.display());
        let info = String::from_utf8_lossy(records[0].payload.as_deref().unwrap()).into_owned();
        assert!(info.starts_with("software: flags/"), "{info}");
        assert!(info.contains("flags-start-urls: http"), "{info}");
        assert_eq!(records.len() % 2, 1, "pairs after the warcinfo");
        for pair in records[1..].chunks(2) {
            let (req, resp) = (&pair[0], &pair[1]);
            assert_eq!((req.kind(), resp.kind()), ("request", "response"));
            assert_eq!(
                req.field("WARC-Concurrent-To"),
                resp.field("WARC-Record-ID")
            );
            assert_eq!(req.field("WARC-Target-URI"), resp.field("WARC-Target-URI"));
            assert!(resp.field("WARC-Payload-Digest").is_some());
            assert!(resp.field("WARC-Block-Digest").is_some());
            let head = String::from_utf8(resp.http_head.clone().unwrap()).unwrap();
            let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
            out.push(Recorded {
                url: resp.field("WARC-Target-URI").unwrap().to_string(),
                status,
                head,
                payload: resp.payload.clone().unwrap(),
                request: String::from_utf8(req.http_head.clone().unwrap()).unwrap(),
                truncated: resp.field("WARC-Truncated").map(str::to_string),
            });
        }
    }
    out
}

/// What the built-in site serves at `path` (its query included): status and body, as
/// `flags::server::site_response` sends them.
fn served(site: &Site, path: &str) -> (u16, Vec<u8>) {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    match site.answer(path, query) {
        Answer::Page(html) => (200, html.into_bytes()),
        Answer::Robots => (200, flags::site::ROBOTS_TXT.as_bytes().to_vec()),
        Answer::Redirect(_) => (301, Vec::new()),
        Answer::NotFound => (404, b"404 Not Found".to_vec()),
    }
}

/// Every exchange recorded is what the site served, byte for byte, and the archive holds each
/// request the server answered exactly as often as it answered it.
fn assert_archive_is_the_crawl(recorded: &[Recorded], site: &Site, server: &SiteServer) {
    let base = server.url("127.0.0.1");
    let base = base.trim_end_matches('/');
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in recorded {
        let path = r
            .url
            .strip_prefix(base)
            .unwrap_or_else(|| panic!("{}", r.url));
        *counts.entry(path.to_string()).or_default() += 1;
        let (status, body) = served(site, path);
        assert_eq!(r.status, status, "{}", r.url);
        assert!(
            r.payload == body,
            "{}: the payload is not what was served",
            r.url
        );
        assert!(r.truncated.is_none(), "{}", r.url);
        assert!(r.head.starts_with("HTTP/1.1 "), "{}", r.head);
        assert!(!r.head.to_ascii_lowercase().contains("transfer-encoding"));
        // Plain http: the request as written, which awc starts with its request line.
        let target = if path.is_empty() { "/" } else { path };
        assert!(
            r.request.starts_with(&format!("GET {target} HTTP/1.1\r\n")),
            "{}",
            r.request
        );
        assert!(r
            .request
            .to_ascii_lowercase()
            .contains("\r\nhost: 127.0.0.1:"));
    }
    assert_eq!(
        counts,
        server.counts(),
        "the archive and the server's log differ"
    );
}

/// warcio accepts every file, and its index lists every response of ours.
fn assert_warcio_accepts(files: &[PathBuf], recorded: &[Recorded]) {
    let mut responses = 0;
    for file in files {
        if !warcio_check(file) {
            return;
        }
        let Some(index) = warcio_index(file, "warc-type,warc-target-uri,http:status") else {
            return;
        };
        responses += index
            .iter()
            .filter(|l| l["warc-type"] == "response")
            .count();
        // Our index beside the file: one line per response.
        let cdxj = std::fs::read_to_string(format!("{}.cdxj", file.display())).unwrap();
        let here = index
            .iter()
            .filter(|l| l["warc-type"] == "response")
            .count();
        assert_eq!(cdxj.lines().count(), here, "{}", file.display());
    }
    assert_eq!(responses, recorded.len());
    println!(
        "warcio check and index accept {} file(s), {} responses",
        files.len(),
        responses
    );
}

fn crawl(url: &str, dest: &Path, warc: &Path, extra: &[&str]) -> Output {
    flags()
        .args(["crawl", url, "--json", "-d"])
        .arg(dest)
        .arg("--warc")
        .arg(warc)
        .args(extra)
        .output()
        .unwrap()
}

/// The summary's `warc` object.
fn warc_summary(out: &Output) -> serde_json::Value {
    let lines = json_lines(out);
    summary(&lines)["warc"].clone()
}

#[test]
fn every_exchange_is_recorded_as_served_and_warcio_accepts_it() {
    let pages = 400;
    let site = Site::new(pages);
    let server = SiteServer::start(pages, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let out = crawl(
        &server.url("127.0.0.1"),
        dest.path(),
        &archive.path().join("site.warc.gz"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = warcs(archive.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("site-") && name.ends_with("-00000.warc.gz"),
        "{name}"
    );
    let recorded = exchanges(&files);
    assert_archive_is_the_crawl(&recorded, &site, &server);
    // The crawl's pages, robots.txt, 404s and redirects are all there.
    for status in [200, 301, 404] {
        assert!(recorded.iter().any(|r| r.status == status), "a {status}");
    }
    assert!(recorded.iter().any(|r| r.url.ends_with("/robots.txt")));
    let s = warc_summary(&out);
    assert_eq!(s["exchanges"].as_u64(), Some(recorded.len() as u64), "{s}");
    assert_eq!(s["failed"], 0);
    assert_eq!(s["files"][0].as_str(), Some(files[0].to_str().unwrap()));
    assert_warcio_accepts(&files, &recorded);
}

#[test]
fn files_rotate_at_the_max_size() {
    let pages = 300;
    let site = Site::new(pages);
    let server = SiteServer::start(pages, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let out = crawl(
        &server.url("127.0.0.1"),
        dest.path(),
        &archive.path().join("small"),
        &["--warc-max-size", "30000"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = warcs(archive.path());
    assert!(files.len() >= 5, "rotated: {files:?}");
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with(&format!("-{i:05}.warc.gz")), "{name}");
        // A file is closed once past the size: by one exchange at most.
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len < 30_000 + 20_000, "{name}: {len} bytes");
    }
    let recorded = exchanges(&files);
    assert_archive_is_the_crawl(&recorded, &site, &server);
    assert_warcio_accepts(&files, &recorded);
}

/// The bytes of each file, by name.
fn snapshot(files: &[PathBuf]) -> BTreeMap<PathBuf, Vec<u8>> {
    files
        .iter()
        .map(|f| (f.clone(), std::fs::read(f).unwrap()))
        .collect()
}

#[test]
fn resume_adds_new_files_and_never_touches_closed_ones() {
    let pages = 400;
    let site = Site::new(pages);
    let server = SiteServer::start(pages, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let url = server.url("127.0.0.1");
    let warc = archive.path().join("site.warc.gz");
    let first = crawl(&url, dest.path(), &warc, &["--max-pages", "60"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let before = snapshot(&warcs(archive.path()));
    assert_eq!(before.len(), 1);

    let again = crawl(&url, dest.path(), &warc, &["--resume"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let files = warcs(archive.path());
    assert!(files.len() > before.len(), "a new file: {files:?}");
    for (path, bytes) in &before {
        assert!(&std::fs::read(path).unwrap() == bytes, "{path:?} changed");
    }
    // Between them, the two runs' files hold every exchange the server answered.
    let recorded = exchanges(&files);
    assert_archive_is_the_crawl(&recorded, &site, &server);
    let fetched: Vec<String> = server
        .counts()
        .into_keys()
        .filter(|p| !is_meta(p))
        .collect();
    assert!(fetched == site.reachable(None).into_keys().collect::<Vec<_>>());
    assert_warcio_accepts(&files, &recorded);
}

#[test]
fn kill_9_then_resume_finishes_the_killed_runs_file() {
    let pages = 2_000;
    let site = Site::new(pages);
    let quirks = Quirks {
        delay: Duration::from_millis(2),
        ..Quirks::default()
    };
    let server = SiteServer::start(pages, quirks);
    let dest = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let url = server.url("127.0.0.1");
    let warc = archive.path().join("site");
    let mut child = flags()
        .args(["crawl", &url, "-m", "8", "--per-host", "8", "-d"])
        .arg(dest.path())
        .arg("--warc")
        .arg(&warc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.hits().len() < 500 {
        assert!(Instant::now() < deadline, "the crawl did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: the file stays `.open`, perhaps with a torn last record
    child.wait().unwrap();
    let open: Vec<_> = std::fs::read_dir(archive.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".warc.gz.open"))
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");

    let out = crawl(&url, dest.path(), &warc, &["--resume"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files = warcs(archive.path());
    assert_eq!(
        files.len(),
        2,
        "the killed run's file, finished, and a new one"
    );
    assert!(files[0]
        .to_string_lossy()
        .ends_with(&open[0][..open[0].len() - 5]));
    let recorded = exchanges(&files);
    // Each response the server sent before the kill is in the first file unless the kill fell
    // while it was on its way: at most one per fetcher in flight, and the ones queued for the
    // archive (two per fetcher).
    let answered: usize = server.counts().values().sum();
    assert!(recorded.len() <= answered);
    assert!(
        answered - recorded.len() <= 8 * 3,
        "{} of {answered} exchanges recorded",
        recorded.len()
    );
    for r in &recorded {
        let base = url.trim_end_matches('/');
        let (status, body) = served(&site, r.url.strip_prefix(base).unwrap());
        assert_eq!(r.status, status, "{}", r.url);
        assert!(r.payload == body, "{}", r.url);
    }
    assert_warcio_accepts(&files, &recorded);
}

#[test]
fn pywb_replays_pages_from_the_archive_byte_for_byte() {
    let pages = 60;
    let site = Site::new(pages);
    let server = SiteServer::start(pages, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let url = server.url("127.0.0.1");
    let out = crawl(&url, dest.path(), &archive.path().join("site"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let Some(pywb) = Pywb::start("site", &warcs(archive.path())) else {
        return;
    };
    let base = url.trim_end_matches('/');
    for path in ["/", "/p/1.html", "/p/9.html", "/docs/", "/robots.txt"] {
        let (status, body) = pywb.get(&format!("/site/id_/{base}{path}"));
        let (want_status, want) = served(&site, path);
        assert_eq!(status, want_status, "{path}");
        assert!(body == want, "pywb replays {path} as served");
    }
    // A 404 is replayed as the 404 it was, with its body.
    let missing = site
        .reachable(None)
        .into_keys()
        .find(|p| p.starts_with("/missing/"))
        .unwrap();
    let (status, body) = pywb.get(&format!("/site/id_/{base}{missing}"));
    assert_eq!((status, body), served(&site, &missing));
    println!("pywb replayed 6 URLs byte for byte");
}

/// The HTTP versions an https test server saw.
type Versions = Arc<std::sync::Mutex<Vec<actix_web::http::Version>>>;

/// An https server of the test site (a self-signed certificate for `localhost`, trusted through
/// `--cacert`), speaking HTTP/2 to clients that offer it, as flags does: its URL, its
/// certificate, and the versions of the requests it answered.
fn https_site(pages: u32) -> (String, String, Versions) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let site = Site::new(pages);
    let versions = Versions::default();
    let seen = Arc::clone(&versions);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                let seen = Arc::clone(&seen);
                actix_web::App::new().default_service(actix_web::web::to(
                    move |req: actix_web::HttpRequest| {
                        seen.lock().unwrap().push(req.version());
                        async move {
                            flags::server::site_response(
                                &site,
                                req.path(),
                                Some(req.query_string()),
                            )
                        }
                    },
                ))
            })
            .workers(1)
            .listen_rustls_0_23(listener, config)
            .unwrap()
            .run()
            .await
        })
    });
    (format!("https://localhost:{port}/"), cert_pem, versions)
}

#[test]
fn over_https_the_heads_are_rebuilt_and_the_payloads_are_as_served() {
    let pages = 40;
    let site = Site::new(pages);
    let (url, pem, versions) = https_site(pages);
    let dest = tempfile::tempdir().unwrap();
    let cacert = dest.path().join("ca.pem");
    std::fs::write(&cacert, pem).unwrap();
    let archive = tempfile::tempdir().unwrap();
    let out = crawl(
        &url,
        &dest.path().join("pages"),
        &archive.path().join("tls"),
        &["--cacert", cacert.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let files = warcs(archive.path());
    let recorded = exchanges(&files);
    let base = url.trim_end_matches('/');
    let want = site.reachable(None);
    assert_eq!(
        recorded.len(),
        want.len() + 2,
        "the pages, robots.txt and sitemap.xml"
    );
    for r in &recorded {
        let path = r.url.strip_prefix(base).unwrap();
        let (status, body) = served(&site, path);
        assert_eq!(r.status, status, "{}", r.url);
        assert!(r.payload == body, "{}", r.url);
        // HTTP/2 on the wire, an HTTP/1.1 status line in the record (see README).
        let reason = match status {
            200 => "OK",
            301 => "Moved Permanently",
            _ => "Not Found",
        };
        assert!(
            r.head
                .starts_with(&format!("HTTP/1.1 {status} {reason}\r\n")),
            "{}",
            r.head
        );
        assert!(
            r.request.starts_with(&format!(
                "GET {} HTTP/1.1\r\nhost: localhost:",
                if path.is_empty() { "/" } else { path }
            )),
            "{}",
            r.request
        );
        assert!(
            r.request.contains("\r\nuser-agent: flags/"),
            "{}",
            r.request
        );
    }
    let versions = versions.lock().unwrap().clone();
    assert_eq!(versions.len(), recorded.len());
    assert!(
        versions
            .iter()
            .all(|v| *v == actix_web::http::Version::HTTP_2),
        "{versions:?}"
    );
    assert_warcio_accepts(&files, &recorded);
}

#[test]
fn each_worker_of_a_shared_crawl_writes_files_of_its_own() {
    let Some(redis) = Redis::start() else { return };
    let pages = 600;
    let site = Site::new(pages);
    let server = SiteServer::start(pages, Quirks::default());
    let url = server.url("127.0.0.1");
    let dest = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let workers: Vec<_> = ["w1", "w2"]
        .iter()
        .map(|name| {
            let log = dest.path().join(format!("{name}.jsonl"));
            let child = flags()
                .args(["crawl", &url, "--redis", &redis.url(), "--crawl", "arch"])
                .args(["--json", "-m", "4", "-d"])
                .arg(dest.path().join("pages"))
                .arg("--warc")
                .arg(archive.path().join("shared.warc.gz"))
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (child, log)
        })
        .collect();
    let mut by_worker = Vec::new();
    for (mut child, log) in workers {
        assert_eq!(child.wait().unwrap().code(), Some(0));
        let text = std::fs::read_to_string(log).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let files: Vec<PathBuf> = summary(&lines)["warc"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| PathBuf::from(f.as_str().unwrap()))
            .collect();
        by_worker.push(files);
    }
    // Two workers, two prefixes: `shared-{worker}-…`.
    let prefix = |files: &[PathBuf]| {
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        name.rsplitn(3, '-').nth(2).unwrap().to_string()
    };
    assert!(by_worker.iter().all(|f| !f.is_empty()), "{by_worker:?}");
    assert_ne!(prefix(&by_worker[0]), prefix(&by_worker[1]));
    assert!(prefix(&by_worker[0]).starts_with("shared-"));
    let files = warcs(archive.path());
    assert_eq!(files.len(), by_worker.iter().map(Vec::len).sum::<usize>());
    let recorded = exchanges(&files);
    assert_archive_is_the_crawl(&recorded, &site, &server);
    assert_warcio_accepts(&files, &recorded);
}

#[test]
fn with_no_files_the_archive_alone_holds_the_crawl_assets_included() {
    let server = super::Serve::start(&["--site", "30"]);
    let site = server.base.trim_end_matches("/flags").to_string();
    let dest = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let out = crawl(
        &format!("{site}/"),
        dest.path(),
        &archive.path().join("flags.warc.gz"),
        &["--requisites", "--no-files", "-m", "16", "--per-host", "16"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let saved = super::crawl::files(dest.path());
    assert!(saved.is_empty(), "nothing saved: {saved:?}");
    let files = warcs(archive.path());
    let recorded = exchanges(&files);
    for (cc, _) in flags::countries::COUNTRIES {
        let lc = cc.to_lowercase();
        let tail = format!("/flags/{lc}/{lc}.gif");
        let gifs: Vec<&Recorded> = recorded.iter().filter(|r| r.url.ends_with(&tail)).collect();
        assert_eq!(gifs.len(), 1, "{cc}: recorded once");
        assert_eq!(gifs[0].status, 200);
        assert!(
            gifs[0].payload == flags::server::flag_gif(cc),
            "{cc}: the payload is the flag server's gif"
        );
    }
    for meta in ["/robots.txt", "/sitemap.xml"] {
        assert!(recorded.iter().any(|r| r.url.ends_with(meta)), "{meta}");
    }
    assert!(recorded
        .iter()
        .any(|r| r.url.ends_with("/countries/br.html") && r.status == 200));
    assert_warcio_accepts(&files, &recorded);
}
