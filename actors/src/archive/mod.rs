//! The web archive of a crawl: every exchange (pages, assets, robots.txt, sitemaps, redirects,
//! 404s, error responses) recorded as WARC/1.1 `request` and `response` records in `.warc.gz`
//! files, with a CDXJ index that pywb can replay from.
//!
//! Owns the archive files of one writer: their names, rotation, and what a crash leaves.
//! [`warc`] owns the bytes of a record, [`cdxj`] the index lines, [`read`] reading files back.
//!
//! # Files
//!
//! A writer ([`WarcWriter`]) writes `{prefix}-{YYYYmmddHHMMSS}-{serial:05}.warc.gz` in its folder.
//! Each file opens with a `warcinfo` record; each record is its own gzip member. Once a file has
//! reached [`WarcOptions::max_size`], the next exchange goes to a new file (an exchange's records
//! always share a file). A file is never appended to nor rewritten once closed: a resumed crawl
//! starts a new file. Several writers (workers, or writer threads) share a folder only under
//! different prefixes.
//!
//! # Crashes
//!
//! A file being written is named `….warc.gz.open`, and becomes `….warc.gz` when closed (after an
//! fsync). Each exchange's two records are written whole, then flushed to the system (fsynced
//! too with [`WarcOptions::fsync_each`]), so after `kill -9` the `.open` file holds complete
//! records and at most one torn last member (and, if the kill fell between the two, a request
//! whose response never came: harmless to readers). When a writer is created it finishes the
//! `.open` files of its prefix ([`recover`]; [`recover_worker`] for all of a worker's prefixes):
//! cuts any torn tail (found by reading the file back member by member), writes their index, and
//! renames them. A failed exchange (a body that cannot be read, a full disk) cuts the file back to
//! where the exchange started, so a live file never holds a broken record either.
//!
//! # Index
//!
//! With [`WarcOptions::index`] (the default), closing a file writes `….warc.gz.cdxj` beside it:
//! one line per response record, sorted as pywb wants. The lines wait in memory up to 4 MiB,
//! then in sorted runs on disk ([`cdxj::Runs`]), so a writer's memory does not grow with its
//! file. Each [`WarcWriter::write_exchange`] also
//! returns its line, for an index of the whole crawl kept elsewhere.
//!
//! # Threads
//!
//! A writer is plain blocking code, meant for the engine's writer threads: give each thread its
//! own writer and prefix (compression then runs on all of them at once), or share one behind a
//! mutex.

pub mod cdxj;
pub mod read;
pub mod warc;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cdxj::Line;
use warc::{Fields, Members};

/// The gzip level, chosen by measurement on one core (the 530 pages of the Python 3.11 HTML docs,
/// 50.7 MB, one member per page, zlib-rs): level 1 383 MB/s at ratio 4.6, level 3 191 MB/s at
/// 6.3, level 6 105 MB/s at 6.9. Level 3 keeps 92 % of level 6's saving at nearly twice its
/// speed; the whole writer (digests, index, files) then records about 1,160 such pages (96 KB
/// each) a second per thread.
pub const DEFAULT_GZIP_LEVEL: u32 = 3;

/// The default size at which a file is closed and the next one started (1 GB, as Heritrix).
pub const DEFAULT_MAX_SIZE: u64 = 1_000_000_000;

/// How a [`WarcWriter`] names, sizes and fills its files.
#[derive(Debug, Clone)]
pub struct WarcOptions {
    dir: PathBuf,
    prefix: String,
    max_size: u64,
    gzip_level: u32,
    index: bool,
    fsync_each: bool,
    software: String,
    info: Vec<(String, String)>,
}

impl WarcOptions {
    /// Files in `dir` (created if missing), named after `prefix`, which must be unique among the
    /// writers of that folder that run at once (a worker id, and a thread number). Characters
    /// other than ASCII letters, digits, `-`, `_` and `.` are replaced by `_`.
    pub fn new(dir: impl Into<PathBuf>, prefix: &str) -> Self {
        let prefix: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        WarcOptions {
            dir: dir.into(),
            prefix: if prefix.is_empty() {
                "flags".into()
            } else {
                prefix
            },
            max_size: DEFAULT_MAX_SIZE,
            gzip_level: DEFAULT_GZIP_LEVEL,
            index: true,
            fsync_each: false,
            software: format!("flags/{}", env!("CARGO_PKG_VERSION")),
            info: Vec::new(),
        }
    }

