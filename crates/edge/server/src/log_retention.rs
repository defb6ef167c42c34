//! Bounds the event log's disk use: runs retention passes (`--event-log-retention`) and
//! keeps their figures for `/metrics`; says so, rate-limited, when a lagging consumer keeps
//! segments that retention would otherwise delete.

use opentrail_log::{EventLog, LogStats, RetentionPolicy, RetentionStatus};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// At most one warning about a consumer holding retention back per this period.
const HELD_BACK_WARNING_PERIOD: Duration = Duration::from_secs(300);

/// How often a pass runs for a given retention: often enough that the log holds little
/// more than the retention, rarely enough to cost nothing (each pass lists the cursors and
/// stats the segment files).
pub fn pass_period(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// A consumer keeping segments this much older than the retention is lagging (warned about
/// and flagged in `/metrics`): as long as the retention itself, at least 10 s (consumers
/// that keep up commit their cursors within seconds: history when it flushes, delivery
/// when it writes a file) and at most 10 minutes.
pub fn lagging_after(retention: Duration) -> Duration {
    retention.clamp(Duration::from_secs(10), Duration::from_secs(600))
}

/// Runs retention passes until `stop` turns true.
pub async fn run(
    log: EventLog,
    retention: Duration,
    status: Arc<RetentionStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let period = pass_period(retention);
    let policy = RetentionPolicy {
        min_age: retention,
        lagging_after: lagging_after(retention),
    };
    let mut last_warning: Option<Instant> = None;
    loop {
        let pass_log = log.clone();
        let pass = tokio::task::spawn_blocking(move || {
            pass_log.apply_retention(policy, SystemTime::now())
        })
        .await;
        match pass {
            Ok(Ok(stats)) => {
                report(&stats, retention, &mut last_warning);
                status.record(stats);
            }
            Ok(Err(error)) => tracing::warn!(%error, "event log retention pass failed"),
            Err(error) => tracing::warn!(%error, "event log retention task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

fn report(stats: &LogStats, retention: Duration, last_warning: &mut Option<Instant>) {
    if stats.deleted_segments > 0 {
        tracing::info!(
            segments = stats.deleted_segments,
            bytes = stats.deleted_bytes,
            start_offset = stats.start_offset,
            bytes_on_disk = stats.bytes_on_disk,
            "event log retention deleted segments"
        );
    }
    let holders: Vec<String> = stats
        .holding_back()
        .map(|c| match (c.cursor, c.registered) {
            (Some(cursor), true) => format!("{}@{cursor}", c.consumer),
            (Some(cursor), false) => format!("{}@{cursor} (not used by this server)", c.consumer),
            (None, _) => format!("{} (no readable cursor)", c.consumer),
        })
        .collect();
    if holders.is_empty() {
        return;
    }
    if last_warning.is_some_and(|at| at.elapsed() < HELD_BACK_WARNING_PERIOD) {
        return;
    }
    *last_warning = Some(Instant::now());
    let lag = stats
        .holding_back()
        .map(|c| c.lag_records(stats.start_offset, stats.durable_end))
        .max()
        .unwrap_or(0);
    tracing::warn!(
        consumers = %holders.join(", "),
        lag_records = lag,
        held_bytes = stats.held_bytes,
        bytes_on_disk = stats.bytes_on_disk,
        retention_seconds = retention.as_secs(),
        "event log retention held back: lagging consumers keep segments older than the retention (kept, not dropped; a cursor not used by this server can be removed with `opentrail log remove-cursor --data-dir DIR NAME` with the server stopped)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_run_between_every_second_and_every_ten_seconds() {
        assert_eq!(pass_period(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(pass_period(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(
            pass_period(Duration::from_secs(86_400)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn consumers_lag_once_they_hold_segments_a_retention_past_it_within_bounds() {
        assert_eq!(
            lagging_after(Duration::from_secs(2)),
            Duration::from_secs(10)
        );
        assert_eq!(
            lagging_after(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(
            lagging_after(Duration::from_secs(86_400)),
            Duration::from_secs(600)
        );
    }
}
