//! The validated crawl configuration and its builder.
//!
//! Every limit of the HTTP client is set here on purpose, because awc's defaults are wrong for a
//! crawler: 100 connections per connector (silently caps concurrency), a 2 MiB body limit, and no
//! deadline on reading the body.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use awc::http::header::{HeaderName, HeaderValue};

use crate::job::Job;

/// Picks a file name for a job from the body of its `meta_url` (the book's flags3 names each flag
/// after the country in `metadata.json`). Runs on a fetcher; must be quick and must not block.
pub trait Namer: Send + Sync + 'static {
    /// The relative file name for `job`, given the metadata body. An `Err` makes the job an error
    /// with that message.
    fn name(&self, job: &Job, meta: &[u8]) -> Result<PathBuf, String>;
}

/// How the reporter shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar on stderr, redrawn on a timer; drawn only when stderr is a terminal, and
    /// only in builds with the `progress-bar` feature (on by default; without it, nothing).
    Bar,
    /// Nothing.
    Hidden,
}

/// A configuration error: a value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The pool size is zero.
    #[error("the pool size must be at least 1")]
    ZeroPool,
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The body limit is zero.
    #[error("the body size limit must be at least 1 byte")]
    ZeroBodyLimit,
    /// A status listed as retryable can never be retried.
    #[error("status {0} cannot be retried (only 400 to 599, and never 404)")]
    BadRetryStatus(u16),
    /// An extra root certificate could not be read.
    #[error("cannot read root certificate: {0}")]
    BadCertificate(String),
    /// A request header has an invalid name or value.
    #[error("invalid request header {0:?}")]
    BadHeader(String),
}

/// The crawl configuration. Build it with [`Config::builder`]; every field has a default that
/// suits a polite crawler.
#[derive(Clone)]
pub struct Config {
    pub(crate) pool_size: usize,
    pub(crate) workers: usize,
    pub(crate) writer_threads: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) retry_after_max: Duration,
    pub(crate) retry_statuses: Vec<u16>,
    pub(crate) max_body: u64,
    pub(crate) max_redirects: u8,
    pub(crate) allow_insecure_redirects: bool,
    pub(crate) user_agent: String,
    pub(crate) skip_existing: bool,
    pub(crate) progress: Progress,
    pub(crate) grace: Duration,
    pub(crate) root_certs: Vec<Vec<u8>>,
    pub(crate) namer: Option<Arc<dyn Namer>>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("pool_size", &self.pool_size)
            .field("workers", &self.workers)
            .field("writer_threads", &self.writer_threads)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("max_body", &self.max_body)
            .field("max_redirects", &self.max_redirects)
            .field("user_agent", &self.user_agent)
            .field("skip_existing", &self.skip_existing)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pool_size: 10,
            workers: 0,
            writer_threads: 4,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            retries: 0,
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            retry_after_max: Duration::from_secs(30),
            retry_statuses: Vec::new(),
            max_body: 100 * 1024 * 1024,
            max_redirects: 10,
            allow_insecure_redirects: false,
            user_agent: concat!("flags/", env!("CARGO_PKG_VERSION")).to_string(),
            skip_existing: false,
            progress: Progress::Hidden,
            grace: Duration::from_secs(5),
            root_certs: Vec::new(),
            namer: None,
            headers: Vec::new(),
        }
    }
}

impl Config {
    /// A builder holding the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
            cert_error: None,
            header_error: None,
        }
    }

    /// The number of fetchers: at most this many requests are in flight.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The per-attempt deadline, from connect to the last body byte.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many times a transient failure is retried.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The largest body accepted, in bytes.
    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    /// True for statuses that are retried: 408, 429, every 5xx, and the ones added by
    /// [`ConfigBuilder::retry_status`].
    pub fn is_retryable_status(&self, status: u16) -> bool {
        status == 408
            || status == 429
            || (500..600).contains(&status)
            || self.retry_statuses.contains(&status)
    }
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] checks every value.
#[derive(Clone)]
pub struct ConfigBuilder {
    config: Config,
    cert_error: Option<String>,
    header_error: Option<String>,
}

