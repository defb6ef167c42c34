//! State shared by the writer thread, readers and the `EventLog` handle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::segment_set::SegmentSet;
use crate::tail_cache::TailCache;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) segments_dir: PathBuf,
    pub(crate) segments: SegmentSet,
    pub(crate) tail_cache: TailCache,
    /// Readers read segment files with `O_DIRECT` where the filesystem allows (the writer
    /// writes them that way, so the page cache would not hold them anyway).
    pub(crate) direct_io: bool,
    /// Next offset after the last fsynced record. Only the writer stores it, after the fsync
    /// and after any segment it wrote to is in `segments`.
    durable_end: AtomicU64,
    /// Set once a write, fsync or roll fails: what reached the disk is then unknown, so
    /// every later append is refused until the log is reopened (and recovered).
    failure: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(
        segments_dir: PathBuf,
        segments: SegmentSet,
        tail_cache: TailCache,
        direct_io: bool,
        durable_end: u64,
    ) -> Self {
        Self {
            segments_dir,
            segments,
            tail_cache,
            direct_io,
            durable_end: AtomicU64::new(durable_end),
            failure: Mutex::new(None),
        }
    }

    pub(crate) fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    pub(crate) fn publish_durable_end(&self, end: u64) {
        debug_assert!(end >= self.durable_end());
        self.durable_end.store(end, Ordering::Release);
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the first failure; later ones are consequences of it.
    pub(crate) fn fail(&self, reason: String) {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
    }
}
