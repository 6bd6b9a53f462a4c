//! What a crawl is: its seeds, its scope, how deep and how far it goes, how polite it is, and the
//! step that turns pages into links ([`CrawlSpec`]); and the URL rules every discovered link
//! passes (normalisation and scope).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use url::Url;

use crate::extract::{Extract, HtmlLinks};

/// A crawl: seeds, scope, depth, politeness, robots.txt, the give-up rules and the extractor.
/// Build it with [`CrawlSpec::builder`] and run it with [`Crawler::crawl`](crate::Crawler::crawl).
#[derive(Clone)]
pub struct CrawlSpec {
    pub(crate) seeds: Vec<Url>,
    /// Domains allowed with their subdomains, lower case.
    pub(crate) domains: Vec<String>,
    pub(crate) include: Vec<Regex>,
    pub(crate) exclude: Vec<Regex>,
    pub(crate) max_depth: Option<u32>,
    pub(crate) max_pages: Option<u64>,
    pub(crate) per_host: usize,
    pub(crate) delay: Duration,
    pub(crate) robots: bool,
    pub(crate) robots_timeout: Duration,
    pub(crate) crawl_delay_max: Duration,
    pub(crate) pause_first: Duration,
    pub(crate) pause_max: Duration,
    pub(crate) give_up_after: u32,
    pub(crate) extractor: Arc<dyn Extract>,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) index: Option<PathBuf>,
    pub(crate) resume: bool,
    pub(crate) same_host_assets: bool,
    pub(crate) sitemaps: bool,
    pub(crate) save: SaveRules,
    pub(crate) warc: Option<crate::archive::WarcOptions>,
}

/// Which fetched pages and files a crawl saves (all of them, by default). A page left out is
/// still read for its links.
#[derive(Debug, Clone, Default)]
pub(crate) struct SaveRules {
    accept: Vec<Regex>,
    reject: Vec<Regex>,
    /// MIME types (`image/gif`), or families (`image/*`).
    types: Vec<String>,
    /// Nothing at all.
    none: bool,
}

impl SaveRules {
    /// Whether a body fetched from `url` with this `Content-Type` is saved.
    pub fn keeps(&self, url: &str, content_type: Option<&str>) -> bool {
        if self.none {
            return false;
        }
        let essence = content_type
            .and_then(|c| c.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let type_ok = self.types.is_empty()
            || self.types.iter().any(|t| match t.strip_suffix("/*") {
                Some(family) => essence.split('/').next() == Some(family),
                None => *t == essence,
            });
        type_ok
            && (self.accept.is_empty() || self.accept.iter().any(|r| r.is_match(url)))
            && !self.reject.iter().any(|r| r.is_match(url))
    }
}

impl std::fmt::Debug for CrawlSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrawlSpec")
            .field(
                "seeds",
                &self.seeds.iter().map(Url::as_str).collect::<Vec<_>>(),
            )
            .field("max_depth", &self.max_depth)
            .field("max_pages", &self.max_pages)
            .field("per_host", &self.per_host)
            .field("delay", &self.delay)
            .field("robots", &self.robots)
            .field("pause_max", &self.pause_max)
            .field("give_up_after", &self.give_up_after)
            .field("journal", &self.journal)
            .field("warc", &self.warc)
            .finish_non_exhaustive()
    }
}

/// A crawl specification error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A crawl needs at least one seed.
    #[error("a crawl needs at least one seed URL")]
    NoSeeds,
    /// A seed is not an absolute http(s) URL.
    #[error("seed {0:?} is not an absolute http(s) URL")]
    BadSeed(String),
    /// An include or exclude pattern is not a valid regular expression.
    #[error("invalid pattern {0:?}: {1}")]
    BadPattern(String, String),
    /// An allowed domain is not a host name.
    #[error("invalid domain {0:?}")]
    BadDomain(String),
    /// The per-host limit is zero.
    #[error("the per-host limit must be at least 1")]
    ZeroPerHost,
}

/// Builds a [`CrawlSpec`]; [`CrawlSpecBuilder::build`] checks every value.
#[derive(Clone)]
pub struct CrawlSpecBuilder {
    seeds: Vec<String>,
    domains: Vec<String>,
    include: Vec<String>,
    exclude: Vec<String>,
    accept: Vec<String>,
    reject: Vec<String>,
    spec: CrawlSpec,
}

