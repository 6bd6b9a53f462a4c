//! The actor engine of `flags`: a concurrent, bounded, crash-safe HTTP downloader that other tools
//! embed.
//!
//! # Layout
//!
//! ```text
//!  job source (lazy)                Save(job, body, permit)
//!        │ next()          ┌─────────────┐ ──────────────────► ┌────────────┐
//!  ┌─────▼──────┐  Job     │ Fetcher × N │   Append (pieces    │ Writer     │ temp → fsync → rename
//!  │ Supervisor │ ───────► │ awc Client  │   of large bodies)  │ (blocking  │
//!  │            │ ◄─ next ─│ per arbiter │                     │  threads)  │
//!  └─────┬──────┘          └──────┬──────┘                     └─────┬──────┘
//!        │ Total                  │ Finished (404, errors)           │ Finished (saved or failed)
//!        ▼                        ▼                                  ▼
//!  ┌──────────────────────────────────────────────────────────────────────┐
//!  │ Reporter: counts; indicatif bar; Event to subscribers (try_send);    │
//!  │ ends the run when every job read has its outcome → Summary           │
//!  └──────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! - `supervisor` owns the job source and the pool. Dispatch is pull: a free
//!   fetcher asks for the next job, and the source is read one job at a time, so memory is bounded
//!   by the pool size, not the number of jobs. A fetcher that dies is replaced and its job queued
//!   again.
//! - `fetcher` does one job at a time (see `http`) and hands 200 bodies to the writer.
//! - `writer` runs the [`Sink`] on blocking threads; the default [`DirSink`]
//!   makes a file appear under its final name only when complete.
//! - `reporter` is the only place that counts.
//! - `frontier` (in a crawl, [`Crawler::crawl`]) is the supervisor's job source: it owns the URLs
//!   left to fetch, one queue per host, the seen-set ([`SeenSet`]), scope, robots.txt and
//!   per-host politeness, and the journal that lets a crawl resume after any stop. The reporter
//!   hands it every page's outcome with the links the extractor ([`Extract`], by default
//!   [`HtmlLinks`]) found on it, on the writer's threads; a list of jobs is a frontier that
//!   never grows.
//! - `shared` is the frontier of a crawl (or job list) shared by many workers through Redis
//!   Streams ([`Crawler::crawl_shared`], [`Crawler::run_shared`], [`SharedCrawl`]): a job is acked
//!   only once its outcome is final, a dead worker's jobs are taken over after a lease, and
//!   per-host limits hold for the whole crawl.
//! - `http` is the HTTP of one job: clients, deadline, redirects, body limits, retries.
//! - `wire` sits under awc, on every connection: it lets a request that met a stale keep-alive
//!   connection be sent again at once on a fresh one, retires connections an HTTP/1.0 server
//!   closes, reads bodies that end with the connection, and opens new connections to a host
//!   gently until it shows it keeps them alive.
//!
//! # Invariants
//!
//! 1. Every job read ends in exactly one outcome (downloaded, not found, error, skipped) or, on an
//!    interrupted run, is counted as cancelled: the [`Summary`] counts add up to `jobs`.
//! 2. A file under its final name is complete and byte-identical to what the server sent.
//! 3. At most `pool_size` requests are in flight, and that many are when there is work (the
//!    client's connection limit is the pool size, not awc's default of 100).
//! 4. Memory is bounded by the pool size (and the body limit), not by the number of jobs.
//! 5. The run ends by itself when the last outcome is in.
//! 6. When the shutdown future resolves (or a [`CancelHandle`] is used), dispatch stops; in-flight
//!    jobs get the grace period to finish, the rest are cancelled, and no temp file remains. Past
//!    the grace period, stores under way finish before the summary: a file under its final name
//!    is always counted as downloaded.
//! 7. When [`Crawler::run`] returns, nothing of the run remains: no actor (see [`live_actors`]),
//!    timer, thread, connection or request of it.
//! 8. Nothing that may block runs on an event loop: a source that may block is read on a thread
//!    of its own ([`blocking_source`]), the sink is called only on the writer's threads, and every
//!    body reaches it as a reader, in pieces, whatever its size.
//!
//! # Backpressure and shutdown
//!
//! A fetcher takes a store permit before handing a body to the writer (one permit per fetcher),
//! and awaits the reporter for the outcomes it reports itself, so a slow disk or a slow listener
//! slows the crawl instead of growing a queue. Fetchers run on the run's own arbiter by default
//! (beside the supervisor and the reporter), so dispatch and counting never wake another thread.
//! Subscribers never slow the crawl: events go out with `try_send` and what a full channel
//! refuses is counted in [`Summary::events_dropped`].
//!
//! # Example
//!
//! A program without an async runtime of its own (see also `examples/embed.rs`):
//!
//! ```
//! use flags_actors::{Config, Crawler, DirSink, Event, Job};
//!
//! # // A small real server on 127.0.0.1, port 0, so the example runs anywhere.
//! # use actix_web::{web, App, HttpResponse, HttpServer};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let base = format!("http://{}", listener.local_addr()?);
//! # std::thread::spawn(move || actix_web::rt::System::new().block_on(async move {
//! #     HttpServer::new(|| App::new().default_service(web::to(|| async { HttpResponse::Ok().body("hello") })))
//! #         .workers(1).listen(listener)?.run().await
//! # }));
//! # let dest = tempfile::tempdir()?;
//! let config = Config::builder().pool_size(20).build()?;
//! let jobs = (1..=3).map(move |i| Job::new(format!("page{i}"), format!("{base}/{i}"), format!("{i}.html")));
//! let (events, handle) = Crawler::new(config, DirSink::new(dest.path())?).spawn(jobs);
//! for event in events {
//!     if let Event::Job(report) = event {
//!         println!("{} {}", report.job.key, report.outcome.kind());
//!     }
//! }
//! let summary = handle.join()?;
//! assert_eq!(summary.downloaded, 3);
//! # assert_eq!(std::fs::read(dest.path().join("2.html"))?, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod archive;
mod bar;
mod config;
mod extract;
mod fetcher;
mod frontier;
mod http;
mod job;
mod journal;
mod life;
mod names;
mod reporter;
mod seen;
mod shared;
mod sink;
pub mod sitemap;
mod source;
mod spec;
mod supervisor;
mod wire;
mod writer;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use actix::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigBuilder, ConfigError, Namer, Progress};
pub use extract::{html_links, is_html, Extract, Extracted, HtmlLinks, Page};
pub use job::{ErrorKind, Event, Job, JobError, JobReport, Outcome, Summary};
pub use life::live_actors;
pub use names::{file_for_url, safe_segment, url_tag};
pub use reporter::Listener;
pub use seen::SeenSet;
pub use shared::{SharedCrawl, SharedStatus};
pub use sink::{is_safe_relative, DirSink, Part, Sink};
pub use source::blocking_source;
pub use spec::{normalise, CrawlSpec, CrawlSpecBuilder, SpecError};

