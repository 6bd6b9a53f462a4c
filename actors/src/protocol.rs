//! The **protocol**: every message between the engine's actors, in one place.
//!
//! Actors hold one another as `Recipient<M>` of these messages, never as `Addr<Actor>`, so no
//! actor's module imports another's, and a test can stand in for any of them. The loop of one
//! page in a crawl:
//!
//! ```text
//!  frontier ──(answer to NextUrl)──► supervisor ──(answer to NextJob)──► fetcher
//!     ▲                                                                  │  │
//!     │ PageDone (outcome, links)                  Failed ──► frontier ◄─┘  │ Save / Append
//!     │                                            (a Verdict back)         ▼
//!  reporter ◄──────────────── Finished (every outcome) ─────────────── writer
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;

use crate::body::{Body, PartState};
use crate::extract::Extract;
use crate::job::{ErrorKind, Job, JobError, JobReport};

// ---- to the supervisor -----------------------------------------------------------------------

/// A job for a fetcher, and how many times a fetcher died holding it.
pub(crate) struct Assignment {
    pub job: Job,
    pub tries: u32,
}

/// A fetcher is free and asks for work; `None` means there is none left (the fetcher stops).
/// `returned` says that its last job went back to the frontier to be tried again later: it was
/// read from the source but has no outcome yet.
#[derive(Message)]
#[rtype(result = "Option<Assignment>")]
pub(crate) struct NextJob {
    pub fetcher: usize,
    pub returned: bool,
}

/// A fetcher's job has its outcome, and the fetcher is about to stop (after a caught panic).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Release {
    pub fetcher: usize,
}

/// A fetcher actor was dropped (stopped, or killed by a panic the fetcher did not catch).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct FetcherGone {
    pub fetcher: usize,
}

/// Stop dispatching: the jobs in flight are the last ones.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stop;

// ---- to the reporter -------------------------------------------------------------------------

/// A job finished with this report.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Finished(pub JobReport);

/// What the supervisor tells the reporter about the jobs as a whole.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum Tally {
    /// `jobs` jobs were read; `last` once the source is exhausted (or dispatch stopped), making
    /// it the final total.
    Total { jobs: u64, last: bool },
    /// Jobs read but never to be tried (they waited for a retry when the run stopped).
    Cancelled(u64),
    /// The run was interrupted: whatever `Total` says next is what was dispatched.
    Interrupted,
}

/// End the run now: jobs without an outcome are counted as cancelled.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Finalize;

// ---- to the writer ---------------------------------------------------------------------------

/// A complete body to store as `file`; the writer reports the outcome with `report`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Save {
    pub report: JobReport,
    pub started: Instant,
    pub file: PathBuf,
    pub body: Body,
    /// In a crawl, a page for the extractor (the body is then in memory).
    pub page: Option<PageInfo>,
    /// A crawled page, whose file is its URL's own (the same URL may store it again; another
    /// URL's name taken goes to a collision name), not a list's job (whose name is its alone).
    pub owned: bool,
    /// The body's `Content-Type`, for the crawl's index.
    pub mime: Option<String>,
    /// Held until the body is stored: bounds the bodies between fetchers and the disk.
    pub permit: OwnedSemaphorePermit,
}

/// What the extractor needs besides the body.
pub(crate) struct PageInfo {
    pub headers: Vec<(String, String)>,
    pub extractor: Arc<dyn Extract>,
}

/// Append `piece` to the body of `job`, starting it when `part` is `None`.
#[derive(Message)]
#[rtype(result = "Result<PartState, JobError>")]
pub(crate) struct Append {
    pub job: Job,
    pub part: Option<PartState>,
    pub piece: Bytes,
}

/// Is this file already stored? Asked on the writer's blocking threads, because a sink may need
/// the disk (or the network) to answer.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Exists(pub PathBuf);

