//! The **Writer**: stores bodies through the [`Sink`], off the fetchers' arbiters.
//!
//! Owns: the sink, on a `SyncArbiter` of blocking threads (file I/O must not stall the event loops
//! that drive the HTTP connections).
//! Receives: [`Save`] from fetchers, with a complete body (in memory, or already written in
//! pieces); [`Append`] for the pieces of a body too large to hold in memory, written as they
//! arrive (the [`PartState`] moves with the messages, so any writer thread can take the next).
//! Sends: [`Finished`] to the reporter for every [`Save`]: a job is *downloaded* only once the
//! sink returned `Ok`, and an error when another job of the run already stored the same name.
//! The fetcher does not wait for the disk: it hands the body over and takes its next job, while a
//! semaphore permit carried by the message bounds the bodies waiting here. Past the run's grace
//! period a store is refused and not reported: the summary counts that job as cancelled.
//!
//! A panic inside the sink is caught: that store fails with the panic message and this writer is
//! replaced (a `SyncContext` builds a fresh actor from its factory when one stops), so one bad job
//! never takes a writer thread down.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use actix::prelude::*;
use bytes::Bytes;

use sha1::{Digest, Sha1};

use crate::archive::cdxj::Line;
use crate::archive::warc::sha1_digest;
use crate::body::{Body, PartState};
use crate::extract::{Extracted, Page};
use crate::index::{file_key, owner_key, Index, Known};
use crate::job::{ErrorKind, Job, JobError, JobReport, Outcome};
use crate::life::Life;
use crate::names::{collided_file, page_file};
use crate::protocol::{Append, ExistingPage, Exists, Finished, PageInfo, Save};
use crate::seen::fingerprint;
use crate::sink::Sink;
use crate::spec::SaveRules;

impl Handler<Exists> for Writer {
    type Result = bool;

    fn handle(&mut self, Exists(file): Exists, _: &mut SyncContext<Self>) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.sink.exists(&file))).unwrap_or(false)
    }
}

impl Handler<ExistingPage> for Writer {
    type Result = Option<Vec<String>>;

    fn handle(&mut self, msg: ExistingPage, _: &mut SyncContext<Self>) -> Self::Result {
        let sink = &*self.sink;
        let gate = &self.gate;
        catch_unwind(AssertUnwindSafe(|| {
            // Where the crawl's index says the page is; without an index (a folder from before
            // there was one), under any name the page could have.
            let file = match gate.files.get(&fingerprint(&msg.job.url)) {
                Some(file) => file.clone(),
                None if !gate.files.is_empty() => return None,
                None => [
                    page_file(&msg.job.url, true),
                    page_file(&msg.job.url, false),
                    Some(msg.file.clone()),
                ]
                .into_iter()
                .flatten()
                .find(|f| sink.exists(f))?,
            };
            if !sink.exists(&file) {
                return None;
            }
            // The stored page has no headers: its name says what it probably is.
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            let guess = match ext.to_ascii_lowercase().as_str() {
                "" | "html" | "htm" | "xhtml" => "text/html",
                _ => "application/octet-stream",
            };
            let Some(extractor) = msg.extractor.as_ref().filter(|e| e.wants(Some(guess))) else {
                return Some(Vec::new());
            };
            let mut body = Vec::new();
            if let Ok(Some(reader)) = sink.open(&file) {
                let _ = reader.take(msg.limit).read_to_end(&mut body);
            }
            let headers = [("content-type".to_string(), guess.to_string())];
            let page = Page {
                url: &msg.job.url,
                status: 200,
                headers: &headers,
                body: &body,
                depth: msg.job.depth,
            };
            Some(extractor.extract(&page).links)
        }))
        .unwrap_or(None)
    }
}

/// Shared between the writers and the run: lets the run refuse new stores after a cancel and wait
/// for the ones in progress, so no temp file outlives the run; and knows who owns each name, so
/// no file ever replaces another's: two jobs of a list that end at the same name (a URL listed
/// twice, two countries whose names are the same once made safe) never overwrite each other, and
/// a crawled page never replaces another URL's page, in this run or (through the crawl's index)
/// an earlier one. That costs two 64-bit hashes, about 20 bytes in the table, per file stored.
#[derive(Debug, Default)]
pub(crate) struct WriterGate {
    closed: AtomicBool,
    busy: AtomicUsize,
    /// Told when the last store under way ends.
    idle: tokio::sync::Notify,
    /// Each name stored: its owner ([`owner_key`]: a crawled URL, or a list's job, which owns
    /// its name alone).
    owners: Mutex<HashMap<u64, u64>>,
    /// Where each URL's body is, from an earlier run's index (for `skip_existing`).
    files: HashMap<u128, PathBuf>,
    /// Which crawled pages are saved.
    rules: SaveRules,
}

impl WriterGate {
    /// A gate that knows what an earlier run of the crawl stored, and which pages to save.
    pub fn knowing(known: Known, rules: SaveRules) -> Self {
        WriterGate {
            owners: Mutex::new(known.owners),
            files: known.files,
            rules,
            ..WriterGate::default()
        }
    }

