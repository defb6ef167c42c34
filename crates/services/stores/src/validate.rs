//! Validation of event data store settings, with the CloudTrail exception each rule raises.
//! The tag rules are the trails' (crates/services/trails/src/validate.rs), answered with
//! this service's errors.

use crate::error::StoreError;
use crate::record::max_retention;
use opentrail_model::{AccountId, Arn, Region};
use opentrail_operations::{BillingMode, Tag};

pub const MAX_TAGS_PER_RESOURCE: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// botocore `EventDataStoreName`: 3 to 128 of letters, digits, `.`, `_` and `-`.
pub fn name(name: &str) -> Result<(), StoreError> {
    let len = name.chars().count();
    if !(3..=128).contains(&len) {
        return Err(StoreError::InvalidParameter(format!(
            "Event data store name {name} is {len} characters long; names must be 3 to 128 characters"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(StoreError::InvalidParameter(format!(
            "Event data store name {name} is not valid; use only letters, digits, periods, underscores and hyphens"
        )));
    }
    Ok(())
}

/// ListEventDataStores' `MaxResults`: 1 to 1000.
pub fn max_results(value: i32) -> Result<usize, StoreError> {
    if !(1..=1000).contains(&value) {
        return Err(StoreError::InvalidMaxResults(format!(
            "MaxResults {value} is not valid; specify 1 to 1000"
        )));
    }
    Ok(usize::try_from(value).unwrap_or(1000))
}

/// 7 days up to the billing mode's maximum (the model checks 7..=3653 already).
pub fn retention(days: i32, mode: &BillingMode) -> Result<(), StoreError> {
    let max = max_retention(mode);
    if (7..=max).contains(&days) {
        return Ok(());
    }
    Err(StoreError::InvalidParameter(format!(
        "RetentionPeriod {days} is not valid for billing mode {}; specify 7 to {max} days",
        mode.as_str()
    )))
}

pub fn billing_mode(mode: &BillingMode) -> Result<(), StoreError> {
    match mode {
        BillingMode::Unknown(value) => Err(StoreError::InvalidParameter(format!(
            "BillingMode {value} is not valid; valid values are EXTENDABLE_RETENTION_PRICING and FIXED_RETENTION_PRICING"
        ))),
        _ => Ok(()),
    }
}

fn is_key_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_multi_region_key_id(id: &str) -> bool {
    id.strip_prefix("mrk-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_alias_name(name: &str) -> bool {
    (1..=250).contains(&name.len())
        && !name.starts_with("aws/")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
}

/// Accepts a key id, key ARN, alias name or alias ARN; returns the full ARN.
pub fn kms_key_id(value: &str, region: &Region, account: &AccountId) -> Result<String, StoreError> {
    let invalid = || {
        StoreError::InvalidKmsKeyId(format!(
            "Invalid KMS key id: {value}. Specify a key id, key ARN, alias name or alias ARN"
        ))
    };
    let resource_ok = |resource: &str| {
        if let Some(id) = resource.strip_prefix("key/") {
            return is_key_uuid(id) || is_multi_region_key_id(id);
        }
        resource.strip_prefix("alias/").is_some_and(is_alias_name)
    };
    if value.starts_with("arn:") {
        let arn = Arn::parse(value).map_err(|_| invalid())?;
        let well_formed = arn.service == "kms"
            && Region::parse(&arn.region).is_ok()
            && AccountId::parse(&arn.account).is_ok()
            && resource_ok(&arn.resource);
        return well_formed.then(|| value.to_owned()).ok_or_else(invalid);
    }
    let resource = if value.starts_with("alias/") {
        value.to_owned()
    } else {
        format!("key/{value}")
    };
    if !resource_ok(&resource) {
        return Err(invalid());
    }
    Ok(format!("arn:aws:kms:{region}:{account}:{resource}"))
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

pub fn tags(tags: &[Tag]) -> Result<(), StoreError> {
    let invalid = StoreError::InvalidTagParameter;
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        let key = &tag.key;
        let key_len = key.chars().count();
        if !(1..=MAX_TAG_KEY).contains(&key_len) {
            return Err(invalid(format!(
                "Tag key must be 1 to {MAX_TAG_KEY} characters long; '{key}' has {key_len}"
            )));
        }
        if !key.chars().all(is_tag_char) {
            return Err(invalid(format!(
                "Tag key '{key}' contains characters other than letters, digits, spaces and _.:/=+-@"
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!(
                "Tag key '{key}' uses the reserved prefix aws:"
            )));
        }
        let value = tag.value.as_deref().unwrap_or("");
        if value.chars().count() > MAX_TAG_VALUE {
            return Err(invalid(format!(
                "Tag value for key '{key}' is longer than {MAX_TAG_VALUE} characters"
            )));
        }
        if !value.chars().all(is_tag_char) {
            return Err(invalid(format!(
                "Tag value for key '{key}' contains characters other than letters, digits, spaces and _.:/=+-@"
            )));
        }
        if !seen.insert(key.as_str()) {
            return Err(invalid(format!(
                "Tag key '{key}' appears more than once in the request"
            )));
        }
    }
    Ok(())
}

/// Adds or replaces tags; more than 50 on the resource is TagsLimitExceededException.
pub fn merge_tags(
    existing: &mut Vec<Tag>,
    added: Vec<Tag>,
    resource: &str,
) -> Result<(), StoreError> {
    let mut merged = existing.clone();
    for tag in added {
        match merged.iter_mut().find(|t| t.key == tag.key) {
            Some(slot) => slot.value = tag.value,
            None => merged.push(tag),
        }
    }
    if merged.len() > MAX_TAGS_PER_RESOURCE {
        return Err(StoreError::TagsLimitExceeded(format!(
            "Resource {resource} would have {} tags; the limit is {MAX_TAGS_PER_RESOURCE}",
            merged.len()
        )));
    }
    *existing = merged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_depends_on_the_billing_mode() {
        let fixed = BillingMode::FixedRetentionPricing;
        let extendable = BillingMode::ExtendableRetentionPricing;
        assert!(retention(7, &fixed).is_ok());
        assert!(retention(2557, &fixed).is_ok());
        assert!(retention(2558, &fixed).is_err());
        assert!(retention(3653, &extendable).is_ok());
        assert!(retention(3654, &extendable).is_err());
        assert!(retention(6, &extendable).is_err());
    }

    #[test]
    fn kms_keys_become_arns() {
        let region = Region::parse("us-east-1").unwrap();
        let account = AccountId::parse("111122223333").unwrap();
        assert_eq!(
            kms_key_id("alias/lake", &region, &account).unwrap(),
            "arn:aws:kms:us-east-1:111122223333:alias/lake"
        );
        assert_eq!(
            kms_key_id("12345678-1234-1234-1234-123456789012", &region, &account).unwrap(),
            "arn:aws:kms:us-east-1:111122223333:key/12345678-1234-1234-1234-123456789012"
        );
        assert!(kms_key_id("not-a-key", &region, &account).is_err());
        assert!(kms_key_id("arn:aws:s3:::bucket", &region, &account).is_err());
    }
}
