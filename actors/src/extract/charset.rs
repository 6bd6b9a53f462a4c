//! The character encoding of an HTML document, found as the HTML Standard's encoding sniffing
//! algorithm finds it: a BOM, else the `Content-Type` charset, else the prescan of the first
//! 1024 bytes for a `<meta charset>` or `<meta http-equiv="Content-Type">`, else (where a
//! browser would guess from its locale) UTF-8 when the bytes are valid UTF-8, windows-1252
//! otherwise.
//!
//! The prescan is written here, step for step after the spec ("prescan a byte stream to
//! determine its encoding", "get an attribute", "extracting a character encoding from a meta
//! element"): encoding_rs implements the Encoding Standard (labels, decoders) but not HTML's
//! sniffing, and the crates that do are young ones or come with a whole HTML parser.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252, X_USER_DEFINED};

/// How many bytes the prescan reads: the spec encourages user agents to stop at 1024.
const PRESCAN_BYTES: usize = 1024;

/// The encoding of a document and the length of its byte order mark (0 without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sniffed {
    pub encoding: &'static Encoding,
    pub bom: usize,
}

/// The encoding of the HTML document `body`, sent with `content_type`.
pub(crate) fn sniff_html(body: &[u8], content_type: Option<&str>) -> Sniffed {
    if let Some((encoding, bom)) = Encoding::for_bom(body) {
        return Sniffed { encoding, bom };
    }
    let declared = content_type
        .and_then(param)
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .or_else(|| prescan(body.get(..PRESCAN_BYTES).unwrap_or(body)));
    let encoding = declared.unwrap_or_else(|| {
        if std::str::from_utf8(body).is_ok() {
            UTF_8
        } else {
            WINDOWS_1252
        }
    });
    Sniffed { encoding, bom: 0 }
}

/// The `charset` parameter of a `Content-Type` value (quotes removed), if it has one.
pub(crate) fn param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// The HTML Standard's whitespace of the prescan (ASCII whitespace).
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

/// Whether `bytes` starts with `prefix`, ignoring ASCII case.
fn starts_with_ci(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes
        .get(..prefix.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(prefix))
}

/// The encoding a `<meta>` in `b` declares, as the prescan finds it; `None` when it reaches the
/// end of `b` first.
pub(crate) fn prescan(b: &[u8]) -> Option<&'static Encoding> {
    let mut pos = 0;
    while pos < b.len() {
        let rest = &b[pos..];
        if rest.starts_with(b"<!--") {
            // To the `>` of the first `-->`, which may share the opener's dashes (`<!-->`).
            let end = memchr::memmem::find(&rest[2..], b"-->")?;
            pos += 2 + end + 2;
        } else if starts_with_ci(rest, b"<meta")
            && rest.get(5).is_some_and(|&c| is_space(c) || c == b'/')
        {
            pos += 5;
            let (found, end) = meta(b, pos)?;
            pos = end;
            if found.is_some() {
                return found;
            }
        } else if rest.len() >= 2
            && rest[0] == b'<'
            && (rest[1].is_ascii_alphabetic()
                || (rest[1] == b'/' && rest.get(2).is_some_and(u8::is_ascii_alphabetic)))
        {
            // Any other tag: skip its name and its attributes (a `>` inside a quoted value does
            // not end it).
            pos += 2;
            while !is_space(*b.get(pos)?) && b[pos] != b'>' {
                pos += 1;
            }
            while let Some((_, _, end)) = attribute(b, pos)? {
                pos = end;
            }
            pos = skip_to_gt(b, pos)?;
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") || rest.starts_with(b"<?") {
            pos = skip_to_gt(b, pos)?;
        }
        pos += 1;
    }
    None
}

/// Where the attribute loop stopped: at the tag's `>` (no attribute left).
fn skip_to_gt(b: &[u8], pos: usize) -> Option<usize> {
    memchr::memchr(b'>', b.get(pos..)?).map(|i| pos + i)
}