impl CrawlSpec {
    /// A builder with the defaults: scope is the seeds' hosts, no depth or page limit, 2 requests
    /// in flight per host, no delay, robots.txt obeyed (fetched with a 10 s timeout,
    /// `Crawl-delay` honoured up to 30 s), a failing host paused 1 s doubling up to 60 s and given
    /// up after 8 failures in a row, links from HTML pages ([`HtmlLinks`]), no journal.
    pub fn builder() -> CrawlSpecBuilder {
        CrawlSpecBuilder {
            seeds: Vec::new(),
            domains: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            accept: Vec::new(),
            reject: Vec::new(),
            spec: CrawlSpec::defaults(),
        }
    }

    /// A spec with every default and no seed.
    pub(crate) fn defaults() -> CrawlSpec {
        CrawlSpec {
            seeds: Vec::new(),
            domains: Vec::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            max_depth: None,
            max_pages: None,
            per_host: 2,
            delay: Duration::ZERO,
            robots: true,
            robots_timeout: Duration::from_secs(10),
            crawl_delay_max: Duration::from_secs(30),
            pause_first: Duration::from_secs(1),
            pause_max: Duration::from_secs(60),
            give_up_after: 8,
            extractor: Arc::new(HtmlLinks),
            journal: None,
            index: None,
            resume: false,
            same_host_assets: false,
            sitemaps: true,
            save: SaveRules::default(),
            warc: None,
        }
    }

    /// What makes two workers' specs one crawl: the seeds and every option that changes what is
    /// crawled or how its hosts are treated, as `(option, value)` pairs in a fixed order.
    pub(crate) fn identity(&self) -> Vec<(&'static str, String)> {
        let join = |v: Vec<String>| v.join(" ");
        vec![
            (
                "the start URLs",
                join(self.seeds.iter().map(Url::to_string).collect()),
            ),
            ("--allow-domain", join(self.domains.clone())),
            (
                "--include",
                join(self.include.iter().map(|r| r.to_string()).collect()),
            ),
            (
                "--exclude",
                join(self.exclude.iter().map(|r| r.to_string()).collect()),
            ),
            ("--max-depth", format!("{:?}", self.max_depth)),
            ("--per-host", self.per_host.to_string()),
            ("--delay", format!("{:?}", self.delay)),
            ("--ignore-robots", (!self.robots).to_string()),
            ("--pause", format!("{:?}", self.pause_first)),
            ("--pause-max", format!("{:?}", self.pause_max)),
            ("--give-up-after", self.give_up_after.to_string()),
            ("--same-host-assets", self.same_host_assets.to_string()),
            ("--no-sitemaps", (!self.sitemaps).to_string()),
        ]
    }

    /// The seeds, normalised.
    pub fn seeds(&self) -> impl Iterator<Item = &str> {
        self.seeds.iter().map(Url::as_str)
    }
}

impl CrawlSpecBuilder {
    /// Start the crawl at this URL (repeatable). Its host is in scope.
    pub fn seed(mut self, url: impl Into<String>) -> Self {
        self.seeds.push(url.into());
        self
    }

    /// Also allow this domain and its subdomains (repeatable).
    pub fn allow_domain(mut self, domain: impl Into<String>) -> Self {
        self.domains.push(domain.into());
        self
    }

    /// Visit only URLs matching one of these regular expressions (repeatable; seeds always).
    pub fn include(mut self, pattern: impl Into<String>) -> Self {
        self.include.push(pattern.into());
        self
    }

    /// Never visit URLs matching this regular expression (repeatable; seeds always).
    pub fn exclude(mut self, pattern: impl Into<String>) -> Self {
        self.exclude.push(pattern.into());
        self
    }

