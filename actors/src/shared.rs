//! The **shared frontier**: one crawl (or one list of jobs) done by many workers through Redis.
//!
//! Owns, in Redis under `flags:{name}:`: `jobs`, a stream read by the consumer group `workers`
//! (one entry per URL or job: key, URL, file, metadata URL, depth, parent); `seen:{xxxx}`, the
//! seen-set as 65,536 small hashes of fingerprints (a URL is queued once per crawl); `stats`, the
//! crawl's counts; `claims`, how often each entry was taken over; and per host `inflight:{host}`
//! (a sorted set of leased request slots), `next:{host}` and `pause:{host}` (when the host may be
//! asked again). In this worker: the entries it holds, robots.txt per host, its leases.
//! Receives: the same [`NextUrl`], [`PageDone`] and [`PauseHost`] as the in-memory frontier.
//!
//! Delivery is at-least-once and each job is *done* once: an entry is read with `XREADGROUP` and
//! stays pending until the worker acks it, which it does only once the outcome is final (file
//! renamed, or not found / error reported), in one script that also deletes the entry and counts
//! the outcome, so a job acked twice (taken over from a worker that was only slow) counts once.
//! Links found on a page are queued before the page is acked. A worker renews the entries and
//! request slots it holds every third of the lease; entries idle longer than the lease (their
//! worker died) are taken over with `XAUTOCLAIM`; an entry taken over more than `max_claims`
//! times ends as an error saying so. The crawl is over when the stream is empty: nothing queued,
//! nothing in flight anywhere.
//!
//! Politeness holds for the whole crawl, not per worker: a request to a host needs one of its
//! `per_host` slots in Redis (leased, so a dead worker's slots come back), and starts only after
//! `next:{host}` (the delay after the last request's end) and `pause:{host}` (429/503). Redis's
//! own clock decides, so workers' clocks need not agree.
//!
//! When Redis is unreachable, the worker takes no new work and keeps what it holds; every Redis
//! operation is retried with a doubling backoff (up to 5 s) until it succeeds, so nothing is acked
//! that was not done and nothing done is lost.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamReadReply};
use redis::AsyncCommands;
use texting_robots::Robot;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use url::Url;

use crate::config::Config;
use crate::frontier::{CrawlStats, NextUrl, PageDone, PauseHost};
use crate::http::{build_clients, fetch_small, Clients, Small};
use crate::job::Job;
use crate::life::Life;
use crate::names::file_for_url;
use crate::seen::fingerprint;
use crate::spec::{normalise, CrawlSpec};

/// Where a shared crawl lives, and how its workers share it. Build it with [`SharedCrawl::new`].
#[derive(Debug, Clone)]
pub struct SharedCrawl {
    url: String,
    name: String,
    consumer: String,
    lease: Duration,
    max_claims: u32,
}

/// The counts of a shared crawl, from Redis (`flags status`). `added == queued + in_flight +
/// done()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStatus {
    /// Jobs ever queued.
    pub added: u64,
    /// Waiting for a worker.
    pub queued: u64,
    /// Taken by a worker, not done yet.
    pub in_flight: u64,
    /// Done: stored.
    pub ok: u64,
    /// Done: 404.
    pub not_found: u64,
    /// Done: redirected (crawls).
    pub redirected: u64,
    /// Done: failed.
    pub errors: u64,
    /// Done: already stored.
    pub skipped: u64,
    /// Done: disallowed by robots.txt.
    pub blocked: u64,
    /// Workers that joined.
    pub workers: u64,
}

impl SharedStatus {
    /// Jobs with a final outcome.
    pub fn done(&self) -> u64 {
        self.ok + self.not_found + self.redirected + self.errors + self.skipped + self.blocked
    }
}

