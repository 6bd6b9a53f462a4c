//! `flags crawl` against the built-in test site, served by an instrumented actix-web server in the
//! test that logs every request (host, path, start, end): what was fetched, how often, how many at
//! once per host, and how far apart. Misbehaviours (429s, odd robots.txt) are switched on per test.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use flags::site::Site;

use super::{flags, stdout};
use crate::common::TestServer;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub host: String,
    pub path: String,
    pub start: Instant,
    pub end: Instant,
    pub status: u16,
}

type RobotsFn = dyn Fn(&str, Duration) -> (u16, String) + Send + Sync;

/// How the server misbehaves.
#[derive(Clone, Default)]
pub struct Quirks {
    /// Every response waits this long.
    pub delay: Duration,
    /// robots.txt per host and time since start: (status, body); default: the site's.
    pub robots: Option<Arc<RobotsFn>>,
    /// This host answers its first page request with 429 and `Retry-After: 2`.
    pub throttle_host: Option<String>,
    /// `/` on 127.0.0.1 answers a 301 to `/` on localhost.
    pub root_moved: bool,
}

pub struct SiteServer {
    /// Serves until dropped.
    _server: TestServer,
    pub port: u16,
    log: Arc<Mutex<Vec<Hit>>>,
}

impl SiteServer {
    pub fn start(pages: u32, quirks: Quirks) -> SiteServer {
        let log = Arc::new(Mutex::new(Vec::new()));
        let site = Site::new(pages);
        let started = Instant::now();
        let throttled = Arc::new(Mutex::new(false));
        let shared = Arc::clone(&log);
        let server = TestServer::start(move |cfg| {
            let log = Arc::clone(&shared);
            let quirks = quirks.clone();
            let throttled = Arc::clone(&throttled);
            cfg.default_service(web::to(move |req: HttpRequest| {
                let log = Arc::clone(&log);
                let quirks = quirks.clone();
                let throttled = Arc::clone(&throttled);
                async move {
                    let start = Instant::now();
                    let host = req
                        .headers()
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let path = match req.query_string() {
                        "" => req.path().to_string(),
                        q => format!("{}?{q}", req.path()),
                    };
                    if !quirks.delay.is_zero() {
                        actix_web::rt::time::sleep(quirks.delay).await;
                    }
                    let robots = quirks
                        .robots
                        .as_ref()
                        .filter(|_| req.path() == "/robots.txt");
                    let mut throttle = false;
                    if quirks.throttle_host.as_deref() == Some(host.as_str())
                        && !is_meta(req.path())
                    {
                        let mut done = throttled.lock().unwrap();
                        throttle = !*done;
                        *done = true;
                    }
                    let moved = quirks.root_moved && host == "127.0.0.1" && req.path() == "/";
                    let resp = if moved {
                        let port = req.app_config().local_addr().port();
                        HttpResponse::MovedPermanently()
                            .insert_header(("Location", format!("http://localhost:{port}/")))
                            .finish()
                    } else if throttle {
                        HttpResponse::TooManyRequests()
                            .insert_header(("Retry-After", "2"))
                            .body("slow down")
                    } else if let Some(robots) = robots {
                        let (status, body) = robots(&host, started.elapsed());
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                            .content_type("text/plain")
                            .body(body)
                    } else {
                        flags::server::site_response(&site, req.path(), Some(req.query_string()))
                    };
                    log.lock().unwrap().push(Hit {
                        host,
                        path,
                        start,
                        end: Instant::now(),
                        status: resp.status().as_u16(),
                    });
                    resp
                }
            }));
        });
        let port = server
            .base
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .expect("port");
        SiteServer {
            _server: server,
            port,
            log,
        }
    }

    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}/", self.port)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.log.lock().unwrap().clone()
    }

    /// Requests per path.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for h in self.hits() {
            *counts.entry(h.path).or_insert(0) += 1;
        }
        counts
    }
}

