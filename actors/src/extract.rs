//! The **extractor** step of a crawl: a fetched page in, the links to follow (and the embedder's
//! own records) out.
//!
//! It runs on the writer's blocking threads, just before the page is stored, so parsing never
//! holds up the event loop that drives the connections. An embedder plugs in its own step with
//! [`CrawlSpec::extractor`](crate::CrawlSpec::extractor); the built-in one, [`HtmlLinks`] (and
//! `LinkExtractor`, its configured form), reads a page as a browser does, in one pass:
//!
//! 1. `coding`: the body as sent is decoded from its `Content-Encoding` (gzip, deflate, br,
//!    stacked), within a bound, since a server may compress although it was asked not to.
//! 2. `charset`: the document's encoding: BOM, then the `Content-Type` charset, then the HTML
//!    Standard's prescan of the first 1024 bytes, else UTF-8 if the bytes are UTF-8, else
//!    windows-1252. Pages in an encoding that is not ASCII-compatible (UTF-16) are transcoded
//!    to UTF-8 first, as the HTML parser (`lol_html`, a streaming tokenizer: no DOM is built)
//!    needs ASCII-compatible bytes.
//! 3. `html`: `<a href>`, `<area href>`, the first `<base href>`, `<meta name=robots>`, and,
//!    when asked, the page requisites (images, stylesheets, scripts, media, `url()` in CSS), with
//!    attribute values decoded as the HTML Standard decodes them (character references).
//! 4. `resolve`: each URL is parsed against the document's base URL, with the query encoded in
//!    the document's encoding as the WHATWG URL Standard says; only http(s) URLs are kept.
//!
//! `css` reads `url()` and `@import` in stylesheets, `robots` the `nofollow`/`noindex`
//! directives of `<meta name=robots>` and `X-Robots-Tag`.

mod charset;
mod coding;
mod css;
mod html;
mod resolve;
mod robots;
mod srcset;

use url::Url;

use self::html::{Asset, Found, Want};
use self::resolve::{Resolver, Urls};
use self::robots::Robots;

/// A fetched page, as the extractor sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Page<'a> {
    /// The URL that answered (redirects are links of their own in a crawl, so this is the job's).
    pub url: &'a str,
    /// The HTTP status (200: only complete pages are extracted).
    pub status: u16,
    /// The response headers, names in lower case, one entry per header line (a header sent
    /// twice is two entries).
    pub headers: &'a [(String, String)],
    /// The whole body, as sent (still compressed if the server compressed it).
    pub body: &'a [u8],
    /// How many links away from a seed the page is.
    pub depth: u32,
}

impl<'a> Page<'a> {
    /// A page with status 200 at depth 0 (for extractors run outside a crawl, and tests).
    pub fn new(url: &'a str, headers: &'a [(String, String)], body: &'a [u8]) -> Self {
        Page {
            url,
            status: 200,
            headers,
            body,
            depth: 0,
        }
    }

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
    /// The page's requisites (wget's `-p`): what a browser loads to show it (images and every
    /// `srcset` candidate, stylesheets, icons, scripts, media, `url()` and `@import` in CSS).
    /// Absolute http(s) URLs; empty unless asked for ([`HtmlLinks::requisites`]).
    pub assets: Vec<String>,
    /// The page asks robots not to follow its links (`nofollow` or `none` in
    /// `<meta name="robots">`, `<meta name="flags">` or an `X-Robots-Tag` header for flags).
    /// Reported whether or not the extractor obeys it ([`HtmlLinks::obey_nofollow`]).
    pub nofollow: bool,
    /// The page asks robots not to index it (`noindex` or `none`, same places). Reported only:
    /// what a crawl does with it (not store the page, say) is its own choice.
    pub noindex: bool,
}

impl Extracted {
    /// Links only.
    pub fn links(links: Vec<String>) -> Self {
        Extracted {
            links,
            ..Extracted::default()
        }
    }

    /// Links and records.
    pub fn new(links: Vec<String>, records: Vec<String>) -> Self {
        Extracted {
            links,
            records,
            ..Extracted::default()
        }
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
    let essence = essence(ct);
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// True for `text/css`.
pub fn is_css(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| essence(ct).eq_ignore_ascii_case("text/css"))
}

/// The MIME type of a `Content-Type` value, without its parameters.
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The built-in extractor with its default settings: the links of HTML pages, all of them
/// (`rel=nofollow` included, and reported in [`Extracted::nofollow`]), no requisites. Its
/// methods give it other settings:
///
/// ```
/// use flags_actors::{Extract, HtmlLinks, Page};
///
/// let polite = HtmlLinks.obey_nofollow(true).requisites(true);
/// let headers = [("content-type".to_string(), "text/html".to_string())];
/// let body = br#"<a href="/a">a</a> <a rel="nofollow" href="/b">b</a> <img src="i.png">"#;
/// let found = polite.extract(&Page::new("http://site.test/", &headers, body));
/// assert_eq!(found.links, ["http://site.test/a"]);
/// assert_eq!(found.assets, ["http://site.test/i.png"]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlLinks;

impl HtmlLinks {
    /// Leave out the links the page asks robots not to follow: an `<a>`/`<area>` whose `rel` has
    /// the token `nofollow`, and every link of a page whose `<meta name="robots">` (or
    /// `name="flags"`) or `X-Robots-Tag` says `nofollow` or `none`. A crawl that obeys
    /// robots.txt should obey this too. Requisites are not links: they are kept.
    pub const fn obey_nofollow(self, obey: bool) -> LinkExtractor {
        LinkExtractor::new().obey_nofollow(obey)
    }

