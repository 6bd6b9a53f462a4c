//! The body as the link step must read it: undone from its `Content-Encoding`. A server may
//! compress although the fetcher asked for `identity`; the body is stored as sent, but its links
//! are in the decoded bytes.
//!
//! gzip (`x-gzip`) and deflate (zlib-wrapped, or raw as some servers send it) are decoded by
//! `flate2`, br by `brotli-decompressor` (Dropbox's pure-Rust decoder, the one the `brotli` crate
//! itself uses). Codings are undone last-applied first (`gzip, br` is br of gzip), each within
//! the bound, so a decompression bomb costs at most the bound in memory and the time it takes to
//! inflate that much.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// Buffer size for the brotli decoder's reads (its own default).
const BROTLI_BUFFER: usize = 4096;

/// `body` decoded from the `content-encoding` headers, at most `max` bytes of it (a stream that
/// would decode further is cut there). `None` for a coding this module does not know (`zstd`,
/// `compress`, a typo): such bytes are no page at all. A stream that is corrupt or cut short
/// gives what it decoded before that point, as a browser shows what arrived.
pub(crate) fn decode<'a>(
    body: &'a [u8],
    headers: &[(String, String)],
    max: usize,
) -> Option<Cow<'a, [u8]>> {
    let codings: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| name == "content-encoding")
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .collect();
    let mut body = Cow::Borrowed(body);
    for coding in codings.iter().rev() {
        body = Cow::Owned(undo(&body, coding, max)?);
    }
    Some(body)
}

/// One coding undone.
fn undo(input: &[u8], coding: &str, max: usize) -> Option<Vec<u8>> {
    let is = |name: &str| coding.eq_ignore_ascii_case(name);
    Some(if is("gzip") || is("x-gzip") {
        // Multi: a gzip body may be several members one after another (RFC 1952).
        bounded(MultiGzDecoder::new(input), input.len(), max)
    } else if is("deflate") {
        // RFC 9110's deflate is zlib-wrapped; some servers send the raw stream, which browsers
        // accept too. A zlib header is a deflate CMF byte whose 16-bit header is a multiple of 31.
        let zlib = input.len() >= 2
            && input[0] & 0x0F == 8
            && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
        if zlib {
            bounded(ZlibDecoder::new(input), input.len(), max)
        } else {
            bounded(DeflateDecoder::new(input), input.len(), max)
        }
    } else if is("br") {
        bounded(
            brotli_decompressor::Decompressor::new(input, BROTLI_BUFFER),
            input.len(),
            max,
        )
    } else {
        return None;
    })
}

/// What `reader` decodes, up to `max` bytes. A decoding error ends it with what came before.
fn bounded(reader: impl Read, compressed: usize, max: usize) -> Vec<u8> {
    // HTML compresses about 4:1; start there rather than grow from nothing.
    let mut out = Vec::with_capacity(compressed.saturating_mul(4).min(max));
    let _ = reader.take(max as u64).read_to_end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    use super::*;

    fn headers(coding: &str) -> Vec<(String, String)> {
        vec![("content-encoding".into(), coding.into())]
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        let _ = e.write_all(data);
        e.finish().unwrap_or_default()
    }

    #[test]
    fn identity_and_no_header_borrow_the_body() {
        let body = b"<a href=x>";
        assert!(matches!(decode(body, &[], 100), Some(Cow::Borrowed(_))));
        assert!(matches!(
            decode(body, &headers("identity"), 100),
            Some(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn gzip_zlib_and_raw_deflate() {
        let page = b"<a href=/x>x</a>".repeat(10);
        let gz = gzip(&page);
        let got = decode(&gz, &headers("x-gzip"), 1 << 20);
        assert_eq!(got.as_deref(), Some(&page[..]));
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        let _ = z.write_all(&page);
        let z = z.finish().unwrap_or_default();
        assert_eq!(
            decode(&z, &headers("Deflate"), 1 << 20).as_deref(),
            Some(&page[..])
        );
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        let _ = raw.write_all(&page);
        let raw = raw.finish().unwrap_or_default();
        assert_eq!(
            decode(&raw, &headers("deflate"), 1 << 20).as_deref(),
            Some(&page[..])
        );
    }

    #[test]
    fn stacked_codings_are_undone_last_first() {
        let page = b"<a href=/twice>".to_vec();
        let twice = gzip(&gzip(&page));
        let h = vec![
            ("content-encoding".into(), "gzip".into()),
            ("content-encoding".into(), "identity, gzip".into()),
        ];
        assert_eq!(decode(&twice, &h, 1 << 20).as_deref(), Some(&page[..]));
    }

    #[test]
    fn unknown_codings_give_nothing_and_bombs_are_cut() {
        assert!(decode(b"xx", &headers("zstd"), 100).is_none());
        assert!(decode(b"xx", &headers("gzip, compress"), 100).is_none());
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20 << 10);
        let got = decode(&bomb, &headers("gzip"), 1 << 20);
        assert_eq!(got.map(|b| b.len()), Some(1 << 20));
    }

    #[test]
    fn corrupt_and_cut_streams_keep_what_came_first() {
        assert_eq!(
            decode(b"not gzip", &headers("gzip"), 100).as_deref(),
            Some(&b""[..])
        );
        let page = b"<a href=/first>".repeat(100);
        let gz = gzip(&page);
        let cut = decode(&gz[..gz.len() - 8], &headers("gzip"), 1 << 20);
        assert!(cut.is_some_and(|b| b.starts_with(b"<a href=/first>")));
    }
}
