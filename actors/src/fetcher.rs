//! The **Fetcher**: downloads one job at a time.
//!
//! Owns: a clone of its arbiter's awc `Client` (one client per arbiter: awc's clients are `!Send`
//! and their connection pool is per client), and at most one job.
//! Receives: its next job as the answer to the [`NextJob`] it sends the supervisor when free.
//! Sends: [`Save`] to the writer for a 200 (the writer reports that job), or [`Finished`] to the
//! reporter with any other outcome, awaited; [`FetcherGone`] to the supervisor when the actor is
//! dropped, however that happens. A store permit, taken before handing a body over, makes a slow
//! disk slow the crawl down instead of growing a queue.
//!
//! The HTTP of a job (deadlines, retries, redirects, bodies) is in `http`. In a crawl, a page the
//! extractor wants goes to the writer whole, with its headers; a redirect is reported as an
//! outcome whose target is a link; a stored page that is skipped is read back for its links. A
//! panic while handling a job is caught: the job ends as an error with the panic message and this
//! fetcher retires, to be replaced by the supervisor.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use futures_util::FutureExt;

use crate::config::Config;
use crate::extract::Extract;
use crate::frontier::PauseHost;
use crate::http::{check_url, fetch_retrying, Clients, Failure, Got, Want};
use crate::job::{ErrorKind, Job, JobError, JobReport, Outcome};
use crate::life::Life;
use crate::reporter::{Finished, Reporter};
use crate::supervisor::{Assignment, FetcherGone, NextJob, Release, Supervisor};
use crate::writer::{Body, ExistingPage, Exists, PageInfo, Save, Writer};

/// What every fetcher of a run shares.
pub(crate) struct Shared {
    pub config: Config,
    pub writer: Addr<Writer>,
    pub reporter: Addr<Reporter>,
    /// One permit per body handed to the writer and not yet stored.
    pub store_permits: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the run ends: every fetcher drops what it is doing and stops.
    pub cancel: tokio_util::sync::CancellationToken,
    /// The run's live actors.
    pub life: Life,
    /// Set in a crawl: the frontier and the extractor.
    pub crawl: Option<CrawlHooks>,
}

/// What a frontier adds to a run: 429 and 503 pause the host in the frontier; in a crawl,
/// redirects become links and pages the extractor wants are held in memory for it.
pub(crate) struct CrawlHooks {
    pub frontier: Recipient<PauseHost>,
    /// `None` for a list of jobs (shared through Redis): redirects are followed, nothing parsed.
    pub extractor: Option<Arc<dyn Extract>>,
}

/// The largest `metadata.json` (a one-line JSON object) accepted.
const META_LIMIT: u64 = 64 * 1024;

pub(crate) struct Fetcher {
    id: usize,
    shared: Arc<Shared>,
    client: Clients,
    supervisor: Addr<Supervisor>,
}

impl Fetcher {
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        client: Clients,
        supervisor: Addr<Supervisor>,
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
        self.supervisor.do_send(FetcherGone { fetcher: self.id });
    }
}

