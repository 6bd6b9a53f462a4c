//! CDXJ index lines: `urlkey timestamp {json}`, one per archived response, in the form pywb and
//! `cdxj-indexer` read and write.
//!
//! Owns the line format (build, print, parse), the urlkey (the SURT form of a URL, as the Python
//! `surt` package makes it, which pywb uses to look URLs up) and reading an index robustly.
//!
//! The same lines index the files a crawl saves (`{"url","status","mime","length","digest",
//! "file"}`), so a resumed crawl can tell which URL owns which file: [`Line`] keeps every field
//! optional except the URL, and keeps fields it does not know.
//!
//! Values follow pywb: `status`, `length` and `offset` are written as JSON strings (`"200"`) and
//! read as strings or numbers; `digest` keeps its algorithm prefix (`sha1:…`), as
//! `cdxj-indexer` writes it (pywb's own indexer drops it; pywb reads both). An index is sorted by
//! the bytes of its lines (`LC_ALL=C sort`), which is what pywb's binary search expects.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::SystemTime;

use regex::bytes::Regex;
use serde_json::{Map, Value};

use super::warc::timestamp14;

/// One index line. Build it with [`Line::new`] and set the fields that apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    /// The SURT key of `url` (see [`urlkey`]).
    pub urlkey: String,
    /// `YYYYmmddHHMMSS`, UTC.
    pub timestamp: String,
    /// The URL as fetched.
    pub url: String,
    /// The media type of the response, without parameters (`text/html`).
    pub mime: Option<String>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// The payload digest, `sha1:` and base32.
    pub digest: Option<String>,
    /// In a WARC index, the compressed length of the record; in a files index, the file's size.
    pub length: Option<u64>,
    /// Where the record's gzip member starts in the WARC file.
    pub offset: Option<u64>,
    /// The WARC file's name.
    pub filename: Option<String>,
    /// In a files index, the saved file (relative to the crawl's folder).
    pub file: Option<String>,
    /// Any other field, in the order met (kept so a line read and written again loses nothing).
    pub extra: Vec<(String, Value)>,
}

impl Line {
    /// A line for `url` fetched at `when`, with its urlkey and timestamp and no other field.
    pub fn new(url: &str, when: SystemTime) -> Line {
        Line {
            urlkey: urlkey(url),
            timestamp: timestamp14(when),
            url: url.to_string(),
            ..Line::default()
        }
    }

    /// Parses one line (without its newline).
    pub fn parse(text: &str) -> Result<Line, LineError> {
        let text = text.trim_end_matches(['\r', '\n']);
        let mut parts = text.splitn(3, ' ');
        let (Some(urlkey), Some(timestamp), Some(json)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(LineError("not `urlkey timestamp {json}`".into()));
        };
        if urlkey.is_empty()
            || timestamp.is_empty()
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(LineError(format!(
                "bad urlkey or timestamp: {urlkey:?} {timestamp:?}"
            )));
        }
        let map: Map<String, Value> =
            serde_json::from_str(json).map_err(|e| LineError(format!("bad JSON: {e}")))?;
        let mut line = Line {
            urlkey: urlkey.to_string(),
            timestamp: timestamp.to_string(),
            ..Line::default()
        };
        for (name, value) in map {
            match name.as_str() {
                "url" => line.url = as_string(&value).unwrap_or_default(),
                "mime" => line.mime = as_string(&value),
                "digest" => line.digest = as_string(&value),
                "filename" => line.filename = as_string(&value),
                "file" => line.file = as_string(&value),
                "status" => line.status = as_number(&value).and_then(|n| u16::try_from(n).ok()),
                "length" => line.length = as_number(&value),
                "offset" => line.offset = as_number(&value),
                _ => line.extra.push((name, value)),
            }
        }
        if line.url.is_empty() {
            return Err(LineError("no url".into()));
        }
        Ok(line)
    }
}