impl SharedCrawl {
    /// The crawl `name` in the Redis at `url` (`redis://host:port`). Defaults: a consumer name
    /// made of the host name and process id, a 60 s lease, 3 takeovers at most.
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        SharedCrawl {
            url: url.into(),
            name: name.into(),
            consumer: format!("{host}-{}", std::process::id()),
            lease: Duration::from_secs(60),
            max_claims: 3,
        }
    }

    /// This worker's name in the consumer group (unique per worker).
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// How long an entry or request slot stays with a worker that stopped renewing it (died)
    /// before others take it over (default 60 s).
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d.max(Duration::from_millis(300));
        self
    }

    /// How many times an entry may be taken over before it ends as an error (default 3).
    pub fn max_claims(mut self, n: u32) -> Self {
        self.max_claims = n;
        self
    }

    fn key(&self, what: &str) -> String {
        format!("flags:{}:{what}", self.name)
    }

    async fn connect(&self) -> Result<ConnectionManager, String> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connect = client.get_connection_manager_with_config(config);
        match tokio::time::timeout(Duration::from_secs(3), connect).await {
            Ok(Ok(mut con)) => {
                let pong: Result<String, _> = redis::cmd("PING").query_async(&mut con).await;
                pong.map(|_| con).map_err(|e| e.to_string())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 3 s".into()),
        }
    }

    /// Checks that Redis answers (a clear error before anything is written).
    pub async fn check(&self) -> Result<(), String> {
        self.connect().await.map(|_| ())
    }

    /// The crawl's counts.
    pub async fn status(&self) -> Result<SharedStatus, String> {
        let mut con = self.connect().await?;
        let stats: HashMap<String, u64> = con
            .hgetall(self.key("stats"))
            .await
            .map_err(|e| e.to_string())?;
        let len: u64 = con
            .xlen(self.key("jobs"))
            .await
            .map_err(|e| e.to_string())?;
        let pending = pending_count(&mut con, &self.key("jobs")).await?;
        let get = |k: &str| stats.get(k).copied().unwrap_or(0);
        Ok(SharedStatus {
            added: get("added"),
            queued: len.saturating_sub(pending),
            in_flight: pending,
            ok: get("ok"),
            not_found: get("not_found"),
            redirected: get("redirected"),
            errors: get("error"),
            skipped: get("skipped"),
            blocked: get("blocked"),
            workers: get("workers"),
        })
    }
}

async fn pending_count(con: &mut ConnectionManager, stream: &str) -> Result<u64, String> {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(GROUP)
        .query_async(con)
        .await
        .or_else(|e| {
            // No stream or group yet: nothing pending.
            if e.to_string().contains("NOGROUP") {
                Ok(redis::Value::Nil)
            } else {
                Err(e.to_string())
            }
        })?;
    match reply {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => Ok(*n as u64),
            _ => Ok(0),
        },
        _ => Ok(0),
    }
}

const GROUP: &str = "workers";

/// Adds jobs not seen before: `HSETNX` in the fingerprint's bucket, and `XADD` when it was new.
/// ARGV: stream, stats, then 8 per job: bucket, field, key, url, file, meta, depth, parent.
const ADD: &str = r"
local added = 0
for i = 3, #ARGV, 8 do
  if redis.call('HSETNX', ARGV[i], ARGV[i+1], 1) == 1 then
    redis.call('XADD', ARGV[1], '*', 'k', ARGV[i+2], 'u', ARGV[i+3], 'f', ARGV[i+4],
      'm', ARGV[i+5], 'd', ARGV[i+6], 'p', ARGV[i+7])
    added = added + 1
  end
end
if added > 0 then redis.call('HINCRBY', ARGV[2], 'added', added) end
return added
";

/// Acks a job once its outcome is final: counts the outcome only if this ack took the entry out
/// of the pending list, deletes the entry, and gives back the host's request slot.
/// KEYS: stream, stats, claims, inflight, next. ARGV: group, id, outcome, token, delay ms.
const FINISH: &str = r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
end
redis.call('HDEL', KEYS[3], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[4], ARGV[4])
  local d = tonumber(ARGV[5])
  if d > 0 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('SET', KEYS[5], now + d, 'PX', d + 1000)
  end
end
return acked
";

/// Takes one of a host's request slots: 0 when taken, the milliseconds to wait when the host
/// is not ready yet, -1 when all its slots are taken. KEYS: inflight, next, pause. ARGV: limit,
/// token, lease ms.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ready = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'),
                       tonumber(redis.call('GET', KEYS[3]) or '0'))
if ready > now then return ready - now end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return -1 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return 0
";

/// Gives back a request slot (robots.txt's). KEYS: inflight, next. ARGV: token, delay ms.
const RELEASE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
local d = tonumber(ARGV[2])
if d > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', KEYS[2], now + d, 'PX', d + 1000)
end
return 1
";

