//! Turns a wire request into a typed [`Query`], answering with LookupEvents' own
//! exceptions: defaults (50 results, the last `retention` days up to now), the one
//! attribute allowed, attribute value lengths, the time range and the category.

use super::error::LookupError;
use super::request::LookupRequest;
use super::token::{Binding, TokenKey};
use crate::attributes::{HistoryCategory, LookupAttributeKey};
use opentrail_operations::{EventCategory, Timestamp};
use sha2::{Digest, Sha256};

pub(crate) const MAX_RESULTS: i32 = 50;
const MAX_ATTRIBUTE_VALUE: usize = 2000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Which events of the stream a query selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    /// Every event (a time-range-only lookup).
    Stream,
    EventId(String),
    Attribute(LookupAttributeKey, String),
}

/// A validated LookupEvents call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) account: String,
    pub(crate) region: String,
    pub(crate) category: HistoryCategory,
    pub(crate) filter: Filter,
    /// Inclusive bounds, epoch seconds.
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) limit: usize,
    /// Only events whose sort key is below this one (the page position of a NextToken).
    pub(crate) below: Option<u64>,
    pub(crate) binding: Binding,
}

pub(crate) fn validate(
    request: &LookupRequest,
    retention_days: u32,
    tokens: &TokenKey,
) -> Result<Query, LookupError> {
    let input = &request.input;
    let category = match &input.event_category {
        None => HistoryCategory::Management,
        Some(EventCategory::Insight) => HistoryCategory::Insight,
        Some(EventCategory::Unknown(other)) => {
            return Err(LookupError::InvalidEventCategory(format!(
                "invalid EventCategory {other}: the only valid value is insight"
            )))
        }
    };
    let filter = filter(request, category)?;

    let now = request.now.timestamp();
    let given_start = input.start_time.map(|time| whole_seconds(time, Round::Up));
    let given_end = input.end_time.map(|time| whole_seconds(time, Round::Down));
    let oldest = now - i64::from(retention_days) * SECONDS_PER_DAY;
    let start = given_start.unwrap_or(oldest);
    let end = given_end.unwrap_or(now);
    if start > end {
        return Err(LookupError::InvalidTimeRange(
            "StartTime must not be after EndTime".to_owned(),
        ));
    }
    if end < oldest {
        return Err(LookupError::InvalidTimeRange(format!(
            "the time range ends more than {retention_days} days ago, outside event history"
        )));
    }

    let limit = match input.max_results {
        None => MAX_RESULTS,
        Some(limit @ 1..=MAX_RESULTS) => limit,
        Some(other) => {
            return Err(LookupError::InvalidMaxResults(format!(
                "MaxResults {other} is out of range: it must be between 1 and {MAX_RESULTS}"
            )))
        }
    };

    let binding = binding(request, category, &filter, given_start, given_end);
    let below = match input.next_token.as_deref() {
        None | Some("") => None,
        Some(token) => Some(tokens.decode(token, &binding)?),
    };
    Ok(Query {
        account: request.account.clone(),
        region: request.region.clone(),
        category,
        filter,
        start: start.max(oldest),
        end,
        limit: limit as usize,
        below,
        binding,
    })
}

fn filter(request: &LookupRequest, category: HistoryCategory) -> Result<Filter, LookupError> {
    let attributes = request.input.lookup_attributes.as_deref().unwrap_or(&[]);
    let attribute = match attributes {
        [] => return Ok(Filter::Stream),
        [attribute] => attribute,
        _ => {
            return Err(LookupError::InvalidLookupAttributes(
                "only one lookup attribute can be specified".to_owned(),
            ))
        }
    };
    let invalid = |message: String| Err(LookupError::InvalidLookupAttributes(message));
    // Both members are required by the model, which the wire layer checks before a
    // request gets here; the generated type cannot lack them.
    let name = attribute.attribute_key.as_str();
    let Some(key) = LookupAttributeKey::parse(name) else {
        return invalid(format!("invalid AttributeKey {name}"));
    };
    let value = attribute.attribute_value.as_str();
    let length = weighted_length(value);
    if !(1..=MAX_ATTRIBUTE_VALUE).contains(&length) {
        return invalid(format!(
            "AttributeValue must be 1 to {MAX_ATTRIBUTE_VALUE} characters long, counting _, space, comma and newline twice"
        ));
    }
    if category == HistoryCategory::Insight && !key.applies_to_insights() {
        return invalid(format!(
            "AttributeKey {name} cannot be used with EventCategory insight"
        ));
    }
    if key == LookupAttributeKey::ReadOnly && value != "true" && value != "false" {
        return invalid("the ReadOnly AttributeValue must be true or false".to_owned());
    }
    Ok(match key {
        LookupAttributeKey::EventId => Filter::EventId(value.to_owned()),
        _ => Filter::Attribute(key, value.to_owned()),
    })
}