    /// Start a new file once the current one has this many bytes (`--warc-max-size`).
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes.max(1);
        self
    }

    /// The gzip level, 0 to 9 (default [`DEFAULT_GZIP_LEVEL`]).
    pub fn gzip_level(mut self, level: u32) -> Self {
        self.gzip_level = level.min(9);
        self
    }

    /// Whether to write a sorted `.cdxj` beside each closed file (default true).
    pub fn index(mut self, yes: bool) -> Self {
        self.index = yes;
        self
    }

    /// Whether to fsync after every exchange, not only when a file is closed (default false: a
    /// killed process loses nothing written either way; a power cut may lose the last records).
    pub fn fsync_each(mut self, yes: bool) -> Self {
        self.fsync_each = yes;
        self
    }

    /// The same options for one worker of several sharing the folder: the prefix becomes
    /// `{prefix}-{worker}` (made safe as in [`WarcOptions::new`]).
    pub fn worker(self, worker: &str) -> Self {
        let prefix = format!("{}-{worker}", self.prefix);
        let safe = WarcOptions::new(&self.dir, &prefix).prefix;
        WarcOptions {
            prefix: safe,
            ..self
        }
    }

    /// The folder the files go in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The prefix of the files' names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The size at which a file is closed.
    pub fn max_file_size(&self) -> u64 {
        self.max_size
    }

    /// The `software` of the `warcinfo` records (default `flags/{version}`).
    pub fn software(mut self, software: impl Into<String>) -> Self {
        self.software = software.into();
        self
    }

    /// A field of the `warcinfo` records, such as the crawl's options (`robots: obey`,
    /// `http-header-user-agent: …`, `flags-max-depth: 3`). Repeatable, kept in order.
    pub fn info(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.info.push((name.into(), value.into()));
        self
    }
}

/// One HTTP exchange to record. The response body is given apart, as a reader.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    /// The URL requested (`WARC-Target-URI` of both records).
    pub url: &'a str,
    /// When the request was sent (`WARC-Date` of both records).
    pub date: SystemTime,
    /// The server's address, when known (`WARC-IP-Address`).
    pub ip: Option<IpAddr>,
    /// The request as sent: request line, headers, blank line, and its body if any.
    pub request: &'a [u8],
    /// The response's status line and headers as received, with their blank line.
    /// `Transfer-Encoding` is dropped from it (see [`warc::response_head`]).
    pub response_head: &'a [u8],
    /// Set when the body given is not the whole body the server sent: the reason
    /// (`WARC-Truncated`: `length`, `time`, `disconnect` or `unspecified`).
    pub truncated: Option<&'a str>,
}

/// What a crawl's archive holds when the crawl is over ([`Summary::archive`](crate::Summary)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveSummary {
    /// Exchanges recorded (a request and a response record each).
    pub exchanges: u64,
    /// Of those, the ones whose body is not all the server sent (`WARC-Truncated`).
    pub truncated: u64,
    /// Exchanges that could not be recorded (each left no trace in the files).
    pub failed: u64,
    /// The first thing that went wrong, if anything did.
    pub error: Option<String>,
    /// The files written, under their final names (each with its `.cdxj` beside it).
    pub files: Vec<PathBuf>,
    /// Their size on disk.
    pub bytes: u64,
}

/// Where a record is: its gzip member in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The file's final name (without the `.open` it has while written).
    pub filename: String,
    /// Where the member starts.
    pub offset: u64,
    /// The member's length (compressed).
    pub length: u64,
}

