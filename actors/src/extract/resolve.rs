//! URLs resolved as a browser resolves the URLs of a document: parsed by the `url` crate (the
//! WHATWG URL Standard) against the document's base URL, with the document's encoding as the
//! "encoding override" (the query of a link on a windows-1252 page is percent-encoded in
//! windows-1252, its path always in UTF-8), and kept only when http(s).
//!
//! A page names the same URL many times (navigation bars at the top and the bottom, a table of
//! contents): each distinct string is parsed once per page.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use encoding_rs::{EncoderResult, Encoding, UTF_8};
use url::Url;

/// Resolves the URLs of one document.
pub(crate) struct Resolver {
    document: Url,
    base: Url,
    /// The query encoding, `None` for UTF-8 (the `url` crate's own, and the fast path).
    encoding: Option<&'static Encoding>,
}

impl Resolver {
    /// URLs relative to `document`, in a document whose encoding is `encoding`.
    pub fn new(document: Url, encoding: &'static Encoding) -> Self {
        // The URL Standard encodes with the document's *output* encoding: UTF-8 for a UTF-16 or
        // "replacement" document.
        let encoding = Some(encoding.output_encoding()).filter(|&e| e != UTF_8);
        Resolver {
            base: document.clone(),
            document,
            encoding,
        }
    }

    /// The document's `<base href>`: resolved against the document URL, it becomes the base of
    /// every other URL. One that does not parse leaves the document URL, as does a `data:` or
    /// `javascript:` base, which Chromium refuses.
    pub fn set_base(&mut self, href: &str) {
        let base = self.parse(&self.document, trim(href));
        if let Some(base) = base.filter(|b| !matches!(b.scheme(), "data" | "javascript")) {
            self.base = base;
        }
    }

    /// `href` resolved, if it is an http(s) URL.
    pub fn http(&self, href: &str) -> Option<String> {
        self.parse(&self.base, trim(href))
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(String::from)
    }

    /// Every one of `hrefs` that resolves to an http(s) URL, in order.
    pub fn all<'s>(&self, hrefs: impl ExactSizeIterator<Item = &'s str>) -> Vec<String> {
        let mut urls = Urls::with_capacity(hrefs.len());
        for href in hrefs {
            urls.push(self, href);
        }
        urls.out
    }

    fn parse(&self, base: &Url, href: &str) -> Option<Url> {
        let options = Url::options().base_url(Some(base));
        let Some(encoding) = self.encoding else {
            return options.parse(href).ok();
        };
        // The `url` crate's own encoding override writes a character the encoding lacks as
        // `&#NNNN;` with `&` and `;` bare, where the URL Standard (and Chromium) write
        // `%26%23NNNN%3B`: the query is encoded here instead, then parsed as ASCII.
        match encode_query(href, encoding) {
            Some(href) => options.parse(&href).ok(),
            None => options.parse(href).ok(),
        }
    }
}

/// `href` with its query percent-encoded in `encoding` as the URL Standard's "percent-encode
/// after encoding" does it with the special-query set; `None` when that changes nothing (no
/// query, or an ASCII one, the common case).
fn encode_query(href: &str, encoding: &'static Encoding) -> Option<String> {
    // The URL parser drops tabs and newlines anywhere before it reads anything, and a `?` always
    // starts the query of a special URL (one outside the fragment).
    let href: Cow<'_, str> = if href.contains(['\t', '\n', '\r']) {
        Cow::Owned(href.replace(['\t', '\n', '\r'], ""))
    } else {
        Cow::Borrowed(href)
    };
    let start = href
        .find(['?', '#'])
        .filter(|&i| href.as_bytes()[i] == b'?')?
        + 1;
    let end = href[start..].find('#').map_or(href.len(), |i| start + i);
    let query = &href[start..end];
    if query.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(href.len() + 2 * query.len());
    out.push_str(&href[..start]);
    let mut encoder = encoding.new_encoder();
    let worst = encoder.max_buffer_length_from_utf8_without_replacement(query.len());
    let mut bytes = vec![0; worst.unwrap_or(4 * query.len()).max(16)];
    let mut rest = query;
    loop {
        let (result, read, written) =
            encoder.encode_from_utf8_without_replacement(rest, &mut bytes, true);
        for &b in &bytes[..written] {
            if b <= b' ' || b >= 0x7F || matches!(b, b'"' | b'#' | b'\'' | b'<' | b'>') {
                out.push_str(percent_encoding::percent_encode_byte(b));
            } else {
                out.push(char::from(b));
            }
        }
        rest = &rest[read..];
        match result {
            EncoderResult::InputEmpty => break,
            EncoderResult::Unmappable(c) => {
                out.push_str("%26%23");
                out.push_str(&u32::from(c).to_string());
                out.push_str("%3B");
            }
            // The buffer holds the encoder's worst case; should it not, it grows.
            EncoderResult::OutputFull => bytes.resize(2 * bytes.len(), 0),
        }
    }
    out.push_str(&href[end..]);
    Some(out)
}

