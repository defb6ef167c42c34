//! Event data store errors; each variant is exactly one CloudTrail exception, and
//! `AwsError` tells the wire layer its code, message and status (500 for `Internal`).

macro_rules! store_errors {
    ($($variant:ident => $code:literal),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum StoreError {
            $(#[error("{0}")] $variant(String),)*
        }

        impl opentrail_wire::AwsError for StoreError {
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

store_errors! {
    EventDataStoreAlreadyExists => "EventDataStoreAlreadyExistsException",
    EventDataStoreMaxLimitExceeded => "EventDataStoreMaxLimitExceededException",
    EventDataStoreArnInvalid => "EventDataStoreARNInvalidException",
    EventDataStoreNotFound => "EventDataStoreNotFoundException",
    EventDataStoreTerminationProtected => "EventDataStoreTerminationProtectedException",
    InvalidEventDataStoreStatus => "InvalidEventDataStoreStatusException",
    InvalidEventDataStoreCategory => "InvalidEventDataStoreCategoryException",
    InactiveEventDataStore => "InactiveEventDataStoreException",
    InvalidEventSelectors => "InvalidEventSelectorsException",
    InvalidParameter => "InvalidParameterException",
    InvalidKmsKeyId => "InvalidKmsKeyIdException",
    InvalidTagParameter => "InvalidTagParameterException",
    TagsLimitExceeded => "TagsLimitExceededException",
    ResourceNotFound => "ResourceNotFoundException",
    InvalidNextToken => "InvalidNextTokenException",
    InvalidMaxResults => "InvalidMaxResultsException",
    OrganizationsNotInUse => "OrganizationsNotInUseException",
    ChannelArnInvalid => "ChannelARNInvalidException",
    ChannelNotFound => "ChannelNotFoundException",
    ChannelAlreadyExists => "ChannelAlreadyExistsException",
    ChannelMaxLimitExceeded => "ChannelMaxLimitExceededException",
    ChannelExistsForEds => "ChannelExistsForEDSException",
    InvalidSource => "InvalidSourceException",
    ResourceArnNotValid => "ResourceARNNotValidException",
    ResourcePolicyNotValid => "ResourcePolicyNotValidException",
    ResourcePolicyNotFound => "ResourcePolicyNotFoundException",
    ResourceTypeNotSupported => "ResourceTypeNotSupportedException",
    InvalidParameterCombination => "InvalidParameterCombinationException",
    UnsupportedOperation => "UnsupportedOperationException",
    InvalidInsightSelectors => "InvalidInsightSelectorsException",
    InsightNotEnabled => "InsightNotEnabledException",
    ConcurrentModification => "ConcurrentModificationException",
    EventDataStoreFederationEnabled => "EventDataStoreFederationEnabledException",
    Internal => "InternalFailure",
}

impl From<opentrail_meta::MetaError> for StoreError {
    fn from(e: opentrail_meta::MetaError) -> Self {
        Self::Internal(e.to_string())
    }
}
