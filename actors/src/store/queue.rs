//! A host's queue of entries, packed: what a crawl holds most of.
//!
//! A crawl that finds URLs faster than it fetches them holds millions in its host queues. As
//! [`Entry`] values each costs 56 bytes, plus its URL in an allocation of its own (a 69-byte URL
//! takes 80 with the allocator's overhead), plus the seen-set's fingerprint: 189 bytes a queued
//! URL, measured. Here the entries behind the first are bytes in one buffer per host: a tag, the
//! small numbers as varints and the URL front-coded: how many leading bytes it shares with the
//! URL queued just before it, then the rest. Links queued together come from one page and share
//! most of their path (`http://host/docs/section-003/chapter-012/page-00` of
//! `.../page-0012345.html`), so a 69-byte URL takes about 20 bytes. Their parent page, shared by
//! all the links of a page, is kept once per run of entries found on the same page; the rare
//! parts (a shared store's id, a list's job) in a queue of their own.
//!
//! Order is first in, first out, as a `VecDeque` would keep it; an entry put back at the front
//! (a job the supervisor could not take) is kept as it is, ahead of the rest. A queue of one
//! entry is 64 bytes: the packing (and its buffer) exists only behind a second entry.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Entry, Extra};
use crate::job::Role;

/// Consumed bytes are dropped from the buffer's front once they are this many and half of it.
const COMPACT_AT: usize = 64 * 1024;

/// A host's entries in the order they are handed out. Small while it holds at most one entry
/// (a crawl of a hundred thousand hosts holds that many queues): the rest is boxed.
#[derive(Default)]
pub(crate) struct HostQueue {
    /// The first entry, unpacked, so that [`HostQueue::front`] can lend it (after the entries
    /// put back, if any).
    next: Option<Entry>,
    rest: Option<Box<Rest>>,
}

/// What a queue of more than one entry holds besides `next`.
#[derive(Default)]
struct Rest {
    /// Entries put back at the front, the first to go out last in the vector.
    returned: Vec<Entry>,
    packed: Packed,
}

/// The packed entries behind `next`.
#[derive(Default)]
struct Packed {
    /// The URL of the last entry packed, which the next one is front-coded against (when none
    /// is packed, it is coded against `next`'s, the entry just ahead of it).
    last_in: Box<str>,
    bytes: Vec<u8>,
    /// Where the next entry to unpack starts.
    read: usize,
    len: usize,
    /// One parent per run of entries that share it, in the order the runs were packed.
    parents: VecDeque<Arc<str>>,
    /// The parent of the last entry packed, and of the last unpacked.
    parent_in: Option<Arc<str>>,
    parent_out: Option<Arc<str>>,
    /// The rare parts of the entries that have them, in order.
    extras: VecDeque<Box<Extra>>,
}

// The tag byte: the role in the low two bits, then what the entry has.
const ROLE_MASK: u8 = 0b11;
const NO_PARENT: u8 = 1 << 2;
const NEW_PARENT: u8 = 1 << 3;
const HAS_EXTRA: u8 = 1 << 4;

