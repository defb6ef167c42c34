//! The Insights consumer of the event log: feeds every event to its account's engine,
//! ticks the engines as the hub's clock passes minutes, and appends the Insights events
//! they return to the log (so event history, delivery and notifications see them).

use crate::hub::{InsightsDirectory, InsightsHub};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use opentrail_log::{DurableLog, LogError, LogRecord};
use opentrail_model::EventRecord;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::watch;

/// The log consumer name of Insights.
pub const CONSUMER: &str = "insights";
const BATCH: usize = 4096;
/// How often the trails are read again, and how long an idle read waits.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Feeds the hub from the log until `stop` turns true, starting at the consumer's cursor.
///
/// The cursor is committed two minutes (of the hub's clock) behind what was read: the
/// minutes still open when the server stops are only in memory, and their events are read
/// again after a restart; events of minutes already closed are then dropped by the engine.
pub async fn run(
    log: Arc<dyn DurableLog>,
    hub: Arc<InsightsHub>,
    directory: Arc<dyn InsightsDirectory>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    let from = log
        .cursor(CONSUMER)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| log.durable_end())
        .max(log.start_offset());
    let mut reader = log.reader(from);
    let mut checkpoints: VecDeque<(DateTime<Utc>, u64)> = VecDeque::new();
    let mut committed = from;
    let mut last_directory_read = std::time::Instant::now() - POLL;
    loop {
        if last_directory_read.elapsed() >= POLL {
            last_directory_read = std::time::Instant::now();
            refresh(&hub, &directory).await;
        }
        let batch = tokio::select! {
            batch = reader.next_records(BATCH) => batch,
            _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            _ = tokio::time::sleep(POLL) => Ok(Vec::new()),
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(LogError::Closed) => return Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "failed to read the event log for insights");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        // With no engine running there is nothing to count into: the records are not even
        // parsed (that had been ~5 % of the CPU of ingest with history and a store), nor
        // handed to a blocking thread.
        if !batch.is_empty() && hub.is_counting() {
            let hub = Arc::clone(&hub);
            tokio::task::spawn_blocking(move || hub.observe(&events_of(batch)))
                .await
                .map_err(|e| e.to_string())?;
        }
        let ticked = {
            let hub = Arc::clone(&hub);
            tokio::task::spawn_blocking(move || hub.tick())
                .await
                .map_err(|e| e.to_string())?
        };
        if !ticked.is_empty() {
            let records: Vec<Bytes> = ticked.into_iter().map(Bytes::from).collect();
            tracing::info!(events = records.len(), "appending insights events");
            // An event that cannot be appended now is appended again: the engine has
            // moved on, so retry until the log takes it (or the server stops).
            while let Err(e) = log.append(records.clone()).await {
                tracing::warn!(error = %e, "failed to append insights events; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {},
                    _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
                }
            }
            // Held by the engines (in their state files) until now: a crash before this
            // point appends them again after the restart.
            let hub = Arc::clone(&hub);
            tokio::task::spawn_blocking(move || hub.acknowledge())
                .await
                .map_err(|e| e.to_string())?;
        }
        let now = hub.now();
        if hub.is_idle() {
            // Nothing is held in memory: commit what was read (an engine enabled later is
            // bootstrapped from event history, not from these records), so an idle
            // Insights never holds the log's retention back.
            checkpoints.clear();
            let offset = reader.position();
            if offset > committed {
                match log.commit_cursor(CONSUMER, offset).await {
                    Ok(()) => committed = offset,
                    Err(e) => tracing::warn!(error = %e, "failed to commit the insights cursor"),
                }
            }
            continue;
        }
        if checkpoints
            .back()
            .is_none_or(|(_, offset)| *offset != reader.position())
        {
            checkpoints.push_back((now, reader.position()));
        }
        let horizon = now - Duration::minutes(2);
        let mut commit = None;
        while checkpoints.front().is_some_and(|(at, _)| *at <= horizon) {
            commit = checkpoints.pop_front().map(|(_, offset)| offset);
        }
        if let Some(offset) = commit.filter(|offset| *offset > committed) {
            match log.commit_cursor(CONSUMER, offset).await {
                Ok(()) => committed = offset,
                Err(e) => tracing::warn!(error = %e, "failed to commit the insights cursor"),
            }
        }
    }
}

async fn refresh(hub: &Arc<InsightsHub>, directory: &Arc<dyn InsightsDirectory>) {
    let (hub, directory) = (Arc::clone(hub), Arc::clone(directory));
    let applied = tokio::task::spawn_blocking(move || {
        let wanted = directory.enabled_accounts()?;
        hub.apply(&wanted, directory.as_ref())
            .map_err(|e| e.to_string())
    })
    .await;
    match applied {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "failed to follow the trails' insight selectors"),
        Err(e) => tracing::warn!(error = %e, "insights refresh task failed"),
    }
}

fn events_of(batch: Vec<(u64, LogRecord)>) -> Vec<EventRecord> {
    batch
        .into_iter()
        .filter_map(|(_, record)| record.to_event().ok())
        .collect()
}

/// Why the consumer stopped (its supervisor logs it and starts it again).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConsumerError(String);

impl From<String> for ConsumerError {
    fn from(message: String) -> Self {
        Self(message)
    }
}
