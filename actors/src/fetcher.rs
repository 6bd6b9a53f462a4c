//! The **Fetcher**: downloads one job at a time.
//!
//! Owns: a clone of its arbiter's awc `Client` (one client per arbiter: awc's clients are `!Send`
//! and their connection pool is per client), and at most one job.
//! Receives: its next job as the answer to the [`NextJob`] it sends the supervisor when free.
//! Sends: [`Save`] (and [`Append`] for the pieces of a large body) to the writer for a 200 (the
//! writer reports that job), or [`Finished`] to the reporter with any other outcome, awaited;
//! [`Failed`] to the frontier when an attempt in a crawl failed in a way that may pass (the
//! frontier's policy answers: later, or the error it ends with); [`FetcherGone`] to the supervisor
//! when the actor is dropped, however that happens. In a crawl that keeps a web archive, its
//! client records every exchange (`recording`: `ArchivePieces`, `Archive` to the archivist). A store permit, taken before handing a body
//! over, makes a slow disk slow the crawl down instead of growing a queue.
//!
//! The HTTP of a job is in `http`. A plain list of jobs is retried here, with backoff; a crawl's
//! pages are tried once per hand-out and the frontier decides the rest. In a crawl, a page the
//! extractor wants (and whose links can lead somewhere) goes to the writer whole, with its
//! headers; a redirect is reported as an outcome whose target is a link, unless the chain is too
//! long; a stored page that is skipped is read back for its links. A panic while handling a job
//! is caught: the job ends as an error with the panic message and this fetcher retires, to be
//! replaced by the supervisor.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;

use crate::body::{Body, PartState};
use crate::config::Config;
use crate::extract::{is_html, Extract};
use crate::http::{check_url, fetch, fetch_retrying, Clients, Failure, Got, Read, Spill, Want};
use crate::job::{ErrorKind, Job, JobError, JobReport, Outcome};
use crate::life::Life;
use crate::names::page_file;
use crate::policy::Policy;
use crate::protocol::{
    Append, Assignment, ExistingPage, Exists, Failed, FetcherGone, Finished, NextJob, PageInfo,
    Peers, Release, Retry, Save,
};
use crate::recording::ArchiveTap;

/// What every fetcher of a run shares.
pub(crate) struct Shared {
    pub config: Config,
    pub peers: Peers,
    /// One permit per body handed to the writer and not yet stored.
    pub store_permits: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the run ends: every fetcher drops what it is doing and stops.
    pub cancel: tokio_util::sync::CancellationToken,
    /// The run's live actors.
    pub life: Life,
    /// Set when a frontier hands out the jobs (a crawl, or a list shared through Redis).
    pub crawl: Option<CrawlHooks>,
    /// Where every exchange is recorded, when the crawl keeps a web archive.
    pub archive: Option<ArchiveTap>,
}

/// What a frontier adds to a run.
pub(crate) struct CrawlHooks {
    /// The link step; `None` for a list of jobs (redirects are then followed within the job).
    pub extractor: Option<Arc<dyn Extract>>,
    /// The crawl's rules: redirect chains, the depth limit.
    pub policy: Arc<Policy>,
}

/// The supervisor, as a fetcher sees it.
pub(crate) type SupervisorLine = (
    Recipient<NextJob>,
    Recipient<Release>,
    Recipient<FetcherGone>,
);

/// The largest `metadata.json` (a one-line JSON object) accepted.
const META_LIMIT: u64 = 64 * 1024;

pub(crate) struct Fetcher {
    id: usize,
    shared: Arc<Shared>,
    client: Clients,
    supervisor: SupervisorLine,
}

impl Fetcher {
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        client: Clients,
        supervisor: SupervisorLine,
    ) -> Self {
        Fetcher {
            id,
            shared,
            client,
            supervisor,
        }
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.supervisor.2.do_send(FetcherGone { fetcher: self.id });
    }
}

