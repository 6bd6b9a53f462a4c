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

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use bytes::Bytes;

use crate::body::{Body, PartState};
use crate::extract::{Extracted, Page};
use crate::job::{ErrorKind, JobError, JobReport, Outcome};
use crate::life::Life;
use crate::protocol::{Append, ExistingPage, Exists, Finished, PageInfo, Save};
use crate::sink::Sink;

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
        catch_unwind(AssertUnwindSafe(|| {
            if !sink.exists(&msg.file) {
                return None;
            }
            // The stored page has no headers: its name says what it probably is.
            let ext = msg.file.extension().and_then(|e| e.to_str()).unwrap_or("");
            let guess = match ext.to_ascii_lowercase().as_str() {
                "" | "html" | "htm" | "xhtml" => "text/html",
                _ => "application/octet-stream",
            };
            let Some(extractor) = msg.extractor.as_ref().filter(|e| e.wants(Some(guess))) else {
                return Some(Vec::new());
            };
            let mut body = Vec::new();
            if let Ok(Some(reader)) = sink.open(&msg.file) {
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
/// for the ones in progress, so no temp file outlives the run; and remembers the names stored in
/// this run, so two jobs that end at the same name (a URL listed twice, two countries whose names
/// are the same once made safe) never silently overwrite each other. That costs a hash, about 16
/// bytes, per file stored.
#[derive(Debug, Default)]
pub(crate) struct WriterGate {
    closed: AtomicBool,
    busy: AtomicUsize,
    /// Told when the last store under way ends.
    idle: tokio::sync::Notify,
    stored: Mutex<HashSet<u64>>,
}

impl WriterGate {
    /// Claims `file` for one job of this run; false when another job already claimed it.
    fn claim(&self, file: &Path) -> bool {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        file.hash(&mut h);
        let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        stored.insert(h.finish())
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
    life: Life,
}

impl Writer {
    pub fn start(
        threads: usize,
        sink: Arc<dyn Sink>,
        gate: Arc<WriterGate>,
        finished: Recipient<Finished>,
        life: Life,
    ) -> Addr<Writer> {
        SyncArbiter::start(threads, move || Writer {
            sink: Arc::clone(&sink),
            gate: Arc::clone(&gate),
            finished: finished.clone(),
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
            permit,
        } = msg;
        // Links first: a page whose store fails was still fetched, and its links still count.
        if let (Some(info), Body::Memory(bytes)) = (&page, &body) {
            let found = extract(info, &report, bytes);
            report.links = found.links.len() as u32;
            report.found = found.links;
            report.records = found.records;
        }
        let what = file.display().to_string();
        let job = report.job.clone();
        let stored = if !self.gate.claim(&file) {
            Err(JobError::new(
                ErrorKind::Write,
                format!("{what} was already saved by another job of this run; not overwritten"),
            ))
        } else {
            self.guarded(ctx, &what, |sink| match body {
                Body::Memory(bytes) => sink
                    .store(&job, &file, &mut &bytes[..])
                    .map(|()| bytes.len() as u64),
                Body::Parts(part) => part.commit(sink, &file),
            })
        };
        drop(permit);
        match stored {
            Ok(bytes) => {
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
