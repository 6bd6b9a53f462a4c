//! Which links a page gives the crawl: scope (the seeds' hosts, allowed domains, include and
//! exclude patterns, hosts a start URL redirected to), depth, and redirect chains.

use regex::Regex;
use url::Url;

use super::Policy;
use crate::spec::{normalise, CrawlSpec};

/// Which URLs a crawl may visit, besides depth.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    /// Hosts allowed exactly (the seeds' hosts, and the hosts start URLs redirected to).
    hosts: Vec<String>,
    /// Domains allowed with their subdomains.
    domains: Vec<String>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl Scope {
    pub fn new(spec: &CrawlSpec) -> Self {
        let mut scope = Scope {
            hosts: Vec::new(),
            domains: spec.domains.clone(),
            include: spec.include.clone(),
            exclude: spec.exclude.clone(),
        };
        for seed in &spec.seeds {
            if let Some(host) = seed.host_str() {
                scope.allow_host(host);
            }
        }
        scope
    }

    /// Adds `host` to the hosts allowed exactly. False when it was already in scope that way.
    pub fn allow_host(&mut self, host: &str) -> bool {
        if self.hosts.iter().any(|h| h == host) {
            return false;
        }
        self.hosts.push(host.to_string());
        true
    }

    /// True when `url` (normalised) may be visited.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_ok = self.hosts.iter().any(|h| h == host)
            || self.domains.iter().any(|d| {
                host == d
                    || (host.len() > d.len()
                        && host.ends_with(d.as_str())
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.')
            });
        host_ok
            && (self.include.is_empty() || self.include.iter().any(|r| r.is_match(url.as_str())))
            && !self.exclude.iter().any(|r| r.is_match(url.as_str()))
    }
}

/// A link the crawl queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admitted {
    pub url: Url,
    pub depth: u32,
    /// Redirects in a row that led here.
    pub hops: u32,
}

/// What a finished page gives the crawl.
#[derive(Debug, Default)]
pub(crate) struct Links {
    pub admitted: Vec<Admitted>,
    /// Hosts brought into scope (a start URL redirected there).
    pub widened: Vec<String>,
}

impl Policy {
    /// Whether a redirect from a page reached through `hops` redirects may be followed: `Ok` with
    /// the target's hop count, or the reason the chain ends here (as wget and Scrapy stop one).
    pub fn redirect_hop(&self, hops: u32) -> Result<u32, String> {
        if hops >= self.max_hops {
            Err(format!(
                "too many redirects in a row (limit {}, --max-redirects)",
                self.max_hops
            ))
        } else {
            Ok(hops + 1)
        }
    }

    /// The links of a page at `depth` (reached through `hops` redirects) that the crawl queues:
    /// resolved against the page, fragment dropped, in scope, within the depth limit. A
    /// redirect's target keeps the page's depth and counts one hop more; a start URL that
    /// redirects to another host brings that host into scope first (it is the site the user
    /// meant: example.com → www.example.com).
    pub fn admit(
        &mut self,
        page: &str,
        depth: u32,
        hops: u32,
        redirect: bool,
        links: &[String],
    ) -> Links {
        let mut out = Links::default();
        let Ok(base) = Url::parse(page) else {
            return out;
        };
        let (depth, hops) = if redirect {
            match self.redirect_hop(hops) {
                Ok(h) => (depth, h),
                Err(_) => return out,
            }
        } else {
            (depth + 1, 0)
        };
        if self.max_depth.is_some_and(|max| depth > max) {
            return out;
        }
        for link in links {
            let Some(url) = normalise(link, Some(&base)) else {
                continue;
            };
            if redirect && depth == 0 {
                if let Some(host) = url.host_str() {
                    if self.scope.allow_host(host) {
                        out.widened.push(host.to_string());
                    }
                }
            }
            if self.scope.allows(&url) {
                out.admitted.push(Admitted { url, depth, hops });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn policy(spec: crate::CrawlSpecBuilder) -> Policy {
        Policy::crawl(
            &spec.build().unwrap(),
            &Config::builder().max_redirects(3).build().unwrap(),
        )
    }

    #[test]
    fn scope_hosts_domains_and_patterns() {
        let p = policy(
            CrawlSpec::builder()
                .seed("http://site.test/")
                .allow_domain("Example.org")
                .exclude("/private/"),
        );
        let ok = |u: &str| p.scope.allows(&Url::parse(u).unwrap());
        assert!(ok("http://site.test/x"));
        assert!(!ok("http://www.site.test/x"), "seed hosts are exact");
        assert!(ok("https://example.org/"));
        assert!(ok("http://a.b.example.org/"));
        assert!(!ok("http://badexample.org/"));
        assert!(!ok("http://site.test/private/1"));
    }

    #[test]
    fn links_depth_and_redirect_chains() {
        let mut p = policy(CrawlSpec::builder().seed("http://a.test/").max_depth(2));
        let links = [
            "x.html#top".to_string(),
            "http://b.test/".into(),
            "mailto:x@y".into(),
        ];
        let got = p.admit("http://a.test/d/p.html", 1, 0, false, &links);
        let urls: Vec<&str> = got.admitted.iter().map(|a| a.url.as_str()).collect();
        assert_eq!(urls, ["http://a.test/d/x.html"]);
        assert_eq!((got.admitted[0].depth, got.admitted[0].hops), (2, 0));
        // A page at the depth limit gives nothing.
        assert!(p
            .admit("http://a.test/", 2, 0, false, &links)
            .admitted
            .is_empty());
        assert!(!p.wants_links(2) && p.wants_links(1));
        // A redirect keeps the depth and counts a hop; the fourth hop in a row is cut.
        let target = ["/next".to_string()];
        let r = p.admit("http://a.test/r", 2, 2, true, &target);
        assert_eq!((r.admitted[0].depth, r.admitted[0].hops), (2, 3));
        assert!(p
            .admit("http://a.test/r", 2, 3, true, &target)
            .admitted
            .is_empty());
        assert!(p.redirect_hop(3).is_err() && p.redirect_hop(2) == Ok(3));
    }

    #[test]
    fn a_start_url_redirect_widens_the_scope_once() {
        let mut p = policy(CrawlSpec::builder().seed("http://example.test/"));
        let target = ["http://www.example.test/".to_string()];
        let got = p.admit("http://example.test/", 0, 0, true, &target);
        assert_eq!(got.widened, ["www.example.test"]);
        assert_eq!(got.admitted.len(), 1);
        // Not from deeper pages.
        let off = ["http://other.test/".to_string()];
        assert!(p
            .admit("http://example.test/a", 1, 0, true, &off)
            .admitted
            .is_empty());
        assert!(p
            .admit("http://example.test/", 0, 0, true, &target)
            .widened
            .is_empty());
    }
}
