//! A **run**: the public [`Crawler`], which wires the actors of one run together, starts them, and
//! ends everything it started before it returns.
//!
//! The wiring: the reporter and the writer first (every outcome goes to the reporter), then the
//! frontier when there is one (a crawl, or a list shared through Redis), then the supervisor, which
//! starts the fetchers. A crawl that keeps a web archive opens it before anything is fetched and
//! starts its archivist before the frontier; the fetchers' and the frontier's clients record
//! through its tap, and the run returns only once the archive's last file is closed. Shutdown is a future: the run waits for the summary, or for its shutdown
//! future (or [`CancelHandle`]), then for the grace period, then for the stores under way, then for
//! every actor and task of the run to end; nothing polls.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use actix::prelude::*;
use crossbeam_channel::{Receiver, Sender};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::archive::{WarcOptions, WarcWriter};
use crate::archivist::{with_crawl_info, ArchiveStats, Archivist};
use crate::config::Config;
use crate::extract::Extract;
use crate::fetcher::{CrawlHooks, Shared};
use crate::frontier::{job_stream, Core, Frontier};
use crate::index::{Index, Known};
use crate::job::{Event, Job, Summary};
use crate::life::{panic_message, Life};
use crate::policy::Policy;
use crate::protocol::{CrawlStats, Failed, Finalize, NextUrl, PageDone, Peers, Stop};
use crate::recording::ArchiveTap;
use crate::reporter::{CrawlLink, Listener, Reporter};
use crate::sink::Sink;
use crate::spec::{CrawlSpec, SaveRules};
use crate::store::memory::MemoryStore;
use crate::store::redis::{JoinError, RedisStore, SharedCrawl};
use crate::store::{Clock, Entry, Store};
use crate::supervisor::{JobStream, Supervisor};
use crate::writer::{Writer, WriterGate};

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

/// Why a crawl gave no summary; nothing was fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The shared crawl refused this worker: Redis cannot run it, or the crawl of that name was
    /// started with other options.
    #[error("{0}")]
    Refused(String),
    /// The web archive could not be opened (its folder cannot be made or written).
    #[error("web archive: {0}")]
    Archive(String),
}

