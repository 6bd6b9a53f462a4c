//! The data that flows through the engine: what to fetch ([`Job`]), how it ended ([`Outcome`],
//! [`JobReport`]), what subscribers see ([`Event`]) and what a run returns ([`Summary`]).
//!
//! A job's result is data, not an `Err` that stops the run: a failed download is one more
//! [`Outcome::Error`] in the counts.

use std::path::PathBuf;
use std::time::Duration;

/// One thing to download. Build it with [`Job::new`] (fields may be added in later versions).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// A short name for reports (a country code such as `BR`, or the URL itself).
    pub key: String,
    /// The absolute http(s) URL to GET.
    pub url: String,
    /// Where the body goes, relative to the sink (for the directory sink: a path under its folder).
    pub file: PathBuf,
    /// A second URL whose JSON body names the file (the book's flags3 `metadata.json`); used only
    /// when the config has a [`Namer`](crate::Namer).
    pub meta_url: Option<String>,
    /// In a crawl, how many links away from a seed this page is (seeds are 0); 0 for a list.
    pub depth: u32,
    /// In a crawl, the page this URL was found on (`None` for seeds and list jobs).
    pub parent: Option<String>,
    /// In a crawl, how many redirects in a row led to this URL (0 for a link found on a page).
    pub hops: u32,
    /// Attempts already made at this job before this one (a crawl tries a page again later).
    pub(crate) tries: u32,
    /// Decided before any request: the job ends as this error (its host was given up).
    pub(crate) verdict: Option<JobError>,
    /// What the crawl fetches it for.
    pub(crate) role: Role,
}

/// What a crawl fetches a URL for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Role {
    /// A page: read for its links, saved.
    #[default]
    Page,
    /// A page's requisite (an image, a stylesheet...): saved; a stylesheet is read for its own
    /// requisites, nothing is read for links.
    Asset,
    /// A sitemap: read for the URLs it lists, not saved, not a page of the crawl.
    Sitemap,
}

impl Role {
    /// One letter, as the journal and the shared queue keep it.
    pub(crate) fn letter(self) -> &'static str {
        match self {
            Role::Page => "p",
            Role::Asset => "a",
            Role::Sitemap => "s",
        }
    }

    /// The role a letter names (a page when it names none).
    pub(crate) fn of_letter(letter: &str) -> Self {
        match letter {
            "a" => Role::Asset,
            "s" => Role::Sitemap,
            _ => Role::Page,
        }
    }
}

impl Job {
    /// A job that GETs `url` and stores the body as `file`.
    pub fn new(key: impl Into<String>, url: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Job {
            key: key.into(),
            url: url.into(),
            file: file.into(),
            meta_url: None,
            depth: 0,
            parent: None,
            hops: 0,
            tries: 0,
            verdict: None,
            role: Role::Page,
        }
    }

    /// Also fetch `meta_url` and let the config's [`Namer`](crate::Namer) pick the file name.
    pub fn with_meta_url(mut self, meta_url: impl Into<String>) -> Self {
        self.meta_url = Some(meta_url.into());
        self
    }
}

/// How one job ended. Every job ends in exactly one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The body was stored completely under this name (relative to the sink).
    Downloaded(PathBuf),
    /// The server answered 404.
    NotFound,
    /// In a crawl, the server answered a redirect to this URL: the crawl follows it as a link
    /// found on this page (at the same depth), so a page reached by several redirects is still
    /// fetched once. Outside a crawl, redirects are followed within the job.
    Redirected(String),
    /// The file already existed and the config asked to skip existing files.
    Skipped,
    /// In a crawl, fetched (and read for its links) but not saved: the crawl's save rules
    /// (`--accept`, `--reject`, `--accept-type`, `--no-files`) leave it out.
    Fetched,
    /// Anything else: a status other than 200 and 404, a transport error, a timeout, a body over
    /// the size limit, a failed write. Its kind says which, its message says how.
    Error(JobError),
}

