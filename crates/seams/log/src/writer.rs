//! The first stage of group commit: a dedicated OS thread takes every queued append, encodes
//! them into one buffer and writes it with one `write`, then hands the group to the syncer
//! thread (`syncer.rs`), which fsyncs and acknowledges. Async callers await a oneshot, so no
//! write or fsync ever runs on a runtime worker.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::record::LogRecord;
use tokio::sync::{mpsc, oneshot, watch};

use crate::direct::{DirectFile, GroupBuffer};
use crate::error::{IoContext, LogError, Result};
use crate::frame::{encode_frame, frame_len};
use crate::segment::{
    initialize_segment, scan_segment, segment_path, SparseIndex, SEGMENT_HEADER_LEN,
};
use crate::segment_set::Segment;
use crate::shared::Shared;
use crate::syncer::{fail_jobs, PendingAck, SyncJob, Syncer};
use crate::AppendAck;
use crate::LogOptions;

/// Written groups waiting for the syncer beyond the one it is syncing. Bounds the bytes
/// written but not yet durable; when full, appends queue up and form larger groups.
const SYNC_QUEUE_DEPTH: usize = 2;

/// After a failure the writer tries to recover at most this often; appends in between
/// fail at once.
const RECOVERY_INTERVAL: Duration = Duration::from_millis(100);

/// One caller's batch, acknowledged as a whole once durable.
pub(crate) struct AppendRequest {
    pub(crate) records: Vec<LogRecord>,
    pub(crate) ack: oneshot::Sender<Result<AppendAck>>,
}

impl AppendRequest {
    fn encoded_len(&self) -> usize {
        self.records.iter().map(|r| frame_len(r.len())).sum()
    }
}

/// Where the writer appends: the active (last) segment, opened for writing at its end.
pub(crate) struct ActiveSegment {
    pub(crate) segment: Arc<Segment>,
    pub(crate) file: File,
    /// Bytes in the file, all of them valid frames (the torn tail is already cut off).
    pub(crate) len: u64,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    segment_bytes: u64,
    max_group_bytes: usize,
    segment: Arc<Segment>,
    file: Arc<File>,
    segment_len: u64,
    next_offset: u64,
    /// Frames of the group being written; reused across groups.
    buf: GroupBuffer,
    index_entries: Vec<(u64, u64)>,
    /// Write through `O_DIRECT` where the filesystem allows it.
    direct_io: bool,
    /// The active segment opened for direct writes, while they work.
    direct: Option<DirectFile>,
    /// The active segment's file is longer than `segment_len` (zeros after a direct write).
    padded: bool,
    /// When the writer last tried to recover from a failure.
    last_recovery: Option<Instant>,
    /// The syncer has failed every job written before the current failure was handled.
    drained: bool,
    /// `(first offset, length)` of the segment recovery last checked, so that a disk that
    /// stays full does not make the writer rescan the same segment every time.
    verified: Option<(u64, u64)>,
    /// A failure was logged and no write has succeeded since: later failures of the same
    /// episode (a disk that stays full) are logged at debug level only.
    failing: bool,
}

/// The two group-commit threads; joining the writer also joins the syncer.
pub(crate) fn spawn_group_commit(
    shared: Arc<Shared>,
    durable_tx: watch::Sender<u64>,
    options: &LogOptions,
    active: ActiveSegment,
    next_offset: u64,
    requests: mpsc::Receiver<AppendRequest>,
) -> std::io::Result<JoinHandle<()>> {
    let (jobs_tx, jobs_rx) = sync_channel(SYNC_QUEUE_DEPTH);
    shared.set_durable_len(active.len);
    let syncer = Syncer::new(Arc::clone(&shared), durable_tx).spawn(jobs_rx)?;
    let mut writer = Writer {
        shared,
        segment_bytes: options.segment_bytes,
        max_group_bytes: options.max_group_bytes,
        segment: active.segment,
        file: Arc::new(active.file),
        segment_len: active.len,
        next_offset,
        buf: GroupBuffer::default(),
        index_entries: Vec::new(),
        direct_io: options.direct_io,
        direct: None,
        padded: false,
        last_recovery: None,
        drained: false,
        verified: None,
        failing: false,
    };
    writer.open_direct();
    std::thread::Builder::new()
        .name("opentrail-log-writer".into())
        .spawn(move || {
            writer.run(requests, jobs_tx);
            if syncer.join().is_err() {
                tracing::error!("log sync thread panicked");
            }
        })
}

