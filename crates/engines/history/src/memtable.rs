//! Recently inserted events not yet written to segments, indexed in memory the same way
//! segments are, so lookups see an event as soon as `insert_batch` returns.

use crate::fast_hash::FastMap;
use crate::index_key::is_stream_key;
use crate::staging::{compare, Presence, StagedEvent};
use opentrail_model::EventRecord;
use std::collections::hash_map::Entry;
use std::collections::BTreeMap;

struct MemEvent {
    /// Where the record's text is in `Memtable::arena`.
    json: ArenaRange,
    sort_key: u64,
    day: i32,
    /// Index into `Memtable::streams`.
    stream: u32,
}

/// A range of one arena chunk.
#[derive(Clone, Copy)]
struct ArenaRange {
    chunk: u32,
    start: u32,
    len: u32,
}

/// Bytes of one arena chunk (a record larger than this gets a chunk of its own size).
const ARENA_CHUNK_BYTES: usize = 1 << 20;

/// The memtable's records' texts, copied into large chunks: a memtable lives for seconds
/// while the parsed records around it live for milliseconds, and copying each text into
/// an allocation of its own mixed the two on the allocator's pages, which then could not
/// be returned (a 10M-event import peaked ~130 MiB higher).
#[derive(Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
}

impl Arena {
    /// Copies `parts` one after the other into one range.
    fn push(&mut self, parts: &[&[u8]]) -> ArenaRange {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        let fits = self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.capacity() - chunk.len() >= len);
        if !fits {
            self.chunks
                .push(Vec::with_capacity(ARENA_CHUNK_BYTES.max(len)));
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_index];
        let start = chunk.len();
        for part in parts {
            chunk.extend_from_slice(part);
        }
        ArenaRange {
            chunk: chunk_index as u32,
            start: start as u32,
            len: len as u32,
        }
    }

    fn get(&self, range: ArenaRange) -> &[u8] {
        let start = range.start as usize;
        self.chunks
            .get(range.chunk as usize)
            .and_then(|chunk| chunk.get(start..start + range.len as usize))
            .unwrap_or_default()
    }
}

#[derive(Default)]
pub(crate) struct Memtable {
    events: Vec<MemEvent>,
    arena: Arena,
    /// Index key → indexes into `events`, ascending.
    postings: FastMap<Box<[u8]>, Vec<u32>>,
    /// Fingerprint → the first event with it; later ones (collisions) in `more_fingerprints`.
    by_fingerprint: FastMap<u32, u32>,
    more_fingerprints: FastMap<u32, Vec<u32>>,
    /// Stream index keys, and their ids.
    streams: Vec<Box<[u8]>>,
    stream_ids: FastMap<Box<[u8]>, u32>,
    /// Approximate memory held: records, index keys and per-event bookkeeping.
    bytes: usize,
    /// Holds events of a day whose segment could not be written at an earlier flush:
    /// until this memtable is written, the store's flushed offset must not move on.
    pub(crate) holds_retried: bool,
}

/// Memory per event beyond its record and keys: the event entry, posting and fingerprint
/// slots, hash table overhead.
const EVENT_OVERHEAD_BYTES: usize = 96;

/// One day's events in segment order, with their postings, ready for a segment writer.
pub(crate) struct DayRun<'m> {
    pub(crate) day: i32,
    /// (stream key, sort key, record), by stream key, then descending sort key.
    pub(crate) records: Vec<(&'m [u8], u64, &'m [u8])>,
    /// Attribute index keys ascending, each with ascending ordinals into `records`.
    pub(crate) postings: Vec<(&'m [u8], Vec<u32>)>,
}

