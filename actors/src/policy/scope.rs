//! Which links a page gives the crawl: scope (the seeds' hosts, allowed domains, include and
//! exclude patterns, hosts a start URL redirected to), depth, and redirect chains.

use regex::Regex;
use url::Url;

use super::Policy;
use crate::job::Role;
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

    /// True when an exclude pattern rules `url` out.
    pub fn excluded(&self, url: &Url) -> bool {
        self.exclude.iter().any(|r| r.is_match(url.as_str()))
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
    /// What it is fetched for.
    pub role: Role,
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

    /// What a finished page gives the crawl: the links of a page at `depth` (reached through
    /// `hops` redirects), resolved against the page, fragment dropped, in scope, within the
    /// depth limit; and its requisites. A redirect's target keeps the page's depth and role and
    /// counts one hop more; a start URL that redirects to another host brings that host into
    /// scope first (it is the site the user meant: example.com → www.example.com). A requisite
    /// gives no links, only requisites of its own (a stylesheet's).
    pub fn admit(&mut self, page: &Finished<'_>) -> Links {
        let mut out = Links::default();
        let Ok(base) = Url::parse(page.url) else {
            return out;
        };
        let (depth, hops) = if page.redirect {
            match self.redirect_hop(page.hops) {
                Ok(h) => (page.depth, h),
                Err(_) => return out,
            }
        } else {
            (page.depth + 1, 0)
        };
        let follow = page.redirect || page.role == Role::Page;
        let role = if page.redirect { page.role } else { Role::Page };
        if follow && (role != Role::Page || self.max_depth.is_none_or(|max| depth <= max)) {
            for link in page.links {
                let Some(url) = normalise(link, Some(&base)) else {
                    continue;
                };
                if page.redirect && page.depth == 0 && page.role == Role::Page {
                    if let Some(host) = url.host_str() {
                        if self.scope.allow_host(host) {
                            out.widened.push(host.to_string());
                        }
                    }
                }
                let allowed = match role {
                    Role::Page => self.scope.allows(&url),
                    _ => self.asset_allowed(&base, &url),
                };
                if allowed {
                    out.admitted.push(Admitted {
                        url,
                        depth,
                        hops,
                        role,
                    });
                }
            }
        }
        // Requisites are fetched whatever the depth: a page at the limit still needs them shown.
        if !page.redirect {
            for asset in page.assets {
                let Some(url) = normalise(asset, Some(&base)) else {
                    continue;
                };
                if self.asset_allowed(&base, &url) {
                    out.admitted.push(Admitted {
                        url,
                        depth: page.depth + 1,
                        hops: 0,
                        role: Role::Asset,
                    });
                }
            }
        }
        out
    }

    /// A requisite of `page` is fetched from any host (as wget's `-p` does), unless the crawl
    /// keeps requisites on their page's host; never one an exclude pattern rules out.
    fn asset_allowed(&self, page: &Url, url: &Url) -> bool {
        (!self.same_host_assets || url.origin() == page.origin()) && !self.scope.excluded(url)
    }

    /// What a sitemap at `sitemap` lists: pages (depth 1, as a start URL's links), or (an index)
    /// more sitemaps, each in scope.
    pub fn admit_sitemap(&self, sitemap: &str, locs: &[String], index: bool) -> Vec<Admitted> {
        let Ok(base) = Url::parse(sitemap) else {
            return Vec::new();
        };
        let (role, depth) = if index {
            (Role::Sitemap, 0)
        } else {
            (Role::Page, 1)
        };
        if role == Role::Page && self.max_depth.is_some_and(|max| depth > max) {
            return Vec::new();
        }
        locs.iter()
            .filter_map(|l| normalise(l.trim(), Some(&base)))
            .filter(|u| self.scope.allows(u))
            .map(|url| Admitted {
                url,
                depth,
                hops: 0,
                role,
            })
            .collect()
    }
}

