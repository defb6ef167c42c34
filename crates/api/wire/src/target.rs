//! `X-Amz-Target` parsing.

use crate::ApiError;

/// The long form sent by the AWS CLI and boto3, and the short form sent by Smithy SDKs.
pub const CLOUDTRAIL_TARGET_PREFIXES: [&str; 2] = [
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.",
    "CloudTrail_20131101.",
];

/// Returns the operation name a target header names; the caller checks it exists.
pub fn parse_target<'a>(target: Option<&'a str>, prefixes: &[&str]) -> Result<&'a str, ApiError> {
    let Some(target) = target else {
        return Err(ApiError::new(
            "UnknownOperationException",
            "missing X-Amz-Target header naming the operation",
        ));
    };
    prefixes
        .iter()
        .find_map(|prefix| target.strip_prefix(prefix))
        .filter(|op| !op.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                "UnknownOperationException",
                format!("unknown operation target {target}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_forms() {
        let p = &CLOUDTRAIL_TARGET_PREFIXES;
        assert_eq!(
            parse_target(
                Some("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateTrail"),
                p
            ),
            Ok("CreateTrail")
        );
        assert_eq!(
            parse_target(Some("CloudTrail_20131101.DescribeTrails"), p),
            Ok("DescribeTrails")
        );
        assert!(parse_target(Some("Kinesis_20131202.ListStreams"), p).is_err());
        assert!(parse_target(Some("CloudTrail_20131101."), p).is_err());
        assert!(parse_target(None, p).is_err());
    }
}
