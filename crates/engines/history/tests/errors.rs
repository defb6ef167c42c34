//! Each LookupEvents exception, through the store.

mod common;

use common::*;
use opentrail_history::LookupError;
use opentrail_operations::{EventCategory, LookupEventsRequest, Timestamp};
use opentrail_wire::AwsError;

fn code(input: LookupEventsRequest) -> &'static str {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let error: LookupError = store.lookup(&request(now(), input)).unwrap_err();
    assert!(error.is_client_error());
    assert!(!error.message().is_empty());
    error.code()
}

#[test]
fn invalid_lookup_attributes() {
    let two = LookupEventsRequest {
        lookup_attributes: Some(vec![
            attribute("EventName", "A"),
            attribute("Username", "B"),
        ]),
        ..Default::default()
    };
    for input in [
        two,
        by_attribute("NotAKey", "x"),
        by_attribute("Username", ""),
        by_attribute("ResourceName", &"x".repeat(2001)),
        by_attribute("ReadOnly", "TRUE"),
    ] {
        assert_eq!(code(input), "InvalidLookupAttributesException");
    }
    let mut insight_username = by_attribute("Username", "root");
    insight_username.event_category = Some(EventCategory::Insight);
    assert_eq!(code(insight_username), "InvalidLookupAttributesException");
}

#[test]
fn invalid_time_range() {
    let now_seconds = now().timestamp() as f64;
    for (start, end) in [
        (Some(now_seconds), Some(now_seconds - 1.0)),
        (Some(now_seconds + 3_600.0), None),
        (None, Some(now_seconds - 91.0 * 86_400.0)),
    ] {
        let input = LookupEventsRequest {
            start_time: start.and_then(seconds),
            end_time: end.and_then(seconds),
            ..Default::default()
        };
        assert_eq!(code(input), "InvalidTimeRangeException");
    }
}

#[test]
fn invalid_max_results() {
    for max in [0, 51, -5] {
        let input = LookupEventsRequest {
            max_results: Some(max),
            ..Default::default()
        };
        assert_eq!(code(input), "InvalidMaxResultsException");
    }
}

#[test]
fn invalid_next_token() {
    for token in ["garbage", "AAAA", &"A".repeat(55)] {
        let input = LookupEventsRequest {
            next_token: Some(token.to_owned()),
            ..Default::default()
        };
        assert_eq!(code(input), "InvalidNextTokenException");
    }
}

#[test]
fn invalid_event_category() {
    for category in ["Insight", "management", "data", ""] {
        let input = LookupEventsRequest {
            event_category: Some(category.into()),
            ..Default::default()
        };
        assert_eq!(code(input), "InvalidEventCategoryException");
    }
}

#[test]
fn wire_names_parse() {
    let input: LookupEventsRequest = serde_json::from_str(
        r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"RunInstances"}],
            "StartTime":1711843200.5,"EndTime":1711846800,"EventCategory":"insight","MaxResults":5,"NextToken":"t"}"#,
    )
    .unwrap();
    assert_eq!(input.max_results, Some(5));
    assert_eq!(
        input.start_time,
        Timestamp::from_epoch_seconds(1_711_843_200.5)
    );
    assert_eq!(input.event_category, Some(EventCategory::Insight));
    assert_eq!(
        input.lookup_attributes.unwrap()[0],
        attribute("EventName", "RunInstances")
    );
}
