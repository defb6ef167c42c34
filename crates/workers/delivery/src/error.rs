//! The failures of delivery itself (not of one attempt to write to a bucket: those are
//! reported through [`crate::DeliveryOutcome`] and retried).

use std::path::PathBuf;

use opentrail_log::LogError;
use opentrail_objstore::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("delivery state file {}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
    #[error("signing keys: {0}")]
    Keys(String),
    /// The metadata store (digest chains) failed.
    #[error("delivery metadata: {0}")]
    Meta(String),
    #[error("object store: {0}")]
    Store(#[from] StoreError),
    #[error("delivery worker task failed: {0}")]
    Task(String),
}

impl DeliveryError {
    pub(crate) fn state(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        DeliveryError::State {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// The S3 error code CloudTrail reports in `LatestDeliveryError` for a failed write.
pub fn s3_error_code(error: &StoreError) -> &'static str {
    match error {
        StoreError::NoSuchBucket(_) => "NoSuchBucket",
        StoreError::AccessDenied(_) => "AccessDenied",
        StoreError::InvalidBucketName(_) => "InvalidBucketName",
        StoreError::Unavailable(_) => "ServiceUnavailable",
        StoreError::BucketAlreadyExists(_)
        | StoreError::BucketNotEmpty(_)
        | StoreError::Other(_) => "InternalError",
    }
}