impl From<JoinError> for CrawlError {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::Unreachable(m) => CrawlError::Redis(m),
            JoinError::Unsupported(m) | JoinError::Mismatch(m) => CrawlError::Refused(m),
        }
    }
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
    /// not block. A source that may (standard input, a pipe) goes through
    /// [`blocking_source`](crate::blocking_source) and [`Crawler::run_stream`].
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
        // First: an archive that cannot be written stops the crawl before anything is.
        let archive = self.open_archive(&spec, spec.warc.clone())?;
        let (store, done) = match &spec.journal {
            Some(path) => MemoryStore::journalled(Clock::real(0), path, spec.resume)
                .map_err(|e| CrawlError::Journal(e.to_string()))?,
            None => (MemoryStore::new(Clock::real(0)), 0),
        };
        let index = self.open_index(spec.index.as_deref(), spec.resume)?;
        let stats = Arc::new(CrawlStats::default());
        stats
            .discovered
            .store(store.seen(), std::sync::atomic::Ordering::Relaxed);
        let policy = Policy::crawl(&spec, &self.config);
        let seeds = seeds(&spec);
        let extractor = Some(Arc::clone(&spec.extractor));
        let ending = CancellationToken::new();
        let mut core = self.core(policy, store, &stats);
        core.set_done(done);
        let save = spec.save.clone();
        let source = self
            .frontier(core, seeds, extractor, ending, index, save, archive)
            .await?;
        Ok(self.go(source, shutdown).await)
    }

    /// The crawl's web archive, opened (what a killed run with the same prefix left is finished
    /// first), with the crawl's options in its `warcinfo` records.
    fn open_archive(
        &self,
        spec: &CrawlSpec,
        opts: Option<WarcOptions>,
    ) -> Result<Option<(WarcWriter, PathBuf)>, CrawlError> {
        let Some(opts) = opts else {
            return Ok(None);
        };
        let dir = opts.dir().to_path_buf();
        let opts = with_crawl_info(opts, spec, &self.config);
        let writer = Archivist::open(opts)
            .map_err(|e| CrawlError::Archive(format!("{}: {e}", dir.display())))?;
        Ok(Some((writer, dir)))
    }

    /// The crawl's index, when its spec keeps one: read first when the crawl goes on from an
    /// earlier run (resumed, or skipping what is stored).
    fn open_index(
        &self,
        path: Option<&Path>,
        resume: bool,
    ) -> Result<Option<(Arc<Index>, Known)>, CrawlError> {
        let Some(path) = path else {
            return Ok(None);
        };
        let fail = |e: std::io::Error| CrawlError::Journal(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let keep = resume || self.config.skip_existing;
        let (index, known) = Index::open(path, keep, self.config.skip_existing).map_err(fail)?;
        Ok(Some((Arc::new(index), known)))
    }

    /// [`Crawler::crawl`] as one of many workers sharing the crawl through Redis (see
    /// [`SharedCrawl`]): the seeds are queued unless the crawl has seen them, and this worker
    /// takes pages from the shared queue until none is left anywhere. The spec's journal and
    /// page limit do not apply (Redis keeps the state). Fails when Redis does not answer, cannot
    /// run a shared crawl, or holds a crawl of that name started with other options.
    pub async fn crawl_shared(
        self,
        spec: CrawlSpec,
        shared: SharedCrawl,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, CrawlError> {
        let mut identity = vec![("what is shared", "a crawl".to_string())];
        identity.extend(spec.identity());
        let mut policy = Policy::crawl(&spec, &self.config);
        policy.max_pages = None;
        let archive = spec
            .warc
            .clone()
            .map(|o| (o.worker(shared.consumer_name()), spec.clone()));
        let crawl = CrawlParts {
            extractor: Some(Arc::clone(&spec.extractor)),
            index: spec.index.clone(),
            save: spec.save.clone(),
            // Each worker writes files of its own, which may share a folder with the others'.
            archive,
        };
        self.shared(policy, seeds(&spec), identity, crawl, shared, shutdown)
            .await
    }

    /// [`Crawler::run`] as one of many workers sharing one list of jobs through Redis: each
    /// worker queues the jobs the crawl has not seen (so the list is queued once whoever starts
    /// first), then takes jobs until none is left anywhere. Every worker gives the same list.
    /// Fails as [`Crawler::crawl_shared`] does.
    pub async fn run_shared(
        self,
        jobs: impl IntoIterator<Item = Job>,
        shared: SharedCrawl,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, CrawlError> {
        let mut digest = Sha256::new();
        let entries: Vec<Entry> = jobs
            .into_iter()
            .map(|job| {
                for part in [job.key.as_bytes(), job.url.as_bytes()] {
                    digest.update(part);
                    digest.update([0]);
                }
                digest.update(job.file.to_string_lossy().as_bytes());
                digest.update([0]);
                Entry::of_job(&job)
            })
            .collect();
        let identity = vec![
            ("what is shared", "a list of jobs".to_string()),
            ("the list of jobs", format!("{:x}", digest.finalize())),
        ];
        let policy = Policy::list(&self.config);
        let crawl = CrawlParts::default();
        self.shared(policy, entries, identity, crawl, shared, shutdown)
            .await
    }

    async fn shared(
        self,
        policy: Policy,
        seeds: Vec<Entry>,
        identity: Vec<(&'static str, String)>,
        crawl: CrawlParts,
        shared: SharedCrawl,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, CrawlError> {
        let ending = CancellationToken::new();
        let store = RedisStore::join(shared.clone(), &identity, ending.clone()).await?;
        // Only once the crawl accepted this worker: a refused worker writes nothing.
        let archive = match crawl.archive {
            Some((opts, spec)) => self.open_archive(&spec, Some(opts))?,
            None => None,
        };
        let index = self.open_index(crawl.index.as_deref(), false)?;
        let stats = Arc::new(CrawlStats::default());
        let core = self.core(policy, store, &stats);
        let sink = Arc::clone(&self.sink);
        let source = self
            .frontier(
                core,
                seeds,
                crawl.extractor,
                ending,
                index,
                crawl.save,
                archive,
            )
            .await?;
        let mut summary = self.go(source, shutdown).await;
        if let Ok(status) = shared.status().await {
            // Complete: no store of the crawl can be under way anywhere, so what killed workers
            // left half written can go.
            if status.complete() && summary.lost.is_none() {
                if let Err(e) = sink.tidy() {
                    eprintln!("flags: cannot remove the temp files of killed workers: {e}");
                }
            }
            summary.shared = Some(status);
        }
        Ok(summary)
    }

    /// The frontier's core over `store`.
    fn core<S: Store>(&self, policy: Policy, store: S, stats: &Arc<CrawlStats>) -> Core<S> {
        // The product token of the User-Agent is the name robots.txt groups are matched with.
        let agent = self
            .config
            .user_agent
            .split(['/', ' '])
            .next()
            .unwrap_or("flags")
            .to_string();
        // A shared store is read ahead a little, so fetchers never wait for a round trip.
        let hold = self.config.pool_size * 2;
        let jitter = Box::new(|| rand::thread_rng().gen::<f64>());
        Core::new(policy, store, agent, hold, Arc::clone(stats), jitter)
    }

    /// Seeds the frontier and starts it (and the archivist, when the crawl keeps an archive).
    #[allow(clippy::too_many_arguments)]
    async fn frontier<S: Store + 'static>(
        &self,
        mut core: Core<S>,
        seeds: Vec<Entry>,
        extractor: Option<Arc<dyn Extract>>,
        ending: CancellationToken,
        index: Option<(Arc<Index>, Known)>,
        save: SaveRules,
        archive: Option<(WarcWriter, PathBuf)>,
    ) -> Result<Source, CrawlError> {
        let stats = core.stats();
        core.seed(seeds)
            .await
            .map_err(|e| CrawlError::Redis(e.to_string()))?;
        let policy = Arc::new(core.policy.clone());
        let life = Life::default();
        let archive = archive.map(|(writer, dir)| {
            let stats = Arc::new(ArchiveStats::default());
            let addr = Archivist::start(writer, &dir, Arc::clone(&stats), life.clone());
            // Two exchanges per fetcher at most between the fetchers and the disk: one being
            // read, one waiting to be written.
            let permits = self.config.pool_size * 2;
            let tap = ArchiveTap::new(addr.clone().recipient(), addr.recipient(), permits);
            (tap, stats)
        });
        let addr = Frontier::new(
            core,
            self.config.clone(),
            Arc::clone(&stats),
            ending.clone(),
            life.clone(),
            archive.as_ref().map(|(tap, _)| tap.clone()),
        )
        .start();
        Ok(Source::Frontier(Box::new(Hooks {
            next: addr.clone().recipient(),
            done: addr.clone().recipient(),
            failed: addr.recipient(),
            stats,
            crawl: CrawlHooks { extractor, policy },
            index,
            save,
            archive,
            life,
            ending,
        })))
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
        let (jobs, mut crawl, life, ending): (JobStream, _, _, _) = match source {
            Source::Jobs(jobs) => (jobs, None, Life::default(), CancellationToken::new()),
            Source::Frontier(hooks) => {
                let jobs = job_stream(hooks.next.clone());
                let (life, ending) = (hooks.life.clone(), hooks.ending.clone());
                (jobs, Some(hooks), life, ending)
            }
        };
        // The run keeps the archive's counts only: the tap goes to the fetchers, and the archive
        // closes once the last of them is gone.
        let (archive_tap, archive) = match crawl.as_mut().and_then(|h| h.archive.take()) {
            Some((tap, stats)) => (Some(tap), Some(stats)),
            None => (None, None),
        };
        let (index, known) = match crawl.as_mut().and_then(|h| h.index.take()) {
            Some((index, known)) => (Some(index), known),
            None => (None, Known::default()),
        };
        let stats = crawl.as_ref().map(|h| Arc::clone(&h.stats));
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
                index: index.clone(),
                cap: hooks.crawl.policy.max_pages,
            }),
        )
        .start();
        let rules = crawl.as_ref().map(|h| h.save.clone()).unwrap_or_default();
        let gate = Arc::new(WriterGate::knowing(known, rules));
        let writer = Writer::start(
            config.writer_threads,
            Arc::clone(&sink),
            Arc::clone(&gate),
            reporter.clone().recipient(),
            index,
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
        let peers = Peers {
            save: writer.clone().recipient(),
            append: writer.clone().recipient(),
            exists: writer.clone().recipient(),
            existing: writer.recipient(),
            finished: reporter.clone().recipient(),
            failed: crawl.as_ref().map(|h| h.failed.clone()),
        };
        let shared = Arc::new(Shared {
            config,
            peers,
            store_permits: Arc::clone(&store_permits),
            cancel: ending.clone(),
            life: life.clone(),
            crawl: crawl.map(|hooks| hooks.crawl),
            archive: archive_tap,
        });
        let supervisor = Supervisor::new(
            jobs,
            handles,
            shared,
            reporter.clone().recipient(),
            reporter.clone().recipient(),
        )
        .start();

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
                        // Past the grace period: no store starts any more, and the ones under
                        // way (at most one per writer thread) finish before the summary is made,
                        // so every file renamed is counted as downloaded and every other job as
                        // cancelled. That wait has no bound: a store is a write, an fsync and a
                        // rename, and a summary that missed a file would be wrong forever.
                        gate.close();
                        gate.idle().await;
                        reporter.do_send(Finalize);
                        done_rx.await.ok()
                    }
                }
            }
        };

        // End everything the run started: fetchers drop their requests (and connections), the
        // supervisor and the frontier stop, the writer threads end with the last address of the
        // writer.
        gate.close();
        ending.cancel();
        drop((supervisor, reporter));
        let _ = actix_rt::time::timeout(grace, async {
            gate.idle().await;
            life.ended().await;
        })
        .await;
        for arbiter in &arbiters {
            arbiter.stop();
        }
        let mut summary = summary.unwrap_or_else(|| Summary {
            elapsed: started.elapsed(),
            ..Summary::default()
        });
        summary.lost = stats.and_then(|s| s.lost.lock().ok().and_then(|l| l.clone()));
        if let Some(stats) = archive {
            // The last tap gone, the archivist writes what is queued and closes the current file
            // (fsync, index, rename). Past the patience (a disk that hangs) the file stays
            // `.open`, for the next run with the same prefix to finish, and the summary says so.
            stats.closed(ARCHIVE_PATIENCE.max(grace)).await;
            summary.archive = Some(stats.summary());
        }
        summary
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

