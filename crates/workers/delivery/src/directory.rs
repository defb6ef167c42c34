//! The seam to the control plane: which trails deliver, and where delivery outcomes go
//! (the `GetTrailStatus` fields).

use chrono::{DateTime, Utc};
use opentrail_model::TrailArn;

use crate::routing::TrailTarget;

/// Implemented by the server over its trail store.
pub trait TrailDirectory: Send + Sync {
    /// Every trail delivery should know about. A trail that stopped logging may be listed
    /// with `is_logging: false` (or left out): either way its open files are flushed and,
    /// with validation on, its digest chain is closed with a final digest.
    fn logging_trails(&self) -> Vec<TrailTarget>;

    /// Called after every log file or digest delivery attempt, on the worker's task:
    /// keep it quick (update in memory, persist elsewhere if needed).
    fn record_delivery(&self, trail: &TrailArn, outcome: DeliveryOutcome);
}

/// The result of one delivery attempt, as `GetTrailStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A log file was written: `LatestDeliveryTime` = `LatestDeliveryAttemptTime` =
    /// `LatestDeliveryAttemptSucceeded` = `at`; `LatestDeliveryError` clears.
    /// `bucket`/`key` name the object written (for notifications).
    LogFileDelivered {
        at: DateTime<Utc>,
        bucket: String,
        key: String,
    },
    /// Writing a log file failed: `LatestDeliveryAttemptTime` = `attempted_at`,
    /// `LatestDeliveryError` = `error` (an S3 error code such as `NoSuchBucket`).
    LogFileFailed {
        attempted_at: DateTime<Utc>,
        error: String,
    },
    /// A digest file was written: `LatestDigestDeliveryTime` = `at` (and
    /// `LatestDigestAttemptTime`/`LatestDigestAttemptSucceeded`); `LatestDigestDeliveryError` clears.
    DigestDelivered { at: DateTime<Utc> },
    /// Writing a digest file failed: `LatestDigestDeliveryError` = `error`.
    DigestFailed {
        attempted_at: DateTime<Utc>,
        error: String,
    },
}