/// Why a line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CDXJ line: {0}")]
pub struct LineError(String);

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl fmt::Display for Line {
    /// pywb's layout: `urlkey timestamp {"url": "…", "mime": "…", "status": "200", …}` (with
    /// Python's `", "` and `": "` separators, so our lines read like the ones pywb writes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {{", self.urlkey, self.timestamp)?;
        let mut first = true;
        let mut field = |f: &mut fmt::Formatter<'_>, name: &str, value: &str| -> fmt::Result {
            let sep = if first { "" } else { ", " };
            first = false;
            write!(f, "{sep}{}: {}", json_str(name), json_str(value))
        };
        field(f, "url", &self.url)?;
        if let Some(mime) = &self.mime {
            field(f, "mime", mime)?;
        }
        if let Some(status) = self.status {
            field(f, "status", &status.to_string())?;
        }
        if let Some(digest) = &self.digest {
            field(f, "digest", digest)?;
        }
        if let Some(length) = self.length {
            field(f, "length", &length.to_string())?;
        }
        if let Some(offset) = self.offset {
            field(f, "offset", &offset.to_string())?;
        }
        if let Some(filename) = &self.filename {
            field(f, "filename", filename)?;
        }
        if let Some(file) = &self.file {
            field(f, "file", file)?;
        }
        for (name, value) in &self.extra {
            let sep = if first { "" } else { ", " };
            first = false;
            write!(f, "{sep}{}: {value}", json_str(name))?;
        }
        f.write_str("}")
    }
}

