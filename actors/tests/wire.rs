//! The engine against servers that end connections the way real ones do, and against bodies it
//! must pass on untouched (issue: every real server). `cargo test -p flags-actors` covers these on
//! its own, without the binary.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use common::raw::{ConnServer, RawServer, Style};
use common::{body_for, every_code, TestServer};
use flags_actors::{Config, Crawler, DirSink, Event, Job, JobReport, Outcome, Summary};

/// Every third code answers, 194 in all.
fn found() -> HashSet<String> {
    every_code().into_iter().step_by(3).take(194).collect()
}

fn jobs(base: &str) -> Vec<Job> {
    every_code()
        .into_iter()
        .map(|cc| {
            let lc = cc.to_lowercase();
            Job::new(cc.clone(), format!("{base}/{lc}.gif"), format!("{cc}.gif"))
        })
        .collect()
}

fn run(config: Config, dir: &std::path::Path, jobs: Vec<Job>) -> (Vec<JobReport>, Summary) {
    let crawler = Crawler::new(config, DirSink::new(dir).unwrap()).event_capacity(100_000);
    let (rx, handle) = crawler.spawn(jobs);
    let reports = rx
        .iter()
        .filter_map(|e| match e {
            Event::Job(r) => Some(r),
            _ => None,
        })
        .collect();
    (reports, handle.join().unwrap())
}

#[test]
fn stale_connections_never_cost_a_job() {
    let found = Arc::new(found());
    for style in [Style::CloseAfterFew, Style::Http10, Style::CloseDelimited] {
        let codes = Arc::clone(&found);
        let server = ConnServer::start(style, move |path| {
            let cc = path
                .trim_start_matches('/')
                .trim_end_matches(".gif")
                .to_uppercase();
            codes.contains(&cc).then(|| body_for(&cc))
        });
        let dir = tempfile::tempdir().unwrap();
        let config = Config::builder().pool_size(20).build().unwrap();
        let (_, s) = run(config, dir.path(), jobs(&server.base));
        assert_eq!(
            (s.downloaded, s.not_found, s.errors),
            (194, 482, 0),
            "{style:?}: {s:?}"
        );
        for cc in found.iter() {
            let saved = std::fs::read(dir.path().join(format!("{cc}.gif"))).unwrap();
            assert!(saved == body_for(cc), "{style:?}: {cc}");
        }
        let (_, requests, unanswered) = server.stats.get();
        assert_eq!(requests - unanswered, 676, "{style:?}");
    }
}

/// gzip of "the BR flag, compressed" four times (mtime 0), as a server that compresses whatever
/// the client asked for would send it.
const GZIPPED: [u8; 46] = [
    31, 139, 8, 0, 0, 0, 0, 0, 2, 255, 43, 201, 72, 85, 112, 10, 82, 72, 203, 73, 76, 215, 81, 72,
    206, 207, 45, 40, 74, 45, 46, 78, 77, 41, 161, 134, 48, 0, 0, 100, 174, 110, 92, 0, 0, 0,
];

