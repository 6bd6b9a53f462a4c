//! The engine against real actix-web servers on 127.0.0.1 port 0.

mod common;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use common::{assert_adds_up, body_for, closed_port, every_code, TestServer};
use flags_actors::{
    Config, Crawler, DirSink, ErrorKind, Event, Job, Namer, Outcome, Sink, Summary,
};

/// The first 194 codes answer; the others are 404.
fn found_codes() -> HashSet<String> {
    every_code().into_iter().step_by(3).take(194).collect()
}

fn flag_server() -> TestServer {
    let found = Arc::new(found_codes());
    TestServer::start(move |cfg| {
        let found = Arc::clone(&found);
        cfg.route(
            "/flags/{cc}/{file}",
            web::get().to(move |path: web::Path<(String, String)>| {
                let found = Arc::clone(&found);
                async move {
                    let cc = path.0.to_uppercase();
                    if found.contains(&cc) && path.1 == format!("{}.gif", path.0) {
                        HttpResponse::Ok()
                            .content_type("image/gif")
                            .body(body_for(&cc))
                    } else {
                        HttpResponse::NotFound().body("no such flag")
                    }
                }
            }),
        );
    })
}

fn flag_jobs(base: &str, codes: &[String]) -> Vec<Job> {
    codes
        .iter()
        .map(|cc| {
            let lc = cc.to_lowercase();
            Job::new(
                cc.clone(),
                format!("{base}/flags/{lc}/{lc}.gif"),
                format!("{cc}.gif"),
            )
        })
        .collect()
}

fn spawn_and_join(crawler: Crawler, jobs: Vec<Job>) -> (Vec<Event>, Summary) {
    let (rx, handle) = crawler.event_capacity(100_000).spawn(jobs);
    let events: Vec<Event> = rx.iter().collect();
    let summary = handle.join().expect("summary");
    (events, summary)
}

#[test]
fn crawl_676_codes_saves_194_identical_files() {
    let server = flag_server();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::builder().pool_size(50).build().unwrap();
    let crawler = Crawler::new(config, DirSink::new(dir.path()).unwrap());
    let (events, summary) = spawn_and_join(crawler, flag_jobs(&server.base, &every_code()));

    assert_eq!(
        (summary.downloaded, summary.not_found, summary.errors),
        (194, 482, 0)
    );
    assert_eq!(summary.jobs, 676);
    assert_adds_up(&summary);
    assert_eq!(events.len(), 677, "one event per job, then Done");
    assert!(matches!(events.last(), Some(Event::Done(s)) if *s == summary));

    let found = found_codes();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let cc = name.strip_suffix(".gif").expect("only .gif files");
        assert!(found.contains(cc), "{cc} was not served");
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            body_for(cc),
            "{cc} differs"
        );
        files += 1;
    }
    assert_eq!(files, 194);
}

