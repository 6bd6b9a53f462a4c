//! Reading `.warc.gz` files back, one gzip member (one record) at a time: to finish a file a
//! killed writer left (find its last complete record, index it), and for tests.
//!
//! Owns nothing but the reading: it checks what a record's framing promises (a `WARC/1.x` head,
//! `Content-Length` bytes of block, the `\r\n\r\n` after it, all in one gzip member), not the
//! digests.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::time::UNIX_EPOCH;

use super::cdxj::Line;
use super::warc;

/// What is kept of a record's decompressed bytes when payloads are not asked for: enough for the
/// WARC head and an HTTP head.
const PREFIX_KEPT: usize = 128 * 1024;

/// One record of a file.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where its gzip member starts.
    pub offset: u64,
    /// The member's length (compressed).
    pub length: u64,
    /// The WARC header fields, in order.
    pub fields: Vec<(String, String)>,
    /// The block's length (`Content-Length`).
    pub block_len: u64,
    /// The HTTP head at the start of the block, for `application/http` records.
    pub http_head: Option<Vec<u8>>,
    /// The payload (the block after the HTTP head, or the whole block), when asked for with
    /// [`Reader::with_payloads`].
    pub payload: Option<Vec<u8>>,
}

impl Record {
    /// The first field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `WARC-Type`.
    pub fn kind(&self) -> &str {
        self.field("WARC-Type").unwrap_or_default()
    }
}

/// The records of a `.warc.gz`, in order. The first member that is not a whole record ends the
/// iteration with an `Err`.
pub struct Reader {
    input: BufReader<File>,
    payloads: bool,
    done: bool,
}

/// Opens a `.warc.gz` to read its records.
pub fn open(path: &Path) -> io::Result<Reader> {
    Ok(Reader {
        input: BufReader::with_capacity(256 * 1024, File::open(path)?),
        payloads: false,
        done: false,
    })
}

impl Reader {
    /// Also keep each record's payload in memory (for tests and small files).
    pub fn with_payloads(mut self, yes: bool) -> Self {
        self.payloads = yes;
        self
    }

    fn next_record(&mut self) -> io::Result<Option<Record>> {
        let offset = self.input.stream_position()?;
        if self.input.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut kept = Vec::new();
        let mut tail = [0u8; 4];
        let mut total = 0u64;
        {
            let mut member = flate2::bufread::GzDecoder::new(&mut self.input);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match member.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let piece = &buf[..n];
                if self.payloads || kept.len() < PREFIX_KEPT {
                    let room = if self.payloads {
                        n
                    } else {
                        (PREFIX_KEPT - kept.len()).min(n)
                    };
                    kept.extend_from_slice(&piece[..room]);
                }
                // The last four bytes seen, across pieces.
                for &b in piece.iter().rev().take(4).rev() {
                    tail.rotate_left(1);
                    tail[3] = b;
                }
                total += n as u64;
            }
        }
        let length = self.input.stream_position()? - offset;
        let bad =
            |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("at {offset}: {why}"));
        if !kept.starts_with(b"WARC/1.") {
            return Err(bad("not a WARC record"));
        }
        let head_len = warc::head_end(&kept).ok_or_else(|| bad("no end of the WARC head"))?;
        let fields = parse_fields(&kept[..head_len]);
        let block_len: u64 = fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .ok_or_else(|| bad("no Content-Length"))?;
        if total != head_len as u64 + block_len + 4 || &tail != b"\r\n\r\n" {
            return Err(bad("the member does not hold exactly one whole record"));
        }
        let block = &kept[head_len..];
        let is_http = fields.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("Content-Type") && v.starts_with("application/http")
        });
        let http_end = if is_http { warc::head_end(block) } else { None };
        let http_head = http_end.map(|end| block[..end].to_vec());
        let payload = self.payloads.then(|| {
            let end = (block_len as usize).min(block.len());
            block[http_end.unwrap_or(0).min(end)..end].to_vec()
        });
        Ok(Some(Record {
            offset,
            length,
            fields,
            block_len,
            http_head,
            payload,
        }))
    }
}

impl Iterator for Reader {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn parse_fields(head: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(head)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// What a file holds, read to its first broken member.
#[derive(Debug)]
pub struct Scan {
    /// Complete records.
    pub records: u64,
    /// Where the last complete record ends.
    pub valid_len: u64,
    /// The file's length.
    pub file_len: u64,
    /// The index lines of its response records (`filename` unset).
    pub lines: Vec<Line>,
}

/// Reads a file to its end or its first broken member (a torn last record).
pub fn scan(path: &Path) -> io::Result<Scan> {
    let file_len = std::fs::metadata(path)?.len();
    let mut scan = Scan {
        records: 0,
        valid_len: 0,
        file_len,
        lines: Vec::new(),
    };
    for record in open(path)? {
        let Ok(record) = record else { break };
        scan.records += 1;
        scan.valid_len = record.offset + record.length;
        if record.kind() == "response" {
            scan.lines.push(index_line(&record));
        }
    }
    Ok(scan)
}

/// The index line of a response record (without `filename`).
pub fn index_line(record: &Record) -> Line {
    let url = record.field("WARC-Target-URI").unwrap_or_default();
    let mut line = Line::new(url, UNIX_EPOCH);
    // WARC-Date `2024-05-01T12:34:56.123456Z` → `20240501123456`.
    let digits: String = record
        .field("WARC-Date")
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    if digits.len() == 14 {
        line.timestamp = digits;
    }
    let (status, mime) = warc::status_and_mime(record.http_head.as_deref().unwrap_or_default());
    line.status = status;
    line.mime = Some(mime);
    line.digest = record.field("WARC-Payload-Digest").map(str::to_string);
    line.length = Some(record.length);
    line.offset = Some(record.offset);
    line
}