impl HostQueue {
    pub fn len(&self) -> usize {
        usize::from(self.next.is_some())
            + self
                .rest
                .as_ref()
                .map_or(0, |r| r.returned.len() + r.packed.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry [`HostQueue::pop_front`] would give.
    pub fn front(&self) -> Option<&Entry> {
        let returned = self.rest.as_ref().and_then(|r| r.returned.last());
        returned.or(self.next.as_ref())
    }

    pub fn push_back(&mut self, entry: Entry) {
        let Some(next) = &self.next else {
            // Nothing packed either: packed entries always have `next` ahead of them.
            self.next = Some(entry);
            return;
        };
        let rest = self.rest.get_or_insert_with(Box::default);
        let last_in;
        let ahead: &str = if rest.packed.len == 0 {
            &next.url
        } else {
            last_in = std::mem::take(&mut rest.packed.last_in);
            &last_in
        };
        rest.packed.push(ahead, entry);
    }

    /// Puts `entry` ahead of every other.
    pub fn push_front(&mut self, entry: Entry) {
        let rest = self.rest.get_or_insert_with(Box::default);
        rest.returned.push(entry);
    }

    pub fn pop_front(&mut self) -> Option<Entry> {
        if let Some(rest) = &mut self.rest {
            if let Some(entry) = rest.returned.pop() {
                self.tidy();
                return Some(entry);
            }
        }
        let entry = self.next.take();
        // The first packed entry was coded against the one just ahead of it: `entry`.
        if let (Some(ahead), Some(rest)) = (&entry, &mut self.rest) {
            self.next = rest.packed.pop(&ahead.url);
        }
        self.tidy();
        entry
    }

    /// The store ids of the entries that have one, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        let rest = self.rest.as_deref();
        rest.into_iter()
            .flat_map(|r| &r.returned)
            .chain(&self.next)
            .map(Entry::id)
            .chain(
                rest.into_iter()
                    .flat_map(|r| r.packed.extras.iter().map(|x| &*x.id)),
            )
            .filter(|id| !id.is_empty())
    }

    /// Gives the box back once it holds nothing.
    fn tidy(&mut self) {
        if self
            .rest
            .as_ref()
            .is_some_and(|r| r.returned.is_empty() && r.packed.len == 0)
        {
            self.rest = None;
        }
    }
}

impl Packed {
    /// Packs `entry`, front-coded against `ahead`, the URL of the entry just ahead of it.
    fn push(&mut self, ahead: &str, entry: Entry) {
        let Entry {
            url,
            parent,
            extra,
            not_before,
            depth,
            hops,
            tries,
            role,
        } = entry;
        let mut tag = match role {
            Role::Page => 0,
            Role::Asset => 1,
            Role::Sitemap => 2,
        };
        match parent {
            None => tag |= NO_PARENT,
            Some(p) => {
                let same = self.parent_in.as_ref().is_some_and(|q| Arc::ptr_eq(q, &p));
                if !same {
                    tag |= NEW_PARENT;
                    self.parents.push_back(Arc::clone(&p));
                    self.parent_in = Some(p);
                }
            }
        }
        if let Some(extra) = extra {
            tag |= HAS_EXTRA;
            self.extras.push_back(extra);
        }
        let shared = ahead
            .bytes()
            .zip(url.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let rest = &url.as_bytes()[shared..];
        self.bytes.extend_from_slice(&[tag, hops, tries]);
        put_varint(&mut self.bytes, u64::from(depth));
        put_varint(&mut self.bytes, not_before);
        put_varint(&mut self.bytes, shared as u64);
        put_varint(&mut self.bytes, rest.len() as u64);
        self.bytes.extend_from_slice(rest);
        self.last_in = url;
        self.len += 1;
    }

    /// Unpacks the first entry; `ahead` is the URL of the entry that was just ahead of it.
    fn pop(&mut self, ahead: &str) -> Option<Entry> {
        if self.len == 0 {
            return None;
        }
        let mut at = self.read;
        let (tag, hops, tries) = (
            *self.bytes.get(at)?,
            *self.bytes.get(at + 1)?,
            *self.bytes.get(at + 2)?,
        );
        at += 3;
        let depth = take_varint(&self.bytes, &mut at)?;
        let not_before = take_varint(&self.bytes, &mut at)?;
        let shared = usize::try_from(take_varint(&self.bytes, &mut at)?).ok()?;
        let n = usize::try_from(take_varint(&self.bytes, &mut at)?).ok()?;
        let rest = self.bytes.get(at..at + n)?;
        at += n;
        let mut url = Vec::with_capacity(shared + n);
        url.extend_from_slice(ahead.as_bytes().get(..shared)?);
        url.extend_from_slice(rest);
        // The bytes of a `str` (a cut inside a character is mended by the rest).
        let url = String::from_utf8(url)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let parent = if tag & NO_PARENT != 0 {
            None
        } else {
            if tag & NEW_PARENT != 0 {
                self.parent_out = self.parents.pop_front();
            }
            self.parent_out.clone()
        };
        let extra = if tag & HAS_EXTRA != 0 {
            self.extras.pop_front()
        } else {
            None
        };
        let role = match tag & ROLE_MASK {
            1 => Role::Asset,
            2 => Role::Sitemap,
            _ => Role::Page,
        };
        self.read = at;
        self.len -= 1;
        self.tidy();
        Some(Entry {
            url: url.into_boxed_str(),
            parent,
            extra,
            not_before,
            depth: u32::try_from(depth).unwrap_or(u32::MAX),
            hops,
            tries,
            role,
        })
    }

    /// Gives back what was unpacked: all of it (and the buffer) when the queue is empty, else the
    /// consumed front once it is large.
    fn tidy(&mut self) {
        if self.len == 0 {
            *self = Packed::default();
        } else if self.read >= COMPACT_AT && self.read * 2 >= self.bytes.len() {
            self.bytes.drain(..self.read);
            self.read = 0;
        }
    }
}

/// LEB128: seven bits a byte, low first, the high bit set on all but the last.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str, parent: Option<&Arc<str>>) -> Entry {
        Entry::url(url, 3, 1, parent.cloned())
    }

