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
    /// Bytes of the active segment that `durable_end` covers (stored with it).
    durable_len: AtomicU64,
    fault: Mutex<Fault>,
    /// Fsyncs still to fail on purpose (tests only).
    #[cfg(test)]
    pub(crate) failing_syncs: std::sync::atomic::AtomicU32,
    /// Group writes still to fail on purpose after writing half their bytes (tests only).
    #[cfg(test)]
    pub(crate) failing_writes: std::sync::atomic::AtomicU32,
}

/// The writer's failure state. While `current` is set every append fails promptly; the
/// writer recovers on a later append (see `Writer::recover`).
#[derive(Debug, Default)]
struct Fault {
    current: Option<String>,
    /// The failure included a failed fsync: the active segment's unsynced pages may be lost
    /// without a later fsync saying so, so the writer continues in a fresh segment.
    needs_roll: bool,
    /// The writer found the segment not as it wrote it; only reopening can help.
    permanent: bool,
    last: Option<String>,
    failures: u64,
}

/// The writer's health, cheap to read: see [`crate::EventLog::health`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogHealth {
    /// Appends can currently succeed. False from a failed write, fsync or segment roll until
    /// the writer has recovered (it tries again on each append, at most every 100 ms).
    pub writable: bool,
    /// The most recent write, fsync or roll failure, kept after recovery (`None` if none).
    pub last_error: Option<String>,
    /// Write, fsync and roll failures since the log was opened.
    pub failures: u64,
    /// Cursor files found with no valid slot and rewritten since the log was opened.
    pub cursors_rewritten: u64,
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
            durable_len: AtomicU64::new(0),
            fault: Mutex::new(Fault::default()),
            #[cfg(test)]
            failing_syncs: std::sync::atomic::AtomicU32::new(0),
            #[cfg(test)]
            failing_writes: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub(crate) fn durable_len(&self) -> u64 {
        self.durable_len.load(Ordering::Acquire)
    }

    pub(crate) fn set_durable_len(&self, len: u64) {
        self.durable_len.store(len, Ordering::Release);
    }

    pub(crate) fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    pub(crate) fn publish_durable_end(&self, end: u64) {
        debug_assert!(end >= self.durable_end());
        self.durable_end.store(end, Ordering::Release);
    }

    fn fault(&self) -> std::sync::MutexGuard<'_, Fault> {
        self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why appends fail now, if they do.
    pub(crate) fn failure(&self) -> Option<String> {
        self.fault().current.clone()
    }

    /// Records a failure; appends fail until [`Self::recovered`]. `needs_roll` after a failed
    /// fsync.
    pub(crate) fn fail(&self, reason: String, needs_roll: bool) {
        let mut fault = self.fault();
        fault.failures += 1;
        fault.last = Some(reason.clone());
        fault.needs_roll |= needs_roll;
        fault.current.get_or_insert(reason);
    }

    /// Marks the failure as beyond the writer's own recovery.
    pub(crate) fn fail_permanently(&self, reason: String) {
        self.fail(reason, false);
        self.fault().permanent = true;
    }

    /// `(needs_roll, permanent)` of the current failure.
    pub(crate) fn fault_kind(&self) -> (bool, bool) {
        let fault = self.fault();
        (fault.needs_roll, fault.permanent)
    }

    pub(crate) fn recovered(&self) {
        let mut fault = self.fault();
        fault.current = None;
        fault.needs_roll = false;
    }

    pub(crate) fn health(&self) -> LogHealth {
        let fault = self.fault();
        LogHealth {
            writable: fault.current.is_none(),
            last_error: fault.last.clone(),
            failures: fault.failures,
            cursors_rewritten: 0,
        }
    }
}
