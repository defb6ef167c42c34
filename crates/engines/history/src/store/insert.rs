//! Inserting a batch from the durable log: keep history events, skip those already
//! stored (same eventID in the same account and region), log the batch, and make it
//! visible.

use super::flush::Merges;
use super::{HistoryStore, Shared, State};
use crate::error::HistoryError;
use crate::staging::{compare, stage, Presence, StagedEvent, Staging};
use opentrail_model::EventRecord;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// What happened to the events of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertStats {
    /// Stored now.
    pub inserted: usize,
    /// Already stored (or repeated within the batch): skipped.
    pub duplicates: usize,
    /// Data and network activity events, which event history does not keep.
    pub not_history: usize,
    /// Lacking an eventID, a valid eventTime, an account or a region.
    pub invalid: usize,
    /// Older than the retention window already expired.
    pub expired: usize,
    /// Of `inserted`: records whose eventID the store already held (for the account and
    /// region) with different content; both are kept.
    pub conflicts: usize,
}

/// A batch read from the durable log, prepared for [`HistoryStore::insert_prepared`]: what
/// event history keeps of each record, with its sort key, day and index keys. Preparing
/// takes no lock, so a feed can prepare the next batch on another thread while the
/// previous one is inserted.
#[derive(Debug, Default)]
pub struct PreparedBatch {
    /// Each record's log offset and what staging made of it, in the batch's order.
    events: Vec<(u64, Staging)>,
}

impl PreparedBatch {
    /// Stages the records of a batch, each with the provenance JSON (see
    /// `opentrail_model::Provenance`) that `provenance` gives for its log offset.
    pub fn new<'p>(
        events: Vec<(u64, EventRecord)>,
        provenance: impl Fn(u64) -> Option<&'p [u8]>,
    ) -> Self {
        let events = events
            .into_iter()
            .map(|(offset, record)| {
                let staging = match stage(&record) {
                    Staging::Staged(event) => {
                        Staging::Staged(event.with_provenance(provenance(offset)))
                    }
                    other => other,
                };
                (offset, staging)
            })
            .collect();
        Self { events }
    }

    /// Adds `later`, the records that follow this batch's in the log.
    pub fn append(&mut self, mut later: PreparedBatch) {
        self.events.append(&mut later.events);
    }
}

impl HistoryStore {
    /// Stores the history events of a batch read from the durable log. Idempotent: a
    /// record already stored (same eventID in its account and region, same content) is
    /// skipped; one whose eventID is stored with different content is kept as well and
    /// counted as a conflict (see [`HistoryStore::health`]).
    /// Records the offset after the batch's last event as applied, durably with the
    /// events (the write-ahead log is synced before returning, unless
    /// [`crate::HistoryOptions::sync_writes`] or [`crate::HistoryOptions::write_ahead_log`]
    /// is off).
    pub fn insert_batch(&self, events: &[(u64, EventRecord)]) -> Result<InsertStats, HistoryError> {
        self.insert_batch_with_provenance(events, |_| None)
    }

