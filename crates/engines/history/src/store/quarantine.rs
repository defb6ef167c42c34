//! Damaged segments: a segment whose pages fail their checksums (or that cannot be
//! opened at all) is taken out of service — dropped from the manifest and moved to
//! `quarantine/` — and lookups answer from everything else. Because the store's applied
//! offset is rewound to 0, a caller that feeds it from a durable log (the server's event
//! history feed) reads the log again from its start, and the events the damaged segment
//! held are indexed anew wherever the log still has them (what the store already holds
//! is skipped as duplicates).

use super::{HistoryStore, Shared, State};
use crate::error::HistoryError;
use crate::fsutil::{create_dir, sync_dir};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The directory, inside the store, that damaged segment files are moved to.
pub(crate) const QUARANTINE_DIR: &str = "quarantine";

/// Counters of what went wrong and was contained, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryHealth {
    /// Segments found damaged and quarantined since the store was opened.
    pub quarantined_segments: u64,
    /// Day partitions whose segment could not be written at a flush; their events stay
    /// in memory (still searchable) and are written again at the next flush.
    pub partition_write_failures: u64,
    /// Merges of a day partition's segments that failed (the segments stay as they were).
    pub merge_failures: u64,
    /// Records kept although the store held another record with their eventID (for the
    /// same account and region) and different content.
    pub event_id_conflicts: u64,
    /// Segment files open now (at most [`crate::HistoryOptions::max_open_files`]).
    pub open_files: usize,
    /// True while a rewind asked for by a quarantine has not been taken by the feed.
    pub reindex_pending: bool,
    /// True while the background flusher's last attempt could write no segment (a full
    /// disk?): events stay in memory and inserts are refused once a second memtable fills.
    pub flush_failing: bool,
}

impl HistoryStore {
    /// What went wrong and was contained since the store was opened.
    pub fn health(&self) -> HistoryHealth {
        let shared = &self.shared;
        HistoryHealth {
            quarantined_segments: shared.quarantined.load(Ordering::Relaxed),
            partition_write_failures: shared.partition_write_failures.load(Ordering::Relaxed),
            merge_failures: shared.merge_failures.load(Ordering::Relaxed),
            event_id_conflicts: shared.event_id_conflicts.load(Ordering::Relaxed),
            open_files: shared.files.open_count(),
            reindex_pending: shared.lock(&shared.rewind).is_some(),
            flush_failing: shared.flush_failing.load(Ordering::Acquire),
        }
    }

    /// After a segment was quarantined: the offset the feeding log consumer must read
    /// again from (so that the lost events are indexed anew), once; `None` otherwise.
    /// Until it is taken, inserted batches do not advance [`HistoryStore::applied_offset`].
    pub fn take_rewind(&self) -> Option<u64> {
        self.shared.lock(&self.shared.rewind).take()
    }
}

impl Shared {
    /// The applied offset after a batch of offsets `first..end`: while a rewind is
    /// pending it stays where the rewind put it, until a batch starts at or before it
    /// (the caller has gone back).
    pub(super) fn next_applied_offset(&self, state: &State, first: u64, end: u64) -> u64 {
        let mut rewind = self.lock(&self.rewind);
        if rewind.is_some() {
            if first > state.applied_offset {
                return state.applied_offset;
            }
            *rewind = None;
        }
        state.applied_offset.max(end)
    }

    /// Queues damaged segments for [`Shared::process_quarantine`], which must run with no
    /// store lock held.
    pub(super) fn note_damaged(&self, damaged: Vec<(u64, HistoryError)>) {
        let mut queue = self.lock(&self.damaged);
        for (id, error) in damaged {
            if !queue.iter().any(|(queued, _)| *queued == id) {
                queue.push((id, error));
            }
        }
    }

    /// Queues the live segment stored at `path` as damaged.
    pub(super) fn note_damaged_path(&self, path: &Path, reason: String) {
        let id = self
            .read_state()
            .partitions
            .values()
            .flatten()
            .find(|segment| segment.path() == path)
            .map(|segment| segment.id());
        if let Some(id) = id {
            self.note_damaged(vec![(id, HistoryError::corrupt(path, reason))]);
        }
    }

    /// Quarantines the queued damaged segments. Takes the log lock, then the commit lock
    /// (never while either is held by the caller).
    pub(super) fn process_quarantine(&self) {
        if self.lock(&self.damaged).is_empty() {
            return;
        }
        let _wal = self.lock(&self.log);
        let mut committer = self.lock(&self.commit);
        let damaged = std::mem::take(&mut *self.lock(&self.damaged));
        let live: HashSet<u64> = committer
            .manifest
            .segments
            .iter()
            .map(|entry| entry.id)
            .collect();
        let damaged: Vec<(u64, HistoryError)> = damaged
            .into_iter()
            .filter(|(id, _)| live.contains(id))
            .collect();
        if damaged.is_empty() {
            return;
        }
        let ids: HashSet<u64> = damaged.iter().map(|(id, _)| *id).collect();
        let mut manifest = committer.manifest.clone();
        manifest.segments.retain(|entry| !ids.contains(&entry.id));
        manifest.applied_offset = 0;
        if let Err(error) = manifest.store(&self.dir) {
            // The segments stay in service; the next lookup that meets them tries again.
            tracing::error!(%error, "failed to quarantine damaged history segments");
            self.note_damaged(damaged);
            return;
        }
        committer.manifest = manifest;
        self.flushed_offset.store(0, Ordering::Release);
        let removed: Vec<Arc<crate::segment::Segment>> = {
            let mut state = self.write_state();
            let mut removed = Vec::new();
            state.partitions.retain(|_, segments| {
                segments.retain(|segment| {
                    let doomed = ids.contains(&segment.id());
                    if doomed {
                        removed.push(segment.clone());
                    }
                    !doomed
                });
                !segments.is_empty()
            });
            state.applied_offset = 0;
            *self.lock(&self.rewind) = Some(0);
            removed
        };
        for (id, error) in &damaged {
            self.cache.forget_segment(*id);
            self.files.forget(*id);
            let path = removed
                .iter()
                .find(|segment| segment.id() == *id)
                .map(|segment| segment.path().to_owned());
            let moved = path
                .as_deref()
                .map(|path| move_to_quarantine(&self.dir, path));
            self.quarantined.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                segment = id,
                %error,
                moved_to = ?moved.and_then(Result::ok),
                "damaged event history segment quarantined; answering from the rest and indexing the event log again from its start"
            );
        }
    }
}

/// Moves a damaged segment file to `<dir>/quarantine/<partition>-<file name>`; returns
/// where it went.
pub(super) fn move_to_quarantine(dir: &Path, path: &Path) -> Result<PathBuf, HistoryError> {
    let quarantine = dir.join(QUARANTINE_DIR);
    create_dir(&quarantine)?;
    let partition = path
        .parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = quarantine.join(format!("{partition}-{name}"));
    match std::fs::rename(path, &target) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(target),
        Err(error) => return Err(HistoryError::io(path, error)),
    }
    sync_dir(&quarantine)?;
    Ok(target)
}