impl Writer {
    /// Writes groups until every sender is gone and the queue is drained.
    fn run(mut self, mut requests: mpsc::Receiver<AppendRequest>, jobs: SyncSender<SyncJob>) {
        while let Some(first) = requests.blocking_recv() {
            let mut group_bytes = first.encoded_len();
            let mut group = vec![first];
            while group_bytes < self.max_group_bytes {
                let Ok(next) = requests.try_recv() else {
                    break;
                };
                group_bytes += next.encoded_len();
                group.push(next);
            }
            self.write_group(group, group_bytes, &jobs);
        }
        if self.shared.failure().is_some() {
            // Cut off what a failed write may have left behind the durable end, so that a
            // reopen does not take unacknowledged frames for records.
            self.last_recovery = None;
            if let Err(reason) = self.recover(&jobs) {
                tracing::warn!(%reason, "log writer stopped without recovering");
            }
        }
        if let Err(error) = self.truncate_padding() {
            tracing::warn!(segment = ?self.segment.path, %error, "could not cut the zero padding off the log's last block");
        }
    }

    /// Opens the active segment for direct writes when asked to and the filesystem allows.
    fn open_direct(&mut self) {
        self.direct = None;
        if !self.direct_io {
            return;
        }
        match DirectFile::open(&self.segment.path, self.segment_len) {
            Ok(direct) => self.direct = direct,
            Err(error) => {
                tracing::warn!(segment = ?self.segment.path, %error, "direct log writes unavailable; writing through the page cache")
            }
        }
    }

    /// Cuts the zeros a direct write left after the last frame, durably.
    fn truncate_padding(&mut self) -> std::io::Result<()> {
        if self.padded {
            self.file.set_len(self.segment_len)?;
            self.file.sync_data()?;
            self.padded = false;
        }
        Ok(())
    }

    /// Writes the encoded group at the segment's end, directly if possible.
    fn write_encoded(&mut self) -> std::io::Result<()> {
        #[cfg(test)]
        if self
            .shared
            .failing_writes
            .fetch_update(
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
                |left| left.checked_sub(1),
            )
            .is_ok()
        {
            let frames = self.buf.frames();
            self.file
                .write_all_at(&frames[..frames.len() / 2 + 1], self.segment_len)?;
            return Err(std::io::Error::other("injected write failure"));
        }
        if let Some(direct) = &mut self.direct {
            // Set before the attempt: even a refused write may have left bytes past the end.
            self.padded = true;
            if direct.append(&mut self.buf, self.segment_len)? {
                return Ok(());
            }
            tracing::warn!(segment = ?self.segment.path, "direct log write refused; writing through the page cache");
            self.direct = None;
            self.direct_io = false;
        }
        self.file.write_all_at(self.buf.frames(), self.segment_len)
    }

