//! The most recently committed records, kept in memory so consumers that keep up with the
//! writer (the normal case) read without a syscall, a copy or a checksum: they get clones of
//! the very records the producers appended, with the events the producers parsed. Lagging
//! readers fall back to the segment files (bytes only).
//!
//! The newest `capacity_bytes` are always kept. Older records that came with their
//! parses are kept too, up to `unread_bytes` in all, while a live reader reading from the
//! cache has not read them yet: in a burst the consumers fall behind the producers, and
//! without them they would read those records back from the files and parse them again.
//! Once every such reader has passed them (or the limit is reached) they go, so a log whose
//! readers keep up holds only `capacity_bytes`. A reader behind the cache's oldest record (one that fell behind
//! by more than the limit, as in a long import) reads the files anyway and holds nothing.
//! Records without parses (the server's own audit events) go beyond the capacity even
//! unread, but a reader they leave behind still counts for the parsed records after them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use crate::record::LogRecord;

/// The records of one committed group, with consecutive offsets.
#[derive(Debug)]
struct Run {
    first_offset: u64,
    records: Vec<LogRecord>,
    bytes: usize,
    /// Whether its records came with their parses, which spare a reader more than a read.
    parsed: bool,
}

impl Run {
    fn end_offset(&self) -> u64 {
        self.first_offset + self.records.len() as u64
    }
}

#[derive(Debug, Default)]
struct Runs {
    runs: VecDeque<Run>,
    bytes: usize,
    /// Readers at or after this offset count for eviction: the first cached offset, or
    /// lower when the runs just before it went unread only because they had no parses (a
    /// reader there reads those few records from the files and is back in the cache). A
    /// reader below it fell behind the cache and holds nothing.
    readers_from: u64,
}

/// The next offset of each live reader. A reader holds its slot; a dropped reader's slot
/// is gone, and the registry forgets it at the next look.
#[derive(Debug, Default)]
struct Readers {
    slots: Mutex<Vec<Weak<AtomicU64>>>,
}

impl Readers {
    fn register(&self, from: u64) -> Arc<AtomicU64> {
        let slot = Arc::new(AtomicU64::new(from));
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|slot| slot.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        slot
    }

    /// The lowest next offset at or after `from` of the live readers (`None` if none is
    /// there).
    fn oldest_unread_from(&self, from: u64) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let mut oldest = None;
        slots.retain(|slot| match slot.upgrade() {
            Some(slot) => {
                let next = slot.load(Ordering::Acquire);
                if next >= from {
                    oldest = Some(oldest.map_or(next, |o: u64| o.min(next)));
                }
                true
            }
            None => false,
        });
        oldest
    }
}

/// Where a reader of the log is, for the cache's eviction: the reader stores its next offset
/// after each read and drops the position when it goes.
#[derive(Debug)]
pub(crate) struct ReaderPosition(Arc<AtomicU64>);

impl ReaderPosition {
    pub(crate) fn set(&self, next_offset: u64) {
        self.0.store(next_offset, Ordering::Release);
    }
}

#[derive(Debug)]
pub(crate) struct TailCache {
    capacity_bytes: usize,
    unread_bytes: usize,
    runs: RwLock<Runs>,
    /// `runs.bytes`, readable without the lock.
    held_bytes: AtomicUsize,
    readers: Readers,
}