/// The URL parser strips C0 controls and spaces around a URL; stripping them first lets ` a` and
/// `a` share a parse.
fn trim(href: &str) -> &str {
    href.trim_matches(|c| c <= ' ')
}

/// URLs resolved in order, each distinct string parsed once.
pub(crate) struct Urls<'s> {
    /// Each string seen, and where its URL is in `out` (`None`: not an http(s) URL).
    seen: HashMap<&'s str, Option<u32>, foldhash::fast::RandomState>,
    pub out: Vec<String>,
}

impl<'s> Urls<'s> {
    pub fn with_capacity(n: usize) -> Self {
        Urls {
            seen: HashMap::with_capacity_and_hasher(n, Default::default()),
            out: Vec::with_capacity(n),
        }
    }

    /// Appends `href` resolved by `resolver`, if it is an http(s) URL.
    pub fn push(&mut self, resolver: &Resolver, href: &'s str) {
        match self.seen.entry(trim(href)) {
            Entry::Occupied(seen) => {
                let url = seen.get().and_then(|i| self.out.get(i as usize)).cloned();
                self.out.extend(url);
            }
            Entry::Vacant(new) => {
                let url = resolver.http(new.key());
                new.insert(url.as_ref().map(|_| self.out.len() as u32));
                self.out.extend(url);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use encoding_rs::{SHIFT_JIS, UTF_16LE, WINDOWS_1252};

    use super::*;

    fn resolver(encoding: &'static Encoding) -> Resolver {
        let page = Url::parse("http://h.test/dir/page.html").unwrap_or_else(|e| panic!("{e}"));
        Resolver::new(page, encoding)
    }

    #[test]
    fn query_in_the_document_encoding_path_in_utf8() {
        let r = resolver(WINDOWS_1252);
        assert_eq!(
            r.http("/caf\u{e9}?q=\u{e9}").as_deref(),
            Some("http://h.test/caf%C3%A9?q=%E9")
        );
        // A character windows-1252 lacks becomes a numeric character reference.
        assert_eq!(
            r.http("x?q=\u{65e5}").as_deref(),
            Some("http://h.test/dir/x?q=%26%2326085%3B")
        );
        let sjis = resolver(SHIFT_JIS);
        assert_eq!(
            sjis.http("?q=\u{65e5}").as_deref(),
            Some("http://h.test/dir/page.html?q=%93%FA")
        );
        let utf16 = resolver(UTF_16LE);
        assert_eq!(
            utf16.http("?q=\u{e9}").as_deref(),
            Some("http://h.test/dir/page.html?q=%C3%A9")
        );
    }

    #[test]
    fn base_is_resolved_against_the_document_and_only_http_is_kept() {
        let mut r = resolver(UTF_8);
        r.set_base("../other/");
        assert_eq!(
            r.http(" a.html\n").as_deref(),
            Some("http://h.test/other/a.html")
        );
        assert_eq!(r.http("mailto:x@y.test"), None);
        assert_eq!(r.http("javascript:void(0)"), None);
        assert_eq!(r.http("http://[::1"), None);
        let mut r = resolver(UTF_8);
        r.set_base("javascript:alert(1)");
        assert_eq!(r.http("a").as_deref(), Some("http://h.test/dir/a"));
    }
}
