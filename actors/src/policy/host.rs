//! Politeness and health of a host: when its next request may start, how long a failing host is
//! paused, when it is given up, and when a page that failed is tried again.
//!
//! A *failure* here is an attempt that may succeed later: a refused or reset connection, a
//! timeout, a 429 or a 5xx, an unreachable robots.txt. Some say the *host* is in trouble
//! ([`TroubleKind::Host`]: connections, timeouts, 429, 503, robots.txt): the whole host is paused,
//! for its `Retry-After` or else `pause_first` doubling with each failure in a row (with up to
//! 25 % jitter, so hosts paused together do not come back together), never longer than
//! `pause_max`. Others concern one page ([`TroubleKind::Page`]: a 500, a truncated body): only
//! that page waits. Requests that were in flight together and fail together are one incident
//! (the host's `epoch` tells them apart), so a host with 16 requests in flight that times out
//! once counts one failure, not 16. After `give_up_after` failures in a row the host is given up:
//! its remaining URLs end as errors without a request. An answer from the host forgets its
//! failures.

use std::time::Duration;

use super::{ms, Millis, Policy};
use crate::job::ErrorKind;

/// What a store keeps of a host between requests (both stores keep exactly these fields; the
/// requests in flight are counted by the store's slots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostState {
    /// No request starts before this (the delay after the last request's end).
    pub next_start: Millis,
    /// No request starts before this (the pause after a failure).
    pub paused_until: Millis,
    /// Failures in a row.
    pub failures: u32,
    /// The incident count: a request dispatched in an earlier epoch fails as part of an incident
    /// already counted.
    pub epoch: u32,
    /// Why the host was given up, once it is.
    pub given_up: Option<String>,
}

/// Whether a host may get a request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    /// Not before then (its delay or its pause).
    At(Millis),
    /// Its requests in flight are at the limit.
    Full,
    /// Given up: its URLs end as errors.
    GivenUp(String),
}

/// Whose trouble a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TroubleKind {
    /// The host's: it is paused.
    Host,
    /// The page's: only the page waits.
    Page,
}

impl TroubleKind {
    /// Whose trouble a failed attempt is: 429 and 503 (the host says it is overloaded), and
    /// failures with no response at all (refused or reset connections, timeouts before the
    /// status, TLS) are the host's; any other status, or a body cut short, is the page's.
    pub fn of(status: Option<u16>, kind: ErrorKind) -> Self {
        match status {
            Some(429 | 503) => TroubleKind::Host,
            Some(_) => TroubleKind::Page,
            None => match kind {
                ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Tls => TroubleKind::Host,
                _ => TroubleKind::Page,
            },
        }
    }
}

/// An attempt that failed in a way that may pass.
#[derive(Debug, Clone)]
pub(crate) struct Trouble {
    pub kind: TroubleKind,
    pub retry_after: Option<Duration>,
    /// The host's epoch when the request was dispatched.
    pub epoch: u32,
    /// Tries of this page so far, this one included.
    pub tries: u32,
    pub message: String,
}

/// What happens to a page whose attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Tried again, not before then.
    RetryAt(Millis),
    /// It ends as an error, saying why.
    Fail(String),
}

/// The readiness rule, which the Redis store applies in a script atomically with taking a slot:
/// a given-up host is given up; then the later of its next start and its pause; then its limit.
pub(crate) fn readiness(
    host: &HostState,
    in_flight: usize,
    limit: usize,
    now: Millis,
) -> Readiness {
    if let Some(why) = &host.given_up {
        return Readiness::GivenUp(why.clone());
    }
    let at = host.next_start.max(host.paused_until);
    if at > now {
        Readiness::At(at)
    } else if in_flight >= limit {
        Readiness::Full
    } else {
        Readiness::Ready
    }
}

impl Policy {
    /// The pause after each request to a host: the crawl's delay, raised by the host's
    /// `Crawl-delay` (capped).
    pub fn host_delay(&self, crawl_delay: Option<Duration>) -> Duration {
        self.delay.max(
            crawl_delay
                .unwrap_or(Duration::ZERO)
                .min(self.crawl_delay_max),
        )
    }

    /// Requests in flight to a host: the per-host limit, or one at a time with a delay (each a
    /// delay after the last one ended, as Heritrix and StormCrawler do).
    pub fn host_limit(&self, delay: Duration) -> usize {
        if delay.is_zero() {
            self.per_host
        } else {
            1
        }
    }

    /// A request failed with `trouble` at `now`: updates the host (failures, pause, given up)
    /// and says what happens to the page. `jitter` is a number in `[0, 1)`.
    pub fn trouble(
        &self,
        host: &mut HostState,
        trouble: &Trouble,
        now: Millis,
        jitter: f64,
    ) -> Verdict {
        let counted = trouble.epoch == host.epoch;
        if counted {
            host.failures = host.failures.saturating_add(1);
            host.epoch = host.epoch.wrapping_add(1);
            if host.failures >= self.give_up_after && host.given_up.is_none() {
                host.given_up = Some(format!(
                    "host given up after {} failures in a row (last: {})",
                    host.failures, trouble.message
                ));
            }
        }
        if trouble.kind == TroubleKind::Host {
            let pause = match trouble.retry_after {
                Some(ra) => ra.min(self.pause_max),
                None if counted => self.doubling(host.failures, jitter),
                None => Duration::ZERO,
            };
            host.paused_until = host.paused_until.max(now.saturating_add(ms(pause)));
        }
        if let Some(why) = &host.given_up {
            return Verdict::Fail(format!("{}; {why}", trouble.message));
        }
        if trouble.tries >= self.tries {
            return Verdict::Fail(trouble.message.clone());
        }
        Verdict::RetryAt(match trouble.kind {
            TroubleKind::Host => host.paused_until.max(now),
            TroubleKind::Page => now.saturating_add(ms(self.doubling(trouble.tries, jitter))),
        })
    }

