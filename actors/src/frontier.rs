//! The **Frontier**: owns what is left to fetch in a crawl.
//!
//! Owns: the seen-set (every URL ever queued, see `seen`), one queue per host (breadth first
//! within a host, round robin between hosts), each host's politeness (requests in flight, the
//! pause after each request, pauses asked for by 429/503), each host's robots.txt, the journal,
//! and the crawl's counts ([`CrawlStats`], read by the reporter).
//! Receives: [`NextUrl`] from the supervisor's job stream (answered when a host is ready, or with
//! `None` once nothing is queued or in flight), [`PageDone`] from the reporter for every page
//! with its outcome (with the links found on it), [`PauseHost`] from a fetcher that got a 429 or
//! 503 (answered with how long to wait before trying again).
//! Sends: jobs to the supervisor (as answers), and its own robots.txt requests.
//!
//! A URL is queued when it is in scope, within the depth limit and not seen before; it is handed
//! out when its host has fewer than `per_host` requests in flight, its pause is over, and its
//! robots.txt is known and allows it (RFC 9309: a 4xx robots.txt allows everything; a 5xx, a
//! timeout or a network error holds the host and is asked again later, doubling the wait; after
//! six failures the host's URLs count as blocked).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand::Rng;
use texting_robots::Robot;
use tokio::sync::oneshot;
use tokio::time::Instant;
use url::Url;

use crate::config::Config;
use crate::http::{build_clients, fetch_small, Clients, Small};
use crate::job::Job;
use crate::journal::{Journal, Replay};
use crate::life::Life;
use crate::names::file_for_url;
use crate::seen::SeenSet;
use crate::spec::{normalise, CrawlSpec};

/// The counts of a crawl, shared with the reporter (for the bar and the summary).
#[derive(Debug, Default)]
pub(crate) struct CrawlStats {
    pub discovered: AtomicU64,
    pub queued: AtomicU64,
    pub blocked: AtomicU64,
}

/// The next URL to fetch; `None` when the crawl is over.
#[derive(Message)]
#[rtype(result = "Option<Job>")]
pub(crate) struct NextUrl;

/// A page handed out has its final outcome.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PageDone {
    pub url: String,
    pub depth: u32,
    /// Links found on the page (or the target of its redirect).
    pub links: Vec<String>,
    /// The page answered a redirect: its target keeps the page's depth.
    pub redirect: bool,
    pub status: Option<u16>,
    /// The outcome's kind (`ok`, `not_found`, `redirected`, `skipped`, `error`).
    pub outcome: &'static str,
}

/// A host answered 429 or 503: pause it. Answered with how long the fetcher waits before its
/// next try.
#[derive(Message)]
#[rtype(result = "Duration")]
pub(crate) struct PauseHost {
    pub url: String,
    pub retry_after: Option<Duration>,
}

/// How many times a failing robots.txt is asked for before its host's URLs count as blocked.
const ROBOTS_TRIES: u32 = 6;

/// The largest robots.txt read (RFC 9309 asks for at least 500 KiB).
const ROBOTS_LIMIT: u64 = 512 * 1024;

enum Robots {
    Unknown,
    Fetching,
    /// Known: `None` allows everything.
    Ready(Option<Box<Robot>>),
    Failed {
        retry_at: Instant,
        wait: Duration,
        tries: u32,
    },
    /// Failed too often: nothing of this host is fetched.
    GaveUp,
}

/// A URL waiting in its host's queue.
struct Queued {
    /// The URL without its origin (the host's key): the path and query.
    path: Box<str>,
    depth: u32,
    parent: Option<Arc<str>>,
}

struct Host {
    queue: VecDeque<Queued>,
    in_flight: usize,
    /// No request starts before this (the delay after the last one ended).
    next_start: Instant,
    /// No request starts before this (a 429/503 pause).
    paused_until: Instant,
    /// The pause of the next 429/503 without Retry-After; zero after a success.
    backoff: Duration,
    /// The pause after each request: the larger of the crawl's delay and robots.txt's
    /// Crawl-delay (capped).
    delay: Duration,
    robots: Robots,
    /// In the round-robin of hosts with queued URLs.
    active: bool,
}

