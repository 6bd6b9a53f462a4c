//! The crawl policy's table: event sequences and the decisions expected, run against both stores
//! (the memory store, and a real `redis-server` started here, skipped with a note where it is
//! missing), with a clock set by hand. Both frontiers must decide alike, and as the table says.
//!
//! The policy of every row: per host 2 in flight, pauses from 1 s doubling up to 10 s, a host
//! given up after 3 failures in a row, 3 tries per page, 2 redirects in a row, depth 3.

use std::cell::Cell;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::core::{Core, Next};
use crate::config::Config;
use crate::job::ErrorKind;
use crate::policy::{Policy, RobotsAnswer};
use crate::protocol::{CrawlStats, PageDone, Retry};
use crate::spec::CrawlSpec;
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisStore, SharedCrawl};
use crate::store::{Clock, Entry, Store};

const H: &str = "http://h.test";

/// One event, or a question, and the answer expected.
enum Step {
    /// Set the clock (ms).
    At(u64),
    /// Ask for the next decision: `job URL`, `gave_up URL`, `robots URL`, `wait MS`, `wait -`
    /// (until an event), `over`.
    Next(&'static str),
    /// robots.txt of `h.test` answered with a status and a body.
    Robots(u16, &'static str),
    /// A page ended: its status, its links, whether it redirected, its outcome.
    Done(
        &'static str,
        u16,
        &'static [&'static str],
        bool,
        &'static str,
    ),
    /// An attempt failed: status (0: no response, a refused connection), Retry-After in seconds;
    /// expected `later` or `fail`.
    Failed(&'static str, u16, Option<u64>, &'static str),
    /// A sitemap was read: its status, whether it is an index, what it lists.
    Sitemap(&'static str, u16, bool, &'static [&'static str]),
}

use Step::*;

/// The rows: a name, the seeds, and the steps.
fn rows() -> Vec<(&'static str, Vec<&'static str>, Vec<Step>)> {
    vec![
        (
            "sitemaps: the start host's, robots.txt's, an index's; their pages at depth 1",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(
                    200,
                    "User-agent: *\nDisallow: /no/\nSitemap: http://h.test/more.xml\n",
                ),
                Next("job /"),
                Next("sitemap /sitemap.xml"),
                Next("wait -"),
                Sitemap("/sitemap.xml", 404, false, &[]),
                Next("sitemap /more.xml"),
                Sitemap(
                    "/more.xml",
                    200,
                    true,
                    &["/deep.xml", "http://elsewhere.test/x.xml"],
                ),
                Next("sitemap /deep.xml"),
                Sitemap(
                    "/deep.xml",
                    200,
                    false,
                    &["/hidden", "/no/way", "http://elsewhere.test/"],
                ),
                Next("job /hidden"),
                Done("/", 200, &[], false, "ok"),
                Done("/hidden", 200, &[], false, "ok"),
                Next("over"),
            ],
        ),
        (
            "robots.txt unreachable: retried after 1, 2 s, then the host is given up",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(500, ""),
                Next("wait 1000"),
                At(1000),
                Next("robots /robots.txt"),
                Robots(503, ""),
                Next("wait 3000"),
                At(3000),
                Next("robots /robots.txt"),
                Robots(0, ""),
                Next("gave_up /"),
                Done("/", 0, &[], false, "error"),
                Next("over"),
            ],
        ),
        (
            "robots.txt 404 allows all; two in flight per host; links queued once",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(404, ""),
                Next("job /"),
                Done("/", 200, &["/a", "/b", "/c", "/a#x"], false, "ok"),
                Next("job /a"),
                Next("job /b"),
                Next("wait -"),
                Done("/a", 200, &["/", "/b"], false, "ok"),
                Next("job /c"),
                Done("/b", 404, &[], false, "not_found"),
                Done("/c", 200, &[], false, "ok"),
                Next("over"),
            ],
        ),
        (
            "rules: disallowed URLs are never handed out; unreserved escapes compare decoded",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(200, "User-agent: *\nDisallow: /~x/\n"),
                Next("job /"),
                Done("/", 200, &["/%7Ex/1", "/~x/2", "/y"], false, "ok"),
                Next("job /y"),
                Next("wait -"),
                Done("/y", 200, &[], false, "ok"),
                Next("over"),
            ],
        ),
        (
            "503 pauses the host, doubling; three failures in a row give it up",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(404, ""),
                Next("job /"),
                Done("/", 200, &["/a", "/b"], false, "ok"),
                Next("job /a"),
                Next("job /b"),
                Failed("/a", 503, None, "later"),
                Failed("/b", 503, None, "later"),
                Next("wait 1000"),
                At(1000),
                Next("job /a"),
                Next("job /b"),
                Failed("/a", 503, None, "later"),
                Next("wait 3000"),
                Failed("/b", 503, None, "later"),
                At(3000),
                Next("job /a"),
                Next("job /b"),
                Failed("/a", 503, None, "fail"),
                Failed("/b", 503, None, "fail"),
                Done("/a", 503, &[], false, "error"),
                Done("/b", 503, &[], false, "error"),
                Next("over"),
            ],
        ),
        (
            "Retry-After is honoured up to the cap; an answer forgets the failures",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(404, ""),
                Next("job /"),
                Failed("/", 429, Some(86_400), "later"),
                Next("wait 10000"),
                At(10_000),
                Next("job /"),
                Done("/", 200, &["/a"], false, "ok"),
                Next("job /a"),
                Failed("/a", 429, Some(2), "later"),
                Next("wait 12000"),
                At(12_000),
                Next("job /a"),
                Done("/a", 200, &[], false, "ok"),
                Next("over"),
            ],
        ),
        (
            "a page's 500 waits alone; it is tried three times at most",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(404, ""),
                Next("job /"),
                Done("/", 200, &["/a", "/b"], false, "ok"),
                Next("job /a"),
                Failed("/a", 500, None, "later"),
                Next("job /b"),
                Done("/b", 200, &[], false, "ok"),
                Next("wait 1000"),
                At(1000),
                Next("job /a"),
                Failed("/a", 500, None, "later"),
                Next("wait 3000"),
                At(3000),
                Next("job /a"),
                Failed("/a", 500, None, "fail"),
                Done("/a", 500, &[], false, "error"),
                Next("over"),
            ],
        ),
        (
            "a redirect keeps the depth; a chain is cut after two hops; depth 3 is the last",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(404, ""),
                Next("job /"),
                Done("/", 302, &["/r1"], true, "redirected"),
                Next("job /r1"),
                Done("/r1", 302, &["/r2"], true, "redirected"),
                Next("job /r2"),
                Done("/r2", 302, &["/r3"], true, "redirected"),
                Next("over"),
            ],
        ),
        (
            "a start URL that redirects to another host brings that host into scope",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(404, ""),
                Next("job /"),
                Done("/", 301, &["http://w.h.test/"], true, "redirected"),
                Next("robots http://w.h.test/robots.txt"),
                Next("wait -"),
            ],
        ),
        (
            "Crawl-delay spaces a host's requests, one at a time",
            vec!["/"],
            vec![
                Next("robots /robots.txt"),
                Robots(200, "User-agent: *\nCrawl-delay: 2\n"),
                Next("wait 2000"),
                At(2000),
                Next("job /"),
                Done("/", 200, &["/a", "/b"], false, "ok"),
                Next("wait 4000"),
                At(4000),
                Next("job /a"),
                Next("wait -"),
            ],
        ),
    ]
}

