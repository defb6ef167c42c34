//! Errors of SearchSampleQueries and GenerateQuery; each variant is exactly one CloudTrail
//! exception (the stores service's errors pass through as they are).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    GenerateResponse(String),
    #[error(transparent)]
    Store(#[from] opentrail_stores::StoreError),
    #[error("{0}")]
    Internal(String),
}

impl opentrail_wire::AwsError for SampleError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidParameter(_) => "InvalidParameterException",
            Self::GenerateResponse(_) => "GenerateResponseException",
            Self::Store(inner) => inner.code(),
            Self::Internal(_) => "InternalFailure",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Store(inner) => inner.message(),
            other => other.to_string(),
        }
    }
}

impl From<opentrail_meta::MetaError> for SampleError {
    fn from(e: opentrail_meta::MetaError) -> Self {
        Self::Internal(e.to_string())
    }
}
