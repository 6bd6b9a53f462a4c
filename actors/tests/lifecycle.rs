//! The engine inside a long-lived program: a run ends everything it started, a cancelled run
//! sends no request after it returned, and a run stopped past its grace period still counts every
//! file on disk (issue: the engine inside a long-lived program). Its own test binary, so the
//! process-wide count of live engine actors belongs to these tests alone.

mod common;

use std::future::pending;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use common::{assert_adds_up, body_for, TestServer};
use flags_actors::{live_actors, Config, Crawler, DirSink, Job, Sink};

/// 20 jobs: even numbers answer a body after `delay`, odd ones 404. Every request's arrival time
/// is recorded.
fn server(delay: Duration) -> (TestServer, Arc<Mutex<Vec<Instant>>>) {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = Arc::clone(&arrivals);
    let server = TestServer::start(move |cfg| {
        let seen = Arc::clone(&seen);
        cfg.route(
            "/{n}",
            web::get().to(move |n: web::Path<u32>| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(Instant::now());
                    actix_web::rt::time::sleep(delay).await;
                    match *n {
                        n if n % 2 == 0 => HttpResponse::Ok().body(body_for(&n.to_string())),
                        n if n % 3 == 0 => HttpResponse::ServiceUnavailable().finish(),
                        _ => HttpResponse::NotFound().finish(),
                    }
                }
            }),
        );
    });
    (server, arrivals)
}

fn jobs(base: &str, n: u32) -> Vec<Job> {
    (0..n)
        .map(|i| Job::new(i.to_string(), format!("{base}/{i}"), format!("{i}.bin")))
        .collect()
}

/// The count of live actors is process-wide: these tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn fifty_runs_in_one_system_leave_nothing_behind() {
    let _turn = turn();
    let (server, _) = server(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async {
        for round in 0..50 {
            let config = Config::builder().pool_size(5).build().unwrap();
            let crawler = Crawler::new(config, DirSink::new(dir.path()).unwrap());
            let s = crawler.run(jobs(&server.base, 20), pending()).await;
            assert_eq!((s.jobs, s.downloaded), (20, 10), "round {round}: {s:?}");
            assert_adds_up(&s);
            assert_eq!(live_actors(), 0, "round {round}: actors left running");
        }
        // Nothing of the 50 runs wakes up later either (the reporter's redraw timer, a fetcher's
        // backoff): still nothing alive after a while.
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(live_actors(), 0);
    });
}

#[test]
fn a_cancelled_run_sends_no_request_after_it_returned() {
    let _turn = turn();
    // Slow answers, 503s retried with backoff: at the cancel, fetchers are both waiting for
    // responses and sleeping before retries.
    let (server, arrivals) = server(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async {
        let config = Config::builder()
            .pool_size(10)
            .retries(5)
            .backoff(Duration::from_millis(100))
            .grace(Duration::from_millis(50))
            .build()
            .unwrap();
        let crawler = Crawler::new(config, DirSink::new(dir.path()).unwrap());
        let cancel = crawler.cancel_handle();
        actix_rt::spawn(async move {
            actix_rt::time::sleep(Duration::from_millis(400)).await;
            cancel.cancel();
        });
        let s = crawler.run(jobs(&server.base, 200), pending()).await;
        let returned = Instant::now();
        assert!(s.interrupted && s.cancelled > 0, "{s:?}");
        assert_adds_up(&s);
        assert_eq!(live_actors(), 0, "actors left running after run returned");
        actix_rt::time::sleep(Duration::from_millis(800)).await;
        let late = arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t > returned)
            .count();
        assert_eq!(late, 0, "requests after run returned");
    });
}

/// A folder sink whose stores take a while, so some are under way when the grace period ends.
struct SlowSink(DirSink);

impl Sink for SlowSink {
    fn store(&self, job: &Job, file: &Path, body: &mut dyn io::Read) -> io::Result<()> {
        std::thread::sleep(Duration::from_millis(30));
        self.0.store(job, file, body)
    }
}

#[test]
fn a_run_stopped_past_its_grace_counts_every_file_on_disk() {
    let _turn = turn();
    let (server, _) = server(Duration::from_millis(5));
    let dir = tempfile::tempdir().unwrap();
    actix_rt::System::new().block_on(async {
        let config = Config::builder()
            .pool_size(20)
            .writer_threads(2)
            .grace(Duration::from_millis(20))
            .build()
            .unwrap();
        let sink = SlowSink(DirSink::new(dir.path()).unwrap());
        let crawler = Crawler::new(config, sink);
        let shutdown = actix_rt::time::sleep(Duration::from_millis(150));
        let s = crawler.run(jobs(&server.base, 2000), shutdown).await;
        assert_adds_up(&s);
        assert!(s.interrupted && s.cancelled > 0, "{s:?}");
        let on_disk = std::fs::read_dir(dir.path()).unwrap().count() as u64;
        assert_eq!(on_disk, s.downloaded, "files on disk vs downloaded: {s:?}");
        assert_eq!(live_actors(), 0);
    });
}