impl Memtable {
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Approximate memory held (what `memtable_bytes` bounds).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
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
        let stream_key = event.keys.iter().next().unwrap_or_default();
        let stream = match self.stream_ids.get(stream_key) {
            Some(&stream) => stream,
            None => {
                let stream = self.streams.len() as u32;
                self.streams.push(stream_key.into());
                self.stream_ids.insert(stream_key.into(), stream);
                stream
            }
        };
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
        let json = self.arena.push(&event.stored_parts());
        self.bytes += json.len as usize + event.keys.heap_bytes() + EVENT_OVERHEAD_BYTES;
        self.events.push(MemEvent {
            json,
            sort_key: event.sort_key,
            day: event.day,
            stream,
        });
    }

    pub(crate) fn json(&self, index: u32) -> Option<&[u8]> {
        self.events
            .get(index as usize)
            .map(|event| self.arena.get(event.json))
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

    /// What this memtable holds of `record` (whose identity fingerprint is `fingerprint`).
    pub(crate) fn presence(&self, fingerprint: u32, record: &EventRecord) -> Presence {
        self.with_fingerprint(fingerprint)
            .map(|index| compare(self.arena.get(self.events[index as usize].json), record))
            .fold(Presence::New, Presence::and)
    }

    /// Up to `limit` (sort key, index) pairs, largest keys first, among the events of
    /// `stream` selected by `selector` whose sort key lies in `[low, high]`.
    pub(crate) fn candidates(
        &self,
        stream: &[u8],
        selector: Selector<'_>,
        low: u64,
        high: u64,
        limit: usize,
    ) -> Vec<(u64, u32)> {
        let Some(&stream_id) = self.stream_ids.get(stream) else {
            return Vec::new();
        };
        let mut matches: Vec<(u64, u32)> = Vec::new();
        let mut consider = |index: u32| {
            let event = &self.events[index as usize];
            if event.stream == stream_id && (low..=high).contains(&event.sort_key) {
                matches.push((event.sort_key, index));
            }
        };
        let key = match selector {
            Selector::Stream => Some(stream),
            Selector::Key(key) => Some(key),
            Selector::Fingerprint(_) => None,
        };
        match (key, selector) {
            (Some(key), _) => self
                .postings
                .get(key)
                .into_iter()
                .flatten()
                .for_each(|&index| consider(index)),
            (None, Selector::Fingerprint(fingerprint)) => {
                self.with_fingerprint(fingerprint).for_each(consider)
            }
            (None, _) => {}
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

    /// The events grouped by day, each day in segment order (by stream, newest first)
    /// with its attribute postings.
    pub(crate) fn day_runs(&self) -> Vec<DayRun<'_>> {
        let mut stream_rank = vec![0u32; self.streams.len()];
        let mut by_key: Vec<u32> = (0..self.streams.len() as u32).collect();
        by_key.sort_unstable_by(|&a, &b| self.streams[a as usize].cmp(&self.streams[b as usize]));
        for (rank, &stream) in by_key.iter().enumerate() {
            stream_rank[stream as usize] = rank as u32;
        }
        let mut days: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        for (index, event) in self.events.iter().enumerate() {
            days.entry(event.day).or_default().push(index as u32);
        }
        // Each event's run and its ordinal there.
        let mut ordinal_of = vec![0u32; self.events.len()];
        let mut run_of = vec![0u32; self.events.len()];
        let mut runs: Vec<DayRun<'_>> = Vec::with_capacity(days.len());
        for (day, mut indexes) in days {
            indexes.sort_unstable_by_key(|&index| {
                let event = &self.events[index as usize];
                (
                    stream_rank[event.stream as usize],
                    std::cmp::Reverse(event.sort_key),
                )
            });
            for (ordinal, &index) in indexes.iter().enumerate() {
                ordinal_of[index as usize] = ordinal as u32;
                run_of[index as usize] = runs.len() as u32;
            }
            runs.push(DayRun {
                day,
                records: indexes
                    .iter()
                    .map(|&index| {
                        let event = &self.events[index as usize];
                        (
                            &*self.streams[event.stream as usize],
                            event.sort_key,
                            self.arena.get(event.json),
                        )
                    })
                    .collect(),
                postings: Vec::new(),
            });
        }
        let mut keys: Vec<(&[u8], &Vec<u32>)> = self
            .postings
            .iter()
            .filter(|(key, _)| !is_stream_key(key))
            .map(|(key, indexes)| (&**key, indexes))
            .collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // A key's (run, ordinal) pairs, sorted: each run's ordinals ascending, runs apart.
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (key, indexes) in keys {
            pairs.clear();
            pairs.extend(
                indexes
                    .iter()
                    .map(|&index| (run_of[index as usize], ordinal_of[index as usize])),
            );
            pairs.sort_unstable();
            for run in pairs.chunk_by(|a, b| a.0 == b.0) {
                let ordinals = run.iter().map(|&(_, ordinal)| ordinal).collect();
                runs[run[0].0 as usize].postings.push((key, ordinals));
            }
        }
        runs
    }
}

/// What a lookup selects within its stream: every event (time-range lookups), the
/// events under an attribute index key, or those with an identity fingerprint (EventId).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Selector<'k> {
    Stream,
    Key(&'k [u8]),
    Fingerprint(u32),
}
