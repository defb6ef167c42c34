//! Validation of trail settings, with the CloudTrail exception each rule raises.

use crate::error::TrailError;
use opentrail_model::{AccountId, Arn, Region};
use opentrail_operations::Tag;

pub const MAX_S3_KEY_PREFIX: usize = 200;
use opentrail_model::resource_rules;

pub fn s3_bucket_name(name: &str) -> Result<(), TrailError> {
    opentrail_objstore::validate_bucket_name(name).map_err(|why| {
        TrailError::InvalidS3BucketName(format!("Invalid S3 bucket name {name}: {why}"))
    })
}

/// Empty means "no prefix" (UpdateTrail clears it that way). Otherwise at most 200
/// characters of `/`-separated segments, none empty (no leading, trailing or double `/`)
/// and none `.` or `..`, without control characters: every prefix accepted here makes
/// object keys both S3 and the embedded buckets can write.
pub fn s3_key_prefix(prefix: &str) -> Result<Option<String>, TrailError> {
    if prefix.chars().count() > MAX_S3_KEY_PREFIX {
        return Err(TrailError::InvalidS3Prefix(format!(
            "S3 key prefix is {} characters long; the maximum is {MAX_S3_KEY_PREFIX}",
            prefix.chars().count()
        )));
    }
    if prefix.is_empty() {
        return Ok(None);
    }
    let invalid =
        |why: &str| TrailError::InvalidS3Prefix(format!("Invalid S3 key prefix {prefix:?}: {why}"));
    if prefix.chars().any(char::is_control) {
        return Err(invalid("control characters are not allowed"));
    }
    for segment in prefix.split('/') {
        match segment {
            "" => return Err(invalid("it must not start or end with '/' or contain '//'")),
            "." | ".." => return Err(invalid("'.' and '..' segments are not allowed")),
            _ => {}
        }
    }
    Ok(Some(prefix.to_owned()))
}

fn is_topic_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Accepts a topic name or ARN and returns the topic ARN; empty means "no topic".
pub fn sns_topic(
    value: &str,
    region: &Region,
    account: &AccountId,
) -> Result<Option<String>, TrailError> {
    if value.is_empty() {
        return Ok(None);
    }
    let invalid =
        || TrailError::InvalidSnsTopicName(format!("Invalid SNS topic name or ARN: {value}"));
    if value.starts_with("arn:") {
        let arn = Arn::parse(value).map_err(|_| invalid())?;
        let well_formed = arn.service == "sns"
            && Region::parse(&arn.region).is_ok()
            && AccountId::parse(&arn.account).is_ok()
            && is_topic_name(&arn.resource);
        return well_formed
            .then(|| Some(value.to_owned()))
            .ok_or_else(invalid);
    }
    if !is_topic_name(value) {
        return Err(invalid());
    }
    Ok(Some(format!("arn:aws:sns:{region}:{account}:{value}")))
}

