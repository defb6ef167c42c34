//! Trail management errors; each variant is exactly one CloudTrail exception, and
//! `AwsError` tells the wire layer its code, message and status (500 for `Internal`).

macro_rules! trail_errors {
    ($($variant:ident => $code:literal),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum TrailError {
            $(#[error("{0}")] $variant(String),)*
        }

        impl opentrail_wire::AwsError for TrailError {
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

trail_errors! {
    TrailNotFound => "TrailNotFoundException",
    TrailAlreadyExists => "TrailAlreadyExistsException",
    MaximumNumberOfTrailsExceeded => "MaximumNumberOfTrailsExceededException",
    InvalidTrailName => "InvalidTrailNameException",
    CloudTrailArnInvalid => "CloudTrailARNInvalidException",
    InvalidHomeRegion => "InvalidHomeRegionException",
    S3BucketDoesNotExist => "S3BucketDoesNotExistException",
    InsufficientS3BucketPolicy => "InsufficientS3BucketPolicyException",
    InvalidS3BucketName => "InvalidS3BucketNameException",
    InvalidS3Prefix => "InvalidS3PrefixException",
    InvalidSnsTopicName => "InvalidSnsTopicNameException",
    InsufficientSnsTopicPolicy => "InsufficientSnsTopicPolicyException",
    InvalidKmsKeyId => "InvalidKmsKeyIdException",
    InvalidCloudWatchLogsLogGroupArn => "InvalidCloudWatchLogsLogGroupArnException",
    InvalidCloudWatchLogsRoleArn => "InvalidCloudWatchLogsRoleArnException",
    InvalidParameterCombination => "InvalidParameterCombinationException",
    InvalidParameter => "InvalidParameterException",
    InvalidEventSelectors => "InvalidEventSelectorsException",
    InvalidInsightSelectors => "InvalidInsightSelectorsException",
    InsightNotEnabled => "InsightNotEnabledException",
    InvalidTagParameter => "InvalidTagParameterException",
    TagsLimitExceeded => "TagsLimitExceededException",
    ResourceNotFound => "ResourceNotFoundException",
    ResourceTypeNotSupported => "ResourceTypeNotSupportedException",
    InvalidNextToken => "InvalidNextTokenException",
    OrganizationsNotInUse => "OrganizationsNotInUseException",
    Internal => "InternalFailure",
}

impl From<opentrail_meta::MetaError> for TrailError {
    fn from(e: opentrail_meta::MetaError) -> Self {
        Self::Internal(e.to_string())
    }
}