use fetcher::{CrawlHooks, Shared};
use frontier::{CrawlStats, Frontier, NextUrl, PageDone, PauseHost};
use life::Life;
use reporter::{CrawlLink, Finalize, Reporter};
use shared::SharedFrontier;
use supervisor::{JobStream, Stop, Supervisor};
use writer::{Writer, WriterGate};

/// One crawl: a config, a sink, and who hears about it. Run it with [`Crawler::run`] inside an
/// actix system, or with [`Crawler::spawn`] from plain threaded code.
pub struct Crawler {
    config: Config,
    sink: Arc<dyn Sink>,
    subscribers: Vec<Sender<Event>>,
    listener: Option<Listener>,
    capacity: usize,
    cancel: CancellationToken,
}

/// Stops a crawl from anywhere, any thread, as its shutdown future does: no new jobs, and the
/// jobs in flight get the grace period. Get one with [`Crawler::cancel_handle`].
#[derive(Debug, Clone)]
pub struct CancelHandle(CancellationToken);

impl CancelHandle {
    /// Asks the crawl to stop. Calling it again, or after the crawl ended, does nothing.
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

/// Why a spawned crawl gave no summary.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// The crawl's thread panicked.
    #[error("the crawl thread panicked: {0}")]
    Panicked(String),
    /// The actix system could not start.
    #[error("cannot start the actor system: {0}")]
    System(String),
    /// The crawl journal could not be opened or read.
    #[error("crawl journal: {0}")]
    Journal(String),
    /// The shared crawl's Redis did not answer.
    #[error("cannot reach Redis: {0}")]
    Redis(String),
}

