//! OpenTrail event history: the last 90 days (configurable) of management and Insights
//! events per account and region, and `LookupEvents` with AWS semantics.
//!
//! Storage is embedded: a directory of day partitions, each holding immutable segment
//! files of zstd-compressed record blocks (with a trained dictionary), records grouped by
//! (account, region) stream and newest first, plus per-attribute indexes; recent events
//! live in a memtable backed by a write-ahead log and are flushed in the background.
//! Retention drops whole partitions. See `README.md` for the design and the benchmark.
//!
//! [`EventIndex`] is the seam the server holds; [`HistoryStore`] is its embedded backend.
//!
//! [`HistoryStore::lookup`] takes the generated `opentrail_operations::LookupEventsRequest`
//! (in a [`LookupRequest`] with the caller's account, region and clock) and answers the
//! generated `LookupEventsResponse`; [`LookupError`] implements `opentrail_wire::AwsError`.

mod attributes;
mod bloom;
mod cache;
mod dictionary;
mod error;
mod event_index;
mod fast_hash;
mod files;
mod fsutil;
mod hash;
mod index_key;
mod lookup;
mod manifest;
mod memtable;
mod options;
mod query;
mod resources;
mod segment;
mod staging;
mod store;
mod varint;
mod wal;

pub use attributes::{EventSummary, HistoryCategory, LookupAttributeKey};
pub use error::HistoryError;
pub use event_index::EventIndex;
pub use lookup::{LookupError, LookupRequest};
pub use options::HistoryOptions;
pub use resources::{ResourceSummary, MAX_DERIVED_RESOURCES};
pub use store::{HistoryHealth, HistoryStats, HistoryStore, InsertStats, PreparedBatch};