    /// Follow links at most this many steps from a seed (seeds are depth 0).
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.spec.max_depth = Some(depth);
        self
    }

    /// Visit at most this many pages (the first ones handed out, breadth first).
    pub fn max_pages(mut self, pages: u64) -> Self {
        self.spec.max_pages = Some(pages);
        self
    }

    /// At most this many requests in flight to one host (default 2).
    pub fn per_host(mut self, n: usize) -> Self {
        self.spec.per_host = n;
        self
    }

    /// Pause between one request's end and the next one's start, per host (default none). With a
    /// delay, a host gets one request at a time, as Heritrix and StormCrawler do.
    pub fn delay(mut self, d: Duration) -> Self {
        self.spec.delay = d;
        self
    }

    /// Obey robots.txt (default true).
    pub fn robots(mut self, obey: bool) -> Self {
        self.spec.robots = obey;
        self
    }

    /// Deadline for fetching one robots.txt (default 10 s).
    pub fn robots_timeout(mut self, d: Duration) -> Self {
        self.spec.robots_timeout = d;
        self
    }

    /// The longest `Crawl-delay` honoured (default 30 s); a longer one is cut to this.
    pub fn crawl_delay_max(mut self, d: Duration) -> Self {
        self.spec.crawl_delay_max = d;
        self
    }

    /// The first pause of a failing host (refused connections, timeouts, 429, 503, an
    /// unreachable robots.txt); it doubles with each failure in a row (default 1 s).
    pub fn pause_first(mut self, d: Duration) -> Self {
        self.spec.pause_first = d;
        self
    }

    /// The longest pause of a failing host, `Retry-After` included (default 60 s).
    pub fn pause_max(mut self, d: Duration) -> Self {
        self.spec.pause_max = d;
        self
    }

    /// Give a host up after this many failures in a row: its URLs left end as errors without a
    /// request (default 8; at least 1).
    pub fn give_up_after(mut self, n: u32) -> Self {
        self.spec.give_up_after = n.max(1);
        self
    }

    /// Turn pages into links (and records) with this step instead of [`HtmlLinks`].
    pub fn extractor(mut self, e: impl Extract) -> Self {
        self.spec.extractor = Arc::new(e);
        self
    }

    /// Keep the crawl's state in this file as pages complete (what was seen, what is left), so a
    /// crawl stopped any way at all, `kill -9` included, can go on with [`resume`](Self::resume).
    pub fn journal(mut self, path: impl AsRef<Path>) -> Self {
        self.spec.journal = Some(path.as_ref().to_path_buf());
        self
    }

    /// Record every fetched URL in this CDXJ file as the crawl goes (status, content type,
    /// length, SHA-1, and the file it is stored in), and who owns which file: a resumed crawl, or
    /// one that skips what is stored, reads it first so no file ever replaces another URL's.
    pub fn index(mut self, path: impl AsRef<Path>) -> Self {
        self.spec.index = Some(path.as_ref().to_path_buf());
        self
    }

    /// Fetch a page's requisites only from the page's own host (default: from any host, as wget's
    /// `-p` does). Requisites come from an extractor that reports them
    /// ([`HtmlLinks::requisites`](crate::HtmlLinks::requisites)).
    pub fn same_host_assets(mut self, yes: bool) -> Self {
        self.spec.same_host_assets = yes;
        self
    }

    /// Read the sitemaps of the start hosts (`/sitemap.xml`) and those robots.txt names
    /// (default true): their URLs are queued like a start URL's links (depth 1), through scope,
    /// robots.txt and the seen-set.
    pub fn sitemaps(mut self, yes: bool) -> Self {
        self.spec.sitemaps = yes;
        self
    }

    /// Save only what a URL of matches (repeatable; default everything). Pages left out are
    /// still read for their links.
    pub fn accept(mut self, pattern: impl Into<String>) -> Self {
        self.accept.push(pattern.into());
        self
    }

    /// Never save what a URL of matches (repeatable).
    pub fn reject(mut self, pattern: impl Into<String>) -> Self {
        self.reject.push(pattern.into());
        self
    }

    /// Save only bodies of this MIME type (`image/gif`) or family (`image/*`) (repeatable).
    pub fn accept_type(mut self, mime: impl Into<String>) -> Self {
        self.spec
            .save
            .types
            .push(mime.into().trim().to_ascii_lowercase());
        self
    }

    /// Save nothing: pages are fetched and read for their links only (a crawl that records a web
    /// archive, say).
    pub fn no_files(mut self, yes: bool) -> Self {
        self.spec.save.none = yes;
        self
    }

    /// Go on from the journal instead of starting afresh (a missing journal starts afresh).
    pub fn resume(mut self, yes: bool) -> Self {
        self.spec.resume = yes;
        self
    }

    /// Record every exchange of the crawl (pages, assets, robots.txt, redirects, 404s, error
    /// responses) in a web archive: WARC/1.1 `request` and `response` records in `.warc.gz` files
    /// named, sized and indexed as `opts` says (see [`crate::archive`]), whether or not the sink
    /// stores anything. The files' `warcinfo` records name flags and the crawl's options. A
    /// resumed crawl starts a new file; in a shared crawl each worker writes its own files, under
    /// the prefix `{prefix}-{worker}` ([`SharedCrawl::consumer_name`](crate::SharedCrawl)).
    pub fn warc(mut self, opts: crate::archive::WarcOptions) -> Self {
        self.spec.warc = Some(opts);
        self
    }

    /// Checks the values and returns the spec.
    pub fn build(self) -> Result<CrawlSpec, SpecError> {
        let mut spec = self.spec;
        if self.seeds.is_empty() {
            return Err(SpecError::NoSeeds);
        }
        if spec.per_host == 0 {
            return Err(SpecError::ZeroPerHost);
        }
        for raw in &self.seeds {
            let url = normalise(raw.trim(), None).ok_or_else(|| SpecError::BadSeed(raw.clone()))?;
            if !spec.seeds.contains(&url) {
                spec.seeds.push(url);
            }
        }
        for d in self.domains {
            let clean = d.trim().trim_start_matches('.').to_ascii_lowercase();
            match Url::parse(&format!("http://{clean}/")) {
                Ok(u) if u.host_str() == Some(clean.as_str()) => spec.domains.push(clean),
                _ => return Err(SpecError::BadDomain(d)),
            }
        }
        let compile =
            |p: &String| Regex::new(p).map_err(|e| SpecError::BadPattern(p.clone(), e.to_string()));
        spec.include = self.include.iter().map(compile).collect::<Result<_, _>>()?;
        spec.exclude = self.exclude.iter().map(compile).collect::<Result<_, _>>()?;
        spec.save.accept = self.accept.iter().map(compile).collect::<Result<_, _>>()?;
        spec.save.reject = self.reject.iter().map(compile).collect::<Result<_, _>>()?;
        Ok(spec)
    }
}

