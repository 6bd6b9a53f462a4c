//! robots.txt (RFC 9309): what an answer to a robots.txt request means, and what its rules allow.
//!
//! - A 2xx answer gives the rules; only the first [`ROBOTS_LIMIT`] bytes are read (§2.5 asks for
//!   at least 500 KiB), the rest is ignored, not an error.
//! - A 4xx answer, or a chain of more than [`ROBOTS_REDIRECTS`] redirects, means robots.txt is
//!   *unavailable*: everything is allowed (§2.3.1.2, §2.3.1.3).
//! - A 5xx answer, a timeout or a network error means it is *unreachable*: nothing of the host is
//!   fetched, robots.txt is asked again after a pause, and a host whose robots.txt stays
//!   unreachable is given up like any host that keeps failing (see `host`): its URLs end as
//!   errors (§2.3.1.4 lets a crawler stop waiting).
//! - Paths are compared with percent-encoded unreserved characters decoded, in the URL and in
//!   the rules alike (§2.2.2): `Disallow: /~joe/` blocks `/%7Ejoe/x`, and `Disallow: /%7ejoe/`
//!   blocks `/~joe/x`.

use std::borrow::Cow;
use std::time::Duration;

use texting_robots::Robot;
use url::{Position, Url};

/// The most of a robots.txt that is read.
pub(crate) const ROBOTS_LIMIT: u64 = 500 * 1024;

/// Redirects followed for a robots.txt; one more makes it unavailable.
pub(crate) const ROBOTS_REDIRECTS: u8 = 5;

/// What a robots.txt request got, as RFC 9309 sorts it.
#[derive(Debug, Clone)]
pub(crate) enum RobotsAnswer {
    /// The rules (a 2xx body, cut to [`ROBOTS_LIMIT`]).
    Rules(bytes::Bytes),
    /// No rules: everything is allowed.
    Unavailable,
    /// Nothing is allowed for now; ask again later.
    Unreachable {
        message: String,
        retry_after: Option<Duration>,
    },
}

impl RobotsAnswer {
    /// Sorts an answer: its status (`None` when no response came), whether the redirect chain was
    /// too long, and its body.
    pub fn sort(
        status: Option<u16>,
        too_many_redirects: bool,
        body: bytes::Bytes,
        retry_after: Option<Duration>,
        message: &str,
    ) -> Self {
        match status {
            _ if too_many_redirects => RobotsAnswer::Unavailable,
            Some(200..=299) => RobotsAnswer::Rules(body),
            Some(400..=499) => RobotsAnswer::Unavailable,
            Some(s) => RobotsAnswer::Unreachable {
                message: format!("robots.txt: HTTP {s}"),
                retry_after,
            },
            None => RobotsAnswer::Unreachable {
                message: format!("robots.txt: {message}"),
                retry_after: None,
            },
        }
    }
}

/// A host's robots.txt rules for our product token (its group, else `*`).
#[derive(Debug)]
pub(crate) struct Rules(Option<Robot>);

impl Rules {
    /// No rules: everything allowed.
    pub fn allow_all() -> Self {
        Rules(None)
    }

    /// The rules of `text` for `agent`. A robots.txt that does not parse says nothing.
    pub fn parse(agent: &str, text: &[u8]) -> Self {
        let cut = &text[..text.len().min(ROBOTS_LIMIT as usize)];
        let decoded = decode_unreserved(cut);
        Rules(Robot::new(agent, &decoded).ok())
    }

    /// Whether `url` may be fetched.
    pub fn allows(&self, url: &str) -> bool {
        let Some(robot) = &self.0 else {
            return true;
        };
        let path = match Url::parse(url) {
            Ok(u) => u[Position::BeforePath..].to_string(),
            Err(_) => url.to_string(),
        };
        robot.allowed(&String::from_utf8_lossy(&decode_unreserved(
            path.as_bytes(),
        )))
    }

    /// The `Crawl-delay` for our group, if any and sensible.
    pub fn crawl_delay(&self) -> Option<Duration> {
        let secs = self.0.as_ref()?.delay?;
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(f64::from(secs)))
    }

    /// The `Sitemap:` URLs it lists.
    #[allow(dead_code)] // read by the sitemaps step
    pub fn sitemaps(&self) -> &[String] {
        self.0.as_ref().map_or(&[], |r| r.sitemaps.as_slice())
    }
}

/// Percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) decoded, and the hex digits of
/// every other escape in upper case, so two spellings of one path compare equal (RFC 3986 §6.2.2).
fn decode_unreserved(text: &[u8]) -> Cow<'_, [u8]> {
    if !text.contains(&b'%') {
        return Cow::Borrowed(text);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' && i + 2 < text.len() {
            if let (Some(h), Some(l)) = (hex(text[i + 1]), hex(text[i + 2])) {
                let c = h << 4 | l;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c);
                } else {
                    out.push(b'%');
                    out.push(text[i + 1].to_ascii_uppercase());
                    out.push(text[i + 2].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_sort_as_rfc_9309_says() {
        let sort = |s, r| RobotsAnswer::sort(s, r, bytes::Bytes::new(), None, "refused");
        assert!(matches!(sort(Some(200), false), RobotsAnswer::Rules(_)));
        assert!(matches!(sort(Some(404), false), RobotsAnswer::Unavailable));
        assert!(matches!(sort(Some(403), false), RobotsAnswer::Unavailable));
        assert!(matches!(sort(Some(301), true), RobotsAnswer::Unavailable));
        assert!(matches!(
            sort(Some(500), false),
            RobotsAnswer::Unreachable { .. }
        ));
        assert!(matches!(
            sort(None, false),
            RobotsAnswer::Unreachable { .. }
        ));
    }

    #[test]
    fn unreserved_escapes_compare_decoded_both_ways() {
        let r = Rules::parse(
            "flags",
            b"User-agent: *\nDisallow: /~tilde/\nDisallow: /%7eb/\n",
        );
        assert!(!r.allows("http://h/%7Etilde/x"));
        assert!(!r.allows("http://h/~tilde/x"));
        assert!(!r.allows("http://h/~b/x"));
        assert!(!r.allows("http://h/%7Eb/x"));
        assert!(r.allows("http://h/tilde/x"));
        // A reserved character stays encoded: %2F is not a slash.
        let r = Rules::parse("flags", b"User-agent: *\nDisallow: /a/b\n");
        assert!(r.allows("http://h/a%2fb"));
        assert!(!r.allows("http://h/a/b"));
    }

    #[test]
    fn only_the_first_500_kib_is_read_and_crawl_delay_is_kept() {
        let mut text = b"User-agent: *\nCrawl-delay: 2\nDisallow: /a\n".to_vec();
        text.resize(ROBOTS_LIMIT as usize, b'#');
        text.extend_from_slice(b"\nDisallow: /b\n");
        let r = Rules::parse("flags", &text);
        assert!(!r.allows("http://h/a"));
        assert!(r.allows("http://h/b"), "past the limit");
        assert_eq!(r.crawl_delay(), Some(Duration::from_secs(2)));
        assert!(Rules::allow_all().allows("http://h/a"));
    }
}
