//! `EventLog`, the embedded log: segment files in a local directory, one writer thread doing
//! group commit, readers over the durable prefix, cursors and retention.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cursor::FileCursorStore;
use crate::cursor_store::{CursorStore, Cursors, StoredCursor};
use crate::error::{IoContext, LogError, Result};
use crate::options::LogOptions;
use crate::reader::LogReader;
use crate::record::LogRecord;
use crate::recovery::recover;
use crate::segment::sync_dir;
use crate::shared::{LogHealth, Shared};
use crate::tail_cache::TailCache;
use crate::writer::{spawn_group_commit, AppendRequest};

pub(crate) const SEGMENTS_DIR: &str = "segments";
pub(crate) const CURSORS_DIR: &str = "cursors";

/// Offsets given to one acknowledged batch: `first_offset..=last_offset`, in batch order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppendAck {
    pub first_offset: u64,
    pub last_offset: u64,
}

/// The embedded durable event log rooted at one directory. Cheap to clone. Dropping the last
/// clone commits everything queued and joins the group-commit threads (so it can block for
/// an fsync).
///
/// Only one `EventLog` (in one process) may have a directory open at a time.
#[derive(Debug, Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    shared: Arc<Shared>,
    max_record_bytes: usize,
    /// `None` only while dropping.
    requests: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<JoinHandle<()>>,
    durable_rx: watch::Receiver<u64>,
    cursors: Cursors,
    /// Serializes `truncate_before` calls.
    retention: Mutex<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer and syncer commit what is queued and exit.
        self.requests = None;
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!(dir = ?self.dir, "log writer thread panicked");
            }
        }
    }
}