/// In a crawl with `skip_existing`: is the page stored already? If so, its links, read back from
/// the sink (`Some(vec![])` when the sink cannot read it back or the extractor does not want it).
#[derive(Message)]
#[rtype(result = "Option<Vec<String>>")]
pub(crate) struct ExistingPage {
    pub job: Job,
    pub file: PathBuf,
    /// `None`: the page's links are not wanted (it is at the depth limit).
    pub extractor: Option<Arc<dyn Extract>>,
    pub limit: u64,
}

// ---- to the frontier -------------------------------------------------------------------------

/// The next URL to fetch; `None` when the crawl is over.
#[derive(Message)]
#[rtype(result = "Option<Job>")]
pub(crate) struct NextUrl;

/// A page handed out has its final outcome.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(crate) struct PageDone {
    pub url: String,
    /// Links found on the page (or the target of its redirect).
    pub links: Vec<String>,
    /// Requisites found on the page (images, stylesheets...).
    pub assets: Vec<String>,
    /// The page answered a redirect: its target keeps the page's depth.
    pub redirect: bool,
    /// The last status received (`None`: no response came).
    pub status: Option<u16>,
    /// The outcome's kind (`ok`, `not_found`, `redirected`, `skipped`, `error`).
    pub outcome: &'static str,
}

/// An attempt at a page failed in a way that may pass: the frontier's policy decides whether it
/// is tried again later (and pauses or gives up its host).
#[derive(Message, Debug)]
#[rtype(result = "Retry")]
pub(crate) struct Failed {
    pub url: String,
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub message: String,
}

/// The frontier's answer to [`Failed`].
#[derive(Debug, MessageResponse)]
pub(crate) enum Retry {
    /// The page went back to the frontier: it has no outcome yet.
    Later,
    /// The page ends as this error.
    Fail(JobError),
}

/// Who a fetcher talks to besides the supervisor that started it.
#[derive(Clone)]
pub(crate) struct Peers {
    pub save: Recipient<Save>,
    pub append: Recipient<Append>,
    pub exists: Recipient<Exists>,
    pub existing: Recipient<ExistingPage>,
    pub finished: Recipient<Finished>,
    /// In a crawl (or a shared list): where failed attempts go for a verdict.
    pub failed: Option<Recipient<Failed>>,
}

/// The counts a crawl's frontier keeps and the reporter reads (for the bar and the summary).
#[derive(Debug, Default)]
pub(crate) struct CrawlStats {
    /// URLs new to the crawl (seeds included).
    pub discovered: std::sync::atomic::AtomicU64,
    /// URLs held and not handed out.
    pub queued: std::sync::atomic::AtomicU64,
    /// URLs robots.txt disallows.
    pub blocked: std::sync::atomic::AtomicU64,
    /// Sitemaps read (or tried).
    pub sitemaps: std::sync::atomic::AtomicU64,
    /// Why the crawl could not go on, when its state was lost.
    pub lost: std::sync::Mutex<Option<String>>,
}

// ---- to the archivist ------------------------------------------------------------------------

/// The start of a large body being recorded for the web archive: an anonymous temp file beside
/// the archive (deleted by the system when closed), and its length.
#[derive(Debug)]
pub(crate) struct Spool {
    pub file: std::fs::File,
    pub len: u64,
}

/// Append `pieces` to the spool of a body being recorded (a new spool when `spool` is `None`);
/// answered with the spool, or why it could not be written. Awaited, so a slow archive slows the
/// crawl instead of holding bodies in memory.
#[derive(Message)]
#[rtype(result = "Result<Spool, String>")]
pub(crate) struct ArchivePieces {
    pub spool: Option<Spool>,
    pub pieces: Vec<Bytes>,
}

/// Record one exchange in the web archive: its heads, then its body (the spool, if it has one,
/// then `pieces`).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Archive {
    pub exchange: crate::http::Captured,
    pub spool: Option<Spool>,
    pub pieces: Vec<Bytes>,
    /// Set when the body is not all the server sent.
    pub cut: Option<crate::http::Cut>,
    /// Held until the exchange is written: bounds the exchanges between fetchers and the disk.
    pub permit: OwnedSemaphorePermit,
}
