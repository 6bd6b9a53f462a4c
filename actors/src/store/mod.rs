//! **Stores**: where a crawl's state is kept. They keep state and take no decision: what to queue,
//! when a host may be asked, how long it is paused and when it is given up all come from the
//! crawl policy (`policy`), through the frontier.
//!
//! - [`memory::MemoryStore`]: one process; the seen-set, the state of each host and the journal
//!   that lets a crawl resume after any stop.
//! - [`redis::RedisStore`]: many workers; the same state in Redis, plus the shared queue (a
//!   stream read by a consumer group), leases that hand a dead worker's work to the others, and
//!   the crawl's identity.
//!
//! Both keep, per host, exactly a [`HostState`] and its request slots; the one rule applied
//! inside a store is the readiness rule (`policy::host::readiness`), because taking a slot must be
//! atomic with checking it (the Redis store runs it in a script).
//!
//! **Writes may be deferred.** The writes whose answer no decision waits for ([`Store::add`],
//! [`Store::finish`], [`Store::release`]) may be kept by a store and sent later, in the order they
//! were made, ahead of the next operation that needs an answer (the Redis store sends them in the
//! same round trip), and at the latest when [`Store::flush`] is called. So whatever a store
//! answers already reflects every write made before the question, as if each had been sent at
//! once; only other workers see them a little later. An error of a deferred write comes out of
//! the operation that sent it.

pub(crate) mod memory;
pub(crate) mod queue;
pub(crate) mod redis;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::job::{Job, Role};
use crate::names::page_file;
use crate::policy::{HostState, Millis};

/// A URL waiting to be fetched, as this worker holds it (kept small: a crawl may hold millions;
/// 56 bytes besides the URL itself).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub url: Box<str>,
    /// The page it was found on (one allocation shared by all its links).
    pub parent: Option<Arc<str>>,
    /// What only some entries have: a store id, a list's job.
    extra: Option<Box<Extra>>,
    /// Not handed out before this (a page tried again later).
    pub not_before: Millis,
    pub depth: u32,
    /// Redirects in a row that led here (at most `--max-redirects`, itself a byte).
    pub hops: u8,
    /// Attempts already made (counted up to 255).
    pub tries: u8,
    /// What it is fetched for.
    pub role: Role,
}

/// The rarer parts of an [`Entry`].
#[derive(Debug, Clone, Default)]
struct Extra {
    /// The store's id of the entry (the stream entry's in Redis).
    id: Box<str>,
    /// A job of a list: its own key, file and metadata URL.
    list: Option<ListJob>,
}

/// What a job of a list has that a crawled URL does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListJob {
    pub key: String,
    pub file: std::path::PathBuf,
    pub meta_url: Option<String>,
}

impl Entry {
    /// A crawled URL.
    pub fn url(url: &str, depth: u32, hops: u32, parent: Option<Arc<str>>) -> Self {
        Entry {
            url: url.into(),
            parent,
            extra: None,
            not_before: 0,
            depth,
            hops: u8::try_from(hops).unwrap_or(u8::MAX),
            tries: 0,
            role: Role::Page,
        }
    }

    /// A job of a list.
    pub fn of_job(job: &Job) -> Self {
        let mut e = Entry::url(&job.url, 0, 0, None);
        e.extra = Some(Box::new(Extra {
            id: "".into(),
            list: Some(ListJob {
                key: job.key.clone(),
                file: job.file.clone(),
                meta_url: job.meta_url.clone(),
            }),
        }));
        e
    }

    /// A URL fetched for another role than a page's.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The store's id of the entry (empty in memory).
    pub fn id(&self) -> &str {
        self.extra.as_ref().map_or("", |x| &x.id)
    }

    pub fn set_id(&mut self, id: &str) {
        self.extra.get_or_insert_with(Box::default).id = id.into();
    }

    /// The list's job this entry is, if it is one.
    pub fn list(&self) -> Option<&ListJob> {
        self.extra.as_ref().and_then(|x| x.list.as_ref())
    }

    pub fn set_list(&mut self, list: ListJob) {
        self.extra.get_or_insert_with(Box::default).list = Some(list);
    }

    /// The job to hand out.
    pub fn job(&self) -> Job {
        let mut job = match self.list() {
            Some(l) => {
                let job = Job::new(l.key.clone(), &*self.url, l.file.clone());
                match &l.meta_url {
                    Some(m) => job.with_meta_url(m.clone()),
                    None => job,
                }
            }
            None => {
                // Provisional: the fetcher names the page once it knows whether it is HTML.
                let file = page_file(&self.url, false).unwrap_or_else(|| "invalid".into());
                Job::new(&*self.url, &*self.url, file)
            }
        };
        job.depth = self.depth;
        job.hops = u32::from(self.hops);
        job.tries = u32::from(self.tries);
        job.parent = self.parent.as_deref().map(str::to_string);
        job.role = self.role;
        job
    }
}

/// What [`Store::add`] did.
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// The entries this worker now holds (the memory store: every new one; Redis: none, they
    /// come back through [`Store::take`], here or at another worker).
    pub held: Vec<Entry>,
    /// How many were new to the crawl.
    pub new: u64,
}

/// A request slot of a host: its token in the store (empty in memory).
pub(crate) type Slot = String;

/// A slot given back: see [`Store::release`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release<'a> {
    pub host: &'a str,
    pub slot: &'a str,
    pub next_start: Millis,
    pub answered: bool,
}

