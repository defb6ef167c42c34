//! The one error type of the log crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while appending to, reading from or maintaining the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Durable bytes do not decode: a bad frame inside a sealed segment, a damaged segment
    /// header, or a cursor file with no valid slot. Never raised for a torn tail.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },

    #[error("invalid log options: {0}")]
    InvalidOptions(String),

    #[error("an append needs at least one record")]
    EmptyBatch,

    /// Empty frames are reserved: `repair` writes them for offsets whose records were lost.
    #[error("an empty record cannot be appended")]
    EmptyRecord,

    #[error("record of {len} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge { len: usize, limit: usize },

    #[error("offset {requested} was removed by retention; the log now starts at {start}")]
    OffsetTruncated { requested: u64, start: u64 },

    #[error("offset {requested} is beyond the durable end {durable_end}")]
    OffsetBeyondEnd { requested: u64, durable_end: u64 },

    /// A consumer's committed cursor lies past the recovered end of the log: records it has
    /// already read are gone (damaged or deleted segment files). Opening refuses, before
    /// changing anything, so that new appends never take offsets a consumer has passed.
    #[error("the cursor of consumer {consumer:?} ({location}) is at offset {cursor}, beyond the event log's end {durable_end}: records it already read are missing from the log; refusing to open it so that new events never reuse their offsets (nothing was changed; see \"Repairing the event log\" in the README: `opentrail log repair`)")]
    CursorBeyondEnd {
        consumer: String,
        /// Where the cursor is kept ([`crate::CursorStore::location`]).
        location: String,
        cursor: u64,
        durable_end: u64,
    },

    /// The cursor store failed, or holds a value that is not a cursor.
    #[error("consumer cursor store failed at {location}: {reason}")]
    CursorStore { location: String, reason: String },

    #[error("invalid consumer name {name:?}: use 1 to 64 characters from [A-Za-z0-9_.-], not starting with '.'")]
    InvalidConsumerName { name: String },

    /// A write, fsync or segment roll failed (for example the disk is full); this append was
    /// not made durable. Appends fail promptly until the writer has recovered, which it
    /// tries on later appends once the cause is gone (see `EventLog::health`).
    #[error("the event log could not store this append (it retries on later appends): {reason}")]
    WriterFailed { reason: String },

    #[error("log is closed")]
    Closed,
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Attaches the path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