/// The attributes of a `<meta>` starting at `pos`: the encoding it declares, if any, and where
/// it ends. `None` when the bytes end inside it.
fn meta(b: &[u8], mut pos: usize) -> Option<(Option<&'static Encoding>, usize)> {
    let (mut seen_http_equiv, mut seen_content, mut seen_charset) = (false, false, false);
    let mut got_pragma = false;
    let mut need_pragma = None;
    let mut charset: Option<&'static Encoding> = None;
    while let Some((name, value, end)) = attribute(b, pos)? {
        pos = end;
        // A repeated attribute is ignored: the first one counts.
        if name.eq_ignore_ascii_case(b"http-equiv") {
            if !std::mem::replace(&mut seen_http_equiv, true) {
                got_pragma |= value.eq_ignore_ascii_case(b"content-type");
            }
        } else if name.eq_ignore_ascii_case(b"content") {
            if !std::mem::replace(&mut seen_content, true) && charset.is_none() {
                if let Some(found) = from_content(value) {
                    charset = Some(found);
                    need_pragma = Some(true);
                }
            }
        } else if name.eq_ignore_ascii_case(b"charset")
            && !std::mem::replace(&mut seen_charset, true)
        {
            charset = Encoding::for_label(value);
            need_pragma = Some(false);
        }
    }
    let found = match need_pragma {
        None => None,
        Some(true) if !got_pragma => None,
        _ => charset.map(|e| match e {
            e if e == UTF_16BE || e == UTF_16LE => UTF_8,
            e if e == X_USER_DEFINED => WINDOWS_1252,
            e => e,
        }),
    };
    Some((found, pos))
}

/// An attribute's name, its value, and the position just past it.
type Attribute<'a> = (&'a [u8], &'a [u8], usize);

/// The spec's "get an attribute" from `pos`: `Some(None)` at the tag's `>`, else the name, the
/// value and where the attribute ends; `None` when the bytes end first. Names and values are
/// slices of `b` (the spec lower-cases them; they are compared ignoring case instead).
fn attribute(b: &[u8], mut pos: usize) -> Option<Option<Attribute<'_>>> {
    while is_space(*b.get(pos)?) || b[pos] == b'/' {
        pos += 1;
    }
    if b[pos] == b'>' {
        return Some(None);
    }
    let start = pos;
    // The name: up to `=`, whitespace, `/` or `>` (an `=` in first place belongs to the name).
    loop {
        let c = *b.get(pos)?;
        if c == b'=' && pos > start {
            break;
        }
        if is_space(c) || c == b'/' || c == b'>' {
            break;
        }
        pos += 1;
    }
    let name = &b[start..pos];
    if b[pos] == b'/' || b[pos] == b'>' {
        return Some(Some((name, &[], pos)));
    }
    while is_space(*b.get(pos)?) {
        pos += 1;
    }
    if b[pos] != b'=' {
        return Some(Some((name, &[], pos)));
    }
    pos += 1;
    while is_space(*b.get(pos)?) {
        pos += 1;
    }
    let c = b[pos];
    if c == b'"' || c == b'\'' {
        let len = memchr::memchr(c, b.get(pos + 1..)?)?;
        return Some(Some((name, &b[pos + 1..pos + 1 + len], pos + 2 + len)));
    }
    if c == b'>' {
        return Some(Some((name, &[], pos)));
    }
    let value_start = pos;
    while !is_space(*b.get(pos)?) && b[pos] != b'>' {
        pos += 1;
    }
    Some(Some((name, &b[value_start..pos], pos)))
}

/// The spec's "extracting a character encoding from a meta element", from a `content` value
/// such as `text/html; charset=iso-8859-1`.
fn from_content(s: &[u8]) -> Option<&'static Encoding> {
    let mut pos = 0;
    loop {
        let at = pos + find_ci(&s[pos..], b"charset")?;
        let mut p = at + 7;
        while s.get(p).is_some_and(|&c| is_space(c)) {
            p += 1;
        }
        if s.get(p) != Some(&b'=') {
            pos = p;
            continue;
        }
        p += 1;
        while s.get(p).is_some_and(|&c| is_space(c)) {
            p += 1;
        }
        let c = *s.get(p)?;
        let label = if c == b'"' || c == b'\'' {
            let len = memchr::memchr(c, &s[p + 1..])?;
            &s[p + 1..p + 1 + len]
        } else {
            let end = s[p..]
                .iter()
                .position(|&c| is_space(c) || c == b';')
                .map_or(s.len(), |e| p + e);
            &s[p..end]
        };
        return Encoding::for_label(label);
    }
}

