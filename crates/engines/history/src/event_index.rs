//! The event-history seam: what the server and the log feed need from an index of events,
//! so that another backend (PostgreSQL partitions, say) can stand beside [`HistoryStore`].

use chrono::{DateTime, Utc};
use opentrail_model::EventRecord;
use opentrail_operations::LookupEventsResponse;

use crate::{HistoryError, HistoryHealth, HistoryStats, HistoryStore, InsertStats, PreparedBatch};
use crate::{LookupError, LookupRequest};

/// An index of management and Insights events fed from the durable event log, answering
/// LookupEvents.
///
/// Contract every backend keeps: inserting is idempotent (the feed is at-least-once);
/// `applied_offset` is where the feed resumes after a restart and never covers events the
/// index would not have after a crash beyond `durable_offset`. Every method may block
/// (file or network I/O): call them from a blocking thread.
pub trait EventIndex: Send + Sync + 'static {
    /// Stores the history events of a batch read from the log, each with the provenance
    /// JSON that `provenance` gives for its offset, and records the offset after the
    /// batch's last event as applied.
    fn insert_batch<'p>(
        &self,
        events: &[(u64, EventRecord)],
        provenance: &dyn Fn(u64) -> Option<&'p [u8]>,
    ) -> Result<InsertStats, HistoryError> {
        self.insert_prepared(PreparedBatch::new(events.to_vec(), provenance))
    }

    /// [`EventIndex::insert_batch`] of a batch prepared beforehand ([`PreparedBatch::new`],
    /// which takes no lock: a feed prepares the next batch on another thread while this
    /// one is inserted). Batches are inserted in log order, one at a time.
    fn insert_prepared(&self, batch: PreparedBatch) -> Result<InsertStats, HistoryError>;

    /// Answers LookupEvents for the request's account and region.
    fn lookup(&self, request: &LookupRequest) -> Result<LookupEventsResponse, LookupError>;

    /// The log offset after the last applied batch: where the feed resumes.
    fn applied_offset(&self) -> u64;

    /// The offset below which every applied event survives a crash: how far the feed may
    /// commit its log cursor.
    fn durable_offset(&self) -> u64;

    /// The offset to feed the log again from, when the index lost events it had applied
    /// (a quarantined segment); taken once.
    fn take_rewind(&self) -> Option<u64>;

    /// Drops events older than the retention window; returns how many units (day
    /// partitions here) were dropped.
    fn expire(&self, now: DateTime<Utc>) -> Result<usize, HistoryError>;

    /// Makes every applied event durable now (shortens the next start's replay).
    fn flush(&self) -> Result<(), HistoryError>;

    /// Failures for `/health` and `/metrics`.
    fn health(&self) -> HistoryHealth;

    /// Sizes of what the index holds.
    fn stats(&self) -> HistoryStats;
}

impl EventIndex for HistoryStore {
    fn insert_prepared(&self, batch: PreparedBatch) -> Result<InsertStats, HistoryError> {
        HistoryStore::insert_prepared(self, batch)
    }

    fn lookup(&self, request: &LookupRequest) -> Result<LookupEventsResponse, LookupError> {
        HistoryStore::lookup(self, request)
    }

    fn applied_offset(&self) -> u64 {
        HistoryStore::applied_offset(self)
    }

    fn durable_offset(&self) -> u64 {
        HistoryStore::durable_offset(self)
    }

    fn take_rewind(&self) -> Option<u64> {
        HistoryStore::take_rewind(self)
    }

    fn expire(&self, now: DateTime<Utc>) -> Result<usize, HistoryError> {
        HistoryStore::expire(self, now)
    }

    fn flush(&self) -> Result<(), HistoryError> {
        HistoryStore::flush(self)
    }

    fn health(&self) -> HistoryHealth {
        HistoryStore::health(self)
    }

    fn stats(&self) -> HistoryStats {
        HistoryStore::stats(self)
    }
}
