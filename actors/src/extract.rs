//! The **extractor** step of a crawl: a fetched page in, the links to follow (and the embedder's
//! own records) out.
//!
//! It runs on the writer's blocking threads, just before the page is stored, so parsing never
//! holds up the event loop that drives the connections. The default, [`HtmlLinks`], reads HTML
//! with `lol_html` (a streaming rewriter: no DOM is built) and returns the `href` of every `<a>`
//! and `<area>`, resolved against the page URL and its `<base href>`. An embedder plugs in its
//! own step with [`CrawlSpec::extractor`](crate::CrawlSpec::extractor).

use std::cell::RefCell;

use lol_html::{element, HtmlRewriter, Settings};

/// A fetched page, as the extractor sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Page<'a> {
    /// The URL that answered (redirects are links of their own in a crawl, so this is the job's).
    pub url: &'a str,
    /// The HTTP status (200: only complete pages are extracted).
    pub status: u16,
    /// The response headers, names in lower case.
    pub headers: &'a [(String, String)],
    /// The whole body, as sent.
    pub body: &'a [u8],
    /// How many links away from a seed the page is.
    pub depth: u32,
}

impl Page<'_> {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What an extractor found on a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extracted {
    /// Links to follow: absolute, or relative to the page URL. The frontier drops the fragment,
    /// keeps those in scope and never queues one twice.
    pub links: Vec<String>,
    /// The embedder's own records of this page (a JSON line, say); they reach subscribers in the
    /// page's [`JobReport::records`](crate::JobReport::records).
    pub records: Vec<String>,
}

impl Extracted {
    /// Links only.
    pub fn links(links: Vec<String>) -> Self {
        Extracted {
            links,
            records: Vec::new(),
        }
    }

    /// Links and records.
    pub fn new(links: Vec<String>, records: Vec<String>) -> Self {
        Extracted { links, records }
    }
}

/// Turns a fetched page into links to follow and records. Runs on the writer's blocking threads,
/// one page at a time per thread: it may take its time, but it must not hold shared locks long.
pub trait Extract: Send + Sync + 'static {
    /// Whether a page with this `Content-Type` is read into memory and given to
    /// [`Extract::extract`]; other bodies are stored without being read (default: HTML).
    fn wants(&self, content_type: Option<&str>) -> bool {
        is_html(content_type)
    }

    /// The links and records of `page`.
    fn extract(&self, page: &Page<'_>) -> Extracted;

    /// True when this step gives links and nothing else: pages whose links cannot lead anywhere
    /// (at the crawl's depth limit) are then not read for it at all (default false: every page
    /// it [`wants`](Extract::wants) is given to it, for its records).
    fn only_links(&self) -> bool {
        false
    }
}

/// True for `text/html` and `application/xhtml+xml` (and for no `Content-Type` at all, which
/// browsers sniff and usually render as HTML).
pub fn is_html(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// The built-in extractor: the links of an HTML page.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlLinks;

impl Extract for HtmlLinks {
    fn extract(&self, page: &Page<'_>) -> Extracted {
        Extracted::links(html_links(page.url, page.body))
    }

    fn only_links(&self) -> bool {
        true
    }
}

/// The `href` of every `<a>` and `<area>` of an HTML document, resolved against `url` and the
/// document's first `<base href>` (which applies to the whole document, wherever it appears).
/// Links that do not resolve to a URL are left out; so is everything `rel=nofollow` does not
/// stop (the frontier applies scope and robots.txt, not the extractor).
pub fn html_links(url: &str, body: &[u8]) -> Vec<String> {
    let Ok(page) = url::Url::parse(url) else {
        return Vec::new();
    };
    let hrefs = RefCell::new(Vec::new());
    let base = RefCell::new(None::<String>);
    {
        let settings = Settings::new()
            .append_element_content_handler(element!("a[href], area[href]", |el| {
                if let Some(href) = el.get_attribute("href") {
                    hrefs.borrow_mut().push(href);
                }
                Ok(())
            }))
            .append_element_content_handler(element!("base[href]", |el| {
                let mut base = base.borrow_mut();
                if base.is_none() {
                    *base = el.get_attribute("href");
                }
                Ok(())
            }));
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        // lol_html only fails on memory limits or ambiguity in exotic encodings: whatever was
        // found before that still counts.
        if rewriter.write(body).is_ok() {
            let _ = rewriter.end();
        }
    }
    let base = base
        .into_inner()
        .and_then(|b| page.join(b.trim()).ok())
        .unwrap_or(page);
    hrefs
        .into_inner()
        .iter()
        .filter_map(|h| base.join(h.trim()).ok())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_against_the_page_and_base_href() {
        let html = br#"<html><head><base href="/docs/"></head><body>
            <a href="a.html">a</a> <a href='../b.html#x'>b</a>
            <A HREF="https://other.example/c">c</A> <area href="d?q=1">
            <a>no href</a> <link href="style.css"> <a href=" e.html ">e</a>
            </body></html>"#;
        let links = html_links("http://h:8080/x/page.html", html);
        assert_eq!(
            links,
            [
                "http://h:8080/docs/a.html",
                "http://h:8080/b.html#x",
                "https://other.example/c",
                "http://h:8080/docs/d?q=1",
                "http://h:8080/docs/e.html",
            ]
        );
    }

    #[test]
    fn without_base_links_resolve_against_the_page() {
        let links = html_links("http://h/x/p.html", b"<a href=q.html>q</a><a href=/r>r</a>");
        assert_eq!(links, ["http://h/x/q.html", "http://h/r"]);
    }

    #[test]
    fn html_content_types() {
        assert!(is_html(Some("text/html; charset=utf-8")));
        assert!(is_html(Some("Application/XHTML+XML")));
        assert!(is_html(None));
        assert!(!is_html(Some("image/gif")));
        assert!(!is_html(Some("text/plain")));
    }
}