/// How long a run waits, at its end, for its web archive's last file to be closed.
const ARCHIVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// The seeds of a crawl, as entries.
fn seeds(spec: &CrawlSpec) -> Vec<Entry> {
    spec.seeds
        .iter()
        .map(|u| Entry::url(u.as_str(), 0, 0, None))
        .collect()
}

/// What a shared crawl, rather than a shared list of jobs, gives its frontier (a list has none
/// of it).
#[derive(Default)]
struct CrawlParts {
    extractor: Option<Arc<dyn Extract>>,
    index: Option<PathBuf>,
    save: SaveRules,
    /// Where the worker's web archive goes, and the crawl it records.
    archive: Option<(WarcOptions, CrawlSpec)>,
}

/// Where a run's jobs come from.
enum Source {
    /// A list or stream: a frontier that never grows.
    Jobs(JobStream),
    /// A frontier (in memory or shared): its addresses and what the run shares with it.
    Frontier(Box<Hooks>),
}

/// A started frontier, as the run talks to it.
struct Hooks {
    next: Recipient<NextUrl>,
    done: Recipient<PageDone>,
    failed: Recipient<Failed>,
    stats: Arc<CrawlStats>,
    crawl: CrawlHooks,
    /// The crawl's index, and what it said when opened.
    index: Option<(Arc<Index>, Known)>,
    /// Which pages are saved.
    save: SaveRules,
    /// The web archive's tap and counts, when the crawl keeps one.
    archive: Option<(ArchiveTap, Arc<ArchiveStats>)>,
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