fn json_str(s: &str) -> String {
    // A string always serializes; the fallback only keeps this total.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Sorts lines the way pywb's binary search expects: by the bytes of the printed line.
pub fn sort(lines: &mut [Line]) {
    lines.sort_by_cached_key(|l| l.to_string());
}

/// Writes `lines`, sorted, to `path`: through a temp file in the same folder and a rename, so the
/// index under its final name is always whole.
pub fn write_sorted(path: &Path, lines: &mut [Line]) -> io::Result<()> {
    sort(lines);
    let mut tmp = part_file(path)?;
    {
        let mut out = io::BufWriter::new(tmp.as_file_mut());
        for line in lines.iter() {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Lines held in memory before [`Runs`] sorts them into a run on disk.
pub const RUN_BYTES: usize = 4 << 20;

/// The lines of an index being gathered, to be written sorted at the end ([`Runs::write`]):
/// held in memory up to [`RUN_BYTES`], then sorted and spilled to an anonymous temp file (a run)
/// in the index's folder, the runs merged when the index is written. So memory stays bounded
/// however many lines an index gets: a 1 GB WARC file of small pages has about a million.
pub struct Runs {
    dir: PathBuf,
    held: Vec<String>,
    held_bytes: usize,
    runs: Vec<File>,
    lines: u64,
    /// A run that could not be spilled: the lines stay in memory, and writing the index fails
    /// with this (the WARC file then stays `.open`, and is indexed again by `recover`).
    error: Option<io::Error>,
}

impl Runs {
    /// Lines for an index in `dir` (where runs are spilled too).
    pub fn new(dir: &Path) -> Self {
        Runs {
            dir: dir.to_path_buf(),
            held: Vec::new(),
            held_bytes: 0,
            runs: Vec::new(),
            lines: 0,
            error: None,
        }
    }

    /// Adds a line.
    pub fn push(&mut self, line: &Line) {
        let text = line.to_string();
        self.held_bytes += text.len() + std::mem::size_of::<String>();
        self.held.push(text);
        self.lines += 1;
        if self.held_bytes >= RUN_BYTES && self.error.is_none() {
            if let Err(e) = self.spill() {
                self.error = Some(e);
            }
        }
    }

    /// The lines added so far.
    pub fn len(&self) -> u64 {
        self.lines
    }

    /// True when no line was added.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Sorts the lines held and writes them to a run of their own.
    fn spill(&mut self) -> io::Result<()> {
        self.held.sort_unstable();
        let mut run = io::BufWriter::new(tempfile::tempfile_in(&self.dir)?);
        for line in &self.held {
            run.write_all(line.as_bytes())?;
            run.write_all(b"\n")?;
        }
        let mut run = run.into_inner().map_err(|e| e.into_error())?;
        run.seek(SeekFrom::Start(0))?;
        self.runs.push(run);
        self.held.clear();
        self.held_bytes = 0;
        Ok(())
    }

    /// Writes every line, sorted, to `path`: through a temp file in the same folder and a
    /// rename, so the index under its final name is always whole.
    pub fn write(mut self, path: &Path) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut tmp = part_file(path)?;
        {
            let mut out = io::BufWriter::new(tmp.as_file_mut());
            if self.runs.is_empty() {
                self.held.sort_unstable();
                for line in &self.held {
                    out.write_all(line.as_bytes())?;
                    out.write_all(b"\n")?;
                }
            } else {
                self.spill()?;
                merge(std::mem::take(&mut self.runs), &mut out)?;
            }
            out.flush()?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Merges sorted runs (one line per `\n`) into `out`, in byte order.
fn merge(runs: Vec<File>, out: &mut impl Write) -> io::Result<()> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut readers: Vec<io::BufReader<File>> = runs
        .into_iter()
        .map(|f| io::BufReader::with_capacity(64 * 1024, f))
        .collect();
    let mut heap = BinaryHeap::new();
    let next = |r: &mut io::BufReader<File>| -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        Ok((r.read_until(b'\n', &mut line)? > 0).then_some(line))
    };
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some(line) = next(r)? {
            heap.push(Reverse((line, i)));
        }
    }
    while let Some(Reverse((line, i))) = heap.pop() {
        out.write_all(&line)?;
        if let Some(line) = next(&mut readers[i])? {
            heap.push(Reverse((line, i)));
        }
    }
    Ok(())
}

/// A temp file beside `path`, with the usual 0666 less the umask (as the WARC files get, not
/// tempfile's private 0600).
fn part_file(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    tempfile::Builder::new()
        .prefix(".flags-")
        .suffix(".cdxj.part")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir.unwrap_or(Path::new(".")))
}

/// Reads the lines of an index. A last line cut short by a crash (no newline, and not a whole
/// line) is skipped and reported by [`Lines::torn`]; any other bad line is an `Err` item, and
/// reading goes on after it.
pub fn read<R: BufRead>(input: R) -> Lines<R> {
    Lines {
        input,
        buf: Vec::new(),
        number: 0,
        torn: false,
    }
}

/// The lines of an index, from [`read`].
pub struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    number: u64,
    torn: bool,
}

impl<R> Lines<R> {
    /// True when the last line was cut short (and skipped).
    pub fn torn(&self) -> bool {
        self.torn
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<Line, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(LineError(format!("read error: {e}")))),
            }
            self.number += 1;
            let whole = self.buf.ends_with(b"\n");
            let text = String::from_utf8_lossy(&self.buf);
            if text.trim().is_empty() {
                continue;
            }
            return match Line::parse(&text) {
                Ok(line) => Some(Ok(line)),
                Err(_) if !whole => {
                    self.torn = true;
                    None
                }
                Err(LineError(why)) => Some(Err(LineError(format!("line {}: {why}", self.number)))),
            };
        }
    }
}

/// Opens an index to append lines to, creating it if missing. A last line cut short by a crash
/// is cut off first, so the next line starts on a line of its own and the file holds only whole
/// lines.
pub fn open_append(path: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = file.seek(SeekFrom::End(0))?;
    if len > 0 {
        // Look back for the last newline, a block at a time.
        let mut end = len;
        let mut keep = 0;
        let mut block = vec![0u8; 64 * 1024];
        'scan: while end > 0 {
            let start = end.saturating_sub(block.len() as u64);
            let n = (end - start) as usize;
            file.seek(SeekFrom::Start(start))?;
            file.read_exact(&mut block[..n])?;
            if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
                keep = start + i as u64 + 1;
                break 'scan;
            }
            end = start;
        }
        if keep < len {
            file.set_len(keep)?;
        }
        file.seek(SeekFrom::Start(keep))?;
    }
    Ok(file)
}