    /// Claims `file` for `owner` (a crawled URL: the same URL may claim its own name again) or
    /// for one job alone (`None`); false when someone else owns it.
    fn claim(&self, file: &Path, owner: Option<u64>) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let key = owner.unwrap_or(0);
        match owners.entry(file_key(file)) {
            Entry::Vacant(v) => {
                v.insert(key);
                true
            }
            Entry::Occupied(o) => owner.is_some() && *o.get() == key,
        }
    }

    /// Gives a name back: its store failed, so it is nobody's.
    fn unclaim(&self, file: &Path) {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.remove(&file_key(file));
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Resolves once no store is under way.
    pub async fn idle(&self) {
        loop {
            let told = self.idle.notified();
            tokio::pin!(told);
            told.as_mut().enable();
            if self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            told.await;
        }
    }
}

/// Why a store was refused: the run is past its grace period. Such a job is not reported: the
/// run's summary counts it as cancelled.
const CANCELLED: &str = "cancelled before it was written";

pub(crate) struct Writer {
    sink: Arc<dyn Sink>,
    gate: Arc<WriterGate>,
    finished: Recipient<Finished>,
    /// The crawl's index of what it fetched, if it keeps one.
    index: Option<Arc<Index>>,
    life: Life,
}

impl Writer {
    pub fn start(
        threads: usize,
        sink: Arc<dyn Sink>,
        gate: Arc<WriterGate>,
        finished: Recipient<Finished>,
        index: Option<Arc<Index>>,
        life: Life,
    ) -> Addr<Writer> {
        SyncArbiter::start(threads, move || Writer {
            sink: Arc::clone(&sink),
            gate: Arc::clone(&gate),
            finished: finished.clone(),
            index: index.clone(),
            life: life.clone(),
        })
    }
}

/// The writer threads end when the last address of the writer is dropped.
impl Actor for Writer {
    type Context = SyncContext<Self>;

    fn started(&mut self, _: &mut SyncContext<Self>) {
        self.life.born();
    }

    fn stopped(&mut self, _: &mut SyncContext<Self>) {
        self.life.died();
    }
}

/// Counts a message being handled as busy until dropped, however the handling ends.
struct Busy<'a>(&'a WriterGate);

