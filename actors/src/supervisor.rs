//! The **Supervisor**: owns the job source and the fetcher pool.
//!
//! Owns: the lazily read job source, a [`Stream`](futures_util::Stream) (read one job at a time,
//! only when a fetcher is free, so memory does not grow with the number of jobs; never waited for
//! inside a handler, so a source that takes its time, such as a pipe, never stalls the event
//! loop), the fetchers waiting for a job, the jobs handed out and not yet finished (one per
//! fetcher), the jobs waiting to be tried again, and the arbiters the fetchers run on.
//! Receives: [`NextJob`] from a free fetcher (pull dispatch), [`Release`] from a fetcher that
//! retires after a caught panic, [`FetcherGone`] when a fetcher actor is dropped for any reason,
//! [`Stop`] from the run on shutdown.
//! Sends: [`Tally`] to the reporter as jobs are read and when the source is exhausted, and a
//! [`Finished`] error for a job whose fetcher died once it has no tries left.
//!
//! A fetcher that dies while holding a job (its actor dropped without asking for the next one) is
//! replaced, and its job is queued again; a job is tried at most `retries + 1` times.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use futures_util::{Stream, StreamExt};
use tokio::sync::oneshot;

use crate::fetcher::{Fetcher, Shared};
use crate::job::{ErrorKind, Job, JobError, JobReport, Outcome};
use crate::protocol::{Assignment, FetcherGone, Finished, NextJob, Release, Stop, Tally};

/// The jobs of a run, read one at a time.
pub(crate) type JobStream = Pin<Box<dyn Stream<Item = Job>>>;

pub(crate) struct Supervisor {
    /// The source; `None` while a read of it is under way (or once it is exhausted).
    jobs: Option<JobStream>,
    /// Free fetchers waiting for the source, first come first served.
    waiting: VecDeque<(usize, oneshot::Sender<Option<Assignment>>)>,
    read: u64,
    exhausted: bool,
    stopping: bool,
    retry: VecDeque<Assignment>,
    in_flight: HashMap<usize, Assignment>,
    pool_size: usize,
    live: usize,
    next_id: usize,
    arbiters: Vec<ArbiterHandle>,
    shared: Arc<Shared>,
    finished: Recipient<Finished>,
    tally: Recipient<Tally>,
}

impl Supervisor {
    pub fn new(
        jobs: JobStream,
        arbiters: Vec<ArbiterHandle>,
        shared: Arc<Shared>,
        finished: Recipient<Finished>,
        tally: Recipient<Tally>,
    ) -> Self {
        // A source that knows its length needs no more fetchers than jobs.
        let pool_size = match jobs.size_hint() {
            (_, Some(upper)) => shared.config.pool_size.min(upper.max(1)),
            _ => shared.config.pool_size,
        };
        Supervisor {
            jobs: Some(jobs),
            waiting: VecDeque::new(),
            read: 0,
            exhausted: false,
            stopping: false,
            retry: VecDeque::new(),
            in_flight: HashMap::new(),
            pool_size,
            live: 0,
            next_id: 0,
            arbiters,
            shared,
            finished,
            tally,
        }
    }

