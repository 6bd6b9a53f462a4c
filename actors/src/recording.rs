//! The **tap** of the web archive: what the fetchers' and the frontier's HTTP clients record,
//! sent to the archivist as protocol messages.
//!
//! Owns: nothing but the exchange under way of one fetch (its heads, its body's pieces so far).
//! Receives: each response of a fetch from the http layer, as a [`Tape`]: its head, its body in
//! pieces, its end (or a cut, when the body was not read to its end).
//! Sends: [`ArchivePieces`] (awaited) once a body passes [`SPOOL_AT`], so a large body is never
//! held whole, and [`Archive`] when the exchange is over, carrying a permit that bounds the
//! exchanges waiting for the disk (taken when the head arrives, so a slow archive slows the
//! crawl down instead of growing a queue).

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::{Captured, Cut, Recorder, Tape};
use crate::protocol::{Archive, ArchivePieces, Spool};

/// A body held in memory up to this size is sent whole with its exchange; past it, its pieces go
/// to a spool file as they arrive (the same threshold as bodies on their way to the sink).
pub(crate) const SPOOL_AT: usize = 1 << 20;

/// Where the exchanges of a crawl are recorded; one per run, cloned into every client.
#[derive(Clone)]
pub(crate) struct ArchiveTap {
    pieces: Recipient<ArchivePieces>,
    record: Recipient<Archive>,
    permits: Arc<Semaphore>,
}

impl ArchiveTap {
    /// A tap to the archivist, with `permits` exchanges at most on their way to the disk.
    pub fn new(
        pieces: Recipient<ArchivePieces>,
        record: Recipient<Archive>,
        permits: usize,
    ) -> Self {
        ArchiveTap {
            pieces,
            record,
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }
}

impl Recorder for ArchiveTap {
    fn tape(&self) -> Box<dyn Tape> {
        Box::new(TapeToArchive {
            tap: self.clone(),
            open: None,
        })
    }
}

/// The tape of one fetch.
struct TapeToArchive {
    tap: ArchiveTap,
    open: Option<Open>,
}

/// The exchange under way.
struct Open {
    exchange: Captured,
    /// `None` when the run is ending: nothing more is recorded.
    permit: Option<OwnedSemaphorePermit>,
    pieces: Vec<Bytes>,
    held: usize,
    spool: Option<Spool>,
    /// The archivist could not spool the body: the exchange is not recorded (the archivist
    /// counted the failure).
    failed: bool,
    cut: Option<Cut>,
}

impl Tape for TapeToArchive {
    fn head(&mut self, exchange: Captured) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            // Never two at once: a tape's exchanges follow one another.
            self.cut(Cut::Unspecified);
            self.end();
            let permit = Arc::clone(&self.tap.permits).acquire_owned().await.ok();
            self.open = Some(Open {
                exchange,
                permit,
                pieces: Vec::new(),
                held: 0,
                spool: None,
                failed: false,
                cut: None,
            });
        })
    }

    fn piece(&mut self, piece: Bytes) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(open) = self.open.as_mut().filter(|o| !o.failed) else {
                return;
            };
            open.held += piece.len();
            open.pieces.push(piece);
            if open.held < SPOOL_AT {
                return;
            }
            let msg = ArchivePieces {
                spool: open.spool.take(),
                pieces: std::mem::take(&mut open.pieces),
            };
            open.held = 0;
            match self.tap.pieces.send(msg).await {
                Ok(Ok(spool)) => open.spool = Some(spool),
                _ => open.failed = true,
            }
        })
    }

    fn cut(&mut self, why: Cut) {
        if let Some(open) = self.open.as_mut() {
            open.cut.get_or_insert(why);
        }
    }

    fn end(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let (Some(permit), false) = (open.permit, open.failed) else {
            return;
        };
        // Queued, never refused for being full: the permit is what bounds the queue. Refused
        // only once the archivist is gone, when the run is over.
        let _ = self.tap.record.try_send(Archive {
            exchange: open.exchange,
            spool: open.spool,
            pieces: open.pieces,
            cut: open.cut,
            permit,
        });
    }
}

impl Drop for TapeToArchive {
    /// A fetch dropped mid-exchange (its deadline, the run ending): what arrived is recorded, as
    /// cut short.
    fn drop(&mut self) {
        self.cut(Cut::Unspecified);
        self.end();
    }
}
