//! Flushing. Freezing (under the log lock) moves the full memtable to the frozen queue
//! — still searched — and starts a new WAL file. Writing (under the commit lock, on the
//! flusher thread or the caller's) turns the oldest frozen memtable into one segment per
//! day, replaces the manifest to name them and the offset they cover, installs them,
//! and deletes the WAL files they made redundant. Crowded day partitions are queued for
//! the background merger (or, without one, merged once no memtable waits), and merged at
//! once only far past the limit.

use super::{partition_dir, segment_path, Committer, Frozen, Shared};
use crate::dictionary::Dictionary;
use crate::error::HistoryError;
use crate::fsutil::{create_dir, sync_dir};
use crate::manifest::{Manifest, SegmentEntry};
use crate::memtable::DayRun;
use crate::segment::{Segment, SegmentWriter, WriteSettings};
use crate::staging::{split_stored, stage, StagedEvent, Staging};
use crate::wal::Wal;
use opentrail_model::EventRecord;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Failed day partitions of one flush logged one by one (the rest are summed up).
const LOGGED_FAILED_DAYS: usize = 3;

/// Whether [`Shared::flush_frozen`] merges crowded day partitions once the queue is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Merges {
    /// Right away (a store without a background flusher, flushing in `insert_batch`).
    Due,
    /// Queued: for the background merger (the background flusher's, and a flush asked for
    /// by the caller: the server's at shutdown returns once the events are written), or
    /// without one for the next flush with [`Merges::Due`].
    Later,
}

/// In a store without a background merger, a day partition may grow to this many times
/// `max_segments_per_partition` before it is merged at once while memtables wait; lookups
/// consult each segment's Bloom filter, so up to twice as many segments cost them little.
const DEFERRED_MERGE_FACTOR: usize = 2;
/// With a background merger, a day partition past this many times the limit is merged at
/// once by the flusher (at its normal priority): the merger runs only on CPU time nothing
/// else wants, and a load that leaves none must not crowd partitions without end.
pub(super) const MERGE_AT_ONCE_FACTOR: usize = 4;

impl Shared {
    pub(super) fn write_settings(&self) -> WriteSettings {
        WriteSettings {
            block_bytes: self.options.block_bytes,
            level: self.options.compression_level,
            threads: self.options.compression_threads,
        }
    }

    /// Freezes the active memtable (if it holds anything) and rotates the WAL.
    pub(super) fn freeze(&self, wal: &mut Wal) -> Result<(), HistoryError> {
        if self.read_state().active.is_empty() {
            return Ok(());
        }
        let next =
            self.guarded(|| Wal::create(&self.dir, wal.id() + 1, self.options.sync_writes))?;
        *wal = next;
        let mut state = self.write_state();
        let memtable = Arc::new(std::mem::take(&mut state.active));
        let applied_offset = state.applied_offset;
        state.frozen.push_back(Frozen {
            memtable,
            applied_offset,
            wal_floor: wal.id(),
        });
        Ok(())
    }

    /// Records the applied offset in the manifest when everything applied is in
    /// segments but the offset moved on (batches that held no history events), so that
    /// a reopened store does not read those batches again.
    pub(super) fn commit_applied_offset(&self) -> Result<(), HistoryError> {
        let mut committer = self.lock(&self.commit);
        let applied_offset = {
            let state = self.read_state();
            if !state.active.is_empty() || !state.frozen.is_empty() {
                return Ok(());
            }
            state.applied_offset
        };
        if applied_offset <= committer.manifest.applied_offset {
            return Ok(());
        }
        let mut manifest = committer.manifest.clone();
        manifest.applied_offset = applied_offset;
        manifest.store(&self.dir)?;
        committer.manifest = manifest;
        self.flushed_offset.store(applied_offset, Ordering::Release);
        Ok(())
    }

