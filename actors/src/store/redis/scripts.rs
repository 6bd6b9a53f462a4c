//! The Lua scripts of the Redis store: storage primitives, each atomic. They take no decision of
//! their own but one: the readiness rule of `policy::host::readiness` (given up, then the later
//! of next start and pause, then the slot limit), applied atomically with taking a slot, which
//! the policy table tests check against the memory store's.
//!
//! Every script that writes first checks the crawl's id (`KEYS[1]` holds it, `ARGV[1]` is this
//! worker's): a crawl whose state vanished (a Redis restarted without its data, `FLUSHALL`)
//! answers `LOST` instead of quietly starting a new, empty crawl.

use std::sync::LazyLock;

use redis::Script;

const CHECK: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('LOST') end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{CHECK}{body}"))
}

/// Joins or starts a crawl: the identity if there is one (the caller compares it with its own),
/// else records ours, its id, and creates the stream and its group. KEYS: identity, stream, id.
/// ARGV: our identity, group, our id.
pub(super) static JOIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], ARGV[3])
redis.pcall('XGROUP', 'CREATE', KEYS[2], ARGV[2], '0', 'MKSTREAM')
return ARGV[1]
",
    )
});

/// Queues entries not seen before: `HSETNX` in the fingerprint's bucket, `XADD` when new.
/// KEYS: identity, stream, stats. ARGV: id, then 10 per entry: bucket, field, url, depth, hops,
/// parent, key, file, meta, role. Returns how many were new.
pub(super) static ADD: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local added = 0
for i = 2, #ARGV, 10 do
  if redis.call('HSETNX', ARGV[i], ARGV[i+1], 1) == 1 then
    redis.call('XADD', KEYS[2], '*', 'u', ARGV[i+2], 'd', ARGV[i+3], 'h', ARGV[i+4],
      'p', ARGV[i+5], 'k', ARGV[i+6], 'f', ARGV[i+7], 'm', ARGV[i+8], 'r', ARGV[i+9])
    added = added + 1
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[3], 'added', added) end
return added
",
    )
});

/// An entry's outcome is final: acks it, and only if this ack took it out of the pending list,
/// deletes it and counts the outcome (an entry done twice counts once); gives its slot back as
/// [`RELEASE`] does, in the same round trip. KEYS: id, stream, stats, claims, slots, host. ARGV:
/// id, group, entry id, outcome, slot token ('' for none), next start ms, answered (0 or 1).
pub(super) static FINISH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local acked = redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
if acked == 1 then
  redis.call('XDEL', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
end
redis.call('HDEL', KEYS[4], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('ZREM', KEYS[5], ARGV[5])
  local nxt = tonumber(ARGV[6])
  if nxt > tonumber(redis.call('HGET', KEYS[6], 'next') or '0') then
    redis.call('HSET', KEYS[6], 'next', nxt)
  end
  if ARGV[7] == '1' then redis.call('HSET', KEYS[6], 'failures', 0) end
end
return acked
",
    )
});

/// Takes one of a host's slots if the readiness rule allows. KEYS: identity, slots, host.
/// ARGV: id, limit, token, lease ms, now ms. Returns `{0, epoch}` taken, `{1, at}` not before
/// `at`, `{2}` every slot taken, `{3, why}` given up.
pub(super) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local h = redis.call('HMGET', KEYS[3], 'next', 'pause', 'gaveup', 'epoch')
if h[3] and h[3] ~= '' then return {3, h[3]} end
local at = math.max(tonumber(h[1] or '0'), tonumber(h[2] or '0'))
if at > now then return {1, at} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return {2} end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
return {0, tonumber(h[4] or '0')}
",
    )
});

/// Gives a slot back: the next start no earlier than ARGV[3]; an answer forgets the failures.
/// KEYS: identity, slots, host. ARGV: id, token, next start ms, answered (0 or 1).
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
redis.call('ZREM', KEYS[2], ARGV[2])
local nxt = tonumber(ARGV[3])
if nxt > tonumber(redis.call('HGET', KEYS[3], 'next') or '0') then
  redis.call('HSET', KEYS[3], 'next', nxt)
end
if ARGV[4] == '1' then redis.call('HSET', KEYS[3], 'failures', 0) end
return 1
",
    )
});

/// Replaces a host's state if it is still what the caller read. KEYS: identity, host. ARGV: id,
/// then the old pause, failures, epoch, gaveup, then the new ones ('' for no gaveup).
pub(super) static SWAP: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local h = redis.call('HMGET', KEYS[2], 'pause', 'failures', 'epoch', 'gaveup')
local none = {'0', '0', '0', ''}
for i = 1, 4 do
  if (h[i] or none[i]) ~= ARGV[i + 1] then return 0 end
end
redis.call('HSET', KEYS[2], 'pause', ARGV[6], 'failures', ARGV[7], 'epoch', ARGV[8],
  'gaveup', ARGV[9])
return 1
",
    )
});

/// Renews slots this worker holds. KEYS: identity, then the slot sets. ARGV: id, lease ms,
/// now ms, then one token per slot set.
pub(super) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local until_ = tonumber(ARGV[3]) + tonumber(ARGV[2])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', until_, ARGV[i + 2])
end
return #KEYS - 1
",
    )
});

/// Whether anything is queued or in flight anywhere. KEYS: identity, stream.
pub(super) static LEFT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
return redis.call('XLEN', KEYS[2])
",
    )
});

/// Adds hosts to the shared scope and returns them all. KEYS: identity, scope. ARGV: id, hosts.
pub(super) static WIDEN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
for i = 2, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return redis.call('SMEMBERS', KEYS[2])
",
    )
});