/// A redis-server for this test, killed when dropped.
struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<Redis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!("SKIPPED (Redis half): redis-server is not installed");
        return None;
    };
    let server = Redis(child, port);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn policy(sitemaps: bool) -> Policy {
    let spec = CrawlSpec::builder()
        .sitemaps(sitemaps)
        .seed(format!("{H}/"))
        .max_depth(3)
        .pause_first(Duration::from_secs(1))
        .pause_max(Duration::from_secs(10))
        .give_up_after(3)
        .build()
        .unwrap();
    let config = Config::builder()
        .retries(2)
        .max_redirects(2)
        .build()
        .unwrap();
    Policy::crawl(&spec, &config)
}

fn url(path: &str) -> String {
    if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{H}{path}")
    }
}

/// Runs one row and returns the decisions, one line each, as the table writes them.
async fn run<S: Store>(
    store: S,
    clock: &Rc<Cell<u64>>,
    seeds: &[&str],
    steps: &[Step],
) -> Vec<String> {
    let stats = Arc::new(CrawlStats::default());
    // Sitemaps only in the rows about them: the others would each read /sitemap.xml first.
    let sitemaps = steps.iter().any(|s| matches!(s, Sitemap(..)));
    let mut core = Core::new(
        policy(sitemaps),
        store,
        "flags".into(),
        100,
        stats,
        Box::new(|| 0.0),
    );
    let seeds = seeds
        .iter()
        .map(|p| Entry::url(&url(p), 0, 0, None))
        .collect();
    core.seed(seeds).await.unwrap();
    let mut got = Vec::new();
    for step in steps {
        match step {
            At(t) => clock.set(*t),
            Next(_) => {
                let now = clock.get();
                let line = match core.next().await.unwrap() {
                    Next::Job(job) if job.verdict.is_some() => {
                        format!("gave_up {}", short(&job.url))
                    }
                    Next::Job(job) => format!("job {}", short(&job.url)),
                    Next::Robots { url, .. } => format!("robots {}", short(&url)),
                    Next::Sitemap { url } => format!("sitemap {}", short(&url)),
                    // A shared store's full host is looked at again after its poll interval;
                    // the memory store's when a request ends: both wait for an event.
                    Next::Wait(Some(t)) if t == now + 25 => "wait -".into(),
                    Next::Wait(Some(t)) => format!("wait {t}"),
                    Next::Wait(None) => "wait -".into(),
                    Next::Over => "over".into(),
                };
                got.push(line);
            }
            Robots(code, body) => {
                let answer = RobotsAnswer::sort(
                    (*code > 0).then_some(*code),
                    false,
                    bytes::Bytes::from_static(body.as_bytes()),
                    None,
                    "refused",
                );
                core.robots(Arc::from(H), answer).await.unwrap();
            }
            Done(path, code, links, redirect, outcome) => {
                let done = PageDone {
                    url: url(path),
                    links: links.iter().map(|l| url(l)).collect(),
                    assets: Vec::new(),
                    redirect: *redirect,
                    status: (*code > 0).then_some(*code),
                    outcome,
                };
                core.page_done(done).await.unwrap();
            }
            Sitemap(path, code, index, locs) => {
                let read = (*code == 200).then(|| crate::sitemap::Sitemap {
                    kind: if *index {
                        crate::sitemap::SitemapKind::Index
                    } else {
                        crate::sitemap::SitemapKind::Urls
                    },
                    locs: locs.iter().map(|l| url(l)).collect(),
                    truncated: false,
                });
                core.sitemap_done(&url(path), Some(*code), read)
                    .await
                    .unwrap();
            }
            Failed(path, code, retry_after, _) => {
                let f = crate::protocol::Failed {
                    url: url(path),
                    kind: if *code > 0 {
                        ErrorKind::Status
                    } else {
                        ErrorKind::Connect
                    },
                    status: (*code > 0).then_some(*code),
                    retry_after: retry_after.map(Duration::from_secs),
                    message: format!("HTTP error {code}"),
                };
                let verdict = match core.failed(f).await.unwrap() {
                    Retry::Later => "later",
                    Retry::Fail(_) => "fail",
                };
                got.push(verdict.into());
            }
        }
    }
    got
}

fn short(url: &str) -> String {
    url.strip_prefix(H).unwrap_or(url).to_string()
}

fn expected(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match s {
            Next(e) | Failed(_, _, _, e) => Some(e.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn both_stores_decide_as_the_table_says() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = redis();
    for (i, (name, seeds, steps)) in rows().into_iter().enumerate() {
        let want = expected(&steps);
        let clock = Rc::new(Cell::new(0));
        let memory = MemoryStore::new(Clock::Manual(Rc::clone(&clock)));
        let got = runtime.block_on(run(memory, &clock, &seeds, &steps));
        assert_eq!(got, want, "memory store: {name}");
        let Some(server) = &server else { continue };
        let clock = Rc::new(Cell::new(0));
        let got = runtime.block_on(async {
            let shared = SharedCrawl::new(
                format!("redis://127.0.0.1:{}", server.1),
                format!("table{i}"),
            );
            let identity = [("row", name.to_string())];
            let mut store = RedisStore::join(shared, &identity, CancellationToken::new())
                .await
                .unwrap();
            store.set_clock(Clock::Manual(Rc::clone(&clock)));
            run(store, &clock, &seeds, &steps).await
        });
        assert_eq!(got, want, "Redis store: {name}");
    }
}
