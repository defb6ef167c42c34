//! The failures of an object store, the same for every backend.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Holds the bucket name.
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    /// Holds the bucket name.
    #[error("bucket {0} already exists")]
    BucketAlreadyExists(String),
    /// Holds the bucket name.
    #[error("bucket {0} is not empty")]
    BucketNotEmpty(String),
    /// Holds the bucket name and the rule it breaks.
    #[error("invalid bucket name {0}")]
    InvalidBucketName(String),
    /// The store refused the credentials or the operation.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The store cannot be reached or is overloaded (connection refused,
    /// timeout, HTTP 5xx); retrying later may succeed.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    pub(crate) fn invalid_bucket_name(bucket: &str, why: &str) -> Self {
        StoreError::InvalidBucketName(format!("{bucket}: {why}"))
    }
}
