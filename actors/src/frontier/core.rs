//! The frontier's logic, without an actor: which URL to hand out next, over the hosts this worker
//! holds URLs of, taking every decision from the policy and keeping shared state in the store.
//!
//! It holds URLs in one queue per host (breadth first within a host) plus the pages to try again
//! later; hosts that may be asked now wait their turn in a round robin, hosts that may not wait on
//! a timer (their delay, their pause) or for one of their requests to end. Choosing the next host
//! therefore never scans the hosts. It is driven by events (a page done, an attempt failed, a
//! robots.txt answer) and answers with what to do next ([`Next`]), so a test can drive it with a
//! clock of its own against either store.
//!
//! Where asking the store for a slot is a round trip (Redis), a host with several URLs ready gets
//! several slots at once ([`Store::ahead`]); the ones not used at once are *spare*, handed out
//! with the next URLs of that host without asking again, and given back when they are older than
//! [`SPARE_TTL`], when the host has nothing ready, or when one of its requests fails (a pause or a
//! give-up decided here is never overtaken by a spare). Every request still holds one of the
//! host's slots in the store.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::CrawlStats;
use crate::job::Role;
use crate::job::{ErrorKind, Job, JobError};
use crate::policy::{
    ms, Admitted, Finished, Millis, Policy, RobotsAnswer, Rules, Trouble, TroubleKind, Verdict,
};
use crate::protocol::{Failed, PageDone, Retry};
use crate::sitemap::Sitemap;
use crate::store::queue::HostQueue;
use crate::store::{Acquire, Entry, Release, Slot, Store, StoreError};

/// What the frontier does next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Hand this job out.
    Job(Job),
    /// Fetch this robots.txt now (one of its host's slots is held for it).
    Robots { host: Arc<str>, url: String },
    /// Fetch this sitemap now and read it (one of its host's slots is held for it).
    Sitemap { url: String },
    /// Nothing can be handed out here before this time (`None`: before an event; a shared store
    /// may also get work from other workers meanwhile, see [`Store::poll`]).
    Wait(Option<Millis>),
    /// Nothing is left: the crawl is over.
    Over,
}

enum Robots {
    Unknown,
    Fetching,
    Known(Rules),
}

/// What robots.txt says of a host's next URL.
enum RobotsStep {
    Go,
    Wait,
    Fetch,
    Blocked,
}

/// How long a spare slot may wait for a fetcher to ask: a busy worker uses it within a page or
/// two; an idle one gives it back to the other workers soon.
const SPARE_TTL: Millis = 20;

/// A host this worker holds URLs of.
struct LocalHost {
    queue: HostQueue,
    /// Pages to try again, in the order they may be.
    later: VecDeque<Entry>,
    robots: Robots,
    /// The pause after each request (the crawl's delay, or robots.txt's Crawl-delay).
    delay: std::time::Duration,
    /// Waiting on a timer until then.
    wake: Option<Millis>,
    /// In the round robin of hosts to look at.
    in_ready: bool,
    /// Waiting for one of its requests to end (all its slots are taken).
    full: bool,
    /// Waiting for a robots.txt request to end elsewhere, to ask for its own.
    robots_turn: bool,
    /// Slots taken and not used yet, and the epoch they were taken in.
    spares: Vec<Slot>,
    spare_epoch: u32,
    /// The spares are given back then.
    spares_until: Millis,
}

impl LocalHost {
    fn has_work(&self) -> bool {
        !self.queue.is_empty() || !self.later.is_empty()
    }

    /// The entry it would hand out next: the first page to try again when `later`, else the
    /// first of its queue.
    fn front(&self, later: bool) -> Option<&Entry> {
        if later {
            self.later.front()
        } else {
            self.queue.front()
        }
    }

    /// Takes the entry [`LocalHost::front`] names.
    fn pop_front(&mut self, later: bool) -> Option<Entry> {
        if later {
            self.later.pop_front()
        } else {
            self.queue.pop_front()
        }
    }
}

/// A job handed out and not finished.
struct Out {
    entry: Entry,
    host: Arc<str>,
    /// The slot it holds (`None` once given back, or for a job decided without a request).
    slot: Option<Slot>,
    epoch: u32,
}

/// A robots.txt request under way.
struct RobotsOut {
    slot: Slot,
    epoch: u32,
}

