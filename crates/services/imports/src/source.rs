//! The import source: `s3://bucket[/prefix]`, and the day prefixes of the trail layout
//! (`AWSLogs/[o-org/]<account>/CloudTrail[-Insight]/<region>/YYYY/MM/DD/`) within the
//! import's time range, found by listing one level at a time with a delimiter instead of
//! listing the whole bucket.

use chrono::{DateTime, NaiveDate, Utc};
use object_store::path::Path;
use object_store::ObjectStore;

/// A parsed `S3LocationUri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl Location {
    pub fn parse(uri: &str) -> Option<Location> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        opentrail_objstore::validate_bucket_name(bucket).ok()?;
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..")
            || (!prefix.is_empty() && prefix.split('/').any(str::is_empty))
        {
            return None;
        }
        Some(Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The object's URI, as failures name it.
    pub fn uri_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

/// The levels of the layout below `AWSLogs/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// An account, or an organization id (`o-…`) above the accounts.
    AccountOrOrg,
    Account,
    /// `CloudTrail` or `CloudTrail-Insight` (digests are never listed).
    Kind,
    Region,
    Year,
    Month,
    Day,
}

/// The days whose prefixes may hold events of `[start, end]`: a log file lands in the
/// folder of its delivery day, at most a day after its events.
#[derive(Clone, Copy, Debug)]
pub struct DayRange {
    pub first: Option<NaiveDate>,
    pub last: Option<NaiveDate>,
}

impl DayRange {
    pub fn new(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Self {
        DayRange {
            first: start.map(|t| t.date_naive()),
            last: end.map(|t| t.date_naive() + chrono::Days::new(1)),
        }
    }

    fn admits(&self, year: i32, month: Option<u32>, day: Option<u32>) -> bool {
        let lowest = NaiveDate::from_ymd_opt(year, month.unwrap_or(1), day.unwrap_or(1));
        let highest = match (month, day) {
            (Some(m), Some(d)) => NaiveDate::from_ymd_opt(year, m, d),
            (Some(m), None) => NaiveDate::from_ymd_opt(year, m, 1)
                .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
                .and_then(|d| d.pred_opt()),
            _ => NaiveDate::from_ymd_opt(year, 12, 31),
        };
        let (Some(lowest), Some(highest)) = (lowest, highest) else {
            return false;
        };
        self.first.is_none_or(|first| highest >= first)
            && self.last.is_none_or(|last| lowest <= last)
    }
}

fn digits(text: &str, len: usize) -> Option<u32> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// The day prefixes (`…/YYYY/MM/DD`) to import, sorted.
pub async fn day_prefixes(
    objects: &dyn ObjectStore,
    location: &Location,
    range: DayRange,
) -> Result<Vec<String>, object_store::Error> {
    // Where the walk starts: the URI's prefix, placed in the layout.
    let segments: Vec<&str> = if location.prefix.is_empty() {
        Vec::new()
    } else {
        location.prefix.split('/').collect()
    };
    let (base, below): (Vec<&str>, &[&str]) = match segments.iter().rposition(|s| *s == "AWSLogs") {
        Some(at) => (segments[..=at].to_vec(), &segments[at + 1..]),
        None => {
            let mut base = segments.clone();
            base.push("AWSLogs");
            (base, &[])
        }
    };
    let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    let mut level = Level::AccountOrOrg;
    let mut parts: Vec<String> = Vec::new();
    for segment in below {
        let next = match level {
            Level::AccountOrOrg if segment.starts_with("o-") => Level::Account,
            Level::AccountOrOrg | Level::Account => Level::Kind,
            Level::Kind if !is_imported_kind(segment) => return Ok(Vec::new()),
            Level::Kind => Level::Region,
            Level::Region => Level::Year,
            Level::Year => Level::Month,
            Level::Month => Level::Day,
            // Deeper than a day: the day itself is the prefix.
            Level::Day => break,
        };
        if matches!(level, Level::Year | Level::Month | Level::Day) {
            parts.push(segment.to_string());
        }
        path.push(segment.to_string());
        level = next;
    }
    if parts.len() == 3 {
        return Ok(vec![path.join("/")]);
    }
    let mut found = Vec::new();
    let mut pending = vec![(path, level, parts)];
    while let Some((path, level, parts)) = pending.pop() {
        let listing = objects
            .list_with_delimiter(Some(&Path::from(path.join("/"))))
            .await?;
        for child in listing.common_prefixes {
            let Some(name) = child.filename().map(str::to_owned) else {
                continue;
            };
            let mut parts = parts.clone();
            let next = match level {
                Level::AccountOrOrg if name.starts_with("o-") => Level::Account,
                Level::AccountOrOrg | Level::Account => {
                    if !(name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())) {
                        continue;
                    }
                    Level::Kind
                }
                Level::Kind if !is_imported_kind(&name) => continue,
                Level::Kind => Level::Region,
                Level::Region => Level::Year,
                Level::Year => {
                    let Some(year) = digits(&name, 4) else {
                        continue;
                    };
                    if !range.admits(year as i32, None, None) {
                        continue;
                    }
                    Level::Month
                }
                Level::Month => {
                    let (Some(year), Some(month)) = (digits(&parts[0], 4), digits(&name, 2)) else {
                        continue;
                    };
                    if !range.admits(year as i32, Some(month), None) {
                        continue;
                    }
                    Level::Day
                }
                Level::Day => {
                    let (Some(year), Some(month), Some(day)) =
                        (digits(&parts[0], 4), digits(&parts[1], 2), digits(&name, 2))
                    else {
                        continue;
                    };
                    if range.admits(year as i32, Some(month), Some(day)) {
                        let mut full = path.clone();
                        full.push(name);
                        found.push(full.join("/"));
                    }
                    continue;
                }
            };
            if matches!(level, Level::Year | Level::Month) {
                parts.push(name.clone());
            }
            let mut full = path.clone();
            full.push(name);
            pending.push((full, next, parts));
        }
    }
    found.sort();
    Ok(found)
}