/// The SURT key of a URL, as pywb looks it up (the Python `surt` package with its default
/// Internet Archive canonicalizer): scheme, user info and fragment dropped, host lowercased with a
/// leading `www`/`wwwN` dropped and its labels reversed (`com,example`), a port other than the
/// default kept, `)` then the path (percent-escapes decoded and made minimal, dot segments and
/// empty segments removed, a trailing slash dropped) and the query (common session ids dropped,
/// arguments sorted), all lowercased: `com,example)/path?a=1&b=2`. Something that is not a URL
/// with a host is only lowercased.
///
/// Checked against `surt` on 4,000 URLs (the Python docs' paths, and random hosts, paths and
/// queries with escapes, dot segments, session ids): the one difference is `..` above the root
/// (`http://h/../x`), which the url crate drops, as browsers do before they ask pywb, and `surt`
/// keeps. The crawl's URLs come from the url crate, so they never have one.
pub fn urlkey(url: &str) -> String {
    let cleaned: String = url
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let Ok(parsed) = url::Url::parse(&cleaned) else {
        return cleaned.to_lowercase();
    };
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => {
            let d = unescape(d.as_bytes());
            let mut d = String::from_utf8_lossy(&d).to_lowercase();
            while d.contains("..") {
                d = d.replace("..", ".");
            }
            let d = d.trim_matches('.');
            let d = strip_www(d);
            d.split('.').rev().collect::<Vec<_>>().join(",")
        }
        Some(url::Host::Ipv4(ip)) => {
            let o = ip.octets();
            format!("{},{},{},{}", o[3], o[2], o[1], o[0])
        }
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return cleaned.to_lowercase(),
    };
    let mut key = host;
    if let Some(port) = parsed.port() {
        key.push_str(&format!(":{port}"));
    }
    key.push(')');
    let path = normalize_path(&unescape(parsed.path().as_bytes()));
    let mut path = escape_once(&path).to_ascii_lowercase();
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    key.push_str(&path);
    if let Some(query) = parsed.query() {
        let query = escape_once(&unescape(query.as_bytes()));
        let query = strip_session_ids(query.as_bytes());
        let query = String::from_utf8_lossy(&query).to_ascii_lowercase();
        let query = sort_query(&query);
        if !query.is_empty() {
            key.push('?');
            key.push_str(&query);
        }
    }
    key
}

fn strip_www(host: &str) -> &str {
    let Some(rest) = host.strip_prefix("www") else {
        return host;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.strip_prefix('.').unwrap_or(host)
}

/// Percent-decodes until nothing changes (`%2541` → `%41` → `A`), as `surt` does.
fn unescape(input: &[u8]) -> Vec<u8> {
    let mut cur = input.to_vec();
    loop {
        let next: Vec<u8> = percent_encoding::percent_decode(&cur).collect();
        if next == cur {
            return cur;
        }
        cur = next;
    }
}

/// Escapes what `surt` escapes: controls, space, `#`, `%`, and bytes past ASCII.
fn escape_once(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if b <= 0x20 || b >= 0x7f || b == b'#' || b == b'%' {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Resolves `.` and `..` and drops empty segments (but keeps a trailing slash).
fn normalize_path(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b"/".to_vec();
    }
    let mut kept: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&b| b == b'/').skip(1) {
        match seg {
            b"." => {}
            b".." => {
                if kept.pop().is_none() {
                    kept.push(seg);
                }
            }
            _ => kept.push(seg),
        }
    }
    let mut out = b"/".to_vec();
    if let Some((last, init)) = kept.split_last() {
        for seg in init.iter().filter(|s| !s.is_empty()) {
            out.extend_from_slice(seg);
            out.push(b'/');
        }
        out.extend_from_slice(last);
    }
    out
}

static SESSION_IDS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"(?i)^(.*)(?:jsessionid=[0-9a-zA-Z]{32})(?:&(.*))?$",
        r"(?i)^(.*)(?:phpsessid=[0-9a-zA-Z]{32})(?:&(.*))?$",
        r"(?i)^(.*)(?:sid=[0-9a-zA-Z]{32})(?:&(.*))?$",
        r"(?i)^(.*)(?:ASPSESSIONID[a-zA-Z]{8}=[a-zA-Z]{24})(?:&(.*))?$",
        r"(?i)^(.*)(?:cfid=[^&]+&cftoken=[^&]+)(?:&(.*))?$",
    ]
    .iter()
    .filter_map(|re| Regex::new(re).ok())
    .collect()
});

