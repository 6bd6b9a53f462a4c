//! The **memory store**: a crawl's state in this process. It owns the seen-set (every URL ever
//! queued, see `seen`), each host's [`HostState`] and requests in flight, and the journal (see
//! `journal`) that lets a crawl go on after any stop: every URL is journalled when it is queued,
//! every page when it has its outcome, written through after each page.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{Acquire, Added, Clock, Entry, Release, Store, StoreError};
use crate::journal::{Journal, Replay};
use crate::policy::{host::readiness, HostState, Millis, Readiness};
use crate::seen::SeenSet;

pub(crate) struct MemoryStore {
    clock: Clock,
    seen: SeenSet,
    hosts: HashMap<Box<str>, Host>,
    journal: Option<Journal>,
    /// What the journal said was left, handed out by the first [`Store::take`].
    left: Vec<Entry>,
}

#[derive(Default)]
struct Host {
    state: HostState,
    in_flight: usize,
}

impl MemoryStore {
    /// A store without a journal.
    pub fn new(clock: Clock) -> Self {
        MemoryStore {
            clock,
            seen: SeenSet::default(),
            hosts: HashMap::new(),
            journal: None,
            left: Vec::new(),
        }
    }

    /// A store journalled in `path`: replayed first when `resume` (a missing journal starts
    /// afresh). Returns the store and how many pages the journal says are done. Fails when the
    /// journal cannot be opened or read, before anything is fetched.
    pub fn journalled(clock: Clock, path: &Path, resume: bool) -> std::io::Result<(Self, u64)> {
        let (journal, Replay { seen, left, done }) = Journal::open(path, resume)?;
        let left = left
            .into_iter()
            .map(|l| Entry::url(&l.url, l.depth, l.hops, l.parent.map(Arc::from)).with_role(l.role))
            .collect();
        let store = MemoryStore {
            seen,
            journal: Some(journal),
            left,
            ..MemoryStore::new(clock)
        };
        Ok((store, done))
    }

    /// URLs seen so far (those a replayed journal recorded included).
    pub fn seen(&self) -> u64 {
        self.seen.len() as u64
    }

    fn write(&mut self, f: impl FnOnce(&mut Journal) -> std::io::Result<()>) {
        if let Some(Err(e)) = self.journal.as_mut().map(f) {
            eprintln!("flags: the crawl journal cannot be written ({e}); going on without it");
            self.journal = None;
        }
    }

    fn host_mut(&mut self, host: &str) -> &mut Host {
        if !self.hosts.contains_key(host) {
            self.hosts.insert(host.into(), Host::default());
        }
        self.hosts.get_mut(host).expect("inserted above")
    }
}

impl Store for MemoryStore {
    fn now(&self) -> Millis {
        self.clock.now()
    }

    fn poll(&self) -> Option<Duration> {
        None
    }

    async fn add(&mut self, entries: Vec<Entry>) -> Result<Added, StoreError> {
        let mut added = Added::default();
        for e in entries {
            if !self.seen.insert(&e.url) {
                continue;
            }
            self.write(|j| {
                j.queued(
                    e.depth,
                    &e.url,
                    e.parent.as_deref(),
                    u32::from(e.hops),
                    e.role,
                )
            });
            added.new += 1;
            added.held.push(e);
        }
        Ok(added)
    }

    fn seen(&self, url: &str) -> Option<bool> {
        Some(self.seen.contains(url))
    }

    async fn take(&mut self, _n: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(std::mem::take(&mut self.left))
    }

    async fn acquire(
        &mut self,
        host: &str,
        limit: usize,
        now: Millis,
        n: usize,
    ) -> Result<Acquire, StoreError> {
        let h = self.host_mut(host);
        Ok(match readiness(&h.state, h.in_flight, limit, now) {
            Readiness::Ready => {
                // Ready means at least one is free.
                let taken = n.clamp(1, limit.saturating_sub(h.in_flight).max(1));
                h.in_flight += taken;
                Acquire::Taken {
                    slot: String::new(),
                    more: vec![String::new(); taken - 1],
                    epoch: h.state.epoch,
                }
            }
            Readiness::At(t) => Acquire::At(t),
            Readiness::Full => Acquire::Full,
            Readiness::GivenUp(why) => Acquire::GivenUp(why),
        })
    }

    async fn release(
        &mut self,
        host: &str,
        _slot: &str,
        next_start: Millis,
        answered: bool,
    ) -> Result<(), StoreError> {
        let h = self.host_mut(host);
        h.in_flight = h.in_flight.saturating_sub(1);
        h.state.next_start = h.state.next_start.max(next_start);
        if answered {
            h.state.failures = 0;
        }
        Ok(())
    }

    async fn host(&mut self, host: &str) -> Result<HostState, StoreError> {
        Ok(self.host_mut(host).state.clone())
    }

    async fn swap_host(
        &mut self,
        host: &str,
        old: &HostState,
        new: &HostState,
    ) -> Result<bool, StoreError> {
        let h = self.host_mut(host);
        if h.state != *old {
            return Ok(false);
        }
        h.state = new.clone();
        Ok(true)
    }

    async fn finish(
        &mut self,
        entry: &Entry,
        _outcome: &str,
        release: Option<Release<'_>>,
    ) -> Result<(), StoreError> {
        if let Some(r) = release {
            self.release(r.host, r.slot, r.next_start, r.answered)
                .await?;
        }
        // Written through at once (one write call per page, no fsync): a kill loses nothing of
        // it, so after a crash only the pages in flight are fetched again.
        self.write(|j| j.done(&entry.url).and_then(|()| j.flush()));
        Ok(())
    }

    async fn widen(&mut self, _hosts: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    async fn drained(&mut self) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn tick(
        &mut self,
        _: &[&str],
        _: &[(&str, &str)],
    ) -> Result<(Duration, Vec<Entry>), StoreError> {
        self.write(Journal::flush);
        Ok((Duration::from_secs(3600), Vec::new()))
    }
}
