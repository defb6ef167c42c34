//! Recently inserted events not yet written to segments, indexed in memory the same way
//! segments are, so lookups see an event as soon as `insert_batch` returns.

use crate::fast_hash::FastMap;
use crate::staging::{is_same_event, StagedEvent};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

struct MemEvent {
    json: Box<[u8]>,
    sort_key: u64,
    day: i32,
}

#[derive(Default)]
pub(crate) struct Memtable {
    events: Vec<MemEvent>,
    /// Index key → indexes into `events`, ascending.
    postings: FastMap<Box<[u8]>, Vec<u32>>,
    /// Fingerprint → the first event with it; later ones (collisions) in `more_fingerprints`.
    by_fingerprint: FastMap<u32, u32>,
    more_fingerprints: FastMap<u32, Vec<u32>>,
    json_bytes: usize,
}

/// One day's events in sort order, with their postings, ready for a segment writer.
pub(crate) struct DayRun<'m> {
    pub(crate) day: i32,
    /// (sort key, record) in descending sort-key order.
    pub(crate) records: Vec<(u64, &'m [u8])>,
    /// Index keys ascending, each with ascending ordinals into `records`.
    pub(crate) postings: Vec<(&'m [u8], Vec<u32>)>,
}

impl Memtable {
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub(crate) fn json_bytes(&self) -> usize {
        self.json_bytes
    }

    pub(crate) fn insert(&mut self, event: StagedEvent) {
        let index = self.events.len() as u32;
        for key in event.keys.iter() {
            match self.postings.get_mut(key) {
                Some(indexes) => indexes.push(index),
                None => {
                    self.postings.insert(key.into(), vec![index]);
                }
            }
        }
        let fingerprint = crate::segment::key_fingerprint(event.sort_key);
        match self.by_fingerprint.entry(fingerprint) {
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
            Entry::Occupied(_) => self
                .more_fingerprints
                .entry(fingerprint)
                .or_default()
                .push(index),
        }
        self.json_bytes += event.json.len();
        self.events.push(MemEvent {
            json: event.json,
            sort_key: event.sort_key,
            day: event.day,
        });
    }

    pub(crate) fn json(&self, index: u32) -> Option<&[u8]> {
        self.events.get(index as usize).map(|event| &*event.json)
    }

    /// Indexes of the events with `fingerprint`.
    fn with_fingerprint(&self, fingerprint: u32) -> impl Iterator<Item = u32> + '_ {
        self.by_fingerprint
            .get(&fingerprint)
            .copied()
            .into_iter()
            .chain(
                self.more_fingerprints
                    .get(&fingerprint)
                    .into_iter()
                    .flatten()
                    .copied(),
            )
    }

    /// Whether the event (`account`, `region`, `event_id`) with `fingerprint` is here.
    pub(crate) fn contains(
        &self,
        fingerprint: u32,
        account: &str,
        region: &str,
        event_id: &str,
    ) -> bool {
        self.with_fingerprint(fingerprint).any(|index| {
            is_same_event(&self.events[index as usize].json, account, region, event_id)
        })
    }

    /// Up to `limit` (sort key, index) pairs, largest keys first, among the events
    /// indexed under `key` (or with `fingerprint`) whose sort key lies in `[low, high]`.
    pub(crate) fn candidates(
        &self,
        selector: Selector<'_>,
        low: u64,
        high: u64,
        limit: usize,
    ) -> Vec<(u64, u32)> {
        let mut matches: Vec<(u64, u32)> = Vec::new();
        let mut consider = |index: u32| {
            let key = self.events[index as usize].sort_key;
            if (low..=high).contains(&key) {
                matches.push((key, index));
            }
        };
        match selector {
            Selector::Key(key) => self
                .postings
                .get(key)
                .into_iter()
                .flatten()
                .for_each(|&index| consider(index)),
            Selector::Fingerprint(fingerprint) => {
                self.with_fingerprint(fingerprint).for_each(consider)
            }
        }
        let by_key_descending = |a: &(u64, u32), b: &(u64, u32)| b.cmp(a);
        if limit == 0 {
            return Vec::new();
        }
        if matches.len() > limit {
            matches.select_nth_unstable_by(limit - 1, by_key_descending);
            matches.truncate(limit);
        }
        matches.sort_unstable_by(by_key_descending);
        matches
    }

    /// The events grouped by day, each day in sort order with its postings.
    pub(crate) fn day_runs(&self) -> Vec<DayRun<'_>> {
        let mut days: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        for (index, event) in self.events.iter().enumerate() {
            days.entry(event.day).or_default().push(index as u32);
        }
        let mut ordinal_of = vec![0u32; self.events.len()];
        let mut runs: Vec<DayRun<'_>> = Vec::with_capacity(days.len());
        let mut run_of_day = HashMap::new();
        for (day, mut indexes) in days {
            indexes.sort_unstable_by(|&a, &b| {
                let (a, b) = (&self.events[a as usize], &self.events[b as usize]);
                b.sort_key.cmp(&a.sort_key)
            });
            for (ordinal, &index) in indexes.iter().enumerate() {
                ordinal_of[index as usize] = ordinal as u32;
            }
            run_of_day.insert(day, runs.len());
            runs.push(DayRun {
                day,
                records: indexes
                    .iter()
                    .map(|&index| {
                        let event = &self.events[index as usize];
                        (event.sort_key, &*event.json)
                    })
                    .collect(),
                postings: Vec::new(),
            });
        }
        let mut keys: Vec<(&[u8], &Vec<u32>)> = self
            .postings
            .iter()
            .map(|(key, indexes)| (&**key, indexes))
            .collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, indexes) in keys {
            let mut per_run: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
            for &index in indexes {
                let run = run_of_day[&self.events[index as usize].day];
                per_run
                    .entry(run)
                    .or_default()
                    .push(ordinal_of[index as usize]);
            }
            for (run, mut ordinals) in per_run {
                ordinals.sort_unstable();
                runs[run].postings.push((key, ordinals));
            }
        }
        runs
    }
}

/// What a lookup selects: an index key, or an identity fingerprint (EventId lookups).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Selector<'k> {
    Key(&'k [u8]),
    Fingerprint(u32),
}
