//! Why a record or log file was rejected; each variant has one stable code.

/// A record or log file that could not be parsed or did not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not JSON, not a JSON object where one is required, or a key repeated in a
    /// part of the record OpenTrail reads.
    #[error("malformed json: {reason}")]
    MalformedJson { reason: String },
    /// A field the record must have is absent or `null`.
    #[error("missing required field {field}")]
    MissingField { field: &'static str },
    /// A field is present but has the wrong JSON type or an ill-formed value.
    #[error("invalid field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// The record's JSON text is longer than [`MAX_RECORD_BYTES`](crate::event::MAX_RECORD_BYTES).
    #[error("record is {size} bytes, over the limit of {limit} bytes")]
    RecordTooLarge { size: usize, limit: usize },
    /// A log file or request holds more records than the limit.
    #[error("more than {limit} records")]
    TooManyRecords { limit: usize },
    /// `eventTime` is well formed but outside the window ingest accepts (see
    /// [`check_event_time`](crate::check_event_time)).
    #[error("eventTime {time} is outside the accepted window {earliest} .. {latest} (CloudTrail's start .. 24 hours after the server's clock)")]
    EventTimeOutOfRange {
        time: String,
        earliest: String,
        latest: String,
    },
}

impl EventError {
    /// The stable machine-readable name of the failure, e.g. `"MissingField"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } => "MalformedJson",
            Self::MissingField { .. } => "MissingField",
            Self::InvalidField { .. } => "InvalidField",
            Self::RecordTooLarge { .. } => "RecordTooLarge",
            Self::TooManyRecords { .. } => "TooManyRecords",
            Self::EventTimeOutOfRange { .. } => "EventTimeOutOfRange",
        }
    }

    /// The record field the error is about (a dotted path such as
    /// `userIdentity.arn`), when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { field } | Self::InvalidField { field, .. } => Some(field),
            Self::EventTimeOutOfRange { .. } => Some("eventTime"),
            Self::MalformedJson { .. }
            | Self::RecordTooLarge { .. }
            | Self::TooManyRecords { .. } => None,
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::MalformedJson {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}
