//! The **Writer**: stores bodies through the [`Sink`], off the fetchers' arbiters.
//!
//! Owns: the sink, on a `SyncArbiter` of blocking threads (file I/O must not stall the event loops
//! that drive the HTTP connections).
//! Receives: [`Store`] from fetchers for bodies held in memory; [`Append`] and [`Commit`] for
//! bodies too large for that, which are written piece by piece as they arrive (the [`PartState`]
//! moves with the messages, so any writer thread can take the next piece).
//! Sends: the result of each store back to the asking fetcher, which reports the outcome; a job is
//! *downloaded* only once the sink returned `Ok`.
//!
//! A panic inside the sink is caught: that store fails with the panic message and this writer is
//! replaced (a `SyncContext` builds a fresh actor from its factory when one stops), so one bad job
//! never takes a writer thread down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;

use crate::job::Job;
use crate::sink::{Part, Sink};

/// Store `body` as `file` for `job`. Answers the number of bytes stored, or the error message.
#[derive(Message)]
#[rtype(result = "Result<u64, String>")]
pub(crate) struct Store {
    pub job: Job,
    pub file: PathBuf,
    pub body: Bytes,
}

/// A body being written in pieces: the sink's [`Part`], or the pieces themselves for a sink
/// that does not stream. Dropping it discards the body.
pub(crate) struct PartState {
    job: Job,
    inner: Partial,
    bytes: u64,
}

enum Partial {
    Streaming(Box<dyn Part>),
    Buffered(Vec<u8>),
}

/// Append `piece` to the body of `job`, starting it when `part` is `None`.
#[derive(Message)]
#[rtype(result = "Result<PartState, String>")]
pub(crate) struct Append {
    pub job: Job,
    pub part: Option<PartState>,
    pub piece: Bytes,
}

/// Complete a body written in pieces and store it as `file`. Answers its size.
#[derive(Message)]
#[rtype(result = "Result<u64, String>")]
pub(crate) struct Commit {
    pub part: PartState,
    pub file: PathBuf,
}

/// Shared between the writers and the run: lets the run refuse new stores after a cancel and wait
/// for the ones in progress, so no temp file outlives the run.
#[derive(Debug, Default)]
pub(crate) struct WriterGate {
    closed: AtomicBool,
    busy: AtomicUsize,
}

impl WriterGate {
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }
}

pub(crate) struct Writer {
    sink: Arc<dyn Sink>,
    gate: Arc<WriterGate>,
}

impl Writer {
    pub fn start(threads: usize, sink: Arc<dyn Sink>, gate: Arc<WriterGate>) -> Addr<Writer> {
        SyncArbiter::start(threads, move || Writer {
            sink: Arc::clone(&sink),
            gate: Arc::clone(&gate),
        })
    }
}

impl Actor for Writer {
    type Context = SyncContext<Self>;
}

/// Decrements the busy count however the store ends.
struct Busy<'a>(&'a WriterGate);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    /// Runs one piece of sink work: counted as busy, refused after a cancel, and with a panic
    /// turned into an error (and this writer replaced).
    fn guarded<T>(
        &self,
        ctx: &mut SyncContext<Self>,
        what: &str,
        work: impl FnOnce(&dyn Sink) -> std::io::Result<T>,
    ) -> Result<T, String> {
        self.gate.busy.fetch_add(1, Ordering::SeqCst);
        let _busy = Busy(&self.gate);
        if self.gate.closed.load(Ordering::SeqCst) {
            return Err("cancelled before it was written".into());
        }
        let sink = &*self.sink;
        match catch_unwind(AssertUnwindSafe(|| work(sink))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("cannot write {what}: {e}")),
            Err(panic) => {
                ctx.stop();
                Err(format!(
                    "writer panicked: {}",
                    crate::panic_message(&*panic)
                ))
            }
        }
    }
}

impl Handler<Store> for Writer {
    type Result = Result<u64, String>;

    fn handle(&mut self, msg: Store, ctx: &mut SyncContext<Self>) -> Self::Result {
        let what = msg.file.display().to_string();
        self.guarded(ctx, &what, |sink| {
            sink.store(&msg.job, &msg.file, &msg.body)
        })?;
        Ok(msg.body.len() as u64)
    }
}

impl Handler<Append> for Writer {
    type Result = Result<PartState, String>;

    fn handle(&mut self, msg: Append, ctx: &mut SyncContext<Self>) -> Self::Result {
        let what = msg.job.file.display().to_string();
        let Append { job, part, piece } = msg;
        self.guarded(ctx, &what, move |sink| {
            let mut part = match part {
                Some(p) => p,
                None => {
                    let inner = match sink.begin(&job)? {
                        Some(streaming) => Partial::Streaming(streaming),
                        None => Partial::Buffered(Vec::new()),
                    };
                    PartState {
                        job,
                        inner,
                        bytes: 0,
                    }
                }
            };
            match &mut part.inner {
                Partial::Streaming(p) => p.write(&piece)?,
                Partial::Buffered(v) => v.extend_from_slice(&piece),
            }
            part.bytes += piece.len() as u64;
            Ok(part)
        })
    }
}

impl Handler<Commit> for Writer {
    type Result = Result<u64, String>;

    fn handle(&mut self, msg: Commit, ctx: &mut SyncContext<Self>) -> Self::Result {
        let what = msg.file.display().to_string();
        let Commit { part, file } = msg;
        let bytes = part.bytes;
        self.guarded(ctx, &what, move |sink| match part.inner {
            Partial::Streaming(p) => p.commit(&file),
            Partial::Buffered(body) => sink.store(&part.job, &file, &body),
        })?;
        Ok(bytes)
    }
}