#[test]
fn server_errors_and_closed_ports_are_errors_with_messages() {
    let server = TestServer::start(|cfg| {
        cfg.route(
            "/boom/{n}",
            web::get().to(|| async { HttpResponse::InternalServerError().body("x") }),
        );
        cfg.route(
            "/ok/{n}",
            web::get().to(|| async { HttpResponse::Ok().body("fine") }),
        );
    });
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let mut jobs = Vec::new();
    for i in 0..20 {
        jobs.push(Job::new(
            format!("ok{i}"),
            format!("{}/ok/{i}", server.base),
            format!("ok{i}"),
        ));
        jobs.push(Job::new(
            format!("boom{i}"),
            format!("{}/boom/{i}", server.base),
            format!("boom{i}"),
        ));
        jobs.push(Job::new(
            format!("dead{i}"),
            format!("{dead}/x/{i}"),
            format!("dead{i}"),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::new(
        Config::builder().pool_size(8).build().unwrap(),
        DirSink::new(dir.path()).unwrap(),
    );
    let (events, summary) = spawn_and_join(crawler, jobs);

    assert_eq!(
        (summary.downloaded, summary.not_found, summary.errors),
        (20, 0, 40)
    );
    assert_adds_up(&summary);
    for event in &events {
        let Event::Job(r) = event else { continue };
        match &r.outcome {
            Outcome::Error(msg) if r.job.key.starts_with("boom") => {
                assert_eq!(msg.message, "HTTP error 500 - Internal Server Error");
                assert_eq!(msg.kind, ErrorKind::Status);
                assert_eq!(r.status, Some(500));
            }
            Outcome::Error(msg) if r.job.key.starts_with("dead") => {
                assert!(msg.message.to_lowercase().contains("connect"), "{msg}");
                assert_eq!(msg.kind, ErrorKind::Connect);
                assert_eq!(r.status, None);
            }
            Outcome::Downloaded(_) => assert!(r.job.key.starts_with("ok")),
            other => panic!("unexpected {other:?} for {}", r.job.key),
        }
    }
    assert!(!dir.path().join("boom0").exists());
}

#[test]
fn pool_of_150_puts_exactly_150_requests_in_flight() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (Arc::clone(&in_flight), Arc::clone(&peak));
    let server = TestServer::start(move |cfg| {
        let (f, p) = (Arc::clone(&f), Arc::clone(&p));
        cfg.route(
            "/slow/{n}",
            web::get().to(move || {
                let (f, p) = (Arc::clone(&f), Arc::clone(&p));
                async move {
                    let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
                    f.fetch_sub(1, Ordering::SeqCst);
                    HttpResponse::NotFound().finish()
                }
            }),
        );
    });
    let jobs: Vec<Job> = (0..600)
        .map(|i| {
            Job::new(
                i.to_string(),
                format!("{}/slow/{i}", server.base),
                i.to_string(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::new(
        Config::builder().pool_size(150).build().unwrap(),
        DirSink::new(dir.path()).unwrap(),
    );
    let (_, summary) = spawn_and_join(crawler, jobs);
    assert_eq!(summary.not_found, 600);
    assert_eq!(peak.load(Ordering::SeqCst), 150, "peak requests in flight");
}

/// Counts how many jobs were read from it.
struct Counting<I> {
    inner: I,
    read: Arc<AtomicU64>,
}

impl<I: Iterator<Item = Job>> Iterator for Counting<I> {
    type Item = Job;
    fn next(&mut self) -> Option<Job> {
        let job = self.inner.next()?;
        self.read.fetch_add(1, Ordering::SeqCst);
        Some(job)
    }
}

#[test]
fn a_200000_job_source_is_read_only_a_pool_ahead() {
    let server = TestServer::start(|cfg| {
        cfg.default_service(web::to(|| async { HttpResponse::NotFound().finish() }));
    });
    const POOL: u64 = 32;
    const JOBS: u64 = 200_000;
    let read = Arc::new(AtomicU64::new(0));
    let base = server.base.clone();
    let source = Counting {
        inner: (0..JOBS)
            .map(move |i| Job::new(i.to_string(), format!("{base}/{i}"), i.to_string())),
        read: Arc::clone(&read),
    };
    let finished = Arc::new(AtomicU64::new(0));
    let max_ahead = Arc::new(AtomicU64::new(0));
    let (r, f, m) = (
        Arc::clone(&read),
        Arc::clone(&finished),
        Arc::clone(&max_ahead),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = Config::builder().pool_size(POOL as usize).build().unwrap();
    let crawler = Crawler::new(config, DirSink::new(dir.path()).unwrap()).on_event(move |e| {
        if let Event::Job(_) = e {
            let done = f.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(
                r.load(Ordering::SeqCst).saturating_sub(done),
                Ordering::SeqCst,
            );
        }
    });
    let (rx, handle) = crawler.event_capacity(1).spawn(source);
    drop(rx);
    let summary = handle.join().unwrap();
    assert_eq!(summary.not_found, JOBS);
    assert_eq!(finished.load(Ordering::SeqCst), JOBS);
    let ahead = max_ahead.load(Ordering::SeqCst);
    assert!(
        ahead <= POOL + 1,
        "source read {ahead} jobs ahead of the outcomes (pool {POOL})"
    );
}

#[test]
fn a_subscriber_that_never_reads_does_not_stop_the_crawl() {
    let server = flag_server();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::builder().pool_size(20).build().unwrap();
    let (rx, handle) = Crawler::new(config, DirSink::new(dir.path()).unwrap())
        .event_capacity(5)
        .spawn(flag_jobs(&server.base, &every_code()));
    // Never read until the end: the channel fills after 5 events and the rest are dropped.
    let summary = handle.join().unwrap();
    assert_eq!((summary.downloaded, summary.not_found), (194, 482));
    assert_eq!(summary.events_dropped, 677 - 5);
    let kept: Vec<Event> = rx.iter().collect();
    assert_eq!(kept.len(), 5, "the channel holds what fit, then is closed");
}

/// A sink that panics on one file and stores the rest in memory.
struct PanicOn {
    file: PathBuf,
    stored: Mutex<Vec<PathBuf>>,
}

impl Sink for PanicOn {
    fn store(&self, _job: &Job, file: &Path, _body: &mut dyn io::Read) -> io::Result<()> {
        if file == self.file {
            panic!("sink refuses {}", file.display());
        }
        self.stored.lock().unwrap().push(file.to_path_buf());
        Ok(())
    }
}

#[test]
fn a_sink_panic_fails_that_job_only_and_the_writer_is_replaced() {
    let server = flag_server();
    let codes: Vec<String> = found_codes().into_iter().collect();
    let sink = Arc::new(PanicOn {
        file: PathBuf::from(format!("{}.gif", codes[0])),
        stored: Mutex::new(Vec::new()),
    });
    // One writer thread: if the panic killed it, no later store could succeed.
    let config = Config::builder()
        .pool_size(4)
        .writer_threads(1)
        .build()
        .unwrap();
    let crawler = Crawler::with_sink(config, sink.clone());
    let (events, summary) = spawn_and_join(crawler, flag_jobs(&server.base, &codes));
    assert_eq!((summary.downloaded, summary.errors), (193, 1));
    assert_eq!(sink.stored.lock().unwrap().len(), 193);
    let msg = events
        .iter()
        .find_map(|e| match e {
            Event::Job(r) if r.job.key == codes[0] => Some(r.outcome.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(&msg, Outcome::Error(m) if m.message.contains("writer panicked") && m.message.contains("sink refuses") && m.kind == ErrorKind::Internal),
        "{msg:?}"
    );
}

/// A namer (it runs on the fetcher) that panics for one job.
struct PanickingNamer(String);

impl Namer for PanickingNamer {
    fn name(&self, job: &Job, _meta: &[u8]) -> Result<PathBuf, String> {
        if job.key == self.0 {
            panic!("namer cannot name {}", job.key);
        }
        Ok(format!("named-{}.gif", job.key).into())
    }
}

#[test]
fn a_fetcher_panic_fails_that_job_only_and_the_fetcher_is_replaced() {
    let server = flag_server();
    let codes: Vec<String> = found_codes().into_iter().take(30).collect();
    let jobs: Vec<Job> = flag_jobs(&server.base, &codes)
        .into_iter()
        .map(|j| {
            let meta = j.url.clone();
            j.with_meta_url(meta)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    // One fetcher: if it were not replaced, the run could not finish.
    let config = Config::builder()
        .pool_size(1)
        .workers(1)
        .namer(PanickingNamer(codes[3].clone()))
        .build()
        .unwrap();
    let crawler = Crawler::new(config, DirSink::new(dir.path()).unwrap());
    let (events, summary) = spawn_and_join(crawler, jobs);
    assert_eq!((summary.downloaded, summary.errors), (29, 1));
    assert_adds_up(&summary);
    let failed = events
        .iter()
        .find_map(|e| match e {
            Event::Job(r) if matches!(r.outcome, Outcome::Error(_)) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(failed.job.key, codes[3]);
    assert!(matches!(&failed.outcome, Outcome::Error(m) if m.message.contains("fetcher panicked")));
    assert!(dir.path().join(format!("named-{}.gif", codes[4])).exists());
}

#[test]
fn run_inside_an_actix_system_stops_on_its_shutdown_future() {
    let server = TestServer::start(|cfg| {
        cfg.default_service(web::to(|| async {
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            HttpResponse::Ok().body("slow")
        }));
    });
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<Job> = (0..10_000)
        .map(|i| {
            Job::new(
                i.to_string(),
                format!("{}/{i}", server.base),
                format!("{i}.txt"),
            )
        })
        .collect();
    let summary = actix_rt::System::new().block_on(async {
        let config = Config::builder().pool_size(10).build().unwrap();
        let crawler = Crawler::new(config, DirSink::new(dir.path()).unwrap());
        crawler
            .run(jobs, actix_rt::time::sleep(Duration::from_millis(500)))
            .await
    });
    assert!(summary.interrupted);
    assert_adds_up(&summary);
    assert!(summary.jobs < 10_000, "dispatch stopped: {summary:?}");
    assert!(summary.downloaded > 0);
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            b"slow",
            "complete files only"
        );
        files += 1;
    }
    assert_eq!(files as u64, summary.downloaded);
}

#[test]
fn requests_carry_a_user_agent_naming_flags_and_its_version() {
    let server = TestServer::start(|cfg| {
        cfg.default_service(web::to(|req: actix_web::HttpRequest| async move {
            let ua = req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            HttpResponse::Ok().body(ua)
        }));
    });
    let dir = tempfile::tempdir().unwrap();
    let jobs = vec![Job::new("ua", format!("{}/ua", server.base), "ua.txt")];
    let crawler = Crawler::new(
        Config::builder().build().unwrap(),
        DirSink::new(dir.path()).unwrap(),
    );
    let (_, summary) = spawn_and_join(crawler, jobs);
    assert_eq!(summary.downloaded, 1);
    let ua = std::fs::read_to_string(dir.path().join("ua.txt")).unwrap();
    assert_eq!(ua, concat!("flags/", env!("CARGO_PKG_VERSION")));
}