/// Renews request slots this worker holds. KEYS: inflight sets. ARGV: lease ms, then tokens (one
/// per key).
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
end
return #KEYS
";

/// Pauses a host for ARGV[1] ms from now (never shortening a longer pause). KEYS: pause.
const PAUSE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > cur then redis.call('SET', KEYS[1], until_, 'PX', tonumber(ARGV[1]) + 1000) end
return until_
";

/// What the actor passes to the driver.
enum Msg {
    Next(oneshot::Sender<Option<Job>>),
    Done(PageDone),
    Pause(PauseHost, oneshot::Sender<Duration>),
}

/// The actor other actors talk to; the work is done by its driver task.
pub(crate) struct SharedFrontier {
    tx: mpsc::UnboundedSender<Msg>,
    driver: Option<Driver>,
    life: Life,
}

/// An entry this worker holds.
struct Held {
    id: String,
    job: Job,
}

/// An entry handed to a fetcher, with the slot it holds.
struct Out {
    id: String,
    host: String,
    token: String,
}

enum RobotsState {
    Ready(Option<Box<Robot>>),
    Failed {
        retry_at: Instant,
        wait: Duration,
        tries: u32,
    },
    GaveUp,
}

struct Driver {
    shared: SharedCrawl,
    spec: Option<CrawlSpec>,
    seeds: Vec<Job>,
    config: Config,
    agent: String,
    con: ConnectionManager,
    stream: String,
    stats_key: String,
    claims_key: String,
    held: VecDeque<Held>,
    out: HashMap<String, Out>,
    robots: HashMap<String, RobotsState>,
    /// Crawl-delay per host, from its robots.txt.
    delays: HashMap<String, Duration>,
    waiters: VecDeque<oneshot::Sender<Option<Job>>>,
    clients: Option<Clients>,
    stats: Arc<CrawlStats>,
    cancel: tokio_util::sync::CancellationToken,
    next_token: u64,
    last_renew: Instant,
    last_claim: Instant,
}

impl SharedFrontier {
    /// Connects and joins the crawl (creating its stream and group if needed). Errors when Redis
    /// does not answer.
    #[allow(clippy::too_many_arguments)]
    pub async fn join(
        shared: SharedCrawl,
        spec: Option<CrawlSpec>,
        seeds: Vec<Job>,
        config: Config,
        stats: Arc<CrawlStats>,
        cancel: tokio_util::sync::CancellationToken,
        life: Life,
    ) -> Result<Self, String> {
        let mut con = shared.connect().await?;
        let stream = shared.key("jobs");
        let created: Result<(), _> = con.xgroup_create_mkstream(&stream, GROUP, "0").await;
        if let Err(e) = created {
            if !e.to_string().contains("BUSYGROUP") {
                return Err(e.to_string());
            }
        }
        let _: Result<u64, _> = con.hincr(shared.key("stats"), "workers", 1).await;
        let agent = config
            .user_agent
            .split(['/', ' '])
            .next()
            .unwrap_or("flags")
            .to_string();
        let (tx, _) = mpsc::unbounded_channel();
        let now = Instant::now();
        let driver = Driver {
            stats_key: shared.key("stats"),
            claims_key: shared.key("claims"),
            stream,
            shared,
            spec,
            seeds,
            config,
            agent,
            con,
            held: VecDeque::new(),
            out: HashMap::new(),
            robots: HashMap::new(),
            delays: HashMap::new(),
            waiters: VecDeque::new(),
            clients: None,
            stats,
            cancel,
            next_token: 0,
            last_renew: now,
            last_claim: now,
        };
        Ok(SharedFrontier {
            tx,
            driver: Some(driver),
            life,
        })
    }
}

impl Actor for SharedFrontier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.life.born();
        let (tx, rx) = mpsc::unbounded_channel();
        self.tx = tx;
        if let Some(driver) = self.driver.take() {
            ctx.spawn(driver.run(rx).into_actor(self).map(|_, _, ctx| ctx.stop()));
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.life.died();
    }
}

impl Handler<NextUrl> for SharedFrontier {
    type Result = ResponseFuture<Option<Job>>;

    fn handle(&mut self, _: NextUrl, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Next(tx));
        Box::pin(async move { rx.await.ok().flatten() })
    }
}

impl Handler<PageDone> for SharedFrontier {
    type Result = ();

