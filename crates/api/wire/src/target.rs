//! `X-Amz-Target` parsing: the one place a request's operation is named.

use crate::ApiError;
use opentrail_operations::{Operation, Service, SERVICE_PREFIXES};

/// The operation a JSON 1.1 request's target header names: the long form sent by the AWS
/// CLI and boto3 or the short form sent by Smithy SDKs. Only CloudTrail's JSON 1.1
/// operations are named this way (PutAuditEvents is rest-json).
pub fn parse_target(target: Option<&str>) -> Result<Operation, ApiError> {
    let Some(target) = target else {
        return Err(ApiError::new(
            "UnknownOperationException",
            "missing X-Amz-Target header naming the operation",
        ));
    };
    let named = SERVICE_PREFIXES
        .iter()
        .find_map(|prefix| target.strip_prefix(prefix))
        .filter(|op| !op.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                "UnknownOperationException",
                format!("unknown operation target {target}"),
            )
        })?;
    Operation::from_name(named)
        .filter(|op| op.service() == Service::CloudTrail)
        .ok_or_else(|| {
            ApiError::new(
                "UnknownOperationException",
                format!("unknown operation {named}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_forms() {
        assert_eq!(
            parse_target(Some(
                "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateTrail"
            )),
            Ok(Operation::CreateTrail)
        );
        assert_eq!(
            parse_target(Some("CloudTrail_20131101.DescribeTrails")),
            Ok(Operation::DescribeTrails)
        );
        assert!(parse_target(Some("Kinesis_20131202.ListStreams")).is_err());
        assert!(parse_target(Some("CloudTrail_20131101.")).is_err());
        assert!(parse_target(Some("CloudTrail_20131101.Nope")).is_err());
        assert!(parse_target(Some("CloudTrail_20131101.PutAuditEvents")).is_err());
        assert!(parse_target(None).is_err());
    }
}
