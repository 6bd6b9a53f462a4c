//! Sitemaps (sitemaps.org): what a sitemap body lists, and the `Sitemap:` lines of robots.txt.
//!
//! Owns reading one sitemap body into the URLs it lists, within the protocol's limits. It does
//! no I/O of its own and resolves nothing: the crawl fetches sitemaps, resolves and scope-checks
//! their URLs, and follows an index's sitemaps itself.
//!
//! Read: `<urlset>` (`<url><loc>`) and `<sitemapindex>` (`<sitemap><loc>`), with or without the
//! sitemaps namespace or a prefix, entities and character references, CDATA, whitespace around
//! locs; RSS 2.0 (`<item><link>`) and Atom (`<entry><link href>`) feeds, which the protocol also
//! accepts; plain text, one URL per line. A gzip body is recognised by its magic bytes, whatever
//! its name or Content-Type says.
//!
//! Limits: at most 50,000 URLs and 50 MiB (uncompressed) per sitemap, as the protocol says.
//! Reading stops there, and the result says it was cut ([`Sitemap::truncated`]); decompression
//! is streamed through the limit, so a gzip bomb costs at most 50 MiB of reading and never more
//! memory than that. quick-xml expands no DTD entities, so an entity bomb expands nothing.

use std::io::{self, BufRead, BufReader, Cursor, Read};

use quick_xml::events::Event;

/// The protocol's limit of URLs per sitemap.
pub const MAX_URLS: usize = 50_000;
/// The protocol's limit of bytes per sitemap, uncompressed.
pub const MAX_BYTES: u64 = 50 * 1024 * 1024;
/// The protocol's limit of a URL's length (longer locs are skipped).
pub const MAX_LOC_LEN: usize = 2048;

/// What a sitemap lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SitemapKind {
    /// Pages (`<urlset>`, a feed, or a text sitemap).
    Urls,
    /// Other sitemaps (`<sitemapindex>`).
    Index,
}

/// A parsed sitemap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sitemap {
    /// Pages or sitemaps.
    pub kind: SitemapKind,
    /// The URLs, trimmed and unescaped, in order, as written (not resolved nor checked).
    pub locs: Vec<String>,
    /// True when reading stopped before the end: past a limit, or at broken XML or gzip after
    /// some of it was read.
    pub truncated: bool,
}

/// Limits of one sitemap; the default is the protocol's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// URLs kept at most.
    pub max_urls: usize,
    /// Uncompressed bytes read at most.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_urls: MAX_URLS,
            max_bytes: MAX_BYTES,
        }
    }
}

/// Why a body is no sitemap.
#[derive(Debug, thiserror::Error)]
pub enum SitemapError {
    /// XML whose root is none of the sitemap or feed roots (an HTML page, say).
    #[error("not a sitemap: the root element is <{0}>")]
    NotASitemap(String),
    /// Not XML that could be read up to its root element.
    #[error("not a sitemap: {0}")]
    Xml(String),
    /// The body could not be read (or decompressed) at all.
    #[error("cannot read the sitemap: {0}")]
    Read(#[from] io::Error),
}

/// Parses a sitemap body within the protocol's limits.
pub fn parse(body: impl Read) -> Result<Sitemap, SitemapError> {
    parse_with(body, Limits::default())
}

/// Parses a sitemap body within `limits`.
pub fn parse_with(mut body: impl Read, limits: Limits) -> Result<Sitemap, SitemapError> {
    let mut magic = Vec::with_capacity(2);
    (&mut body).take(2).read_to_end(&mut magic)?;
    let raw = Cursor::new(magic.clone()).chain(body);
    let decoded: Box<dyn Read + '_> = if magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut limited = Limited {
        inner: decoded,
        left: limits.max_bytes,
        cut: false,
        broken: false,
    };
    // Enough of the start to tell XML from text.
    let mut start = Vec::new();
    (&mut limited).take(1024).read_to_end(&mut start)?;
    let is_xml = start
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(&start)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b'<');
    let input = BufReader::new(Cursor::new(start).chain(&mut limited));
    let (mut map, unterminated) = if is_xml {
        (parse_xml(input, limits)?, false)
    } else {
        parse_text(input, limits)
    };
    if limited.cut || limited.broken {
        map.truncated = true;
        // A last line without its newline may be a URL cut in two: not one to fetch.
        if unterminated {
            map.locs.pop();
        }
    }
    Ok(map)
}

/// Reads at most `left` bytes; notes whether more was there (`cut`) and whether reading failed
/// (`broken`: a torn or corrupt gzip stream), and then reads as ended, so the parser keeps what
/// came before.
struct Limited<R> {
    inner: R,
    left: u64,
    cut: bool,
    broken: bool,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cut || self.broken {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            match self.inner.read(&mut probe) {
                Ok(0) => {}
                Ok(_) => self.cut = true,
                Err(_) => self.broken = true,
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(_) => {
                self.broken = true;
                Ok(0)
            }
        }
    }
}

/// Keeps a loc if it fits; says false once the URL limit is reached.
fn keep(locs: &mut Vec<String>, loc: &str, limits: Limits) -> bool {
    let loc = loc.trim();
    if loc.is_empty() || loc.len() > MAX_LOC_LEN {
        return true;
    }
    if locs.len() >= limits.max_urls {
        return false;
    }
    locs.push(loc.to_string());
    true
}

