//! The **Redis store**: one crawl (or one list of jobs) shared by many workers.
//!
//! Owns, in Redis under `flags:{name}:`: `identity` (start URLs and options) and `id` (the crawl's id);
//! `jobs`, a stream read by the consumer group `workers` (one entry per URL or job); `seen:{xxxx}`,
//! the seen-set as 65,536 small hashes of fingerprints (a URL is queued once per crawl); `stats`,
//! the outcome counts; `claims`, how often each entry was taken over; `scope`, hosts start URLs
//! redirected to; per host, `host:{origin}` (a [`HostState`]) and `slots:{origin}` (its leased
//! request slots). Here: the connection and the clock (Redis's, so workers agree on it).
//!
//! Delivery is at-least-once and each job is *done* once: an entry read with `XREADGROUP` stays
//! pending until its worker finishes it, in one script that acks, deletes and counts it, only if
//! this ack took it out of the pending list. Links found on a page are queued before the page is
//! finished. A worker renews what it holds every third of the lease; entries idle longer than
//! the lease (their worker died) are taken over with `XAUTOCLAIM`, which every worker tries every
//! third of the lease, so a dead worker's jobs move within the lease and a third; an entry taken
//! over more than `max_claims` times ends as an error.
//!
//! While Redis does not answer, every operation is retried with a doubling wait (up to 5 s) for
//! at most the crawl's patience; then, or when the crawl's state is gone from Redis (its identity
//! missing or another one's), the store reports it lost and the worker stops with an error:
//! nothing is acked that was not done, nothing done is lost.

mod scripts;
mod shared;

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::{FromRedisValue, Script, Value};
use tokio_util::sync::CancellationToken;

pub(crate) use shared::JoinError;
pub use shared::{redact, SharedCrawl};

use super::{Acquire, Added, Clock, Entry, ListJob, Release, Store, StoreError};
use crate::job::Role;
use crate::policy::{ms, HostState, Millis};
use crate::seen::fingerprint;
use scripts::{ACQUIRE, ADD, FINISH, LEFT, RELEASE, RENEW, SWAP, WIDEN};
use shared::scrub;

/// The consumer group of every shared crawl's stream.
pub(super) const GROUP: &str = "workers";

/// How often a worker with nothing to do looks for work other workers queued or left.
const POLL: Duration = Duration::from_millis(25);

/// The state of a crawl in Redis.
pub(crate) struct RedisStore {
    shared: SharedCrawl,
    con: ConnectionManager,
    /// The crawl's id: every script checks it is still the one in Redis.
    id: String,
    clock: Clock,
    /// The key that holds the id.
    id_key: String,
    stream: String,
    stats: String,
    claims: String,
    scope: String,
    /// Slot tokens handed out by this worker.
    tokens: u64,
    cancel: CancellationToken,
}

/// A script and what to call it with.
struct Call {
    script: &'static Script,
    keys: Vec<String>,
    args: Vec<String>,
}