    /// Also report the page requisites in [`Extracted::assets`], and read stylesheets
    /// (`text/css`) for theirs ([`Extract::wants`] then says yes to CSS as well).
    pub const fn requisites(self, requisites: bool) -> LinkExtractor {
        LinkExtractor::new().requisites(requisites)
    }

    /// At most this many bytes of a compressed body are decoded (default 64 MiB); what lies past
    /// them is not read, as a page cut by the body limit. It bounds the memory a decompression
    /// bomb can take on a writer thread (a few kilobytes of gzip inflate to gigabytes of zeros)
    /// while staying far above any real page: the largest HTML documents on the web, such as
    /// the single-page HTML Standard, are under 20 MiB. A fixed bound rather than a multiple of
    /// the body limit, since that limit (100 MiB by default) times any ratio is more memory than
    /// a page deserves.
    pub const fn max_decoded(self, bytes: usize) -> LinkExtractor {
        LinkExtractor::new().max_decoded(bytes)
    }
}

impl Extract for HtmlLinks {
    fn extract(&self, page: &Page<'_>) -> Extracted {
        LinkExtractor::new().extract(page)
    }

    fn only_links(&self) -> bool {
        true
    }
}

/// The built-in extractor, configured: which links a crawl follows and what else it wants of a
/// page. `LinkExtractor::new()` is [`HtmlLinks`]; its setters are those of `HtmlLinks`, and
/// chain: `HtmlLinks.obey_nofollow(true).requisites(true)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkExtractor {
    obey_nofollow: bool,
    requisites: bool,
    max_decoded: usize,
}

impl Default for LinkExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl LinkExtractor {
    /// The decoded size of a compressed body past which decoding stops (64 MiB): see
    /// [`HtmlLinks::max_decoded`].
    pub const MAX_DECODED: usize = 64 << 20;

    /// Every link followed (nofollow reported, not obeyed), no requisites, compressed bodies
    /// decoded up to [`LinkExtractor::MAX_DECODED`].
    pub const fn new() -> Self {
        LinkExtractor {
            obey_nofollow: false,
            requisites: false,
            max_decoded: Self::MAX_DECODED,
        }
    }

    /// See [`HtmlLinks::obey_nofollow`].
    pub const fn obey_nofollow(mut self, obey: bool) -> Self {
        self.obey_nofollow = obey;
        self
    }

    /// See [`HtmlLinks::requisites`].
    pub const fn requisites(mut self, requisites: bool) -> Self {
        self.requisites = requisites;
        self
    }

    /// See [`HtmlLinks::max_decoded`].
    pub const fn max_decoded(mut self, bytes: usize) -> Self {
        self.max_decoded = bytes;
        self
    }
}

impl Extract for LinkExtractor {
    fn wants(&self, content_type: Option<&str>) -> bool {
        is_html(content_type) || (self.requisites && is_css(content_type))
    }

    /// A page at the depth limit still has requisites to fetch; without them, only links.
    fn only_links(&self) -> bool {
        !self.requisites
    }

    fn extract(&self, page: &Page<'_>) -> Extracted {
        let header = Robots::from_headers(page.headers);
        let mut out = Extracted {
            nofollow: header.nofollow,
            noindex: header.noindex,
            ..Extracted::default()
        };
        // A coding we cannot undo leaves bytes no parser should read: no links, not garbage.
        let Some(body) = coding::decode(page.body, page.headers, self.max_decoded) else {
            return out;
        };
        let content_type = page.header("content-type");
        let Ok(document) = Url::parse(page.url) else {
            return out;
        };
        if is_css(content_type) {
            if self.requisites {
                let encoding = css::sheet_encoding(&body, content_type.and_then(charset::param));
                out.assets = css_urls(&document, &body, encoding);
            }
            return out;
        }
        let want = Want {
            skip_nofollow_links: self.obey_nofollow,
            requisites: self.requisites,
        };
        let doc = read_html(document, &body, content_type, want);
        out.nofollow |= doc.found.robots.nofollow;
        out.noindex |= doc.found.robots.noindex;
        let resolver = doc.resolver();
        if !(self.obey_nofollow && out.nofollow) {
            out.links = resolver.all(doc.found.links.iter().map(String::as_str));
        }
        if self.requisites {
            out.assets = assets(&resolver, &doc.found.assets);
        }
        out
    }
}

