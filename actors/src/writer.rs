//! The **Writer**: stores bodies through the [`Sink`], off the fetchers' arbiters.
//!
//! Owns: the sink, on a `SyncArbiter` of blocking threads (file I/O must not stall the event loops
//! that drive the HTTP connections).
//! Receives: [`Store`] from fetchers.
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
use crate::sink::Sink;

/// Store `body` as `file` for `job`. Answers the number of bytes stored, or the error message.
#[derive(Message)]
#[rtype(result = "Result<u64, String>")]
pub(crate) struct Store {
    pub job: Job,
    pub file: PathBuf,
    pub body: Bytes,
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

impl Handler<Store> for Writer {
    type Result = Result<u64, String>;

    fn handle(&mut self, msg: Store, ctx: &mut SyncContext<Self>) -> Self::Result {
        self.gate.busy.fetch_add(1, Ordering::SeqCst);
        let _busy = Busy(&self.gate);
        if self.gate.closed.load(Ordering::SeqCst) {
            return Err("cancelled before it was written".into());
        }
        let sink = &self.sink;
        match catch_unwind(AssertUnwindSafe(|| {
            sink.store(&msg.job, &msg.file, &msg.body)
        })) {
            Ok(Ok(())) => Ok(msg.body.len() as u64),
            Ok(Err(e)) => Err(format!("cannot write {}: {e}", msg.file.display())),
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