impl TailCache {
    /// A cache that always keeps the newest `capacity_bytes` of records and, while live
    /// readers in the cache have not read them, older ones up to `unread_bytes` in all
    /// (never less than `capacity_bytes`).
    pub(crate) fn new(capacity_bytes: usize, unread_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            unread_bytes: unread_bytes.max(capacity_bytes),
            runs: RwLock::new(Runs::default()),
            held_bytes: AtomicUsize::new(0),
            readers: Readers::default(),
        }
    }

    /// Registers a reader whose next offset is `from`.
    pub(crate) fn register_reader(&self, from: u64) -> ReaderPosition {
        ReaderPosition(self.readers.register(from))
    }

    /// Adds a committed group starting at `first_offset`, evicting what the limits say.
    /// Groups must arrive in offset order without gaps.
    pub(crate) fn push(&self, first_offset: u64, records: Vec<LogRecord>) {
        if self.capacity_bytes == 0 || records.is_empty() {
            return;
        }
        let bytes: usize = records.iter().map(LogRecord::memory_bytes).sum();
        let parsed = records.iter().any(|record| record.event().is_some());
        let mut runs = self.runs.write().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(runs
            .runs
            .back()
            .is_none_or(|last| last.end_offset() == first_offset));
        if runs.runs.is_empty() {
            // Readers below the first record cached (after a reopen, say) read the files.
            runs.readers_from = first_offset;
        }
        runs.runs.push_back(Run {
            first_offset,
            records,
            bytes,
            parsed,
        });
        runs.bytes += bytes;
        self.evict(&mut runs);
    }

    /// Drops the records every reader has read beyond the newest `capacity_bytes`; readers
    /// call it after they advanced.
    pub(crate) fn release_read(&self) {
        if self.held_bytes.load(Ordering::Relaxed) <= self.capacity_bytes {
            return;
        }
        let mut runs = self.runs.write().unwrap_or_else(PoisonError::into_inner);
        self.evict(&mut runs);
    }

    fn evict(&self, runs: &mut Runs) {
        if runs.bytes > self.capacity_bytes && runs.runs.len() > 1 {
            // Only over the capacity are the readers asked (a lock and a scan per push).
            let oldest_unread = self.readers.oldest_unread_from(runs.readers_from);
            while runs.bytes > self.capacity_bytes && runs.runs.len() > 1 {
                let Some(oldest) = runs.runs.front() else {
                    break;
                };
                let unread = oldest_unread.is_some_and(|next| next < oldest.end_offset());
                let within_limit = runs.bytes <= self.unread_bytes;
                if unread && oldest.parsed && within_limit {
                    break;
                }
                // A run without parses goes even unread (a reader gains little from it),
                // but its reader still counts for the parsed runs after it: the server's
                // own audit events, one record each between ingest's parsed runs, would
                // otherwise drop a lagging reader's whole backlog.
                let keeps_its_reader = unread && within_limit;
                let end = oldest.end_offset();
                runs.bytes -= oldest.bytes;
                runs.runs.pop_front();
                if !keeps_its_reader {
                    runs.readers_from = end;
                }
            }
        }
        self.held_bytes.store(runs.bytes, Ordering::Relaxed);
    }

    /// The most the cache holds for readers behind the newest `capacity_bytes`.
    pub(crate) fn unread_bytes(&self) -> usize {
        self.unread_bytes
    }

    /// The bytes of records held now.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes.load(Ordering::Relaxed)
    }

    /// The first cached offset, if any.
    pub(crate) fn first_offset(&self) -> Option<u64> {
        let runs = self.runs.read().unwrap_or_else(PoisonError::into_inner);
        runs.runs.front().map(|run| run.first_offset)
    }

    /// Appends cached records from `from` (below `limit`) to `out` until it holds `max`;
    /// returns how many were appended (0 if `from` is not cached).
    pub(crate) fn read(
        &self,
        from: u64,
        limit: u64,
        max: usize,
        out: &mut Vec<(u64, LogRecord)>,
    ) -> u64 {
        let runs = self.runs.read().unwrap_or_else(PoisonError::into_inner);
        let start_run = runs.runs.partition_point(|run| run.end_offset() <= from);
        let mut next = from;
        for run in runs.runs.range(start_run..) {
            if run.first_offset > next {
                break;
            }
            let skip = (next - run.first_offset) as usize;
            for record in &run.records[skip..] {
                if out.len() >= max || next >= limit {
                    return next - from;
                }
                out.push((next, record.clone()));
                next += 1;
            }
        }
        next - from
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn run(first: u64, len: u64) -> Vec<LogRecord> {
        (first..first + len)
            .map(|i| LogRecord::from_bytes(Bytes::from(vec![i as u8; 10])))
            .collect()
    }

    /// Records with their parses, all of one size.
    fn parsed(first: u64, len: u64) -> Vec<LogRecord> {
        (first..first + len)
            .map(|i| {
                LogRecord::from_event(
                    opentrail_model::EventRecord::from_json(&format!(
                        r#"{{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","eventID":"e{i:04}","eventType":"AwsApiCall","recipientAccountId":"123456789012"}}"#
                    ))
                    .expect("event"),
                )
            })
            .collect()
    }

    /// The memory of a run of 3 parsed records.
    fn three() -> usize {
        parsed(0, 3).iter().map(LogRecord::memory_bytes).sum()
    }

    #[test]
    fn serves_ranges_across_runs_and_respects_limits() {
        let cache = TailCache::new(1000, 1000);
        cache.push(5, run(5, 3));
        cache.push(8, run(8, 4));
        let mut out = Vec::new();
        assert_eq!(cache.read(6, 11, 100, &mut out), 5);
        assert_eq!(
            out.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec![6, 7, 8, 9, 10]
        );
        assert_eq!(out[0].1.bytes(), &Bytes::from(vec![6u8; 10]));
        out.clear();
        assert_eq!(cache.read(7, 100, 2, &mut out), 2);
        assert_eq!(
            cache.read(4, 100, 100, &mut Vec::new()),
            0,
            "below the cache"
        );
        assert_eq!(
            cache.read(12, 100, 100, &mut Vec::new()),
            0,
            "past the cache"
        );
    }

    #[test]
    fn evicts_oldest_runs_beyond_capacity_but_keeps_the_newest() {
        let cache = TailCache::new(50, 50);
        cache.push(0, run(0, 3));
        cache.push(3, run(3, 3));
        assert_eq!(cache.first_offset(), Some(3));
        cache.push(6, run(6, 10));
        assert_eq!(
            cache.first_offset(),
            Some(6),
            "a run larger than the capacity stays alone"
        );
        assert_eq!(cache.read(3, 100, 100, &mut Vec::new()), 0);
    }

    #[test]
    fn a_zero_capacity_caches_nothing() {
        let cache = TailCache::new(0, 1000);
        cache.push(0, run(0, 3));
        assert_eq!(cache.first_offset(), None);
    }
    #[test]
    fn records_a_reader_has_not_read_are_kept_up_to_the_unread_limit() {
        let run = three();
        let cache = TailCache::new(run + run / 2, 3 * run + run / 3);
        let reader = cache.register_reader(0);
        for first in (0..12).step_by(3) {
            cache.push(first, parsed(first, 3));
        }
        assert_eq!(cache.first_offset(), Some(3), "3⅓ runs at most: 3 runs");
        assert_eq!(cache.held_bytes(), 3 * run);
        reader.set(7);
        cache.release_read();
        assert_eq!(
            cache.first_offset(),
            Some(6),
            "what the reader read goes; the run it is in stays"
        );
        reader.set(12);
        cache.release_read();
        assert_eq!(cache.first_offset(), Some(9));
        assert_eq!(cache.held_bytes(), run);
    }

    #[test]
    fn the_slowest_live_reader_decides_and_a_dropped_one_no_longer_counts() {
        let run = three();
        let cache = TailCache::new(run, 100 * run);
        let fast = cache.register_reader(0);
        let slow = cache.register_reader(0);
        for first in (0..12).step_by(3) {
            cache.push(first, parsed(first, 3));
        }
        fast.set(12);
        slow.set(4);
        cache.release_read();
        assert_eq!(
            cache.first_offset(),
            Some(3),
            "the slow reader is in the second run"
        );
        drop(slow);
        cache.release_read();
        assert_eq!(cache.first_offset(), Some(9), "only the newest run remains");
        drop(fast);
        cache.push(12, parsed(12, 3));
        assert_eq!(
            cache.first_offset(),
            Some(12),
            "without readers the capacity decides"
        );
    }

    #[test]
    fn a_reader_behind_the_cache_holds_nothing() {
        let run = three();
        let cache = TailCache::new(run, 100 * run);
        cache.push(0, parsed(0, 3));
        cache.push(3, parsed(3, 3));
        let behind = cache.register_reader(0);
        let within = cache.register_reader(3);
        cache.push(6, parsed(6, 3));
        assert_eq!(
            cache.first_offset(),
            Some(3),
            "the reader within holds [3, 6)"
        );
        drop(within);
        cache.push(9, parsed(9, 3));
        assert_eq!(
            cache.first_offset(),
            Some(9),
            "the reader at 0 reads the files anyway"
        );
        behind.set(9);
        cache.push(12, parsed(12, 3));
        assert_eq!(
            cache.first_offset(),
            Some(9),
            "once it caught up it counts again"
        );
    }

    #[test]
    fn a_reader_at_a_run_without_parses_still_holds_the_parsed_runs_after_it() {
        let run = three();
        let cache = TailCache::new(run, 100 * run);
        let lagging = cache.register_reader(0);
        let ahead = cache.register_reader(0);
        cache.push(0, parsed(0, 3));
        cache.push(3, run_of_one(3));
        for first in (4..13).step_by(3) {
            cache.push(first, parsed(first, 3));
        }
        ahead.set(13);
        lagging.set(3);
        cache.release_read();
        assert_eq!(
            cache.first_offset(),
            Some(4),
            "the audit event at 3 goes, the parsed runs the reader has not read stay"
        );
        cache.push(13, parsed(13, 3));
        cache.release_read();
        assert_eq!(
            cache.first_offset(),
            Some(4),
            "the reader at 3 still counts after the run it is at went"
        );
        lagging.set(16);
        cache.release_read();
        assert_eq!(cache.first_offset(), Some(13), "once read, they go");
    }

    #[test]
    fn a_reader_behind_the_first_record_after_a_reopen_holds_nothing() {
        let run = three();
        let cache = TailCache::new(run, 100 * run);
        let _behind = cache.register_reader(0);
        cache.push(100, parsed(100, 3));
        cache.push(103, parsed(103, 3));
        assert_eq!(cache.first_offset(), Some(103));
    }

    /// One record without a parse (as the server's own audit events are appended).
    fn run_of_one(offset: u64) -> Vec<LogRecord> {
        vec![LogRecord::from_bytes(Bytes::from(vec![offset as u8; 10]))]
    }

    #[test]
    fn records_without_parses_are_not_kept_beyond_the_capacity() {
        let cache = TailCache::new(30, 100 * three());
        let reader = cache.register_reader(0);
        cache.push(0, run(0, 3));
        cache.push(3, run(3, 3));
        assert_eq!(cache.first_offset(), Some(3), "bytes only: the capacity");
        reader.set(6);
        cache.push(6, parsed(6, 3));
        cache.push(9, parsed(9, 3));
        assert_eq!(cache.first_offset(), Some(6), "parsed and unread: kept");
    }
}