impl Actor for Fetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared.life.born();
        // Every exchange of this fetcher (redirects, 404s, error bodies included) is recorded
        // by the http layer through the client, whatever becomes of the body.
        let client = match &self.shared.archive {
            Some(tap) => self.client.clone().recording(Rc::new(tap.clone())),
            None => self.client.clone(),
        };
        let work = work_loop(
            self.id,
            Arc::clone(&self.shared),
            client,
            self.supervisor.clone(),
        );
        // When the run ends, whatever this fetcher is doing (a request, a backoff sleep) is
        // dropped with its connection: nothing of a finished run keeps talking to a server.
        let cancel = self.shared.cancel.clone();
        let work = async move {
            tokio::select! {
                _ = work => {}
                _ = cancel.cancelled() => {}
            }
        };
        ctx.spawn(work.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.shared.life.died();
    }
}

/// How a job was handled.
enum Handled {
    /// Its outcome, for the reporter (boxed: the other answers carry nothing).
    Report(Box<JobReport>),
    /// Its body went to the writer, which reports the outcome.
    Stored,
    /// It went back to the frontier, to be tried again later.
    Returned,
}

/// Asks for a job, does it, reports it, and again, until the supervisor has none left.
async fn work_loop(id: usize, shared: Arc<Shared>, client: Clients, supervisor: SupervisorLine) {
    let (next, release, _) = supervisor;
    let mut returned = false;
    while let Ok(Some(Assignment { job, tries })) = next
        .send(NextJob {
            fetcher: id,
            returned,
        })
        .await
    {
        returned = false;
        let started = Instant::now();
        let result = AssertUnwindSafe(do_job(&shared, &client, &job, tries))
            .catch_unwind()
            .await;
        let (report, panicked) = match result {
            Ok(Handled::Stored) => continue,
            Ok(Handled::Returned) => {
                returned = true;
                continue;
            }
            Ok(Handled::Report(report)) => (*report, false),
            Err(panic) => (
                JobReport {
                    elapsed: started.elapsed(),
                    attempts: tries + 1,
                    ..JobReport::new(
                        job,
                        Outcome::Error(JobError::new(
                            ErrorKind::Internal,
                            format!("fetcher panicked: {}", crate::life::panic_message(&*panic)),
                        )),
                    )
                },
                true,
            ),
        };
        if shared.peers.finished.send(Finished(report)).await.is_err() {
            return;
        }
        if panicked {
            // The panic may have left this actor's state half-updated: retire and be replaced.
            let _ = release.send(Release { fetcher: id }).await;
            return;
        }
    }
}

