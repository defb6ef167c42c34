//! A refresh's query parameters: `$StartTime$`, `$EndTime$`, `$Period$` (and, for managed
//! dashboards, `$EventDataStoreId$`), resolved to values and put in place of each widget
//! query's `?` placeholders, in order.

use crate::DashboardError;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use std::collections::BTreeMap;

pub const START_TIME: &str = "$StartTime$";
pub const END_TIME: &str = "$EndTime$";
pub const PERIOD: &str = "$Period$";
pub const EVENT_DATA_STORE_ID: &str = "$EventDataStoreId$";

/// Without `$StartTime$`, a refresh covers this long before `$EndTime$`.
pub const DEFAULT_RANGE: Duration = Duration::days(1);
/// `date_trunc` units `$Period$` may name.
const PERIODS: &[&str] = &["minute", "hour", "day", "week", "month"];

/// The values of one refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    /// `yyyy-MM-dd HH:mm:ss`, as queries compare `eventTime`.
    pub start: String,
    pub end: String,
    pub period: String,
    pub store: Option<String>,
}

fn invalid(message: String) -> DashboardError {
    DashboardError::Validation(message)
}

/// Reads `QueryParameterValues`; `managed` dashboards also take (and need)
/// `$EventDataStoreId$`. Defaults: the day before `now`, `$Period$` `hour` for ranges
/// up to two days and `day` beyond.
pub fn resolve(
    given: &BTreeMap<String, String>,
    managed: bool,
    now: DateTime<Utc>,
) -> Result<Values, DashboardError> {
    let allowed: &[&str] = if managed {
        &[START_TIME, END_TIME, PERIOD, EVENT_DATA_STORE_ID]
    } else {
        &[START_TIME, END_TIME, PERIOD]
    };
    if let Some(key) = given.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(format!(
            "QueryParameterValues key {key} is not valid for this dashboard: use {}",
            allowed.join(", ")
        )));
    }
    if let Some((key, value)) = given.iter().find(|(_, v)| {
        !(1..=128).contains(&v.len())
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-:".contains(&b))
    }) {
        return Err(invalid(format!(
            "QueryParameterValues {key} value {value} is not valid: 1 to 128 characters of letters, digits and ._/-:"
        )));
    }
    let end = given
        .get(END_TIME)
        .map(|v| parse_time(END_TIME, v))
        .transpose()?
        .unwrap_or(now);
    let start = given
        .get(START_TIME)
        .map(|v| parse_time(START_TIME, v))
        .transpose()?
        .unwrap_or(end - DEFAULT_RANGE);
    if start > end {
        return Err(invalid(format!(
            "{START_TIME} {start} is after {END_TIME} {end}"
        )));
    }
    let period = match given.get(PERIOD) {
        Some(value) => {
            let lower = value.to_ascii_lowercase();
            if !PERIODS.contains(&lower.as_str()) {
                return Err(invalid(format!(
                    "{PERIOD} {value} is not one of {}",
                    PERIODS.join(", ")
                )));
            }
            lower
        }
        None if end - start <= Duration::days(2) => "hour".to_owned(),
        None => "day".to_owned(),
    };
    let store = match given.get(EVENT_DATA_STORE_ID) {
        // An event data store ARN ends in its id.
        Some(value) => Some(value.rsplit('/').next().unwrap_or(value).to_owned()),
        None if managed => {
            return Err(invalid(format!(
                "Refreshing a managed dashboard needs the {EVENT_DATA_STORE_ID} query parameter: the event data store its widgets query"
            )))
        }
        None => None,
    };
    let render = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    Ok(Values {
        start: render(start),
        end: render(end),
        period,
        store,
    })
}

/// A time parameter: RFC 3339 (`2026-01-02T03:04:05Z`), `2026-01-02T03:04:05` (UTC),
/// `2026-01-02` (midnight UTC) or epoch seconds.
fn parse_time(key: &str, value: &str) -> Result<DateTime<Utc>, DashboardError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    if let Some(t) = value
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
    {
        return Ok(t);
    }
    Err(invalid(format!(
        "{key} {value} is not a time: use 2026-01-02T03:04:05Z, 2026-01-02 or epoch seconds"
    )))
}

/// A widget's statement with each `?` replaced by its parameter, in which the
/// `$...$` names are replaced by the refresh's values.
pub fn substitute(statement: &str, parameters: &[String], values: &Values) -> String {
    let mut parameters = parameters.iter();
    let mut out = String::with_capacity(statement.len());
    for (index, part) in statement.split('?').enumerate() {
        if index > 0 {
            // Validation made the counts equal; a missing one stays a `?`.
            match parameters.next() {
                Some(parameter) => out.push_str(&expand(parameter, values)),
                None => out.push('?'),
            }
        }
        out.push_str(part);
    }
    out
}

fn expand(parameter: &str, values: &Values) -> String {
    let mut text = parameter
        .replace(START_TIME, &values.start)
        .replace(END_TIME, &values.end)
        .replace(PERIOD, &values.period);
    if let Some(store) = &values.store {
        text = text.replace(EVENT_DATA_STORE_ID, store);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-04T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_cover_the_last_day_by_hour() {
        let values = resolve(&BTreeMap::new(), false, now()).unwrap();
        assert_eq!(values.start, "2026-03-03 12:00:00");
        assert_eq!(values.end, "2026-03-04 12:00:00");
        assert_eq!(values.period, "hour");
        assert_eq!(values.store, None);
    }

    #[test]
    fn given_values_are_parsed_and_checked() {
        let values = resolve(
            &map(&[
                (START_TIME, "2026-01-01"),
                (END_TIME, "2026-02-01T00:00:00Z"),
            ]),
            false,
            now(),
        )
        .unwrap();
        assert_eq!(values.start, "2026-01-01 00:00:00");
        assert_eq!(values.period, "day");
        assert!(resolve(&map(&[(START_TIME, "yesterday")]), false, now()).is_err());
        assert!(resolve(&map(&[(PERIOD, "fortnight")]), false, now()).is_err());
        assert!(resolve(&map(&[("$Other$", "x")]), false, now()).is_err());
        assert!(resolve(&map(&[(EVENT_DATA_STORE_ID, "abc")]), false, now()).is_err());
        assert!(resolve(&BTreeMap::new(), true, now()).is_err());
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc-123";
        let managed = resolve(&map(&[(EVENT_DATA_STORE_ID, arn)]), true, now()).unwrap();
        assert_eq!(managed.store.as_deref(), Some("abc-123"));
        assert!(resolve(
            &map(&[(START_TIME, "2026-02-01"), (END_TIME, "2026-01-01")]),
            false,
            now()
        )
        .is_err());
    }

    #[test]
    fn placeholders_take_their_parameters_in_order() {
        let values = Values {
            start: "2026-01-01 00:00:00".into(),
            end: "2026-01-02 00:00:00".into(),
            period: "hour".into(),
            store: Some("eds1".into()),
        };
        let statement =
            "SELECT date_trunc('?', eventTime) FROM ? WHERE eventTime >= '?' AND eventName = '?'";
        let parameters = vec![
            PERIOD.to_string(),
            EVENT_DATA_STORE_ID.to_string(),
            START_TIME.to_string(),
            "ConsoleLogin".to_string(),
        ];
        assert_eq!(
            substitute(statement, &parameters, &values),
            "SELECT date_trunc('hour', eventTime) FROM eds1 WHERE eventTime >= '2026-01-01 00:00:00' AND eventName = 'ConsoleLogin'"
        );
    }
}