/// What [`WarcWriter::write_exchange`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The response record.
    pub response: Span,
    /// The request record.
    pub request: Span,
    /// The `WARC-Record-ID` of the response.
    pub response_id: String,
    /// The payload digest of the body (`sha1:…`).
    pub payload_digest: String,
    /// The body's length.
    pub body_len: u64,
    /// The response's index line.
    pub line: Line,
}

/// A `.warc.gz` being written.
struct OpenFile {
    name: String,
    path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    warcinfo_id: String,
    /// Its index lines, when it gets an index.
    lines: Option<cdxj::Runs>,
}

/// Writes the exchanges of a crawl to rotating `.warc.gz` files (see the module docs).
pub struct WarcWriter {
    opts: WarcOptions,
    current: Option<OpenFile>,
    members: Members,
    closed: Vec<PathBuf>,
    /// Where bodies are read through, kept: zeroing a fresh 64 KiB buffer for each record cost
    /// more than writing a small record (measured: 48 µs an exchange of a 700-byte page, 38 µs
    /// with the buffer kept).
    buf: Vec<u8>,
}

impl WarcWriter {
    /// A writer into `opts`' folder (created if missing). First finishes the `.open` files a
    /// killed writer of the same prefix left (see [`recover`]). Opens no file until the first
    /// exchange.
    pub fn create(opts: WarcOptions) -> io::Result<Self> {
        fs::create_dir_all(&opts.dir)?;
        recover(&opts.dir, &opts.prefix, opts.index)?;
        Ok(WarcWriter {
            members: Members::new(opts.gzip_level),
            opts,
            current: None,
            closed: Vec::new(),
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Records one exchange: a `request` record, then a `response` record whose block is
    /// `exchange.response_head` then `body` (the body as sent by the server: transfer coding
    /// removed, content coding kept), linked both ways by `WARC-Concurrent-To`.
    ///
    /// `body` is read twice from where it stands (its digests go in the header, before it), so
    /// memory stays at a small buffer whatever its size: pass the spool file of a large body, or
    /// a `Cursor` over a small one. When this fails, the file holds none of the exchange.
    pub fn write_exchange<B: Read + Seek + ?Sized>(
        &mut self,
        exchange: &Exchange<'_>,
        body: &mut B,
    ) -> io::Result<Written> {
        let head = warc::response_head(exchange.response_head);
        let (block_digest, payload_digest, body_len) =
            warc::digest_block_in(&head, body, &mut self.buf)?;
        let file = self.file_for_next()?;
        let filename = file.name.clone();
        let warcinfo_id = file.warcinfo_id.clone();
        let start = file.pos;

        let date = warc::warc_date(exchange.date);
        let uri = warc::uri_value(exchange.url);
        let request_id = warc::record_id();
        let response_id = warc::record_id();
        let common = |fields: &mut Fields, kind: &str, id: &str, other: &str| {
            fields.push("WARC-Type", kind);
            fields.push("WARC-Record-ID", id);
            fields.push("WARC-Date", date.clone());
            fields.push("WARC-Target-URI", uri.clone());
            if let Some(ip) = exchange.ip {
                fields.push("WARC-IP-Address", ip.to_string());
            }
            fields.push("WARC-Concurrent-To", other);
            fields.push("WARC-Warcinfo-ID", warcinfo_id.clone());
        };

        let mut request = Fields::default();
        common(&mut request, "request", &request_id, &response_id);
        request.push("Content-Type", "application/http;msgtype=request");
        let req_payload = warc::head_end(exchange.request)
            .map(|i| &exchange.request[i..])
            .unwrap_or_default();
        request.push("WARC-Payload-Digest", warc::digest_bytes(req_payload));
        request.push("WARC-Block-Digest", warc::digest_bytes(exchange.request));

        let mut response = Fields::default();
        common(&mut response, "response", &response_id, &request_id);
        response.push("Content-Type", "application/http;msgtype=response");
        response.push("WARC-Payload-Digest", payload_digest.clone());
        response.push("WARC-Block-Digest", block_digest);
        if let Some(why) = exchange.truncated {
            response.push("WARC-Truncated", why);
        }

        let result = (|| {
            let file = self
                .current
                .as_mut()
                .ok_or_else(|| io::Error::other("no open file"))?;
            let req_span = write_record(
                &mut self.members,
                file,
                &request.head(exchange.request.len() as u64),
                &mut io::Cursor::new(exchange.request),
                exchange.request.len() as u64,
                &mut self.buf,
            )?;
            let resp_span = write_record(
                &mut self.members,
                file,
                &response.head(head.len() as u64 + body_len),
                &mut io::Cursor::new(&head).chain(&mut *body),
                head.len() as u64 + body_len,
                &mut self.buf,
            )?;
            file.out.flush()?;
            if self.opts.fsync_each {
                file.out.get_ref().sync_data()?;
            }
            Ok::<_, io::Error>((req_span, resp_span))
        })();
        let (req_span, resp_span) = match result {
            Ok(spans) => spans,
            Err(e) => {
                self.rewind(start);
                return Err(e);
            }
        };

        let (status, mime) = warc::status_and_mime(&head);
        let mut line = Line::new(exchange.url, exchange.date);
        line.mime = Some(mime);
        line.status = status;
        line.digest = Some(payload_digest.clone());
        line.length = Some(resp_span.1);
        line.offset = Some(resp_span.0);
        line.filename = Some(filename.clone());
        if let Some(lines) = self.current.as_mut().and_then(|f| f.lines.as_mut()) {
            lines.push(&line);
        }
        Ok(Written {
            response: Span {
                filename: filename.clone(),
                offset: resp_span.0,
                length: resp_span.1,
            },
            request: Span {
                filename,
                offset: req_span.0,
                length: req_span.1,
            },
            response_id,
            payload_digest,
            body_len,
            line,
        })
    }

    /// Cuts the current file back to `start` after a failed record; if even that fails, the file
    /// is given up (left `.open`, for [`recover`] to finish on the next start) and the next
    /// exchange opens a new one.
    fn rewind(&mut self, start: u64) {
        let Some(file) = self.current.take() else {
            return;
        };
        let OpenFile {
            name,
            path,
            out,
            warcinfo_id,
            lines,
            ..
        } = file;
        // What the buffer still holds belongs to the failed record: dropped unwritten.
        let (handle, _unwritten) = out.into_parts();
        if handle.set_len(start).is_ok() && (&handle).seek(io::SeekFrom::Start(start)).is_ok() {
            self.current = Some(OpenFile {
                name,
                path,
                out: BufWriter::with_capacity(256 * 1024, handle),
                pos: start,
                warcinfo_id,
                lines,
            });
        }
    }

    /// The open file, after closing a full one or opening the first.
    fn file_for_next(&mut self) -> io::Result<&mut OpenFile> {
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.pos >= self.opts.max_size)
        {
            self.close_current()?;
        }
        if self.current.is_none() {
            self.current = Some(self.open_file()?);
        }
        self.current
            .as_mut()
            .ok_or_else(|| io::Error::other("no open file"))
    }

    fn open_file(&mut self) -> io::Result<OpenFile> {
        let stamp = warc::timestamp14(SystemTime::now());
        // The serial goes up until a name is free, so a writer restarted within the same second,
        // or a folder with files of an earlier run, never reuses a name.
        let mut serial = self.closed.len() as u32;
        let (name, path, handle) = loop {
            let name = format!("{}-{stamp}-{serial:05}.warc.gz", self.opts.prefix);
            let path = self.opts.dir.join(format!("{name}.open"));
            if !self.opts.dir.join(&name).exists() {
                match OpenOptions::new().write(true).create_new(true).open(&path) {
                    Ok(f) => break (name, path, f),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            serial += 1;
        };
        let mut file = OpenFile {
            name,
            path,
            out: BufWriter::with_capacity(256 * 1024, handle),
            pos: 0,
            warcinfo_id: warc::record_id(),
            lines: self.opts.index.then(|| cdxj::Runs::new(&self.opts.dir)),
        };
        let mut block = Vec::new();
        let mut field = |name: &str, value: &str| {
            let clean = |s: &str| s.replace(['\r', '\n'], " ");
            block.extend_from_slice(format!("{}: {}\r\n", clean(name), clean(value)).as_bytes());
        };
        field("software", &self.opts.software);
        field("format", "WARC File Format 1.1");
        field(
            "conformsTo",
            "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        );
        for (name, value) in &self.opts.info {
            field(name, value);
        }
        let mut info = Fields::default();
        info.push("WARC-Type", "warcinfo");
        info.push("WARC-Record-ID", file.warcinfo_id.clone());
        info.push("WARC-Date", warc::warc_date(SystemTime::now()));
        info.push("WARC-Filename", file.name.clone());
        info.push("Content-Type", "application/warc-fields");
        info.push("WARC-Block-Digest", warc::digest_bytes(&block));
        let len = block.len() as u64;
        write_record(
            &mut self.members,
            &mut file,
            &info.head(len),
            &mut io::Cursor::new(block),
            len,
            &mut self.buf,
        )?;
        file.out.flush()?;
        Ok(file)
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some(file) = self.current.take() {
            let path = finish_file(file)?;
            self.closed.push(path);
        }
        Ok(())
    }

    /// Closes the current file (fsync, index, rename) and returns every file this writer closed.
    pub fn finish(mut self) -> io::Result<Vec<PathBuf>> {
        self.close_current()?;
        Ok(std::mem::take(&mut self.closed))
    }

    /// The name the current file will have once closed, if one is open.
    pub fn current_file(&self) -> Option<&str> {
        self.current.as_ref().map(|f| f.name.as_str())
    }
}

impl Drop for WarcWriter {
    /// Closes the current file; an error here leaves it `.open`, for [`recover`] to finish.
    fn drop(&mut self) {
        let _ = self.close_current();
    }
}

/// Writes one record as one gzip member at the end of `file`: `head`, then exactly `len` bytes
/// of `block` (read through `buf`), then `\r\n\r\n`. Returns the member's offset and length.
fn write_record<R: Read + ?Sized>(
    members: &mut Members,
    file: &mut OpenFile,
    head: &[u8],
    block: &mut R,
    len: u64,
    buf: &mut [u8],
) -> io::Result<(u64, u64)> {
    let start = file.pos;
    let mut out = Counting {
        inner: &mut file.out,
        count: 0,
    };
    members.begin(&mut out, head.len() as u64 + len + 4)?;
    // The block's first bytes are read before anything is compressed, so a large one can be
    // sampled (see `Members`).
    let mut first = 0;
    let want = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
    while first < want {
        match block.read(&mut buf[first..want]) {
            Ok(0) => return Err(shorter()),
            Ok(n) => first += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    members.sample(&buf[..first])?;
    members.write(&mut out, head)?;
    members.write(&mut out, &buf[..first])?;
    let mut left = len - first as u64;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match block.read(&mut buf[..want]) {
            Ok(0) => return Err(shorter()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        members.write(&mut out, &buf[..n])?;
        left -= n as u64;
    }
    members.write(&mut out, b"\r\n\r\n")?;
    members.finish(&mut out)?;
    let length = out.count;
    file.pos += length;
    Ok((start, length))
}

/// The body changed between its digest and its record: the record would lie.
fn shorter() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the body ended before the length its digest was taken over",
    )
}

/// Counts the bytes written through it.
struct Counting<'a, W> {
    inner: &'a mut W,
    count: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Closes a file: flush, fsync, its index, then the rename to its final name (last, so a file
/// under its final name always has its index).
fn finish_file(mut file: OpenFile) -> io::Result<PathBuf> {
    file.out.flush()?;
    file.out.get_ref().sync_all()?;
    let dir = file.path.parent().unwrap_or(Path::new("."));
    let final_path = dir.join(&file.name);
    if let Some(lines) = file.lines.take() {
        lines.write(&dir.join(format!("{}.cdxj", file.name)))?;
    }
    fs::rename(&file.path, &final_path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(final_path)
}

/// What [`recover`] did with one `.open` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The file under its final name (or the `.open` file, when it was removed).
    pub path: PathBuf,
    /// The complete records kept.
    pub records: u64,
    /// The bytes of a torn last member cut off.
    pub cut: u64,
    /// True when the file had no complete record and was removed.
    pub removed: bool,
}

/// Finishes the `.open` files that a killed writer with this prefix left in `dir`: each is cut
/// after its last complete record, indexed (when `index`), and renamed to its final name; one
/// without a complete record is removed. Only names of the form
/// `{prefix}-{14 digits}-{serial}.warc.gz.open` are touched, so writers with other prefixes may
/// be running in the same folder. [`WarcWriter::create`] calls this.
pub fn recover(dir: &Path, prefix: &str, index: bool) -> io::Result<Vec<Recovered>> {
    recover_matching(dir, index, |p| p == prefix)
}

/// [`recover`] for every writer of a worker: the prefix `worker` itself and every prefix that
/// starts with `{worker}-` (such as `{worker}-t3`, a writer thread that a restart with fewer
/// threads will not create again). Call it when the worker starts, before its writers exist,
/// and only when no other live worker's prefix starts with `{worker}-`.
pub fn recover_worker(dir: &Path, worker: &str, index: bool) -> io::Result<Vec<Recovered>> {
    let under = format!("{worker}-");
    recover_matching(dir, index, |p| p == worker || p.starts_with(&under))
}

fn recover_matching(
    dir: &Path,
    index: bool,
    owned: impl Fn(&str) -> bool,
) -> io::Result<Vec<Recovered>> {
    let mut done = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !open_file_prefix(name).is_some_and(&owned) || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let final_name = name.trim_end_matches(".open").to_string();
        // Read as `read::scan` does, the lines going to the index as they come rather than
        // into memory all at once.
        let mut scan = read::Scan {
            records: 0,
            valid_len: 0,
            file_len: fs::metadata(&path)?.len(),
            lines: Vec::new(),
        };
        let mut lines = cdxj::Runs::new(dir);
        for record in read::open(&path)? {
            let Ok(record) = record else { break };
            scan.records += 1;
            scan.valid_len = record.offset + record.length;
            if index && record.kind() == "response" {
                let mut line = read::index_line(&record);
                line.filename = Some(final_name.clone());
                lines.push(&line);
            }
        }
        if scan.records == 0 {
            fs::remove_file(&path)?;
            done.push(Recovered {
                path,
                records: 0,
                cut: scan.file_len,
                removed: true,
            });
            continue;
        }
        let handle = OpenOptions::new().write(true).open(&path)?;
        if scan.valid_len < scan.file_len {
            handle.set_len(scan.valid_len)?;
        }
        handle.sync_all()?;
        if index {
            lines.write(&dir.join(format!("{final_name}.cdxj")))?;
        }
        let final_path = dir.join(&final_name);
        fs::rename(&path, &final_path)?;
        done.push(Recovered {
            path: final_path,
            records: scan.records,
            cut: scan.file_len - scan.valid_len,
            removed: false,
        });
    }
    Ok(done)
}

/// The prefix of a name `{prefix}-{14 digits}-{serial}.warc.gz.open`, if it is one.
fn open_file_prefix(name: &str) -> Option<&str> {
    let rest = name.strip_suffix(".warc.gz.open")?;
    let (rest, serial) = rest.rsplit_once('-')?;
    let (prefix, stamp) = rest.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (stamp.len() == 14 && digits(stamp) && digits(serial) && !prefix.is_empty()).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_are_known_by_their_prefix() {
        let p = open_file_prefix;
        assert_eq!(p("crawl-20240101000000-00001.warc.gz.open"), Some("crawl"));
        assert_eq!(
            p("crawl-2-20240101000000-00001.warc.gz.open"),
            Some("crawl-2")
        );
        assert_eq!(p("crawl-20240101000000-00001.warc.gz"), None);
        assert_eq!(p("crawl-2024-00001.warc.gz.open"), None);
        assert_eq!(p("-20240101000000-00001.warc.gz.open"), None);
    }
}
