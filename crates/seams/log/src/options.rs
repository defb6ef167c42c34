//! Tunables of the embedded log, with defaults sized for ~100k events/s of ~1.4 KB.

use crate::error::{LogError, Result};
use crate::frame::MAX_RECORD_LEN;

/// Options for [`crate::EventLog::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment is sealed and a new one started once it holds at least this many bytes.
    /// Retention deletes whole segments, so this is also the granularity of disk reclaim.
    pub segment_bytes: u64,
    /// Largest record accepted by `append` (CloudTrail events are at most 256 KB).
    pub max_record_bytes: usize,
    /// The writer stops collecting queued appends into one fsync group once it holds this
    /// many bytes; bounds the latency one group adds to the next.
    pub max_group_bytes: usize,
    /// Appends queued for the writer before `append` waits (backpressure).
    pub max_queued_appends: usize,
    /// Recently committed records kept in memory for readers that keep up with the writer
    /// (0 disables). Counted as record payload bytes; a record that is a slice of a larger
    /// buffer keeps that whole buffer alive.
    pub tail_cache_bytes: usize,
    /// Older records that came with their parses are kept in memory too, up to this many
    /// bytes in all, while a live reader reading from memory has not read them (a burst that consumers trail); counted
    /// as `tail_cache_bytes` is, plus the parsed events' indexes. A reader that falls
    /// further behind reads the files and holds nothing. Never less than
    /// `tail_cache_bytes`.
    pub tail_unread_bytes: usize,
    /// Write segments with `O_DIRECT` (bypassing the page cache) where the filesystem
    /// supports it; elsewhere, or when off, writes go through the page cache. Either way a
    /// record is acknowledged only after `fdatasync`.
    pub direct_io: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 128 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            max_group_bytes: 16 * 1024 * 1024,
            max_queued_appends: 256,
            tail_cache_bytes: 16 * 1024 * 1024,
            tail_unread_bytes: 1024 * 1024 * 1024,
            direct_io: true,
        }
    }
}

impl LogOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.segment_bytes == 0 {
            return Err(LogError::InvalidOptions(
                "segment_bytes must be positive".into(),
            ));
        }
        if self.max_record_bytes > MAX_RECORD_LEN {
            return Err(LogError::InvalidOptions(format!(
                "max_record_bytes {} exceeds the format limit {MAX_RECORD_LEN}",
                self.max_record_bytes
            )));
        }
        if self.max_group_bytes == 0 {
            return Err(LogError::InvalidOptions(
                "max_group_bytes must be positive".into(),
            ));
        }
        if self.max_queued_appends == 0 {
            return Err(LogError::InvalidOptions(
                "max_queued_appends must be positive".into(),
            ));
        }
        Ok(())
    }
}