impl Actor for Fetcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared.life.born();
        let work = work_loop(
            self.id,
            Arc::clone(&self.shared),
            self.client.clone(),
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

/// Asks for a job, does it, reports it, and again, until the supervisor has none left.
async fn work_loop(id: usize, shared: Arc<Shared>, client: Clients, supervisor: Addr<Supervisor>) {
    while let Ok(Some(Assignment { job, tries })) = supervisor.send(NextJob { fetcher: id }).await {
        let started = Instant::now();
        let result = AssertUnwindSafe(do_job(&shared, &client, &job, tries))
            .catch_unwind()
            .await;
        let (report, panicked) = match result {
            Ok(None) => continue,
            Ok(Some(report)) => (report, false),
            Err(panic) => (
                JobReport {
                    elapsed: started.elapsed(),
                    attempts: tries + 1,
                    ..JobReport::new(
                        job,
                        Outcome::Error(JobError::new(
                            ErrorKind::Internal,
                            format!("fetcher panicked: {}", crate::panic_message(&*panic)),
                        )),
                    )
                },
                true,
            ),
        };
        if shared.reporter.send(Finished(report)).await.is_err() {
            return;
        }
        if panicked {
            // The panic may have left this actor's state half-updated: retire and be replaced.
            let _ = supervisor.send(Release { fetcher: id }).await;
            return;
        }
    }
}

/// Does one job. `None` means the body went to the writer, which reports the outcome.
async fn do_job(shared: &Shared, client: &Clients, job: &Job, tries: u32) -> Option<JobReport> {
    let started = Instant::now();
    let config = &shared.config;
    let report = |outcome, status, attempts| JobReport {
        status,
        elapsed: started.elapsed(),
        attempts,
        ..JobReport::new(job.clone(), outcome)
    };
    if let Err(e) = check_url(&job.url) {
        return Some(report(
            Outcome::Error(JobError::new(ErrorKind::InvalidUrl, e)),
            None,
            0,
        ));
    }
    // The name comes first (the book's flags3 order): no image is fetched only to be thrown
    // away when its metadata fails, and an existing file is skipped under its real name.
    let file = match name_file(shared, client, job).await {
        Ok(Some(file)) => file,
        Ok(None) => return Some(report(Outcome::NotFound, Some(404), tries + 1)),
        Err(f) => return Some(report(Outcome::Error(f.error()), f.status, tries + 1)),
    };
    if config.skip_existing {
        // Asked on the writer's threads: a sink may block to answer.
        if let Some(extractor) = shared.crawl.as_ref().and_then(|h| h.extractor.as_ref()) {
            let ask = ExistingPage {
                job: job.clone(),
                file: file.clone(),
                extractor: Arc::clone(extractor),
                limit: config.max_body,
            };
            if let Ok(Some(links)) = shared.writer.send(ask).await {
                let mut skipped = report(Outcome::Skipped, None, 0);
                skipped.links = links.len() as u32;
                skipped.found = links;
                return Some(skipped);
            }
        } else if shared
            .writer
            .send(Exists(file.clone()))
            .await
            .unwrap_or(false)
        {
            return Some(report(Outcome::Skipped, None, 0));
        }
    }
    let mut attempt = tries;
    let stream_to = Some((&shared.writer, job));
    let want = match &shared.crawl {
        Some(hooks) => Want {
            follow: hooks.extractor.is_none(),
            extract: hooks.extractor.as_deref(),
            frontier: Some(&hooks.frontier),
            stream_to,
        },
        None => Want {
            stream_to,
            ..Want::PLAIN
        },
    };
    let got = fetch_retrying(
        client,
        config,
        &job.url,
        config.max_body,
        want,
        &mut attempt,
    )
    .await;
    let (body, page) = match got {
        Ok(Got::Body(body)) => (body, None),
        Ok(Got::Page(bytes, headers)) => (Body::Memory(bytes), Some(headers)),
        Ok(Got::NotFound) => return Some(report(Outcome::NotFound, Some(404), attempt)),
        Ok(Got::Redirect(target, status)) => {
            let mut r = report(Outcome::Redirected(target.clone()), Some(status), attempt);
            r.found = vec![target];
            return Some(r);
        }
        Err(f) => return Some(report(Outcome::Error(f.error()), f.status, attempt)),
    };
    let extractor = shared.crawl.as_ref().and_then(|h| h.extractor.as_ref());
    let page = page.zip(extractor).map(|(headers, extractor)| PageInfo {
        headers,
        extractor: Arc::clone(extractor),
    });
    // Waits only when the writers are that far behind: the permit bounds the bodies in memory.
    let Ok(permit) = Arc::clone(&shared.store_permits).acquire_owned().await else {
        return Some(report(
            Outcome::Error(JobError::new(ErrorKind::Internal, "the run is ending")),
            Some(200),
            attempt,
        ));
    };
    let save = Save {
        report: report(
            Outcome::Error(JobError::new(ErrorKind::Internal, "")),
            Some(200),
            attempt,
        ),
        started,
        file,
        body,
        page,
        permit,
    };
    match shared.writer.try_send(save) {
        Ok(()) => None,
        Err(e) => Some(report(
            Outcome::Error(JobError::new(
                ErrorKind::Internal,
                format!("writer unavailable: {e}"),
            )),
            Some(200),
            attempt,
        )),
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
    match fetch_retrying(client, config, meta_url, limit, Want::PLAIN, &mut attempts).await {
        Ok(Got::Body(Body::Memory(meta))) => {
            namer.name(job, &meta).map(Some).map_err(|e| Failure {
                status: Some(200),
                ..Failure::permanent(ErrorKind::Name, e)
            })
        }
        Ok(Got::Body(Body::Parts(_))) => Err(failed(
            ErrorKind::TooLarge,
            "body too large".into(),
            Some(200),
        )),
        Ok(Got::NotFound) => Ok(None),
        Ok(Got::Page(..) | Got::Redirect(..)) => Err(failed(
            ErrorKind::Internal,
            "unexpected answer".into(),
            None,
        )),
        Err(f) => Err(failed(f.kind, f.message, f.status)),
    }
}
