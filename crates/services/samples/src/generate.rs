//! GenerateQuery's prompt reader: English prompts about CloudTrail activity to Lake SQL,
//! offline. A prompt is read for what it asks about (filters: event names, services,
//! regions, addresses, users, errors, console sign-ins, root) and how (a time window, a
//! count, a breakdown "by"/"per" something, "top N"); a prompt that names nothing
//! specific is matched against the sample library instead. The README lists exactly
//! what is understood.

use crate::library::SampleLibrary;

/// A sample answers a prompt without specific filters only at least this relevant.
pub const MIN_SAMPLE_RELEVANCE: f64 = 0.3;

/// Rows a listing returns when the prompt gives no number.
const DEFAULT_LIST_LIMIT: u32 = 100;
/// Largest "top N" honoured.
const MAX_LIMIT: u32 = 1000;

/// Where a generated query came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built from what the prompt says.
    Template,
    /// The named sample query of the library.
    Sample(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub sql: String,
    pub source: Source,
}

/// The SQL `prompt` asks for over the store `store_id`, or `None` when nothing fits.
pub fn generate(library: &SampleLibrary, prompt: &str, store_id: &str) -> Option<Generated> {
    let reading = read(prompt);
    if reading.specific() {
        return Some(Generated {
            sql: reading.sql(store_id),
            source: Source::Template,
        });
    }
    if let Some(best) = library.search(prompt).into_iter().next() {
        if best.relevance >= MIN_SAMPLE_RELEVANCE {
            return Some(Generated {
                sql: best.sample.sql_for(store_id),
                source: Source::Sample(best.sample.name.clone()),
            });
        }
    }
    reading.general().then(|| Generated {
        sql: reading.sql(store_id),
        source: Source::Template,
    })
}

/// A column a prompt can break results down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Region,
    Principal,
    UserName,
    Service,
    EventName,
    SourceIp,
    UserAgent,
    ErrorCode,
    Account,
    IdentityType,
    Bucket,
    Day,
    Hour,
}

impl Dimension {
    /// The expression and its column name.
    fn column(self) -> (&'static str, &'static str) {
        match self {
            Self::Region => ("awsRegion", "awsRegion"),
            Self::Principal => ("userIdentity.arn", "principal"),
            Self::UserName => ("userIdentity.userName", "userName"),
            Self::Service => ("eventSource", "eventSource"),
            Self::EventName => ("eventName", "eventName"),
            Self::SourceIp => ("sourceIPAddress", "sourceIPAddress"),
            Self::UserAgent => ("userAgent", "userAgent"),
            Self::ErrorCode => ("errorCode", "errorCode"),
            Self::Account => ("recipientAccountId", "accountId"),
            Self::IdentityType => ("userIdentity.type", "identityType"),
            Self::Bucket => ("element_at(requestParameters, 'bucketName')", "bucketName"),
            Self::Day => ("date_trunc('day', eventTime)", "day"),
            Self::Hour => ("date_trunc('hour', eventTime)", "hour"),
        }
    }

    fn is_time(self) -> bool {
        matches!(self, Self::Day | Self::Hour)
    }

    /// The dimension a word (already lowercased, possibly with the next word) names.
    fn named(word: &str, next: Option<&str>) -> Option<(Self, usize)> {
        let two = next.map(|n| format!("{word} {n}"));
        let pairs: &[(&str, Dimension)] = &[
            ("event source", Self::Service),
            ("event name", Self::EventName),
            ("source ip", Self::SourceIp),
            ("ip address", Self::SourceIp),
            ("user agent", Self::UserAgent),
            ("error code", Self::ErrorCode),
            ("identity type", Self::IdentityType),
            ("user name", Self::UserName),
        ];
        if let Some(two) = &two {
            if let Some((_, d)) = pairs.iter().find(|(p, _)| p == two) {
                return Some((*d, 2));
            }
        }
        let one = match word.trim_end_matches('s') {
            "region" => Self::Region,
            "user" | "principal" | "identitie" | "identity" | "caller" | "who" | "role" => {
                Self::Principal
            }
            "username" => Self::UserName,
            "service" | "source" | "eventsource" => Self::Service,
            "api" | "action" | "operation" | "call" | "eventname" | "event" => Self::EventName,
            "ip" | "addresse" | "address" | "sourceipaddres" => Self::SourceIp,
            "agent" | "useragent" | "client" | "tool" => Self::UserAgent,
            "error" | "errorcode" => Self::ErrorCode,
            "account" => Self::Account,
            "bucket" => Self::Bucket,
            "day" | "daily" | "date" => Self::Day,
            "hour" | "hourly" => Self::Hour,
            _ => return None,
        };
        Some((one, 1))
    }
}

