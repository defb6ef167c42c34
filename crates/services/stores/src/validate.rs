//! Validation of event data store settings, with the CloudTrail exception each rule raises.
//! The KMS key and tag rules are shared with trails (`opentrail_model::resource_rules`),
//! answered with this service's errors.

use crate::error::StoreError;
use crate::record::max_retention;
use opentrail_model::{AccountId, Region};
use opentrail_operations::{BillingMode, Tag};

use opentrail_model::resource_rules;

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

/// Accepts a key id, key ARN, alias name or alias ARN; returns the full ARN.
pub fn kms_key_id(value: &str, region: &Region, account: &AccountId) -> Result<String, StoreError> {
    resource_rules::kms_key_arn(value, region, account).map_err(StoreError::InvalidKmsKeyId)
}

pub fn tags(tags: &[Tag]) -> Result<(), StoreError> {
    resource_rules::check_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_deref())))
        .map_err(StoreError::InvalidTagParameter)
}

/// Adds or replaces tags; more than 50 on the resource is TagsLimitExceededException.
pub fn merge_tags(
    existing: &mut Vec<Tag>,
    added: Vec<Tag>,
    resource: &str,
) -> Result<(), StoreError> {
    *existing = resource_rules::merge_tags(existing, added, |t| t.key.as_str(), resource)
        .map_err(StoreError::TagsLimitExceeded)?;
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
