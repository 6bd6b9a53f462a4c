//! The **Frontier**: owns what is left to fetch in a crawl (or in a list of jobs shared through
//! Redis), and hands it out as its hosts allow.
//!
//! Owns: a driver task holding the frontier's [`Core`] (the hosts' queues, robots.txt per host,
//! the jobs handed out) over its store (memory or Redis), and the robots.txt requests under way.
//! Receives: [`NextUrl`] from the supervisor's job stream (answered when a host is ready, or with
//! `None` once nothing is left anywhere), [`PageDone`] from the reporter for every page with its
//! outcome (and the links found on it), [`Failed`] from a fetcher whose attempt failed in a way
//! that may pass (answered with a [`Retry`]: later, or the error it ends with).
//! Sends: jobs to the supervisor (as answers), and its own robots.txt requests (recorded in the
//! crawl's web archive when it keeps one: its clients carry the archive's tap).
//!
//! Every decision comes from the crawl policy (`policy`); the store only keeps state. When the
//! store's state is lost (a shared crawl's Redis restarted without its data), the frontier hands
//! out nothing more, records why in [`CrawlStats::lost`], and the run ends.

mod core;

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub(crate) use self::core::{Core, Next};
use crate::config::Config;
use crate::http::{build_clients, fetch, fetch_small, Clients, Got, Read, Want};
use crate::job::{Job, JobError};
use crate::life::Life;
use crate::policy::robots::{ROBOTS_LIMIT, ROBOTS_REDIRECTS};
use crate::policy::{ms, RobotsAnswer};
pub(crate) use crate::protocol::CrawlStats;
use crate::protocol::{Failed, NextUrl, PageDone, Retry};
use crate::recording::ArchiveTap;
use crate::sitemap::Sitemap;
use crate::store::{Store, StoreError};

/// What the actor passes to its driver.
enum Msg {
    Next(oneshot::Sender<Option<Job>>),
    Done(PageDone),
    Failed(Failed, oneshot::Sender<Retry>),
    Robots(Arc<str>, RobotsAnswer),
    /// A sitemap's URL, the status it answered (if any), and what it lists (if it could be read).
    Sitemap(String, Option<u16>, Option<Sitemap>),
}

/// The actor other actors talk to; the work is done by its driver task, one message at a time.
pub(crate) struct Frontier {
    tx: mpsc::UnboundedSender<Msg>,
    driver: Option<LocalBoxFuture<'static, ()>>,
    life: Life,
}

impl Frontier {
    /// A frontier over `core`, whose robots.txt requests use `config`'s HTTP settings (and are
    /// recorded through `archive`, when the crawl keeps one). It stops when `cancel` is
    /// cancelled.
    pub fn new<S: Store + 'static>(
        core: Core<S>,
        config: Config,
        stats: Arc<CrawlStats>,
        cancel: CancellationToken,
        life: Life,
        archive: Option<ArchiveTap>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver {
            core,
            config,
            clients: None,
            archive,
            tx: tx.clone(),
            stats,
            cancel,
            life: life.clone(),
            waiters: VecDeque::new(),
        };
        Frontier {
            tx,
            driver: Some(Box::pin(driver.run(rx))),
            life,
        }
    }
}

impl Actor for Frontier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.life.born();
        if let Some(driver) = self.driver.take() {
            ctx.spawn(driver.into_actor(self).map(|_, _, ctx| ctx.stop()));
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.life.died();
    }
}

impl Handler<NextUrl> for Frontier {
    type Result = ResponseFuture<Option<Job>>;

    fn handle(&mut self, _: NextUrl, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Next(tx));
        Box::pin(async move { rx.await.ok().flatten() })
    }
}

impl Handler<PageDone> for Frontier {
    type Result = ();

    fn handle(&mut self, done: PageDone, _: &mut Context<Self>) {
        let _ = self.tx.send(Msg::Done(done));
    }
}

impl Handler<Failed> for Frontier {
    type Result = ResponseFuture<Retry>;

    fn handle(&mut self, failed: Failed, _: &mut Context<Self>) -> Self::Result {
        let fallback = Retry::Fail(JobError::new(failed.kind, failed.message.clone()));
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Failed(failed, tx));
        Box::pin(async move { rx.await.unwrap_or(fallback) })
    }
}