/// Where `needle` (lower-case ASCII) first occurs in `haystack`, ignoring ASCII case.
fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Option<&'static str> {
        prescan(s.as_bytes()).map(Encoding::name)
    }

    #[test]
    fn meta_charset_and_http_equiv() {
        assert_eq!(scan("<meta charset=\"iso-8859-1\">"), Some("windows-1252"));
        assert_eq!(scan("<META CHARSET=Shift_JIS>"), Some("Shift_JIS"));
        assert_eq!(scan("<meta/charset='utf-8'>"), Some("UTF-8"));
        assert_eq!(
            scan("<meta http-equiv=\"Content-Type\" content=\"text/html; charset=koi8-r\">"),
            Some("KOI8-R")
        );
        assert_eq!(
            scan("<meta content='text/html;charset = \"gbk\"' http-equiv=content-type>"),
            Some("GBK")
        );
    }

    #[test]
    fn content_without_the_pragma_does_not_count() {
        assert_eq!(scan("<meta content=\"text/html; charset=koi8-r\">"), None);
        assert_eq!(
            scan("<meta name=x content=\"charset=koi8-r\"><meta charset=big5>"),
            Some("Big5")
        );
    }

    #[test]
    fn utf16_and_x_user_defined_labels_become_utf8_and_windows1252() {
        assert_eq!(scan("<meta charset=utf-16le>"), Some("UTF-8"));
        assert_eq!(scan("<meta charset=x-user-defined>"), Some("windows-1252"));
    }

    #[test]
    fn comments_tags_and_quoted_gt_are_skipped() {
        assert_eq!(
            scan("<!-- <meta charset=koi8-r> --><meta charset=gbk>"),
            Some("GBK")
        );
        assert_eq!(scan("<!--><meta charset=gbk>"), Some("GBK"));
        assert_eq!(
            scan("<div title='<meta charset=koi8-r>'><meta charset=gbk>"),
            Some("GBK")
        );
        assert_eq!(
            scan("<?xml version='1.0'?><!DOCTYPE html><meta charset=gbk>"),
            Some("GBK")
        );
        assert_eq!(
            scan("<meta charset=nonsense><meta charset=gbk>"),
            Some("GBK")
        );
    }

    #[test]
    fn the_first_attribute_of_a_name_wins_and_the_end_stops() {
        assert_eq!(scan("<meta charset=gbk charset=big5>"), Some("GBK"));
        assert_eq!(scan("<meta charset=gbk"), None);
        assert_eq!(scan("<!-- <meta charset=gbk>"), None);
        assert_eq!(scan("<metacharset=gbk>"), None);
    }

    #[test]
    fn sniffing_order() {
        let sniff = |b: &[u8], ct| sniff_html(b, ct).encoding.name();
        assert_eq!(
            sniff(
                b"\xEF\xBB\xBF<meta charset=gbk>",
                Some("text/html; charset=big5")
            ),
            "UTF-8"
        );
        assert_eq!(sniff(b"\xFF\xFE<\x00", None), "UTF-16LE");
        assert_eq!(
            sniff(b"<meta charset=gbk>", Some("text/html; charset=\"big5\"")),
            "Big5"
        );
        assert_eq!(
            sniff(b"<meta charset=gbk>", Some("text/html; charset=bogus")),
            "GBK"
        );
        assert_eq!(sniff("caf\u{e9}".as_bytes(), None), "UTF-8");
        assert_eq!(sniff(b"caf\xE9", None), "windows-1252");
        assert_eq!(sniff_html(b"\xEF\xBB\xBFx", None).bom, 3);
    }

    #[test]
    fn a_meta_after_1024_bytes_is_not_seen() {
        let mut page = "<!-- ".to_string() + &"x".repeat(1100) + " -->";
        page.push_str("<meta charset=gbk>\u{e9}");
        assert_eq!(sniff_html(page.as_bytes(), None).encoding, UTF_8);
    }

    #[test]
    fn charset_parameter() {
        assert_eq!(param("text/html; charset=UTF-8"), Some("UTF-8"));
        assert_eq!(
            param("text/html;foo=bar; Charset=\"latin1\""),
            Some("latin1")
        );
        assert_eq!(param("text/html"), None);
    }
}
