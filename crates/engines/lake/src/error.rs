//! Lake errors; query errors name the AWS error the API answers with.

use thiserror::Error;

pub type Result<T> = std::result::Result<T, LakeError>;

#[derive(Debug, Error)]
pub enum LakeError {
    /// The statement is not a valid read-only query (`InvalidQueryStatementException`).
    #[error("{0}")]
    InvalidQuery(String),
    /// FROM names a store the caller does not have (`EventDataStoreNotFoundException`).
    #[error("event data store {0} not found")]
    StoreNotFound(String),
    /// The query ran over its memory budget (a FAILED query's `ErrorMessage`).
    #[error("Query exhausted resources at this scale factor")]
    ResourcesExhausted,
    /// The query failed while running (a FAILED query's `ErrorMessage`).
    #[error("{0}")]
    Execution(String),
    #[error("event log: {0}")]
    Log(#[from] opentrail_log::LogError),
    #[error("lake object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("{0}")]
    Io(String),
    #[error("failed to encode lake file: {0}")]
    Encode(String),
    /// The event data stores could not be read (`StoreCatalog`).
    #[error("failed to read the event data stores: {0}")]
    Catalog(String),
}

impl LakeError {
    /// The AWS error code StartQuery answers with, for errors found before the query runs.
    pub fn aws_error_code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidQuery(_) => Some("InvalidQueryStatementException"),
            Self::StoreNotFound(_) => Some("EventDataStoreNotFoundException"),
            _ => None,
        }
    }
}