    /// Writes every frozen memtable, oldest first, then (with [`Merges::Due`]) merges the
    /// crowded day partitions. Flushes come first: a crowded partition's merge is put off
    /// (up to [`DEFERRED_MERGE_FACTOR`] times the limit) while another memtable waits, since
    /// inserts wait for the queue and a merge rewrites events already searchable; with
    /// [`Merges::Later`], it is queued. The commit lock is taken for one memtable at a
    /// time, so that the merger can plan its merges between them; merges the merger
    /// built are committed before each memtable.
    pub(super) fn flush_frozen(&self, merges: Merges) -> Result<(), HistoryError> {
        let background = self.options.background_flush;
        let at_once = self.options.max_segments_per_partition
            * if background {
                MERGE_AT_ONCE_FACTOR
            } else {
                DEFERRED_MERGE_FACTOR
            };
        loop {
            self.check_poisoned()?;
            let mut committer = self.lock(&self.commit);
            if background {
                self.commit_built(&mut committer);
            }
            let Some(frozen) = self.read_state().frozen.front().cloned() else {
                if merges == Merges::Due {
                    self.merge_crowded_days(&mut committer);
                    if !self.read_state().frozen.is_empty() {
                        continue;
                    }
                }
                return Ok(());
            };
            let Some(touched) = self.guarded(|| self.write_frozen(&mut committer, &frozen))? else {
                // Not one day could be written (a full disk?): the memtable stays frozen and
                // searched, inserts wait for it, and the flusher tries again.
                return Err(HistoryError::io(
                    &self.dir,
                    std::io::Error::other("no day partition could be written; will retry"),
                ));
            };
            self.flushed.notify_all();
            let now = merges == Merges::Due && self.read_state().frozen.is_empty();
            let limit = self.options.max_segments_per_partition;
            let mut queued = Vec::new();
            for day in touched {
                let segments = self.read_state().partitions.get(&day).map_or(0, Vec::len);
                if segments > at_once || (segments > limit && now) {
                    committer.crowded.remove(&day);
                    self.merge_crowded(&mut committer, day);
                } else if segments > limit {
                    queued.push(day);
                }
            }
            self.queue_merges(&mut committer, &queued);
        }
    }

    fn merge_crowded_days(&self, committer: &mut Committer) {
        while !self.merges_yield() && self.read_state().frozen.is_empty() {
            let Some(day) = committer.crowded.pop_first() else {
                return;
            };
            self.merge_crowded(committer, day);
        }
    }

    /// Merges `day`'s smallest segments if the partition is (still) over the limit.
    fn merge_crowded(&self, committer: &mut Committer, day: i32) {
        if let Err(error) = self.merge_partition(committer, day) {
            self.report_merge_failure(day, &error);
        }
    }