fn is_imported_kind(name: &str) -> bool {
    name == "CloudTrail" || name == "CloudTrail-Insight"
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://my-bucket/team/logs/"),
            Some(Location {
                bucket: "my-bucket".into(),
                prefix: "team/logs".into()
            })
        );
        assert_eq!(
            Location::parse("s3://my-bucket"),
            Some(Location {
                bucket: "my-bucket".into(),
                prefix: String::new()
            })
        );
        assert_eq!(Location::parse("https://my-bucket/x"), None);
        assert_eq!(Location::parse("s3://Bad_Bucket/x"), None);
        assert_eq!(Location::parse("s3://bucket/a//b"), None);
    }

    #[tokio::test]
    async fn only_days_in_range_of_log_and_insight_folders_are_found() {
        let objects = InMemory::new();
        for key in [
            "p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/06/a.json.gz",
            "p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/07/a.json.gz",
            "p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/06/01/a.json.gz",
            "p/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/07/a.json.gz",
            "p/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/07/d.json.gz",
            "p/AWSLogs/o-abc123def4/444455556666/CloudTrail-Insight/us-east-1/2024/05/07/i.json.gz",
            "p/AWSLogs/111122223333/CloudTrail/us-east-1/2023/05/07/a.json.gz",
        ] {
            objects
                .put(&Path::from(key), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        let location = Location::parse("s3://bkt/p").unwrap();
        let start = "2024-05-07T00:00:00Z".parse().unwrap();
        let end = "2024-05-07T23:00:00Z".parse().unwrap();
        let days = day_prefixes(&objects, &location, DayRange::new(Some(start), Some(end)))
            .await
            .unwrap();
        assert_eq!(
            days,
            vec![
                "p/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/07",
                "p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/07",
                "p/AWSLogs/o-abc123def4/444455556666/CloudTrail-Insight/us-east-1/2024/05/07",
            ]
        );
        let all = day_prefixes(&objects, &location, DayRange::new(None, None))
            .await
            .unwrap();
        assert_eq!(all.len(), 6);
        let narrowed =
            Location::parse("s3://bkt/p/AWSLogs/111122223333/CloudTrail/us-east-1").unwrap();
        let some = day_prefixes(&objects, &narrowed, DayRange::new(None, None))
            .await
            .unwrap();
        assert_eq!(some.len(), 4);
    }
}
