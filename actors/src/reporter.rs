//! The **Reporter**: the single place that counts.
//!
//! Owns: the running [`Summary`], the progress bar (see `bar`), the subscribers' channels and the
//! embedder's event listener.
//! Receives: [`Finished`] from fetchers and the writer (and from the supervisor for jobs whose
//! fetcher died), [`Tally`] from the supervisor, [`Finalize`] from the run when an interrupted
//! run's grace period is over.
//! Sends: every [`Event`] to each subscriber with `try_send` (never blocking the crawl; what a
//! full or closed channel refuses is counted in `events_dropped`), and the final [`Summary`] to the
//! run once every job read from the source has its outcome; then it stops, and its redraw timer
//! with it. In a crawl, every outcome also goes to the frontier as a [`PageDone`] (with the links
//! found on the page), before the run can end: its links may be more work.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use crate::archive::cdxj::Line;
use crate::bar::Bar;
use crate::config::Progress;
use crate::index::Index;
use crate::job::{Event, JobReport, Outcome, Summary};
use crate::life::Life;
use crate::protocol::{CrawlStats, Finalize, Finished, PageDone, Tally};

/// Called with every event, on the reporter's thread, in order and without loss.
pub type Listener = Box<dyn FnMut(&Event) + Send>;

pub(crate) struct Reporter {
    capacity: usize,
    summary: Summary,
    total: Option<u64>,
    interrupted: bool,
    started: Instant,
    bar: Bar,
    subscribers: Vec<Sender<Event>>,
    listener: Option<Listener>,
    done: Option<oneshot::Sender<Summary>>,
    life: Life,
    crawl: Option<CrawlLink>,
}

/// In a crawl: where pages go once they have their outcome, and the frontier's counts.
pub(crate) struct CrawlLink {
    pub frontier: Recipient<PageDone>,
    pub stats: Arc<CrawlStats>,
    /// The crawl's index: the reporter records what was fetched and not stored (the writer
    /// records what it stores).
    pub index: Option<Arc<Index>>,
    /// The crawl's page limit: the bar's length is never more.
    pub cap: Option<u64>,
}

impl Reporter {
    pub fn new(
        capacity: usize,
        progress: Progress,
        subscribers: Vec<Sender<Event>>,
        listener: Option<Listener>,
        done: oneshot::Sender<Summary>,
        life: Life,
        crawl: Option<CrawlLink>,
    ) -> Self {
        let bar = Bar::new(progress);
        Reporter {
            capacity,
            summary: Summary::default(),
            total: None,
            interrupted: false,
            started: Instant::now(),
            bar,
            subscribers,
            listener,
            done: Some(done),
            life,
            crawl,
        }
    }

    fn emit(&mut self, event: Event) {
        if let Some(listener) = self.listener.as_mut() {
            listener(&event);
        }
        for tx in &self.subscribers {
            if tx.try_send(event.clone()).is_err() {
                self.summary.events_dropped += 1;
            }
        }
    }

    fn counts_message(&self) -> String {
        let s = &self.summary;
        let mut msg = String::new();
        // In a crawl the bar's length is what was discovered so far; the queue is the rest.
        if let Some(c) = &self.crawl {
            msg.push_str(&format!(
                "queued {} · ",
                c.stats.queued.load(Ordering::Relaxed)
            ));
        }
        msg.push_str(&format!(
            "ok {} · not found {} · errors {}",
            s.downloaded, s.not_found, s.errors
        ));
        if s.redirected > 0 {
            msg.push_str(&format!(" · redirected {}", s.redirected));
        }
        if s.skipped > 0 {
            msg.push_str(&format!(" · skipped {}", s.skipped));
        }
        msg
    }

    /// Once the summary is out, this actor and its redraw timer have nothing left to do.
    fn stop_when_done(&self, ctx: &mut Context<Self>) {
        if self.done.is_none() {
            ctx.stop();
        }
    }

    /// Ends the run if every job read has its outcome (or `force`, counting the rest cancelled).
    fn maybe_finish(&mut self, force: bool) {
        let Some(total) = self.total else {
            if !force {
                return;
            }
            self.total = Some(self.summary.finished());
            return self.maybe_finish(true);
        };
        let finished = self.summary.finished();
        if finished + self.summary.cancelled < total && !force {
            return;
        }
        let Some(done) = self.done.take() else { return };
        // More outcomes than jobs would be a job counted twice: a bug, never to be hidden.
        debug_assert!(finished <= total, "{finished} outcomes for {total} jobs");
        self.summary.jobs = total.max(finished);
        self.summary.cancelled = self.summary.jobs - finished;
        self.summary.interrupted = self.interrupted;
        self.summary.elapsed = self.started.elapsed();
        if let Some(c) = &self.crawl {
            self.summary.discovered = c.stats.discovered.load(Ordering::Relaxed);
            self.summary.not_visited = c.stats.queued.load(Ordering::Relaxed);
            self.summary.blocked = c.stats.blocked.load(Ordering::Relaxed);
            self.summary.sitemaps = c.stats.sitemaps.load(Ordering::Relaxed);
        }
        self.bar.set_message(self.counts_message());
        self.bar.end(!self.interrupted);
        let summary = self.summary.clone();
        self.emit(Event::Done(summary));
        // Closing the channels tells subscribers that nothing more will come.
        self.subscribers.clear();
        self.listener = None;
        // The summary is read after the Done event was counted, so events_dropped is final.
        let _ = done.send(self.summary.clone());
    }
}