/// A request for what a crawl reads about a site, not a page of it: robots.txt and the start
/// host's sitemap.
pub fn is_meta(path: &str) -> bool {
    path == "/robots.txt" || path == "/sitemap.xml"
}

/// The most requests in flight at once to each host, as the server saw them.
pub fn max_in_flight(hits: &[Hit]) -> HashMap<String, usize> {
    let mut events: HashMap<String, Vec<(Instant, i32)>> = HashMap::new();
    for h in hits {
        let e = events.entry(h.host.clone()).or_default();
        e.push((h.start, 1));
        e.push((h.end, -1));
    }
    events
        .into_iter()
        .map(|(host, mut ev)| {
            // Ends before starts at the same instant: a request that ended is not in flight.
            ev.sort_by_key(|&(t, d)| (t, d));
            let (mut now, mut max) = (0, 0);
            for (_, d) in ev {
                now += d;
                max = max.max(now);
            }
            (host, max as usize)
        })
        .collect()
}

/// The JSON lines of a `--json` run.
pub fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn summary(lines: &[serde_json::Value]) -> &serde_json::Value {
    lines
        .iter()
        .find(|l| l["type"] == "summary")
        .expect("a summary line")
}

/// The counts add up: every page handed out has exactly one outcome.
fn assert_adds_up(s: &serde_json::Value) {
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
}

/// The files under `dir`, relative, the journal excepted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel != flags::site_crawl::JOURNAL && !rel.starts_with(".flags-index") {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_crawl_of_the_test_site_fetches_every_reachable_page_once_and_nothing_else() {
    let pages = 20_000;
    let server = SiteServer::start(pages, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "crawl",
            &server.url("127.0.0.1"),
            "-m",
            "32",
            "--per-host",
            "32",
        ])
        .args(["--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", super::stderr(&out));
    let lines = json_lines(&out);
    let s = summary(&lines);
    assert_adds_up(s);

    let want = Site::new(pages).reachable(None);
    let counts = server.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "requested more than once: {twice:?}");
    assert_eq!(counts.get("/robots.txt"), Some(&1));
    let fetched: Vec<&String> = counts.keys().filter(|p| !is_meta(p)).collect();
    let wanted: Vec<&String> = want.keys().collect();
    assert_eq!(fetched.len(), wanted.len());
    assert!(fetched == wanted, "the crawl and the site's graph differ");
    assert!(counts.keys().all(|p| !p.starts_with("/private/")));

    // No request left the host: every job is a URL of it.
    let base = server.url("127.0.0.1");
    let jobs: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "job").collect();
    assert_eq!(jobs.len() as u64, s["pages"].as_u64().unwrap());
    assert!(jobs
        .iter()
        .all(|j| j["url"].as_str().unwrap().starts_with(&base)));
    // Depth and parent: what the site's graph says.
    for j in &jobs {
        let url = j["url"].as_str().unwrap();
        let path = &url[base.len() - 1..];
        assert_eq!(j["depth"].as_u64(), Some(u64::from(want[path])), "{j}");
        assert_eq!(j["parent"].is_null(), path == "/", "{j}");
    }
    let ok = s["downloaded"].as_u64().unwrap();
    assert_eq!(s["errors"], 0);
    assert_eq!(
        s["not_found"].as_u64().unwrap(),
        want.keys().filter(|p| p.starts_with("/missing/")).count() as u64
    );
    assert_eq!(
        s["redirected"].as_u64().unwrap(),
        want.keys().filter(|p| p.starts_with("/go/")).count() as u64
    );
    assert_eq!(
        s["blocked"].as_u64().unwrap(),
        (0..pages).filter(|i| i % 10 == 0).count() as u64
    );
    assert_eq!(s["not_visited"], 0);
    assert_eq!(
        files(dest.path()).len() as u64,
        ok,
        "one file per page downloaded"
    );
}