impl<'a> Busy<'a> {
    fn enter(gate: &'a WriterGate) -> Self {
        gate.busy.fetch_add(1, Ordering::SeqCst);
        Busy(gate)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Writer {
    /// Runs one piece of sink work: refused after a cancel, and with a panic
    /// turned into an error (and this writer replaced).
    fn guarded<T>(
        &self,
        ctx: &mut SyncContext<Self>,
        what: &str,
        work: impl FnOnce(&dyn Sink) -> std::io::Result<T>,
    ) -> Result<T, JobError> {
        if self.gate.closed.load(Ordering::SeqCst) {
            return Err(JobError::new(ErrorKind::Internal, CANCELLED));
        }
        let sink = &*self.sink;
        match catch_unwind(AssertUnwindSafe(|| work(sink))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(JobError::new(
                ErrorKind::Write,
                format!("cannot write {what}: {e}"),
            )),
            Err(panic) => {
                ctx.stop();
                Err(JobError::new(
                    ErrorKind::Internal,
                    format!("writer panicked: {}", crate::life::panic_message(&*panic)),
                ))
            }
        }
    }
}

impl Handler<Save> for Writer {
    type Result = ();

    fn handle(&mut self, msg: Save, ctx: &mut SyncContext<Self>) {
        // Busy until the outcome is sent: the run makes its summary only after that.
        let gate = Arc::clone(&self.gate);
        let _busy = Busy::enter(&gate);
        let Save {
            mut report,
            started,
            file,
            body,
            page,
            owned,
            mime,
            permit,
        } = msg;
        // Links first: a page whose store fails was still fetched, and its links still count.
        if let (Some(info), Body::Memory(bytes)) = (&page, &body) {
            let found = extract(info, &report, bytes);
            report.links = found.links.len() as u32;
            report.found = found.links;
            report.assets = found.assets.len() as u32;
            report.found_assets = found.assets;
            report.records = found.records;
        }
        let url = report.job.url.clone();
        if owned && !self.gate.rules.keeps(&url, mime.as_deref()) {
            // Fetched and read for its links; the save rules leave it out.
            drop(permit);
            if let Some(index) = &self.index {
                let mut line = Line::new(&url, SystemTime::now());
                line.status = Some(200);
                line.mime = mime.map(|m| m.split(';').next().unwrap_or("").trim().to_string());
                if let Body::Memory(bytes) = &body {
                    line.length = Some(bytes.len() as u64);
                    line.digest = Some(sha1_digest(&Sha1::digest(bytes)));
                }
                line.extra.push(("outcome".into(), "fetched".into()));
                index.record(&line);
            }
            report.outcome = Outcome::Fetched;
            report.elapsed = started.elapsed();
            self.finished.do_send(Finished(report));
            return;
        }
        let owner = owned.then(|| owner_key(&url));
        let stored = self.store(ctx, &report.job, file, body, owner);
        drop(permit);
        match stored {
            Ok((file, bytes, sha1)) => {
                if let Some(index) = &self.index {
                    let mut line = Line::new(&url, SystemTime::now());
                    line.status = Some(200);
                    // The type without its parameters, as archive indexes write it.
                    line.mime = mime.map(|m| m.split(';').next().unwrap_or("").trim().to_string());
                    line.length = Some(bytes);
                    line.digest = sha1.map(|s| sha1_digest(&s));
                    line.file = Some(file.to_string_lossy().into_owned());
                    index.record(&line);
                }
                report.outcome = Outcome::Downloaded(file);
                report.bytes = bytes;
            }
            Err(e) => report.outcome = Outcome::Error(e),
        }
        report.elapsed = started.elapsed();
        if matches!(&report.outcome, Outcome::Error(e) if e.message == CANCELLED) {
            return;
        }
        self.finished.do_send(Finished(report));
    }
}

impl Writer {
    /// Stores a body under its name, or (a crawled page whose name is another URL's, or whose
    /// folders are in the way of a file) under its collision name. Returns the name, the length
    /// and the SHA-1.
    fn store(
        &self,
        ctx: &mut SyncContext<Self>,
        job: &Job,
        file: PathBuf,
        body: Body,
        owner: Option<u64>,
    ) -> Result<(PathBuf, u64, Option<[u8; 20]>), JobError> {
        let taken = |file: &Path| {
            JobError::new(
                ErrorKind::Write,
                format!(
                    "{} was already saved by another job of this run; not overwritten",
                    file.display()
                ),
            )
        };
        let mut file = file;
        if !self.gate.claim(&file, owner) {
            if owner.is_none() {
                return Err(taken(&file));
            }
            file = collided_file(&job.url, &file);
            if !self.gate.claim(&file, owner) {
                return Err(taken(&file));
            }
        }
        let what = file.display().to_string();
        let result = match body {
            Body::Memory(bytes) => {
                let stored = self.guarded(ctx, &what, |sink| sink.store_bytes(job, &file, &bytes));
                match stored {
                    // A file where a folder is needed, or a folder where the file goes: the
                    // page goes where nothing stands in the way.
                    Err(e) if owner.is_some() && e.kind == ErrorKind::Write && in_the_way(&e) => {
                        self.gate.unclaim(&file);
                        file = collided_file(&job.url, &file);
                        if !self.gate.claim(&file, owner) {
                            return Err(taken(&file));
                        }
                        let what = file.display().to_string();
                        self.guarded(ctx, &what, |sink| sink.store_bytes(job, &file, &bytes))
                    }
                    other => other,
                }
                // The digest is the index's alone: a list without one (most bulk downloads)
                // does not pay for it.
                .map(|()| {
                    let sha1 = self.index.is_some().then(|| Sha1::digest(&bytes).into());
                    (bytes.len() as u64, sha1)
                })
            }
            Body::Parts(part) => self
                .guarded(ctx, &what, |sink| (*part).commit(sink, &file))
                .map(|(bytes, sha1)| (bytes, Some(sha1))),
        };
        match result {
            Ok((bytes, sha1)) => Ok((file, bytes, sha1)),
            Err(e) => {
                // A name nothing was stored under is nobody's: another job may have it.
                self.gate.unclaim(&file);
                Err(e)
            }
        }
    }
}

/// True for the errors of a file system layout in the way: "Not a directory" (a file stands where
/// a folder is needed) and "Is a directory".
fn in_the_way(e: &JobError) -> bool {
    e.message.contains("Not a directory") || e.message.contains("Is a directory")
}

/// Runs the extractor on a page; a panic in it costs that page its links, nothing more.
fn extract(info: &PageInfo, report: &JobReport, body: &Bytes) -> Extracted {
    let page = Page {
        url: &report.job.url,
        status: report.status.unwrap_or(200),
        headers: &info.headers,
        body,
        depth: report.job.depth,
    };
    catch_unwind(AssertUnwindSafe(|| info.extractor.extract(&page))).unwrap_or_default()
}

impl Handler<Append> for Writer {
    type Result = Result<PartState, JobError>;

    fn handle(&mut self, msg: Append, ctx: &mut SyncContext<Self>) -> Self::Result {
        let gate = Arc::clone(&self.gate);
        let _busy = Busy::enter(&gate);
        let what = msg.job.file.display().to_string();
        let Append { job, part, piece } = msg;
        self.guarded(ctx, &what, move |sink| {
            let mut part = match part {
                Some(p) => p,
                None => PartState::begin(sink, job)?,
            };
            part.write(&piece)?;
            Ok(part)
        })
    }
}