/// Why a job failed: a kind to act on, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobError {
    /// What went wrong, as a category.
    pub kind: ErrorKind,
    /// What went wrong, in words (`HTTP error 418 - I'm a teapot`, `timed out after 30s ...`).
    pub message: String,
}

impl JobError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        JobError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kinds of [`JobError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL is not an absolute http(s) URL.
    InvalidUrl,
    /// No connection could be made, or it broke before a response came.
    Connect,
    /// The TLS handshake failed (a certificate error, say); never retried.
    Tls,
    /// The attempt's deadline passed.
    Timeout,
    /// The server answered a status other than 200 and 404.
    Status,
    /// A redirect could not be followed (a loop, a non-http target, https to http).
    Redirect,
    /// The body was larger than the limit, announced or streamed.
    TooLarge,
    /// The body ended before it was complete (a cut connection, a short Content-Length).
    Truncated,
    /// The response broke the HTTP rules.
    Protocol,
    /// The file name could not be made (the metadata gave no usable name, say).
    Name,
    /// The body could not be stored (a full disk, a name already stored by another job).
    Write,
    /// The engine itself failed (a panic caught, a fetcher that died).
    Internal,
    /// Not requested: its host was given up after failing too often in a row (see
    /// [`CrawlSpec::give_up_after`](crate::CrawlSpecBuilder::give_up_after)).
    GaveUp,
}

impl ErrorKind {
    /// The kind in snake case, as `--json` writes it: `invalid_url`, `connect`, `tls`, `timeout`,
    /// `status`, `redirect`, `too_large`, `truncated`, `protocol`, `name`, `write`, `internal`,
    /// `gave_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Redirect => "redirect",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Truncated => "truncated",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Name => "name",
            ErrorKind::Write => "write",
            ErrorKind::Internal => "internal",
            ErrorKind::GaveUp => "gave_up",
        }
    }
}

impl Outcome {
    /// The short word used in reports and JSON: `ok`, `not_found`, `redirected`, `skipped`,
    /// `fetched` or `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Downloaded(_) => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Redirected(_) => "redirected",
            Outcome::Skipped => "skipped",
            Outcome::Fetched => "fetched",
            Outcome::Error(_) => "error",
        }
    }
}

/// The record of one finished job, as the reporter and subscribers see it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobReport {
    /// The job as it was read from the source.
    pub job: Job,
    /// How it ended.
    pub outcome: Outcome,
    /// The last HTTP status received, if any response arrived.
    pub status: Option<u16>,
    /// Bytes of body stored (0 unless downloaded).
    pub bytes: u64,
    /// Time from the first attempt's start to the outcome.
    pub elapsed: Duration,
    /// How many attempts were made (1 without retries).
    pub attempts: u32,
    /// In a crawl, how many links the extractor found on this page (before scope and dedupe).
    pub links: u32,
    /// In a crawl, the records the extractor made of this page (see [`Extracted`](crate::Extracted)).
    pub records: Vec<String>,
    /// In a crawl, how many requisites (images, stylesheets...) the extractor found on it.
    pub assets: u32,
    /// The links themselves, on their way to the frontier (not part of the event).
    pub(crate) found: Vec<String>,
    /// The requisites themselves, on their way to the frontier.
    pub(crate) found_assets: Vec<String>,
}

impl JobReport {
    /// A report of `job` with `outcome`; the caller fills in the rest.
    pub(crate) fn new(job: Job, outcome: Outcome) -> Self {
        JobReport {
            job,
            outcome,
            status: None,
            bytes: 0,
            elapsed: Duration::ZERO,
            attempts: 0,
            links: 0,
            records: Vec::new(),
            assets: 0,
            found: Vec::new(),
            found_assets: Vec::new(),
        }
    }
}

/// What subscribers receive: one [`Event::Job`] per job, then one [`Event::Done`]; after that the
/// channel is closed, so `for event in rx` ends by itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A job finished.
    Job(JobReport),
    /// The run ended; no more events follow.
    Done(Summary),
}