impl Crawler {
    /// A crawl that stores bodies in `sink`.
    pub fn new(config: Config, sink: impl Sink) -> Self {
        Self::with_sink(config, Arc::new(sink))
    }

    /// Like [`Crawler::new`], with a sink the caller keeps a handle to.
    pub fn with_sink(config: Config, sink: Arc<dyn Sink>) -> Self {
        Crawler {
            config,
            sink,
            subscribers: Vec::new(),
            listener: None,
            capacity: 1024,
            cancel: CancellationToken::new(),
        }
    }

    /// A handle that stops this crawl when [`CancelHandle::cancel`] is called, as the shutdown
    /// future given to [`Crawler::run`] does.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(self.cancel.clone())
    }

    /// Also send every event to `tx`, without ever blocking: events a full or closed channel
    /// refuses are dropped and counted in [`Summary::events_dropped`].
    pub fn subscribe(mut self, tx: Sender<Event>) -> Self {
        self.subscribers.push(tx);
        self
    }

    /// Call `f` with every event, in order and without loss, on the reporter's thread. Keep it
    /// quick: the crawl waits for it (printing one line per job is fine).
    pub fn on_event(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.listener = Some(Box::new(f));
        self
    }

    /// The capacity of the channel [`Crawler::spawn`] returns (default 1024 events).
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Runs the crawl inside the current actix system and returns its summary when the last job
    /// has its outcome, or when `shutdown` resolves (or the [`CancelHandle`] is used) and the
    /// grace period is over. When it returns, nothing of the run is left: every actor, timer,
    /// thread and connection it started has ended, and no request of it is in flight.
    ///
    /// The iterator is read on the run's event loop, one job whenever a fetcher is free: it must
    /// not block. A source that may (standard input, a pipe) goes through [`blocking_source`] and
    /// [`Crawler::run_stream`].
    pub async fn run<I>(self, jobs: I, shutdown: impl Future<Output = ()>) -> Summary
    where
        I: IntoIterator<Item = Job>,
        I::IntoIter: 'static,
    {
        self.run_stream(futures_util::stream::iter(jobs), shutdown)
            .await
    }

    /// [`Crawler::run`] with an async source: a job is awaited only when a fetcher is free, and
    /// the crawl goes on while it is awaited.
    pub async fn run_stream<S>(self, jobs: S, shutdown: impl Future<Output = ()>) -> Summary
    where
        S: futures_util::Stream<Item = Job> + 'static,
    {
        self.go(Source::Jobs(Box::pin(jobs)), shutdown).await
    }

    /// Crawls from the spec's seeds: pages are fetched, their links extracted, and the ones in
    /// scope, within the limits and new are queued in the frontier, which hands them out as their
    /// hosts allow (see [`CrawlSpec`]). Returns when nothing is left to fetch, or as
    /// [`Crawler::run`] on shutdown; [`Summary::not_visited`] says how much was left then.
    /// Fails before fetching anything when the journal cannot be opened.
    pub async fn crawl(
        self,
        spec: CrawlSpec,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, CrawlError> {
        let stats = Arc::new(CrawlStats::default());
        let life = Life::default();
        let ending = CancellationToken::new();
        let extractor = Arc::clone(&spec.extractor);
        let frontier = Frontier::new(
            spec,
            self.config.clone(),
            Arc::clone(&stats),
            ending.clone(),
            life.clone(),
        )
        .map_err(|e| CrawlError::Journal(e.to_string()))?;
        let addr = frontier.start();
        let source = Source::Frontier(Hooks {
            next: addr.clone().recipient(),
            done: addr.clone().recipient(),
            pause: addr.recipient(),
            stats,
            extractor: Some(extractor),
            life,
            ending,
        });
        Ok(self.go(source, shutdown).await)
    }

    /// [`Crawler::crawl`] as one of many workers sharing the crawl through Redis (see
    /// [`SharedCrawl`]): the seeds are queued unless the crawl has seen them, and this worker
    /// takes pages from the shared queue until none is left anywhere. The spec's journal and
    /// page limit do not apply (Redis keeps the state). Fails when Redis does not answer.
    pub async fn crawl_shared(
        self,
        spec: CrawlSpec,
        shared: SharedCrawl,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, CrawlError> {
        let extractor = Some(Arc::clone(&spec.extractor));
        self.shared(Some(spec), Vec::new(), extractor, shared, shutdown)
            .await
    }

    /// [`Crawler::run`] as one of many workers sharing one list of jobs through Redis: each
    /// worker queues the jobs the crawl has not seen (so the list is queued once whoever starts
    /// first), then takes jobs until none is left anywhere. Fails when Redis does not answer.
    pub async fn run_shared(
        self,
        jobs: impl IntoIterator<Item = Job>,
        shared: SharedCrawl,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, CrawlError> {
        let jobs = jobs.into_iter().collect();
        self.shared(None, jobs, None, shared, shutdown).await
    }

    async fn shared(
        self,
        spec: Option<CrawlSpec>,
        jobs: Vec<Job>,
        extractor: Option<Arc<dyn Extract>>,
        shared: SharedCrawl,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, CrawlError> {
        let stats = Arc::new(CrawlStats::default());
        let life = Life::default();
        let ending = CancellationToken::new();
        let frontier = SharedFrontier::join(
            shared,
            spec,
            jobs,
            self.config.clone(),
            Arc::clone(&stats),
            ending.clone(),
            life.clone(),
        )
        .await
        .map_err(CrawlError::Redis)?;
        let addr = frontier.start();
        let source = Source::Frontier(Hooks {
            next: addr.clone().recipient(),
            done: addr.clone().recipient(),
            pause: addr.recipient(),
            stats,
            extractor,
            life,
            ending,
        });
        Ok(self.go(source, shutdown).await)
    }

    async fn go(self, source: Source, shutdown: impl Future<Output = ()>) -> Summary {
        let Crawler {
            config,
            sink,
            subscribers,
            listener,
            cancel: stop,
            ..
        } = self;
        let grace = config.grace;
        let started = Instant::now();
        let (jobs, crawl, life, ending) = match source {
            Source::Jobs(jobs) => (jobs, None, Life::default(), CancellationToken::new()),
            Source::Frontier(hooks) => {
                let jobs = frontier::job_stream(hooks.next.clone());
                let (life, ending) = (hooks.life.clone(), hooks.ending.clone());
                (jobs, Some(hooks), life, ending)
            }
        };
        let (done_tx, mut done_rx) = oneshot::channel();
        let reporter = Reporter::new(
            config.pool_size + 16,
            config.progress,
            subscribers,
            listener,
            done_tx,
            life.clone(),
            crawl.as_ref().map(|hooks| CrawlLink {
                frontier: hooks.done.clone(),
                stats: Arc::clone(&hooks.stats),
            }),
        )
        .start();
        let gate = Arc::new(WriterGate::default());
        let writer = Writer::start(
            config.writer_threads,
            Arc::clone(&sink),
            Arc::clone(&gate),
            reporter.clone(),
            life.clone(),
        );
        let store_permits = Arc::new(tokio::sync::Semaphore::new(
            config.pool_size.max(config.writer_threads),
        ));
        // Extra arbiters only when asked for: by default the fetchers share the run's own event
        // loop with the supervisor and the reporter, so handing out jobs and counting outcomes
        // never wakes another thread (cross-thread wake-ups cost more than a small request).
        let arbiters: Vec<Arbiter> = (0..config.workers).map(|_| Arbiter::new()).collect();
        let mut handles: Vec<actix_rt::ArbiterHandle> =
            arbiters.iter().map(Arbiter::handle).collect();
        if handles.is_empty() {
            handles.push(Arbiter::current());
        }
        let shared = Arc::new(Shared {
            config,
            writer,
            reporter: reporter.clone(),
            store_permits: Arc::clone(&store_permits),
            cancel: ending.clone(),
            life: life.clone(),
            crawl: crawl.map(|hooks| CrawlHooks {
                frontier: hooks.pause,
                extractor: hooks.extractor,
            }),
        });
        let supervisor = Supervisor::new(jobs, handles, shared, reporter.clone()).start();

        let mut shutdown = std::pin::pin!(shutdown);
        let finished = tokio::select! {
            summary = &mut done_rx => summary.ok(),
            _ = &mut shutdown => None,
            _ = stop.cancelled() => None,
        };
        let summary = match finished {
            Some(summary) => Some(summary),
            None => {
                supervisor.do_send(Stop);
                match actix_rt::time::timeout(grace, &mut done_rx).await {
                    Ok(summary) => summary.ok(),
                    Err(_) => {
                        // Past the grace period: no store starts any more, and the ones under way
                        // (at most one per writer thread) finish before the summary is made, so
                        // every file renamed is counted as downloaded and every other job as
                        // cancelled. That wait has no bound: a store is a write, an fsync and a
                        // rename, and a summary that missed a file would be wrong forever.
                        gate.close();
                        while gate.busy() > 0 {
                            actix_rt::time::sleep(Duration::from_millis(1)).await;
                        }
                        reporter.do_send(Finalize);
                        done_rx.await.ok()
                    }
                }
            }
        };

        // End everything the run started: fetchers drop their requests (and connections), the
        // supervisor stops, the writer threads end with the last address of the writer.
        gate.close();
        ending.cancel();
        drop((supervisor, reporter));
        wait_until(|| gate.busy() == 0 && life.live() == 0, grace).await;
        for arbiter in &arbiters {
            arbiter.stop();
        }
        summary.unwrap_or_else(|| Summary {
            elapsed: started.elapsed(),
            ..Summary::default()
        })
    }

    /// Runs the crawl on a thread of its own (with its own actix system) and returns at once: the
    /// events, and a handle to stop the crawl or wait for its summary. The channel closes after
    /// the last event, so `for event in rx` ends by itself.
    pub fn spawn<I>(self, jobs: I) -> (Receiver<Event>, CrawlHandle)
    where
        I: IntoIterator<Item = Job> + Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::bounded(self.capacity);
        let crawler = self.subscribe(tx);
        let stop = Arc::new(Notify::new());
        let stop_here = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("flags-crawl".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                let summary = system.block_on(async move {
                    let shutdown = stop_here.notified();
                    crawler.run(jobs, shutdown).await
                });
                System::current().stop();
                summary
            });
        (rx, CrawlHandle { thread, stop })
    }
}

/// Where a run's jobs come from.
enum Source {
    /// A list or stream: a frontier that never grows.
    Jobs(JobStream),
    /// A frontier (in memory or shared): its addresses and what the run shares with it.
    Frontier(Hooks),
}

/// A started frontier, as the run talks to it.
struct Hooks {
    next: Recipient<NextUrl>,
    done: Recipient<PageDone>,
    pause: Recipient<PauseHost>,
    stats: Arc<CrawlStats>,
    extractor: Option<Arc<dyn Extract>>,
    life: Life,
    ending: CancellationToken,
}

/// The handle of a crawl started with [`Crawler::spawn`].
pub struct CrawlHandle {
    thread: std::io::Result<thread::JoinHandle<Summary>>,
    stop: Arc<Notify>,
}

impl CrawlHandle {
    /// Asks the crawl to stop, as a shutdown signal does: no new jobs, in-flight ones get the
    /// grace period.
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// Waits for the crawl to end and returns its summary.
    pub fn join(self) -> Result<Summary, CrawlError> {
        match self.thread {
            Ok(handle) => handle
                .join()
                .map_err(|p| CrawlError::Panicked(panic_message(&*p))),
            Err(e) => Err(CrawlError::System(e.to_string())),
        }
    }
}

/// Waits (politely, on the event loop) until `done` holds or `bound` has passed.
async fn wait_until(done: impl Fn() -> bool, bound: Duration) {
    let deadline = Instant::now() + bound;
    while !done() && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
