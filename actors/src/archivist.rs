//! The **Archivist**: writes the crawl's web archive (WARC/1.1, see [`crate::archive`]), off the
//! event loops.
//!
//! Owns: the run's [`WarcWriter`] (its files, their rotation and CDXJ indexes), on a
//! `SyncArbiter` thread of its own (compression and file I/O must not stall the event loops that
//! drive the connections); the spool files of large bodies being recorded; the archive's counts.
//! Receives: [`ArchivePieces`] (the pieces of a large body, written to its spool as they arrive)
//! and [`Archive`] (an exchange to record) from the fetchers' and the frontier's taps
//! (`recording`). Every exchange of the crawl comes here whether or not the writer stores its
//! body: the archive does not depend on the sink.
//! Sends: nothing. A record that cannot be written (a full disk) leaves no trace in the file
//! (the writer cuts it back) and is counted in [`ArchiveSummary::failed`] with the first error,
//! which the run's summary carries; the crawl goes on.
//!
//! When the run drops its last tap, the actor stops and closes the current file (fsync, index,
//! rename); the run waits for that before it returns.

use std::io::{self, BufReader, Cursor, Seek, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::archive::{ArchiveSummary, Exchange, WarcOptions, WarcWriter};
use crate::config::Config;
use crate::life::{panic_message, Life};
use crate::protocol::{Archive, ArchivePieces, Spool};
use crate::spec::CrawlSpec;

/// What the archivist counts, read by the run once the archive is closed.
#[derive(Debug, Default)]
pub(crate) struct ArchiveStats {
    exchanges: AtomicU64,
    truncated: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    files: Mutex<Vec<PathBuf>>,
    closed: AtomicBool,
    told: Notify,
}

impl ArchiveStats {
    fn failed(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
    }

    /// Resolves once the archive's last file is closed, or after `patience`: false then.
    pub async fn closed(&self, patience: Duration) -> bool {
        let wait = async {
            loop {
                let told = self.told.notified();
                tokio::pin!(told);
                told.as_mut().enable();
                if self.closed.load(Ordering::SeqCst) {
                    return;
                }
                told.await;
            }
        };
        actix_rt::time::timeout(patience, wait).await.is_ok()
    }

    /// The archive's summary, as it stands.
    pub fn summary(&self) -> ArchiveSummary {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let bytes = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        let mut error = self
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !self.closed.load(Ordering::SeqCst) {
            error.get_or_insert_with(|| "the last file was not closed in time".into());
        }
        ArchiveSummary {
            exchanges: self.exchanges.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            error,
            files,
            bytes,
        }
    }
}

/// The `warcinfo` fields of a crawl: what it is (flags, its version, the crawl's options) and
/// the standard fields (`robots`, `http-header-user-agent`), after any the embedder gave.
pub(crate) fn with_crawl_info(opts: WarcOptions, spec: &CrawlSpec, config: &Config) -> WarcOptions {
    let secs = |d: Duration| format!("{}", d.as_secs_f64());
    let seeds: Vec<&str> = spec.seeds().collect();
    let mut opts = opts
        .info("robots", if spec.robots { "obey" } else { "ignore" })
        .info("http-header-user-agent", config.user_agent.clone())
        .info("flags-start-urls", seeds.join(" "))
        .info(
            "flags-max-depth",
            spec.max_depth.map_or("none".into(), |d| d.to_string()),
        )
        .info(
            "flags-max-pages",
            spec.max_pages.map_or("none".into(), |p| p.to_string()),
        )
        .info("flags-per-host", spec.per_host.to_string())
        .info("flags-delay", secs(spec.delay))
        .info("flags-concurrency", config.pool_size.to_string())
        .info("flags-timeout", secs(config.timeout))
        .info("flags-max-size", config.max_body.to_string())
        .info("flags-max-redirects", config.max_redirects.to_string())
        .info("flags-resume", spec.resume.to_string());
    for (name, list) in [
        ("flags-allow-domain", spec.domains.join(" ")),
        (
            "flags-include",
            spec.include
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "flags-exclude",
            spec.exclude
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ] {
        if !list.is_empty() {
            opts = opts.info(name, list);
        }
    }
    opts
}

pub(crate) struct Archivist {
    /// Shared with the actors a panic would make the `SyncArbiter` build again: the writer and
    /// its open file outlive them.
    writer: Arc<Mutex<Option<WarcWriter>>>,
    dir: PathBuf,
    stats: Arc<ArchiveStats>,
    life: Life,
}

impl Archivist {
    /// Opens the archive (finishing what a killed run with the same prefix left), before
    /// anything is fetched: an archive that cannot be written stops the crawl before it starts.
    pub fn open(opts: WarcOptions) -> io::Result<WarcWriter> {
        WarcWriter::create(opts)
    }

    /// Starts the archivist on a thread of its own.
    pub fn start(
        writer: WarcWriter,
        dir: &Path,
        stats: Arc<ArchiveStats>,
        life: Life,
    ) -> Addr<Archivist> {
        let writer = Arc::new(Mutex::new(Some(writer)));
        let dir = dir.to_path_buf();
        SyncArbiter::start(1, move || Archivist {
            writer: Arc::clone(&writer),
            dir: dir.clone(),
            stats: Arc::clone(&stats),
            life: life.clone(),
        })
    }

    fn spool(&self, spool: Option<Spool>, pieces: &[Bytes]) -> io::Result<Spool> {
        let mut spool = match spool {
            Some(s) => s,
            // Beside the archive, on its disk: the system's temp folder may be memory.
            None => Spool {
                file: tempfile::tempfile_in(&self.dir)?,
                len: 0,
            },
        };
        for piece in pieces {
            spool.file.write_all(piece)?;
            spool.len += piece.len() as u64;
        }
        Ok(spool)
    }

    fn record(&self, msg: &mut Archive) -> io::Result<()> {
        let ex = &msg.exchange;
        let exchange = Exchange {
            url: &ex.url,
            date: ex.date,
            ip: ex.ip,
            request: &ex.request,
            response_head: &ex.response_head,
            truncated: msg.cut.map(|c| c.as_str()),
        };
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = guard
            .as_mut()
            .ok_or_else(|| io::Error::other("the archive is closed"))?;
        match msg.spool.take() {
            Some(spool) => {
                let mut spool = self.spool(Some(spool), &msg.pieces)?;
                spool.file.rewind()?;
                let mut body = BufReader::with_capacity(64 * 1024, spool.file);
                writer.write_exchange(&exchange, &mut body)?;
            }
            None => {
                let body = match msg.pieces.as_slice() {
                    [] => Bytes::new(),
                    [one] => one.clone(),
                    many => {
                        let mut all = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
                        for piece in many {
                            all.extend_from_slice(piece);
                        }
                        all.freeze()
                    }
                };
                writer.write_exchange(&exchange, &mut Cursor::new(body))?;
            }
        }
        Ok(())
    }
}

impl Actor for Archivist {
    type Context = SyncContext<Self>;

    fn started(&mut self, _: &mut SyncContext<Self>) {
        self.life.born();
    }

    /// The last tap is gone: the current file is closed (fsync, index, rename).
    fn stopped(&mut self, _: &mut SyncContext<Self>) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            match catch_unwind(AssertUnwindSafe(|| writer.finish())) {
                Ok(Ok(files)) => self
                    .stats
                    .files
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(files),
                Ok(Err(e)) => self.stats.failed(format!("closing the WARC file: {e}")),
                Err(p) => self.stats.failed(format!(
                    "closing the WARC file: panicked: {}",
                    panic_message(&*p)
                )),
            }
        }
        self.stats.closed.store(true, Ordering::SeqCst);
        self.stats.told.notify_waiters();
        self.life.died();
    }
}

impl Handler<ArchivePieces> for Archivist {
    type Result = Result<Spool, String>;

    fn handle(&mut self, msg: ArchivePieces, _: &mut SyncContext<Self>) -> Self::Result {
        let result = catch_unwind(AssertUnwindSafe(|| self.spool(msg.spool, &msg.pieces)))
            .unwrap_or_else(|p| Err(io::Error::other(panic_message(&*p))));
        result.map_err(|e| {
            let why = format!("spooling a large body for the archive: {e}");
            self.stats.failed(why.clone());
            why
        })
    }
}

impl Handler<Archive> for Archivist {
    type Result = ();

    fn handle(&mut self, mut msg: Archive, _: &mut SyncContext<Self>) {
        let result = catch_unwind(AssertUnwindSafe(|| self.record(&mut msg)))
            .unwrap_or_else(|p| Err(io::Error::other(panic_message(&*p))));
        match result {
            Ok(()) => {
                self.stats.exchanges.fetch_add(1, Ordering::Relaxed);
                if msg.cut.is_some() {
                    self.stats.truncated.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => self
                .stats
                .failed(format!("recording {}: {e}", msg.exchange.url)),
        }
        // The next exchange may come.
        drop(msg.permit);
    }
}