    fn write_group(
        &mut self,
        group: Vec<AppendRequest>,
        group_bytes: usize,
        jobs: &SyncSender<SyncJob>,
    ) {
        if self.shared.failure().is_some() {
            if let Err(reason) = self.recover(jobs) {
                fail_requests(group, &reason);
                return;
            }
        }
        let first_offset = self.next_offset;
        let (records, replies) = self.encode_group(group, group_bytes);
        let job = SyncJob {
            file: Arc::clone(&self.file),
            first_offset,
            end_len: self.segment_len + self.buf.frames().len() as u64,
            records,
            replies,
            notify_durable: None,
        };
        if let Err(error) = self.write_encoded() {
            let reason = format!("write to {} failed: {error}", self.segment.path.display());
            if self.failing {
                tracing::debug!(%reason, "log write failed again");
            } else {
                tracing::error!(%reason, "log write failed; failing appends until the writer recovers");
            }
            self.failing = true;
            self.shared.fail(reason.clone(), false);
            fail_jobs(vec![job], &reason);
            return;
        }
        if self.failing {
            self.failing = false;
            tracing::warn!(segment = ?self.segment.path, "log writes succeed again");
        }
        self.segment_len += self.buf.frames().len() as u64;
        self.next_offset += job.records.len() as u64;
        // Entries may name offsets that are not durable yet: readers only look up offsets
        // below the durable end, whose floor entries are durable.
        self.segment.extend_index(&self.index_entries);
        if self.segment_len < self.segment_bytes {
            if let Err(std::sync::mpsc::SendError(job)) = jobs.send(job) {
                fail_jobs(vec![job], "log sync thread stopped");
            }
            return;
        }
        self.seal_and_roll(job, jobs);
    }