/// The `href` of every `<a>` and `<area>` of an HTML document, as a browser reads them (see the
/// module doc): character references decoded, resolved against `url` and the document's first
/// `<base href>` (which applies to the whole document, wherever it appears), the query encoded
/// in the document's encoding. `body` is the document as it was sent; without headers, its
/// encoding comes from a BOM, a `<meta charset>` or its bytes. Links that do not resolve to a
/// URL, or resolve to one that is not http(s) (`javascript:`, `mailto:`, ...), are left out;
/// `rel=nofollow` is not looked at (see [`HtmlLinks::obey_nofollow`]).
pub fn html_links(url: &str, body: &[u8]) -> Vec<String> {
    let Ok(document) = Url::parse(url) else {
        return Vec::new();
    };
    let doc = read_html(document, body, None, Want::default());
    doc.resolver()
        .all(doc.found.links.iter().map(String::as_str))
}

/// The URLs a stylesheet refers to (`url(...)`, quoted, unquoted or escaped, and
/// `@import "..."`), resolved against `url`. Its encoding comes from a BOM, else its
/// `@charset`, else UTF-8 (with a `Content-Type` charset, use `HtmlLinks.requisites(true)` on a
/// [`Page`]). Only http(s) URLs are kept.
pub fn css_links(url: &str, body: &[u8]) -> Vec<String> {
    let Ok(sheet) = Url::parse(url) else {
        return Vec::new();
    };
    let encoding = css::sheet_encoding(body, None);
    css_urls(&sheet, body, encoding)
}

/// The URLs of a stylesheet's bytes, in its `encoding`.
fn css_urls(sheet: &Url, body: &[u8], encoding: &'static encoding_rs::Encoding) -> Vec<String> {
    // `decode` lets a BOM override the encoding, as CSS Syntax says.
    let (text, encoding, _) = encoding.decode(body);
    let resolver = Resolver::new(sheet.clone(), encoding);
    let mut urls = Vec::new();
    css::urls(&text, &mut |u| urls.extend(resolver.http(u)));
    urls
}

/// An HTML document read once: what the pass found, and what resolving it needs.
struct Document {
    url: Url,
    encoding: &'static encoding_rs::Encoding,
    found: Found,
}

impl Document {
    /// The resolver for this document's URLs: its base URL is the first `<base href>`, resolved
    /// against the document URL, else the document URL.
    fn resolver(&self) -> Resolver {
        let mut resolver = Resolver::new(self.url.clone(), self.encoding);
        if let Some(base) = &self.found.base {
            resolver.set_base(base);
        }
        resolver
    }
}

/// Sniffs the encoding of `body` (decoded from its content coding already) and reads it.
fn read_html(url: Url, body: &[u8], content_type: Option<&str>, want: Want) -> Document {
    let sniffed = charset::sniff_html(body, content_type);
    let bytes = body.get(sniffed.bom..).unwrap_or_default();
    let found = match lol_html::AsciiCompatibleEncoding::new(sniffed.encoding) {
        // The common case (UTF-8, windows-1252, Shift_JIS...): the parser reads the bytes as they
        // are, no copy.
        Some(encoding) => html::scan(bytes, encoding, want),
        // UTF-16 (and the "replacement" encoding): transcoded to UTF-8 first.
        None => {
            let (text, _) = sniffed.encoding.decode_without_bom_handling(bytes);
            html::scan(
                text.as_bytes(),
                lol_html::AsciiCompatibleEncoding::utf_8(),
                want,
            )
        }
    };
    Document {
        url,
        encoding: sniffed.encoding,
        found,
    }
}

/// The requisites' URLs, in document order: `url()` in CSS and `srcset` candidates are
/// resolved against the document's base URL like any attribute.
fn assets(resolver: &Resolver, found: &[Asset]) -> Vec<String> {
    let mut urls = Urls::with_capacity(found.len());
    for asset in found {
        match asset {
            Asset::Url(u) => urls.push(resolver, u),
            Asset::Srcset(s) => srcset::urls(s, |u| urls.push(resolver, u)),
            // CSS strings may be unescaped copies that do not outlive the call: no memo.
            Asset::Css(text) => css::urls(text, &mut |u| urls.out.extend(resolver.http(u))),
        }
    }
    urls.out
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
        assert!(is_css(Some("Text/CSS; charset=latin1")));
        assert!(!is_css(None));
    }

    #[test]
    fn the_default_extractor_wants_html_and_with_requisites_css() {
        assert!(!HtmlLinks.wants(Some("text/css")));
        assert!(LinkExtractor::new()
            .requisites(true)
            .wants(Some("text/css")));
        assert!(LinkExtractor::new().wants(Some("text/html")));
    }

    #[test]
    fn a_page_in_the_replacement_encoding_has_no_links() {
        // ISO-2022-KR and friends decode to a single U+FFFD, in browsers as here.
        let headers = [(
            "content-type".to_string(),
            "text/html; charset=iso-2022-kr".to_string(),
        )];
        let page = Page::new("http://h.test/", &headers, b"<a href=/x>x</a>");
        assert!(HtmlLinks.extract(&page).links.is_empty());
    }

    #[test]
    fn a_page_url_that_is_no_url_has_no_links() {
        assert!(html_links("not a url", b"<a href=/x>x</a>").is_empty());
        assert!(css_links("not a url", b"a{background:url(x)}").is_empty());
    }
}
