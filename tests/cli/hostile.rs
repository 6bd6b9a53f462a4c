//! Every crawl ends: `flags crawl` against servers that fail for ever, each started by the test on
//! 127.0.0.1 port 0 and logging every request (path, start, end, status). Each test checks that
//! the crawl ends, that its counts add up, and that the request log shows the documented schedule:
//! how many robots.txt requests, how many redirect hops, pauses that grow.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};

use super::crawl::{json_lines, summary};
use super::{closed_port, flags, stderr};
use crate::common::TestServer;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub start: Instant,
    pub status: u16,
}

type Handler = dyn Fn(&str, usize) -> Answer + Send + Sync;

/// What the scripted server answers.
pub enum Answer {
    /// Status, headers, body.
    Plain(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Never answers (until the client gives up).
    Stall,
}

/// An HTML page linking to `links`.
pub fn page(links: &[&str]) -> Answer {
    let body: String = links
        .iter()
        .map(|l| format!("<a href=\"{l}\">{l}</a>\n"))
        .collect();
    Answer::Plain(
        200,
        vec![("content-type", "text/html".into())],
        format!("<html><body>{body}</body></html>").into_bytes(),
    )
}

pub fn status(code: u16) -> Answer {
    Answer::Plain(code, Vec::new(), b"no".to_vec())
}

pub fn redirect(to: String) -> Answer {
    Answer::Plain(302, vec![("location", to)], Vec::new())
}

/// A server whose answers a function picks (from the path, query included, and how many times
/// that path was asked for before), logging every request.
pub struct Scripted {
    _server: TestServer,
    pub base: String,
    log: Arc<Mutex<Vec<Hit>>>,
}

impl Scripted {
    pub fn start(answer: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Scripted {
        let log: Arc<Mutex<Vec<Hit>>> = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Handler> = Arc::new(answer);
        let shared = Arc::clone(&log);
        let server = TestServer::start(move |cfg| {
            let log = Arc::clone(&shared);
            let answer = Arc::clone(&answer);
            cfg.default_service(web::to(move |req: HttpRequest| {
                let log = Arc::clone(&log);
                let answer = Arc::clone(&answer);
                async move {
                    let start = Instant::now();
                    let path = match req.query_string() {
                        "" => req.path().to_string(),
                        q => format!("{}?{q}", req.path()),
                    };
                    let seen = {
                        let log = log.lock().unwrap();
                        log.iter().filter(|h| h.path == path).count()
                    };
                    let (code, headers, body) = match answer(&path, seen) {
                        Answer::Plain(code, headers, body) => (code, headers, body),
                        Answer::Stall => {
                            log.lock().unwrap().push(Hit {
                                path,
                                start,
                                status: 0,
                            });
                            actix_web::rt::time::sleep(Duration::from_secs(60)).await;
                            return HttpResponse::GatewayTimeout().finish();
                        }
                    };
                    let mut resp =
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap());
                    for (name, value) in headers {
                        resp.insert_header((name, value));
                    }
                    log.lock().unwrap().push(Hit {
                        path,
                        start,
                        status: code,
                    });
                    resp.body(body)
                }
            }));
        });
        let base = server.base.clone();
        Scripted {
            _server: server,
            base,
            log,
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.log.lock().unwrap().clone()
    }

    /// Requests of paths starting with `prefix`.
    pub fn hits_of(&self, prefix: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path.starts_with(prefix))
            .collect()
    }
}

/// `flags crawl URL --json -d DIR EXTRA...`, run to its end.
pub fn crawl(url: &str, extra: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", url, "--json", "-d"])
        .arg(dest.path())
        .args(extra)
        .output()
        .unwrap();
    (out, dest)
}

/// The counts add up, and the job lines agree with the summary.
pub fn assert_adds_up(out: &std::process::Output) -> serde_json::Value {
    let lines = json_lines(out);
    let s = summary(&lines).clone();
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(
        n("pages"),
        n("downloaded")
            + n("not_found")
            + n("redirected")
            + n("errors")
            + n("skipped")
            + n("cancelled"),
        "{s}"
    );
    let jobs = lines.iter().filter(|l| l["type"] == "job").count() as u64;
    assert_eq!(jobs, n("pages") - n("cancelled"), "{s}");
    s
}

/// The error kinds of the job lines that failed.
fn error_kinds(out: &std::process::Output) -> Vec<String> {
    json_lines(out)
        .iter()
        .filter(|l| l["type"] == "job" && l["outcome"] == "error")
        .map(|l| l["error_kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The gaps between consecutive starts.
fn gaps(hits: &[Hit]) -> Vec<Duration> {
    hits.windows(2).map(|w| w[1].start - w[0].start).collect()
}

/// When each incident of a host began: the requests in a burst start within 50 ms of each other,
/// a pause separates one burst from the next.
pub fn incident_starts(hits: &[Hit]) -> Vec<Instant> {
    let mut starts: Vec<Instant> = Vec::new();
    for h in hits {
        if starts
            .last()
            .is_none_or(|s| h.start - *s > Duration::from_millis(50))
        {
            starts.push(h.start);
        }
    }
    starts
}

#[test]
fn a_robots_txt_that_answers_500_for_ever_gives_its_host_up_after_growing_pauses() {
    let server = Scripted::start(|path, _| match path {
        "/robots.txt" => status(500),
        _ => page(&["/a", "/b"]),
    });
    let (out, _dest) = crawl(
        &server.base,
        &["--pause", "0.1", "--pause-max", "1", "--give-up-after", "4"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let robots = server.hits_of("/robots.txt");
    assert_eq!(robots.len(), 4, "one request per failure, then given up");
    assert!(robots.iter().all(|h| h.status == 500));
    // Asked again after 0.1, 0.2, 0.4 s: the pause doubles (up to 25 % jitter).
    for (gap, pause) in gaps(&robots).iter().zip([100, 200, 400]) {
        assert!(*gap >= Duration::from_millis(pause), "{gap:?} < {pause} ms");
    }
    assert_eq!(
        server.hits().len(),
        4,
        "no page is fetched without robots.txt"
    );
    let s = assert_adds_up(&out);
    assert_eq!(
        (s["errors"].as_u64(), s["downloaded"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(error_kinds(&out), ["gave_up"]);
}

#[test]
fn a_robots_txt_that_never_answers_is_given_up_too() {
    let server = Scripted::start(|path, _| match path {
        "/robots.txt" => Answer::Stall,
        _ => page(&[]),
    });
    let (out, _dest) = crawl(
        &server.base,
        &[
            "--timeout",
            "0.3",
            "--pause",
            "0.05",
            "--give-up-after",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(server.hits_of("/robots.txt").len(), 3);
    assert_eq!(server.hits().len(), 3);
    assert_eq!(error_kinds(&out), ["gave_up"]);
}

#[test]
fn a_robots_txt_over_500_kib_is_read_to_500_kib() {
    let mut robots = b"User-agent: *\nDisallow: /a\n".to_vec();
    robots.resize(500 * 1024, b'#');
    robots.extend_from_slice(b"\nDisallow: /b\n");
    let server = Scripted::start(move |path, _| match path {
        "/robots.txt" => Answer::Plain(200, Vec::new(), robots.clone()),
        "/" => page(&["/a", "/b", "/c"]),
        _ => page(&[]),
    });
    let (out, _dest) = crawl(&server.base, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(server.hits_of("/robots.txt").len(), 1);
    let paths: Vec<String> = server.hits().into_iter().map(|h| h.path).collect();
    assert!(!paths.contains(&"/a".to_string()), "{paths:?}");
    assert!(paths.contains(&"/b".to_string()), "past 500 KiB: {paths:?}");
    assert!(paths.contains(&"/c".to_string()), "{paths:?}");
    assert_eq!(assert_adds_up(&out)["blocked"], 1);
}

#[test]
fn a_robots_txt_that_redirects_in_a_loop_is_unavailable_so_everything_is_allowed() {
    let server = Scripted::start(|path, _| {
        if let Some(n) = path.strip_prefix("/robots.txt") {
            let next: u32 = n.trim_start_matches("?r=").parse().unwrap_or(0) + 1;
            return redirect(format!("/robots.txt?r={next}"));
        }
        match path {
            "/" => page(&["/private/x"]),
            _ => page(&[]),
        }
    });
    let (out, _dest) = crawl(&server.base, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The first request and five redirects followed (RFC 9309: at least five), then no more.
    assert_eq!(server.hits_of("/robots.txt").len(), 6);
    assert_eq!(server.hits_of("/private/x").len(), 1);
    assert_eq!(assert_adds_up(&out)["downloaded"], 2);
}

#[test]
fn a_start_host_that_refuses_connections_ends_with_its_urls_as_errors() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let (out, dest) = crawl(&url, &["--pause", "0.05", "--give-up-after", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = assert_adds_up(&out);
    assert_eq!(
        (s["pages"].as_u64(), s["errors"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(error_kinds(&out), ["gave_up"]);
    assert_eq!(super::crawl::files(dest.path()), Vec::<String>::new());

    // Without robots.txt, the page itself is what fails: tried --retries + 1 times at most.
    let (out, _dest) = crawl(
        &url,
        &["--ignore-robots", "--pause", "0.05", "--retries", "2"],
    );
    assert_eq!(out.status.code(), Some(1));
    let s = assert_adds_up(&out);
    assert_eq!(s["errors"], 1);
    let job = json_lines(&out)
        .into_iter()
        .find(|l| l["type"] == "job")
        .unwrap();
    assert_eq!(job["attempts"], 3, "{job}");
    assert_eq!(job["error_kind"], "connect", "{job}");
}

#[test]
fn an_endless_redirect_chain_is_cut_after_max_redirects_hops() {
    let server = Scripted::start(|path, _| match path.strip_prefix("/r/") {
        Some(n) => redirect(format!("/r/{}", n.parse::<u32>().unwrap_or(0) + 1)),
        None => status(404),
    });
    let url = format!("{}/r/0", server.base);
    let (out, _dest) = crawl(&url, &["--max-redirects", "5", "--max-depth", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // /r/0 → … → /r/5: five hops followed, the sixth refused.
    assert_eq!(server.hits_of("/r/").len(), 6);
    let s = assert_adds_up(&out);
    assert_eq!(
        (s["redirected"].as_u64(), s["errors"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(error_kinds(&out), ["redirect"]);
}

#[test]
fn pages_that_answer_503_for_ever_end_and_their_host_is_given_up() {
    let server = Scripted::start(|path, _| match path {
        "/robots.txt" => status(404),
        "/" => page(&["/p/1", "/p/2", "/p/3", "/p/4", "/p/5"]),
        _ => status(503),
    });
    let (out, _dest) = crawl(
        &server.base,
        &[
            "--pause",
            "0.1",
            "--pause-max",
            "0.4",
            "--give-up-after",
            "3",
            "--retries",
            "5",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = assert_adds_up(&out);
    assert_eq!(
        (s["errors"].as_u64(), s["downloaded"].as_u64()),
        (Some(5), Some(1))
    );
    // Three incidents of at most --per-host (2) requests each, then no request to the host.
    let pages = server.hits_of("/p/");
    assert!(pages.len() <= 3 * 2, "{} requests", pages.len());
    // Each incident starts after a pause that doubles: 0.1 s, then 0.2 s.
    let starts = incident_starts(&pages);
    assert_eq!(starts.len(), 3, "{pages:?}");
    assert!(starts[1] - starts[0] >= Duration::from_millis(100));
    assert!(starts[2] - starts[1] >= Duration::from_millis(200));
    let kinds = error_kinds(&out);
    assert_eq!(
        kinds.iter().filter(|k| *k == "gave_up").count(),
        3,
        "{kinds:?}"
    );
}

#[test]
fn a_retry_after_of_a_day_is_cut_to_pause_max() {
    let server = Scripted::start(|path, n| match path {
        "/robots.txt" => status(404),
        "/" => page(&["/slow"]),
        "/slow" if n == 0 => Answer::Plain(
            429,
            vec![("retry-after", "86400".into())],
            b"later".to_vec(),
        ),
        _ => page(&[]),
    });
    let (out, _dest) = crawl(&server.base, &["--pause", "0.1", "--pause-max", "0.5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let slow = server.hits_of("/slow");
    assert_eq!(slow.len(), 2);
    assert!(slow[1].start - slow[0].start >= Duration::from_millis(500));
    assert_eq!(assert_adds_up(&out)["downloaded"], 2);
}

#[test]
fn robots_txt_compares_unreserved_escapes_decoded() {
    let server = Scripted::start(|path, _| match path {
        "/robots.txt" => Answer::Plain(
            200,
            Vec::new(),
            b"User-agent: *\nDisallow: /~tilde/\nDisallow: /%7Ebob/\n".to_vec(),
        ),
        "/" => page(&["/%7Etilde/x", "/~tilde/y", "/%7etilde/z", "/~bob/q", "/ok"]),
        _ => page(&[]),
    });
    let (out, _dest) = crawl(&server.base, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let paths: Vec<String> = server.hits().into_iter().map(|h| h.path).collect();
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("tilde") && !p.contains("bob")),
        "{paths:?}"
    );
    assert!(paths.contains(&"/ok".to_string()));
    assert_eq!(assert_adds_up(&out)["blocked"], 4);
}
