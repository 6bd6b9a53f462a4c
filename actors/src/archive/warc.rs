//! WARC/1.1 records (ISO 28500:2017) and the gzip members they are written in.
//!
//! Owns the bytes of a record: its header (`WARC/1.1`, named fields, a blank line), its block,
//! and the `\r\n\r\n` that ends it; the digests (`sha1:` + RFC 4648 base32, as warcio and
//! Heritrix write them); record ids (`<urn:uuid:…>`), dates (UTC, microseconds, as WARC/1.1
//! allows and warcio writes); and one gzip member per record, so any record can be read from its
//! offset alone.
//!
//! Nothing here opens files: [`super::WarcWriter`] decides where records go.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha1::{Digest, Sha1};

/// `sha1:` and the base32 of a SHA-1, the form warcio, pywb and Heritrix use.
pub fn sha1_digest(hash: &[u8]) -> String {
    format!("sha1:{}", data_encoding::BASE32.encode(hash))
}

/// A new record id: `<urn:uuid:…>`, a random (version 4) UUID.
pub fn record_id() -> String {
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    format!("<urn:uuid:{}>", uuid.hyphenated())
}

/// The UTC calendar fields of a time (before 1970 reads as 1970).
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    micros: u32,
}

fn utc(t: SystemTime) -> Utc {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    Utc {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
        micros: since.subsec_micros(),
    }
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`): three date formats do not justify a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `WARC-Date`: `2024-05-01T12:34:56.123456Z`.
pub fn warc_date(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        u.year, u.month, u.day, u.hour, u.minute, u.second, u.micros
    )
}

/// The 14-digit timestamp of CDX indexes and file names: `20240501123456`.
pub fn timestamp14(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

/// A record's header fields, in the order they are written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields(Vec<(&'static str, String)>);

impl Fields {
    pub fn push(&mut self, name: &'static str, value: impl Into<String>) {
        self.0.push((name, header_value(value.into())));
    }

    /// The record's header: `WARC/1.1`, the fields, `Content-Length`, a blank line.
    pub fn head(&self, block_len: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"WARC/1.1\r\n");
        for (name, value) in &self.0 {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {block_len}\r\n\r\n").as_bytes());
        out
    }
}

/// A header value that cannot break the record: control characters (CR and LF above all, which
/// would start a field of the server's choosing) and spaces, which warcio refuses in a URI, are
/// percent-escaped.
fn header_value(value: String) -> String {
    // The common case, kept as it is: a record has a dozen fields, and this runs for each.
    if !value.chars().any(char::is_control) {
        return value;
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A URI for `WARC-Target-URI`: also without spaces (WARC/1.1 §5.8 wants a URI).
pub fn uri_value(uri: &str) -> String {
    uri.trim().replace(' ', "%20")
}

/// Digests of a block made of `head` (in memory) then a body read from `body`: the block digest
/// over both, the payload digest over the body alone, and the body's length. Reads `body` from
/// where it is to its end, then seeks it back there, so the caller can stream it again.
pub fn digest_block<B: Read + Seek + ?Sized>(
    head: &[u8],
    body: &mut B,
) -> io::Result<(String, String, u64)> {
    digest_block_in(head, body, &mut vec![0u8; 64 * 1024])
}

/// [`digest_block`] reading through `buf`: a writer keeps one, since zeroing a fresh buffer for
/// every record costs more than digesting a small one.
pub(crate) fn digest_block_in<B: Read + Seek + ?Sized>(
    head: &[u8],
    body: &mut B,
    buf: &mut [u8],
) -> io::Result<(String, String, u64)> {
    let start = body.stream_position()?;
    let mut block = Sha1::new();
    let mut payload = Sha1::new();
    block.update(head);
    let mut len = 0u64;
    loop {
        let n = match body.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        block.update(&buf[..n]);
        payload.update(&buf[..n]);
        len += n as u64;
    }
    body.seek(SeekFrom::Start(start))?;
    Ok((
        sha1_digest(&block.finalize()),
        sha1_digest(&payload.finalize()),
        len,
    ))
}

/// The SHA-1 of bytes in memory, as a WARC digest.
pub fn digest_bytes(bytes: &[u8]) -> String {
    sha1_digest(&Sha1::digest(bytes))
}

/// The fixed gzip header of every member: no name, no time (so a record's bytes depend only on
/// the record), OS "unknown" as flate2 writes it.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Records smaller than this are compressed at level 1 at most: building a block's own Huffman
/// codes costs more than it saves on a few hundred bytes.
pub const SMALL_RECORD: u64 = 4 * 1024;

/// Records at least this large are sampled, and stored without compression when their data
/// does not compress (media, archives).
pub const LARGE_RECORD: u64 = 1024 * 1024;

/// The bytes of a large record's data compressed, at level 1, to see whether it compresses.
const SAMPLE: usize = 64 * 1024;

/// Writes gzip members, one per record, reusing deflate states: creating a compressor per record
/// costs about as much as compressing a small record (measured: 18 µs against 11 µs per 300-byte
/// record at level 3).
///
/// Small records (requests, redirects, most error responses, small pages: under
/// [`SMALL_RECORD`]) go through a second state at level 1 at most, which zlib-rs compresses with
/// its fixed Huffman codes: building a block's own codes costs more than the bytes it saves on a
/// few hundred bytes (measured on the built-in site's exchanges, a request and a 700-byte page:
/// 44 µs an exchange with both at level 3, 27 µs with both at level 1; the file 19 % larger).
///
/// Large records ([`LARGE_RECORD`] and up: media, archives) are sampled: when 64 KiB of their
/// data does not shrink by 3 % at level 1, it is already compressed, and the rest of the member
/// is stored as it is (deflate's stored blocks) instead of being compressed for nothing
/// (measured: a crawl of eight 60 MB files of random bytes into tmpfs took 9.5 s with them
/// compressed at level 3, 2.2 s with them stored; 0.7 s without an archive).
pub(crate) struct Members {
    /// At the configured level.
    compress: Compress,
    /// At level 1 at most, for small members.
    quick: Compress,
    /// At level 0, for data that does not compress.
    store: Compress,
    level: u32,
    /// Which of the three the current member goes through.
    current: State,
    /// The current member is large and not sampled yet.
    sample: bool,
    crc: Crc,
    buf: Vec<u8>,
}

/// The deflate states of [`Members`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Compress,
    Quick,
    Store,
}

impl Members {
    pub fn new(level: u32) -> Self {
        let level = level.min(9);
        Members {
            compress: Compress::new(Compression::new(level), false),
            quick: Compress::new(Compression::new(level.min(1)), false),
            store: Compress::new(Compression::none(), false),
            level,
            current: State::Compress,
            sample: false,
            crc: Crc::new(),
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Starts a member whose data will be `len` bytes.
    pub fn begin(&mut self, out: &mut impl Write, len: u64) -> io::Result<()> {
        self.current = if len < SMALL_RECORD {
            State::Quick
        } else {
            State::Compress
        };
        self.sample = len >= LARGE_RECORD && self.level > 0;
        self.state().reset();
        self.crc.reset();
        out.write_all(&GZIP_HEADER)
    }

    fn state(&mut self) -> &mut Compress {
        match self.current {
            State::Compress => &mut self.compress,
            State::Quick => &mut self.quick,
            State::Store => &mut self.store,
        }
    }

    /// Looks at the start of a large member's data, before anything is written to the member:
    /// data that does not compress goes through the storing state instead.
    pub fn sample(&mut self, data: &[u8]) -> io::Result<()> {
        if !std::mem::take(&mut self.sample) || data.len() < SAMPLE {
            return Ok(());
        }
        let mut packed = Vec::with_capacity(SAMPLE + 1024);
        self.quick.reset();
        self.quick
            .compress_vec(&data[..SAMPLE], &mut packed, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if packed.len() as u64 * 100 >= SAMPLE as u64 * 97 {
            self.current = State::Store;
            self.store.reset();
        }
        Ok(())
    }

    /// Compresses `data` into the member.
    pub fn write(&mut self, out: &mut impl Write, data: &[u8]) -> io::Result<()> {
        self.sample = false;
        self.crc.update(data);
        self.deflate(out, data, FlushCompress::None)
    }

    /// Ends the member: the rest of the deflate stream, then CRC-32 and size.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.deflate(out, &[], FlushCompress::Finish)?;
        out.write_all(&self.crc.sum().to_le_bytes())?;
        out.write_all(&self.crc.amount().to_le_bytes())
    }

    fn deflate(
        &mut self,
        out: &mut impl Write,
        mut input: &[u8],
        flush: FlushCompress,
    ) -> io::Result<()> {
        loop {
            self.buf.clear();
            let state = match self.current {
                State::Compress => &mut self.compress,
                State::Quick => &mut self.quick,
                State::Store => &mut self.store,
            };
            let before = state.total_in();
            let status = state
                .compress_vec(input, &mut self.buf, flush)
                .map_err(io::Error::other)?;
            let used = (state.total_in() - before) as usize;
            input = &input[used..];
            out.write_all(&self.buf)?;
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty(),
            };
            if done {
                return Ok(());
            }
            if used == 0 && self.buf.is_empty() {
                return Err(io::Error::other("deflate made no progress"));
            }
        }
    }
}

/// The response head as it goes into the record: as received, except that `Transfer-Encoding`
/// is dropped, because the body that follows has had its transfer coding removed (readers such
/// as warcio and pywb de-chunk a body whose head says `chunked`, and would garble it). Keeping
/// the head but decoding the body is what pywb's own recorder was faulted for (pywb issue 584);
/// decoding and dropping the header is the other form readers accept. A head without its blank
/// line gets one.
pub fn response_head(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 4);
    let mut dropping = false;
    let mut lines = raw.split_inclusive(|&b| b == b'\n').peekable();
    if let Some(status) = lines.next() {
        out.extend_from_slice(status);
    }
    for line in lines {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare.is_empty() {
            break;
        }
        let folded = matches!(line.first(), Some(b' ' | b'\t'));
        if !folded {
            dropping = bare.iter().position(|&b| b == b':').is_some_and(|i| {
                bare[..i]
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"transfer-encoding")
            });
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    if !out.ends_with(b"\n") && !out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The status code and the media type (`text/html`, without parameters; `unk` when none) of a
/// response head, for the index.
pub fn status_and_mime(head: &[u8]) -> (Option<u16>, String) {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    let status = match resp.parse(head) {
        Ok(_) => resp.code,
        Err(_) => None,
    };
    let mime = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .map(|ct| {
            // pywb cuts at the first `;` or space.
            ct.trim()
                .split([';', ' '])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "unk".into());
    (status, mime)
}

/// Where the head of an HTTP message ends (after its blank line), if it does.
pub fn head_end(message: &[u8]) -> Option<usize> {
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| message.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha1_in_base32() {
        // sha1("") and sha1("hello"), as warcio writes them.
        assert_eq!(digest_bytes(b""), "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ");
        assert_eq!(
            digest_bytes(b"hello"),
            "sha1:VL2MMHO4YXUKFWV63YHTWSBM3GXKSQ2N"
        );
        let mut body = io::Cursor::new(b"xxhello".to_vec());
        body.set_position(2);
        let (block, payload, len) = digest_block(b"", &mut body).unwrap();
        assert_eq!((block.as_str(), len), (payload.as_str(), 5));
        assert_eq!(payload, digest_bytes(b"hello"));
        assert_eq!(body.position(), 2, "seeked back");
    }

    #[test]
    fn dates_are_utc() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(warc_date(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(timestamp14(t), "20231114221320");
        assert_eq!(timestamp14(UNIX_EPOCH), "19700101000000");
        // A leap day and the end of a century year.
        assert_eq!(
            timestamp14(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229000000"
        );
        assert_eq!(
            timestamp14(UNIX_EPOCH + Duration::from_secs(4_133_980_799)),
            "21001231235959"
        );
    }

    #[test]
    fn record_ids_are_v4_urns() {
        let id = record_id();
        assert_eq!(id.len(), "<urn:uuid:>".len() + 36, "{id}");
        assert!(id.starts_with("<urn:uuid:") && id.ends_with('>'));
        assert_eq!(&id[24..25], "4", "{id}");
        assert_ne!(id, record_id());
    }

    #[test]
    fn header_values_cannot_inject_fields() {
        let mut f = Fields::default();
        f.push("WARC-Target-URI", "http://x/\r\nWARC-Type: evil");
        let head = String::from_utf8(f.head(0)).unwrap();
        assert_eq!(
            head,
            "WARC/1.1\r\nWARC-Target-URI: http://x/%0D%0AWARC-Type: evil\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn transfer_encoding_is_dropped_from_the_head() {
        let raw = b"HTTP/1.1 200 OK\r\nDate: x\r\nTransfer-Encoding: chunked\r\n\tfolded\r\nContent-Type: text/html; charset=utf-8\r\n\r\n";
        assert_eq!(
            response_head(raw),
            b"HTTP/1.1 200 OK\r\nDate: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        );
        assert_eq!(
            response_head(b"HTTP/1.0 404 Not Found"),
            b"HTTP/1.0 404 Not Found\r\n\r\n"
        );
        assert_eq!(
            status_and_mime(&response_head(raw)),
            (Some(200), "text/html".to_string())
        );
        assert_eq!(
            status_and_mime(b"HTTP/1.1 301 Moved\r\n\r\n"),
            (Some(301), "unk".into())
        );
    }

    #[test]
    fn large_data_that_does_not_compress_is_stored() {
        let mut x: u64 = 1;
        let noise: Vec<u8> = (0..2 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let text = b"a line of text that compresses well\n".repeat(60_000);
        for (data, most) in [
            (&noise, noise.len() + noise.len() / 500),
            (&text, text.len() / 20),
        ] {
            let mut m = Members::new(3);
            let mut out = Vec::new();
            m.begin(&mut out, data.len() as u64).unwrap();
            m.sample(&data[..64 * 1024]).unwrap();
            m.write(&mut out, data).unwrap();
            m.finish(&mut out).unwrap();
            assert!(out.len() <= most, "{} bytes for {}", out.len(), data.len());
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(&back == data);
        }
    }

    #[test]
    fn members_are_plain_gzip() {
        let mut m = Members::new(3);
        let mut out = Vec::new();
        for text in [&b"first record"[..], &[7u8; 300_000][..]] {
            m.begin(&mut out, text.len() as u64).unwrap();
            m.sample(text).unwrap();
            m.write(&mut out, text).unwrap();
            m.finish(&mut out).unwrap();
        }
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(&all[..12], b"first record");
        assert_eq!(all.len(), 12 + 300_000);
    }
}
