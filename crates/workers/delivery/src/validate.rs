//! The engine of `opentrail validate`: walks a trail's digest chain in one region from
//! the newest digest back, as `aws cloudtrail validate-logs` does, checking each digest's
//! location, signature and link, and each listed log file's hash.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use opentrail_model::{AccountId, Region, TrailArn};
use opentrail_objstore::{Object, ObjectStore, StoreError};
use serde_json::Value;

use crate::digest::string_to_sign;
use crate::keys::PublicKeyInfo;
use crate::log_file::{gunzip_sha256_hex, gunzip_single_member, sha256_hex, GunzipError};
use crate::object_keys::{
    compact_time, digest_file_name_stem, digest_key, digest_listing_prefix, log_file_key,
    parse_compact_time,
};
use crate::signing::verify_signature;

/// What to validate.
#[derive(Debug, Clone)]
pub struct ValidationRequest {
    /// The bucket the newest digests are in (the trail's bucket).
    pub bucket: String,
    pub prefix: Option<String>,
    /// The account whose logs are validated (the trail's).
    pub account: AccountId,
    /// The trail: its name and home region are part of every digest key.
    pub trail: TrailArn,
    /// The region whose digests are walked (validate-logs: the CLI's `--region`).
    pub region: Region,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The region's public keys for `[start, end + 2 h]` (what validate-logs asks
    /// `ListPublicKeys` for).
    pub public_keys: Vec<PublicKeyInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStatus {
    Valid,
    NotFound,
    /// `digestS3Bucket`/`digestS3Object` name another place than where it was found.
    Moved,
    InvalidFormat(String),
    SignatureFailed,
    PublicKeyNotFound {
        fingerprint: String,
    },
    /// The newer digest's `previousDigestHashValue` or `previousDigestSignature` does not
    /// match this digest (a check validate-logs does not make).
    ChainMismatch(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestReport {
    pub bucket: String,
    pub key: String,
    pub status: DigestStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFileStatus {
    Valid,
    HashMismatch,
    NotFound,
    InvalidFormat(String),
    /// Bytes after the first gzip member.
    TrailingData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileReport {
    pub bucket: String,
    pub key: String,
    pub status: LogFileStatus,
}

/// A digest without a previous link, with older digests before it: no log files were
/// delivered between `older_end` and `newer_start` (logging or validation was off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainGap {
    pub older_end: DateTime<Utc>,
    pub newer_start: DateTime<Utc>,
}

/// A digest that passed every check: the window it covers and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestWindow {
    pub bucket: String,
    pub key: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `LastModified` of the digest object, when the listing showed it.
    pub written_at: Option<DateTime<Utc>>,
}

/// Every digest and log file looked at, newest digest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    pub digests: Vec<DigestReport>,
    pub log_files: Vec<LogFileReport>,
    pub gaps: Vec<ChainGap>,
    /// The valid digests' windows, newest first.
    pub windows: Vec<DigestWindow>,
}

/// Where a trail's chain in its home region must reach, from what the server says
/// (`GetTrailStatus`, `DescribeTrails`): the checks validate-logs does not make, which
/// catch the newest digests (and their log files) deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedChainEnd {
    /// The requested end time.
    pub end: DateTime<Utc>,
    /// `LatestDigestDeliveryTime`: the newest digest must have been written then, when
    /// that is not after `end`.
    pub latest_digest_delivery: Option<DateTime<Utc>>,
    /// The trail logged with validation on from before `end` on (`IsLogging`,
    /// `StartLoggingTime`, `LogFileValidationEnabled`): a digest must end at or after
    /// `end` once a later digest was delivered.
    pub open_at_end: bool,
    /// A multi-region trail: its latest digest may be another region's, up to one window
    /// apart from this region's.
    pub multi_region: bool,
}

/// Why the chain looks truncated: its newest valid digest ends (or was written) before
/// the trail's latest digest delivery or the requested end. `None` when it reaches far
/// enough. Slack: 2 s to 60 s (half a window) for clocks and the write of a digest after
/// its window ends; one window more for a multi-region trail.
pub fn check_chain_end(report: &ValidationReport, expected: &ExpectedChainEnd) -> Option<String> {
    let window = report
        .windows
        .iter()
        .map(|w| w.end - w.start)
        .max()
        .unwrap_or(Duration::hours(1));
    let slack = (window / 2).clamp(Duration::seconds(2), Duration::seconds(60));
    let tolerance = if expected.multi_region {
        window + slack
    } else {
        slack
    };
    let newest = report.windows.first();
    let describe = |w: Option<&DigestWindow>| match w {
        Some(w) => format!(
            "the newest valid digest {} ends {}",
            w.key,
            opentrail_model::iso8601(w.end)
        ),
        None => "no valid digest was found".to_owned(),
    };
    if let Some(latest) = expected.latest_digest_delivery {
        // Times on the command line and in the listing have whole seconds: a digest
        // delivered within the requested end's second counts as delivered by then.
        if latest.timestamp() <= expected.end.timestamp() {
            let reaches = newest.is_some_and(|w| {
                w.end >= latest - tolerance
                    || w.written_at.is_some_and(|at| at >= latest - tolerance)
            });
            if !reaches {
                return Some(format!(
                    "digest chain truncated: the trail's latest digest was delivered at {}, but {}",
                    opentrail_model::iso8601(latest),
                    describe(newest)
                ));
            }
        } else if expected.open_at_end && latest > expected.end + window + slack {
            let reaches = newest.is_some_and(|w| w.end >= expected.end);
            if !reaches {
                return Some(format!(
                    "digest chain truncated: the trail logged with validation through {} and delivered digests after it, but {}",
                    opentrail_model::iso8601(expected.end),
                    describe(newest)
                ));
            }
        }
    }
    None
}

/// Log files in the region's log prefix of `request.bucket` (the days the valid digests
/// cover) that no valid digest lists although they were written inside the chain's
/// contiguous windows (by `LastModified`, with 2 s to 60 s of slack at both ends of each
/// stretch of windows): added files, or files of the chain's deleted digests whose removal left
/// them behind. Another trail delivering to the same bucket and prefix shows here too.
pub async fn unlisted_log_files(
    store: &dyn ObjectStore,
    request: &ValidationRequest,
    report: &ValidationReport,
) -> Result<Vec<(String, String)>, ValidationError> {
    let (Some(oldest), Some(newest)) = (report.windows.last(), report.windows.first()) else {
        return Ok(Vec::new());
    };
    let listed: HashSet<(&str, &str)> = report
        .log_files
        .iter()
        .map(|f| (f.bucket.as_str(), f.key.as_str()))
        .collect();
    // `[prefix/]AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/`, from a key of that day.
    let day_prefix = |day: DateTime<Utc>| {
        let key = log_file_key(
            request.prefix.as_deref(),
            &request.account,
            &request.region,
            day,
            "0000000000000000",
        );
        key[..key.rfind('/').map_or(0, |i| i + 1)].to_owned()
    };
    // The chain's contiguous stretches: a file written inside one went into a digest of it.
    let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        report.windows.iter().map(|w| (w.start, w.end)).collect();
    windows.sort();
    let mut covered: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (start, end) in windows {
        match covered.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => covered.push((start, end)),
        }
    }
    let longest = report
        .windows
        .iter()
        .map(|w| w.end - w.start)
        .max()
        .unwrap_or(Duration::hours(1));
    let slack = (longest / 2).clamp(Duration::seconds(2), Duration::seconds(60));
    let mut unlisted = Vec::new();
    let mut day = oldest.start.date_naive();
    let last_day = newest.end.date_naive();
    while day <= last_day {
        let prefix = day_prefix(day.and_time(chrono::NaiveTime::MIN).and_utc());
        let objects = match store.list_objects(&request.bucket, &prefix).await {
            Ok(objects) => objects,
            Err(StoreError::NoSuchBucket(_)) => Vec::new(),
            Err(other) => return Err(other.into()),
        };
        for object in objects {
            if !object.key.ends_with(".json.gz")
                || listed.contains(&(request.bucket.as_str(), object.key.as_str()))
            {
                continue;
            }
            let written = object.last_modified;
            let inside = covered
                .iter()
                .any(|(start, end)| *start + slack <= written && written + slack <= *end);
            if inside {
                unlisted.push((request.bucket.clone(), object.key));
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    Ok(unlisted)
}

impl ValidationReport {
    /// True only when at least one digest was found and everything found is valid.
    pub fn is_valid(&self) -> bool {
        !self.digests.is_empty()
            && self.digests.iter().all(|d| d.status == DigestStatus::Valid)
            && self
                .log_files
                .iter()
                .all(|l| l.status == LogFileStatus::Valid)
    }

    pub fn valid_digests(&self) -> usize {
        self.digests
            .iter()
            .filter(|d| d.status == DigestStatus::Valid)
            .count()
    }

    pub fn valid_log_files(&self) -> usize {
        self.log_files
            .iter()
            .filter(|l| l.status == LogFileStatus::Valid)
            .count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("no public keys found between {start} and {end}")]
    NoPublicKeys { start: String, end: String },
    #[error("start time {start} is after end time {end}")]
    InvalidRange { start: String, end: String },
    #[error("object store: {0}")]
    Store(#[from] StoreError),
}

/// The link a newer digest made to the one being loaded.
struct ExpectedLink {
    sha256_hex: String,
    signature: Option<String>,
}

/// A digest that passed every check.
struct ValidDigest {
    start: DateTime<Utc>,
    previous: Option<(String, String)>,
    link: ExpectedLink,
    log_files: Vec<(String, String, String)>,
}

/// Validates the digests and log files of `request`.
pub async fn validate_logs(
    store: &dyn ObjectStore,
    request: &ValidationRequest,
) -> Result<ValidationReport, ValidationError> {
    if request.start > request.end {
        return Err(ValidationError::InvalidRange {
            start: opentrail_model::iso8601(request.start),
            end: opentrail_model::iso8601(request.end),
        });
    }
    if request.public_keys.is_empty() {
        return Err(ValidationError::NoPublicKeys {
            start: opentrail_model::iso8601(request.start),
            end: opentrail_model::iso8601(request.end + Duration::hours(2)),
        });
    }
    let mut report = ValidationReport::default();
    // The log files of valid digests, newest digest first, checked once the chain is walked.
    let mut log_files = Vec::new();
    let mut bucket = request.bucket.clone();
    let mut written_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut listed = list_digest_keys(store, &bucket, request, &mut written_at).await?;
    let mut current = listed.pop_back().map(|key| (key, None::<ExpectedLink>));
    let mut last_start = current
        .as_ref()
        .and_then(|(key, _)| key_date(key))
        .unwrap_or(request.start);

    while let Some((key, expected)) = current.take() {
        if request.start > last_start {
            break;
        }
        let checked = check_digest(store, request, &bucket, &key, expected.as_ref()).await?;
        let valid = match checked {
            Ok(valid) => valid,
            Err(status) => {
                report.digests.push(DigestReport {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    status,
                });
                current = pop_older_than(&mut listed, &key).map(|k| (k, None));
                continue;
            }
        };
        report.digests.push(DigestReport {
            bucket: bucket.clone(),
            key: key.clone(),
            status: DigestStatus::Valid,
        });
        last_start = valid.start;
        if let Some(end) = key_date(&key) {
            report.windows.push(DigestWindow {
                bucket: bucket.clone(),
                key: key.clone(),
                start: valid.start,
                end,
                written_at: written_at.get(&key).copied(),
            });
        }
        log_files.extend(valid.log_files);
        match valid.previous {
            Some((previous_bucket, previous_key)) => {
                if previous_bucket != bucket {
                    bucket = previous_bucket;
                    listed = list_digest_keys(store, &bucket, request, &mut written_at).await?;
                }
                current = Some((previous_key, Some(valid.link)));
            }
            None => {
                let older = pop_older_than(&mut listed, &key);
                if let Some(older_end) = older.as_deref().and_then(key_date) {
                    report.gaps.push(ChainGap {
                        older_end,
                        newer_start: valid.start,
                    });
                }
                current = older.map(|k| (k, None));
            }
        }
    }
    report.log_files = check_log_files(store, log_files).await?;
    Ok(report)
}

/// Checks `files` (bucket, key, expected hash), several at a time: fetching them
/// concurrently and inflating and hashing them on the blocking pool. Reports come back
/// in the order of `files`.
async fn check_log_files(
    store: &dyn ObjectStore,
    files: Vec<(String, String, String)>,
) -> Result<Vec<LogFileReport>, ValidationError> {
    let concurrency = std::thread::available_parallelism().map_or(2, |n| 2 * n.get());
    let checks = futures_util::stream::iter(files).map(|(bucket, key, hash)| async move {
        let status = check_log_file(store, &bucket, &key, hash).await?;
        Ok::<_, ValidationError>(LogFileReport {
            bucket,
            key,
            status,
        })
    });
    checks.buffered(concurrency).try_collect().await
}

/// Digest keys of the trail and region in `bucket`, oldest first, as validate-logs
/// selects them: after the key a digest ending a minute before `start` would have,
/// ending no later than an hour after `end`, not backfill digests.
async fn list_digest_keys(
    store: &dyn ObjectStore,
    bucket: &str,
    request: &ValidationRequest,
    written_at: &mut HashMap<String, DateTime<Utc>>,
) -> Result<VecDeque<String>, ValidationError> {
    let prefix = request.prefix.as_deref();
    let listing_prefix = digest_listing_prefix(prefix, &request.account, &request.region);
    let marker = digest_key(
        prefix,
        &request.account,
        &request.region,
        &request.trail.name,
        &request.trail.region,
        request.start - Duration::minutes(1),
    );
    let first = compact_time(request.start);
    let last = compact_time(request.end + Duration::hours(1));
    let stem = digest_file_name_stem(
        &request.account,
        &request.region,
        &request.trail.name,
        &request.trail.region,
    );
    let objects = match store.list_objects(bucket, &listing_prefix).await {
        Ok(objects) => objects,
        Err(StoreError::NoSuchBucket(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    Ok(objects
        .into_iter()
        .map(|object| {
            written_at.insert(object.key.clone(), object.last_modified);
            object.key
        })
        .filter(|key| key.as_str() > marker.as_str())
        .filter(|key| is_trail_digest_key(key, &listing_prefix, &stem))
        .filter(|key| {
            let date = &key[key.len() - 24..key.len() - 8];
            date >= first.as_str() && date <= last.as_str()
        })
        .collect())
}

/// `<listing prefix>/<digits>/<digits>/<digits>/<stem><anything>.json.gz`, not a backfill.
fn is_trail_digest_key(key: &str, listing_prefix: &str, stem: &str) -> bool {
    let Some(rest) = key
        .strip_prefix(listing_prefix)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return false;
    };
    let mut parts = rest.splitn(4, '/');
    let digits = |part: Option<&str>| {
        part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if !(digits(parts.next()) && digits(parts.next()) && digits(parts.next())) {
        return false;
    }
    let Some(file) = parts.next() else {
        return false;
    };
    file.len() > stem.len() + ".json.gz".len()
        && file.starts_with(stem)
        && file.ends_with(".json.gz")
        && !file.ends_with("_backfill.json.gz")
        && key.len() >= 24
}

/// The end time in a digest key (`key[-24:-8]`).
fn key_date(key: &str) -> Option<DateTime<Utc>> {
    key.len()
        .checked_sub(24)
        .and_then(|start| key.get(start..key.len() - 8))
        .and_then(parse_compact_time)
}

/// Removes listed keys from the newest end until one is older than `key`, and returns it.
fn pop_older_than(listed: &mut VecDeque<String>, key: &str) -> Option<String> {
    let date = key_date(key)?;
    while let Some(candidate) = listed.pop_back() {
        if key_date(&candidate).is_some_and(|d| d < date) {
            return Some(candidate);
        }
    }
    None
}

async fn check_digest(
    store: &dyn ObjectStore,
    request: &ValidationRequest,
    bucket: &str,
    key: &str,
    expected: Option<&ExpectedLink>,
) -> Result<Result<ValidDigest, DigestStatus>, ValidationError> {
    let object = match store.get_object(bucket, key).await {
        Ok(Some(object)) => object,
        Ok(None) | Err(StoreError::NoSuchBucket(_)) => return Ok(Err(DigestStatus::NotFound)),
        Err(other) => return Err(other.into()),
    };
    Ok(check_digest_object(request, bucket, key, &object, expected))
}

fn check_digest_object(
    request: &ValidationRequest,
    bucket: &str,
    key: &str,
    object: &Object,
    expected: Option<&ExpectedLink>,
) -> Result<ValidDigest, DigestStatus> {
    let inflated = gunzip_single_member(&object.body)
        .map_err(|e| DigestStatus::InvalidFormat(e.to_string()))?;
    let digest: Value = serde_json::from_slice(&inflated)
        .map_err(|e| DigestStatus::InvalidFormat(format!("not json: {e}")))?;
    let metadata = |name: &str| {
        object
            .metadata
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(signature_hex), Some(_algorithm)) =
        (metadata("signature"), metadata("signature-algorithm"))
    else {
        return Err(DigestStatus::SignatureFailed);
    };
    for required in [
        "digestPublicKeyFingerprint",
        "digestS3Bucket",
        "digestS3Object",
        "previousDigestSignature",
        "digestEndTime",
        "digestStartTime",
    ] {
        if digest.get(required).is_none() {
            return Err(DigestStatus::InvalidFormat(format!("no {required}")));
        }
    }
    let text = |name: &str| digest.get(name).and_then(Value::as_str);
    if text("digestS3Bucket") != Some(bucket) || text("digestS3Object") != Some(key) {
        return Err(DigestStatus::Moved);
    }
    let fingerprint = text("digestPublicKeyFingerprint").unwrap_or_default();
    let Some(public_key) = request
        .public_keys
        .iter()
        .find(|k| k.fingerprint == fingerprint)
    else {
        return Err(DigestStatus::PublicKeyNotFound {
            fingerprint: fingerprint.to_owned(),
        });
    };
    let end_time = text("digestEndTime")
        .ok_or_else(|| DigestStatus::InvalidFormat("digestEndTime is not a string".into()))?;
    let previous_signature = match digest.get("previousDigestSignature") {
        Some(Value::Null) => None,
        Some(Value::String(signature)) => Some(signature.as_str()),
        _ => {
            return Err(DigestStatus::InvalidFormat(
                "previousDigestSignature".into(),
            ))
        }
    };
    let digest_sha256 = sha256_hex(&inflated);
    let message = string_to_sign(end_time, bucket, key, &digest_sha256, previous_signature);
    let signature = hex::decode(signature_hex).map_err(|_| DigestStatus::SignatureFailed)?;
    if !verify_signature(&public_key.der, message.as_bytes(), &signature) {
        return Err(DigestStatus::SignatureFailed);
    }
    if let Some(expected) = expected {
        if expected.sha256_hex != digest_sha256 {
            return Err(DigestStatus::ChainMismatch(
                "previousDigestHashValue of the next digest differs".into(),
            ));
        }
        if expected.signature.as_deref() != Some(signature_hex) {
            return Err(DigestStatus::ChainMismatch(
                "previousDigestSignature of the next digest differs".into(),
            ));
        }
    }
    let start = text("digestStartTime")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| DigestStatus::InvalidFormat("digestStartTime".into()))?;
    let previous = match (
        text("previousDigestS3Bucket"),
        text("previousDigestS3Object"),
    ) {
        (Some(b), Some(k)) => Some((b.to_owned(), k.to_owned())),
        _ => None,
    };
    let log_files = digest
        .get("logFiles")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .map(|file| {
                    let field = |name: &str| {
                        file.get(name)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    (field("s3Bucket"), field("s3Object"), field("hashValue"))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ValidDigest {
        start,
        previous,
        link: ExpectedLink {
            sha256_hex: text("previousDigestHashValue")
                .unwrap_or_default()
                .to_owned(),
            signature: previous_signature.map(str::to_owned),
        },
        log_files,
    })
}

async fn check_log_file(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    expected_sha256: String,
) -> Result<LogFileStatus, ValidationError> {
    let object = match store.get_object(bucket, key).await {
        Ok(Some(object)) => object,
        Ok(None) | Err(StoreError::NoSuchBucket(_)) => return Ok(LogFileStatus::NotFound),
        Err(StoreError::InvalidBucketName(why)) => {
            return Ok(LogFileStatus::InvalidFormat(format!(
                "invalid bucket: {why}"
            )))
        }
        Err(other) => return Err(other.into()),
    };
    let hashed = tokio::task::spawn_blocking(move || gunzip_sha256_hex(&object.body))
        .await
        .map_err(|e| ValidationError::Store(StoreError::Other(e.to_string())))?;
    Ok(match hashed {
        Err(GunzipError::TrailingData) => LogFileStatus::TrailingData,
        Err(GunzipError::Invalid(why)) => LogFileStatus::InvalidFormat(why),
        Ok(sha256) if sha256 == expected_sha256 => LogFileStatus::Valid,
        Ok(_) => LogFileStatus::HashMismatch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "p/AWSLogs/123456789012/CloudTrail-Digest/us-east-1";
    const STEM: &str = "123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_";

    #[test]
    fn selects_the_trails_digest_keys_as_validate_logs_does() {
        let key = |rest: &str| format!("{LISTING}/{rest}");
        assert!(is_trail_digest_key(
            &key(&format!("2024/05/07/{STEM}20240507T100000Z.json.gz")),
            LISTING,
            STEM
        ));
        for other in [
            format!("2024/05/07/{STEM}20240507T100000Z_backfill.json.gz"),
            "2024/05/07/123456789012_CloudTrail-Digest_us-east-1_other_us-east-1_20240507T100000Z.json.gz".to_owned(),
            format!("2024/05/x7/{STEM}20240507T100000Z.json.gz"),
            format!("2024/05/07/{STEM}.json.gz"),
            format!("2024/05/07/{STEM}20240507T100000Z.json"),
        ] {
            assert!(!is_trail_digest_key(&key(&other), LISTING, STEM), "{other}");
        }
        assert!(!is_trail_digest_key(
            &format!("q/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/05/07/{STEM}20240507T100000Z.json.gz"),
            LISTING,
            STEM
        ));
    }

    #[test]
    fn a_chain_that_stops_before_the_latest_digest_is_truncated() {
        use chrono::TimeZone;
        let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2024, 5, 7, h, m, 0).unwrap();
        let window = |start: DateTime<Utc>, end: DateTime<Utc>| DigestWindow {
            bucket: "b".into(),
            key: format!("k{}", end.timestamp()),
            start,
            end,
            written_at: Some(end + Duration::seconds(1)),
        };
        let report = ValidationReport {
            windows: vec![window(t(9, 0), t(10, 0)), window(t(8, 0), t(9, 0))],
            ..ValidationReport::default()
        };
        let expected =
            |latest: DateTime<Utc>, end: DateTime<Utc>, multi_region: bool| ExpectedChainEnd {
                end,
                latest_digest_delivery: Some(latest),
                open_at_end: true,
                multi_region,
            };
        let latest = t(10, 0) + Duration::seconds(1);
        assert_eq!(
            check_chain_end(&report, &expected(latest, t(12, 0), false)),
            None
        );
        // The 11:00 digest deleted.
        let later = t(11, 0) + Duration::seconds(1);
        assert!(check_chain_end(&report, &expected(later, t(12, 0), false))
            .unwrap()
            .contains("truncated"));
        // A multi-region trail's latest digest may be another region's, within a window.
        assert_eq!(
            check_chain_end(&report, &expected(t(10, 30), t(12, 0), true)),
            None
        );
        assert!(check_chain_end(&report, &expected(t(11, 30), t(12, 0), true)).is_some());
        // An end before the latest delivery: the chain must reach the end.
        assert_eq!(
            check_chain_end(&report, &expected(t(14, 0), t(9, 30), false)),
            None
        );
        assert!(check_chain_end(&report, &expected(t(14, 0), t(10, 30), false)).is_some());
        let not_open = ExpectedChainEnd {
            open_at_end: false,
            ..expected(t(14, 0), t(10, 30), false)
        };
        assert_eq!(check_chain_end(&report, &not_open), None);
        // The latest digest delivered within the requested end's second (the end has whole
        // seconds) still has to be reached.
        let within_end_second = ExpectedChainEnd {
            open_at_end: false,
            ..expected(t(11, 0) + Duration::milliseconds(400), t(11, 0), false)
        };
        assert!(check_chain_end(&report, &within_end_second)
            .unwrap()
            .contains("truncated"));
        assert!(check_chain_end(
            &ValidationReport::default(),
            &expected(latest, t(12, 0), false)
        )
        .is_some());
    }

    #[test]
    fn steps_back_to_an_older_digest() {
        let key = |time: &str| format!("{LISTING}/2024/05/07/{STEM}{time}.json.gz");
        let mut listed: VecDeque<String> =
            ["20240507T080000Z", "20240507T090000Z", "20240507T100000Z"]
                .iter()
                .map(|t| key(t))
                .collect();
        assert_eq!(
            key_date(&key("20240507T100000Z"))
                .map(|d| d.to_rfc3339())
                .as_deref(),
            Some("2024-05-07T10:00:00+00:00")
        );
        assert_eq!(
            pop_older_than(&mut listed, &key("20240507T093000Z")),
            Some(key("20240507T090000Z"))
        );
        assert_eq!(listed.len(), 1);
        assert_eq!(pop_older_than(&mut listed, &key("20240507T080000Z")), None);
    }
}
