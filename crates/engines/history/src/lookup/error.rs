//! LookupEvents failures, one variant per botocore exception.

/// Why a LookupEvents call was refused. Each variant maps to exactly one botocore
/// exception name ([`LookupError::code`]).
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

impl LookupError {
    /// The botocore exception name (`__type` on the wire).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            Self::InvalidTimeRange(_) => "InvalidTimeRangeException",
            Self::InvalidMaxResults(_) => "InvalidMaxResultsException",
            Self::InvalidNextToken(_) => "InvalidNextTokenException",
            Self::InvalidEventCategory(_) => "InvalidEventCategoryException",
            Self::Internal(_) => "InternalFailure",
        }
    }

    /// The human-readable message (`message` on the wire).
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidLookupAttributes(message)
            | Self::InvalidTimeRange(message)
            | Self::InvalidMaxResults(message)
            | Self::InvalidNextToken(message)
            | Self::InvalidEventCategory(message)
            | Self::Internal(message) => message,
        }
    }

    /// Whether the caller sent a bad request (HTTP 400) rather than the service failing.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Internal(_))
    }
}