    /// [`HistoryStore::insert_batch`], storing beside each record the provenance JSON
    /// (see `opentrail_model::Provenance`) that `provenance` gives for its log offset;
    /// LookupEvents returns it as `OpenTrailProvenance`.
    pub fn insert_batch_with_provenance<'p>(
        &self,
        events: &[(u64, EventRecord)],
        provenance: impl Fn(u64) -> Option<&'p [u8]>,
    ) -> Result<InsertStats, HistoryError> {
        self.insert_prepared(PreparedBatch::new(events.to_vec(), provenance))
    }

    /// [`HistoryStore::insert_batch_with_provenance`] of a batch prepared beforehand.
    /// Batches must be inserted in log order, one at a time.
    pub fn insert_prepared(&self, batch: PreparedBatch) -> Result<InsertStats, HistoryError> {
        let shared = &self.shared;
        let Some(end_offset) = batch
            .events
            .iter()
            .map(|(offset, _)| offset.saturating_add(1))
            .max()
        else {
            return Ok(InsertStats::default());
        };
        shared.check_backlog()?;
        let mut wal = shared.lock(&shared.log);
        let mut stats = InsertStats::default();
        let mut accepted: Vec<StagedEvent> = Vec::new();
        let mut damaged = Vec::new();
        let first_offset = batch
            .events
            .iter()
            .map(|(offset, _)| *offset)
            .min()
            .unwrap_or(0);
        let applied_offset = {
            let state = shared.read_state();
            // Fingerprint → the accepted events of this batch with it.
            let mut in_batch: HashMap<u32, Vec<usize>> = HashMap::new();
            for (_, staging) in batch.events {
                let event = match staging {
                    Staging::Staged(event) => event,
                    Staging::NotHistory => {
                        stats.not_history += 1;
                        continue;
                    }
                    Staging::Invalid => {
                        stats.invalid += 1;
                        continue;
                    }
                };
                if state.expired_before_day.is_some_and(|day| event.day < day) {
                    stats.expired += 1;
                    continue;
                }
                let record = &event.record;
                let twins = in_batch.entry(event.fingerprint()).or_default();
                let in_batch_presence = twins
                    .iter()
                    .map(|&twin| compare(accepted[twin].record.as_bytes(), record))
                    .fold(Presence::New, Presence::and);
                let presence = match in_batch_presence {
                    Presence::Stored => Presence::Stored,
                    earlier => {
                        earlier.and(shared.presence(&state, &event, record, &mut damaged)?)
                    }
                };
                match presence {
                    Presence::Stored => {
                        stats.duplicates += 1;
                        continue;
                    }
                    Presence::Conflict => {
                        stats.conflicts += 1;
                        shared.report_conflict(record);
                    }
                    Presence::New => {}
                }
                twins.push(accepted.len());
                accepted.push(event);
            }
            shared.next_applied_offset(&state, first_offset, end_offset)
        };
        stats.inserted = accepted.len();

        if shared.options.write_ahead_log {
            let stored: Vec<_> = accepted.iter().map(StagedEvent::stored).collect();
            let records: Vec<&[u8]> = stored.iter().map(|stored| &stored[..]).collect();
            shared.guarded(|| wal.append(applied_offset, &records))?;
        }
        let full = {
            let mut state = shared.write_state();
            for event in accepted {
                state.active.insert(event);
            }
            state.applied_offset = applied_offset;
            state.active.bytes() >= shared.options.memtable_bytes
        };
        if !damaged.is_empty() {
            drop(wal);
            shared.note_damaged(damaged);
            shared.process_quarantine();
            if full {
                let mut wal = shared.lock(&shared.log);
                shared.freeze(&mut wal)?;
            }
        } else if full {
            shared.freeze(&mut wal)?;
            drop(wal);
        }
        if !full {
            return Ok(stats);
        }
        if self.flusher.is_some() {
            shared.wake_flusher();
            shared.wait_for_flusher()?;
        } else {
            shared.flush_frozen(Merges::Due)?;
        }
        Ok(stats)
    }
}

impl Shared {
    /// What the store holds of `event` (staged from `record`): in a memtable or in a
    /// segment of its day partition. Redeliveries carry the same eventTime, so the day is
    /// the only partition that can hold them. A damaged segment is skipped and added to
    /// `damaged` (to be quarantined once no lock is held).
    pub(super) fn presence(
        &self,
        state: &State,
        event: &StagedEvent,
        record: &EventRecord,
        damaged: &mut Vec<(u64, HistoryError)>,
    ) -> Result<Presence, HistoryError> {
        let fingerprint = event.fingerprint();
        let mut presence = state
            .memtables()
            .map(|memtable| memtable.presence(fingerprint, record))
            .fold(Presence::New, Presence::and);
        if presence == Presence::Stored {
            return Ok(presence);
        }
        let Some(segments) = state.partitions.get(&event.day) else {
            return Ok(presence);
        };
        for segment in segments {
            let in_segment = (|| -> Result<Presence, HistoryError> {
                let mut found = Presence::New;
                for ordinal in segment.fingerprint_ordinals(fingerprint, &self.cache)? {
                    let Some((block_index, within)) = segment.locate(ordinal) else {
                        continue;
                    };
                    let block = segment.block(block_index, &self.cache)?;
                    if let Some(json) = block.record(within) {
                        found = found.and(compare(json, record));
                    }
                }
                Ok(found)
            })();
            match in_segment {
                Ok(found) => presence = presence.and(found),
                Err(error @ HistoryError::Corrupt { .. }) => damaged.push((segment.id(), error)),
                Err(error) => return Err(error),
            }
            if presence == Presence::Stored {
                break;
            }
        }
        Ok(presence)
    }

    /// Counts and logs a record kept beside another with its eventID and other content.
    /// The first 100 are logged, then one in each power of two, so that a flood of
    /// conflicts cannot flood the log (the counter counts them all).
    fn report_conflict(&self, record: &EventRecord) {
        let total = self.event_id_conflicts.fetch_add(1, Ordering::Relaxed) + 1;
        if total > 100 && !total.is_power_of_two() {
            return;
        }
        tracing::warn!(
            event_id = ?truncated(record.event_id()),
            account = ?truncated(record.recipient_account_id()),
            region = ?truncated(record.aws_region()),
            total,
            "eventID conflict: event history already holds a different record with this eventID; keeping both"
        );
    }
}

/// A caller-supplied value cut short for a log line.
fn truncated(value: &str) -> &str {
    const LIMIT: usize = 128;
    if value.len() <= LIMIT {
        return value;
    }
    let mut end = LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}
