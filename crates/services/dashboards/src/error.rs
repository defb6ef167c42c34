//! Dashboard errors; each variant is exactly one CloudTrail exception, and `AwsError` tells
//! the wire layer its code and message (500 for `Internal`).

macro_rules! dashboard_errors {
    ($($variant:ident => $code:literal),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum DashboardError {
            $(#[error("{0}")] $variant(String),)*
        }

        impl opentrail_wire::AwsError for DashboardError {
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

dashboard_errors! {
    Conflict => "ConflictException",
    ResourceNotFound => "ResourceNotFoundException",
    EventDataStoreNotFound => "EventDataStoreNotFoundException",
    InactiveEventDataStore => "InactiveEventDataStoreException",
    InvalidQueryStatement => "InvalidQueryStatementException",
    ServiceQuotaExceeded => "ServiceQuotaExceededException",
    UnsupportedOperation => "UnsupportedOperationException",
    InvalidTagParameter => "InvalidTagParameterException",
    TagsLimitExceeded => "TagsLimitExceededException",
    InvalidNextToken => "InvalidNextTokenException",
    Validation => "ValidationException",
    Internal => "InternalFailure",
}

impl From<opentrail_meta::MetaError> for DashboardError {
    fn from(e: opentrail_meta::MetaError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<opentrail_queries::QueryError> for DashboardError {
    /// A widget query's StartQuery error, as the dashboard operations model it.
    fn from(e: opentrail_queries::QueryError) -> Self {
        use opentrail_queries::QueryError as Q;
        match e {
            Q::InvalidQueryStatement(m) => Self::InvalidQueryStatement(m),
            Q::EventDataStoreNotFound(m) | Q::EventDataStoreArnInvalid(m) => {
                Self::EventDataStoreNotFound(m)
            }
            Q::InactiveEventDataStore(m) => Self::InactiveEventDataStore(m),
            Q::MaxConcurrentQueries(m) => Self::ServiceQuotaExceeded(m),
            Q::InvalidParameter(m) => Self::Validation(m),
            other => Self::Internal(other.to_string()),
        }
    }
}