/// The frontier's state and logic over a store.
pub(crate) struct Core<S> {
    pub policy: Policy,
    pub store: S,
    /// The product token robots.txt groups are matched with.
    agent: String,
    hosts: HashMap<Arc<str>, LocalHost>,
    ready: VecDeque<Arc<str>>,
    timers: BinaryHeap<Reverse<(Millis, Arc<str>)>>,
    /// Hosts with spare slots, by when the spares are given back.
    spare_hosts: VecDeque<(Millis, Arc<str>)>,
    out: HashMap<Box<str>, Out>,
    robots_out: HashMap<Arc<str>, RobotsOut>,
    /// Entries held in host queues.
    held: u64,
    /// At most this many entries are taken from a shared store to hold here.
    hold_max: usize,
    /// When a shared store last had fewer entries than asked for.
    short_at: Option<Millis>,
    /// Pages handed out, those done before a resume included (for `max_pages`).
    handed_out: u64,
    stats: Arc<CrawlStats>,
    jitter: Box<dyn FnMut() -> f64>,
    /// Sitemaps taken in from each host's sitemap indexes.
    sitemaps_read: HashMap<Arc<str>, usize>,
    /// Sitemaps whose host was given up: done without being read.
    sitemap_ends: Vec<Entry>,
    /// Hosts waiting to ask for their robots.txt, first come first served.
    robots_turns: VecDeque<Arc<str>>,
}

/// The most sitemaps one host's sitemap indexes may add to a crawl (the protocol allows 50,000
/// per index; a crawl that followed them all could read 2.5 billion URLs).
const SITEMAPS_PER_HOST: usize = 1000;

/// The origin of a URL the `url` crate has normalised (`scheme://host[:port]`): the key of its
/// host's politeness and robots.txt, found without parsing the URL again.
pub(crate) fn host_key(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].find(['/', '?', '#']) {
        Some(end) => &url[..start + end],
        None => url,
    }
}

