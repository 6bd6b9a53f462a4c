//! The actor engine of `flags`: a concurrent, bounded, crash-safe HTTP downloader and crawler
//! that other tools embed.
//!
//! # Layout
//!
//! The engine is in layers; a module imports only from its own layer or below, never back up.
//!
//! ```text
//!  layer 4  run        Crawler: wiring, shutdown (a future), the public handles
//!  layer 3  actors     supervisor · fetcher · writer · reporter (+ bar) · frontier · archivist
//!                         │ talk only through
//!  layer 2  protocol   every message between actors; actors hold Recipient<M>
//!           recording  the web archive's tap on the HTTP clients (sends protocol messages)
//!  layer 1  policy     what a crawl decides: scope, depth, redirect chains, robots.txt,
//!                      politeness, pauses, give-up rules (pure: events + clock → decisions)
//!           store      where a crawl's state is kept: memory (+ journal) | Redis (shared)
//!           http, wire the HTTP of one request (knows no actor) | the connections under awc
//!  layer 0  job, body, config, spec, sink, extract, names, seen, journal, life, source,
//!           archive (WARC/1.1 files and CDXJ indexes)
//! ```
//!
//! The actors, and what travels between them (all in `protocol`):
//!
//! ```text
//!   job source (a list, a stream)     or     frontier (crawl; list shared through Redis)
//!        │ next()                              │ answers NextUrl          ▲ PageDone (outcome,
//!        ▼                                     ▼                          │   links found)
//!  ┌────────────┐  Assignment  ┌─────────────┐ Save, Append ┌──────────┐  │
//!  │ Supervisor │ ───────────► │ Fetcher × N │ ───────────► │ Writer   │  │  Failed ─► frontier
//!  │            │ ◄─ NextJob ─ │ awc Client  │              │ (blocking│  │  (a Retry back:
//!  └─────┬──────┘              └──────┬──────┘              │ threads) │  │   later, or fail)
//!        │ Tally                      │ Finished            └────┬─────┘  │
//!        ▼                            ▼ (404, errors)             │ Finished (saved, failed)
//!  ┌─────────────────────────────────────────────────────────────┴──────┴─────────────┐
//!  │ Reporter: counts; progress bar; Event to subscribers (try_send); PageDone to the │
//!  │ frontier; ends the run when every job read has its outcome → Summary             │
//!  └───────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! - `supervisor` owns the job source and the pool. Dispatch is pull: a free fetcher asks for
//!   the next job, and the source is read one job at a time, so memory is bounded by the pool
//!   size, not the number of jobs. A fetcher that dies is replaced and its job queued again.
//! - `fetcher` does one job at a time (see `http`) and hands 200 bodies to the writer. A plain
//!   list's jobs are retried here; a frontier's are tried once per hand-out and the frontier
//!   decides what a failure means.
//! - `writer` runs the [`Sink`] on blocking threads (and the link step, [`Extract`], just before
//!   a page is stored); the default [`DirSink`] makes a file appear under its final name only when
//!   complete.
//! - `reporter` is the only place that counts, and the start of the page-done loop: every
//!   outcome goes to the frontier with the links found on the page.
//! - `frontier` (a crawl, [`Crawler::crawl`]; a shared crawl or list, [`Crawler::crawl_shared`],
//!   [`Crawler::run_shared`]) owns what is left to fetch: one queue per host (`store::queue`:
//!   entries packed in one buffer, a crawl may hold millions), robots.txt per host,
//!   the jobs handed out; it takes every decision from `policy` and keeps shared state in its
//!   store: `store::memory` (the seen-set [`SeenSet`], host state, the journal that lets a crawl
//!   resume after any stop) or `store::redis` ([`SharedCrawl`]: the same state in Redis Streams,
//!   leases that move a dead worker's jobs to the others, the crawl's identity).
//! - `policy` is the crawl's rule book, written once: both stores decide alike.
//! - `archivist` writes the crawl's web archive ([`archive`], [`CrawlSpecBuilder::warc`]) on a
//!   thread of its own; the fetchers' and the frontier's HTTP clients record every exchange
//!   through `recording`'s tap, so the archive holds what was fetched whatever the sink keeps.
//! - `http` is the HTTP of one request; `wire` sits under awc, on every connection: it lets a
//!   request that met a stale keep-alive connection be sent again at once on a fresh one, retires
//!   connections an HTTP/1.0 server closes, reads bodies that end with the connection, and opens
//!   new connections to a host gently until it shows it keeps them alive.
//!
//! # Invariants
//!
//! 1. Every job read ends in exactly one outcome (downloaded, not found, error, skipped) or, on an
//!    interrupted run, is counted as cancelled: the [`Summary`] counts add up to `jobs`.
//! 2. A file under its final name is complete and byte-identical to what the server sent.
//! 3. At most `pool_size` requests are in flight, and that many are when there is work (the
//!    client's connection limit is the pool size, not awc's default of 100).
//! 4. Memory is bounded by the pool size (and the body limit), not by the number of jobs.
//! 5. The run ends by itself when the last outcome is in, and every crawl ends: every wait and
//!    retry has a cap, every host a give-up rule, and a redirect chain across pages is cut like
//!    one inside a request (see [`CrawlSpecBuilder::give_up_after`]).
//! 6. When the shutdown future resolves (or a [`CancelHandle`] is used), dispatch stops; in-flight
//!    jobs get the grace period to finish, the rest are cancelled, and no temp file remains. Past
//!    the grace period, stores under way finish before the summary: a file under its final name
//!    is always counted as downloaded.
//! 7. When [`Crawler::run`] returns, nothing of the run remains: no actor (see [`live_actors`]),
//!    timer, thread, connection or request of it.
//! 8. Nothing that may block runs on an event loop: a source that may block is read on a thread
//!    of its own ([`blocking_source`]), the sink is called only on the writer's threads, and every
//!    body reaches it as a reader, in pieces, whatever its size.
//!
//! # Backpressure and shutdown
//!
//! A fetcher takes a store permit before handing a body to the writer (one permit per fetcher),
//! and awaits the reporter for the outcomes it reports itself, so a slow disk or a slow listener
//! slows the crawl instead of growing a queue. Fetchers run on the run's own arbiter by default
//! (beside the supervisor and the reporter), so dispatch and counting never wake another thread.
//! Subscribers never slow the crawl: events go out with `try_send` and what a full channel
//! refuses is counted in [`Summary::events_dropped`].
//!
//! # Example
//!
//! A program without an async runtime of its own (see also `examples/embed.rs`):
//!
//! ```
//! use flags_actors::{Config, Crawler, DirSink, Event, Job};
//!
//! # // A small real server on 127.0.0.1, port 0, so the example runs anywhere.
//! # use actix_web::{web, App, HttpResponse, HttpServer};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let base = format!("http://{}", listener.local_addr()?);
//! # std::thread::spawn(move || actix_web::rt::System::new().block_on(async move {
//! #     HttpServer::new(|| App::new().default_service(web::to(|| async { HttpResponse::Ok().body("hello") })))
//! #         .workers(1).listen(listener)?.run().await
//! # }));
//! # let dest = tempfile::tempdir()?;
//! let config = Config::builder().pool_size(20).build()?;
//! let jobs = (1..=3).map(move |i| Job::new(format!("page{i}"), format!("{base}/{i}"), format!("{i}.html")));
//! let (events, handle) = Crawler::new(config, DirSink::new(dest.path())?).spawn(jobs);
//! for event in events {
//!     if let Event::Job(report) = event {
//!         println!("{} {}", report.job.key, report.outcome.kind());
//!     }
//! }
//! let summary = handle.join()?;
//! assert_eq!(summary.downloaded, 3);
//! # assert_eq!(std::fs::read(dest.path().join("2.html"))?, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod archive;
mod archivist;
mod bar;
mod body;
mod config;
mod extract;
mod fetcher;
mod frontier;
mod http;
mod index;
mod job;
mod journal;
mod life;
mod names;
mod policy;
mod protocol;
mod recording;
mod reporter;
mod run;
mod seen;
mod sink;
pub mod sitemap;
mod source;
mod spec;
mod store;
mod supervisor;
mod wire;
mod writer;

pub use config::{Config, ConfigBuilder, ConfigError, Namer, Progress};
pub use extract::{
    css_links, html_links, is_css, is_html, Extract, Extracted, HtmlLinks, LinkExtractor, Page,
};
pub use job::{ErrorKind, Event, Job, JobError, JobReport, Outcome, SharedStatus, Summary};
pub use life::live_actors;
pub use names::{collided_file, file_for_url, page_file, safe_segment, url_tag};
pub use reporter::Listener;
pub use run::{CancelHandle, CrawlError, CrawlHandle, Crawler};
pub use seen::SeenSet;
pub use sink::{is_safe_relative, DirSink, Part, Sink};
pub use source::blocking_source;
pub use spec::{normalise, CrawlSpec, CrawlSpecBuilder, SpecError};
pub use store::redis::{redact, SharedCrawl};
