//! The durable event log, spine of OpenTrail: producers append batches of opaque records that
//! are acknowledged only once fsynced; consumers read in order and resume from named cursors.
//!
//! The embedded [`EventLog`] keeps `DIR/segments/<first offset>.log` files of checksummed
//! frames, commits concurrent appends in groups with one `fdatasync` on a dedicated thread,
//! and recovers from a crash by cutting the torn tail off the last segment; damage that is not
//! a torn tail refuses to open until [`repair`]. A failed write or fsync fails appends until
//! the writer has recovered by itself ([`EventLog::health`]). Consumer cursors live in a
//! [`CursorStore`]: the server's metadata store ([`MetaCursorStore`]), or files in
//! `DIR/cursors/` for a log opened on its own. [`DurableLog`] is the seam for other backends.

mod cursor;
mod cursor_store;
mod direct;
mod durable_log;
mod error;
mod event_log;
mod frame;
mod meta_cursors;
mod options;
mod reader;
mod record;
mod recovery;
mod repair;
mod retention;
mod segment;
mod segment_set;
mod shared;
mod syncer;
mod tail_cache;
mod writer;

pub use cursor_store::{CursorStore, StoredCursor};
pub use durable_log::{DurableLog, DurableLogReader};
pub use error::{LogError, Result};
pub use event_log::{AppendAck, EventLog};
pub use meta_cursors::{MetaCursorStore, CURSOR_COLLECTION};
pub use options::LogOptions;
pub use reader::LogReader;
pub use record::LogRecord;
pub use repair::{remove_cursor, repair, repair_with_cursors, RepairReport};
pub use retention::{
    ConsumerLag, LogStats, RetentionPolicy, RetentionStatus, MAX_REPORTED_CONSUMERS,
};
pub use shared::LogHealth;