/// Drops the session ids the Internet Archive's canonicalizer drops.
fn strip_session_ids(query: &[u8]) -> Vec<u8> {
    let mut q = query.to_vec();
    for re in SESSION_IDS.iter() {
        if let Some(caps) = re.captures(&q) {
            let mut next = caps
                .get(1)
                .map(|m| m.as_bytes().to_vec())
                .unwrap_or_default();
            if let Some(rest) = caps.get(2).filter(|m| !m.as_bytes().is_empty()) {
                next.extend_from_slice(rest.as_bytes());
            }
            q = next;
        }
    }
    q
}

/// Sorts the query's arguments by name, then value (an argument without `=` first).
fn sort_query(query: &str) -> String {
    if query.len() <= 1 {
        return query.to_string();
    }
    let mut args: Vec<(&str, Option<&str>)> = query
        .split('&')
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (a, None),
        })
        .collect();
    args.sort();
    args.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlkeys_match_the_python_surt_package() {
        // Pinned from `surt.surt(url)` (surt 0.3.1, the one pywb 2.10 installs).
        let cases = [
            (
                "http://www.Example.com/Path/?b=2&a=1",
                "com,example)/path?a=1&b=2",
            ),
            ("https://example.com:8443/x%20y", "com,example:8443)/x%20y"),
            ("http://127.0.0.1:8080/", "1,0,0,127:8080)/"),
            ("http://example.com", "com,example)/"),
            ("http://example.com:80/a/../b/./c//d/", "com,example)/b/c/d"),
            (
                "https://www2.example.com/index.html?",
                "com,example)/index.html",
            ),
            ("http://example.com/%7Efoo/%2541", "com,example)/~foo/a"),
            (
                "http://example.com/caf%C3%A9?q=%C3%A9t%C3%A9&A=B&a",
                "com,example)/caf%c3%a9?a&a=b&q=%c3%a9t%c3%a9",
            ),
            (
                "http://example.com/?jsessionid=0123456789abcdef0123456789abcdef&x=1",
                "com,example)/?x=1",
            ),
            (
                "http://user:pw@sub.example.co.uk/p#frag",
                "uk,co,example,sub)/p",
            ),
            (
                "http://example.com/a%23b?c%26d=1",
                "com,example)/a%23b?c&d=1",
            ),
            ("http://[::1]:8080/x", "::1:8080)/x"),
            ("http://xn--bcher-kva.example/", "example,xn--bcher-kva)/"),
            (
                "http://example.com/path;params?x=%20y+z",
                "com,example)/path;params?x=%20y+z",
            ),
            ("http://example.com/?b&a=&a", "com,example)/?a&a=&b"),
        ];
        for (url, key) in cases {
            assert_eq!(urlkey(url), key, "{url}");
        }
    }

    #[test]
    fn lines_print_like_pywb_and_parse_back() {
        let mut line = Line::new(
            "http://www.Example.com/Path/?b=2&a=1",
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        );
        line.mime = Some("text/html".into());
        line.status = Some(200);
        line.digest = Some("sha1:VL2MMHO4YXUKFWV63YHTWSBM3GXKSQ2N".into());
        line.length = Some(347);
        line.offset = Some(254);
        line.filename = Some("py.warc.gz".into());
        let text = line.to_string();
        assert_eq!(
            text,
            "com,example)/path?a=1&b=2 20231114221320 {\"url\": \"http://www.Example.com/Path/?b=2&a=1\", \
             \"mime\": \"text/html\", \"status\": \"200\", \"digest\": \"sha1:VL2MMHO4YXUKFWV63YHTWSBM3GXKSQ2N\", \
             \"length\": \"347\", \"offset\": \"254\", \"filename\": \"py.warc.gz\"}"
        );
        assert_eq!(Line::parse(&text).unwrap(), line);
        // Numbers as numbers, unknown fields kept.
        let files = Line::parse(
            "com,example)/ 20240101000000 {\"url\":\"http://example.com/\",\"status\":404,\"length\":0,\"file\":\"example.com/index\",\"x\":[1]}",
        )
        .unwrap();
        assert_eq!(files.status, Some(404));
        assert_eq!(files.length, Some(0));
        assert_eq!(files.file.as_deref(), Some("example.com/index"));
        assert_eq!(files.extra, vec![("x".to_string(), serde_json::json!([1]))]);
        assert!(Line::parse(&files.to_string()).unwrap() == files);
        for bad in [
            "",
            "a b",
            "a b {}",
            "a 2024 {\"url\": 1",
            "a x {\"url\":\"u\"}",
        ] {
            assert!(Line::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_cut_before_appending() {
        let a = Line::new("http://a/", SystemTime::UNIX_EPOCH).to_string();
        let b = Line::new("http://b/", SystemTime::UNIX_EPOCH).to_string();
        let text = format!("{a}\ngarbage\n{b}\n{}", &b[..b.len() - 3]);
        let mut lines = read(text.as_bytes());
        let got: Vec<_> = lines.by_ref().collect();
        assert_eq!(got.len(), 3);
        assert!(got[0].is_ok() && got[1].is_err() && got[2].is_ok());
        assert!(lines.torn());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("files.cdxj");
        std::fs::write(&path, format!("{a}\n{}", &b[..10])).unwrap();
        let mut f = open_append(&path).unwrap();
        writeln!(f, "{b}").unwrap();
        drop(f);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{a}\n{b}\n")
        );
    }

    #[test]
    fn sorting_is_by_bytes_of_the_line() {
        let t = SystemTime::UNIX_EPOCH;
        let mut lines: Vec<Line> = ["http://b.com/", "http://a.com/x", "http://a.com/"]
            .iter()
            .map(|u| Line::new(u, t))
            .collect();
        sort(&mut lines);
        let keys: Vec<_> = lines.iter().map(|l| l.urlkey.as_str()).collect();
        assert_eq!(keys, ["com,a)/", "com,a)/x", "com,b)/"]);
    }

    #[test]
    fn runs_spill_to_disk_and_merge_into_one_sorted_index() {
        let dir = tempfile::tempdir().unwrap();
        let t = SystemTime::UNIX_EPOCH;
        // Enough lines for several runs, in an order far from sorted.
        let mut lines: Vec<Line> = (0..40_000u64)
            .map(|i| {
                let mut l = Line::new(&format!("http://h{}.com/p/{i}", i * 7919 % 101), t);
                l.offset = Some(i);
                l.filename = Some("x".repeat(100));
                l
            })
            .collect();
        let mut runs = Runs::new(dir.path());
        for l in &lines {
            runs.push(l);
        }
        assert!(runs.runs.len() >= 2, "{} runs", runs.runs.len());
        assert_eq!(runs.len(), 40_000);
        runs.write(&dir.path().join("merged.cdxj")).unwrap();
        write_sorted(&dir.path().join("sorted.cdxj"), &mut lines).unwrap();
        let merged = std::fs::read(dir.path().join("merged.cdxj")).unwrap();
        assert!(merged == std::fs::read(dir.path().join("sorted.cdxj")).unwrap());
        // Only the two indexes are left: runs are anonymous files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
