//! Feeds event history from the durable event log: every durable event is indexed for
//! LookupEvents, resuming after a crash from the offset history last applied.

use bytes::Bytes;
use opentrail_history::{EventIndex, PreparedBatch};
use opentrail_log::{DurableLog, DurableLogReader, LogRecord};
use opentrail_model::{Clock, EventRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The log consumer name; its cursor lets log retention know what history has applied.
pub const CONSUMER: &str = "event-history";
const BATCH: usize = 4096;
const EXPIRY_PERIOD: Duration = Duration::from_secs(600);
/// How often an idle feed checks whether history asked for the log again.
const REWIND_CHECK: Duration = Duration::from_secs(1);

/// Refuses to feed history from a log that ends before what history has applied: new
/// events would take offsets history believes it has seen, and it would skip them.
pub fn check_resume(log: &dyn DurableLog, history: &dyn EventIndex) -> anyhow::Result<()> {
    let (applied, end) = (history.applied_offset(), log.durable_end());
    if applied > end {
        anyhow::bail!(
            "event history has applied the event log up to offset {applied}, but the log ends at {end}: records are missing from the log; refusing to start so that new events never reuse their offsets (nothing was changed; see \"Repairing the event log\" in the README: `opentrail log repair`)"
        );
    }
    Ok(())
}

/// Indexes the log into history until `stop` turns true (run under a supervisor, which
/// starts it again if it dies). History's cursor (what the log must keep for it) advances
/// only when history flushes, which it does by size; when its flushed offset has not moved
/// for `idle_flush` the feed flushes it, so that a quiet server's log retention is not held
/// back by a memtable that takes days to fill.
pub async fn run(
    log: Arc<dyn DurableLog>,
    history: Arc<dyn EventIndex>,
    clock: Arc<dyn Clock>,
    idle_flush: Duration,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut feed = Feed {
        reader: None,
        log,
        history,
        committed_cursor: u64::MAX,
        provenance: ProvenanceSpans::default(),
        in_flight: None,
    };
    let mut last_flush_check = (std::time::Instant::now(), feed.history.durable_offset());
    let mut last_expiry = std::time::Instant::now() - EXPIRY_PERIOD;
    loop {
        if last_expiry.elapsed() >= EXPIRY_PERIOD {
            feed.settle().await;
            last_expiry = std::time::Instant::now();
            let (store, now) = (Arc::clone(&feed.history), clock.now());
            match tokio::task::spawn_blocking(move || store.expire(now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(dropped)) => {
                    tracing::info!(partitions = dropped, "expired event history partitions")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "failed to expire event history"),
                Err(e) => tracing::warn!(error = %e, "event history expiry task failed"),
            }
        }
        if last_flush_check.0.elapsed() >= idle_flush {
            feed.settle().await;
            let history = &feed.history;
            let durable = history.durable_offset();
            if durable == last_flush_check.1 && durable < history.applied_offset() {
                let store = Arc::clone(history);
                match tokio::task::spawn_blocking(move || store.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "failed to flush event history"),
                    Err(e) => tracing::warn!(error = %e, "event history flush task failed"),
                }
                feed.commit_cursor().await;
            }
            last_flush_check = (std::time::Instant::now(), feed.history.durable_offset());
        }
        if *stop.borrow() {
            feed.settle().await;
            return Ok(());
        }
        // What is durable now is read (and prepared, below) off the runtime while the
        // previous batch is inserted; once caught up, the insert is finished first.
        let batch = match feed.poll().await {
            Ok(batch) if batch.is_empty() => {
                feed.settle().await;
                tokio::select! {
                    batch = feed.reader().next_records(BATCH) => batch,
                    _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
                    // An idle feed still notices a rewind (next_batch is cancel-safe).
                    _ = tokio::time::sleep(REWIND_CHECK) => Ok(Vec::new()),
                }
            }
            polled => polled,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(opentrail_log::LogError::Closed) => {
                feed.settle().await;
                return Ok(());
            }
            Err(e) => {
                tracing::error!(error = %e, "failed to read the event log for event history");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // History quarantined a damaged segment: index the log again from where it
        // says (what it still holds is skipped as duplicates).
        if let Some(offset) = feed.history.take_rewind() {
            feed.settle().await;
            tracing::warn!(offset, "event history asked to index the event log again");
            feed.reader = Some(feed.log.reader(offset.max(feed.log.start_offset())));
            feed.provenance = ProvenanceSpans::default();
            continue;
        }
        let Some(&(last, _)) = batch.last() else {
            continue;
        };
        let spans = feed.provenance.spans(&batch);
        let prepared = match prepare(batch, spans).await {
            Ok(prepared) => prepared,
            // (A failed insert before it already started the reading again.)
            Err(e) => {
                if feed.settle().await {
                    feed.failed(format!("event history batch preparation failed: {e}"))
                        .await;
                }
                continue;
            }
        };
        // One insert at a time, in log order; a failed one rereads the log from what
        // history applied, so this batch is dropped.
        if !feed.settle().await {
            continue;
        }
        let store = Arc::clone(&feed.history);
        feed.in_flight = Some(InFlight {
            last,
            task: tokio::task::spawn_blocking(move || {
                let stats = store.insert_prepared(prepared)?;
                tracing::debug!(
                    inserted = stats.inserted,
                    duplicates = stats.duplicates,
                    not_history = stats.not_history,
                    invalid = stats.invalid,
                    expired = stats.expired,
                    "indexed events into event history"
                );
                Ok::<(), opentrail_history::HistoryError>(())
            }),
        });
    }
}

/// A batch being inserted on a blocking thread.
struct InFlight {
    /// The offset of its last record.
    last: u64,
    task: tokio::task::JoinHandle<Result<(), opentrail_history::HistoryError>>,
}

/// The feed's state between batches.
struct Feed {
    log: Arc<dyn DurableLog>,
    history: Arc<dyn EventIndex>,
    /// Taken while a read runs off the runtime; made again from what history applied if
    /// that read never gave it back.
    reader: Option<Box<dyn DurableLogReader>>,
    committed_cursor: u64,
    provenance: ProvenanceSpans,
    in_flight: Option<InFlight>,
}

impl Feed {
    fn reader(&mut self) -> &mut Box<dyn DurableLogReader> {
        let reader = self.take_reader();
        self.reader.insert(reader)
    }

    /// The reader, or a new one from what history applied.
    fn take_reader(&mut self) -> Box<dyn DurableLogReader> {
        self.reader.take().unwrap_or_else(|| {
            let from = self.history.applied_offset().max(self.log.start_offset());
            self.log.reader(from)
        })
    }

    /// Up to a batch of the records durable now (none when caught up), read on a
    /// blocking thread.
    async fn poll(&mut self) -> Result<Vec<(u64, LogRecord)>, opentrail_log::LogError> {
        let mut reader = self.take_reader();
        let polled = tokio::task::spawn_blocking(move || {
            let batch = reader.poll_records(BATCH);
            (reader, batch)
        })
        .await;
        match polled {
            Ok((reader, batch)) => {
                self.reader = Some(reader);
                batch
            }
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(opentrail_log::LogError::Closed),
            },
        }
    }

    /// Waits for the batch being inserted, if any; false when it failed (the reader then
    /// starts again from what history applied).
    async fn settle(&mut self) -> bool {
        let Some(insert) = self.in_flight.take() else {
            return true;
        };
        let inserted = insert.task.await;
        self.settled(insert.last, inserted).await
    }

    /// Commits the cursor after a batch ending at `last` was inserted, or starts reading
    /// again from what history applied when it was not; true when it was.
    async fn settled(
        &mut self,
        last: u64,
        inserted: Result<Result<(), opentrail_history::HistoryError>, tokio::task::JoinError>,
    ) -> bool {
        // A failed insert and a failed task are handled alike.
        let inserted = inserted
            .map_err(|e| e.to_string())
            .and_then(|result| result.map_err(|e| e.to_string()));
        match inserted {
            Ok(()) => {
                // Only as far as history would keep after a crash (its last flush).
                let durable = self.history.durable_offset().min(last + 1);
                self.commit(durable).await;
                true
            }
            Err(error) => {
                self.failed(error).await;
                false
            }
        }
    }

    /// Commits the cursor at what history has made durable.
    async fn commit_cursor(&mut self) {
        let durable = self.history.durable_offset();
        self.commit(durable).await;
    }

    async fn commit(&mut self, durable: u64) {
        if durable == self.committed_cursor {
            return;
        }
        match self.log.commit_cursor(CONSUMER, durable).await {
            Ok(()) => self.committed_cursor = durable,
            Err(e) => tracing::warn!(error = %e, "failed to commit the event history cursor"),
        }
    }

    /// After a failed insert: waits a second, then reads again from what history has
    /// applied.
    async fn failed(&mut self, error: String) {
        tracing::error!(error, "failed to index events into event history");
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.reader = None;
        self.provenance = ProvenanceSpans::default();
    }
}

/// Parses and stages a batch in two halves on two blocking threads: once the other
/// consumers of the log have caught up, history's feed has the machine to itself, and
/// preparing is most of its work.
async fn prepare(
    mut batch: Vec<(u64, LogRecord)>,
    spans: ProvenanceSpans,
) -> Result<PreparedBatch, tokio::task::JoinError> {
    let second = batch.split_off(batch.len() / 2);
    let spans = Arc::new(spans);
    let half = |records: Vec<(u64, LogRecord)>| {
        let spans = Arc::clone(&spans);
        tokio::task::spawn_blocking(move || {
            PreparedBatch::new(events_of(records), |offset| spans.of(offset))
        })
    };
    let (first, second) = (half(batch), half(second));
    let mut prepared = first.await?;
    prepared.append(second.await?);
    Ok(prepared)
}

/// The events of a batch read from the log, by offset: the parse ingest handed the log
/// when it is still there, else parsed now. Records that are not events (provenance
/// markers, damage) are left out.
fn events_of(batch: Vec<(u64, LogRecord)>) -> Vec<(u64, EventRecord)> {
    batch
        .into_iter()
        .filter_map(|(offset, record)| record.to_event().ok().map(|event| (offset, event)))
        .collect()
}

/// Which records came with which provenance: each marker record in the log covers the
/// records right after it (see `opentrail_model::Provenance`); a span can reach into the
/// next batch. A feed that resumes inside a span (after a restart) does not know it: those
/// records are stored without provenance.
#[derive(Default)]
struct ProvenanceSpans {
    /// `[start, end)` offsets and the provenance JSON of each span.
    spans: Vec<(u64, u64, Bytes)>,
}

impl ProvenanceSpans {
    /// The spans reaching into `batch`, keeping those that reach beyond it for the next.
    fn spans(&mut self, batch: &[(u64, LogRecord)]) -> ProvenanceSpans {
        let first = batch.first().map_or(0, |(offset, _)| *offset);
        self.spans.retain(|(_, end, _)| *end > first);
        for (offset, record) in batch {
            let bytes = record.bytes();
            if let Some((count, json)) = opentrail_model::parse_provenance_marker(bytes) {
                let start = offset + 1;
                self.spans
                    .push((start, start.saturating_add(count), bytes.slice_ref(json)));
            }
        }
        let next = batch.last().map_or(first, |(offset, _)| offset + 1);
        let now = ProvenanceSpans {
            spans: self.spans.clone(),
        };
        self.spans.retain(|(_, end, _)| *end > next);
        now
    }

    fn of(&self, offset: u64) -> Option<&[u8]> {
        self.spans
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(&offset))
            .map(|(_, _, json)| &json[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_history::{
        HistoryError, HistoryHealth, HistoryOptions, HistoryStats, HistoryStore, InsertStats,
        LookupError, LookupRequest,
    };
    use opentrail_log::{EventLog, LogOptions};
    use opentrail_operations::LookupEventsResponse;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// History that checks the feed's order: one insert at a time, batches in log order,
    /// each insert slow enough that the next batch is read meanwhile; it fails the inserts
    /// whose numbers are in `fail`.
    struct Watched {
        store: HistoryStore,
        inserting: AtomicBool,
        inserts: AtomicUsize,
        next_offset: AtomicU64,
        fail: Vec<usize>,
        violations: Mutex<Vec<String>>,
    }

    impl EventIndex for Watched {
        fn insert_prepared(&self, batch: PreparedBatch) -> Result<InsertStats, HistoryError> {
            if self.inserting.swap(true, Ordering::SeqCst) {
                self.violations
                    .lock()
                    .unwrap()
                    .push("two inserts at once".into());
            }
            let number = self.inserts.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            let result = if self.fail.contains(&number) {
                Err(HistoryError::Poisoned(format!(
                    "insert {number} fails in this test"
                )))
            } else {
                let applied_before = self.store.applied_offset();
                let expected = self.next_offset.load(Ordering::SeqCst);
                if applied_before != expected {
                    self.violations.lock().unwrap().push(format!(
                        "insert {number} after applied offset {applied_before}, expected {expected}"
                    ));
                }
                let stats = self.store.insert_prepared(batch);
                self.next_offset
                    .store(self.store.applied_offset(), Ordering::SeqCst);
                stats
            };
            self.inserting.store(false, Ordering::SeqCst);
            result
        }

        fn lookup(&self, request: &LookupRequest) -> Result<LookupEventsResponse, LookupError> {
            self.store.lookup(request)
        }

        fn applied_offset(&self) -> u64 {
            self.store.applied_offset()
        }

        fn durable_offset(&self) -> u64 {
            self.store.durable_offset()
        }

        fn take_rewind(&self) -> Option<u64> {
            self.store.take_rewind()
        }

        fn expire(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, HistoryError> {
            self.store.expire(now)
        }

        fn flush(&self) -> Result<(), HistoryError> {
            self.store.flush()
        }

        fn health(&self) -> HistoryHealth {
            self.store.health()
        }

        fn stats(&self) -> HistoryStats {
            self.store.stats()
        }
    }

    fn record(id: usize) -> Bytes {
        Bytes::from(format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-12-01T00:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","eventID":"e{id}","eventType":"AwsApiCall","managementEvent":true,"eventCategory":"Management","recipientAccountId":"123456789012"}}"#,
            (id / 60) % 60,
            id % 60
        ))
    }

    /// Feeds `records` records (appended in a few appends) into a watched history that
    /// fails the inserts numbered in `fail`; returns it once everything is applied.
    async fn feed(records: usize, fail: Vec<usize>) -> (Arc<Watched>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log =
            Arc::new(EventLog::open(dir.path().join("log"), LogOptions::default()).expect("log"));
        let store = HistoryStore::open(
            &dir.path().join("history"),
            HistoryOptions {
                retention_days: 36_500,
                write_ahead_log: false,
                ..HistoryOptions::default()
            },
        )
        .expect("history");
        let history = Arc::new(Watched {
            store,
            inserting: AtomicBool::new(false),
            inserts: AtomicUsize::new(0),
            next_offset: AtomicU64::new(0),
            fail,
            violations: Mutex::new(Vec::new()),
        });
        let mut appended = 0;
        while appended < records {
            let count = (records - appended).min(BATCH + 1000);
            let batch = (appended..appended + count).map(record).collect();
            log.append(batch).await.expect("append");
            appended += count;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            log.clone() as Arc<dyn DurableLog>,
            history.clone() as Arc<dyn EventIndex>,
            Arc::new(opentrail_model::SystemClock),
            Duration::from_secs(3600),
            stop_rx,
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while history.applied_offset() < records as u64 {
            assert!(
                std::time::Instant::now() < deadline,
                "history never caught up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop_tx.send(true).expect("stop");
        task.await.expect("feed task").expect("feed");
        assert!(
            !history.inserting.load(Ordering::SeqCst),
            "stopped mid-insert"
        );
        (history, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_are_inserted_one_at_a_time_in_log_order() {
        let records = 5 * BATCH + 17;
        let (history, _dir) = feed(records, Vec::new()).await;
        assert_eq!(*history.violations.lock().unwrap(), Vec::<String>::new());
        assert!(history.inserts.load(Ordering::SeqCst) >= 6);
        assert_eq!(
            history.stats().memtable_events + history.stats().segment_events as usize,
            records
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_insert_is_fed_again_from_what_history_applied() {
        let records = 4 * BATCH + 5;
        let (history, _dir) = feed(records, vec![1, 2]).await;
        assert_eq!(*history.violations.lock().unwrap(), Vec::<String>::new());
        // Two failures, so at least two more inserts than batches.
        assert!(history.inserts.load(Ordering::SeqCst) >= 7);
        assert_eq!(
            history.stats().memtable_events + history.stats().segment_events as usize,
            records
        );
    }
}