/// Does one job.
async fn do_job(shared: &Shared, client: &Clients, job: &Job, tries: u32) -> Handled {
    let started = Instant::now();
    let config = &shared.config;
    let report = |outcome, status, attempts| {
        Handled::Report(Box::new(JobReport {
            status,
            elapsed: started.elapsed(),
            attempts,
            ..JobReport::new(job.clone(), outcome)
        }))
    };
    if let Some(error) = &job.verdict {
        return report(Outcome::Error(error.clone()), None, job.tries);
    }
    if let Err(e) = check_url(&job.url) {
        return report(
            Outcome::Error(JobError::new(ErrorKind::InvalidUrl, e)),
            None,
            0,
        );
    }
    // The name comes first (the book's flags3 order): no image is fetched only to be thrown
    // away when its metadata fails, and an existing file is skipped under its real name.
    let file = match name_file(shared, client, job).await {
        Ok(Some(file)) => file,
        Ok(None) => return report(Outcome::NotFound, Some(404), tries + 1),
        Err(f) => return report(Outcome::Error(f.error()), f.status, tries + 1),
    };
    let crawl = shared.crawl.as_ref();
    // A page is read whole for the extractor, unless it only gives links and they cannot lead
    // anywhere (the page is at the depth limit).
    let extractor = crawl.and_then(|c| {
        c.extractor
            .as_ref()
            .filter(|e| c.policy.wants_links(job.depth) || !e.only_links())
    });
    if config.skip_existing {
        if let Some(found) = skipped(shared, job, &file, extractor).await {
            let mut r = JobReport::new(job.clone(), Outcome::Skipped);
            r.elapsed = started.elapsed();
            r.links = found.len() as u32;
            r.found = found;
            return Handled::Report(Box::new(r));
        }
    }
    let want = Want {
        follow: crawl.is_none_or(|c| c.extractor.is_none()),
        max_redirects: config.max_redirects,
        extract: extractor.map(|e| &**e as &dyn Extract),
    };
    let mut spill = WriterSpill {
        append: shared.peers.append.clone(),
        job: job.clone(),
        part: None,
        error: None,
    };
    let mut attempts = job.tries;
    let got = match (crawl, &shared.peers.failed) {
        (Some(_), Some(failed)) => {
            attempts += 1;
            match fetch(
                client,
                config,
                &job.url,
                config.max_body,
                want,
                Some(&mut spill),
            )
            .await
            {
                Err(f) if f.transient => match ask(failed, job, &f).await {
                    Retry::Later => return Handled::Returned,
                    Retry::Fail(e) => Err(Failure {
                        kind: e.kind,
                        message: e.message,
                        ..f
                    }),
                },
                other => other,
            }
        }
        _ => {
            attempts = tries;
            let limit = config.max_body;
            fetch_retrying(
                client,
                config,
                &job.url,
                limit,
                want,
                Some(&mut spill),
                &mut attempts,
            )
            .await
        }
    };
    let (body, page, mime) = match got {
        Ok(Got::Body(Read::Memory(bytes), mime)) => (Body::Memory(bytes), None, mime),
        Ok(Got::Body(Read::Spilled, mime)) => match spill.part.take() {
            Some(part) => (Body::Parts(Box::new(part)), None, mime),
            None => {
                let e = spill.error.take().unwrap_or_else(|| {
                    JobError::new(ErrorKind::Internal, "a large body went missing")
                });
                return report(Outcome::Error(e), Some(200), attempts);
            }
        },
        Ok(Got::Page(bytes, headers)) => {
            let mime = headers
                .iter()
                .find(|(n, _)| n == "content-type")
                .map(|(_, v)| v.clone());
            (Body::Memory(bytes), Some(headers), mime)
        }
        Ok(Got::NotFound) => return report(Outcome::NotFound, Some(404), attempts),
        Ok(Got::Redirect(target, status)) => {
            let hop = crawl.map_or(Ok(0), |c| c.policy.redirect_hop(job.hops));
            return match hop {
                Ok(_) => {
                    match report(Outcome::Redirected(target.clone()), Some(status), attempts) {
                        Handled::Report(mut r) => {
                            r.found = vec![target];
                            Handled::Report(r)
                        }
                        other => other,
                    }
                }
                Err(why) => report(
                    Outcome::Error(JobError::new(
                        ErrorKind::Redirect,
                        format!("HTTP error {status} - {why}"),
                    )),
                    Some(status),
                    attempts,
                ),
            };
        }
        Err(f) => return report(Outcome::Error(f.error()), f.status, attempts),
    };
    let page = page.zip(extractor).map(|(headers, extractor)| PageInfo {
        headers,
        extractor: Arc::clone(extractor),
    });
    // A crawled page is named by its URL and whether it is HTML (wget's --adjust-extension); a
    // list's job keeps the name it came with.
    let owned = crawl.is_some_and(|c| c.extractor.is_some());
    let file = if owned {
        page_file(&job.url, is_html(mime.as_deref())).unwrap_or(file)
    } else {
        file
    };
    // Waits only when the writers are that far behind: the permit bounds the bodies in memory.
    let Ok(permit) = Arc::clone(&shared.store_permits).acquire_owned().await else {
        return report(
            Outcome::Error(JobError::new(ErrorKind::Internal, "the run is ending")),
            Some(200),
            attempts,
        );
    };
    let save = Save {
        report: JobReport {
            status: Some(200),
            attempts,
            ..JobReport::new(
                job.clone(),
                Outcome::Error(JobError::new(ErrorKind::Internal, "")),
            )
        },
        started,
        file,
        body,
        page,
        owned,
        mime,
        permit,
    };
    match shared.peers.save.try_send(save) {
        Ok(()) => Handled::Stored,
        Err(e) => report(
            Outcome::Error(JobError::new(
                ErrorKind::Internal,
                format!("writer unavailable: {e}"),
            )),
            Some(200),
            attempts,
        ),
    }
}