#[test]
fn compressed_bodies_are_stored_as_sent_even_with_awc_decompression_compiled_in() {
    // This test binary turns on awc's `compress-gzip` (a dev-dependency), as an embedding
    // program's dependencies may: the engine must still ask for identity and store the bytes the
    // server sent, whose length is what Content-Length counts.
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let server = TestServer::start(move |cfg| {
        let seen = Arc::clone(&seen);
        cfg.route(
            "/br.gif",
            web::get().to(move |req: HttpRequest| {
                let seen = Arc::clone(&seen);
                async move {
                    let accept = req
                        .headers()
                        .get("accept-encoding")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("(none)")
                        .to_string();
                    seen.lock().unwrap().push(accept);
                    HttpResponse::Ok()
                        .insert_header(("Content-Encoding", "gzip"))
                        .body(GZIPPED.to_vec())
                }
            }),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let job = Job::new("BR", format!("{}/br.gif", server.base), "BR.gif");
    let (_, s) = run(Config::builder().build().unwrap(), dir.path(), vec![job]);
    assert_eq!(s.downloaded, 1, "{s:?}");
    assert_eq!(std::fs::read(dir.path().join("BR.gif")).unwrap(), GZIPPED);
    assert_eq!(*asked.lock().unwrap(), ["identity"]);
}

#[test]
fn a_200_whose_body_fails_keeps_its_status() {
    let server = RawServer::start(|path, stream| {
        use std::io::Write;
        if path.contains("short") {
            common::raw::head(stream, "200 OK", &[("Content-Length", "1000")]);
            let _ = stream.write_all(&[1u8; 10]);
        } else {
            common::raw::head(stream, "200 OK", &[("Content-Length", "5000")]);
            let _ = stream.write_all(&[1u8; 5000]);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = Config::builder().max_body(1000).build().unwrap();
    let jobs = vec![
        Job::new("short", format!("{}/short", server.base), "short"),
        Job::new("large", format!("{}/large", server.base), "large"),
    ];
    let (reports, s) = run(config, dir.path(), jobs);
    assert_eq!(s.errors, 2, "{s:?}");
    for r in reports {
        assert!(matches!(r.outcome, Outcome::Error(_)), "{r:?}");
        assert_eq!(r.status, Some(200), "{r:?}");
    }
}

#[test]
fn network_faults_each_end_in_one_outcome_of_the_right_kind() {
    use flags_actors::ErrorKind;
    use std::io::Write;

    let server = RawServer::start(|path, stream| {
        let raw: &[u8] = match path {
            "/truncated" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
            "/garbage" => b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
            "/large" => b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
            "/teapot" => b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n",
            "/loop" => b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n",
            "/ftp" => {
                b"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n"
            }
            "/stall" => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
                std::thread::sleep(std::time::Duration::from_secs(3));
                return;
            }
            "/reset" => return common::raw::reset(stream.try_clone().unwrap()),
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        };
        let _ = stream.write_all(raw);
        if path == "/large" {
            let _ = stream.write_all(&[0u8; 5000]);
        }
    });
    let closed = format!("http://127.0.0.1:{}/x", common::closed_port());
    let cases = [
        (
            "truncated",
            format!("{}/truncated", server.base),
            ErrorKind::Truncated,
        ),
        (
            "garbage",
            format!("{}/garbage", server.base),
            ErrorKind::Protocol,
        ),
        (
            "large",
            format!("{}/large", server.base),
            ErrorKind::TooLarge,
        ),
        (
            "teapot",
            format!("{}/teapot", server.base),
            ErrorKind::Status,
        ),
        ("loop", format!("{}/loop", server.base), ErrorKind::Redirect),
        ("ftp", format!("{}/ftp", server.base), ErrorKind::Redirect),
        (
            "stall",
            format!("{}/stall", server.base),
            ErrorKind::Timeout,
        ),
        (
            "reset",
            format!("{}/reset", server.base),
            ErrorKind::Connect,
        ),
        ("closed", closed, ErrorKind::Connect),
        (
            "not-a-url",
            "ftp://127.0.0.1/file".to_string(),
            ErrorKind::InvalidUrl,
        ),
    ];
    let jobs = cases
        .iter()
        .map(|(key, url, _)| Job::new(*key, url.clone(), *key))
        .collect();
    let config = Config::builder()
        .pool_size(4)
        .max_body(1000)
        .timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (reports, s) = run(config, dir.path(), jobs);
    assert_eq!(
        (s.jobs, s.errors),
        (cases.len() as u64, cases.len() as u64),
        "{s:?}"
    );
    for (key, _, kind) in &cases {
        let r = reports.iter().find(|r| r.job.key == *key).unwrap();
        match &r.outcome {
            Outcome::Error(e) => assert_eq!(e.kind, *kind, "{key}: {e}"),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file from a fault"
    );
}