impl<S: Store> Core<S> {
    pub fn new(
        policy: Policy,
        store: S,
        agent: String,
        hold_max: usize,
        stats: Arc<CrawlStats>,
        jitter: Box<dyn FnMut() -> f64>,
    ) -> Self {
        Core {
            policy,
            store,
            agent,
            hosts: HashMap::new(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            spare_hosts: VecDeque::new(),
            out: HashMap::new(),
            robots_out: HashMap::new(),
            held: 0,
            hold_max: hold_max.max(1),
            short_at: None,
            handed_out: 0,
            stats,
            jitter,
            sitemaps_read: HashMap::new(),
            sitemap_ends: Vec::new(),
            robots_turns: VecDeque::new(),
        }
    }

    /// The counts this core keeps.
    pub fn stats(&self) -> Arc<CrawlStats> {
        Arc::clone(&self.stats)
    }

    /// Pages already done before this run (a resumed crawl), for the page limit.
    pub fn set_done(&mut self, done: u64) {
        self.handed_out = done;
    }

    /// Queues the seeds (those the crawl has not seen), and the sitemap of each start host.
    pub async fn seed(&mut self, mut seeds: Vec<Entry>) -> Result<(), StoreError> {
        if self.policy.sitemaps {
            let mut hosts: Vec<String> =
                seeds.iter().map(|e| host_key(&e.url).to_string()).collect();
            hosts.dedup();
            for host in hosts {
                let url = format!("{host}/sitemap.xml");
                seeds.push(Entry::url(&url, 0, 0, None).with_role(Role::Sitemap));
            }
        }
        self.add(seeds).await
    }

    fn limit_reached(&self) -> bool {
        self.policy
            .max_pages
            .is_some_and(|max| self.handed_out >= max)
    }

    /// What to do next.
    pub async fn next(&mut self) -> Result<Next, StoreError> {
        let now = self.store.now();
        self.count_new();
        if self.limit_reached() {
            let idle = self.out.is_empty() && self.robots_out.is_empty();
            return Ok(if idle { Next::Over } else { Next::Wait(None) });
        }
        self.wake_due(now);
        self.expire_spares(now).await?;
        if (self.held as usize) < self.hold_max / 2 + 1 && self.may_take(now) {
            let want = self.hold_max - self.held as usize;
            let more = self.store.take(want).await?;
            self.short_at = (more.len() < want).then_some(now);
            for e in more {
                self.hold(e, now);
            }
        }
        while let Some(key) = self.ready.pop_front() {
            let next = self.try_host(key, now).await?;
            for entry in std::mem::take(&mut self.sitemap_ends) {
                self.store.finish(&entry, "sitemap", None).await?;
            }
            if let Some(next) = next {
                return Ok(next);
            }
        }
        if self.out.is_empty() && self.robots_out.is_empty() && self.held == 0 {
            // Nothing is ready here, so no spare can be used.
            self.drop_all_spares().await?;
            if self.store.drained().await? {
                self.count_new();
                return Ok(Next::Over);
            }
        }
        Ok(Next::Wait(self.timers.peek().map(|Reverse((t, _))| *t)))
    }

    /// A shared store is asked for more at most once per poll interval while it has little.
    fn may_take(&self, now: Millis) -> bool {
        match (self.short_at, self.store.poll()) {
            (Some(t), Some(p)) => now >= t + ms(p),
            _ => true,
        }
    }

    /// Looks at one host of the round robin: something to do, or the host waits.
    async fn try_host(&mut self, key: Arc<str>, now: Millis) -> Result<Option<Next>, StoreError> {
        let Some(h) = self.hosts.get_mut(&key) else {
            return Ok(None);
        };
        h.in_ready = false;
        let later_due = h.later.front().is_some_and(|e| e.not_before <= now);
        if !later_due && h.queue.is_empty() {
            if let Some(t) = h.later.front().map(|e| e.not_before) {
                self.schedule(&key, t);
            }
            return Ok(None);
        }
        let limit = self.policy.host_limit(h.delay);
        let step = match &h.robots {
            _ if !self.policy.robots => RobotsStep::Go,
            Robots::Fetching => RobotsStep::Wait,
            Robots::Unknown => RobotsStep::Fetch,
            Robots::Known(rules) => {
                if h.front(later_due).is_some_and(|e| !rules.allows(&e.url)) {
                    RobotsStep::Blocked
                } else {
                    RobotsStep::Go
                }
            }
        };
        match step {
            RobotsStep::Go => {}
            RobotsStep::Wait => return Ok(None),
            RobotsStep::Blocked => {
                let entry = self.pop(&key, later_due);
                // A sitemap robots.txt disallows is not read; it is no page of the crawl.
                let outcome = if entry.role == Role::Sitemap {
                    "sitemap"
                } else {
                    self.stats.blocked.fetch_add(1, Ordering::Relaxed);
                    "blocked"
                };
                self.store.finish(&entry, outcome, None).await?;
                self.push_ready(&key);
                return Ok(None);
            }
            RobotsStep::Fetch if self.robots_out.len() >= self.hold_max / 2 => {
                // As many robots.txt requests in flight as fetchers, at most: a crawl that meets
                // a hundred thousand hosts does not open a hundred thousand connections at once.
                if let Some(h) = self.hosts.get_mut(&key) {
                    h.robots_turn = true;
                }
                self.robots_turns.push_back(key);
                return Ok(None);
            }
            RobotsStep::Fetch => {
                return match self.store.acquire(&key, limit, now, 1).await? {
                    Acquire::Taken { slot, more, epoch } => {
                        self.keep_spares(&key, more, epoch, now);
                        if let Some(h) = self.hosts.get_mut(&key) {
                            h.robots = Robots::Fetching;
                        }
                        let url = format!("{key}/robots.txt");
                        self.robots_out
                            .insert(Arc::clone(&key), RobotsOut { slot, epoch });
                        Ok(Some(Next::Robots { host: key, url }))
                    }
                    other => Ok(self.not_taken(key, later_due, other, now)),
                };
            }
        }
        if let Some((slot, epoch)) = self.spare(&key, now).await? {
            return self.hand_out(key, later_due, slot, epoch).await.map(Some);
        }
        let ready = self.hosts.get(&key).map_or(1, |h| {
            let due = h.later.partition_point(|e| e.not_before <= now);
            h.queue.len() + due
        });
        let n = self.store.ahead().min(ready).max(1);
        match self.store.acquire(&key, limit, now, n).await? {
            Acquire::Taken { slot, more, epoch } => {
                self.keep_spares(&key, more, epoch, now);
                self.hand_out(key, later_due, slot, epoch).await.map(Some)
            }
            other => Ok(self.not_taken(key, later_due, other, now)),
        }
    }

    /// Hands out the host's next URL with `slot`.
    async fn hand_out(
        &mut self,
        key: Arc<str>,
        later_due: bool,
        slot: Slot,
        epoch: u32,
    ) -> Result<Next, StoreError> {
        let entry = self.pop(&key, later_due);
        // A sitemap is read by the frontier itself: no fetcher's job, no page of the crawl.
        let next = if entry.role == Role::Sitemap {
            Next::Sitemap {
                url: entry.url.to_string(),
            }
        } else {
            self.handed_out += 1;
            Next::Job(entry.job())
        };
        self.out.insert(
            entry.url.clone(),
            Out {
                entry,
                host: Arc::clone(&key),
                slot: Some(slot),
                epoch,
            },
        );
        if !self.hosts.get(&key).is_some_and(LocalHost::has_work) {
            self.drop_spares(&key).await?;
        }
        self.push_ready(&key);
        Ok(next)
    }

    /// Keeps slots taken and not used at once as the host's spares.
    fn keep_spares(&mut self, key: &Arc<str>, more: Vec<Slot>, epoch: u32, now: Millis) {
        if more.is_empty() {
            return;
        }
        if let Some(h) = self.hosts.get_mut(key) {
            let until = now + SPARE_TTL;
            h.spares = more;
            h.spare_epoch = epoch;
            h.spares_until = until;
            self.spare_hosts.push_back((until, Arc::clone(key)));
        }
    }

    /// One of the host's spare slots, if it has one still fresh (stale ones go back).
    async fn spare(
        &mut self,
        key: &Arc<str>,
        now: Millis,
    ) -> Result<Option<(Slot, u32)>, StoreError> {
        let Some(h) = self.hosts.get_mut(key) else {
            return Ok(None);
        };
        if h.spares_until > now {
            return Ok(h.spares.pop().map(|s| (s, h.spare_epoch)));
        }
        self.drop_spares(key).await?;
        Ok(None)
    }

    /// Gives the host's spare slots back.
    async fn drop_spares(&mut self, key: &str) -> Result<(), StoreError> {
        let Some(h) = self.hosts.get_mut(key) else {
            return Ok(());
        };
        for slot in std::mem::take(&mut h.spares) {
            // Only the slot: the host's next start and failures are not touched.
            self.store.release(key, &slot, 0, false).await?;
        }
        Ok(())
    }

    /// Gives back the spares older than [`SPARE_TTL`].
    async fn expire_spares(&mut self, now: Millis) -> Result<(), StoreError> {
        while self.spare_hosts.front().is_some_and(|(t, _)| *t <= now) {
            let Some((until, key)) = self.spare_hosts.pop_front() else {
                break;
            };
            // A later batch of spares has its own place in the line.
            if self
                .hosts
                .get(&key)
                .is_some_and(|h| h.spares_until == until)
            {
                self.drop_spares(&key).await?;
            }
        }
        Ok(())
    }

    async fn drop_all_spares(&mut self) -> Result<(), StoreError> {
        while let Some((_, key)) = self.spare_hosts.pop_front() {
            self.drop_spares(&key).await?;
        }
        Ok(())
    }

    /// Counts the URLs a store's deferred adds turned out to queue.
    fn count_new(&mut self) {
        let new = self.store.newly_seen();
        if new > 0 {
            self.stats.discovered.fetch_add(new, Ordering::Relaxed);
        }
    }

    /// Upkeep between events: spare slots past their time go back, and the store's deferred
    /// writes are sent once due (see [`Store::flush_at`]).
    pub async fn upkeep(&mut self) -> Result<(), StoreError> {
        let now = self.store.now();
        self.expire_spares(now).await?;
        if self.store.flush_at().is_some_and(|t| t <= now) {
            self.store.flush().await?;
        }
        Ok(())
    }

    /// When [`Core::upkeep`] has something to do next, if ever.
    pub fn due(&self) -> Option<Millis> {
        let spares = self.spare_hosts.front().map(|(t, _)| *t);
        match (spares, self.store.flush_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The run is ending: spare slots go back and deferred writes (acks of pages done) are sent.
    pub async fn close(&mut self) -> Result<(), StoreError> {
        self.drop_all_spares().await?;
        self.store.flush().await
    }

    /// A host whose slot was not taken: it waits, or (given up) its next URL ends as an error.
    fn not_taken(
        &mut self,
        key: Arc<str>,
        later_due: bool,
        answer: Acquire,
        now: Millis,
    ) -> Option<Next> {
        match answer {
            Acquire::Taken { .. } => None,
            Acquire::At(t) => {
                self.schedule(&key, t);
                None
            }
            Acquire::Full => {
                match self.store.poll() {
                    // Other workers hold the slots: look again soon.
                    Some(p) => self.schedule(&key, now + ms(p)),
                    None => {
                        if let Some(h) = self.hosts.get_mut(&key) {
                            h.full = true;
                        }
                    }
                }
                None
            }
            Acquire::GivenUp(_) if self.front_role(&key, later_due) == Role::Sitemap => {
                let entry = self.pop(&key, later_due);
                self.sitemap_ends.push(entry);
                self.push_ready(&key);
                None
            }
            Acquire::GivenUp(why) => {
                let entry = self.pop(&key, later_due);
                self.handed_out += 1;
                let mut job = entry.job();
                job.verdict = Some(JobError::new(ErrorKind::GaveUp, why));
                self.out.insert(
                    entry.url.clone(),
                    Out {
                        entry,
                        host: Arc::clone(&key),
                        slot: None,
                        epoch: 0,
                    },
                );
                self.push_ready(&key);
                Some(Next::Job(job))
            }
        }
    }

    /// The role of the entry the host would hand out next.
    fn front_role(&self, key: &str, later: bool) -> Role {
        let front = self.hosts.get(key).and_then(|h| h.front(later));
        front.map_or(Role::Page, |e| e.role)
    }

    /// A sitemap was read (or could not be): its slot goes back, the URLs it lists are queued
    /// (pages at depth 1, or more sitemaps from an index), and it is done in the store.
    pub async fn sitemap_done(
        &mut self,
        url: &str,
        status: Option<u16>,
        read: Option<Sitemap>,
    ) -> Result<(), StoreError> {
        let Some(out) = self.out.remove(url) else {
            return Ok(());
        };
        let now = self.store.now();
        if let Some(map) = read {
            let index = map.kind == crate::sitemap::SitemapKind::Index;
            let mut admitted = self.policy.admit_sitemap(url, &map.locs, index);
            if index {
                // A bound on the sitemaps one host may send the crawl to.
                let count = self.sitemaps_read.entry(Arc::clone(&out.host)).or_insert(0);
                let room = SITEMAPS_PER_HOST.saturating_sub(*count);
                admitted.truncate(room);
                *count += admitted.len();
            }
            self.queue_admitted(url, admitted).await?;
        }
        self.stats.sitemaps.fetch_add(1, Ordering::Relaxed);
        self.end_out(out, "sitemap", status.is_some(), now).await
    }

    /// Queues what the policy admitted from `parent` (a page or a sitemap), all sharing one
    /// allocation of the parent's URL.
    async fn queue_admitted(
        &mut self,
        parent: &str,
        admitted: Vec<Admitted>,
    ) -> Result<(), StoreError> {
        let parent: Arc<str> = Arc::from(parent);
        let entries = admitted
            .into_iter()
            .map(|a| {
                Entry::url(a.url.as_str(), a.depth, a.hops, Some(Arc::clone(&parent)))
                    .with_role(a.role)
            })
            .collect();
        self.add(entries).await
    }

    /// An entry handed out is done in the store as `outcome`; the slot it holds, if any, goes
    /// back with the host's next start after its delay (`answered`: the server answered).
    async fn end_out(
        &mut self,
        out: Out,
        outcome: &str,
        answered: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        let release = out.slot.as_deref().map(|slot| Release {
            host: &out.host,
            slot,
            next_start: now + ms(self.delay_of(&out.host)),
            answered,
        });
        self.store.finish(&out.entry, outcome, release).await?;
        if out.slot.is_some() {
            self.released(&out.host, now);
        }
        Ok(())
    }

    /// Takes the host's next entry (a page to try again, when one is due).
    fn pop(&mut self, key: &str, later: bool) -> Entry {
        let entry = self.hosts.get_mut(key).and_then(|h| h.pop_front(later));
        self.held = self.held.saturating_sub(1);
        self.stats.queued.store(self.held, Ordering::Relaxed);
        // Only called when the host has that entry.
        entry.unwrap_or_else(|| Entry::url("", 0, 0, None))
    }

    /// Holds an entry in its host's queue.
    fn hold(&mut self, entry: Entry, now: Millis) {
        let key = match self.hosts.get_key_value(host_key(&entry.url)) {
            Some((key, _)) => Arc::clone(key),
            None => {
                let key: Arc<str> = Arc::from(host_key(&entry.url));
                let robots = if self.policy.robots {
                    Robots::Unknown
                } else {
                    Robots::Known(Rules::allow_all())
                };
                let host = LocalHost {
                    queue: HostQueue::default(),
                    later: VecDeque::new(),
                    robots,
                    delay: self.policy.delay,
                    wake: None,
                    in_ready: false,
                    full: false,
                    robots_turn: false,
                    spares: Vec::new(),
                    spare_epoch: 0,
                    spares_until: 0,
                };
                self.hosts.insert(Arc::clone(&key), host);
                key
            }
        };
        let Some(h) = self.hosts.get_mut(&key) else {
            return;
        };
        if entry.not_before > now {
            let at = h
                .later
                .partition_point(|e| e.not_before <= entry.not_before);
            h.later.insert(at, entry);
        } else {
            h.queue.push_back(entry);
        }
        self.held += 1;
        self.stats.queued.store(self.held, Ordering::Relaxed);
        self.push_ready(&key);
    }

    /// Puts a host in the round robin, unless it has nothing to do or waits for something.
    fn push_ready(&mut self, key: &Arc<str>) {
        let Some(h) = self.hosts.get_mut(key) else {
            return;
        };
        let waits =
            h.wake.is_some() || h.full || h.robots_turn || matches!(h.robots, Robots::Fetching);
        if !h.in_ready && !waits && h.has_work() {
            h.in_ready = true;
            self.ready.push_back(Arc::clone(key));
        }
    }

    fn schedule(&mut self, key: &Arc<str>, at: Millis) {
        let Some(h) = self.hosts.get_mut(key) else {
            return;
        };
        if h.wake.is_some_and(|w| w <= at) {
            return;
        }
        h.wake = Some(at);
        self.timers.push(Reverse((at, Arc::clone(key))));
    }

    /// Hosts whose timer is due go back into the round robin.
    fn wake_due(&mut self, now: Millis) {
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, key))) = self.timers.pop() else {
                break;
            };
            if let Some(h) = self.hosts.get_mut(&key) {
                if h.wake == Some(t) {
                    h.wake = None;
                    self.push_ready(&key);
                }
            }
        }
    }

    /// A request of `host` ended: its slot goes back, the next one waits the host's delay.
    async fn end_request(
        &mut self,
        host: &Arc<str>,
        slot: &str,
        now: Millis,
        answered: bool,
    ) -> Result<(), StoreError> {
        let next = now + ms(self.delay_of(host));
        self.store.release(host, slot, next, answered).await?;
        self.released(host, now);
        Ok(())
    }

    fn delay_of(&self, host: &str) -> std::time::Duration {
        self.hosts.get(host).map_or(self.policy.delay, |h| h.delay)
    }

    /// A slot of `host` came back: the host may be asked again, after its delay (whatever timer
    /// it was waiting on: the store says when it is ready).
    fn released(&mut self, host: &Arc<str>, now: Millis) {
        let delay = self.delay_of(host);
        if let Some(h) = self.hosts.get_mut(host) {
            h.full = false;
            h.wake = None;
        }
        if delay.is_zero() {
            self.push_ready(host);
        } else {
            self.schedule(host, now + ms(delay));
        }
    }

    async fn add(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = self.store.now();
        let added = self.store.add(entries).await?;
        self.stats
            .discovered
            .fetch_add(added.new, Ordering::Relaxed);
        // Maybe new work in a shared store (a deferred add tells later): worth reading at once;
        // the read goes after the add, in the same round trip.
        self.short_at = None;
        for e in added.held {
            self.hold(e, now);
        }
        Ok(())
    }

    /// A page handed out has its final outcome: its slot goes back, its links are queued, then
    /// it is done in the store.
    pub async fn page_done(&mut self, mut done: PageDone) -> Result<(), StoreError> {
        let Some(out) = self.out.remove(done.url.as_str()) else {
            return Ok(());
        };
        let now = self.store.now();
        if self.policy.links && !(done.links.is_empty() && done.assets.is_empty()) {
            // A link exactly as a URL seen before (fragment aside) is that URL: it needs no
            // parsing, no scope check, nothing. The link step writes links in the URL parser's
            // own form, so on most pages most links are dropped here.
            // In place: a page's links are held once (a page of a million links is 100 MB).
            let store = &self.store;
            let fresh = |links: &mut Vec<String>| {
                links.retain(|l| store.seen(l.split('#').next().unwrap_or(l)) != Some(true));
            };
            let (mut found, mut assets) = (
                std::mem::take(&mut done.links),
                std::mem::take(&mut done.assets),
            );
            fresh(&mut found);
            fresh(&mut assets);
            let e = &out.entry;
            let links = self.policy.admit(&Finished {
                url: &done.url,
                role: e.role,
                depth: e.depth,
                hops: u32::from(e.hops),
                redirect: done.redirect,
                links: &found,
                assets: &assets,
            });
            drop((found, assets));
            if !links.widened.is_empty() {
                for host in self.store.widen(&links.widened).await? {
                    self.policy.scope.allow_host(&host);
                }
            }
            self.queue_admitted(&out.entry.url, links.admitted).await?;
        }
        // The links are queued before the page is done: a crash in between finds the page again
        // and its links already seen, never a page done whose links were lost.
        self.end_out(out, done.outcome, done.status.is_some(), now)
            .await
    }

    /// An attempt failed in a way that may pass: the policy decides whether the page is tried
    /// again later (and whether its host is paused or given up).
    pub async fn failed(&mut self, f: Failed) -> Result<Retry, StoreError> {
        let now = self.store.now();
        let Some(out) = self.out.get_mut(f.url.as_str()) else {
            return Ok(Retry::Fail(JobError::new(f.kind, f.message)));
        };
        let slot = out.slot.take();
        let (host, epoch) = (Arc::clone(&out.host), out.epoch);
        let tries = u32::from(out.entry.tries) + 1;
        if let Some(slot) = slot {
            self.end_request(&host, &slot, now, false).await?;
        }
        // The host's state is about to change (a pause, a give-up): no spare overtakes it.
        self.drop_spares(&host).await?;
        let trouble = Trouble {
            kind: TroubleKind::of(f.status, f.kind),
            retry_after: f.retry_after,
            epoch,
            tries,
            message: f.message,
        };
        match self.decide(&host, &trouble, now).await? {
            Verdict::RetryAt(at) => {
                if let Some(mut out) = self.out.remove(f.url.as_str()) {
                    out.entry.tries = u8::try_from(tries).unwrap_or(u8::MAX);
                    out.entry.not_before = at;
                    self.handed_out = self.handed_out.saturating_sub(1);
                    self.hold(out.entry, now);
                }
                Ok(Retry::Later)
            }
            Verdict::Fail(message) => Ok(Retry::Fail(JobError::new(f.kind, message))),
        }
    }

    /// Applies a failure to the host's state in the store, deciding again if another worker
    /// changed it meanwhile (a bounded number of times: then the decision stands unrecorded).
    async fn decide(
        &mut self,
        host: &str,
        trouble: &Trouble,
        now: Millis,
    ) -> Result<Verdict, StoreError> {
        let jitter = (self.jitter)();
        let mut verdict = Verdict::Fail(trouble.message.clone());
        for _ in 0..16 {
            let old = self.store.host(host).await?;
            let mut new = old.clone();
            verdict = self.policy.trouble(&mut new, trouble, now, jitter);
            if self.store.swap_host(host, &old, &new).await? {
                break;
            }
        }
        Ok(verdict)
    }

    /// The answer to a robots.txt request.
    pub async fn robots(&mut self, host: Arc<str>, answer: RobotsAnswer) -> Result<(), StoreError> {
        let Some(RobotsOut { slot, epoch }) = self.robots_out.remove(&host) else {
            return Ok(());
        };
        // The next host waiting for its turn may ask for its own now.
        if let Some(next) = self.robots_turns.pop_front() {
            if let Some(h) = self.hosts.get_mut(&next) {
                h.robots_turn = false;
            }
            self.push_ready(&next);
        }
        let now = self.store.now();
        let (robots, answered, trouble) = match answer {
            RobotsAnswer::Rules(body) => {
                (Robots::Known(Rules::parse(&self.agent, &body)), true, None)
            }
            RobotsAnswer::Unavailable => (Robots::Known(Rules::allow_all()), true, None),
            RobotsAnswer::Unreachable {
                message,
                retry_after,
            } => {
                let t = Trouble {
                    kind: TroubleKind::Host,
                    retry_after,
                    epoch,
                    tries: 0,
                    message,
                };
                (Robots::Unknown, false, Some(t))
            }
        };
        let mut sitemaps = Vec::new();
        if let Robots::Known(rules) = &robots {
            if self.policy.sitemaps {
                let listed: Vec<String> = rules.sitemaps().to_vec();
                sitemaps = self
                    .policy
                    .admit_sitemap(&format!("{host}/robots.txt"), &listed, true);
            }
        }
        if let Some(h) = self.hosts.get_mut(&host) {
            if let Robots::Known(rules) = &robots {
                h.delay = self.policy.host_delay(rules.crawl_delay());
            }
            h.robots = robots;
        }
        if !sitemaps.is_empty() {
            let entries = sitemaps
                .into_iter()
                .map(|a| Entry::url(a.url.as_str(), 0, 0, None).with_role(Role::Sitemap))
                .collect();
            self.add(entries).await?;
        }
        self.end_request(&host, &slot, now, answered).await?;
        if let Some(t) = trouble {
            self.drop_spares(&host).await?;
            self.decide(&host, &t, now).await?;
            // Asked again once the pause is over.
            let state = self.store.host(&host).await?;
            if state.given_up.is_none() {
                self.schedule(&host, state.paused_until.max(now));
            } else {
                self.push_ready(&host);
            }
        }
        Ok(())
    }

    /// A job the supervisor could not take (it stopped): back to the front of its host's queue.
    pub async fn take_back(&mut self, job: Job) -> Result<(), StoreError> {
        let Some(out) = self.out.remove(job.url.as_str()) else {
            return Ok(());
        };
        let now = self.store.now();
        if let Some(slot) = &out.slot {
            self.store.release(&out.host, slot, now, false).await?;
        }
        self.handed_out = self.handed_out.saturating_sub(1);
        if let Some(h) = self.hosts.get_mut(&out.host) {
            h.queue.push_front(out.entry);
            self.held += 1;
            self.stats.queued.store(self.held, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Upkeep: renews this worker's leases in a shared store; returns when to call again.
    pub async fn tick(&mut self) -> Result<std::time::Duration, StoreError> {
        if self.store.poll().is_none() {
            return Ok(self.store.tick(&[], &[]).await?.0);
        }
        let mut ids: Vec<&str> = Vec::new();
        for h in self.hosts.values() {
            ids.extend(h.queue.ids().chain(h.later.iter().map(Entry::id)));
        }
        ids.extend(self.out.values().map(|o| o.entry.id()));
        let mut slots: Vec<(&str, &str)> = self
            .out
            .values()
            .filter_map(|o| o.slot.as_deref().map(|s| (&*o.host, s)))
            .collect();
        slots.extend(self.robots_out.iter().map(|(h, r)| (&**h, r.slot.as_str())));
        for (key, h) in &self.hosts {
            slots.extend(h.spares.iter().map(|s| (&**key, s.as_str())));
        }
        ids.retain(|id| !id.is_empty());
        let (again, taken) = self.store.tick(&ids, &slots).await?;
        let now = self.store.now();
        for e in taken {
            self.hold(e, now);
        }
        for host in self.store.widen(&[]).await? {
            self.policy.scope.allow_host(&host);
        }
        Ok(again)
    }
}

#[cfg(test)]
mod tests {
    use super::host_key;

    #[test]
    fn host_keys_are_origins() {
        assert_eq!(host_key("http://h:8080/a/b?c"), "http://h:8080");
        assert_eq!(host_key("https://h/"), "https://h");
        assert_eq!(host_key("http://[::1]:81/x"), "http://[::1]:81");
        assert_eq!(host_key("http://h?q"), "http://h");
    }
}