#[test]
fn max_depth_and_max_pages_are_exact() {
    let server = SiteServer::start(3000, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "crawl",
            &server.url("127.0.0.1"),
            "--max-depth",
            "3",
            "--json",
            "-d",
        ])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", super::stderr(&out));
    assert_adds_up(summary(&json_lines(&out)));
    let want = Site::new(3000).reachable(Some(3));
    let got: Vec<String> = server
        .counts()
        .into_keys()
        .filter(|p| !is_meta(p))
        .collect();
    assert_eq!(got, want.keys().cloned().collect::<Vec<_>>());

    let server = SiteServer::start(3000, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "crawl",
            &server.url("127.0.0.1"),
            "--max-pages",
            "100",
            "--json",
            "-d",
        ])
        .arg(dest.path())
        .output()
        .unwrap();
    let lines = json_lines(&out);
    let s = summary(&lines);
    assert_adds_up(s);
    assert_eq!(s["pages"], 100);
    assert!(s["not_visited"].as_u64().unwrap() > 0);
    let requests = server.hits().iter().filter(|h| !is_meta(&h.path)).count();
    assert_eq!(requests, 100);
    let stdout_text = stdout(&out);
    assert!(stdout_text.contains("\"not_visited\""), "{stdout_text}");
}

#[test]
fn per_host_limits_what_is_in_flight_to_each_host_and_is_used() {
    let server = SiteServer::start(
        200,
        Quirks {
            delay: Duration::from_millis(20),
            ..Quirks::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &server.url("127.0.0.1"), &server.url("localhost")])
        .args(["-m", "16", "--per-host", "2", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let max = max_in_flight(&server.hits());
    assert_eq!(max.get("127.0.0.1"), Some(&2), "{max:?}");
    assert_eq!(max.get("localhost"), Some(&2), "{max:?}");
    // Both hosts were crawled whole.
    let per_host = |host: &str| server.hits().iter().filter(|h| h.host == host).count();
    assert_eq!(per_host("127.0.0.1"), per_host("localhost"));
}

/// The gaps between consecutive request starts to `host`.
fn gaps(hits: &[Hit], host: &str) -> Vec<Duration> {
    let mut starts: Vec<Instant> = hits
        .iter()
        .filter(|h| h.host == host)
        .map(|h| h.start)
        .collect();
    starts.sort();
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn delay_spaces_the_requests_to_a_host() {
    let server = SiteServer::start(8, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "crawl",
            &server.url("127.0.0.1"),
            "--delay",
            "0.2",
            "--per-host",
            "2",
            "-d",
        ])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let gaps = gaps(&server.hits(), "127.0.0.1");
    assert!(gaps.len() >= 8, "{gaps:?}");
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(200)),
        "{gaps:?}"
    );
}