/// A text sitemap, and whether its last URL had no newline after it.
fn parse_text(mut input: impl BufRead, limits: Limits) -> (Sitemap, bool) {
    let mut map = Sitemap {
        kind: SitemapKind::Urls,
        locs: Vec::new(),
        truncated: false,
    };
    let mut line = Vec::new();
    let mut unterminated = false;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        unterminated = false;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_start_matches('\u{feff}').trim();
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            continue;
        }
        let before = map.locs.len();
        if !keep(&mut map.locs, text, limits) {
            map.truncated = true;
            break;
        }
        unterminated = map.locs.len() > before && !line.ends_with(b"\n");
    }
    (map, unterminated)
}

/// Where the parser is in a sitemap or feed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    UrlSet,
    Index,
    Rss,
    Atom,
}

fn parse_xml(input: impl BufRead, limits: Limits) -> Result<Sitemap, SitemapError> {
    let mut reader = quick_xml::Reader::from_reader(input);
    // Real sitemaps are often sloppy; what matters is the locs, not well-formedness.
    reader.config_mut().check_end_names = false;
    reader.config_mut().allow_dangling_amp = true;
    let mut buf = Vec::new();
    let mut root: Option<Root> = None;
    // The local names of the open elements, as deep as a loc can be (deeper ones only counted).
    let mut path: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut text = String::new();
    let mut in_loc = false;
    let mut locs = Vec::new();
    let mut truncated = false;
    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => match root {
                None => return Err(SitemapError::Xml(e.to_string())),
                Some(_) => {
                    truncated = true;
                    break;
                }
            },
        };
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.local_name().as_ref().to_ascii_lowercase();
            depth += 1;
            if depth == 1 {
                root = Some(match name.as_str() {
                    "urlset" => Root::UrlSet,
                    "sitemapindex" => Root::Index,
                    "rss" => Root::Rss,
                    "feed" => Root::Atom,
                    _ => return Err(SitemapError::NotASitemap(name)),
                });
            }
            if depth <= 4 {
                path.push(name);
            }
            let at = |p: &[&str]| depth == p.len() && path.iter().zip(p).all(|(a, b)| a == b);
            match root {
                Some(Root::UrlSet) if at(&["urlset", "url", "loc"]) => in_loc = !empty,
                Some(Root::Index) if at(&["sitemapindex", "sitemap", "loc"]) => in_loc = !empty,
                Some(Root::Rss) if at(&["rss", "channel", "item", "link"]) => in_loc = !empty,
                Some(Root::Atom) if at(&["feed", "entry", "link"]) => {
                    // Atom's link is in its href; an entry's "alternate" (or untyped) link is
                    // the page.
                    let rel = attr(e, "rel");
                    if rel.as_deref().is_none_or(|r| r == "alternate") {
                        if let Some(href) = attr(e, "href") {
                            if !keep(&mut locs, &href, limits) {
                                truncated = true;
                                break;
                            }
                        }
                    }
                }
                _ => {}
            }
            text.clear();
            if empty {
                if depth <= 4 {
                    path.pop();
                }
                depth -= 1;
            }
            continue;
        }
        match event {
            Event::Text(t) if in_loc => push_capped(&mut text, &t.xml10_content()),
            Event::CData(c) if in_loc => push_capped(&mut text, &c.xml10_content()),
            Event::GeneralRef(r) if in_loc => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.to_string(),
                        None => format!("&{};", &*r),
                    },
                };
                push_capped(&mut text, &resolved);
            }
            Event::End(_) => {
                if in_loc {
                    in_loc = false;
                    if !keep(&mut locs, &text, limits) {
                        truncated = true;
                        break;
                    }
                }
                if depth <= 4 {
                    path.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let kind = match root {
        Some(Root::Index) => SitemapKind::Index,
        Some(_) => SitemapKind::Urls,
        None => return Err(SitemapError::Xml("no root element".into())),
    };
    Ok(Sitemap {
        kind,
        locs,
        truncated,
    })
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.local_name().as_ref() == name)
            .then(|| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
            .flatten()
    })
}

/// Appends to a loc, but never past twice the longest loc kept (so one huge text node costs no
/// more than that; such a loc is skipped anyway).
fn push_capped(text: &mut String, piece: &str) {
    if text.len() <= 2 * MAX_LOC_LEN {
        text.push_str(piece);
    }
}

/// The `Sitemap:` URLs of a robots.txt (any case, `Site-map:` too), in order, without repeats.
///
/// texting_robots' `Robot::sitemaps` gives the same when a `Robot` is built anyway; this one
/// also works when robots.txt is ignored, not UTF-8, or refused by texting_robots' parser, and
/// drops empty values and repeats.
pub fn robots_sitemaps(robots_txt: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in robots_txt.split(|&b| b == b'\n' || b == b'\r') {
        let line = String::from_utf8_lossy(line);
        let line = line.split('#').next().unwrap_or_default();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if (key == "sitemap" || key == "site-map")
            && !value.is_empty()
            && !out.iter().any(|u| u == value)
        {
            out.push(value.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_lines() {
        let txt = b"User-agent: *\nDisallow: /x\nSitemap: https://a.example/s.xml # main\r\nsitemap:https://a.example/s.xml\nSITE-MAP: /relative.xml\nSitemap:\n";
        assert_eq!(
            robots_sitemaps(txt),
            vec!["https://a.example/s.xml", "/relative.xml"]
        );
    }
}