/// AWS services by the words prompts use for them.
const SERVICES: &[(&str, &str)] = &[
    ("s3", "s3.amazonaws.com"),
    ("ec2", "ec2.amazonaws.com"),
    ("iam", "iam.amazonaws.com"),
    ("kms", "kms.amazonaws.com"),
    ("lambda", "lambda.amazonaws.com"),
    ("sts", "sts.amazonaws.com"),
    ("cloudtrail", "cloudtrail.amazonaws.com"),
    ("rds", "rds.amazonaws.com"),
    ("dynamodb", "dynamodb.amazonaws.com"),
    ("sns", "sns.amazonaws.com"),
    ("sqs", "sqs.amazonaws.com"),
    ("ssm", "ssm.amazonaws.com"),
    ("secretsmanager", "secretsmanager.amazonaws.com"),
    ("organizations", "organizations.amazonaws.com"),
    ("guardduty", "guardduty.amazonaws.com"),
    ("cloudformation", "cloudformation.amazonaws.com"),
    ("ecs", "ecs.amazonaws.com"),
    ("eks", "eks.amazonaws.com"),
    ("ecr", "ecr.amazonaws.com"),
    ("route53", "route53.amazonaws.com"),
    ("cloudwatch", "monitoring.amazonaws.com"),
    ("logs", "logs.amazonaws.com"),
    ("signin", "signin.amazonaws.com"),
];

/// What a prompt asks for.
#[derive(Debug, Default)]
struct Reading {
    /// Conditions that name specific activity.
    specific: Vec<String>,
    /// Conditions that narrow any activity (errors, writes).
    general: Vec<String>,
    window: Option<String>,
    by: Option<Dimension>,
    count: bool,
    limit: Option<u32>,
    /// The prompt talks about events, activity or calls at all.
    about_events: bool,
}

impl Reading {
    fn specific(&self) -> bool {
        !self.specific.is_empty() || self.by.is_some()
    }

    fn general(&self) -> bool {
        !self.general.is_empty()
            || ((self.window.is_some() || self.count || self.limit.is_some()) && self.about_events)
    }

    fn sql(&self, store_id: &str) -> String {
        let mut conditions: Vec<&str> = self.window.iter().map(String::as_str).collect();
        conditions.extend(self.specific.iter().map(String::as_str));
        conditions.extend(self.general.iter().map(String::as_str));
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("\nWHERE {}", conditions.join("\n  AND "))
        };
        if let Some(by) = self.by {
            let (expr, name) = by.column();
            let order = if by.is_time() {
                name.to_owned()
            } else {
                "eventCount DESC".to_owned()
            };
            let limit = self
                .limit
                .map(|n| format!(" LIMIT {n}"))
                .unwrap_or_default();
            return format!(
                "SELECT {expr} AS {name}, COUNT(*) AS eventCount FROM {store_id}{filter}\nGROUP BY {expr} ORDER BY {order}{limit}"
            );
        }
        if self.count {
            return format!("SELECT COUNT(*) AS eventCount FROM {store_id}{filter}");
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        format!(
            "SELECT eventTime, eventSource, eventName, userIdentity.arn AS principal, sourceIPAddress, awsRegion, errorCode FROM {store_id}{filter}\nORDER BY eventTime DESC LIMIT {limit}"
        )
    }
}