/// Accepts a key id, key ARN, alias name or alias ARN; returns the full ARN. Empty clears.
pub fn kms_key_id(
    value: &str,
    region: &Region,
    account: &AccountId,
) -> Result<Option<String>, TrailError> {
    if value.is_empty() {
        return Ok(None);
    }
    resource_rules::kms_key_arn(value, region, account)
        .map(Some)
        .map_err(TrailError::InvalidKmsKeyId)
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>:*`
pub fn cloud_watch_logs_log_group_arn(value: &str) -> Result<(), TrailError> {
    let invalid = || {
        TrailError::InvalidCloudWatchLogsLogGroupArn(format!(
            "Invalid CloudWatch Logs log group ARN {value}; expected arn:aws:logs:<region>:<account>:log-group:<name>:*"
        ))
    };
    let arn = Arn::parse(value).map_err(|_| invalid())?;
    let name = arn
        .resource
        .strip_prefix("log-group:")
        .and_then(|r| r.strip_suffix(":*"))
        .ok_or_else(invalid)?;
    let name_ok = (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'));
    let well_formed = arn.service == "logs"
        && Region::parse(&arn.region).is_ok()
        && AccountId::parse(&arn.account).is_ok()
        && name_ok;
    well_formed.then_some(()).ok_or_else(invalid)
}

/// `arn:aws:iam::<account>:role/[path/]<name>`
pub fn cloud_watch_logs_role_arn(value: &str) -> Result<(), TrailError> {
    let invalid = || {
        TrailError::InvalidCloudWatchLogsRoleArn(format!(
            "Invalid CloudWatch Logs role ARN {value}; expected arn:aws:iam::<account>:role/<name>"
        ))
    };
    let arn = Arn::parse(value).map_err(|_| invalid())?;
    let name_ok = arn.resource.strip_prefix("role/").is_some_and(|path| {
        !path.is_empty()
            && !path.ends_with('/')
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
    });
    let well_formed = arn.service == "iam"
        && arn.region.is_empty()
        && AccountId::parse(&arn.account).is_ok()
        && name_ok;
    well_formed.then_some(()).ok_or_else(invalid)
}

/// Both or neither: a log group without a role (or the reverse) cannot deliver.
pub fn cloud_watch_logs_pair(group: Option<&str>, role: Option<&str>) -> Result<(), TrailError> {
    match (group, role) {
        (Some(_), None) => Err(TrailError::InvalidCloudWatchLogsRoleArn(
            "You must specify a CloudWatch Logs role ARN together with the log group ARN".into(),
        )),
        (None, Some(_)) => Err(TrailError::InvalidCloudWatchLogsLogGroupArn(
            "You must specify a CloudWatch Logs log group ARN together with the role ARN".into(),
        )),
        _ => Ok(()),
    }
}

pub fn tags(tags: &[Tag]) -> Result<(), TrailError> {
    resource_rules::check_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_deref())))
        .map_err(TrailError::InvalidTagParameter)
}

/// Adds or replaces tags, keeping first-insertion order; errors past the per-resource limit.
pub fn merge_tags(
    existing: &mut Vec<Tag>,
    added: Vec<Tag>,
    resource: &str,
) -> Result<(), TrailError> {
    *existing = resource_rules::merge_tags(existing, added, |t| t.key.as_str(), resource)
        .map_err(TrailError::TagsLimitExceeded)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_wire::AwsError;

    fn ctx() -> (Region, AccountId) {
        (
            Region::parse("us-east-1").unwrap(),
            AccountId::parse("123456789012").unwrap(),
        )
    }

    #[test]
    fn s3_key_prefixes_that_make_writable_keys() {
        for good in [
            "audit",
            "a/b/c",
            "team-1/logs_2024",
            "x..y/.hidden",
            "ü/日本",
        ] {
            assert_eq!(
                s3_key_prefix(good).unwrap().as_deref(),
                Some(good),
                "{good}"
            );
        }
        assert_eq!(s3_key_prefix("").unwrap(), None);
        assert!(s3_key_prefix(&"x".repeat(200)).is_ok());
        for bad in [
            "../x",
            "/abs",
            "a/",
            "a//b",
            "/",
            ".",
            "a/./b",
            "a/..",
            "a\0b",
            "a\nb",
            &"x".repeat(201),
        ] {
            assert_eq!(
                s3_key_prefix(bad).unwrap_err().code(),
                "InvalidS3PrefixException",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sns_names_become_arns() {
        let (r, a) = ctx();
        assert_eq!(
            sns_topic("alerts", &r, &a).unwrap().unwrap(),
            "arn:aws:sns:us-east-1:123456789012:alerts"
        );
        assert!(sns_topic("arn:aws:sns:eu-west-1:123456789012:x-y_z", &r, &a).is_ok());
        for bad in [
            "bad topic",
            "arn:aws:sqs:us-east-1:123456789012:q",
            "a.b",
            &"x".repeat(257),
        ] {
            assert_eq!(
                sns_topic(bad, &r, &a).unwrap_err().code(),
                "InvalidSnsTopicNameException",
                "{bad}"
            );
        }
        assert_eq!(sns_topic("", &r, &a).unwrap(), None);
    }

    #[test]
    fn kms_forms() {
        let (r, a) = ctx();
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            kms_key_id(id, &r, &a).unwrap().unwrap(),
            format!("arn:aws:kms:us-east-1:123456789012:key/{id}")
        );
        assert_eq!(
            kms_key_id("alias/my-key", &r, &a).unwrap().unwrap(),
            "arn:aws:kms:us-east-1:123456789012:alias/my-key"
        );
        assert!(kms_key_id(
            &format!("arn:aws:kms:us-west-2:111122223333:key/{id}"),
            &r,
            &a
        )
        .is_ok());
        for bad in [
            "not-a-key",
            "alias/aws/s3",
            "arn:aws:kms:us-east-1:123456789012:key/xyz",
        ] {
            assert_eq!(
                kms_key_id(bad, &r, &a).unwrap_err().code(),
                "InvalidKmsKeyIdException",
                "{bad}"
            );
        }
    }

    #[test]
    fn cloud_watch_arns() {
        assert!(cloud_watch_logs_log_group_arn(
            "arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/logs:*"
        )
        .is_ok());
        assert!(
            cloud_watch_logs_log_group_arn("arn:aws:logs:us-east-1:123456789012:log-group:x")
                .is_err()
        );
        assert!(
            cloud_watch_logs_role_arn("arn:aws:iam::123456789012:role/CloudTrail_CWLogs").is_ok()
        );
        assert!(cloud_watch_logs_role_arn("arn:aws:iam:us-east-1:123456789012:role/x").is_err());
        assert_eq!(
            cloud_watch_logs_pair(Some("g"), None).unwrap_err().code(),
            "InvalidCloudWatchLogsRoleArnException"
        );
        assert_eq!(
            cloud_watch_logs_pair(None, Some("r")).unwrap_err().code(),
            "InvalidCloudWatchLogsLogGroupArnException"
        );
    }

    #[test]
    fn tag_rules_and_limit() {
        let t = |k: &str, v: &str| Tag {
            key: k.into(),
            value: Some(v.into()),
        };
        assert!(tags(&[t("env", "prod"), t("team name", "a@b.c")]).is_ok());
        for bad in [
            vec![t("", "v")],
            vec![t("aws:x", "v")],
            vec![t("k", &"v".repeat(257))],
            vec![t("a", "1"), t("a", "2")],
            vec![t("semi;colon", "v")],
        ] {
            assert_eq!(
                tags(&bad).unwrap_err().code(),
                "InvalidTagParameterException"
            );
        }
        let mut existing: Vec<Tag> = (0..49).map(|i| t(&format!("k{i}"), "v")).collect();
        merge_tags(&mut existing, vec![t("k0", "new"), t("k49", "v")], "r").unwrap();
        assert_eq!(existing.len(), 50);
        assert_eq!(existing[0].value.as_deref(), Some("new"));
        assert_eq!(
            merge_tags(&mut existing, vec![t("k50", "v")], "r")
                .unwrap_err()
                .code(),
            "TagsLimitExceededException"
        );
        assert_eq!(existing.len(), 50);
    }
}