/// The counts of a finished run.
/// `downloaded + not_found + redirected + errors + skipped + fetched + cancelled == jobs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Jobs read from the source and handed to fetchers.
    pub jobs: u64,
    /// Jobs whose body is stored.
    pub downloaded: u64,
    /// Jobs the server answered 404.
    pub not_found: u64,
    /// Crawl pages that answered a redirect (followed as a link).
    pub redirected: u64,
    /// Jobs that failed (see each [`JobReport`] for the message).
    pub errors: u64,
    /// Jobs skipped because their file already existed.
    pub skipped: u64,
    /// In a crawl: pages fetched but not saved (the crawl's save rules leave them out).
    pub fetched: u64,
    /// Jobs in flight when the run was interrupted and that did not finish within the grace period.
    pub cancelled: u64,
    /// Body bytes stored.
    pub bytes: u64,
    /// True when the run was stopped by its shutdown signal rather than by running out of jobs.
    pub interrupted: bool,
    /// Events that could not be delivered because a subscriber's channel was full or closed.
    pub events_dropped: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// In a crawl: URLs in scope and new (seeds included), each queued once.
    pub discovered: u64,
    /// In a crawl: URLs discovered but never handed to a fetcher (the crawl was interrupted, or
    /// hit its page limit).
    pub not_visited: u64,
    /// In a crawl: URLs not fetched because robots.txt disallows them.
    pub blocked: u64,
    /// In a crawl: sitemaps read (or tried): requests that are not pages of the crawl.
    pub sitemaps: u64,
    /// In a shared crawl: how the whole crawl stood when this worker ended (every worker's jobs;
    /// `None` outside a shared crawl, or when Redis could not say).
    pub shared: Option<SharedStatus>,
    /// Why the crawl could not go on, when it could not: its state vanished from Redis, or Redis
    /// stopped answering for too long. Such a run is never complete.
    pub lost: Option<String>,
    /// In a crawl that keeps a web archive ([`CrawlSpecBuilder::warc`](crate::CrawlSpecBuilder::warc)):
    /// what it holds.
    pub archive: Option<crate::archive::ArchiveSummary>,
}

impl Summary {
    /// Jobs that have an outcome (every job but the cancelled ones).
    pub fn finished(&self) -> u64 {
        self.downloaded
            + self.not_found
            + self.redirected
            + self.errors
            + self.skipped
            + self.fetched
    }
}

/// The counts of a shared crawl, from Redis (`flags status`, and [`Summary::shared`]). `added == queued + in_flight +
/// done()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStatus {
    /// Jobs ever queued.
    pub added: u64,
    /// Waiting for a worker.
    pub queued: u64,
    /// Taken by a worker, not done yet.
    pub in_flight: u64,
    /// Done: stored.
    pub ok: u64,
    /// Done: 404.
    pub not_found: u64,
    /// Done: redirected (crawls).
    pub redirected: u64,
    /// Done: failed.
    pub errors: u64,
    /// Done: already stored.
    pub skipped: u64,
    /// Done: disallowed by robots.txt.
    pub blocked: u64,
    /// Done: fetched, not saved (the save rules leave it out).
    pub fetched: u64,
    /// Sitemaps read (not pages of the crawl).
    pub sitemaps: u64,
    /// Workers that joined.
    pub workers: u64,
    /// The crawl exists in this Redis (it has an identity).
    pub exists: bool,
}

impl SharedStatus {
    /// Jobs with a final outcome.
    pub fn done(&self) -> u64 {
        self.ok
            + self.not_found
            + self.redirected
            + self.errors
            + self.skipped
            + self.blocked
            + self.fetched
            + self.sitemaps
    }

    /// Nothing queued or in flight: every job ever queued has its outcome.
    pub fn complete(&self) -> bool {
        self.exists && self.queued == 0 && self.in_flight == 0 && self.added == self.done()
    }
}