impl RedisStore {
    /// Joins the shared crawl whose identity is `identity` (refused when the crawl of that name
    /// is another one, or Redis cannot run it).
    pub async fn join(
        shared: SharedCrawl,
        identity: &[(&'static str, String)],
        cancel: CancellationToken,
    ) -> Result<Self, JoinError> {
        let (con, id, redis_now) = shared.join(identity).await?;
        Ok(RedisStore {
            id_key: shared.key("id"),
            stream: shared.key("jobs"),
            stats: shared.key("stats"),
            claims: shared.key("claims"),
            scope: shared.key("scope"),
            shared,
            con,
            id,
            clock: Clock::real(redis_now),
            tokens: 0,
            cancel,
        })
    }

    /// Runs on `clock` instead of Redis's (tests drive it by hand).
    #[cfg(test)]
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    fn call(&self, script: &'static Script, keys: Vec<String>, args: Vec<String>) -> Call {
        let mut k = vec![self.id_key.clone()];
        k.extend(keys);
        let mut a = vec![self.id.clone()];
        a.extend(args);
        Call {
            script,
            keys: k,
            args: a,
        }
    }

    fn host_key(&self, host: &str) -> String {
        self.shared.key(&format!("host:{host}"))
    }

    fn slots_key(&self, host: &str) -> String {
        self.shared.key(&format!("slots:{host}"))
    }

    fn lost(&self) -> StoreError {
        StoreError::Lost(format!(
            "the shared crawl {} is gone from Redis at {} (restarted without its data, flushed, \
             or its keys deleted): this worker stops; start the crawl again to redo it",
            self.shared.name,
            self.shared.redis_url()
        ))
    }

    /// Runs a script until Redis answers, for at most the crawl's patience.
    async fn eval<T: FromRedisValue>(&mut self, call: &Call) -> Result<T, StoreError> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(call.script.get_hash())
            .arg(call.keys.len())
            .arg(&call.keys)
            .arg(&call.args);
        self.run(&cmd, Some(call.script)).await
    }

    /// Runs a command until Redis answers (loading `script` when Redis does not know it).
    async fn run<T: FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        script: Option<&Script>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let mut result = cmd.query_async::<T>(&mut self.con).await;
            if let (Err(e), Some(script)) = (&result, script) {
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
                    let loaded = script.prepare_invoke().load_async(&mut self.con).await;
                    result = match loaded {
                        Ok(_) => cmd.query_async::<T>(&mut self.con).await,
                        Err(e) => Err(e),
                    };
                }
            }
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let text = e.to_string();
            if text.contains("LOST") || text.contains("NOGROUP") {
                return Err(self.lost());
            }
            let passing = e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || matches!(
                    e.kind(),
                    redis::ErrorKind::Server(
                        redis::ServerErrorKind::BusyLoading | redis::ServerErrorKind::TryAgain
                    )
                );
            let message = scrub(&self.shared.url, &text);
            if !passing {
                return Err(StoreError::Lost(format!(
                    "Redis at {} refused an operation of the shared crawl: {message}",
                    self.shared.redis_url()
                )));
            }
            if started.elapsed() >= self.shared.patience {
                return Err(StoreError::Lost(format!(
                    "Redis at {} did not answer for {:?} ({message}): this worker stops; what it \
                     held goes to the other workers",
                    self.shared.redis_url(),
                    self.shared.patience
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled() => return Err(StoreError::Cancelled),
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// Takes over entries whose worker stopped renewing them.
    async fn claim(&mut self) -> Result<Vec<Entry>, StoreError> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(&self.stream)
            .arg(GROUP)
            .arg(&self.shared.consumer)
            .arg(ms(self.shared.lease))
            .arg("0-0")
            .arg("COUNT")
            .arg(100);
        let reply: StreamAutoClaimReply = self.run(&cmd, None).await?;
        let mut out = Vec::new();
        for entry in reply.claimed {
            let Some(e) = entry_of(&entry) else { continue };
            let mut incr = redis::cmd("HINCRBY");
            incr.arg(&self.claims).arg(entry.id.as_str()).arg(1);
            let claims: u64 = self.run(&incr, None).await?;
            if claims > u64::from(self.shared.max_claims) {
                // Every worker that took it died: it ends as an error rather than in a loop.
                self.finish(&e, "error", None).await?;
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }
}

/// The entry a stream entry holds.
fn entry_of(entry: &StreamId) -> Option<Entry> {
    let url: String = entry.get("u")?;
    let num = |k: &str| {
        entry
            .get::<String>(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let parent: String = entry.get("p").unwrap_or_default();
    let key: String = entry.get("k").unwrap_or_default();
    let mut e = Entry::url(
        &url,
        num("d"),
        num("h"),
        (!parent.is_empty()).then(|| parent.as_str().into()),
    );
    if !key.is_empty() {
        let meta: String = entry.get("m").unwrap_or_default();
        e.set_list(ListJob {
            key,
            file: entry.get::<String>("f").unwrap_or_default().into(),
            meta_url: (!meta.is_empty()).then_some(meta),
        });
    }
    e.role = Role::of_letter(&entry.get::<String>("r").unwrap_or_default());
    e.set_id(&entry.id);
    Some(e)
}

impl Store for RedisStore {
    fn now(&self) -> Millis {
        self.clock.now()
    }

    fn poll(&self) -> Option<Duration> {
        Some(POLL)
    }

    async fn add(&mut self, entries: Vec<Entry>) -> Result<Added, StoreError> {
        let mut added = Added::default();
        for chunk in entries.chunks(500) {
            let mut args = Vec::with_capacity(chunk.len() * 10);
            // The seen buckets are named in ARGV, not KEYS: a shared crawl needs one Redis (not a
            // cluster), as every key of it is touched by one script.
            for e in chunk {
                let hex = format!("{:032x}", fingerprint(&e.url));
                args.push(self.shared.key(&format!("seen:{}", &hex[..4])));
                args.push(hex[4..].to_string());
                args.push(e.url.to_string());
                args.push(e.depth.to_string());
                args.push(e.hops.to_string());
                args.push(e.parent.as_deref().unwrap_or_default().to_string());
                let (key, file, meta) = match e.list() {
                    Some(l) => (
                        l.key.clone(),
                        l.file.to_string_lossy().into_owned(),
                        l.meta_url.clone().unwrap_or_default(),
                    ),
                    None => Default::default(),
                };
                args.extend([key, file, meta, e.role.letter().to_string()]);
            }
            let call = self.call(&ADD, vec![self.stream.clone(), self.stats.clone()], args);
            added.new += self.eval::<u64>(&call).await?;
        }
        Ok(added)
    }

    async fn take(&mut self, n: usize) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        if n == 0 {
            return Ok(out);
        }
        let opts = StreamReadOptions::default()
            .group(GROUP, &self.shared.consumer)
            .count(n);
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg(&opts).arg("STREAMS").arg(&self.stream).arg(">");
        let reply: Option<StreamReadReply> = self.run(&cmd, None).await?;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            out.extend(key.ids.iter().filter_map(entry_of));
        }
        Ok(out)
    }

    async fn acquire(
        &mut self,
        host: &str,
        limit: usize,
        now: Millis,
    ) -> Result<Acquire, StoreError> {
        self.tokens += 1;
        let token = format!("{}:{}", self.shared.consumer, self.tokens);
        let call = self.call(
            &ACQUIRE,
            vec![self.slots_key(host), self.host_key(host)],
            vec![
                limit.to_string(),
                token.clone(),
                ms(self.shared.lease).to_string(),
                now.to_string(),
            ],
        );
        let reply: Vec<Value> = self.eval(&call).await?;
        let num = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        Ok(match num(reply.first()) {
            0 => Acquire::Taken {
                slot: token,
                epoch: u32::try_from(num(reply.get(1))).unwrap_or(0),
            },
            1 => Acquire::At(num(reply.get(1))),
            2 => Acquire::Full,
            _ => Acquire::GivenUp(match reply.get(1) {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => "host given up".into(),
            }),
        })
    }

    async fn release(
        &mut self,
        host: &str,
        slot: &str,
        next_start: Millis,
        answered: bool,
    ) -> Result<(), StoreError> {
        let call = self.call(
            &RELEASE,
            vec![self.slots_key(host), self.host_key(host)],
            vec![
                slot.to_string(),
                next_start.to_string(),
                u8::from(answered).to_string(),
            ],
        );
        self.eval::<u64>(&call).await.map(|_| ())
    }

    async fn host(&mut self, host: &str) -> Result<HostState, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.host_key(host))
            .arg(&["next", "pause", "failures", "epoch", "gaveup"][..]);
        let v: Vec<Option<String>> = self.run(&cmd, None).await?;
        let num = |i: usize| {
            v.get(i)
                .and_then(|x| x.as_deref())
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(HostState {
            next_start: num(0),
            paused_until: num(1),
            failures: u32::try_from(num(2)).unwrap_or(u32::MAX),
            epoch: u32::try_from(num(3)).unwrap_or(0),
            given_up: v.get(4).cloned().flatten().filter(|why| !why.is_empty()),
        })
    }

    async fn swap_host(
        &mut self,
        host: &str,
        old: &HostState,
        new: &HostState,
    ) -> Result<bool, StoreError> {
        let fields = |h: &HostState| {
            [
                h.paused_until.to_string(),
                h.failures.to_string(),
                h.epoch.to_string(),
                h.given_up.clone().unwrap_or_default(),
            ]
        };
        let args = fields(old).into_iter().chain(fields(new)).collect();
        let call = self.call(&SWAP, vec![self.host_key(host)], args);
        Ok(self.eval::<u64>(&call).await? == 1)
    }

    async fn finish(
        &mut self,
        entry: &Entry,
        outcome: &str,
        release: Option<Release<'_>>,
    ) -> Result<(), StoreError> {
        let (host, token, next, answered) = match release {
            Some(r) => (r.host, r.slot, r.next_start, r.answered),
            None => ("", "", 0, false),
        };
        let call = self.call(
            &FINISH,
            vec![
                self.stream.clone(),
                self.stats.clone(),
                self.claims.clone(),
                self.slots_key(host),
                self.host_key(host),
            ],
            vec![
                GROUP.to_string(),
                entry.id().to_string(),
                outcome.to_string(),
                token.to_string(),
                next.to_string(),
                u8::from(answered).to_string(),
            ],
        );
        self.eval::<u64>(&call).await.map(|_| ())
    }

    async fn widen(&mut self, hosts: &[String]) -> Result<Vec<String>, StoreError> {
        let call = self.call(&WIDEN, vec![self.scope.clone()], hosts.to_vec());
        self.eval(&call).await
    }

    async fn drained(&mut self) -> Result<bool, StoreError> {
        let call = self.call(&LEFT, vec![self.stream.clone()], Vec::new());
        Ok(self.eval::<u64>(&call).await? == 0)
    }

    async fn tick(
        &mut self,
        ids: &[&str],
        slots: &[(&str, &str)],
    ) -> Result<(Duration, Vec<Entry>), StoreError> {
        // Entries this worker holds: XCLAIM with no minimum idle time makes them fresh again.
        for chunk in ids.chunks(200) {
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(&self.stream)
                .arg(GROUP)
                .arg(&self.shared.consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID");
            let _: Value = self.run(&cmd, None).await?;
        }
        // The slots it holds; the script also checks the crawl is still there.
        let keys = slots.iter().map(|(h, _)| self.slots_key(h)).collect();
        let args = [
            ms(self.shared.lease).to_string(),
            self.clock.now().to_string(),
        ]
        .into_iter()
        .chain(slots.iter().map(|(_, t)| t.to_string()))
        .collect();
        let call = self.call(&RENEW, keys, args);
        self.eval::<u64>(&call).await?;
        // Every third of the lease, whatever this worker is doing: a dead worker's entries move
        // within the lease and a third of its death.
        let taken = self.claim().await?;
        Ok((self.shared.lease / 3, taken))
    }
}
