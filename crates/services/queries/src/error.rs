//! Query errors; each variant is exactly one CloudTrail exception, and `AwsError` tells
//! the wire layer its code and message (500 for `Internal`).

macro_rules! query_errors {
    ($($variant:ident => $code:literal),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum QueryError {
            $(#[error("{0}")] $variant(String),)*
        }

        impl opentrail_wire::AwsError for QueryError {
            /// The exception name botocore's model gives this error.
            fn code(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $code,)*
                }
            }

            fn message(&self) -> String {
                match self {
                    $(Self::$variant(m) => m.clone(),)*
                }
            }
        }
    };
}

query_errors! {
    QueryIdNotFound => "QueryIdNotFoundException",
    InactiveQuery => "InactiveQueryException",
    MaxConcurrentQueries => "MaxConcurrentQueriesException",
    InvalidQueryStatement => "InvalidQueryStatementException",
    EventDataStoreNotFound => "EventDataStoreNotFoundException",
    EventDataStoreArnInvalid => "EventDataStoreARNInvalidException",
    InactiveEventDataStore => "InactiveEventDataStoreException",
    InvalidParameter => "InvalidParameterException",
    InvalidNextToken => "InvalidNextTokenException",
    InvalidMaxResults => "InvalidMaxResultsException",
    InvalidDateRange => "InvalidDateRangeException",
    InvalidQueryStatus => "InvalidQueryStatusException",
    UnsupportedOperation => "UnsupportedOperationException",
    InvalidS3BucketName => "InvalidS3BucketNameException",
    InvalidS3Prefix => "InvalidS3PrefixException",
    S3BucketDoesNotExist => "S3BucketDoesNotExistException",
    InsufficientS3BucketPolicy => "InsufficientS3BucketPolicyException",
    Internal => "InternalFailure",
}

impl From<opentrail_meta::MetaError> for QueryError {
    fn from(e: opentrail_meta::MetaError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<opentrail_stores::StoreError> for QueryError {
    fn from(e: opentrail_stores::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}
