//! Inserting a batch from the durable log: keep history events, skip those already
//! stored (same eventID in the same account and region), log the batch, and make it
//! visible.

use super::{HistoryStore, Shared, State};
use crate::error::HistoryError;
use crate::staging::{is_same_event, stage, StagedEvent, Staging};
use opentrail_model::EventRecord;
use std::collections::HashMap;

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
}

impl HistoryStore {
    /// Stores the history events of a batch read from the durable log. Idempotent: an
    /// event whose eventID is already stored for its account and region is skipped.
    /// Records the offset after the batch's last event as applied, durably with the
    /// events (the write-ahead log is synced before returning, unless
    /// [`crate::HistoryOptions::sync_writes`] or [`crate::HistoryOptions::write_ahead_log`]
    /// is off).
    pub fn insert_batch(&self, events: &[(u64, EventRecord)]) -> Result<InsertStats, HistoryError> {
        let shared = &self.shared;
        let Some(end_offset) = events
            .iter()
            .map(|(offset, _)| offset.saturating_add(1))
            .max()
        else {
            return Ok(InsertStats::default());
        };
        shared.check_poisoned()?;
        let mut wal = shared.lock(&shared.log);
        let mut stats = InsertStats::default();
        let mut accepted: Vec<StagedEvent> = Vec::new();
        let applied_offset = {
            let state = shared.read_state();
            let mut in_batch: HashMap<u32, Vec<&EventRecord>> = HashMap::new();
            for (_, record) in events {
                let event = match stage(record) {
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
                let twins = in_batch.entry(event.fingerprint()).or_default();
                let repeated = twins.iter().any(|twin| {
                    twin.event_id() == record.event_id()
                        && twin.recipient_account_id() == record.recipient_account_id()
                        && twin.aws_region() == record.aws_region()
                });
                if repeated || shared.is_stored(&state, &event, record)? {
                    stats.duplicates += 1;
                    continue;
                }
                twins.push(record);
                accepted.push(event);
            }
            state.applied_offset.max(end_offset)
        };
        stats.inserted = accepted.len();

        if shared.options.write_ahead_log {
            let records: Vec<&[u8]> = accepted.iter().map(StagedEvent::json).collect();
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
        if !full {
            return Ok(stats);
        }
        shared.freeze(&mut wal)?;
        drop(wal);
        if self.flusher.is_some() {
            shared.flusher_wake.notify_all();
            shared.wait_for_flusher()?;
        } else {
            shared.flush_frozen()?;
        }
        Ok(stats)
    }
}

impl Shared {
    /// Whether `event` (staged from `record`) is already in a memtable or in a segment
    /// of its day partition. Redeliveries carry the same eventTime, so the day is the
    /// only partition that can hold them.
    pub(super) fn is_stored(
        &self,
        state: &State,
        event: &StagedEvent,
        record: &EventRecord,
    ) -> Result<bool, HistoryError> {
        let (account, region, event_id) = (
            record.recipient_account_id(),
            record.aws_region(),
            record.event_id(),
        );
        let fingerprint = event.fingerprint();
        let in_memtable = state
            .memtables()
            .any(|memtable| memtable.contains(fingerprint, account, region, event_id));
        if in_memtable {
            return Ok(true);
        }
        let Some(segments) = state.partitions.get(&event.day) else {
            return Ok(false);
        };
        for segment in segments {
            for ordinal in segment.fingerprint_ordinals(fingerprint, &self.cache)? {
                let Some((block_index, within)) = segment.locate(ordinal) else {
                    continue;
                };
                let block = segment.block(block_index, &self.cache)?;
                if block
                    .record(within)
                    .is_some_and(|json| is_same_event(json, account, region, event_id))
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}
