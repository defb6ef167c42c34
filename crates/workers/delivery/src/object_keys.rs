//! The object keys CloudTrail writes: log files and digest files, with the optional
//! trail prefix, exactly as `aws cloudtrail validate-logs` computes and matches them.

use chrono::{DateTime, Utc};
use opentrail_model::{AccountId, Region, TrailName};
use rand::distributions::Alphanumeric;
use rand::Rng;

/// Characters in the random part of a log file name.
pub const LOG_FILE_SUFFIX_LEN: usize = 16;

/// `[prefix/]AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<suffix>.json.gz`
/// where the time is the delivery time.
pub fn log_file_key(
    prefix: Option<&str>,
    account: &AccountId,
    region: &Region,
    delivered_at: DateTime<Utc>,
    suffix: &str,
) -> String {
    debug_assert_eq!(suffix.len(), LOG_FILE_SUFFIX_LEN);
    let day = delivered_at.format("%Y/%m/%d");
    let minute = delivered_at.format("%Y%m%dT%H%MZ");
    with_prefix(
        prefix,
        format!(
            "AWSLogs/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{minute}_{suffix}.json.gz"
        ),
    )
}

/// The part of a key that names an Insights log file.
pub const INSIGHT_KEY_PART: &str = "/CloudTrail-Insight/";

/// `[prefix/]AWSLogs/<acct>/CloudTrail-Insight/<region>/YYYY/MM/DD/<acct>_CloudTrail-Insight_<region>_<YYYYMMDDTHHmmZ>_<suffix>.json.gz`
/// where the time is the delivery time: a log file of Insights events.
pub fn insight_log_file_key(
    prefix: Option<&str>,
    account: &AccountId,
    region: &Region,
    delivered_at: DateTime<Utc>,
    suffix: &str,
) -> String {
    debug_assert_eq!(suffix.len(), LOG_FILE_SUFFIX_LEN);
    let day = delivered_at.format("%Y/%m/%d");
    let minute = delivered_at.format("%Y%m%dT%H%MZ");
    with_prefix(
        prefix,
        format!(
            "AWSLogs/{account}/CloudTrail-Insight/{region}/{day}/{account}_CloudTrail-Insight_{region}_{minute}_{suffix}.json.gz"
        ),
    )
}

/// 16 random ASCII letters and digits, the unique part of a log file name.
pub fn random_log_file_suffix() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(LOG_FILE_SUFFIX_LEN)
        .map(char::from)
        .collect()
}

/// 16 ASCII letters and digits determined by the lane and the log offset of the file's
/// first record: the same file written again after a crash gets the same name.
pub fn log_file_suffix(trail: &str, region: &Region, first_offset: u64) -> String {
    use sha2::{Digest, Sha256};
    const ALPHANUMERIC: &[u8; 62] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let hash = Sha256::digest(format!("{trail}|{region}|{first_offset}").as_bytes());
    hash.iter()
        .take(LOG_FILE_SUFFIX_LEN)
        .map(|b| char::from(ALPHANUMERIC[usize::from(*b) % ALPHANUMERIC.len()]))
        .collect()
}

/// `[prefix/]AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<homeRegion>_<YYYYMMDDTHHMMSSZ>.json.gz`
/// where the time is the digest's end time.
pub fn digest_key(
    prefix: Option<&str>,
    account: &AccountId,
    region: &Region,
    trail: &TrailName,
    home_region: &Region,
    digest_end: DateTime<Utc>,
) -> String {
    let day = digest_end.format("%Y/%m/%d");
    let end = compact_time(digest_end);
    with_prefix(
        prefix,
        format!(
            "AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_{region}_{trail}_{home_region}_{end}.json.gz"
        ),
    )
}

/// The listing prefix of one region's digests: `[prefix/]AWSLogs/<acct>/CloudTrail-Digest/<region>`.
pub fn digest_listing_prefix(prefix: Option<&str>, account: &AccountId, region: &Region) -> String {
    with_prefix(
        prefix,
        format!("AWSLogs/{account}/CloudTrail-Digest/{region}"),
    )
}

/// The file name part of a digest key for `trail` in `region`, before the timestamp:
/// `<acct>_CloudTrail-Digest_<region>_<trail>_<homeRegion>_`.
pub(crate) fn digest_file_name_stem(
    account: &AccountId,
    region: &Region,
    trail: &TrailName,
    home_region: &Region,
) -> String {
    format!("{account}_CloudTrail-Digest_{region}_{trail}_{home_region}_")
}

/// `YYYYMMDDTHHMMSSZ`, the digest key timestamp (validate-logs' `DATE_FORMAT`).
pub fn compact_time(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Parses [`compact_time`] output back.
pub fn parse_compact_time(text: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|naive| naive.and_utc())
}

fn with_prefix(prefix: Option<&str>, key: String) -> String {
    match prefix {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}/{key}"),
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn account() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    #[test]
    fn log_file_key_has_the_cloudtrail_layout() {
        let at = Utc.with_ymd_and_hms(2024, 5, 7, 9, 3, 59).unwrap();
        let key = log_file_key(
            None,
            &account(),
            &region("eu-west-1"),
            at,
            "abcdEFGH01234567",
        );
        assert_eq!(
            key,
            "AWSLogs/123456789012/CloudTrail/eu-west-1/2024/05/07/123456789012_CloudTrail_eu-west-1_20240507T0903Z_abcdEFGH01234567.json.gz"
        );
        let prefixed = log_file_key(
            Some("team/logs"),
            &account(),
            &region("eu-west-1"),
            at,
            "abcdEFGH01234567",
        );
        assert!(prefixed.starts_with("team/logs/AWSLogs/123456789012/CloudTrail/"));
        let empty_prefix = log_file_key(
            Some(""),
            &account(),
            &region("eu-west-1"),
            at,
            "abcdEFGH01234567",
        );
        assert_eq!(empty_prefix, key);
    }

    #[test]
    fn suffix_is_sixteen_alphanumerics() {
        for _ in 0..100 {
            let suffix = random_log_file_suffix();
            assert_eq!(suffix.len(), 16);
            assert!(suffix.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn deterministic_suffix_depends_on_lane_and_offset() {
        let us = region("us-east-1");
        let a = log_file_suffix("arn:t", &us, 7);
        assert_eq!(a, log_file_suffix("arn:t", &us, 7));
        assert_eq!(a.len(), LOG_FILE_SUFFIX_LEN);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, log_file_suffix("arn:t", &us, 8));
        assert_ne!(a, log_file_suffix("arn:t", &region("eu-west-1"), 7));
    }

    #[test]
    fn digest_key_ends_with_the_timestamp_validate_logs_extracts() {
        let end = Utc.with_ymd_and_hms(2015, 8, 17, 15, 1, 31).unwrap();
        let key = digest_key(
            None,
            &AccountId::parse("111122223333").unwrap(),
            &region("us-east-2"),
            &TrailName::parse("your-trail-name").unwrap(),
            &region("us-east-2"),
            end,
        );
        assert_eq!(
            key,
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"
        );
        // validate-logs: extract_digest_key_date = key[-24:-8]
        let extracted = &key[key.len() - 24..key.len() - 8];
        assert_eq!(extracted, "20150817T150131Z");
        assert_eq!(parse_compact_time(extracted), Some(end));
    }
}