    fn handle(&mut self, done: PageDone, _: &mut Context<Self>) {
        let _ = self.tx.send(Msg::Done(done));
    }
}

impl Handler<PauseHost> for SharedFrontier {
    type Result = ResponseFuture<Duration>;

    fn handle(&mut self, msg: PauseHost, _: &mut Context<Self>) -> Self::Result {
        let fallback = msg.retry_after.unwrap_or(Duration::from_secs(1));
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Pause(msg, tx));
        Box::pin(async move { rx.await.unwrap_or(fallback) })
    }
}

/// The politeness key of a URL: its origin.
fn host_of(url: &str) -> String {
    Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// What the driver does next.
enum Step {
    /// Call again after at most this long (or when a message comes).
    Wait(Duration),
    /// Nothing is left anywhere: the crawl is over.
    Over,
}

/// How long to wait between polls of the stream when there is nothing to do.
const IDLE: Duration = Duration::from_millis(20);

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let seeds = std::mem::take(&mut self.seeds);
        let seeds: Vec<(Job, u32, Option<String>)> = match &self.spec {
            Some(spec) => spec
                .seeds
                .iter()
                .map(|u| {
                    let url = u.to_string();
                    let file = file_for_url(&url).unwrap_or_else(|| "invalid".into());
                    (Job::new(url.clone(), url, file), 0, None)
                })
                .collect(),
            None => seeds.into_iter().map(|j| (j, 0, None)).collect(),
        };
        for chunk in seeds.chunks(500) {
            if !self.add(chunk).await {
                return;
            }
        }
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let sleep = match self.serve().await {
                Step::Wait(d) => d,
                Step::Over => {
                    for w in self.waiters.drain(..) {
                        let _ = w.send(None);
                    }
                    Duration::from_millis(200)
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => return,
                    Some(msg) => {
                        if !self.handle(msg).await {
                            return;
                        }
                        while let Ok(msg) = rx.try_recv() {
                            if !self.handle(msg).await {
                                return;
                            }
                        }
                    }
                },
                _ = tokio::time::sleep(sleep) => {}
                _ = self.cancel.cancelled() => return,
            }
        }
    }

    /// False when the run is cancelled while Redis is away.
    async fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Next(tx) => {
                self.waiters.push_back(tx);
                true
            }
            Msg::Pause(p, tx) => {
                let pause = p.retry_after.unwrap_or(Duration::from_secs(2));
                let key = self.shared.key(&format!("pause:{}", host_of(&p.url)));
                let cmd = eval(PAUSE, &[key], &[pause.as_millis().to_string()]);
                let ok = self.retry::<u64>(&cmd).await.is_some();
                let _ = tx.send(pause);
                ok
            }
            Msg::Done(done) => self.finish(done).await,
        }
    }

    /// Runs `cmd` until Redis answers (doubling the wait up to 5 s); `None` when the run is
    /// cancelled first.
    async fn retry<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let mut wait = Duration::from_millis(100);
        loop {
            let mut con = self.con.clone();
            match cmd.query_async::<T>(&mut con).await {
                Ok(v) => return Some(v),
                Err(_) if self.cancel.is_cancelled() => return None,
                Err(_) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.cancel.cancelled() => return None,
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Queues jobs not seen before (depth, parent per job).
    async fn add(&mut self, jobs: &[(Job, u32, Option<String>)]) -> bool {
        if jobs.is_empty() {
            return true;
        }
        let mut args: Vec<String> = vec![self.stream.clone(), self.stats_key.clone()];
        // The seen buckets are named in ARGV, not KEYS: a shared crawl needs one Redis (not a
        // cluster), as every key of it is touched by one script.
        for (job, depth, parent) in jobs {
            let fp = fingerprint(&job.url).to_be_bytes();
            let hex: String = fp.iter().map(|b| format!("{b:02x}")).collect();
            args.push(self.shared.key(&format!("seen:{}", &hex[..4])));
            args.push(hex[4..].to_string());
            args.push(job.key.clone());
            args.push(job.url.clone());
            args.push(job.file.to_string_lossy().into_owned());
            args.push(job.meta_url.clone().unwrap_or_default());
            args.push(depth.to_string());
            args.push(parent.clone().unwrap_or_default());
        }
        match self.retry::<u64>(&eval(ADD, &[], &args)).await {
            Some(added) => {
                self.stats.discovered.fetch_add(added, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// A page has its final outcome: its links are queued, then it is acked.
    async fn finish(&mut self, done: PageDone) -> bool {
        let Some(out) = self.out.remove(&done.url) else {
            return true;
        };
        if let (Some(spec), false) = (&self.spec, done.links.is_empty()) {
            if let Ok(base) = Url::parse(&done.url) {
                let depth = if done.redirect {
                    done.depth
                } else {
                    done.depth + 1
                };
                let mut new = Vec::new();
                if spec.max_depth.is_none_or(|m| depth <= m) {
                    for link in &done.links {
                        let Some(url) = normalise(link, Some(&base)) else {
                            continue;
                        };
                        if !spec.scope.allows(&url) {
                            continue;
                        }
                        let url = url.to_string();
                        let file = file_for_url(&url).unwrap_or_else(|| "invalid".into());
                        new.push((
                            Job::new(url.clone(), url, file),
                            depth,
                            Some(done.url.clone()),
                        ));
                    }
                }
                for chunk in new.chunks(500) {
                    if !self.add(chunk).await {
                        return false;
                    }
                }
            }
        }
        let delay = self.delay_of(&out.host);
        self.ack(&out.id, done.outcome, &out.host, &out.token, delay)
            .await
    }

    fn delay_of(&self, host: &str) -> Duration {
        let base = self.spec.as_ref().map_or(Duration::ZERO, |s| s.delay);
        base.max(self.delays.get(host).copied().unwrap_or(Duration::ZERO))
    }

    async fn ack(
        &mut self,
        id: &str,
        outcome: &str,
        host: &str,
        token: &str,
        delay: Duration,
    ) -> bool {
        let keys = [
            self.stream.clone(),
            self.stats_key.clone(),
            self.claims_key.clone(),
            self.shared.key(&format!("inflight:{host}")),
            self.shared.key(&format!("next:{host}")),
        ];
        let argv = [
            GROUP.to_string(),
            id.to_string(),
            outcome.to_string(),
            token.to_string(),
            delay.as_millis().to_string(),
        ];
        self.retry::<u64>(&eval(FINISH, &keys, &argv))
            .await
            .is_some()
    }

    /// Hands out what it can, and says when to call again (or that the crawl is over).
    async fn serve(&mut self) -> Step {
        self.keep_leases().await;
        if self.waiters.is_empty() {
            return Step::Wait(IDLE * 5);
        }
        let want = self.waiters.len() * 2;
        if self.held.len() < want && !self.read(want).await {
            return Step::Wait(IDLE);
        }
        let mut soonest: Option<Duration> = None;
        let mut tried: HashMap<String, bool> = HashMap::new();
        let mut i = 0;
        while i < self.held.len() && !self.waiters.is_empty() {
            let url = self.held[i].job.url.clone();
            let host = host_of(&url);
            if tried.get(&host) == Some(&false) {
                i += 1;
                continue;
            }
            match self.robots_allows(&host, &url).await {
                Some(false) => {
                    let Some(held) = self.held.remove(i) else {
                        break;
                    };
                    self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                    if !self
                        .ack(&held.id, "blocked", &host, "", Duration::ZERO)
                        .await
                    {
                        return Step::Wait(IDLE);
                    }
                    continue;
                }
                None => {
                    tried.insert(host, false);
                    soonest = Some(soonest.map_or(IDLE * 10, |s| s.min(IDLE * 10)));
                    i += 1;
                    continue;
                }
                Some(true) => {}
            }
            let token = format!("{}:{}", self.shared.consumer, self.next_token);
            match self.acquire(&host, &token).await {
                Some(0) => {
                    self.next_token += 1;
                    let Some(held) = self.held.remove(i) else {
                        break;
                    };
                    self.out.insert(
                        held.job.url.clone(),
                        Out {
                            id: held.id,
                            host: host.clone(),
                            token,
                        },
                    );
                    if let Some(w) = self.waiters.pop_front() {
                        if let Err(Some(job)) = w.send(Some(held.job)) {
                            // The supervisor stopped: the entry stays pending for another worker.
                            self.out.remove(&job.url);
                        }
                    }
                }
                Some(ms) => {
                    tried.insert(host, false);
                    let wait = if ms > 0 {
                        Duration::from_millis(ms as u64)
                    } else {
                        IDLE
                    };
                    soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
                    i += 1;
                }
                None => return Step::Wait(IDLE),
            }
        }
        if !self.waiters.is_empty() && self.held.is_empty() && self.out.is_empty() {
            // Nothing here: is anything left anywhere?
            let mut con = self.con.clone();
            let len: Result<u64, _> = con.xlen(&self.stream).await;
            if let Ok(0) = len {
                return Step::Over;
            }
        }
        Step::Wait(soonest.unwrap_or(IDLE).min(IDLE * 10))
    }

    /// Reads up to `n` new entries (and takes over abandoned ones when it is time).
    async fn read(&mut self, n: usize) -> bool {
        let stream = self.stream.clone();
        let consumer = self.shared.consumer.clone();
        let mut con = self.con.clone();
        let opts = redis::streams::StreamReadOptions::default()
            .group(GROUP, &consumer)
            .count(n);
        let reply: Result<StreamReadReply, _> = con.xread_options(&[&stream], &[">"], &opts).await;
        if let Ok(reply) = reply {
            for key in reply.keys {
                for entry in key.ids {
                    if let Some(job) = job_of(&entry) {
                        self.held.push_back(Held { id: entry.id, job });
                    }
                }
            }
        }
        if self.last_claim.elapsed() >= self.shared.lease / 2 {
            self.last_claim = Instant::now();
            self.claim().await;
        }
        !self.cancel.is_cancelled()
    }

    /// Takes over entries whose worker stopped renewing them.
    async fn claim(&mut self) {
        let mut con = self.con.clone();
        let opts = redis::streams::StreamAutoClaimOptions::default().count(100);
        let reply: Result<StreamAutoClaimReply, _> = con
            .xautoclaim_options(
                &self.stream,
                GROUP,
                &self.shared.consumer,
                self.shared.lease.as_millis() as u64,
                "0-0",
                opts,
            )
            .await;
        let Ok(reply) = reply else { return };
        for entry in reply.claimed {
            let Some(job) = job_of(&entry) else { continue };
            let claims: u64 = con.hincr(&self.claims_key, &entry.id, 1).await.unwrap_or(0);
            if claims > u64::from(self.shared.max_claims) {
                // Taken over too often: every worker that took it died. It ends as an error.
                let host = host_of(&job.url);
                let _ = self
                    .ack(&entry.id, "error", &host, "", Duration::ZERO)
                    .await;
                continue;
            }
            self.held.push_back(Held { id: entry.id, job });
        }
    }

    /// Renews this worker's pending entries and request slots every third of the lease.
    async fn keep_leases(&mut self) {
        if self.last_renew.elapsed() < self.shared.lease / 3 {
            return;
        }
        self.last_renew = Instant::now();
        let ids: Vec<String> = self
            .held
            .iter()
            .map(|h| h.id.clone())
            .chain(self.out.values().map(|o| o.id.clone()))
            .collect();
        let mut con = self.con.clone();
        for chunk in ids.chunks(200) {
            let _: Result<redis::Value, _> = redis::cmd("XCLAIM")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(&self.shared.consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID")
                .query_async(&mut con)
                .await;
        }
        if self.out.is_empty() {
            return;
        }
        let keys: Vec<String> = self
            .out
            .values()
            .map(|o| self.shared.key(&format!("inflight:{}", o.host)))
            .collect();
        let args: Vec<String> = std::iter::once(self.shared.lease.as_millis().to_string())
            .chain(self.out.values().map(|o| o.token.clone()))
            .collect();
        let _: Result<u64, _> = eval(RENEW, &keys, &args).query_async(&mut con).await;
    }

    /// Takes a request slot of `host`: `Some(0)` taken, `Some(ms)` wait, `Some(-1)` full,
    /// `None` cancelled.
    async fn acquire(&mut self, host: &str, token: &str) -> Option<i64> {
        let limit = match &self.spec {
            Some(spec) if self.delay_of(host).is_zero() => spec.per_host,
            Some(_) => 1,
            // A list of jobs keeps the engine's own limit: its pool size.
            None => self.config.pool_size,
        };
        let keys = [
            self.shared.key(&format!("inflight:{host}")),
            self.shared.key(&format!("next:{host}")),
            self.shared.key(&format!("pause:{host}")),
        ];
        let args = [
            limit.to_string(),
            token.to_string(),
            self.shared.lease.as_millis().to_string(),
        ];
        self.retry::<i64>(&eval(ACQUIRE, &keys, &args)).await
    }

    /// Whether robots.txt allows `url` (`None`: not known yet, ask again later).
    async fn robots_allows(&mut self, host: &str, url: &str) -> Option<bool> {
        if !self.spec.as_ref().is_some_and(|s| s.robots) {
            return Some(true);
        }
        let now = Instant::now();
        match self.robots.get(host) {
            Some(RobotsState::Ready(None)) => return Some(true),
            Some(RobotsState::Ready(Some(robot))) => return Some(robot.allowed(url)),
            Some(RobotsState::GaveUp) => return Some(false),
            Some(RobotsState::Failed { retry_at, .. }) if *retry_at > now => return None,
            _ => {}
        }
        // robots.txt is a request like any other: it takes one of the host's slots.
        let token = format!("{}:{}", self.shared.consumer, self.next_token);
        match self.acquire(host, &token).await {
            Some(0) => self.next_token += 1,
            _ => return None,
        }
        let clients = self
            .clients
            .get_or_insert_with(|| build_clients(&self.config))
            .clone();
        let timeout = self
            .spec
            .as_ref()
            .map_or(Duration::from_secs(10), |s| s.robots_timeout);
        let answer = match tokio::time::timeout(
            timeout,
            fetch_small(
                &clients,
                &self.config,
                &format!("{host}/robots.txt"),
                512 * 1024,
            ),
        )
        .await
        {
            Ok(a) => a,
            Err(_) => Small::Failed {
                status: None,
                message: "timed out".into(),
            },
        };
        let state = match answer {
            Small::Body(text) => {
                let robot = Robot::new(&self.agent, &text).ok();
                if let Some(secs) = robot.as_ref().and_then(|r| r.delay) {
                    if secs.is_finite() && secs > 0.0 {
                        let cap = self
                            .spec
                            .as_ref()
                            .map_or(Duration::from_secs(30), |s| s.crawl_delay_max);
                        let d = Duration::from_secs_f64(f64::from(secs)).min(cap);
                        self.delays.insert(host.to_string(), d);
                    }
                }
                RobotsState::Ready(robot.map(Box::new))
            }
            Small::NotFound => RobotsState::Ready(None),
            Small::Failed {
                status: Some(s), ..
            } if (400..500).contains(&s) => RobotsState::Ready(None),
            Small::Failed { .. } => match self.robots.remove(host) {
                Some(RobotsState::Failed { wait, tries, .. }) if tries + 1 >= 6 => {
                    let _ = wait;
                    RobotsState::GaveUp
                }
                Some(RobotsState::Failed { wait, tries, .. }) => RobotsState::Failed {
                    retry_at: now + wait * 2,
                    wait: wait * 2,
                    tries: tries + 1,
                },
                _ => RobotsState::Failed {
                    retry_at: now + Duration::from_secs(1),
                    wait: Duration::from_secs(1),
                    tries: 1,
                },
            },
        };
        self.robots.insert(host.to_string(), state);
        let keys = [
            self.shared.key(&format!("inflight:{host}")),
            self.shared.key(&format!("next:{host}")),
        ];
        let args = [token, self.delay_of(host).as_millis().to_string()];
        self.retry::<u64>(&eval(RELEASE, &keys, &args)).await?;
        Box::pin(self.robots_allows(host, url)).await
    }
}

/// `EVAL` of a script (Redis caches it compiled after the first call).
fn eval(src: &str, keys: &[String], args: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(src).arg(keys.len()).arg(keys).arg(args);
    cmd
}

/// The job an entry holds.
fn job_of(entry: &redis::streams::StreamId) -> Option<Job> {
    let key: String = entry.get("k")?;
    let url: String = entry.get("u")?;
    let file: String = entry.get("f")?;
    let mut job = Job::new(key, url, file);
    let meta: String = entry.get("m").unwrap_or_default();
    if !meta.is_empty() {
        job = job.with_meta_url(meta);
    }
    job.depth = entry
        .get::<String>("d")
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let parent: String = entry.get("p").unwrap_or_default();
    job.parent = (!parent.is_empty()).then_some(parent);
    Some(job)
}
