//! The **crawl policy**: everything a crawl decides, written once, as plain data and functions.
//!
//! No actor, no network, no clock of its own: callers hand in events (a page's outcome, a
//! robots.txt answer, a 429 with its `Retry-After`, the time) and get decisions back (queue this
//! link, pause this host until then, try this page again then, give this host up). Both stores of
//! a crawl, the memory of one process and Redis shared by many workers, keep state and nothing
//! else; the frontier takes every decision from here, so the two cannot drift apart.
//!
//! - [`scope`]: which links a page gives the crawl (scope, depth, redirect chains).
//! - [`robots`]: robots.txt per host (RFC 9309): what an answer means, what a rule allows.
//! - [`host`]: politeness and health of a host: when its next request may start, how long it is
//!   paused after a failure, when it is given up; and when a page is tried again.
//!
//! Every wait here has a cap and every retry a count, so every crawl ends, whatever its servers
//! do: see [`Policy`] for the bounds.

pub(crate) mod host;
pub(crate) mod robots;
mod scope;

use std::time::Duration;

pub(crate) use host::{HostState, Readiness, Trouble, TroubleKind, Verdict};
pub(crate) use robots::{RobotsAnswer, Rules};
pub(crate) use scope::{Admitted, Finished, Scope};

use crate::config::Config;
use crate::spec::CrawlSpec;

/// Milliseconds on the clock of the crawl's store (the process's for memory, Redis's for a
/// shared crawl).
pub(crate) type Millis = u64;

/// The rules of one crawl, from its spec and config.
///
/// The bounds that make every crawl end: a page is tried at most [`Policy::tries`] times; a
/// redirect chain is cut after [`Policy::max_hops`] hops; a host whose requests fail
/// [`Policy::give_up_after`] times in a row (its robots.txt unreachable, connections refused,
/// timeouts, 429/503) is given up and its remaining URLs end as errors, having waited at most
/// `pause_first × (1 + 2 + … + 2^(n−2))` (each pause capped at [`Policy::pause_max`], a
/// `Retry-After` too) plus one timeout per try.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub scope: Scope,
    /// Links are followed at most this many steps from a seed.
    pub max_depth: Option<u32>,
    /// At most this many pages are handed out (memory store only).
    pub max_pages: Option<u64>,
    /// Redirects followed in a row, across pages.
    pub max_hops: u32,
    /// Requests in flight to one host.
    pub per_host: usize,
    /// The pause between one request's end and the next one's start, per host.
    pub delay: Duration,
    /// The longest `Crawl-delay` honoured.
    pub crawl_delay_max: Duration,
    /// Obey robots.txt.
    pub robots: bool,
    /// Deadline of a robots.txt request.
    pub robots_timeout: Duration,
    /// Tries of one page (retries + 1).
    pub tries: u32,
    /// The first pause of a failing host (it doubles with each failure in a row).
    pub pause_first: Duration,
    /// The longest pause, whatever `Retry-After` asks for.
    pub pause_max: Duration,
    /// Failures in a row after which a host is given up.
    pub give_up_after: u32,
    /// Pages give links (a crawl) or not (a list of jobs shared through Redis).
    pub links: bool,
    /// Requisites only from their page's host.
    pub same_host_assets: bool,
    /// Read the sitemaps of start hosts and of robots.txt.
    pub sitemaps: bool,
}

impl Policy {
    /// The policy of a crawl.
    pub fn crawl(spec: &CrawlSpec, config: &Config) -> Self {
        Policy {
            scope: Scope::new(spec),
            max_depth: spec.max_depth,
            max_pages: spec.max_pages,
            max_hops: u32::from(config.max_redirects),
            per_host: spec.per_host,
            delay: spec.delay,
            crawl_delay_max: spec.crawl_delay_max,
            robots: spec.robots,
            robots_timeout: spec.robots_timeout.min(config.timeout),
            tries: config.retries.saturating_add(1),
            pause_first: spec.pause_first,
            pause_max: spec.pause_max,
            give_up_after: spec.give_up_after.max(1),
            links: true,
            same_host_assets: spec.same_host_assets,
            sitemaps: spec.sitemaps,
        }
    }

    /// The policy of a list of jobs shared through Redis: no links, no robots.txt, the pool size
    /// in flight to a host, the config's retries; failing hosts are paused and given up as in a
    /// crawl.
    pub fn list(config: &Config) -> Self {
        let defaults = CrawlSpec::defaults();
        Policy {
            scope: Scope::default(),
            max_depth: None,
            max_pages: None,
            max_hops: u32::from(config.max_redirects),
            per_host: config.pool_size,
            delay: Duration::ZERO,
            crawl_delay_max: defaults.crawl_delay_max,
            robots: false,
            robots_timeout: defaults.robots_timeout,
            tries: config.retries.saturating_add(1),
            pause_first: defaults.pause_first,
            pause_max: defaults.pause_max,
            give_up_after: defaults.give_up_after,
            links: false,
            same_host_assets: false,
            sitemaps: false,
        }
    }

    /// Whether the links of a page at `depth` can lead anywhere (pages at the depth limit are not
    /// read for links).
    pub fn wants_links(&self, depth: u32) -> bool {
        self.links && self.max_depth.is_none_or(|max| depth < max)
    }
}

/// A duration in whole milliseconds (at least 1 for any non-zero duration, so a pause is never
/// rounded away).
pub(crate) fn ms(d: Duration) -> Millis {
    let m = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if m == 0 && !d.is_zero() {
        1
    } else {
        m
    }
}