/// The frontier's work, on its own task.
struct Driver<S> {
    core: Core<S>,
    config: Config,
    /// For robots.txt requests, built at the first one.
    clients: Option<Clients>,
    /// Where the crawl's exchanges are recorded, when it keeps a web archive.
    archive: Option<ArchiveTap>,
    tx: mpsc::UnboundedSender<Msg>,
    stats: Arc<CrawlStats>,
    cancel: CancellationToken,
    /// The run's live actors and tasks (robots.txt requests count in).
    life: Life,
    /// The supervisor's questions not yet answered, first come first served.
    waiters: VecDeque<oneshot::Sender<Option<Job>>>,
}

impl<S: Store + 'static> Driver<S> {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let lost = match self.serve(&mut rx).await {
            Ok(()) => return,
            Err(StoreError::Cancelled) => return,
            Err(StoreError::Lost(why)) => why,
        };
        if let Ok(mut slot) = self.stats.lost.lock() {
            *slot = Some(lost.clone());
        }
        // Nothing more is handed out; every question gets its final answer until the run ends.
        for w in self.waiters.drain(..) {
            let _ = w.send(None);
        }
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => return,
                    Some(Msg::Next(w)) => { let _ = w.send(None); }
                    Some(Msg::Failed(f, w)) => {
                        let _ = w.send(Retry::Fail(JobError::new(f.kind, f.message)));
                    }
                    Some(_) => {}
                },
                _ = self.cancel.cancelled() => return,
            }
        }
    }

    async fn serve(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Result<(), StoreError> {
        let mut wake: Option<u64> = None;
        let mut tick = tokio::time::Instant::now();
        loop {
            wake = self.dispatch(wake).await?;
            // Deferred writes go with the store's next question; with none to come, on their
            // own once due. Spare slots nobody asked for go back.
            self.core.upkeep().await?;
            let until = match (wake, self.core.due()) {
                (Some(w), Some(d)) => Some(w.min(d)),
                (w, d) => w.or(d),
            };
            let now = self.core.store.now();
            let sleep = until.map(|t| Duration::from_millis(t.saturating_sub(now)));
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    self.handle(msg).await?;
                    // Everything that arrived meanwhile before dispatching again.
                    while let Ok(msg) = rx.try_recv() {
                        self.handle(msg).await?;
                    }
                }
                _ = sleep_for(sleep) => wake = None,
                _ = tokio::time::sleep_until(tick) => {
                    tick = tokio::time::Instant::now() + self.core.tick().await?;
                }
                _ = self.cancel.cancelled() => return self.close(rx).await,
            }
        }
    }

    /// The run is ending: the pages whose outcome already arrived are done in the store, and
    /// what the store deferred is sent (one try each: the run does not wait for a Redis away),
    /// so another worker does not do them again.
    async fn close(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Result<(), StoreError> {
        // Only what is there now: the senders are stopping.
        for _ in 0..rx.len() {
            let Ok(msg) = rx.try_recv() else { break };
            if let Msg::Done(done) = msg {
                self.core.page_done(done).await?;
            }
        }
        self.core.close().await
    }

    /// Answers waiting questions while there is work; returns when to look again.
    async fn dispatch(&mut self, wake: Option<u64>) -> Result<Option<u64>, StoreError> {
        while !self.waiters.is_empty() {
            if self.waiters.front().is_some_and(|w| w.is_closed()) {
                self.waiters.pop_front();
                continue;
            }
            match self.core.next().await? {
                Next::Job(job) => {
                    if let Some(w) = self.waiters.pop_front() {
                        if let Err(Some(job)) = w.send(Some(job)) {
                            // The supervisor stopped meanwhile.
                            self.core.take_back(job).await?;
                        }
                    }
                }
                Next::Robots { host, url } => self.fetch_robots(host, url),
                Next::Sitemap { url } => self.fetch_sitemap(url),
                Next::Wait(at) => {
                    // A shared store may get work from other workers at any time: look again.
                    let poll = self
                        .core
                        .store
                        .poll()
                        .map(|p| self.core.store.now() + ms(p));
                    return Ok(match (at, poll) {
                        (Some(a), Some(p)) => Some(a.min(p)),
                        (a, p) => a.or(p),
                    });
                }
                Next::Over => {
                    for w in self.waiters.drain(..) {
                        let _ = w.send(None);
                    }
                    return Ok(None);
                }
            }
        }
        Ok(wake)
    }

    async fn handle(&mut self, msg: Msg) -> Result<(), StoreError> {
        match msg {
            Msg::Next(w) => self.waiters.push_back(w),
            Msg::Done(done) => self.core.page_done(done).await?,
            Msg::Failed(f, w) => {
                let retry = self.core.failed(f).await?;
                let _ = w.send(retry);
            }
            Msg::Robots(host, answer) => self.core.robots(host, answer).await?,
            Msg::Sitemap(url, status, read) => self.core.sitemap_done(&url, status, read).await?,
        }
        Ok(())
    }

    /// Asks for a robots.txt on a task of its own; the answer comes back as a message. It ends
    /// with the run, whatever the server does.
    fn fetch_robots(&mut self, host: Arc<str>, url: String) {
        let clients = self.clients();
        let config = self.config.clone();
        let deadline = self.core.policy.robots_timeout;
        let tx = self.tx.clone();
        let cancel = self.cancel.clone();
        let alive = self.life.task();
        actix_rt::spawn(async move {
            let _alive = alive;
            let get = fetch_small(
                &clients,
                &config,
                &url,
                ROBOTS_LIMIT,
                ROBOTS_REDIRECTS,
                deadline,
            );
            tokio::select! {
                small = get => {
                    let answer = RobotsAnswer::sort(
                        small.status,
                        small.redirect_failed,
                        small.body,
                        small.retry_after,
                        &small.message,
                    );
                    let _ = tx.send(Msg::Robots(host, answer));
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
}

impl<S: Store + 'static> Driver<S> {
    /// Fetches a sitemap on a task of its own (redirects followed, at most the protocol's 50 MiB)
    /// and reads it on a blocking thread (a large one takes a while to parse); what it lists
    /// comes back as a message. It ends with the run, whatever the server does.
    fn fetch_sitemap(&mut self, url: String) {
        let clients = self.clients();
        let config = self.config.clone();
        let tx = self.tx.clone();
        let cancel = self.cancel.clone();
        let alive = self.life.task();
        actix_rt::spawn(async move {
            let _alive = alive;
            let limit = crate::sitemap::MAX_BYTES;
            let read = async {
                match fetch(&clients, &config, &url, limit, Want::plain(&config), None).await {
                    Ok(Got::Body(Read::Memory(body), _)) => {
                        let parsed =
                            tokio::task::spawn_blocking(move || crate::sitemap::parse(&body[..]))
                                .await;
                        (Some(200), parsed.ok().and_then(Result::ok))
                    }
                    Ok(Got::NotFound) => (Some(404), None),
                    Ok(_) => (Some(200), None),
                    Err(f) => (f.status, None),
                }
            };
            tokio::select! {
                (status, map) = read => {
                    let _ = tx.send(Msg::Sitemap(url, status, map));
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
}

impl<S> Driver<S> {
    /// The frontier's own HTTP clients (built at the first request), which record every exchange
    /// when the crawl keeps a web archive: every request the frontier makes goes through them.
    fn clients(&mut self) -> Clients {
        let (config, archive) = (&self.config, &self.archive);
        self.clients
            .get_or_insert_with(|| {
                let clients = build_clients(config);
                match archive {
                    Some(tap) => clients.recording(Rc::new(tap.clone())),
                    None => clients,
                }
            })
            .clone()
    }
}

/// Sleeps for `d`, or for ever without one.
async fn sleep_for(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The crawl's job source for the supervisor: asks the frontier for each next job.
pub(crate) fn job_stream(
    frontier: Recipient<NextUrl>,
) -> std::pin::Pin<Box<dyn futures_util::Stream<Item = Job>>> {
    Box::pin(futures_util::stream::unfold(frontier, |f| async move {
        match f.send(NextUrl).await {
            Ok(Some(job)) => Some((job, f)),
            _ => None,
        }
    }))
}

#[cfg(test)]
mod table;