impl ConfigBuilder {
    /// Number of fetchers, the concurrency (default 10).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.config.pool_size = n;
        self
    }

    /// Number of extra arbiters (threads) the fetchers are spread over; 0 (the default) runs them
    /// on the run's own arbiter, beside the supervisor and the reporter.
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// Number of threads doing blocking file I/O (default 4).
    pub fn writer_threads(mut self, n: usize) -> Self {
        self.config.writer_threads = n.max(1);
        self
    }

    /// Deadline for opening a connection (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Deadline for one attempt, from connect to the last body byte (default 30 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.config.timeout = d;
        self
    }

    /// Retries of transient failures: connect errors, timeouts, resets, truncated bodies, 408,
    /// 429, 5xx (default 0).
    pub fn retries(mut self, n: u32) -> Self {
        self.config.retries = n;
        self
    }

    /// First backoff delay; it doubles with each retry, with jitter (default 100 ms).
    pub fn backoff(mut self, d: Duration) -> Self {
        self.config.backoff = d;
        self
    }

    /// Longest backoff delay, and the cap on a server's `Retry-After` (default 10 s and 30 s).
    pub fn backoff_max(mut self, d: Duration) -> Self {
        self.config.backoff_max = d;
        self.config.retry_after_max = d.max(self.config.retry_after_max);
        self
    }

    /// Also retry this status (for example 418 from the book's ERROR server).
    pub fn retry_status(mut self, status: u16) -> Self {
        self.config.retry_statuses.push(status);
        self
    }

    /// Largest body accepted, announced or streamed (default 100 MiB).
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.config.max_body = bytes;
        self
    }

    /// Redirects followed per request; 0 disables them (default 10).
    pub fn max_redirects(mut self, n: u8) -> Self {
        self.config.max_redirects = n;
        self
    }

    /// Follow a redirect from an https URL to a plain http one (default false: such a redirect is
    /// an error, so nothing asked for over TLS is fetched in the clear without the user saying so).
    pub fn allow_insecure_redirects(mut self, yes: bool) -> Self {
        self.config.allow_insecure_redirects = yes;
        self
    }

    /// The User-Agent header (default `flags/VERSION`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.config.user_agent = ua.into();
        self
    }

    /// Skip a job whose file already exists in the sink (default false).
    pub fn skip_existing(mut self, yes: bool) -> Self {
        self.config.skip_existing = yes;
        self
    }

    /// How progress is shown (default hidden).
    pub fn progress(mut self, p: Progress) -> Self {
        self.config.progress = p;
        self
    }

    /// After the shutdown signal, how long in-flight jobs may take to finish (default 5 s).
    pub fn grace(mut self, d: Duration) -> Self {
        self.config.grace = d;
        self
    }

    /// Trust these PEM certificates as extra roots for https (a local test server's, say).
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Self {
        let mut reader = pem;
        let mut found = 0;
        for cert in rustls_pemfile::certs(&mut reader) {
            match cert {
                Ok(der) => {
                    self.config.root_certs.push(der.to_vec());
                    found += 1;
                }
                Err(e) => self.cert_error = Some(e.to_string()),
            }
        }
        if found == 0 && self.cert_error.is_none() {
            self.cert_error = Some("no PEM certificate found".into());
        }
        self
    }

    /// Send this header with every request (repeatable; a later value for the same name replaces
    /// an earlier one, and replaces the default `User-Agent` or `Accept-Encoding`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            (Ok(n), Ok(v)) => {
                self.config.headers.retain(|(have, _)| *have != n);
                self.config.headers.push((n, v));
            }
            _ => self.header_error = Some(format!("{name}: {value}")),
        }
        self
    }

    /// Name files from each job's `meta_url` body.
    pub fn namer(mut self, namer: impl Namer) -> Self {
        self.config.namer = Some(Arc::new(namer));
        self
    }

    /// Checks the values and returns the config.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.config;
        if let Some(e) = self.cert_error {
            return Err(ConfigError::BadCertificate(e));
        }
        if let Some(h) = self.header_error {
            return Err(ConfigError::BadHeader(h));
        }
        if c.pool_size == 0 {
            return Err(ConfigError::ZeroPool);
        }
        if c.timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("the timeout"));
        }
        if c.connect_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("the connect timeout"));
        }
        if c.grace.is_zero() {
            return Err(ConfigError::ZeroDuration("the grace period"));
        }
        if c.max_body == 0 {
            return Err(ConfigError::ZeroBodyLimit);
        }
        if let Some(&s) = c
            .retry_statuses
            .iter()
            .find(|&&s| !(400..600).contains(&s) || s == 404)
        {
            return Err(ConfigError::BadRetryStatus(s));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_rejects_out_of_range_values() {
        assert_eq!(
            Config::builder().pool_size(0).build().unwrap_err(),
            ConfigError::ZeroPool
        );
        assert!(Config::builder().timeout(Duration::ZERO).build().is_err());
        assert!(Config::builder().max_body(0).build().is_err());
        assert_eq!(
            Config::builder().retry_status(404).build().unwrap_err(),
            ConfigError::BadRetryStatus(404)
        );
        assert!(Config::builder()
            .root_certificates_pem(b"junk")
            .build()
            .is_err());
        assert!(matches!(
            Config::builder().header("Bad Name", "x").build(),
            Err(ConfigError::BadHeader(_))
        ));
        assert!(matches!(
            Config::builder().header("X-Ok", "line\nbreak").build(),
            Err(ConfigError::BadHeader(_))
        ));
        let c = Config::builder()
            .header("X-A", "1")
            .header("x-a", "2")
            .build()
            .unwrap();
        assert_eq!(c.headers.len(), 1, "a later value replaces an earlier one");
    }

    #[test]
    fn retryable_statuses() {
        let c = Config::builder().retry_status(418).build().unwrap();
        for s in [408, 429, 500, 503, 599, 418] {
            assert!(c.is_retryable_status(s), "{s}");
        }
        for s in [200, 301, 400, 403, 404] {
            assert!(!c.is_retryable_status(s), "{s}");
        }
    }
}