impl EventLog {
    /// Opens (creating if needed) the log in `dir`, recovering from a crash: a torn tail of
    /// the last segment (damage with nothing valid after it) is cut off, never reported as an
    /// error. Damage followed by valid frames ([`LogError::Corrupt`]) and a consumer cursor
    /// beyond the recovered end ([`LogError::CursorBeyondEnd`]) refuse to open, changing
    /// nothing; [`crate::repair`] fixes both. Consumer cursors are files in `DIR/cursors/`;
    /// one with no valid slot is rewritten to the oldest retained offset (logged, counted in
    /// [`Self::health`]). Blocking (it reads the last segment and fsyncs); call it from
    /// `spawn_blocking` inside a runtime if that matters.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let files = Arc::new(FileCursorStore::new(dir.join(CURSORS_DIR)));
        Self::open_inner(dir, options, files, None)
    }

    /// [`Self::open`] with the consumer cursors kept in `cursors` (the server's metadata
    /// store, [`crate::MetaCursorStore`]). Cursor files an earlier version left in
    /// `DIR/cursors/` are moved into `cursors` once the log has recovered: in one
    /// [`CursorStore::replace_all`], then deleted durably (a cursor already in `cursors` is
    /// newer than its file and kept). A refused open moves nothing.
    pub fn open_with_cursors(
        dir: impl AsRef<Path>,
        options: LogOptions,
        cursors: Arc<dyn CursorStore>,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let legacy = FileCursorStore::new(dir.join(CURSORS_DIR));
        Self::open_inner(dir, options, cursors, Some(legacy))
    }

    fn open_inner(
        dir: &Path,
        options: LogOptions,
        store: Arc<dyn CursorStore>,
        legacy: Option<FileCursorStore>,
    ) -> Result<Self> {
        options.validate()?;
        let dir = dir.to_path_buf();
        let segments_dir = dir.join(SEGMENTS_DIR);
        std::fs::create_dir_all(&segments_dir).at(&segments_dir)?;
        if legacy.is_none() {
            let cursors_dir = dir.join(CURSORS_DIR);
            std::fs::create_dir_all(&cursors_dir).at(&cursors_dir)?;
        }
        sync_dir(&dir)?;
        // Every cursor with where it is kept and whether it is a file to move into `store`:
        // those in the store, then files an earlier version left for consumers the store
        // does not know yet (a file of a consumer the store knows is older than it).
        let mut found: Vec<(StoredCursor, String, bool)> = store
            .load_all()?
            .into_iter()
            .map(|stored| {
                let location = store.location(&stored.consumer);
                (stored, location, false)
            })
            .collect();
        if let Some(legacy) = &legacy {
            for file in legacy.load_all()? {
                if !found.iter().any(|(s, _, _)| s.consumer == file.consumer) {
                    let location = legacy.location(&file.consumer);
                    found.push((file, location, true));
                }
            }
        }
        let furthest = found
            .iter()
            .filter_map(|(stored, location, _)| match &stored.offset {
                Ok(Some(offset)) => Some((*offset, stored, location)),
                _ => None,
            })
            .max_by_key(|&(offset, _, _)| offset);
        let check_end = |durable_end: u64| match furthest {
            Some((cursor, stored, location)) if cursor > durable_end => {
                Err(LogError::CursorBeyondEnd {
                    consumer: stored.consumer.clone(),
                    location: location.clone(),
                    cursor,
                    durable_end,
                })
            }
            _ => Ok(()),
        };
        let recovered = recover(&segments_dir, &check_end)?;
        let start_offset = recovered.segments.start_offset();
        let mut replace = Vec::new();
        let mut rewritten = 0;
        for (cursor, location, moving) in &found {
            match &cursor.offset {
                Ok(Some(offset)) if *moving => replace.push((cursor.consumer.clone(), *offset)),
                // Created but never committed: the consumer starts where it registers.
                Ok(_) => {}
                Err(error) => {
                    // Re-reading is safe (consumers tolerate duplicates); skipping is not.
                    tracing::error!(
                        consumer = cursor.consumer,
                        cursor = location,
                        %error,
                        restart_from = start_offset,
                        "CURSOR UNREADABLE: rewriting it so that the consumer re-reads the log from its oldest retained offset"
                    );
                    replace.push((cursor.consumer.clone(), start_offset));
                    rewritten += 1;
                }
            }
        }
        store.replace_all(&replace)?;
        if let Some(legacy) = &legacy {
            let moved = found.iter().filter(|(_, _, moving)| *moving).count();
            if moved > 0 {
                tracing::info!(
                    from = ?legacy.dir(),
                    cursors = moved,
                    "moved the consumer cursor files of an earlier version into the cursor store"
                );
            }
            legacy.remove_all()?;
        }
        let cursors = Cursors::new(store, rewritten);
        tracing::info!(
            dir = ?dir,
            start_offset = recovered.segments.start_offset(),
            durable_end = recovered.durable_end,
            "event log opened"
        );
        let shared = Arc::new(Shared::new(
            segments_dir,
            recovered.segments,
            TailCache::new(options.tail_cache_bytes, options.tail_unread_bytes),
            options.direct_io,
            recovered.durable_end,
        ));
        let (durable_tx, durable_rx) = watch::channel(recovered.durable_end);
        let (requests, queue) = mpsc::channel(options.max_queued_appends);
        let writer = spawn_group_commit(
            Arc::clone(&shared),
            durable_tx,
            &options,
            recovered.active,
            recovered.durable_end,
            queue,
        )
        .at(&dir)?;
        Ok(Self {
            inner: Arc::new(Inner {
                cursors,
                dir,
                shared,
                max_record_bytes: options.max_record_bytes,
                requests: Some(requests),
                writer: Some(writer),
                durable_rx,
                retention: Mutex::new(()),
            }),
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn cursors(&self) -> &Cursors {
        &self.inner.cursors
    }

    /// Appends `records` as one batch with consecutive offsets; resolves once they are
    /// fsynced. Dropping the future does not withdraw a batch already queued.
    pub async fn append(&self, records: Vec<Bytes>) -> Result<AppendAck> {
        self.append_records(records.into_iter().map(LogRecord::from_bytes).collect())
            .await
    }

    /// [`Self::append`] of records that may carry their parsed events: readers of the
    /// in-memory tail get them with the bytes.
    pub async fn append_records(&self, records: Vec<LogRecord>) -> Result<AppendAck> {
        let (request, ack) = self.prepare(records)?;
        self.queue()?
            .send(request)
            .await
            .map_err(|_| LogError::Closed)?;
        ack.await.map_err(|_| LogError::Closed)?
    }

    /// [`Self::append`] for threads outside an async runtime (panics inside one).
    pub fn append_blocking(&self, records: Vec<Bytes>) -> Result<AppendAck> {
        let records = records.into_iter().map(LogRecord::from_bytes).collect();
        let (request, ack) = self.prepare(records)?;
        self.queue()?
            .blocking_send(request)
            .map_err(|_| LogError::Closed)?;
        ack.blocking_recv().map_err(|_| LogError::Closed)?
    }

    fn prepare(
        &self,
        records: Vec<LogRecord>,
    ) -> Result<(AppendRequest, oneshot::Receiver<Result<AppendAck>>)> {
        if records.is_empty() {
            return Err(LogError::EmptyBatch);
        }
        if records.iter().any(|record| record.is_empty()) {
            return Err(LogError::EmptyRecord);
        }
        let limit = self.inner.max_record_bytes;
        if let Some(record) = records.iter().find(|r| r.len() > limit) {
            return Err(LogError::RecordTooLarge {
                len: record.len(),
                limit,
            });
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        Ok((
            AppendRequest {
                records,
                ack: ack_tx,
            },
            ack_rx,
        ))
    }

    fn queue(&self) -> Result<&mpsc::Sender<AppendRequest>> {
        self.inner.requests.as_ref().ok_or(LogError::Closed)
    }

    /// The writer's health, for `/health` and metrics: whether appends can succeed now, the
    /// last write/fsync/roll failure, and how many cursor files were found unreadable and
    /// rewritten. Cheap (one uncontended lock).
    pub fn health(&self) -> LogHealth {
        LogHealth {
            cursors_rewritten: self.inner.cursors.rewritten(),
            ..self.inner.shared.health()
        }
    }

    /// The in-memory tail's capacity for readers behind the newest records
    /// (`LogOptions::tail_unread_bytes`): readers about that far behind the end get the
    /// producers' records, parsed events included, from memory.
    pub fn tail_unread_bytes(&self) -> usize {
        self.inner.shared.tail_cache.unread_bytes()
    }

    /// The bytes of records the in-memory tail holds now.
    pub fn tail_held_bytes(&self) -> usize {
        self.inner.shared.tail_cache.held_bytes()
    }

    /// The offset after the last durable record: readers can read everything below it.
    pub fn durable_end(&self) -> u64 {
        self.inner.shared.durable_end()
    }

    /// The first offset still stored (retention removes whole segments below it).
    pub fn start_offset(&self) -> u64 {
        self.inner.shared.segments.start_offset()
    }

    /// A reader of durable records from offset `from` on. Positioning errors (an offset
    /// removed by retention or past the durable end) surface on its first read.
    pub fn reader(&self, from: u64) -> LogReader {
        LogReader::new(
            Arc::clone(&self.inner.shared),
            self.inner.durable_rx.clone(),
            from,
        )
    }

    /// The last cursor `consumer` committed — the offset it resumes from — or `None` if it
    /// never committed one. Blocking (reads a small file).
    pub fn cursor(&self, consumer: &str) -> Result<Option<u64>> {
        self.inner.cursors.get(consumer)
    }

    /// Durably records that `consumer` has processed every record below `offset`.
    /// Blocking (one fdatasync). `offset` may move backwards (a replay) but not past the
    /// durable end.
    pub fn commit_cursor(&self, consumer: &str, offset: u64) -> Result<()> {
        let durable_end = self.durable_end();
        if offset > durable_end {
            return Err(LogError::OffsetBeyondEnd {
                requested: offset,
                durable_end,
            });
        }
        self.inner.cursors.commit(consumer, offset)
    }

    /// Deletes every sealed segment whose records all lie below `offset` (pass the smallest
    /// committed cursor of all consumers) and returns the new start offset. The active
    /// segment is never deleted. Blocking (deletes files, fsyncs the directory).
    pub fn truncate_before(&self, offset: u64) -> Result<u64> {
        let _serialized = self.retention_lock();
        self.delete_segments_below(offset)?;
        Ok(self.start_offset())
    }

    /// Serializes retention passes, `truncate_before` and consumer registration, so that a
    /// consumer registering at an offset never sees it deleted under its feet.
    pub(crate) fn retention_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes the sealed segments whose records all lie below `offset` (never past the
    /// durable end, never the active segment); returns how many. Call with
    /// [`Self::retention_lock`] held.
    pub(crate) fn delete_segments_below(&self, offset: u64) -> Result<usize> {
        let shared = &self.inner.shared;
        let removed = shared
            .segments
            .remove_below(offset.min(shared.durable_end()));
        // One at a time, oldest first, each made durable before the next: a crash leaves a
        // contiguous run of segments, never a gap.
        for segment in &removed {
            match std::fs::remove_file(&segment.path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error).at(&segment.path),
            }
            sync_dir(&shared.segments_dir)?;
            tracing::info!(segment = ?segment.path, "deleted log segment below retention offset");
        }
        Ok(removed.len())
    }

    /// Reads and verifies every frame of every sealed segment (open checks only the last
    /// segment's frames). Blocking; proportional to the data stored.
    pub fn verify_sealed_segments(&self) -> Result<()> {
        for located in self.inner.shared.segments.sealed() {
            let Some(end_offset) = located.end_offset else {
                continue;
            };
            located.segment.verify_sealed(end_offset)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn record(i: u64) -> Bytes {
        Bytes::from(format!("record-{i}"))
    }

    fn read_all(log: &EventLog) -> Vec<(u64, Bytes)> {
        let mut reader = log.reader(log.start_offset());
        let mut all = Vec::new();
        loop {
            let batch = reader.poll_batch(1000).expect("read");
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    fn event(id: u64) -> opentrail_model::EventRecord {
        opentrail_model::EventRecord::from_json(&format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","eventID":"e{id}","eventType":"AwsApiCall","recipientAccountId":"123456789012"}}"#
        ))
        .expect("event")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_of_the_tail_get_the_appended_events_and_files_give_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = || LogOptions {
            tail_cache_bytes: 1 << 20,
            ..LogOptions::default()
        };
        let log = EventLog::open(dir.path(), options()).expect("open");
        let appended = vec![
            LogRecord::from_bytes(record(0)),
            LogRecord::from_event(event(1)),
            LogRecord::from_event(event(2)),
        ];
        log.append_records(appended.clone()).await.expect("append");
        let read = log.reader(0).next_records(10).await.expect("read");
        assert_eq!(read.len(), 3);
        assert!(read[0].1.event().is_none());
        for ((offset, got), sent) in read.iter().zip(&appended).skip(1) {
            assert_eq!(got.event(), sent.event(), "offset {offset}");
            assert_eq!(got.bytes(), sent.bytes());
        }
        drop((read, log));
        // After a reopen the tail is empty: the same records come from the files, unparsed,
        // and parse to the same events.
        let log = EventLog::open(dir.path(), options()).expect("reopen");
        let read = log.reader(0).next_records(10).await.expect("read");
        assert!(read.iter().all(|(_, record)| record.event().is_none()));
        assert_eq!(read[2].1.to_event().expect("parse"), event(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lagging_reader_gets_parsed_events_beyond_the_capacity_until_it_has_read_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = LogRecord::from_event(event(0)).memory_bytes();
        let log = EventLog::open(
            dir.path(),
            LogOptions {
                tail_cache_bytes: 2 * one,
                tail_unread_bytes: 60 * one,
                ..LogOptions::default()
            },
        )
        .expect("open");
        let mut lagging = log.reader(0);
        for i in 0..50 {
            log.append_records(vec![LogRecord::from_event(event(i))])
                .await
                .expect("append");
        }
        assert!(
            log.tail_held_bytes() >= 50 * one - 50,
            "kept for the reader"
        );
        let read = lagging.next_records(30).await.expect("read");
        assert_eq!(read.len(), 30);
        assert!(read.iter().all(|(_, record)| record.event().is_some()));
        let held = log.tail_held_bytes();
        assert!(
            held < 21 * one && held >= 20 * one - 20,
            "{held}: what it read went"
        );
        drop(lagging);
        log.append_records(vec![LogRecord::from_event(event(50))])
            .await
            .expect("append");
        assert!(
            log.tail_held_bytes() <= 2 * one,
            "without readers, the capacity"
        );

        // A reader behind the tail's oldest record reads the files anyway: it holds nothing.
        let mut behind = log.reader(0);
        for i in 51..60 {
            log.append_records(vec![LogRecord::from_event(event(i))])
                .await
                .expect("append");
        }
        assert!(log.tail_held_bytes() <= 2 * one + 2);
        // Beyond the limit the oldest go even though unread; the reader is then behind the
        // tail, which keeps its capacity only, and reads the files.
        let mut lagging = log.reader(60);
        for i in 60..110 {
            log.append_records(vec![LogRecord::from_event(event(i))])
                .await
                .expect("append");
        }
        assert!(log.tail_held_bytes() > 45 * one, "kept for the reader");
        for i in 110..140 {
            log.append_records(vec![LogRecord::from_event(event(i))])
                .await
                .expect("append");
        }
        assert!(log.tail_held_bytes() <= 2 * one + 2, "over the limit");
        let read = lagging.next_records(200).await.expect("read");
        assert_eq!(read.len(), 80);
        assert!(read[0].1.event().is_none(), "from the files");
        assert!(read[79].1.event().is_some(), "from the tail");
        let read = behind.next_records(200).await.expect("read");
        assert_eq!(read.len(), 140);
        for (offset, record) in &read {
            assert_eq!(record.to_event().expect("parse"), event(*offset));
        }
    }

    #[test]
    fn after_a_failed_fsync_appends_fail_then_continue_in_a_fresh_segment() {
        for direct_io in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let options = || LogOptions {
                direct_io,
                ..LogOptions::default()
            };
            let log = EventLog::open(dir.path(), options()).expect("open");
            for i in 0..5 {
                log.append_blocking(vec![record(i)]).expect("append");
            }
            log.inner.shared.failing_syncs.store(1, Ordering::Release);
            let failed = log.append_blocking(vec![record(100)]);
            assert!(
                matches!(failed, Err(LogError::WriterFailed { .. })),
                "{failed:?}"
            );
            let health = log.health();
            assert!(!health.writable && health.failures == 1, "{health:?}");
            // The next append recovers the writer first (the cause is gone).
            let ack = log.append_blocking(vec![record(5)]).expect("recovered");
            assert_eq!(
                ack.first_offset, 5,
                "the failed record's offset was never visible"
            );
            let health = log.health();
            assert!(health.writable, "{health:?}");
            assert!(health.last_error.is_some_and(|e| e.contains("injected")));
            assert_eq!(
                crate::segment::list_segments(&dir.path().join(SEGMENTS_DIR)).expect("list"),
                vec![0, 5],
                "continued in a fresh segment"
            );
            let expected: Vec<(u64, Bytes)> = (0..6).map(|i| (i, record(i))).collect();
            assert_eq!(read_all(&log), expected);
            drop(log);
            let log = EventLog::open(dir.path(), options()).expect("reopen");
            log.verify_sealed_segments().expect("sealed segment intact");
            assert_eq!(read_all(&log), expected);
        }
    }

    #[test]
    fn after_a_failed_write_the_writer_continues_in_the_same_segment() {
        for direct_io in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let options = || LogOptions {
                direct_io,
                ..LogOptions::default()
            };
            let log = EventLog::open(dir.path(), options()).expect("open");
            log.append_blocking(vec![record(0), record(1)])
                .expect("append");
            log.inner.shared.failing_writes.store(1, Ordering::Release);
            let lost: Vec<Bytes> = (100..110).map(record).collect();
            assert!(matches!(
                log.append_blocking(lost),
                Err(LogError::WriterFailed { .. })
            ));
            assert!(!log.health().writable);
            let ack = log.append_blocking(vec![record(2)]).expect("recovered");
            assert_eq!(ack.first_offset, 2);
            assert!(log.health().writable);
            assert_eq!(
                crate::segment::list_segments(&dir.path().join(SEGMENTS_DIR)).expect("list"),
                vec![0]
            );
            drop(log);
            let log = EventLog::open(dir.path(), options()).expect("reopen");
            let expected: Vec<(u64, Bytes)> = (0..3).map(|i| (i, record(i))).collect();
            assert_eq!(read_all(&log), expected);
        }
    }

    #[test]
    fn a_failed_write_is_cut_off_at_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let buffered = || LogOptions {
            direct_io: false,
            ..LogOptions::default()
        };
        let log = EventLog::open(dir.path(), buffered()).expect("open");
        log.append_blocking(vec![record(0)]).expect("append");
        log.inner.shared.failing_writes.store(1, Ordering::Release);
        let lost: Vec<Bytes> = (100..110).map(record).collect();
        assert!(log.append_blocking(lost).is_err());
        drop(log);
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
        assert_eq!(
            read_all(&log),
            vec![(0, record(0))],
            "no unacknowledged record"
        );
    }

    #[test]
    fn a_failed_fsync_of_an_empty_segment_restarts_it_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
        log.inner.shared.failing_syncs.store(1, Ordering::Release);
        assert!(log.append_blocking(vec![record(0)]).is_err());
        assert_eq!(
            log.append_blocking(vec![record(0)])
                .expect("append")
                .first_offset,
            0
        );
        drop(log);
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
        assert_eq!(read_all(&log), vec![(0, record(0))]);
    }
}
