//! The most recently committed records, kept in memory so consumers that keep up with the
//! writer (the normal case) read without a syscall, a copy or a checksum: they get clones of
//! the very records the producers appended, with the events the producers parsed. Lagging
//! readers fall back to the segment files (bytes only).

use std::collections::VecDeque;
use std::sync::{PoisonError, RwLock};

use crate::record::LogRecord;

/// The records of one committed group, with consecutive offsets.
#[derive(Debug)]
struct Run {
    first_offset: u64,
    records: Vec<LogRecord>,
    bytes: usize,
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
}

#[derive(Debug)]
pub(crate) struct TailCache {
    capacity_bytes: usize,
    runs: RwLock<Runs>,
}

impl TailCache {
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            runs: RwLock::new(Runs::default()),
        }
    }

    /// Adds a committed group starting at `first_offset`, evicting the oldest groups beyond
    /// the capacity. Groups must arrive in offset order without gaps.
    pub(crate) fn push(&self, first_offset: u64, records: Vec<LogRecord>) {
        let bytes: usize = records.iter().map(LogRecord::len).sum();
        if self.capacity_bytes == 0 || records.is_empty() {
            return;
        }
        let mut runs = self.runs.write().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(runs
            .runs
            .back()
            .is_none_or(|last| last.end_offset() == first_offset));
        runs.runs.push_back(Run {
            first_offset,
            records,
            bytes,
        });
        runs.bytes += bytes;
        while runs.bytes > self.capacity_bytes && runs.runs.len() > 1 {
            let Some(evicted) = runs.runs.pop_front() else {
                break;
            };
            runs.bytes -= evicted.bytes;
        }
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
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

    #[test]
    fn serves_ranges_across_runs_and_respects_limits() {
        let cache = TailCache::new(1000);
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
        let cache = TailCache::new(50);
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
        let cache = TailCache::new(0);
        cache.push(0, run(0, 3));
        assert_eq!(cache.first_offset(), None);
    }
}
