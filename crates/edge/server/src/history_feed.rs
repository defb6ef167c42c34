//! Feeds event history from the durable event log: every durable event is indexed for
//! LookupEvents, resuming after a crash from the offset history last applied.

use bytes::Bytes;
use opentrail_history::EventIndex;
use opentrail_log::{DurableLog, LogRecord};
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
    {
        let mut last_flush_check = (std::time::Instant::now(), history.durable_offset());
        let mut reader = log.reader(history.applied_offset().max(log.start_offset()));
        let mut last_expiry = std::time::Instant::now() - EXPIRY_PERIOD;
        let mut committed_cursor = u64::MAX;
        let mut provenance = ProvenanceSpans::default();
        loop {
            if last_expiry.elapsed() >= EXPIRY_PERIOD {
                last_expiry = std::time::Instant::now();
                let (store, now) = (Arc::clone(&history), clock.now());
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
                let durable = history.durable_offset();
                if durable == last_flush_check.1 && durable < history.applied_offset() {
                    let store = Arc::clone(&history);
                    match tokio::task::spawn_blocking(move || store.flush()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "failed to flush event history"),
                        Err(e) => tracing::warn!(error = %e, "event history flush task failed"),
                    }
                    let durable = history.durable_offset();
                    if durable != committed_cursor
                        && log.commit_cursor(CONSUMER, durable).await.is_ok()
                    {
                        committed_cursor = durable;
                    }
                }
                last_flush_check = (std::time::Instant::now(), history.durable_offset());
            }
            let batch = tokio::select! {
                batch = reader.next_records(BATCH) => batch,
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
                // An idle feed still notices a rewind (next_batch is cancel-safe).
                _ = tokio::time::sleep(REWIND_CHECK) => Ok(Vec::new()),
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(opentrail_log::LogError::Closed) => return Ok(()),
                Err(e) => {
                    tracing::error!(error = %e, "failed to read the event log for event history");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // History quarantined a damaged segment: index the log again from where it
            // says (what it still holds is skipped as duplicates).
            if let Some(offset) = history.take_rewind() {
                tracing::warn!(offset, "event history asked to index the event log again");
                reader = log.reader(offset.max(log.start_offset()));
                provenance = ProvenanceSpans::default();
                continue;
            }
            let Some(&(last, _)) = batch.last() else {
                continue;
            };
            let spans = provenance.spans(&batch);
            let store = Arc::clone(&history);
            let inserted = tokio::task::spawn_blocking(move || {
                let events = events_of(batch);
                let stats = store.insert_batch(&events, &|offset| spans.of(offset))?;
                tracing::debug!(
                    inserted = stats.inserted,
                    duplicates = stats.duplicates,
                    not_history = stats.not_history,
                    invalid = stats.invalid,
                    expired = stats.expired,
                    "indexed events into event history"
                );
                Ok::<(), opentrail_history::HistoryError>(())
            })
            .await;
            // A failed insert and a failed task are handled alike.
            let inserted = inserted
                .map_err(|e| e.to_string())
                .and_then(|result| result.map_err(|e| e.to_string()));
            match inserted {
                Ok(()) => {
                    // Only as far as history would keep after a crash (its last flush).
                    let durable = history.durable_offset().min(last + 1);
                    if durable != committed_cursor {
                        match log.commit_cursor(CONSUMER, durable).await {
                            Ok(()) => committed_cursor = durable,
                            Err(e) => {
                                tracing::warn!(error = %e, "failed to commit the event history cursor")
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(error, "failed to index events into event history");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    // Read again from what history has made durable.
                    reader = log.reader(history.applied_offset().max(log.start_offset()));
                    provenance = ProvenanceSpans::default();
                }
            }
        }
    }
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