/// The answer to asking for some of a host's request slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// Taken: `slot`, and `more` when more than one was asked for and free; requests dispatched
    /// with them belong to the host's `epoch`.
    Taken {
        slot: Slot,
        more: Vec<Slot>,
        epoch: u32,
    },
    /// Not before then.
    At(Millis),
    /// Every slot is taken.
    Full,
    /// The host was given up, for this reason.
    GivenUp(String),
}

/// Why a store cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// The crawl's state is gone (Redis restarted without its data, `FLUSHALL`, the stream
    /// deleted) or out of reach for longer than allowed: the crawl cannot finish here.
    #[error("{0}")]
    Lost(String),
    /// The run is ending.
    #[error("the run is ending")]
    Cancelled,
}

/// The clock a store's times are on, in milliseconds. A shared crawl's is Redis's (the local
/// monotonic clock plus the offset measured when joining), so every worker agrees on it.
#[derive(Debug, Clone)]
pub(crate) enum Clock {
    Real {
        origin: Instant,
        offset: u64,
    },
    /// Set by hand (tests).
    #[allow(dead_code)]
    Manual(Rc<Cell<Millis>>),
}

impl Clock {
    pub fn real(offset: u64) -> Self {
        Clock::Real {
            origin: Instant::now(),
            offset,
        }
    }

    pub fn now(&self) -> Millis {
        match self {
            Clock::Real { origin, offset } => {
                offset + u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
            }
            Clock::Manual(t) => t.get(),
        }
    }
}

/// The state of a crawl, wherever it is kept.
pub(crate) trait Store {
    /// Now, on the store's clock.
    fn now(&self) -> Millis;

    /// How often, while nothing is ready here, to look for work other workers may have queued
    /// or left (`None`: nothing changes but through this worker).
    fn poll(&self) -> Option<Duration>;

    /// Records the entries whose URL this crawl has not seen and queues them. May be deferred
    /// (see the module's doc); `Added::new` then counts none of them, and
    /// [`Store::newly_seen`] counts them once they are sent.
    async fn add(&mut self, entries: Vec<Entry>) -> Result<Added, StoreError>;

    /// Whether this crawl has seen `url` (exactly as written), when the store can tell at once
    /// (`None`: ask [`Store::add`]). Lets the frontier skip the work of a link seen before,
    /// which most links of most pages are.
    fn seen(&self, _url: &str) -> Option<bool> {
        None
    }

    /// How many URLs of deferred adds sent since the last call were new to the crawl.
    fn newly_seen(&mut self) -> u64 {
        0
    }

    /// Sends the deferred writes, if any.
    async fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// When the deferred writes are due at the latest, on the store's clock (`None`: none are
    /// waiting): a worker with nothing else to send flushes them then, so other workers see its
    /// links and acks, and get its slots back, soon.
    fn flush_at(&self) -> Option<Millis> {
        None
    }

    /// How many of a host's slots to ask for at once when that many of its URLs are ready: 1
    /// where asking costs nothing; more where each question is a round trip (the frontier keeps
    /// the slots it did not use yet for a moment, then gives them back).
    fn ahead(&self) -> usize {
        1
    }

    /// Up to `n` queued entries for this worker to hold.
    async fn take(&mut self, n: usize) -> Result<Vec<Entry>, StoreError>;

    /// Takes up to `n` (at least one) of `host`'s slots at `now` if the readiness rule allows,
    /// with `limit` slots.
    async fn acquire(
        &mut self,
        host: &str,
        limit: usize,
        now: Millis,
        n: usize,
    ) -> Result<Acquire, StoreError>;

    /// Gives a slot back: the host's next request starts no earlier than `next_start`; when the
    /// host `answered`, its failures in a row are forgotten. May be deferred.
    async fn release(
        &mut self,
        host: &str,
        slot: &str,
        next_start: Millis,
        answered: bool,
    ) -> Result<(), StoreError>;

    /// The host's state.
    async fn host(&mut self, host: &str) -> Result<HostState, StoreError>;

    /// Replaces the host's state with `new` if it is still `old`; false when it changed
    /// meanwhile (another worker: read it again and decide again).
    async fn swap_host(
        &mut self,
        host: &str,
        old: &HostState,
        new: &HostState,
    ) -> Result<bool, StoreError>;

    /// The entry has its final outcome (`ok`, `not_found`, `redirected`, `skipped`, `error`,
    /// `blocked`); its request's slot, if any, goes back at the same time (as
    /// [`Store::release`] does). May be deferred, after the adds made before it.
    async fn finish(
        &mut self,
        entry: &Entry,
        outcome: &str,
        release: Option<Release<'_>>,
    ) -> Result<(), StoreError>;

    /// Hosts a start URL redirected to are in scope for every worker; returns every such host
    /// known so far.
    async fn widen(&mut self, hosts: &[String]) -> Result<Vec<String>, StoreError>;

    /// Nothing is queued or in flight anywhere but in what this worker holds.
    async fn drained(&mut self) -> Result<bool, StoreError>;

    /// Upkeep: renews the leases of what this worker holds (entry ids and slots), checks the
    /// crawl's state is still there, and takes over what dead workers left. Returns when to call
    /// again, and the entries taken over.
    async fn tick(
        &mut self,
        ids: &[&str],
        slots: &[(&str, &str)],
    ) -> Result<(Duration, Vec<Entry>), StoreError>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_entry_is_small() {
        // What each queued URL costs besides its URL (and the seen-set's fingerprint).
        assert!(std::mem::size_of::<super::Entry>() <= 56);
    }
}