/// A page with its final outcome, as [`Policy::admit`] reads it.
pub(crate) struct Finished<'a> {
    pub url: &'a str,
    pub role: Role,
    pub depth: u32,
    pub hops: u32,
    pub redirect: bool,
    pub links: &'a [String],
    pub assets: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn page<'a>(
        url: &'a str,
        depth: u32,
        hops: u32,
        redirect: bool,
        links: &'a [String],
    ) -> Finished<'a> {
        Finished {
            url,
            role: Role::Page,
            depth,
            hops,
            redirect,
            links,
            assets: &[],
        }
    }

    #[test]
    fn requisites_come_from_any_host_whatever_the_depth_unless_kept_home() {
        let mut p = policy(
            CrawlSpec::builder()
                .seed("http://a.test/")
                .max_depth(1)
                .exclude("/ads/"),
        );
        let assets = [
            "i.png".to_string(),
            "http://cdn.test/s.css".into(),
            "/ads/x.gif".into(),
        ];
        let done = Finished {
            assets: &assets,
            ..page("http://a.test/d/p.html", 1, 0, false, &[])
        };
        let got: Vec<(String, Role)> = p
            .admit(&done)
            .admitted
            .into_iter()
            .map(|a| (a.url.to_string(), a.role))
            .collect();
        assert_eq!(
            got,
            [
                ("http://a.test/d/i.png".to_string(), Role::Asset),
                ("http://cdn.test/s.css".to_string(), Role::Asset)
            ]
        );
        p.same_host_assets = true;
        assert_eq!(p.admit(&done).admitted.len(), 1);
        // A stylesheet gives requisites, never links.
        let css = Finished {
            role: Role::Asset,
            links: &assets,
            assets: &assets[..1],
            ..page("http://a.test/s.css", 2, 0, false, &[])
        };
        let got = p.admit(&css).admitted;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].role, Role::Asset);
    }

    #[test]
    fn sitemaps_list_pages_at_depth_one_in_scope_and_more_sitemaps() {
        let p = policy(CrawlSpec::builder().seed("http://a.test/"));
        let locs = [
            "http://a.test/only".to_string(),
            "http://b.test/x".into(),
            " /rel ".into(),
        ];
        let got = p.admit_sitemap("http://a.test/sitemap.xml", &locs, false);
        let urls: Vec<(&str, u32, Role)> = got
            .iter()
            .map(|a| (a.url.as_str(), a.depth, a.role))
            .collect();
        assert_eq!(
            urls,
            [
                ("http://a.test/only", 1, Role::Page),
                ("http://a.test/rel", 1, Role::Page)
            ]
        );
        let got = p.admit_sitemap("http://a.test/index.xml", &locs[..1], true);
        assert_eq!(got[0].role, Role::Sitemap);
    }

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
        let got = p.admit(&page("http://a.test/d/p.html", 1, 0, false, &links));
        let urls: Vec<&str> = got.admitted.iter().map(|a| a.url.as_str()).collect();
        assert_eq!(urls, ["http://a.test/d/x.html"]);
        assert_eq!((got.admitted[0].depth, got.admitted[0].hops), (2, 0));
        // A page at the depth limit gives nothing.
        assert!(p
            .admit(&page("http://a.test/", 2, 0, false, &links))
            .admitted
            .is_empty());
        assert!(!p.wants_links(2) && p.wants_links(1));
        // A redirect keeps the depth and counts a hop; the fourth hop in a row is cut.
        let target = ["/next".to_string()];
        let r = p.admit(&page("http://a.test/r", 2, 2, true, &target));
        assert_eq!((r.admitted[0].depth, r.admitted[0].hops), (2, 3));
        assert!(p
            .admit(&page("http://a.test/r", 2, 3, true, &target))
            .admitted
            .is_empty());
        assert!(p.redirect_hop(3).is_err() && p.redirect_hop(2) == Ok(3));
    }

    #[test]
    fn a_start_url_redirect_widens_the_scope_once() {
        let mut p = policy(CrawlSpec::builder().seed("http://example.test/"));
        let target = ["http://www.example.test/".to_string()];
        let got = p.admit(&page("http://example.test/", 0, 0, true, &target));
        assert_eq!(got.widened, ["www.example.test"]);
        assert_eq!(got.admitted.len(), 1);
        // Not from deeper pages.
        let off = ["http://other.test/".to_string()];
        assert!(p
            .admit(&page("http://example.test/a", 1, 0, true, &off))
            .admitted
            .is_empty());
        assert!(p
            .admit(&page("http://example.test/", 0, 0, true, &target))
            .widened
            .is_empty());
    }
}