pub(crate) struct Frontier {
    spec: CrawlSpec,
    config: Config,
    agent: String,
    seen: SeenSet,
    hosts: HashMap<Arc<str>, Host>,
    active: VecDeque<Arc<str>>,
    queued: u64,
    /// Handed out, outcome not yet known.
    outstanding: u64,
    /// Handed out in this crawl, counting pages done before a resume (for `max_pages`).
    handed_out: u64,
    robots_fetching: usize,
    waiters: VecDeque<oneshot::Sender<Option<Job>>>,
    wake: Option<(Instant, SpawnHandle)>,
    journal: Option<Journal>,
    clients: Option<Clients>,
    stats: Arc<CrawlStats>,
    cancel: tokio_util::sync::CancellationToken,
    life: Life,
}

impl Frontier {
    /// A frontier holding the seeds, or what the journal says is left. The journal is opened
    /// here, so a bad journal path is an error before anything is fetched.
    pub fn new(
        spec: CrawlSpec,
        config: Config,
        stats: Arc<CrawlStats>,
        cancel: tokio_util::sync::CancellationToken,
        life: Life,
    ) -> std::io::Result<Self> {
        let (journal, replay) = match &spec.journal {
            Some(path) => {
                let (j, r) = Journal::open(path, spec.resume)?;
                (Some(j), r)
            }
            None => (None, Replay::default()),
        };
        // The product token of the User-Agent is the name robots.txt groups are matched with.
        let agent = config
            .user_agent
            .split(['/', ' '])
            .next()
            .unwrap_or("flags")
            .to_string();
        let mut frontier = Frontier {
            spec,
            config,
            agent,
            seen: replay.seen,
            hosts: HashMap::new(),
            active: VecDeque::new(),
            queued: 0,
            outstanding: 0,
            handed_out: replay.done,
            robots_fetching: 0,
            waiters: VecDeque::new(),
            wake: None,
            journal,
            clients: None,
            stats,
            cancel,
            life,
        };
        frontier
            .stats
            .discovered
            .store(frontier.seen.len() as u64, Ordering::Relaxed);
        for left in replay.left {
            let parent = left.parent.map(Arc::from);
            frontier.enqueue(&left.url, left.depth, parent);
        }
        for seed in frontier.spec.seeds.clone() {
            // Seeds are in scope by definition, whatever the patterns say.
            if frontier.seen.insert(seed.as_str()) {
                frontier.record(seed.as_str(), 0, None);
            }
        }
        Ok(frontier)
    }

    /// A URL seen for the first time: journal it and queue it.
    fn record(&mut self, url: &str, depth: u32, parent: Option<Arc<str>>) {
        self.stats.discovered.fetch_add(1, Ordering::Relaxed);
        if let Some(j) = self.journal.as_mut() {
            if let Err(e) = j.queued(depth, url, parent.as_deref()) {
                self.journal_failed(e);
            }
        }
        self.enqueue(url, depth, parent);
    }

    fn enqueue(&mut self, url: &str, depth: u32, parent: Option<Arc<str>>) {
        let Some(key) = host_key(url) else { return };
        let delay = self.spec.delay;
        let now = Instant::now();
        let host = self.hosts.entry(Arc::clone(&key)).or_insert_with(|| Host {
            queue: VecDeque::new(),
            in_flight: 0,
            next_start: now,
            paused_until: now,
            backoff: Duration::ZERO,
            delay,
            robots: Robots::Unknown,
            active: false,
        });
        let path = url.strip_prefix(&*key).unwrap_or(url);
        host.queue.push_back(Queued {
            path: path.into(),
            depth,
            parent,
        });
        if !host.active {
            host.active = true;
            self.active.push_back(key);
        }
        self.queued += 1;
        self.stats.queued.store(self.queued, Ordering::Relaxed);
    }

    /// A link found on a page: queued if it is new, in scope and within the depth limit.
    fn discover(&mut self, link: &str, base: &Url, depth: u32, parent: &Arc<str>) {
        if self.spec.max_depth.is_some_and(|max| depth > max) {
            return;
        }
        let Some(url) = normalise(link, Some(base)) else {
            return;
        };
        if !self.spec.scope.allows(&url) || !self.seen.insert(url.as_str()) {
            return;
        }
        self.record(url.as_str(), depth, Some(Arc::clone(parent)));
    }