/// A link as the crawl keeps it: resolved against `base`, fragment dropped; the `url` crate has
/// already lower-cased the scheme and host, dropped a default port and resolved dot segments.
/// Nothing else is rewritten (no query reordering, no trailing-slash games): two URLs that
/// differ there may be different pages. `None` for anything that is not http(s) with a host.
pub fn normalise(link: &str, base: Option<&Url>) -> Option<Url> {
    let mut url = match base {
        Some(b) => b.join(link).ok()?,
        None => Url::parse(link).ok()?,
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_is_conservative() {
        let base = Url::parse("http://Example.COM:80/a/b.html").unwrap();
        let n = |l| normalise(l, Some(&base)).map(String::from);
        assert_eq!(
            n("c.html#frag").as_deref(),
            Some("http://example.com/a/c.html")
        );
        assert_eq!(
            n("../d?b=2&a=1").as_deref(),
            Some("http://example.com/d?b=2&a=1")
        );
        assert_eq!(n("HTTPS://X.org:443/").as_deref(), Some("https://x.org/"));
        assert_eq!(
            n("http://x.org:8080").as_deref(),
            Some("http://x.org:8080/")
        );
        assert_eq!(n("mailto:a@b.c"), None);
        assert_eq!(n("javascript:void(0)"), None);
        assert_eq!(n("ftp://x.org/f"), None);
        assert_eq!(n("#top").as_deref(), Some("http://example.com/a/b.html"));
    }

    #[test]
    fn build_checks_every_value() {
        assert!(CrawlSpec::builder().build().is_err());
        assert!(CrawlSpec::builder().seed("ftp://x/").build().is_err());
        assert!(CrawlSpec::builder()
            .seed("http://x/")
            .exclude("(")
            .build()
            .is_err());
        assert!(CrawlSpec::builder()
            .seed("http://x/")
            .allow_domain("a b")
            .build()
            .is_err());
        let spec = CrawlSpec::builder()
            .seed("http://x/")
            .seed("http://x/")
            .allow_domain(".Example.org")
            .build()
            .unwrap();
        assert_eq!(spec.seeds.len(), 1);
        assert_eq!(spec.domains, ["example.org"]);
    }
}