    /// Gets the writer going again after a failed write, fsync or roll: waits until the
    /// syncer has failed everything written before, cuts the active segment back to its
    /// durable end, checks it holds exactly the acknowledged records, fsyncs it, and after a
    /// failed fsync (when the kernel may have dropped unsynced pages without a later fsync
    /// saying so) or a failed roll continues in a fresh segment. Offsets above the durable
    /// end were never acknowledged nor visible to readers, so they are handed out again.
    /// `Err` (the reason appends fail) while the cause persists; tried at most every
    /// [`RECOVERY_INTERVAL`].
    fn recover(&mut self, jobs: &SyncSender<SyncJob>) -> Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let failure = || shared.failure().unwrap_or_default();
        let (needs_roll, permanent) = self.shared.fault_kind();
        if permanent {
            return Err(failure());
        }
        if self
            .last_recovery
            .is_some_and(|last| last.elapsed() < RECOVERY_INTERVAL)
        {
            return Err(failure());
        }
        self.last_recovery = Some(Instant::now());
        if !self.drained {
            let (barrier_tx, barrier_rx) = sync_channel(1);
            let barrier = SyncJob {
                file: Arc::clone(&self.file),
                first_offset: self.next_offset,
                end_len: self.segment_len,
                records: Vec::new(),
                replies: Vec::new(),
                notify_durable: Some(barrier_tx),
            };
            if jobs.send(barrier).is_err() {
                return Err("log sync thread stopped".into());
            }
            // Answered or dropped once the syncer has handled everything queued before it.
            let _ = barrier_rx.recv();
            self.drained = true;
        }
        let durable_end = self.shared.durable_end();
        let durable_len = self.shared.durable_len();
        let path = self.segment.path.clone();
        let cut = || -> std::io::Result<()> {
            self.file.set_len(durable_len)?;
            self.file.sync_all()
        };
        if let Err(error) = cut() {
            return Err(format!(
                "{} (recovery: cutting {} back to its durable end failed: {error})",
                failure(),
                path.display()
            ));
        }
        self.padded = false;
        let first_offset = self.segment.first_offset;
        if self.verified != Some((first_offset, durable_len)) {
            self.verify_segment(&path, durable_len, durable_end)?;
            self.verified = Some((first_offset, durable_len));
        }
        self.segment.truncate_index(durable_end);
        self.segment_len = durable_len;
        self.next_offset = durable_end;
        if needs_roll || durable_len >= self.segment_bytes {
            self.start_segment().map_err(|error| {
                format!(
                    "{} (recovery: starting a new segment failed: {error})",
                    failure()
                )
            })?;
        } else {
            self.open_direct();
        }
        self.drained = false;
        self.shared.recovered();
        tracing::debug!(segment = ?self.segment.path, durable_end, "log writer recovered");
        Ok(())
    }

    /// Checks that the active segment holds exactly the acknowledged records: valid frames
    /// up to `durable_len`, ending at offset `durable_end`. A mismatch is beyond recovery.
    fn verify_segment(
        &self,
        path: &std::path::Path,
        durable_len: u64,
        durable_end: u64,
    ) -> Result<(), String> {
        let scan = scan_segment(path, self.segment.first_offset).map_err(|e| e.to_string())?;
        if scan.stopped_by.is_none()
            && scan.valid_len == durable_len
            && self.segment.first_offset + scan.record_count == durable_end
        {
            return Ok(());
        }
        let reason = format!(
            "{} does not hold exactly the acknowledged records after a failure; reopen the log",
            path.display()
        );
        tracing::error!(%reason, "log writer cannot recover");
        self.shared.fail_permanently(reason.clone());
        Err(reason)
    }

    /// Encodes the group's frames into `buf` and assigns offsets; changes no other state.
    fn encode_group(
        &mut self,
        group: Vec<AppendRequest>,
        group_bytes: usize,
    ) -> (Vec<LogRecord>, Vec<PendingAck>) {
        let tail = self.direct.as_ref().map_or(&[][..], DirectFile::tail);
        self.buf.reset(tail, group_bytes);
        self.index_entries.clear();
        let mut offset = self.next_offset;
        let mut records = Vec::new();
        let mut replies = Vec::with_capacity(group.len());
        for request in group {
            let first_offset = offset;
            for record in &request.records {
                self.index_entries
                    .push((offset, self.segment_len + self.buf.frames().len() as u64));
                encode_frame(record.bytes(), self.buf.frames_mut());
                offset += 1;
            }
            debug_assert!(
                offset > first_offset,
                "empty batches are rejected before queueing"
            );
            records.extend(request.records);
            replies.push(PendingAck {
                reply: request.ack,
                ack: AppendAck {
                    first_offset,
                    last_offset: offset - 1,
                },
            });
        }
        (records, replies)
    }

    /// Hands over the group that filled the segment, waits until it is durable, and starts
    /// the next segment: a segment is complete on disk before its successor exists.
    fn seal_and_roll(&mut self, mut job: SyncJob, jobs: &SyncSender<SyncJob>) {
        let (durable_tx, durable_rx) = sync_channel(1);
        job.notify_durable = Some(durable_tx);
        if let Err(std::sync::mpsc::SendError(job)) = jobs.send(job) {
            fail_jobs(vec![job], "log sync thread stopped");
            return;
        }
        if durable_rx.recv().is_err() {
            // The sync failed; the syncer has recorded why and fails every later append.
            return;
        }
        if let Err(error) = self.roll() {
            let reason = format!("segment roll failed: {error}");
            tracing::error!(%reason, "log segment roll failed; failing appends until the writer recovers");
            self.shared.fail(reason, false);
        }
    }

    fn roll(&mut self) -> Result<(), LogError> {
        // A sealed segment holds exactly its frames.
        let path = self.segment.path.clone();
        self.truncate_padding().at(&path)?;
        self.start_segment()
    }

    /// Starts the segment of `next_offset` (replacing the active one if that is where it
    /// starts, which then holds no record) and makes it the active one.
    fn start_segment(&mut self) -> Result<(), LogError> {
        let first_offset = self.next_offset;
        let file = initialize_segment(&self.shared.segments_dir, first_offset)?;
        let segment = Arc::new(Segment::new(
            first_offset,
            segment_path(&self.shared.segments_dir, first_offset),
            Some(SparseIndex::new(first_offset)),
        ));
        self.shared.segments.push(Arc::clone(&segment));
        tracing::debug!(first_offset, "log segment rolled");
        self.segment = segment;
        self.file = Arc::new(file);
        self.segment_len = SEGMENT_HEADER_LEN;
        self.shared.set_durable_len(SEGMENT_HEADER_LEN);
        self.open_direct();
        Ok(())
    }
}

/// Fails appends the writer did not even try to write.
fn fail_requests(group: Vec<AppendRequest>, reason: &str) {
    for request in group {
        let _ = request.ack.send(Err(LogError::WriterFailed {
            reason: reason.to_string(),
        }));
    }
}