    fn packed(q: &HostQueue) -> &Packed {
        &q.rest.as_ref().expect("packed entries").packed
    }

    fn urls(q: &mut HostQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop_front())
            .map(|e| e.url.into())
            .collect()
    }

    #[test]
    fn first_in_first_out_with_every_field_kept() {
        let mut q = HostQueue::default();
        let page: Arc<str> = "http://h:8080/".into();
        let other: Arc<str> = "http://h:8080/other".into();
        let mut odd = entry("https://elsewhere/é?q=ü", Some(&other)).with_role(Role::Sitemap);
        odd.not_before = 1 << 40;
        odd.tries = 7;
        odd.depth = u32::MAX;
        odd.set_id("1700000000000-0");
        let all = [
            entry("http://h:8080/a", Some(&page)),
            entry("http://h:8080/b", Some(&page)),
            odd,
            // Shares the first byte of `é` with the URL ahead: cut inside a character.
            entry("https://elsewhere/è", Some(&other)),
            entry("http://h:8080/c", None).with_role(Role::Asset),
            entry("http://h:8080/d", Some(&page)),
        ];
        for e in all.iter().cloned() {
            q.push_back(e);
        }
        assert_eq!(q.len(), 6);
        assert_eq!(q.ids().collect::<Vec<_>>(), ["1700000000000-0"]);
        for want in &all {
            assert_eq!(q.front().map(|e| e.url.clone()), Some(want.url.clone()));
            let got = q.pop_front().expect("an entry");
            assert_eq!(
                (
                    &got.url,
                    &got.parent,
                    got.id(),
                    got.not_before,
                    got.depth,
                    got.hops,
                    got.tries,
                    got.role
                ),
                (
                    &want.url,
                    &want.parent,
                    want.id(),
                    want.not_before,
                    want.depth,
                    want.hops,
                    want.tries,
                    want.role
                )
            );
        }
        assert!(q.is_empty() && q.pop_front().is_none() && q.front().is_none());
        assert!(q.rest.is_none());
    }

    #[test]
    fn an_entry_put_back_goes_first_and_pushes_mix_with_pops() {
        let mut q = HostQueue::default();
        for i in 0..3 {
            q.push_back(entry(&format!("http://h/{i}"), None));
        }
        let first = q.pop_front().expect("an entry");
        q.push_back(entry("http://h/3", None));
        q.push_front(first);
        q.push_front(entry("http://h/x", None));
        assert_eq!(q.len(), 5);
        assert_eq!(
            urls(&mut q),
            [
                "http://h/x",
                "http://h/0",
                "http://h/1",
                "http://h/2",
                "http://h/3"
            ]
        );
    }

    #[test]
    fn a_long_queue_is_compacted_as_it_drains_and_freed_when_empty() {
        let mut q = HostQueue::default();
        assert_eq!(std::mem::size_of::<HostQueue>(), 64);
        let n = 50_000;
        for i in 0..n {
            q.push_back(entry(&format!("http://h/docs/page-{i:07}.html"), None));
        }
        // Tag, hops, tries, depth, time, shared, length: seven bytes; "http://h/docs/page-00"
        // shared with the URL ahead, at most "00000.html" left.
        assert!(packed(&q).bytes.len() <= (n - 1) * (7 + "00000.html".len()));
        for i in 0..n {
            if i < n - 1 {
                // What was unpacked is never more than what is left (or a little).
                let p = packed(&q);
                assert!(p.read <= (p.bytes.len() - p.read).max(COMPACT_AT), "{i}");
            }
            let e = q.pop_front().expect("an entry");
            assert_eq!(&*e.url, format!("http://h/docs/page-{i:07}.html"));
        }
        assert!(q.is_empty() && q.rest.is_none());
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut at = 0;
            assert_eq!(take_varint(&out, &mut at), Some(v));
            assert_eq!(at, out.len());
        }
        assert_eq!(take_varint(&[0x80], &mut 0), None);
    }
}