/// The prompt's words: runs of letters, digits and `.-:_@+=,/` (so that addresses,
/// regions and names stay whole), with their lowercase forms.
fn words(prompt: &str) -> Vec<(&str, String)> {
    prompt
        .split(|c: char| !(c.is_ascii_alphanumeric() || ".-:_@+=,/'\"".contains(c)))
        .map(|w| w.trim_matches(|c: char| ".,:".contains(c)))
        .filter(|w| !w.is_empty())
        .map(|w| (w, w.to_ascii_lowercase()))
        .collect()
}

fn read(prompt: &str) -> Reading {
    let words = words(prompt);
    let lower: Vec<&str> = words.iter().map(|(_, l)| l.as_str()).collect();
    let text = format!(" {} ", lower.join(" "));
    let has = |phrase: &str| text.contains(&format!(" {phrase} "));
    let has_prefix = |prefix: &str| lower.iter().any(|w| w.starts_with(prefix));
    let mut reading = Reading {
        about_events: lower.iter().any(|w| {
            [
                "event", "activit", "call", "request", "action", "api", "happen",
            ]
            .iter()
            .any(|p| w.starts_with(p))
        }),
        ..Reading::default()
    };

    // Event names written as such (CamelCase with at least two parts: DeleteBucket).
    let mut event_names: Vec<&str> = words
        .iter()
        .map(|(w, _)| w.trim_matches(['\'', '"']))
        .filter(|w| is_event_name(w))
        .collect();
    let console_login = has("console login")
        || has("console logins")
        || has_prefix("login")
        || has_prefix("logon")
        || has_prefix("signin")
        || has_prefix("sign-in")
        || has("sign in")
        || has("sign ins")
        || event_names.contains(&"ConsoleLogin");
    if console_login && !event_names.contains(&"ConsoleLogin") {
        event_names.push("ConsoleLogin");
    }
    event_names.dedup();
    match event_names.as_slice() {
        [] => {}
        [one] => reading.specific.push(format!("eventName = '{one}'")),
        many => reading.specific.push(format!(
            "eventName IN ({})",
            many.iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }

    let failed = has_prefix("fail") || has_prefix("unsuccessful");
    if console_login && failed {
        reading.specific.push(
            "(errorMessage IS NOT NULL OR element_at(responseElements, 'ConsoleLogin') = 'Failure')"
                .into(),
        );
    } else if has("access denied") || has_prefix("denied") || has_prefix("unauthori") {
        reading
            .general
            .push("(errorCode LIKE '%AccessDenied%' OR errorCode LIKE '%Unauthorized%')".into());
    } else if has_prefix("throttl") {
        reading.general.push(
            "errorCode IN ('ThrottlingException', 'Throttling', 'RequestLimitExceeded', 'TooManyRequestsException')"
                .into(),
        );
    } else if failed || has_prefix("error") {
        reading.general.push("errorCode IS NOT NULL".into());
    } else if console_login && (has_prefix("success") || has_prefix("succeed")) {
        reading
            .specific
            .push("element_at(responseElements, 'ConsoleLogin') = 'Success'".into());
    }
    if has("without mfa") || has("no mfa") || has("not using mfa") {
        reading
            .specific
            .push("element_at(additionalEventData, 'MFAUsed') = 'No'".into());
    }
    if has("root") || has("root user") || has("root account") {
        reading.specific.push("userIdentity.type = 'Root'".into());
    }
    if has("read-only") || has("read only") || has("readonly") {
        reading.general.push("readOnly = true".into());
    } else if [
        "write",
        "writes",
        "mutating",
        "change",
        "changes",
        "modification",
        "modifications",
    ]
    .iter()
    .any(|w| has(w))
    {
        reading.general.push("readOnly = false".into());
    }
    if has("data events") || has("data event") {
        reading.specific.push("eventCategory = 'Data'".into());
    } else if has("management events") || has("management event") {
        reading.specific.push("eventCategory = 'Management'".into());
    }

    // Services, regions, addresses, keys.
    let services: Vec<&str> = SERVICES
        .iter()
        .filter(|(word, _)| has(word) || (*word == "secretsmanager" && has("secrets manager")))
        .filter(|(word, _)| !(*word == "signin" && console_login))
        .map(|(_, source)| *source)
        .collect();
    push_in(&mut reading.specific, "eventSource", &services);
    let regions: Vec<&str> = lower
        .iter()
        .map(|w| w.trim_matches(['\'', '"']))
        .filter(|w| is_region(w))
        .collect();
    push_in(&mut reading.specific, "awsRegion", &regions);
    let addresses: Vec<&str> = words
        .iter()
        .map(|(w, _)| w.trim_matches(['\'', '"']))
        .filter(|w| w.parse::<std::net::IpAddr>().is_ok())
        .collect();
    push_in(&mut reading.specific, "sourceIPAddress", &addresses);
    let keys: Vec<&str> = words
        .iter()
        .map(|(w, _)| w.trim_matches(['\'', '"']))
        .filter(|w| is_access_key_id(w))
        .collect();
    push_in(&mut reading.specific, "userIdentity.accessKeyId", &keys);
    let accounts: Vec<&str> = lower
        .windows(2)
        .filter(|pair| pair[0] == "account" && is_account_id(pair[1]))
        .map(|pair| pair[1])
        .collect();
    push_in(&mut reading.specific, "recipientAccountId", &accounts);
    if let Some(user) = named_user(&words) {
        reading
            .specific
            .push(format!("userIdentity.userName = '{user}'"));
    }

    reading.window = window(&lower);
    reading.limit = limit(&lower);
    reading.count = ["count", "how many", "number of", "total"]
        .iter()
        .any(|w| has(w));
    reading.by = breakdown(&lower, reading.limit.is_some() || has("most"));
    if reading.by.is_some() {
        reading.count = true;
    }
    reading
}

fn push_in(conditions: &mut Vec<String>, column: &str, values: &[&str]) {
    match values {
        [] => {}
        [one] => conditions.push(format!("{column} = '{one}'")),
        many => conditions.push(format!(
            "{column} IN ({})",
            many.iter()
                .map(|v| format!("'{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `DeleteBucket`, `ConsoleLogin`, `PutObject`: an uppercase letter, then letters and
/// digits, with a second uppercase letter after a lowercase one.
fn is_event_name(word: &str) -> bool {
    let bytes = word.as_bytes();
    bytes.len() >= 4
        && bytes.len() <= 128
        && bytes[0].is_ascii_uppercase()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric())
        && bytes
            .windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`.
fn is_region(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn is_access_key_id(word: &str) -> bool {
    (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word.len() == 20
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn is_account_id(word: &str) -> bool {
    word.len() == 12 && word.bytes().all(|b| b.is_ascii_digit())
}

/// A user named in the prompt: `user 'alice'`, `user "alice"`, `user named alice`,
/// `username alice`, `user name alice`, `iam user alice`. Names keep IAM's characters.
fn named_user<'a>(words: &[(&'a str, String)]) -> Option<&'a str> {
    let is_name = |w: &str| {
        !w.is_empty()
            && w.len() <= 64
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    };
    for (i, (_, lower)) in words.iter().enumerate() {
        let (original_next, _) = match words.get(i + 1) {
            Some(next) => next,
            None => break,
        };
        let quoted = |w: &'a str| {
            w.strip_prefix(['\'', '"'])
                .and_then(|w| w.strip_suffix(['\'', '"']))
        };
        let candidate = match lower.as_str() {
            "user" | "users" | "username" => {
                if let Some(q) = quoted(original_next) {
                    Some(q)
                } else if words[i + 1].1 == "named" || words[i + 1].1 == "called" {
                    words.get(i + 2).map(|(w, _)| *w)
                } else if lower == "username" {
                    Some(*original_next)
                } else {
                    None
                }
            }
            "name" if i > 0 && words[i - 1].1 == "user" => Some(*original_next),
            _ => None,
        };
        if let Some(name) = candidate.map(|c| quoted(c).unwrap_or(c)) {
            if is_name(name) {
                return Some(name);
            }
        }
    }
    None
}

/// `last 7 days`, `past 24 hours`, `last week`, `last month`, `today`, `yesterday`,
/// `this week`, `this month`.
fn window(lower: &[&str]) -> Option<String> {
    let trunc = |unit: &str| format!("date_trunc('{unit}', now())");
    for (i, word) in lower.iter().enumerate() {
        match *word {
            "today" => return Some(format!("eventTime >= {}", trunc("day"))),
            "yesterday" => {
                return Some(format!(
                    "eventTime >= {day} - interval '1' day AND eventTime < {day}",
                    day = trunc("day")
                ))
            }
            "this" => {
                if let Some(unit @ ("week" | "month" | "year")) = lower.get(i + 1).copied() {
                    return Some(format!("eventTime >= {}", trunc(unit)));
                }
            }
            "last" | "past" | "previous" | "recent" => {
                let (amount, unit_at) = match lower.get(i + 1).and_then(|w| number(w)) {
                    Some(n) => (n, i + 2),
                    None => (1, i + 1),
                };
                let Some(unit) = lower.get(unit_at).and_then(|u| time_unit(u)) else {
                    continue;
                };
                let (amount, unit) = match unit {
                    "week" => (amount * 7, "day"),
                    "month" => (amount * 30, "day"),
                    other => (amount, other),
                };
                return Some(format!("eventTime > now() - interval '{amount}' {unit}"));
            }
            _ => {}
        }
    }
    None
}

fn time_unit(word: &str) -> Option<&'static str> {
    match word.trim_end_matches('s') {
        "minute" | "min" => Some("minute"),
        "hour" | "hr" => Some("hour"),
        "day" | "24h" => Some("day"),
        "week" => Some("week"),
        "month" => Some("month"),
        _ => None,
    }
}

/// A small count written as digits or a word.
fn number(word: &str) -> Option<u32> {
    const WORDS: &[&str] = &[
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    if let Ok(n) = word.parse::<u32>() {
        return (1..=100_000).contains(&n).then_some(n);
    }
    WORDS.iter().position(|w| *w == word).map(|i| i as u32 + 1)
}

/// `top 10`, `first 5`, `10 most`.
fn limit(lower: &[&str]) -> Option<u32> {
    for (i, word) in lower.iter().enumerate() {
        if matches!(*word, "top" | "first") {
            let n = lower.get(i + 1).and_then(|w| number(w)).unwrap_or(10);
            return Some(n.min(MAX_LIMIT));
        }
        if let (Some(n), Some(&"most")) = (number(word), lower.get(i + 1)) {
            return Some(n.min(MAX_LIMIT));
        }
    }
    None
}

/// The breakdown: `by X`, `per X`, `for each X`, `group by X`, or, in a ranking (`top`,
/// `most`), the thing ranked (`top 10 users`, `which services were called most`).
fn breakdown(lower: &[&str], ranking: bool) -> Option<Dimension> {
    for (i, word) in lower.iter().enumerate() {
        let at = match *word {
            "by" | "per" => i + 1,
            "each" if i > 0 && lower[i - 1] == "for" => i + 1,
            _ => continue,
        };
        // "by user 'alice'" names a user rather than a breakdown.
        let follows = lower.get(at + 1).copied().unwrap_or("");
        if follows.starts_with(['\'', '"']) || matches!(follows, "named" | "called") {
            continue;
        }
        if let Some(w) = lower.get(at) {
            if let Some((d, _)) = Dimension::named(w, lower.get(at + 1).copied()) {
                return Some(d);
            }
        }
    }
    if lower.contains(&"daily") {
        return Some(Dimension::Day);
    }
    if lower.contains(&"hourly") {
        return Some(Dimension::Hour);
    }
    if !ranking && !lower.contains(&"which") {
        return None;
    }
    // The first dimension word after "top N" / "most" / "which".
    let start = lower
        .iter()
        .position(|w| matches!(*w, "top" | "most" | "which" | "first"))
        .unwrap_or(0);
    for i in start..lower.len() {
        if lower[i] == "event" || lower[i] == "events" {
            // "top 10 events" means event names unless "event source" follows.
            if let Some((d, _)) = Dimension::named(lower[i], lower.get(i + 1).copied()) {
                return Some(d);
            }
        }
        if let Some((d, _)) = Dimension::named(lower[i], lower.get(i + 1).copied()) {
            if !d.is_time() {
                return Some(d);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = "EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE";

    fn sql(prompt: &str) -> String {
        let library = SampleLibrary::builtin().unwrap();
        generate(&library, prompt, STORE)
            .unwrap_or_else(|| panic!("no query for {prompt}"))
            .sql
    }

    #[test]
    fn top_users_who_called_an_api() {
        let q = sql("top 10 users who called DeleteBucket in the last 7 days");
        assert_eq!(
            q,
            format!(
                "SELECT userIdentity.arn AS principal, COUNT(*) AS eventCount FROM {STORE}\nWHERE eventTime > now() - interval '7' day\n  AND eventName = 'DeleteBucket'\nGROUP BY userIdentity.arn ORDER BY eventCount DESC LIMIT 10"
            )
        );
    }

    #[test]
    fn failed_console_logins_yesterday() {
        let q = sql("failed console logins yesterday");
        assert!(q.contains("eventName = 'ConsoleLogin'"), "{q}");
        assert!(q.contains("'Failure'"), "{q}");
        assert!(
            q.contains("eventTime >= date_trunc('day', now()) - interval '1' day"),
            "{q}"
        );
        assert!(q.contains("ORDER BY eventTime DESC LIMIT 100"), "{q}");
    }

    #[test]
    fn count_events_by_region() {
        let q = sql("count events by region");
        assert_eq!(
            q,
            format!("SELECT awsRegion AS awsRegion, COUNT(*) AS eventCount FROM {STORE}\nGROUP BY awsRegion ORDER BY eventCount DESC")
        );
    }

    #[test]
    fn filters_by_service_region_address_and_user() {
        let q = sql("s3 errors in us-west-2 from 203.0.113.7 by user 'alice' in the past 24 hours");
        for part in [
            "eventSource = 's3.amazonaws.com'",
            "awsRegion = 'us-west-2'",
            "sourceIPAddress = '203.0.113.7'",
            "userIdentity.userName = 'alice'",
            "errorCode IS NOT NULL",
            "interval '24' hour",
        ] {
            assert!(q.contains(part), "{part} missing from {q}");
        }
    }

    #[test]
    fn daily_breakdowns_order_by_time() {
        let q = sql("number of iam events per day over the last month");
        assert!(
            q.contains("GROUP BY date_trunc('day', eventTime) ORDER BY day"),
            "{q}"
        );
        assert!(q.contains("interval '30' day"), "{q}");
    }

    #[test]
    fn prompts_without_specifics_use_the_library() {
        let library = SampleLibrary::builtin().unwrap();
        let generated =
            generate(&library, "security groups opened to the internet", STORE).unwrap();
        assert_eq!(
            generated.source,
            Source::Sample("Security groups opened to the internet".into())
        );
        assert!(generated.sql.contains(STORE));
        assert!(!generated.sql.contains("$EDS_ID"));
    }

    #[test]
    fn nonsense_finds_nothing() {
        let library = SampleLibrary::builtin().unwrap();
        for prompt in ["what is the weather like", "zxcv qwer asdf", "hello"] {
            assert_eq!(generate(&library, prompt, STORE), None, "{prompt}");
        }
    }

    #[test]
    fn quotes_cannot_reach_the_sql() {
        let q = sql("activity of user 'bob''; DROP TABLE x' today");
        assert!(!q.contains("DROP"), "{q}");
    }

    #[test]
    fn regions_and_keys_are_recognised() {
        assert!(is_region("us-east-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(!is_region("e-mail"));
        assert!(is_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(!is_access_key_id("AKIA"));
        assert!(is_event_name("DeleteBucket"));
        assert!(!is_event_name("Delete"));
        assert!(!is_event_name("IAM"));
    }
}
