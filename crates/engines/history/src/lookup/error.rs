//! LookupEvents failures, one variant per botocore exception.

use opentrail_wire::AwsError;

/// Why a LookupEvents call was refused. Each variant maps to exactly one botocore
/// exception name ([`AwsError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    InvalidLookupAttributes(String),
    #[error("{0}")]
    InvalidTimeRange(String),
    #[error("{0}")]
    InvalidMaxResults(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    InvalidEventCategory(String),
    /// The store failed (I/O, corruption); not the caller's fault.
    #[error("{0}")]
    Internal(String),
}

impl AwsError for LookupError {
    /// The botocore exception name (`__type` on the wire).
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            Self::InvalidTimeRange(_) => "InvalidTimeRangeException",
            Self::InvalidMaxResults(_) => "InvalidMaxResultsException",
            Self::InvalidNextToken(_) => "InvalidNextTokenException",
            Self::InvalidEventCategory(_) => "InvalidEventCategoryException",
            Self::Internal(_) => "InternalFailure",
        }
    }

    /// The human-readable message (`message` on the wire). The status is the trait's
    /// default: 500 for `InternalFailure`, else 400.
    fn message(&self) -> String {
        match self {
            Self::InvalidLookupAttributes(message)
            | Self::InvalidTimeRange(message)
            | Self::InvalidMaxResults(message)
            | Self::InvalidNextToken(message)
            | Self::InvalidEventCategory(message)
            | Self::Internal(message) => message.clone(),
        }
    }
}

impl LookupError {
    /// Whether the caller sent a bad request (HTTP 400) rather than the service failing.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Internal(_))
    }
}