/// Asks the frontier what becomes of a page whose attempt failed.
async fn ask(failed: &Recipient<Failed>, job: &Job, f: &Failure) -> Retry {
    let msg = Failed {
        url: job.url.clone(),
        kind: f.kind,
        status: f.status,
        retry_after: f.retry_after,
        message: f.message.clone(),
    };
    failed
        .send(msg)
        .await
        .unwrap_or_else(|_| Retry::Fail(f.error()))
}

/// With `skip_existing`: `Some(links)` when the job's file is stored already (in a crawl, the
/// stored page's links, read back on the writer's threads, where a sink may block).
async fn skipped(
    shared: &Shared,
    job: &Job,
    file: &std::path::Path,
    extractor: Option<&Arc<dyn Extract>>,
) -> Option<Vec<String>> {
    if shared.crawl.as_ref().is_some_and(|c| c.extractor.is_some()) {
        // A page at the depth limit still counts as stored; its links lead nowhere.
        let ask = ExistingPage {
            job: job.clone(),
            file: file.to_path_buf(),
            extractor: extractor.map(Arc::clone),
            limit: shared.config.max_body,
        };
        return shared.peers.existing.send(ask).await.ok().flatten();
    }
    shared
        .peers
        .exists
        .send(Exists(file.to_path_buf()))
        .await
        .unwrap_or(false)
        .then(Vec::new)
}

/// Hands the pieces of a large body to the writer as they arrive.
struct WriterSpill {
    append: Recipient<Append>,
    job: Job,
    part: Option<PartState>,
    /// Why the writer refused a piece.
    error: Option<JobError>,
}

impl Spill for WriterSpill {
    fn reset(&mut self) {
        self.part = None;
        self.error = None;
    }

    fn spill(&mut self, piece: Bytes) -> LocalBoxFuture<'_, Result<(), Failure>> {
        Box::pin(async move {
            let msg = Append {
                job: self.job.clone(),
                part: self.part.take(),
                piece,
            };
            let refused = |e: JobError| Failure::permanent(e.kind, e.message);
            match self.append.send(msg).await {
                Ok(Ok(part)) => {
                    self.part = Some(part);
                    Ok(())
                }
                Ok(Err(e)) => Err(refused(e)),
                Err(e) => Err(refused(JobError::new(
                    ErrorKind::Internal,
                    format!("writer unavailable: {e}"),
                ))),
            }
        })
    }
}

/// The job's file name: its own, or the one the namer picks from its `meta_url` body, fetched
/// with the same retries and deadline as the job itself. `None` when the metadata is not found.
async fn name_file(
    shared: &Shared,
    client: &Clients,
    job: &Job,
) -> Result<Option<PathBuf>, Failure> {
    let (Some(namer), Some(meta_url)) = (shared.config.namer.as_ref(), job.meta_url.as_ref())
    else {
        return Ok(Some(job.file.clone()));
    };
    let config = &shared.config;
    let limit = META_LIMIT.min(config.max_body);
    let mut attempts = 0;
    let failed = |kind, message: String, status| Failure {
        status,
        ..Failure::permanent(kind, format!("metadata: {message}"))
    };
    let want = Want::plain(config);
    match fetch_retrying(client, config, meta_url, limit, want, None, &mut attempts).await {
        Ok(Got::Body(Read::Memory(meta), _)) => {
            namer.name(job, &meta).map(Some).map_err(|e| Failure {
                status: Some(200),
                ..Failure::permanent(ErrorKind::Name, e)
            })
        }
        Ok(Got::NotFound) => Ok(None),
        Ok(_) => Err(failed(
            ErrorKind::Internal,
            "unexpected answer".into(),
            None,
        )),
        Err(f) => Err(failed(f.kind, f.message, f.status)),
    }
}