    /// Starts `n` fetchers spread round-robin over the arbiters. Fetchers on one arbiter share one
    /// awc client (it is `!Send`, and one per thread is what awc asks for).
    fn spawn_fetchers(&mut self, n: usize, me: Addr<Supervisor>) {
        let per_arbiter = self.arbiters.len().max(1);
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); per_arbiter];
        for i in 0..n {
            groups[(self.next_id + i) % per_arbiter].push(self.next_id + i);
        }
        self.next_id += n;
        self.live += n;
        for (arbiter, ids) in self.arbiters.iter().zip(groups) {
            if ids.is_empty() {
                continue;
            }
            let shared = Arc::clone(&self.shared);
            let me = me.clone();
            let count = ids.len();
            let spawned = arbiter.spawn_fn(move || {
                let client = crate::http::build_clients(&shared.config);
                for id in ids {
                    let supervisor = (
                        me.clone().recipient(),
                        me.clone().recipient(),
                        me.clone().recipient(),
                    );
                    Fetcher::new(id, Arc::clone(&shared), client.clone(), supervisor).start();
                }
            });
            if !spawned {
                // The arbiter is gone (the run is ending); nothing will ask for work from there.
                self.live = self.live.saturating_sub(count);
            }
        }
    }

    /// Hands `a` to the first fetcher still waiting, or queues it for the next one to ask.
    fn deliver(&mut self, mut a: Assignment) {
        while let Some((fetcher, tx)) = self.waiting.pop_front() {
            let copy = Assignment {
                job: a.job.clone(),
                tries: a.tries,
            };
            match tx.send(Some(a)) {
                Ok(()) => {
                    self.in_flight.insert(fetcher, copy);
                    return;
                }
                // That fetcher is gone: the next waiting one gets the job.
                Err(_) => a = copy,
            }
        }
        self.retry.push_back(a);
    }

    /// Reads the next job from the source, off the handler: the read may take as long as the
    /// source likes (a pipe, a socket) while everything else goes on.
    fn pull(&mut self, ctx: &mut Context<Self>) {
        if self.stopping || self.waiting.is_empty() {
            return;
        }
        let Some(mut jobs) = self.jobs.take() else {
            return; // a read is under way, or the source is exhausted
        };
        let read = async move {
            let job = jobs.next().await;
            (jobs, job)
        };
        ctx.spawn(read.into_actor(self).map(|(jobs, job), act, ctx| {
            match job {
                // Read after the run stopped: never part of its total.
                Some(_) if act.stopping => {}
                Some(job) => {
                    act.jobs = Some(jobs);
                    act.read += 1;
                    act.deliver(Assignment { job, tries: 0 });
                    act.pull(ctx);
                }
                None => {
                    act.exhausted = true;
                    act.tally.do_send(Tally::Total {
                        jobs: act.read,
                        last: true,
                    });
                    act.release_waiting();
                }
            }
        }));
    }

    /// Tells every waiting fetcher there is nothing more for it.
    fn release_waiting(&mut self) {
        for (_, tx) in self.waiting.drain(..) {
            let _ = tx.send(None);
        }
    }

    fn has_work(&self) -> bool {
        !self.stopping && (!self.exhausted || !self.retry.is_empty())
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared.life.born();
        let cancel = self.shared.cancel.clone();
        ctx.spawn(
            async move { cancel.cancelled().await }
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        );
        // Every fetcher may ask at once (all of them do at start): with actix's default mailbox
        // of 16, the rest would wait in line for rounds of wake-ups before their first request.
        ctx.set_mailbox_capacity(self.pool_size + 16);
        if let Some((lower, Some(upper))) = self.jobs.as_ref().map(|j| j.size_hint()) {
            if lower == upper {
                self.tally.do_send(Tally::Total {
                    jobs: upper as u64,
                    last: false,
                });
            }
        }
        self.spawn_fetchers(self.pool_size, ctx.address());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.shared.life.died();
    }
}

impl Handler<NextJob> for Supervisor {
    type Result = ResponseFuture<Option<Assignment>>;

    fn handle(&mut self, msg: NextJob, ctx: &mut Context<Self>) -> Self::Result {
        self.in_flight.remove(&msg.fetcher);
        if msg.returned {
            // Its job went back to the frontier: read again later, it is not one more job.
            self.read = self.read.saturating_sub(1);
        }
        let now = |a| Box::pin(std::future::ready(a)) as Self::Result;
        if self.stopping {
            return now(None);
        }
        if let Some(a) = self.retry.pop_front() {
            self.in_flight.insert(
                msg.fetcher,
                Assignment {
                    job: a.job.clone(),
                    tries: a.tries,
                },
            );
            return now(Some(a));
        }
        if self.exhausted {
            return now(None);
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.push_back((msg.fetcher, tx));
        self.pull(ctx);
        Box::pin(async move { rx.await.ok().flatten() })
    }
}

impl Handler<Release> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Release, _: &mut Context<Self>) {
        self.in_flight.remove(&msg.fetcher);
    }
}

impl Handler<FetcherGone> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: FetcherGone, ctx: &mut Context<Self>) {
        self.live = self.live.saturating_sub(1);
        if let Some(lost) = self.in_flight.remove(&msg.fetcher) {
            let tries = lost.tries + 1;
            if tries <= self.shared.config.retries && !self.stopping {
                self.deliver(Assignment {
                    job: lost.job,
                    tries,
                });
            } else {
                self.finished.do_send(Finished(JobReport {
                    attempts: tries,
                    ..JobReport::new(
                        lost.job,
                        Outcome::Error(JobError::new(
                            ErrorKind::Internal,
                            "the fetcher handling this job stopped unexpectedly",
                        )),
                    )
                }));
            }
        }
        if self.has_work() && self.live < self.pool_size {
            self.spawn_fetchers(1, ctx.address());
        }
    }
}

impl Handler<Stop> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Stop, _: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.release_waiting();
        // Jobs waiting for another try will not get one: they count as not attempted.
        let waiting = self.retry.len() as u64;
        self.retry.clear();
        self.tally.do_send(Tally::Interrupted);
        self.tally.do_send(Tally::Cancelled(waiting));
        self.tally.do_send(Tally::Total {
            jobs: self.read,
            last: true,
        });
    }
}
