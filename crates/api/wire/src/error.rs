//! AWS error responses: HTTP status plus `{"__type": "<ErrorName>", "message": "..."}`,
//! and [`AwsError`], the one trait every service error implements so that `?` turns it
//! into the wire error.

use serde_json::json;
use std::fmt;
use std::sync::Arc;

/// An error that knows how AWS reports it. Every service's error type implements this;
/// `From<E: AwsError> for ApiError` then makes `?` do the conversion, keeping the error
/// itself as the [`ApiError`]'s source for logs.
pub trait AwsError: std::error::Error + Send + Sync + 'static {
    /// The AWS error name (`TrailNotFoundException`), as `__type` and `errorCode` show it.
    fn code(&self) -> &'static str;
    /// The message the client sees.
    fn message(&self) -> String {
        self.to_string()
    }
    /// The HTTP status; 400 for every modelled exception, 5xx for the server's faults.
    fn status(&self) -> u16 {
        if self.code() == "InternalFailure" {
            500
        } else {
            400
        }
    }
}

/// The error of one request, as it goes on the wire.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// What caused it, for logs (never sent to the client).
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for ApiError {
    fn eq(&self, other: &Self) -> bool {
        (self.status, self.code, &self.message) == (other.status, other.code, &other.message)
    }
}

impl Eq for ApiError {}

impl<E: AwsError> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self {
            status: error.status(),
            code: error.code(),
            message: error.message(),
            source: Some(Arc::new(error)),
        }
    }
}

impl ApiError {
    /// A client error (HTTP 400), the status of every modelled CloudTrail exception.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalFailure", message).with_status(500)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    pub fn body(&self) -> String {
        json!({ "__type": self.code, "message": self.message }).to_string()
    }

    /// The whole chain of causes, for a log line.
    pub fn cause_chain(&self) -> String {
        let mut text = self.to_string();
        let mut next: Option<&(dyn std::error::Error + 'static)> = match &self.source {
            Some(source) => source.source(),
            None => None,
        };
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum ServiceError {
        #[error("no such thing: {0}")]
        NotFound(String),
        #[error("disk broke")]
        Internal(#[source] std::io::Error),
    }

    impl AwsError for ServiceError {
        fn code(&self) -> &'static str {
            match self {
                Self::NotFound(_) => "ResourceNotFoundException",
                Self::Internal(_) => "InternalFailure",
            }
        }
    }

    fn call(fail: ServiceError) -> Result<(), ApiError> {
        Err(fail)?
    }

    #[test]
    fn question_mark_converts_any_service_error() {
        let e = call(ServiceError::NotFound("x".into())).unwrap_err();
        assert_eq!((e.status, e.code), (400, "ResourceNotFoundException"));
        assert_eq!(e.message, "no such thing: x");
        let e = call(ServiceError::Internal(std::io::Error::other("EIO"))).unwrap_err();
        assert_eq!((e.status, e.code), (500, "InternalFailure"));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.cause_chain(), "InternalFailure: disk broke: EIO");
    }
}
