//! The **Redis store**: one crawl (or one list of jobs) shared by many workers.
//!
//! Owns, in Redis under `flags:{name}:`: `identity` (start URLs and options) and `id` (the crawl's id);
//! `jobs`, a stream read by the consumer group `workers` (one entry per URL or job); `seen:{xxxx}`,
//! the seen-set as 65,536 small hashes of fingerprints (a URL is queued once per crawl); `stats`,
//! the outcome counts; `claims`, how often each entry was taken over; `scope`, hosts start URLs
//! redirected to; per host, `host:{origin}` (a [`HostState`]), `slots:{origin}` (its leased
//! request slots) and `wants:{origin}` (the workers that asked for them lately, who share them).
//! Here: the connection and the clock (Redis's, so workers agree on it).
//!
//! Delivery is at-least-once and each job is *done* once: an entry read with `XREADGROUP` stays
//! pending until its worker finishes it, in one script that acks, deletes and counts it, only if
//! this ack took it out of the pending list. Links found on a page are queued before the page is
//! finished. A worker renews what it holds every third of the lease; entries idle longer than
//! the lease (their worker died) are taken over with `XAUTOCLAIM`, which every worker tries every
//! third of the lease, so a dead worker's jobs move within the lease and a third; an entry taken
//! over more than `max_claims` times ends as an error.
//!
//! **Round trips.** Each is a wake-up and a loopback (or network) exchange on both sides, so the
//! store makes few: the writes no decision waits for (links, acks, slots given back) are kept in
//! one `WRITE` script call and sent in the same pipeline as the next question (a slot, entries to
//! read), ahead of it, or on their own within [`FLUSH_AFTER`] when nothing else is sent; Redis
//! runs a connection's commands in order, so every answer reflects every write made before. A
//! host's slots are taken several at once ([`AHEAD`]) when several of its URLs are ready.
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
use redis::{Cmd, FromRedisValue, RedisError, Script, Value};
use tokio_util::sync::CancellationToken;

pub(crate) use shared::JoinError;
pub use shared::{redact, SharedCrawl};

use super::{Acquire, Added, Clock, Entry, ListJob, Release, Store, StoreError};
use crate::job::Role;
use crate::policy::{ms, HostState, Millis};
use crate::seen::fingerprint;
use scripts::{ACQUIRE, LEFT, RENEW, SWAP, WIDEN, WRITE};
use shared::scrub;

/// The consumer group of every shared crawl's stream.
pub(super) const GROUP: &str = "workers";

/// How often a worker with nothing to do looks for work other workers queued or left.
const POLL: Duration = Duration::from_millis(25);

/// Deferred writes wait at most this long for a question to ride with: long enough for a busy
/// worker's writes to go with its next question (or several pages' to go together), short
/// enough that other workers see links and get slots back almost at once.
const FLUSH_AFTER: Duration = Duration::from_millis(2);

/// Deferred writes are sent once they hold this many arguments, whatever comes: a script call
/// stays small (Redis runs nothing else meanwhile) and so does the buffer.
const WRITE_MAX: usize = 4096;

/// Slots of a host taken at once when that many of its URLs are ready.
const AHEAD: usize = 16;

/// A worker that asked for a host's slots counts among those sharing them for this long: longer
/// than a few polls (a worker shut out asks again every [`POLL`]).
const WANT: Duration = Duration::from_millis(100);

/// Every script this store runs: all are loaded again when Redis has forgotten one (a restart).
fn scripts() -> [&'static Script; 6] {
    [&WRITE, &ACQUIRE, &SWAP, &RENEW, &LEFT, &WIDEN]
}

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
    /// The deferred writes: one `WRITE` call, its operations in the order they were made.
    writes: Cmd,
    /// How many arguments of `writes` are operations (0: nothing is deferred).
    pending: usize,
    /// When the first of them was deferred (the store's clock).
    since: Millis,
    /// URLs of deferred adds sent so far that were new (see [`Store::newly_seen`]).
    fresh: u64,
}

/// A script and what to call it with.
struct Call {
    script: &'static Script,
    keys: Vec<String>,
    args: Vec<String>,
}

/// A `WRITE` call without operations yet: the crawl's keys, its id and the group.
fn write_call(id_key: &str, stream: &str, stats: &str, claims: &str, id: &str) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(WRITE.get_hash())
        .arg(4)
        .arg(id_key)
        .arg(stream)
        .arg(stats)
        .arg(claims)
        .arg(id)
        .arg(GROUP);
    cmd
}

