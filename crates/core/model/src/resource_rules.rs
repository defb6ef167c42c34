//! Rules CloudTrail applies alike to every resource that takes a KMS key or tags (trails,
//! event data stores, channels). Each service answers a broken rule with its own error type.

use crate::{AccountId, Arn, Region};

/// Most tags one resource may carry.
pub const MAX_TAGS_PER_RESOURCE: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

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

/// A KMS key id, key ARN, alias name or alias ARN as the full ARN (ids and aliases in the
/// caller's region and account); `Err` with the message for `InvalidKmsKeyIdException`.
pub fn kms_key_arn(value: &str, region: &Region, account: &AccountId) -> Result<String, String> {
    let invalid = || {
        format!("Invalid KMS key id: {value}. Specify a key id, key ARN, alias name or alias ARN")
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

/// Checks the tags of one request, given as (key, value); `Err` with the message for
/// `InvalidTagParameterException` naming the first broken rule.
pub fn check_tags<'a>(
    tags: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (key, value) in tags {
        let key_len = key.chars().count();
        if !(1..=MAX_TAG_KEY).contains(&key_len) {
            return Err(format!(
                "Tag key must be 1 to {MAX_TAG_KEY} characters long; '{key}' has {key_len}"
            ));
        }
        if !key.chars().all(is_tag_char) {
            return Err(format!(
                "Tag key '{key}' contains characters other than letters, digits, spaces and _.:/=+-@"
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!("Tag key '{key}' uses the reserved prefix aws:"));
        }
        let value = value.unwrap_or("");
        if value.chars().count() > MAX_TAG_VALUE {
            return Err(format!(
                "Tag value for key '{key}' is longer than {MAX_TAG_VALUE} characters"
            ));
        }
        if !value.chars().all(is_tag_char) {
            return Err(format!(
                "Tag value for key '{key}' contains characters other than letters, digits, spaces and _.:/=+-@"
            ));
        }
        if !seen.insert(key) {
            return Err(format!(
                "Tag key '{key}' appears more than once in the request"
            ));
        }
    }
    Ok(())
}

/// `existing` with `added` applied: a tag with a key already there replaces its value, a new
/// key is appended (first-insertion order kept). `Err` with the message for
/// `TagsLimitExceededException` when `resource` would carry more than the limit.
pub fn merge_tags<T>(
    existing: &[T],
    added: Vec<T>,
    key: impl Fn(&T) -> &str,
    resource: &str,
) -> Result<Vec<T>, String>
where
    T: Clone,
{
    let mut merged = existing.to_vec();
    for tag in added {
        match merged.iter().position(|t| key(t) == key(&tag)) {
            Some(at) => merged[at] = tag,
            None => merged.push(tag),
        }
    }
    if merged.len() > MAX_TAGS_PER_RESOURCE {
        return Err(format!(
            "Resource {resource} would have {} tags; the limit is {MAX_TAGS_PER_RESOURCE}",
            merged.len()
        ));
    }
    Ok(merged)
}

/// Drops from `tags` every tag whose key one of `removed` names (RemoveTags: values ignored).
pub fn remove_tags<T>(tags: &mut Vec<T>, removed: &[T], key: impl Fn(&T) -> &str) {
    tags.retain(|tag| !removed.iter().any(|gone| key(gone) == key(tag)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_keys_become_arns() {
        let region = Region::parse("us-east-1").unwrap();
        let account = AccountId::parse("111122223333").unwrap();
        assert_eq!(
            kms_key_arn("alias/lake", &region, &account).unwrap(),
            "arn:aws:kms:us-east-1:111122223333:alias/lake"
        );
        assert_eq!(
            kms_key_arn("mrk-0123456789abcdef0123456789abcdef", &region, &account).unwrap(),
            "arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
        );
        assert!(kms_key_arn("alias/aws/s3", &region, &account).is_err());
        assert!(kms_key_arn("arn:aws:s3:::bucket", &region, &account).is_err());
    }

    #[test]
    fn tag_rules() {
        assert!(check_tags([("team", Some("security"))]).is_ok());
        assert!(check_tags([("", None)]).unwrap_err().contains("1 to 128"));
        assert!(check_tags([("aws:x", None)])
            .unwrap_err()
            .contains("reserved"));
        assert!(check_tags([("a", None), ("a", Some("b"))])
            .unwrap_err()
            .contains("more than once"));
        assert!(check_tags([("k", Some("bad#"))])
            .unwrap_err()
            .contains("value"));
    }

    #[test]
    fn merging_replaces_values_and_counts_the_limit() {
        fn key(t: &(String, u32)) -> &str {
            t.0.as_str()
        }
        let existing = vec![("a".to_owned(), 1), ("b".to_owned(), 2)];
        let merged = merge_tags(
            &existing,
            vec![("b".to_owned(), 3), ("c".to_owned(), 4)],
            key,
            "r",
        )
        .unwrap();
        assert_eq!(
            merged,
            vec![("a".into(), 1), ("b".into(), 3), ("c".into(), 4)]
        );
        let many: Vec<(String, u32)> = (0..51).map(|i| (i.to_string(), i)).collect();
        assert!(merge_tags(&[], many, key, "r")
            .unwrap_err()
            .contains("limit is 50"));
    }
}
