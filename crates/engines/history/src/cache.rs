//! A byte-bounded LRU cache of decoded segment pages (decompressed record blocks, sort-key
//! chunks, index blocks, fingerprint tables), shared by all lookups so that hot pages —
//! above all the newest ones, which every lookup starts from — are decoded once.

use crate::segment::{DecodedBlock, SortKeyChunk};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PageKind {
    Block,
    SortKeys,
    Index,
    Fingerprints,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PageId {
    pub(crate) segment: u64,
    pub(crate) kind: PageKind,
    pub(crate) index: u32,
}

#[derive(Clone)]
pub(crate) enum Page {
    Block(Arc<DecodedBlock>),
    SortKeys(Arc<SortKeyChunk>),
    Index(Arc<Vec<u8>>),
    Fingerprints(Arc<Vec<(u32, u32)>>),
}

impl Page {
    fn charge(&self) -> usize {
        const OVERHEAD: usize = 128;
        OVERHEAD
            + match self {
                Self::Block(block) => block.memory_bytes(),
                Self::SortKeys(chunk) => chunk.memory_bytes(),
                Self::Index(bytes) => bytes.len(),
                Self::Fingerprints(table) => table.len() * 8,
            }
    }
}

struct Entry {
    page: Page,
    tick: u64,
    charge: usize,
}

struct Lru {
    entries: HashMap<PageId, Entry>,
    by_age: BTreeMap<u64, PageId>,
    tick: u64,
    bytes: usize,
}

pub(crate) struct PageCache {
    capacity: usize,
    lru: Mutex<Lru>,
}

impl PageCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            lru: Mutex::new(Lru {
                entries: HashMap::new(),
                by_age: BTreeMap::new(),
                tick: 0,
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock leaves the LRU consistent enough to keep using.
        self.lru
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get(&self, id: PageId) -> Option<Page> {
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let entry = lru.entries.get_mut(&id)?;
        let old = std::mem::replace(&mut entry.tick, tick);
        let page = entry.page.clone();
        lru.by_age.remove(&old);
        lru.by_age.insert(tick, id);
        Some(page)
    }

    pub(crate) fn insert(&self, id: PageId, page: Page) {
        let charge = page.charge();
        if charge > self.capacity / 4 {
            return;
        }
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some(old) = lru.entries.insert(id, Entry { page, tick, charge }) {
            lru.by_age.remove(&old.tick);
            lru.bytes -= old.charge;
        }
        lru.by_age.insert(tick, id);
        lru.bytes += charge;
        while lru.bytes > self.capacity {
            let Some((_, oldest)) = lru.by_age.pop_first() else {
                break;
            };
            if let Some(evicted) = lru.entries.remove(&oldest) {
                lru.bytes -= evicted.charge;
            }
        }
    }

    /// Drops every page of `segment` (after it was merged away or expired).
    pub(crate) fn forget_segment(&self, segment: u64) {
        let mut lru = self.lock();
        let doomed: Vec<(PageId, u64)> = lru
            .entries
            .iter()
            .filter(|(id, _)| id.segment == segment)
            .map(|(id, entry)| (*id, entry.tick))
            .collect();
        for (id, tick) in doomed {
            lru.by_age.remove(&tick);
            if let Some(entry) = lru.entries.remove(&id) {
                lru.bytes -= entry.charge;
            }
        }
    }
}