impl RedisStore {
    /// Joins the shared crawl whose identity is `identity` (refused when the crawl of that name
    /// is another one, or Redis cannot run it).
    pub async fn join(
        shared: SharedCrawl,
        identity: &[(&'static str, String)],
        cancel: CancellationToken,
    ) -> Result<Self, JoinError> {
        let (mut con, id, redis_now) = shared.join(identity).await?;
        // Known from the start, so a script is missing only after Redis restarted: see
        // `exchange`.
        load_scripts(&mut con)
            .await
            .map_err(|e| JoinError::Unreachable(scrub(&shared.url, &e.to_string())))?;
        let (id_key, stream, stats, claims) = (
            shared.key("id"),
            shared.key("jobs"),
            shared.key("stats"),
            shared.key("claims"),
        );
        Ok(RedisStore {
            writes: write_call(&id_key, &stream, &stats, &claims, &id),
            pending: 0,
            since: 0,
            fresh: 0,
            id_key,
            stream,
            stats,
            claims,
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
        self.run(cmd).await
    }

    /// Runs a command until Redis answers, for at most the crawl's patience, the deferred writes
    /// ahead of it in the same round trip.
    async fn run<T: FromRedisValue>(&mut self, cmd: Cmd) -> Result<T, StoreError> {
        let value = self.exchange(Some(cmd)).await?.unwrap_or(Value::Nil);
        redis::from_redis_value(value).map_err(|e| self.refused(&RedisError::from(e)))
    }

    /// Sends the deferred writes, then `cmd`, in one pipeline (one round trip), until Redis
    /// answers, for at most the crawl's patience; returns `cmd`'s answer. When no answer came,
    /// both are sent again: each write is idempotent (an add is `HSETNX` first, an ack counts
    /// only the ack that took the entry out, a slot given back is gone), and so is taking slots
    /// (see `ACQUIRE`). When Redis answered and only one part failed (a script it forgot after a
    /// restart), only that part is sent again: the other ran, and running it twice could read
    /// entries twice. Then, and only then, `cmd`'s answer may not reflect the writes: a read
    /// misses entries just queued (read next time), a host's state read before a slot went back
    /// fails its compare-and-swap and is read again.
    async fn exchange(&mut self, cmd: Option<Cmd>) -> Result<Option<Value>, StoreError> {
        let mut writes = (self.pending > 0).then(|| {
            let empty = write_call(
                &self.id_key,
                &self.stream,
                &self.stats,
                &self.claims,
                &self.id,
            );
            self.pending = 0;
            std::mem::replace(&mut self.writes, empty)
        });
        let mut cmd = cmd;
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(100);
        // A Redis that forgot the scripts (restarted) gets them again, a few times at most.
        let mut loads = 0;
        let mut answer = None;
        loop {
            if writes.is_none() && cmd.is_none() {
                return Ok(answer);
            }
            let mut pipe = redis::pipe();
            // Each answer on its own: which part failed decides what to send again.
            pipe.ignore_errors();
            if let Some(w) = &writes {
                pipe.add_command(w.clone());
            }
            if let Some(c) = &cmd {
                pipe.add_command(c.clone());
            }
            let e = match pipe.query_async::<Vec<Value>>(&mut self.con).await {
                Ok(values) => {
                    let mut values = values.into_iter();
                    let mut failed = None;
                    if writes.is_some() {
                        match values.next() {
                            Some(Value::ServerError(e)) => failed = Some(e.into()),
                            done => {
                                if let Some(Value::Int(n)) = done {
                                    self.fresh += u64::try_from(n).unwrap_or(0);
                                }
                                writes = None;
                            }
                        }
                    }
                    if cmd.is_some() {
                        match values.next() {
                            Some(Value::ServerError(e)) => {
                                failed = failed.or_else(|| Some(e.into()));
                            }
                            value => {
                                answer = value;
                                cmd = None;
                            }
                        }
                    }
                    match failed {
                        None => continue,
                        Some(e) => e,
                    }
                }
                Err(e) => e,
            };
            if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) && loads < 3 {
                loads += 1;
                // A failure here shows again as the pipeline's own, classified below.
                let _ = load_scripts(&mut self.con).await;
                continue;
            }
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
            if !passing {
                return Err(self.refused(&e));
            }
            if started.elapsed() >= self.shared.patience {
                return Err(StoreError::Lost(format!(
                    "Redis at {} did not answer for {:?} ({}): this worker stops; what it \
                     held goes to the other workers",
                    self.shared.redis_url(),
                    self.shared.patience,
                    scrub(&self.shared.url, &text),
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled() => return Err(StoreError::Cancelled),
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    fn refused(&self, e: &RedisError) -> StoreError {
        StoreError::Lost(format!(
            "Redis at {} refused an operation of the shared crawl: {}",
            self.shared.redis_url(),
            scrub(&self.shared.url, &e.to_string())
        ))
    }

    /// Defers one write operation of `args` (see `WRITE`), sending the writes at once when they
    /// have grown large.
    async fn defer(&mut self, args: &[&str]) -> Result<(), StoreError> {
        if self.pending == 0 {
            self.since = self.clock.now();
        }
        for a in args {
            self.writes.arg(*a);
        }
        self.pending += args.len();
        if self.pending >= WRITE_MAX {
            self.exchange(None).await?;
        }
        Ok(())
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
        let reply: StreamAutoClaimReply = self.run(cmd).await?;
        let mut out = Vec::new();
        for entry in reply.claimed {
            let Some(e) = entry_of(&entry) else { continue };
            let mut incr = redis::cmd("HINCRBY");
            incr.arg(&self.claims).arg(&entry.id).arg(1);
            let claims: u64 = self.run(incr).await?;
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

/// Loads every script of the store (when joining, and after Redis restarted: rare).
async fn load_scripts(con: &mut ConnectionManager) -> redis::RedisResult<()> {
    for script in scripts() {
        script.prepare_invoke().load_async(con).await?;
    }
    Ok(())
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

/// What a stream entry holds of an entry (the inverse of [`entry_of`]): its URL and, only where
/// they say something, its depth, hops, parent, and a list job's key, file and metadata URL.
fn stream_fields(e: &Entry) -> Vec<(&'static str, std::borrow::Cow<'_, str>)> {
    let mut f = vec![("u", (&*e.url).into())];
    if e.depth > 0 {
        f.push(("d", e.depth.to_string().into()));
    }
    if e.hops > 0 {
        f.push(("h", e.hops.to_string().into()));
    }
    if let Some(p) = e.parent.as_deref() {
        f.push(("p", p.into()));
    }
    if let Some(l) = e.list() {
        f.push(("k", l.key.as_str().into()));
        f.push(("f", l.file.to_string_lossy()));
        if let Some(m) = &l.meta_url {
            f.push(("m", m.as_str().into()));
        }
    }
    if e.role != Role::Page {
        f.push(("r", e.role.letter().to_string().into()));
    }
    f
}

impl Store for RedisStore {
    fn now(&self) -> Millis {
        self.clock.now()
    }

    fn poll(&self) -> Option<Duration> {
        Some(POLL)
    }

    async fn add(&mut self, entries: Vec<Entry>) -> Result<Added, StoreError> {
        for chunk in entries.chunks(500) {
            if self.pending == 0 {
                self.since = self.clock.now();
            }
            let count = chunk.len().to_string();
            self.writes.arg("A").arg(&count);
            self.pending += 2;
            // The seen buckets are named in ARGV, not KEYS: a shared crawl needs one Redis (not a
            // cluster), as every key of it is touched by one script.
            for e in chunk {
                let hex = format!("{:032x}", fingerprint(&e.url));
                let fields = stream_fields(e);
                self.writes
                    .arg(self.shared.key(&format!("seen:{}", &hex[..4])))
                    .arg(&hex[4..])
                    .arg(fields.len() * 2);
                for (k, v) in &fields {
                    self.writes.arg(*k).arg(&**v);
                }
                self.pending += 3 + fields.len() * 2;
            }
            if self.pending >= WRITE_MAX {
                self.exchange(None).await?;
            }
        }
        // Counted once sent: see `newly_seen`.
        Ok(Added::default())
    }

    fn newly_seen(&mut self) -> u64 {
        std::mem::take(&mut self.fresh)
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        self.exchange(None).await.map(|_| ())
    }

    fn flush_at(&self) -> Option<Millis> {
        (self.pending > 0).then(|| self.since + ms(FLUSH_AFTER))
    }

    fn ahead(&self) -> usize {
        AHEAD
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
        let reply: Option<StreamReadReply> = self.run(cmd).await?;
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
        n: usize,
    ) -> Result<Acquire, StoreError> {
        let n = n.max(1);
        let first = self.tokens + 1;
        self.tokens += n as u64;
        let prefix = format!("{}:", self.shared.consumer);
        let call = self.call(
            &ACQUIRE,
            vec![
                self.slots_key(host),
                self.host_key(host),
                self.shared.key(&format!("wants:{host}")),
            ],
            vec![
                limit.to_string(),
                prefix.clone(),
                ms(self.shared.lease).to_string(),
                now.to_string(),
                first.to_string(),
                n.to_string(),
                self.shared.consumer.clone(),
                ms(WANT).to_string(),
            ],
        );
        let reply: Vec<Value> = self.eval(&call).await?;
        let num = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        Ok(match num(reply.first()) {
            0 => {
                let taken = num(reply.get(2)).clamp(1, n as u64);
                let mut tokens = (first..first + taken).map(|t| format!("{prefix}{t}"));
                Acquire::Taken {
                    slot: tokens.next().unwrap_or_default(),
                    more: tokens.collect(),
                    epoch: u32::try_from(num(reply.get(1))).unwrap_or(0),
                }
            }
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
        let (slots, host) = (self.slots_key(host), self.host_key(host));
        // A next start not later than now holds nothing back (the readiness rule waits only for
        // one in the future): not written, which spares Redis two commands a page without delay.
        let next = if next_start > self.clock.now() {
            next_start.to_string()
        } else {
            "0".to_string()
        };
        let answered = if answered { "1" } else { "0" };
        self.defer(&["R", &slots, &host, slot, &next, answered])
            .await
    }

    async fn host(&mut self, host: &str) -> Result<HostState, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.host_key(host))
            .arg(&["next", "pause", "failures", "epoch", "gaveup"][..]);
        let v: Vec<Option<String>> = self.run(cmd).await?;
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
        self.defer(&["F", entry.id(), outcome]).await?;
        if let Some(r) = release {
            self.release(r.host, r.slot, r.next_start, r.answered)
                .await?;
        }
        Ok(())
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
            let _: Value = self.run(cmd).await?;
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
