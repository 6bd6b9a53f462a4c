//! A shared crawl's place in Redis ([`SharedCrawl`]), joining it, and reading its counts
//! ([`SharedStatus`]).
//!
//! Joining checks, before anything is written: that Redis answers; that it can do what a shared
//! crawl needs (6.2 or later, with `XAUTOCLAIM`, or a dead worker's jobs would never be taken
//! over); and that the crawl is the one this worker means. The first worker records the crawl's
//! identity (its start URLs, or its list of jobs, and every option that changes what is crawled);
//! a worker whose options differ is refused, naming the option.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use super::scripts::JOIN;
use super::GROUP;
use crate::job::SharedStatus;

/// Where a shared crawl lives, and how its workers share it. Build it with [`SharedCrawl::new`].
#[derive(Clone)]
pub struct SharedCrawl {
    pub(super) url: String,
    pub(super) name: String,
    pub(super) consumer: String,
    pub(super) lease: Duration,
    pub(super) max_claims: u32,
    pub(super) patience: Duration,
}

impl std::fmt::Debug for SharedCrawl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCrawl")
            .field("url", &redact(&self.url))
            .field("name", &self.name)
            .field("consumer", &self.consumer)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// `url` with its password (and user name) replaced by `***`: Redis URLs may carry a password,
/// which no output shows.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL: nothing of it is shown but its scheme.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".to_string(),
        },
    }
}

/// A Redis error message without the URL's password, whatever the client library put in it.
pub(super) fn scrub(url: &str, message: &str) -> String {
    let mut out = message.to_string();
    if let Ok(u) = url::Url::parse(url) {
        if let Some(p) = u.password().filter(|p| !p.is_empty()) {
            out = out.replace(p, "***");
            if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
                if !decoded.is_empty() {
                    out = out.replace(&*decoded, "***");
                }
            }
        }
    }
    out
}

/// Why a worker cannot join a shared crawl; nothing was fetched or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JoinError {
    /// Redis does not answer.
    #[error("cannot connect to {0}")]
    Unreachable(String),
    /// This Redis cannot run a shared crawl.
    #[error("{0}")]
    Unsupported(String),
    /// The crawl of that name is another crawl.
    #[error("{0}")]
    Mismatch(String),
}

impl SharedCrawl {
    /// The crawl `name` in the Redis at `url` (`redis://[:password@]host:port`). Defaults: a
    /// consumer name made of the host name and process id, a 60 s lease, 3 takeovers at most, and
    /// 60 s of patience with a Redis that does not answer.
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
            patience: Duration::from_secs(60),
        }
    }

    /// This worker's name in the consumer group (unique per worker).
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// How long an entry or request slot stays with a worker that stopped renewing it (died)
    /// before others take it over (default 60 s; at least 300 ms). A dead worker's jobs are
    /// taken over within the lease and a third.
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d.max(Duration::from_millis(300));
        self
    }

    /// How many times an entry may be taken over before it ends as an error (default 3).
    pub fn max_claims(mut self, n: u32) -> Self {
        self.max_claims = n;
        self
    }

    /// How long a worker keeps retrying while Redis does not answer before it stops with an
    /// error (default 60 s): what it holds stays pending in Redis for the others.
    pub fn patience(mut self, d: Duration) -> Self {
        self.patience = d;
        self
    }

    /// This worker's name in the consumer group.
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// The Redis URL, its password hidden.
    pub fn redis_url(&self) -> String {
        redact(&self.url)
    }

    pub(super) fn key(&self, what: &str) -> String {
        format!("flags:{}:{what}", self.name)
    }

    pub(super) async fn connect(&self) -> Result<ConnectionManager, String> {
        let fail = |e: String| scrub(&self.url, &e);
        let client = redis::Client::open(self.url.as_str()).map_err(|e| fail(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connect = client.get_connection_manager_with_config(config);
        match tokio::time::timeout(Duration::from_secs(3), connect).await {
            Ok(Ok(mut con)) => {
                let pong: Result<String, _> = redis::cmd("PING").query_async(&mut con).await;
                pong.map(|_| con).map_err(|e| fail(e.to_string()))
            }
            Ok(Err(e)) => Err(fail(e.to_string())),
            Err(_) => Err("no answer within 3 s".into()),
        }
    }

    /// Checks that Redis answers (a clear error before anything is written).
    pub async fn check(&self) -> Result<(), String> {
        self.connect().await.map(|_| ())
    }

    /// Joins the crawl: checks Redis and the crawl's identity, recording it if this worker is
    /// the first. Returns the connection, the crawl's id and Redis's clock (ms).
    pub(super) async fn join(
        &self,
        identity: &[(&'static str, String)],
    ) -> Result<(ConnectionManager, String, u64), JoinError> {
        let mut con = self
            .connect()
            .await
            .map_err(|e| JoinError::Unreachable(format!("{}: {e}", self.redis_url())))?;
        check_version(&mut con).await?;
        let id = format!("{:032x}", rand::random::<u128>());
        let ours = identity_json(&id, identity);
        let theirs: String = JOIN
            .key(self.key("identity"))
            .key(self.key("jobs"))
            .key(self.key("id"))
            .arg(&ours)
            .arg(GROUP)
            .arg(&id)
            .invoke_async(&mut con)
            .await
            .map_err(|e| JoinError::Unreachable(scrub(&self.url, &e.to_string())))?;
        let id = if theirs == ours {
            id
        } else {
            compare(&self.name, &theirs, identity)?
        };
        let _: Result<u64, _> = con.hincr(self.key("stats"), "workers", 1).await;
        let time: (String, String) = redis::cmd("TIME")
            .query_async(&mut con)
            .await
            .map_err(|e| JoinError::Unreachable(scrub(&self.url, &e.to_string())))?;
        let secs: u64 = time.0.parse().unwrap_or(0);
        let micros: u64 = time.1.parse().unwrap_or(0);
        Ok((con, id, secs * 1000 + micros / 1000))
    }

    /// The crawl's counts.
    pub async fn status(&self) -> Result<SharedStatus, String> {
        let mut con = self.connect().await?;
        let fail = |e: redis::RedisError| scrub(&self.url, &e.to_string());
        let stats: HashMap<String, u64> = con.hgetall(self.key("stats")).await.map_err(fail)?;
        let exists: bool = con.exists(self.key("identity")).await.map_err(fail)?;
        let len: u64 = con.xlen(self.key("jobs")).await.map_err(fail)?;
        let pending = pending_count(&mut con, &self.key("jobs"))
            .await
            .map_err(|e| scrub(&self.url, &e))?;
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
            fetched: get("fetched"),
            sitemaps: get("sitemap"),
            workers: get("workers"),
            exists,
        })
    }
}

/// Redis 6.2 or later, with `XAUTOCLAIM` available: without it a dead worker's jobs would never
/// be taken over, and the other workers would wait for them for ever.
async fn check_version(con: &mut ConnectionManager) -> Result<(), JoinError> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(con)
        .await
        .map_err(|e| JoinError::Unreachable(e.to_string()))?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("0")
        .trim()
        .to_string();
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .chain(std::iter::repeat(0))
        .take(2)
        .collect();
    if (parts[0], parts[1]) < (6, 2) {
        return Err(JoinError::Unsupported(format!(
            "Redis {version} is too old for a shared crawl: it needs 6.2 or later (XAUTOCLAIM)"
        )));
    }
    let info: redis::Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("XAUTOCLAIM")
        .query_async(con)
        .await
        .map_err(|e| JoinError::Unreachable(e.to_string()))?;
    let known = matches!(&info, redis::Value::Array(items)
        if items.first().is_some_and(|i| !matches!(i, redis::Value::Nil)));
    if !known {
        return Err(JoinError::Unsupported(
            "this Redis has no XAUTOCLAIM command (renamed or disabled in its configuration?): \
             a dead worker's jobs could never be taken over"
                .into(),
        ));
    }
    Ok(())
}

