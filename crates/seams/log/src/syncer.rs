//! The second stage of group commit: a dedicated OS thread that makes written groups durable
//! with one `fdatasync` for everything queued, then publishes the new durable end and
//! acknowledges the appends. It runs while the writer thread copies the next groups into the
//! page cache, so copying and flushing overlap.

use std::fs::File;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use crate::record::LogRecord;
use tokio::sync::{oneshot, watch};

use crate::error::{LogError, Result};
use crate::shared::Shared;
use crate::AppendAck;

/// A group the writer has written (not yet durable) to `file`.
pub(crate) struct SyncJob {
    pub(crate) file: Arc<File>,
    pub(crate) first_offset: u64,
    /// Bytes of the segment once this job's group is in it.
    pub(crate) end_len: u64,
    /// The group's records in offset order, for the tail cache.
    pub(crate) records: Vec<LogRecord>,
    pub(crate) replies: Vec<PendingAck>,
    /// Told once this job is durable (or dropped if it never will be): the writer waits on it
    /// before sealing a segment, so only the last segment can ever have a torn tail.
    pub(crate) notify_durable: Option<SyncSender<()>>,
}

/// An append's offsets and the channel its caller awaits them on.
pub(crate) struct PendingAck {
    pub(crate) reply: oneshot::Sender<Result<AppendAck>>,
    pub(crate) ack: AppendAck,
}

pub(crate) struct Syncer {
    shared: Arc<Shared>,
    durable_tx: watch::Sender<u64>,
}

impl Syncer {
    pub(crate) fn new(shared: Arc<Shared>, durable_tx: watch::Sender<u64>) -> Self {
        Self { shared, durable_tx }
    }

    pub(crate) fn spawn(
        self,
        jobs: Receiver<SyncJob>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("opentrail-log-sync".into())
            .spawn(move || self.run(jobs))
    }

    /// Syncs until the writer drops its end of the queue.
    fn run(self, jobs: Receiver<SyncJob>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            batch.extend(jobs.try_iter());
            self.sync_batch(batch);
        }
    }

    fn sync_batch(&self, batch: Vec<SyncJob>) {
        if let Some(reason) = self.shared.failure() {
            fail_jobs(batch, &reason);
            return;
        }
        #[cfg(test)]
        let synced = match self.shared.failing_syncs.fetch_update(
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
            |left| left.checked_sub(1),
        ) {
            Ok(_) => Err(std::io::Error::other("injected fsync failure")),
            Err(_) => sync_files(&batch),
        };
        #[cfg(not(test))]
        let synced = sync_files(&batch);
        if let Err(error) = synced {
            // After a failed fsync the kernel may have dropped the dirty pages; no later
            // fsync can vouch for them, so nothing written since the last good fsync is
            // acknowledged, and the writer continues in a fresh segment.
            let reason = format!("fdatasync failed: {error}");
            tracing::error!(%reason, "log sync failed; failing appends until the writer recovers");
            self.shared.fail(reason.clone(), true);
            fail_jobs(batch, &reason);
            return;
        }
        // Barrier jobs (no records) only wait for what was queued before them.
        let Some((end, end_len)) = batch
            .iter()
            .rev()
            .find(|job| !job.records.is_empty())
            .map(|job| (job.first_offset + job.records.len() as u64, job.end_len))
        else {
            for notify in batch.into_iter().filter_map(|job| job.notify_durable) {
                let _ = notify.send(());
            }
            return;
        };
        let mut replies = Vec::new();
        let mut notifications = Vec::new();
        for job in batch {
            self.shared.tail_cache.push(job.first_offset, job.records);
            replies.extend(job.replies);
            notifications.extend(job.notify_durable);
        }
        self.shared.set_durable_len(end_len);
        self.shared.publish_durable_end(end);
        self.durable_tx.send_replace(end);
        for pending in replies {
            // A caller that stopped waiting still had its records made durable.
            let _ = pending.reply.send(Ok(pending.ack));
        }
        for notify in notifications {
            let _ = notify.send(());
        }
    }
}

/// One `fdatasync` per distinct file in the batch (normally one: the active segment).
fn sync_files(batch: &[SyncJob]) -> std::io::Result<()> {
    let mut last_synced: Option<&Arc<File>> = None;
    for job in batch.iter().rev() {
        if last_synced.is_some_and(|file| Arc::ptr_eq(file, &job.file)) {
            continue;
        }
        job.file.sync_data()?;
        last_synced = Some(&job.file);
    }
    Ok(())
}

pub(crate) fn fail_jobs(batch: Vec<SyncJob>, reason: &str) {
    for job in batch {
        for pending in job.replies {
            let _ = pending.reply.send(Err(LogError::WriterFailed {
                reason: reason.to_string(),
            }));
        }
    }
}