impl Actor for Reporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.life.born();
        // Every fetcher may report at once; none should wait for room in the mailbox.
        ctx.set_mailbox_capacity(self.capacity);
        // Redraw on a timer rather than per job: formatting the counts costs more than a job at
        // tens of thousands of jobs per second.
        ctx.run_interval(Duration::from_millis(100), |act, _| {
            if !act.bar.is_hidden() {
                if let Some(c) = &act.crawl {
                    let discovered = c.stats.discovered.load(Ordering::Relaxed);
                    act.bar
                        .set_length(c.cap.map_or(discovered, |cap| cap.min(discovered)));
                }
                act.bar.set_message(act.counts_message());
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.life.died();
    }
}

impl Handler<Finished> for Reporter {
    type Result = ();

    fn handle(&mut self, Finished(mut report): Finished, ctx: &mut Context<Self>) {
        if self.done.is_none() {
            return;
        }
        if let Some(index) = self.crawl.as_ref().and_then(|c| c.index.as_ref()) {
            index_line(index, &report);
        }
        if let Some(c) = &self.crawl {
            // The frontier hears of the page before the run can end: its links may be more work.
            c.frontier.do_send(PageDone {
                url: report.job.url.clone(),
                links: std::mem::take(&mut report.found),
                assets: std::mem::take(&mut report.found_assets),
                redirect: matches!(report.outcome, Outcome::Redirected(_)),
                status: report.status,
                outcome: report.outcome.kind(),
            });
        }
        match &report.outcome {
            Outcome::Downloaded(_) => {
                self.summary.downloaded += 1;
                self.summary.bytes += report.bytes;
            }
            Outcome::NotFound => self.summary.not_found += 1,
            Outcome::Redirected(_) => self.summary.redirected += 1,
            Outcome::Skipped => self.summary.skipped += 1,
            Outcome::Fetched => self.summary.fetched += 1,
            Outcome::Error(_) => self.summary.errors += 1,
        }
        self.bar.inc();
        self.emit(Event::Job(report));
        self.maybe_finish(false);
        self.stop_when_done(ctx);
    }
}

impl Handler<Tally> for Reporter {
    type Result = ();

    fn handle(&mut self, msg: Tally, ctx: &mut Context<Self>) {
        match msg {
            Tally::Total { jobs, last } => {
                if last {
                    self.total = Some(jobs);
                }
                // When interrupted, the bar keeps showing the whole job list: the rest were not
                // attempted.
                if !self.interrupted {
                    self.bar.set_length(jobs);
                }
            }
            Tally::Cancelled(n) => self.summary.cancelled += n,
            Tally::Interrupted => {
                self.interrupted = true;
                return;
            }
        }
        self.maybe_finish(false);
        self.stop_when_done(ctx);
    }
}

impl Handler<Finalize> for Reporter {
    type Result = ();

    fn handle(&mut self, _: Finalize, ctx: &mut Context<Self>) {
        self.maybe_finish(true);
        ctx.stop();
    }
}

/// The index line of a URL that was fetched and not stored: a 404, a redirect, an error with or
/// without an answer. Stored pages are the writer's to record; skipped ones are recorded already;
/// URLs never requested (blocked, their host given up) have none.
fn index_line(index: &Index, report: &JobReport) {
    let (outcome, location, error) = match &report.outcome {
        Outcome::Downloaded(_) | Outcome::Skipped | Outcome::Fetched => return,
        Outcome::Error(e) if e.kind == crate::job::ErrorKind::GaveUp => return,
        Outcome::NotFound => ("not_found", None, None),
        Outcome::Redirected(to) => ("redirected", Some(to.clone()), None),
        Outcome::Error(e) => ("error", None, Some(e.message.clone())),
    };
    let mut line = Line::new(&report.job.url, std::time::SystemTime::now());
    line.status = report.status;
    line.extra.push(("outcome".into(), outcome.into()));
    if let Some(to) = location {
        line.extra.push(("location".into(), to.into()));
    }
    if let Some(why) = error {
        line.extra.push(("error".into(), why.into()));
    }
    index.record(&line);
}