/// The identity as recorded: the crawl id and every option, as JSON.
fn identity_json(id: &str, identity: &[(&'static str, String)]) -> String {
    let mut fields = serde_json::Map::new();
    for (k, v) in identity {
        fields.insert((*k).to_string(), serde_json::Value::String(v.clone()));
    }
    serde_json::json!({ "id": id, "options": fields }).to_string()
}

/// The recorded crawl's id when its options are ours; otherwise the first option that differs.
fn compare(
    name: &str,
    theirs: &str,
    identity: &[(&'static str, String)],
) -> Result<String, JoinError> {
    let recorded: serde_json::Value = serde_json::from_str(theirs).map_err(|_| {
        JoinError::Mismatch(format!(
            "the shared crawl {name} in Redis was not made by this version of flags"
        ))
    })?;
    for (option, value) in identity {
        let theirs = recorded["options"][*option].as_str().unwrap_or("(none)");
        if theirs != value {
            let shown = |v: &str| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.to_string()
                }
            };
            return Err(JoinError::Mismatch(format!(
                "the shared crawl {name} was started with other {option}: {} (this worker: {}); \
                 every worker of a crawl runs the same command",
                shown(theirs),
                shown(value)
            )));
        }
    }
    Ok(recorded["id"].as_str().unwrap_or_default().to_string())
}

async fn pending_count(con: &mut ConnectionManager, stream: &str) -> Result<u64, String> {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(GROUP)
        .query_async(con)
        .await
        .or_else(|e| {
            // No stream or group: nothing pending.
            if e.to_string().contains("NOGROUP") {
                Ok(redis::Value::Nil)
            } else {
                Err(e.to_string())
            }
        })?;
    match reply {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            _ => Ok(0),
        },
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("redis://:s3cret@db:6379/0"),
            "redis://:***@db:6379/0"
        );
        assert_eq!(redact("redis://u:pw@db"), "redis://u:***@db");
        assert_eq!(redact("redis://db:6379"), "redis://db:6379");
        assert!(
            !redact("redis://:p@[bad").contains('p') || !redact("redis://:p@[bad").contains(":p@")
        );
        assert_eq!(
            scrub("redis://:s3cret@db", "auth s3cret failed"),
            "auth *** failed"
        );
    }

    #[test]
    fn a_differing_option_is_named() {
        let a = [
            ("--max-depth", "Some(3)".to_string()),
            ("--per-host", "2".into()),
        ];
        let json = identity_json("abc", &a);
        assert_eq!(compare("c", &json, &a).unwrap(), "abc");
        let b = [
            ("--max-depth", "Some(3)".to_string()),
            ("--per-host", "4".into()),
        ];
        let err = compare("c", &json, &b).unwrap_err().to_string();
        assert!(err.contains("--per-host: 2 (this worker: 4)"), "{err}");
    }
}