/// The length AWS checks `AttributeValue` against: `_`, space, `,` and newline count twice.
fn weighted_length(value: &str) -> usize {
    value
        .chars()
        .map(|c| {
            if matches!(c, '_' | ' ' | ',' | '\n') {
                2
            } else {
                1
            }
        })
        .sum()
}

#[derive(Clone, Copy)]
enum Round {
    Up,
    Down,
}

/// Whole epoch seconds of a (millisecond-precision) timestamp: `StartTime` rounds up and
/// `EndTime` down, so the range holds only whole seconds inside the one asked for.
fn whole_seconds(time: Timestamp, round: Round) -> i64 {
    let millis = time.0.timestamp_millis();
    match round {
        Round::Down => millis.div_euclid(1000),
        Round::Up => -(-millis).div_euclid(1000),
    }
}

/// The digest a NextToken is bound to: every parameter that decides the result set.
/// `MaxResults` is left out so a client may change its page size between pages.
fn binding(
    request: &LookupRequest,
    category: HistoryCategory,
    filter: &Filter,
    start: Option<i64>,
    end: Option<i64>,
) -> Binding {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(b"lookup-events/v1");
    field(request.account.as_bytes());
    field(request.region.as_bytes());
    field(&[category.byte()]);
    match filter {
        Filter::Stream => field(b""),
        Filter::EventId(value) => {
            field(b"EventId");
            field(value.as_bytes());
        }
        Filter::Attribute(key, value) => {
            field(key.as_str().as_bytes());
            field(value.as_bytes());
        }
    }
    for bound in [start, end] {
        match bound {
            None => field(b"-"),
            Some(seconds) => field(&seconds.to_be_bytes()),
        }
    }
    let digest = hasher.finalize();
    let mut binding = [0u8; 16];
    binding.copy_from_slice(&digest[..16]);
    binding
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use opentrail_operations::{LookupAttribute, LookupEventsRequest};
    use opentrail_wire::AwsError;

    fn attribute(key: &str, value: &str) -> LookupAttribute {
        LookupAttribute {
            attribute_key: key.into(),
            attribute_value: value.into(),
        }
    }

    fn seconds(time: f64) -> Option<Timestamp> {
        Timestamp::from_epoch_seconds(time)
    }

    fn request(input: LookupEventsRequest) -> LookupRequest {
        LookupRequest {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            now: Utc.with_ymd_and_hms(2024, 3, 31, 0, 0, 0).unwrap(),
            input,
        }
    }

    fn check(input: LookupEventsRequest) -> Result<Query, LookupError> {
        validate(&request(input), 90, &TokenKey::new([1; 32]))
    }

    fn with_attribute(key: &str, value: &str) -> LookupEventsRequest {
        LookupEventsRequest {
            lookup_attributes: Some(vec![attribute(key, value)]),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_fifty_results_over_the_retention_window() {
        let query = check(LookupEventsRequest::default()).unwrap();
        let now = request(LookupEventsRequest::default()).now.timestamp();
        assert_eq!(query.limit, 50);
        assert_eq!(query.end, now);
        assert_eq!(query.start, now - 90 * 86_400);
        assert_eq!(query.filter, Filter::Stream);
        assert_eq!(query.category, HistoryCategory::Management);
    }

    #[test]
    fn attribute_rules() {
        let two = LookupEventsRequest {
            lookup_attributes: Some(vec![
                attribute("EventName", "a"),
                attribute("EventName", "b"),
            ]),
            ..Default::default()
        };
        for bad in [
            two,
            with_attribute("Bogus", "x"),
            with_attribute("EventName", ""),
            with_attribute("EventName", &"a".repeat(2001)),
            with_attribute("EventName", &"_".repeat(1001)),
            with_attribute("ReadOnly", "yes"),
        ] {
            let error = check(bad).unwrap_err();
            assert_eq!(error.code(), "InvalidLookupAttributesException");
        }
        assert!(check(with_attribute("EventName", &"_".repeat(1000))).is_ok());
        assert!(check(with_attribute("EventName", &"a".repeat(2000))).is_ok());
        assert_eq!(
            check(with_attribute("EventId", "x")).unwrap().filter,
            Filter::EventId("x".into())
        );
    }

    #[test]
    fn insight_lookups_allow_three_attributes() {
        let mut input = with_attribute("Username", "root");
        input.event_category = Some(EventCategory::Insight);
        assert_eq!(
            check(input).unwrap_err().code(),
            "InvalidLookupAttributesException"
        );
        let mut input = with_attribute("EventSource", "s3.amazonaws.com");
        input.event_category = Some(EventCategory::Insight);
        assert_eq!(check(input).unwrap().category, HistoryCategory::Insight);
        let input = LookupEventsRequest {
            event_category: Some("Insight".into()),
            ..Default::default()
        };
        assert_eq!(
            check(input).unwrap_err().code(),
            "InvalidEventCategoryException"
        );
    }

    #[test]
    fn time_range_rules() {
        let now = request(LookupEventsRequest::default()).now.timestamp() as f64;
        let range = |start: Option<f64>, end: Option<f64>| LookupEventsRequest {
            start_time: start.and_then(seconds),
            end_time: end.and_then(seconds),
            ..Default::default()
        };
        let code = |input| check(input).unwrap_err().code();
        assert_eq!(
            code(range(Some(now), Some(now - 1.0))),
            "InvalidTimeRangeException"
        );
        assert_eq!(
            code(range(Some(now + 10.0), None)),
            "InvalidTimeRangeException"
        );
        assert_eq!(
            code(range(None, Some(now - 91.0 * 86_400.0))),
            "InvalidTimeRangeException"
        );
        let clamped = check(range(Some(0.0), Some(now))).unwrap();
        assert_eq!(clamped.start, now as i64 - 90 * 86_400);
        let fractional = check(range(Some(now - 10.5), Some(now - 0.5))).unwrap();
        assert_eq!(
            (fractional.start, fractional.end),
            (now as i64 - 10, now as i64 - 1)
        );
        assert!(check(range(Some(now), Some(now))).is_ok());
    }

    #[test]
    fn max_results_range() {
        for (value, ok) in [(0, false), (1, true), (50, true), (51, false), (-1, false)] {
            let input = LookupEventsRequest {
                max_results: Some(value),
                ..Default::default()
            };
            match check(input) {
                Ok(query) => assert!(ok && query.limit == value as usize),
                Err(error) => {
                    assert!(!ok);
                    assert_eq!(error.code(), "InvalidMaxResultsException");
                }
            }
        }
    }

    #[test]
    fn tokens_are_bound_to_parameters() {
        let tokens = TokenKey::new([1; 32]);
        let first = validate(&request(with_attribute("EventName", "A")), 90, &tokens).unwrap();
        let token = tokens.encode(42, &first.binding);
        let mut same = with_attribute("EventName", "A");
        same.next_token = Some(token.clone());
        same.max_results = Some(3);
        assert_eq!(
            validate(&request(same), 90, &tokens).unwrap().below,
            Some(42)
        );
        let mut other = with_attribute("EventName", "B");
        other.next_token = Some(token.clone());
        assert_eq!(
            validate(&request(other), 90, &tokens).unwrap_err().code(),
            "InvalidNextTokenException"
        );
        let mut other_account = request(with_attribute("EventName", "A"));
        other_account.account = "999999999999".into();
        other_account.input.next_token = Some(token);
        assert!(validate(&other_account, 90, &tokens).is_err());
    }
}