    /// `pause_first` doubled `n − 1` times, stretched by up to 25 % jitter, capped.
    fn doubling(&self, n: u32, jitter: f64) -> Duration {
        let exp = n.saturating_sub(1).min(30);
        let base = self
            .pause_first
            .saturating_mul(1u32 << exp)
            .min(self.pause_max);
        base.mul_f64(1.0 + 0.25 * jitter.clamp(0.0, 1.0))
            .min(self.pause_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::spec::CrawlSpec;

    fn policy() -> Policy {
        let spec = CrawlSpec::builder()
            .seed("http://h.test/")
            .pause_first(Duration::from_secs(1))
            .pause_max(Duration::from_secs(10))
            .give_up_after(4)
            .build()
            .unwrap();
        Policy::crawl(&spec, &Config::builder().retries(2).build().unwrap())
    }

    fn host_trouble(epoch: u32, tries: u32, retry_after: Option<Duration>) -> Trouble {
        Trouble {
            kind: TroubleKind::Host,
            retry_after,
            epoch,
            tries,
            message: "HTTP error 503".into(),
        }
    }

    #[test]
    fn readiness_rule() {
        let mut h = HostState::default();
        assert_eq!(readiness(&h, 0, 2, 0), Readiness::Ready);
        assert_eq!(readiness(&h, 2, 2, 0), Readiness::Full);
        h.next_start = 50;
        h.paused_until = 80;
        assert_eq!(readiness(&h, 0, 2, 10), Readiness::At(80));
        assert_eq!(readiness(&h, 0, 2, 80), Readiness::Ready);
        h.given_up = Some("gone".into());
        assert!(matches!(readiness(&h, 0, 2, 99), Readiness::GivenUp(_)));
    }

    #[test]
    fn pauses_double_are_capped_and_the_host_is_given_up() {
        let p = policy();
        let mut h = HostState::default();
        let mut now = 0;
        let mut pauses = Vec::new();
        for _ in 0..4 {
            let t = host_trouble(h.epoch, 1, None);
            let v = p.trouble(&mut h, &t, now, 0.0);
            pauses.push(h.paused_until - now);
            now = h.paused_until;
            if h.given_up.is_none() {
                assert_eq!(v, Verdict::RetryAt(now));
            } else {
                assert!(matches!(v, Verdict::Fail(m) if m.contains("given up after 4")));
            }
        }
        assert_eq!(pauses, [1000, 2000, 4000, 8000]);
        let mut h = HostState {
            failures: 9,
            epoch: 9,
            ..HostState::default()
        };
        p.trouble(&mut h, &host_trouble(9, 1, None), 0, 0.99);
        assert_eq!(h.paused_until, 10_000, "capped at pause_max");
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap_and_jitter_stays_within_a_quarter() {
        let p = policy();
        let mut h = HostState::default();
        p.trouble(
            &mut h,
            &host_trouble(0, 1, Some(Duration::from_secs(86_400))),
            0,
            0.5,
        );
        assert_eq!(h.paused_until, 10_000);
        let mut h = HostState::default();
        p.trouble(&mut h, &host_trouble(0, 1, None), 0, 0.999);
        assert!((1000..1250).contains(&h.paused_until), "{}", h.paused_until);
    }

    #[test]
    fn one_incident_counts_once() {
        let p = policy();
        let mut h = HostState::default();
        // Three requests dispatched in epoch 0 fail together: one failure.
        for _ in 0..3 {
            p.trouble(&mut h, &host_trouble(0, 1, None), 0, 0.0);
        }
        assert_eq!((h.failures, h.epoch), (1, 1));
        assert_eq!(
            h.paused_until, 1000,
            "the pause is not stretched by the incident"
        );
    }

    #[test]
    fn a_page_is_tried_at_most_retries_plus_one_times_and_page_trouble_pauses_no_host() {
        let p = policy();
        let mut h = HostState::default();
        let page = |tries| Trouble {
            kind: TroubleKind::Page,
            retry_after: None,
            epoch: 0,
            tries,
            message: "HTTP error 500".into(),
        };
        assert_eq!(
            p.trouble(&mut h, &page(1), 100, 0.0),
            Verdict::RetryAt(1100)
        );
        assert_eq!(h.paused_until, 0);
        let mut h = HostState::default();
        assert_eq!(
            p.trouble(&mut h, &page(2), 100, 0.0),
            Verdict::RetryAt(2100)
        );
        let mut h = HostState::default();
        assert_eq!(
            p.trouble(&mut h, &page(3), 100, 0.0),
            Verdict::Fail("HTTP error 500".into())
        );
    }

    #[test]
    fn delay_and_limit() {
        let p = policy();
        assert_eq!(p.host_delay(None), Duration::ZERO);
        assert_eq!(p.host_limit(Duration::ZERO), 2);
        assert_eq!(
            p.host_delay(Some(Duration::from_secs(99))),
            p.crawl_delay_max
        );
        assert_eq!(p.host_limit(Duration::from_millis(1)), 1);
    }
}