    fn journal_failed(&mut self, e: std::io::Error) {
        eprintln!("flags: the crawl journal cannot be written ({e}); going on without it");
        self.journal = None;
    }

    fn limit_reached(&self) -> bool {
        self.spec
            .max_pages
            .is_some_and(|max| self.handed_out >= max)
    }

    /// The crawl is over: nothing can be handed out now or later.
    fn over(&self) -> bool {
        self.outstanding == 0
            && self.robots_fetching == 0
            && (self.queued == 0 || self.limit_reached())
    }

    /// Hands jobs to the waiting supervisor while hosts are ready; otherwise sets a timer for
    /// the earliest host that will be, or ends the crawl when nothing is left.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        while !self.waiters.is_empty() {
            if self.waiters.front().is_some_and(|w| w.is_closed()) {
                self.waiters.pop_front();
                continue;
            }
            let (job, earliest) = self.next_job(ctx);
            match job {
                Some(job) => {
                    if let Some(w) = self.waiters.pop_front() {
                        if let Err(Some(job)) = w.send(Some(job)) {
                            self.take_back(job);
                        }
                    }
                }
                None => {
                    if self.over() {
                        for w in self.waiters.drain(..) {
                            let _ = w.send(None);
                        }
                    } else if let Some(at) = earliest {
                        self.wake_at(at, ctx);
                    }
                    return;
                }
            }
        }
    }

    /// A job the supervisor could not take (it stopped): back to the front of its queue.
    fn take_back(&mut self, job: Job) {
        self.handed_out -= 1;
        self.outstanding -= 1;
        let Some(key) = host_key(&job.url) else {
            return;
        };
        if let Some(host) = self.hosts.get_mut(&key) {
            host.in_flight -= 1;
            let path = job.url.strip_prefix(&*key).unwrap_or(&job.url);
            host.queue.push_front(Queued {
                path: path.into(),
                depth: job.depth,
                parent: job.parent.map(Arc::from),
            });
            self.queued += 1;
        }
    }

    fn wake_at(&mut self, at: Instant, ctx: &mut Context<Self>) {
        if let Some((when, handle)) = self.wake.take() {
            if when <= at {
                self.wake = Some((when, handle));
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = at.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(wait, |act, ctx| {
            act.wake = None;
            act.dispatch(ctx);
        });
        self.wake = Some((at, handle));
    }

    /// The next URL whose host is ready, round robin over the hosts; with `None`, the earliest
    /// time a host waiting for its pause will be ready.
    fn next_job(&mut self, ctx: &mut Context<Self>) -> (Option<Job>, Option<Instant>) {
        let now = Instant::now();
        let mut earliest: Option<Instant> = None;
        let mut sooner = |t: Instant| {
            earliest = Some(earliest.map_or(t, |e: Instant| e.min(t)));
        };
        if self.limit_reached() {
            return (None, None);
        }
        for _ in 0..self.active.len() {
            let Some(key) = self.active.pop_front() else {
                break;
            };
            let obey = self.spec.robots;
            let Some(host) = self.hosts.get_mut(&key) else {
                continue;
            };
            if host.queue.is_empty() {
                host.active = false;
                continue;
            }
            if obey {
                match &host.robots {
                    Robots::Ready(_) => {}
                    Robots::Unknown => {
                        self.active.push_back(Arc::clone(&key));
                        self.fetch_robots(key, ctx);
                        continue;
                    }
                    Robots::Failed { retry_at, .. } if *retry_at <= now => {
                        self.active.push_back(Arc::clone(&key));
                        self.fetch_robots(key, ctx);
                        continue;
                    }
                    Robots::Failed { retry_at, .. } => {
                        sooner(*retry_at);
                        self.active.push_back(key);
                        continue;
                    }
                    Robots::Fetching => {
                        self.active.push_back(key);
                        continue;
                    }
                    Robots::GaveUp => {
                        let n = host.queue.len() as u64;
                        host.queue.clear();
                        host.active = false;
                        self.queued -= n;
                        self.stats.blocked.fetch_add(n, Ordering::Relaxed);
                        self.stats.queued.store(self.queued, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            // With a delay, one request at a time, each a delay after the last one ended.
            let limit = if host.delay.is_zero() {
                self.spec.per_host
            } else {
                1
            };
            if host.in_flight >= limit {
                self.active.push_back(key);
                continue;
            }
            let ready_at = host.next_start.max(host.paused_until);
            if ready_at > now {
                sooner(ready_at);
                self.active.push_back(key);
                continue;
            }
            while let Some(q) = host.queue.pop_front() {
                self.queued -= 1;
                let url = format!("{key}{}", q.path);
                if let Robots::Ready(Some(robot)) = &host.robots {
                    if obey && !robot.allowed(&url) {
                        self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                        if let Some(j) = self.journal.as_mut() {
                            let _ = j.done(&url);
                        }
                        continue;
                    }
                }
                host.in_flight += 1;
                self.outstanding += 1;
                self.handed_out += 1;
                self.stats.queued.store(self.queued, Ordering::Relaxed);
                self.active.push_back(key);
                let file = file_for_url(&url).unwrap_or_else(|| "invalid".into());
                let mut job = Job::new(url.clone(), url, file);
                job.depth = q.depth;
                job.parent = q.parent.map(|p| p.to_string());
                return (Some(job), None);
            }
            host.active = false;
            self.stats.queued.store(self.queued, Ordering::Relaxed);
        }
        (None, earliest)
    }

    /// Asks for the host's robots.txt, as one of its requests.
    fn fetch_robots(&mut self, key: Arc<str>, ctx: &mut Context<Self>) {
        let Some(host) = self.hosts.get_mut(&key) else {
            return;
        };
        host.robots = Robots::Fetching;
        host.in_flight += 1;
        self.robots_fetching += 1;
        let clients = self
            .clients
            .get_or_insert_with(|| build_clients(&self.config))
            .clone();
        let config = self.config.clone();
        let timeout = self.spec.robots_timeout;
        let url = format!("{key}/robots.txt");
        let request = async move {
            match actix_rt::time::timeout(
                timeout,
                fetch_small(&clients, &config, &url, ROBOTS_LIMIT),
            )
            .await
            {
                Ok(answer) => answer,
                Err(_) => Small::Failed {
                    status: None,
                    message: format!("timed out after {timeout:?}"),
                },
            }
        };
        ctx.spawn(request.into_actor(self).map(move |answer, act, ctx| {
            act.robots_answered(&key, answer);
            act.dispatch(ctx);
        }));
    }

    fn robots_answered(&mut self, key: &Arc<str>, answer: Small) {
        self.robots_fetching -= 1;
        let cap = self.spec.crawl_delay_max;
        let agent = self.agent.clone();
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        host.in_flight -= 1;
        let now = Instant::now();
        host.next_start = now + host.delay;
        let previous = std::mem::replace(&mut host.robots, Robots::Unknown);
        host.robots = match answer {
            Small::Body(text) => {
                // A robots.txt that does not parse says nothing: everything is allowed.
                let robot = Robot::new(&agent, &text).ok();
                if let Some(secs) = robot.as_ref().and_then(|r| r.delay) {
                    if secs.is_finite() && secs > 0.0 {
                        let crawl_delay = Duration::from_secs_f64(f64::from(secs)).min(cap);
                        host.delay = host.delay.max(crawl_delay);
                        host.next_start = now + host.delay;
                    }
                }
                Robots::Ready(robot.map(Box::new))
            }
            Small::NotFound => Robots::Ready(None),
            Small::Failed {
                status: Some(s), ..
            } if (400..500).contains(&s) => Robots::Ready(None),
            Small::Failed { .. } => {
                let (wait, tries) = match previous {
                    Robots::Failed { wait, tries, .. } => (wait * 2, tries + 1),
                    _ => (Duration::from_secs(1), 1),
                };
                if tries >= ROBOTS_TRIES {
                    Robots::GaveUp
                } else {
                    Robots::Failed {
                        retry_at: now + wait,
                        wait,
                        tries,
                    }
                }
            }
        };
    }
}

/// The politeness key of a URL: its origin (scheme, host, port), as robots.txt is per origin.
fn host_key(url: &str) -> Option<Arc<str>> {
    let u = Url::parse(url).ok()?;
    Some(Arc::from(u.origin().ascii_serialization()))
}

impl Actor for Frontier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.life.born();
        let cancel = self.cancel.clone();
        ctx.spawn(
            async move { cancel.cancelled().await }
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(Err(e)) = self.journal.as_mut().map(Journal::flush) {
            self.journal_failed(e);
        }
        self.life.died();
    }
}

impl Handler<NextUrl> for Frontier {
    type Result = ResponseFuture<Option<Job>>;

    fn handle(&mut self, _: NextUrl, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiters.push_back(tx);
        self.dispatch(ctx);
        Box::pin(async move { rx.await.ok().flatten() })
    }
}

impl Handler<PageDone> for Frontier {
    type Result = ();

    fn handle(&mut self, done: PageDone, ctx: &mut Context<Self>) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if let Some(host) = host_key(&done.url).and_then(|k| self.hosts.get_mut(&k)) {
            host.in_flight = host.in_flight.saturating_sub(1);
            host.next_start = Instant::now() + host.delay;
            if !matches!(done.status, Some(429 | 503)) {
                host.backoff = Duration::ZERO;
            }
        }
        if !done.links.is_empty() {
            if let Ok(base) = Url::parse(&done.url) {
                let depth = if done.redirect {
                    done.depth
                } else {
                    done.depth + 1
                };
                let parent: Arc<str> = Arc::from(done.url.as_str());
                // A start URL that redirects (example.com → www.example.com, http → https)
                // brings its target's host into scope: that is the site the user meant.
                if done.redirect && done.depth == 0 {
                    for link in &done.links {
                        let target = normalise(link, Some(&base));
                        if let Some(host) = target.as_ref().and_then(Url::host_str) {
                            self.spec.scope.allow_host(host);
                        }
                    }
                }
                // Each link is freed as it is queued: a page of a million links never costs
                // them twice.
                for link in done.links {
                    self.discover(&link, &base, depth, &parent);
                }
            }
        }
        // Written through at once (one write call per page, no fsync): a kill loses nothing of it,
        // so after a crash only the pages in flight are fetched again.
        if let Some(Err(e)) = self
            .journal
            .as_mut()
            .map(|j| j.done(&done.url).and_then(|()| j.flush()))
        {
            self.journal_failed(e);
        }
        self.dispatch(ctx);
    }
}

impl Handler<PauseHost> for Frontier {
    type Result = MessageResult<PauseHost>;

    fn handle(&mut self, msg: PauseHost, _: &mut Context<Self>) -> Self::Result {
        let cap = self.spec.pause_max;
        let Some(host) = host_key(&msg.url).and_then(|k| self.hosts.get_mut(&k)) else {
            return MessageResult(msg.retry_after.unwrap_or(Duration::from_secs(1)).min(cap));
        };
        // Each incident without Retry-After doubles the pause (with up to 25 % jitter, so hosts
        // paused together do not come back together); a success forgets it.
        host.backoff = if host.backoff.is_zero() {
            Duration::from_secs(1)
        } else {
            (host.backoff * 2).min(cap)
        };
        let pause = match msg.retry_after {
            Some(ra) => ra.min(cap),
            None => host
                .backoff
                .mul_f64(rand::thread_rng().gen_range(1.0..1.25))
                .min(cap),
        };
        host.paused_until = host.paused_until.max(Instant::now() + pause);
        MessageResult(pause)
    }
}

/// The crawl's job source for the supervisor: asks the frontier for each next job.
pub(crate) fn job_stream(frontier: Recipient<NextUrl>) -> crate::supervisor::JobStream {
    Box::pin(futures_util::stream::unfold(frontier, |f| async move {
        match f.send(NextUrl).await {
            Ok(Some(job)) => Some((job, f)),
            _ => None,
        }
    }))
}