#[test]
fn a_429_pauses_that_host_only() {
    let server = SiteServer::start(
        400,
        Quirks {
            delay: Duration::from_millis(10),
            throttle_host: Some("localhost".into()),
            ..Quirks::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &server.url("127.0.0.1"), &server.url("localhost")])
        .args(["--per-host", "2", "--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let hits = server.hits();
    let throttled = hits
        .iter()
        .find(|h| h.status == 429)
        .expect("the server sent a 429");
    let pause_end = throttled.end + Duration::from_secs(2);
    let during = |host: &str| {
        hits.iter()
            .filter(|h| h.host == host && h.start > throttled.end && h.start < pause_end)
            .count()
    };
    assert_eq!(during("localhost"), 0, "a request during the pause");
    assert!(
        during("127.0.0.1") > 10,
        "the other host kept going: {}",
        during("127.0.0.1")
    );
    // The throttled page was fetched again after the pause, and the crawl is complete.
    let again = hits
        .iter()
        .filter(|h| h.host == "localhost" && h.path == throttled.path)
        .count();
    assert_eq!(again, 2);
    let s = json_lines(&out);
    let s = summary(&s);
    assert_eq!(s["errors"], 0);
    assert_adds_up(s);
}

fn robots_crawl(
    pages: u32,
    robots: impl Fn(&str, Duration) -> (u16, String) + Send + Sync + 'static,
) -> (SiteServer, std::process::Output) {
    let server = SiteServer::start(
        pages,
        Quirks {
            robots: Some(Arc::new(robots)),
            ..Quirks::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &server.url("127.0.0.1"), "--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    (server, out)
}

fn pages_fetched(server: &SiteServer) -> Vec<String> {
    server
        .counts()
        .into_keys()
        .filter(|p| !is_meta(p))
        .collect()
}

#[test]
fn robots_disallow_allow_and_user_agent_groups() {
    // Allow wins over a shorter Disallow; everything else under /p/ is out.
    let (server, _) = robots_crawl(30, |_, _| {
        (
            200,
            "User-agent: *\nDisallow: /p/\nAllow: /p/2.html\n".into(),
        )
    });
    let got = pages_fetched(&server);
    assert!(got.contains(&"/".to_string()));
    assert!(got.contains(&"/p/2.html".to_string()), "{got:?}");
    assert!(
        got.iter()
            .all(|p| !p.starts_with("/p/") || p == "/p/2.html"),
        "{got:?}"
    );

    // The group naming flags applies, not the * one.
    let (server, _) = robots_crawl(30, |_, _| {
        (
            200,
            "User-agent: *\nDisallow: /\n\nUser-agent: flags\nDisallow: /p/3.html\n".into(),
        )
    });
    let got = pages_fetched(&server);
    assert!(got.contains(&"/p/1.html".to_string()), "{got:?}");
    assert!(!got.contains(&"/p/3.html".to_string()), "{got:?}");
    assert!(
        got.contains(&"/private/0.html".to_string()),
        "the flags group allows it: {got:?}"
    );
}

#[test]
fn robots_crawl_delay_404_and_503() {
    let (server, _) = robots_crawl(8, |_, _| (200, "User-agent: *\nCrawl-delay: 0.3\n".into()));
    let gaps = gaps(&server.hits(), "127.0.0.1");
    assert!(gaps.len() >= 8, "{gaps:?}");
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(300)),
        "{gaps:?}"
    );

    // 404: everything is allowed, /private/ included.
    let (server, out) = robots_crawl(30, |_, _| (404, "no".into()));
    assert!(pages_fetched(&server).contains(&"/private/0.html".to_string()));
    assert_eq!(summary(&json_lines(&out))["blocked"], 0);

    // 503 for the first 1.5 s: nothing is fetched from the host until robots.txt answers.
    let (server, out) = robots_crawl(30, |_, t| {
        if t < Duration::from_millis(1500) {
            (503, "busy".into())
        } else {
            (200, "User-agent: *\nDisallow: /private/\n".into())
        }
    });
    let hits = server.hits();
    let first_ok = hits
        .iter()
        .filter(|h| h.path == "/robots.txt" && h.status == 200)
        .map(|h| h.end)
        .min()
        .expect("robots.txt answered at last");
    assert!(hits.iter().filter(|h| h.path == "/robots.txt").count() >= 2);
    assert!(hits
        .iter()
        .filter(|h| !is_meta(&h.path))
        .all(|h| h.start >= first_ok));
    let s = json_lines(&out);
    assert_eq!(summary(&s)["errors"], 0);
    assert!(summary(&s)["downloaded"].as_u64().unwrap() >= 30);
}

#[test]
fn kill_9_mid_crawl_then_resume_fetches_the_rest_and_every_page_is_on_disk_once() {
    let pages = 20_000;
    let server = SiteServer::start(pages, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let url = server.url("127.0.0.1");
    let crawl = |resume: bool| {
        let mut cmd = flags();
        cmd.args(["crawl", &url, "-m", "16", "--per-host", "16", "-d"])
            .arg(dest.path());
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let mut child = crawl(false)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.hits().len() < 8_000 {
        assert!(Instant::now() < deadline, "the crawl did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to save anything
    child.wait().unwrap();
    let before = server.hits().len();
    assert!(
        before < 20_000,
        "killed too late to show anything ({before} requests)"
    );

    let out = crawl(true).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let want = Site::new(pages).reachable(None);
    let counts = server.counts();
    let fetched: Vec<&String> = counts.keys().filter(|p| !is_meta(p)).collect();
    assert!(
        fetched == want.keys().collect::<Vec<_>>(),
        "the crawl and the site differ"
    );
    let most = counts.values().max().copied().unwrap_or(0);
    assert!(most <= 2, "a page was requested {most} times");
    let again = counts.values().filter(|&&n| n == 2).count();
    eprintln!("killed after {before} requests; {again} pages were requested twice");
    // In flight when killed: one request per fetcher (16), one body per store permit (16).
    assert!(
        again <= 32,
        "{again} pages fetched twice: more than the pages in flight"
    );
    // On disk: exactly the pages that answered 200, each once, and no temp file.
    let mut expect: Vec<String> = want
        .keys()
        .filter(|p| !p.starts_with("/missing/") && !p.starts_with("/go/"))
        .map(|p| {
            let u = format!("{}{}", url.trim_end_matches('/'), p);
            flags_actors::page_file(&u, true)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    expect.sort();
    assert_eq!(files(dest.path()), expect);
}

#[test]
fn skip_existing_reads_stored_pages_for_their_links_instead_of_fetching_them() {
    let server = SiteServer::start(300, Quirks::default());
    let dest = tempfile::tempdir().unwrap();
    let url = server.url("127.0.0.1");
    let run = |extra: &[&str]| {
        flags()
            .args(["crawl", &url, "--json", "-d"])
            .arg(dest.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    let first = json_lines(&first);
    let downloaded = summary(&first)["downloaded"].as_u64().unwrap();
    let before = server.hits().len();

    let second = run(&["--skip-existing"]);
    let second = json_lines(&second);
    let s = summary(&second);
    assert_adds_up(s);
    assert_eq!(s["skipped"].as_u64(), Some(downloaded), "{s}");
    assert_eq!(s["downloaded"], 0);
    // Only what has no file was asked for again: robots.txt, the 404s and the redirects.
    let again: Vec<String> = server.hits()[before..]
        .iter()
        .map(|h| h.path.clone())
        .collect();
    assert!(
        again
            .iter()
            .all(|p| is_meta(p) || p.starts_with("/missing/") || p.starts_with("/go/")),
        "{again:?}"
    );
    assert_eq!(s["pages"], summary(&first)["pages"]);
}

#[test]
fn ctrl_c_reports_what_was_not_visited_and_resume_finishes() {
    let server = SiteServer::start(
        400,
        Quirks {
            delay: Duration::from_millis(20),
            ..Quirks::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let url = server.url("127.0.0.1");
    let child = flags()
        .args(["crawl", &url, "-d"])
        .arg(dest.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.hits().len() < 60 {
        assert!(Instant::now() < deadline, "the crawl did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    super::send_signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", super::stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("discovered but not visited."), "{text}");

    let out = flags()
        .args(["crawl", &url, "--resume", "--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let counts = server.counts();
    let want = Site::new(400).reachable(None);
    assert!(counts.keys().filter(|p| !is_meta(p)).eq(want.keys()));
    assert!(
        counts.iter().all(|(p, &n)| n == 1 || is_meta(p)),
        "an orderly stop loses nothing: {counts:?}"
    );
}

#[test]
fn a_start_url_that_redirects_to_another_host_brings_that_host_into_scope() {
    let server = SiteServer::start(
        50,
        Quirks {
            root_moved: true,
            ..Quirks::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["crawl", &server.url("127.0.0.1"), "--json", "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let s = json_lines(&out);
    let s = summary(&s);
    assert_eq!(
        s["redirected"].as_u64().unwrap(),
        2,
        "the start URL and /go/1: {s}"
    );
    let on = |host: &str| {
        server
            .hits()
            .iter()
            .filter(|h| h.host == host && !is_meta(&h.path))
            .count()
    };
    assert_eq!(on("127.0.0.1"), 1, "only the start URL");
    assert_eq!(on("localhost"), Site::new(50).reachable(None).len());
}
