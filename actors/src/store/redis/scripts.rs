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

/// The writes no decision waits for, deferred by the store and sent as one call, in the order
/// they were made (see `Store`'s doc): one script, so they are applied together and in order, and
/// a page's links are queued before it is acked whatever happens to the call. KEYS: identity,
/// stream, stats, claims. ARGV: id, group, then the operations one after another:
///
/// - `A n`, then `n` entries, each: seen bucket, fingerprint field, `c`, then `c` stream fields
///   and values. Queues the entries not seen before (`HSETNX` in the fingerprint's bucket, `XADD`
///   when new), and counts them in `added`.
/// - `F id outcome`: the entry's outcome is final: acks it, and only if this ack took it out of
///   the pending list, deletes it and counts the outcome (an entry done twice counts once).
/// - `R slots host token next answered`: gives a slot back; the host's next start no earlier
///   than `next` (`0`: no later than now, nothing to write); an answer (`1`) forgets its
///   failures.
///
/// Returns how many entries were new.
pub(super) static WRITE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
-- Constants go to Redis as strings: a Lua number would be formatted again at every call.
local new = 0
local i = 3
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'A' then
    local added = 0
    local j = i + 2
    for _ = 1, tonumber(ARGV[i + 1]) do
      local c = tonumber(ARGV[j + 2])
      if redis.call('HSETNX', ARGV[j], ARGV[j + 1], '1') == 1 then
        redis.call('XADD', KEYS[2], '*', unpack(ARGV, j + 3, j + 2 + c))
        added = added + 1
      end
      j = j + 3 + c
    end
    if added > 0 then redis.call('HINCRBY', KEYS[3], 'added', added) end
    new = new + added
    i = j
  elseif op == 'F' then
    if redis.call('XACK', KEYS[2], ARGV[2], ARGV[i + 1]) == 1 then
      redis.call('XDEL', KEYS[2], ARGV[i + 1])
      redis.call('HINCRBY', KEYS[3], ARGV[i + 2], '1')
    end
    redis.call('HDEL', KEYS[4], ARGV[i + 1])
    i = i + 3
  elseif op == 'R' then
    redis.call('ZREM', ARGV[i + 1], ARGV[i + 3])
    local nxt = tonumber(ARGV[i + 4])
    if nxt > 0 and nxt > tonumber(redis.call('HGET', ARGV[i + 2], 'next') or '0') then
      redis.call('HSET', ARGV[i + 2], 'next', nxt)
    end
    -- Written only when there is something to forget (most answers find none).
    if ARGV[i + 5] == '1' and (redis.call('HGET', ARGV[i + 2], 'failures') or '0') ~= '0' then
      redis.call('HSET', ARGV[i + 2], 'failures', '0')
    end
    i = i + 6
  else
    return redis.error_reply('WRITE: unknown operation ' .. tostring(op))
  end
end
return new
",
    )
});

/// Takes up to `n` of a host's slots if the readiness rule allows. The slots are shared among
/// the workers that asked for the host lately (each ask is remembered for `want ms`): while
/// others want it too, a worker holds at most its share, `limit / wanting` rounded up, so a
/// worker that takes slots several at a time never shuts the others out of a host. KEYS:
/// identity, slots, host, wants. ARGV: id, limit, token prefix (the consumer and `:`), lease ms,
/// now ms, first token number, n, consumer, want ms: the tokens are the prefix followed by the
/// numbers from the first on. Returns `{0, epoch, taken}` (the first `taken` tokens are held),
/// `{1, at}` not before `at`, `{2}` every slot taken (or this worker's share), `{3, why}` given
/// up.
pub(super) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = tonumber(ARGV[5])
local prefix = ARGV[3]
local first = tonumber(ARGV[6])
local mine = {}
for i = 0, tonumber(ARGV[7]) - 1 do mine[#mine + 1] = prefix .. (first + i) end
-- This very call again (its answer was lost on the way): its own tokens do not count.
redis.call('ZREM', KEYS[2], unpack(mine))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local h = redis.call('HMGET', KEYS[3], 'next', 'pause', 'gaveup', 'epoch')
if h[3] and h[3] ~= '' then return {3, h[3]} end
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[9]), ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local at = math.max(tonumber(h[1] or '0'), tonumber(h[2] or '0'))
if at > now then return {1, at} end
local limit = tonumber(ARGV[2])
local free = limit - redis.call('ZCARD', KEYS[2])
if free <= 0 then return {2} end
local can = #mine
local wanting = redis.call('ZCARD', KEYS[4])
if wanting > 1 then
  local held = 0
  for _, t in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if string.sub(t, 1, #prefix) == prefix and not string.find(t, ':', #prefix + 1, true) then
      held = held + 1
    end
  end
  can = math.min(can, math.ceil(limit / wanting) - held)
  if can <= 0 then return {2} end
end
local taken = math.min(free, can)
local until_ = now + tonumber(ARGV[4])
for i = 1, taken do redis.call('ZADD', KEYS[2], until_, mine[i]) end
return {0, tonumber(h[4] or '0'), taken}
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