    /// Writes one frozen memtable's segments and commits them; returns the days touched,
    /// or `None` (nothing changed) when days failed and none could be written.
    fn write_frozen(
        &self,
        committer: &mut Committer,
        frozen: &Frozen,
    ) -> Result<Option<BTreeSet<i32>>, HistoryError> {
        let runs = frozen.memtable.day_runs();
        let mut manifest = committer.manifest.clone();
        self.refresh_dictionary(committer, &mut manifest, &runs)?;
        let dictionary = committer
            .dictionaries
            .get(&manifest.current_dictionary)
            .cloned();

        let mut written = Vec::new();
        let mut touched = BTreeSet::new();
        // Days whose segment could not be written: their events stay in memory.
        let mut failed: Vec<&[u8]> = Vec::new();
        let mut failed_days = 0usize;
        let days: Vec<(u64, PathBuf, DayRun<'_>)> = runs
            .into_iter()
            .filter(|run| manifest.expired_before_day.is_none_or(|day| run.day >= day))
            .map(|run| {
                let id = manifest.next_segment_id;
                manifest.next_segment_id += 1;
                (id, segment_path(&self.dir, run.day, id), run)
            })
            .collect();
        // The day segments are written side by side, each compressing on one thread: a
        // flush is otherwise one thread among the server's many.
        let workers = self.options.compression_threads.clamp(1, days.len().max(1));
        let settings = WriteSettings {
            threads: if workers > 1 {
                1
            } else {
                self.options.compression_threads
            },
            ..self.write_settings()
        };
        let dictionaries = &committer.dictionaries;
        // One day's failure (its directory, its file) must not stop the others.
        let write_day = |id: u64, path: &Path, run: &DayRun<'_>| {
            let partition = partition_dir(&self.dir, run.day);
            create_dir(&partition)?;
            let mut writer = SegmentWriter::create(path, run.day, dictionary.as_deref(), settings)?;
            for (stream, sort_key, json) in &run.records {
                writer.push(stream, *sort_key, json)?;
            }
            let summary = writer.finish(
                run.postings
                    .iter()
                    .map(|(key, ordinals)| (*key, ordinals.as_slice())),
            )?;
            let segment =
                Segment::open(path, id, &self.files, |id| dictionaries.get(&id).cloned())?;
            sync_dir(&partition)?;
            Ok::<_, HistoryError>((summary, segment))
        };
        let results = parallel_map(&days, workers, |(id, path, run)| write_day(*id, path, run));
        for ((id, path, run), result) in days.iter().zip(results) {
            let (id, day) = (*id, run.day);
            match result {
                Ok((summary, segment)) => {
                    manifest.current_dictionary_records += u64::from(summary.events);
                    manifest.segments.push(SegmentEntry { id, day });
                    touched.insert(day);
                    written.push((day, Arc::new(segment)));
                }
                Err(error) => {
                    self.partition_write_failures
                        .fetch_add(1, Ordering::Relaxed);
                    failed_days += 1;
                    // A few in detail; a full disk fails every day of a flush.
                    if failed_days <= LOGGED_FAILED_DAYS {
                        tracing::error!(
                        partition = %partition_dir(&self.dir, day).display(),
                        events = run.records.len(),
                        %error,
                        "failed to write an event history day partition; its events stay in memory and are written again at the next flush"
                        );
                    }
                    let _ = std::fs::remove_file(path);
                    let _ = std::fs::remove_file(path.with_extension("tmp"));
                    failed.extend(run.records.iter().map(|(_, _, json)| *json));
                }
            }
        }
        if failed_days > LOGGED_FAILED_DAYS {
            tracing::error!(
                failed_days,
                written_days = written.len(),
                "failed to write event history day partitions at this flush"
            );
        }
        if written.is_empty() && !failed.is_empty() {
            return Ok(None);
        }
        sync_dir(&self.dir)?;

        // What the segments cover: nothing new while some day's events are only in memory
        // (here, or retried from an earlier flush in a newer memtable: a reopened store
        // then reads them from the log again), and never beyond a rewind asked for by a
        // quarantine.
        let (covered, retried_elsewhere) = {
            let state = self.read_state();
            let retried_elsewhere = state.active.holds_retried
                || state
                    .frozen
                    .iter()
                    .skip(1)
                    .any(|later| later.memtable.holds_retried);
            (
                frozen.applied_offset.min(state.applied_offset),
                retried_elsewhere,
            )
        };
        if failed.is_empty() && !retried_elsewhere {
            manifest.applied_offset = covered;
            manifest.wal_floor = frozen.wal_floor;
        }
        manifest.store(&self.dir)?;
        self.flushed_offset
            .store(manifest.applied_offset, Ordering::Release);
        let wal_floor = manifest.wal_floor;
        committer.manifest = manifest;
        let retried: Vec<StagedEvent> = failed
            .iter()
            .filter_map(|stored| {
                let (json, provenance) = split_stored(stored);
                let record = EventRecord::from_slice(json).ok()?;
                match stage(&record) {
                    Staging::Staged(event) => Some(event.with_provenance(provenance)),
                    _ => None,
                }
            })
            .collect();
        {
            let mut state = self.write_state();
            for (day, segment) in written {
                state.partitions.entry(day).or_default().push(segment);
            }
            if !retried.is_empty() {
                state.active.holds_retried = true;
            }
            for event in retried {
                state.active.insert(event);
            }
            state.frozen.pop_front();
        }
        for id in Wal::list(&self.dir)? {
            if id < wal_floor {
                Wal::remove(&self.dir, id)?;
            }
        }
        Ok(Some(touched))
    }

    /// Trains a new dictionary when there is none yet or the current one has been used
    /// for `dictionary_refresh_records` records, so compression follows the data.
    fn refresh_dictionary(
        &self,
        committer: &mut Committer,
        manifest: &mut Manifest,
        runs: &[DayRun<'_>],
    ) -> Result<(), HistoryError> {
        let due = manifest.current_dictionary == 0
            || manifest.current_dictionary_records >= self.options.dictionary_refresh_records;
        if !due || self.options.dictionary_bytes == 0 {
            return Ok(());
        }
        let records: Vec<&[u8]> = runs
            .iter()
            .flat_map(|run| run.records.iter().map(|(_, _, json)| *json))
            .collect();
        let id = manifest.next_dictionary_id;
        let trained = Dictionary::train(
            &self.dir,
            id,
            &records,
            self.options.dictionary_bytes,
            self.options.compression_level,
        )?;
        if let Some(dictionary) = trained {
            // Blocks are compressed with the current dictionary only: the one it replaces
            // keeps decompressing its segments but needs no compressors any more.
            if let Some(previous) = committer.dictionaries.get(&manifest.current_dictionary) {
                previous.retire_compressors();
            }
            manifest.next_dictionary_id += 1;
            manifest.current_dictionary = id;
            manifest.current_dictionary_records = 0;
            committer.dictionaries.insert(id, dictionary);
        }
        Ok(())
    }
}

/// `f` over `items` on up to `workers` threads (each takes the next item not yet taken),
/// the results in the items' order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if workers <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else {
                            return mine;
                        };
                        mine.push((index, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}
