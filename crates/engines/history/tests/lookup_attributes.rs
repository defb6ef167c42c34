//! Every lookup attribute, over real AWS records and synthetic ones, against a naive
//! model of LookupEvents.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use opentrail_history::{EventSummary, HistoryCategory, LookupAttributeKey, LookupRequest};
use opentrail_model::EventRecord;
use opentrail_operations::LookupEventsRequest;
use serde_json::json;
use std::collections::BTreeSet;

/// The recipient account of every conformance record (the files are named for the
/// bucket owner's account).
const CONFORMANCE_ACCOUNT: &str = "123837392027";

fn conformance_request(account: &str, input: LookupEventsRequest) -> LookupRequest {
    LookupRequest {
        account: account.into(),
        region: "us-east-1".into(),
        now: Utc.with_ymd_and_hms(2023, 7, 11, 0, 0, 0).unwrap(),
        input,
    }
}

/// The naive answer: management events of the account's stream with `key` = `value`.
fn expected(
    records: &[EventRecord],
    account: &str,
    key: LookupAttributeKey,
    value: &str,
) -> BTreeSet<String> {
    records
        .iter()
        .filter(|record| HistoryCategory::of(record) == Some(HistoryCategory::Management))
        .filter(|record| {
            record.recipient_account_id() == account && record.aws_region() == "us-east-1"
        })
        .filter(|record| EventSummary::of(record).values(key).contains(&value))
        .map(|record| record.event_id().to_owned())
        .collect()
}

#[test]
fn conformance_records_are_found_by_every_attribute() {
    let records = conformance_records();
    assert!(records.len() > 1_000);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let (flushed, recent) = records.split_at(records.len() - 30);
    for (batch, chunk) in flushed.chunks(100).enumerate() {
        insert(&store, (batch * 100) as u64, chunk);
    }
    store.flush().unwrap();
    insert(&store, flushed.len() as u64, recent);
    assert!(store.stats().segments > 1, "{:?}", store.stats());
    assert!(store.stats().memtable_events > 0, "{:?}", store.stats());

    let mut checked = 0;
    for record in records.iter().step_by(131) {
        let summary = EventSummary::of(record);
        let account = record.recipient_account_id();
        for key in LookupAttributeKey::ALL {
            for value in summary.values(key) {
                let events = all_pages(
                    &store,
                    &conformance_request(account, by_attribute(key.as_str(), value)),
                );
                assert_newest_first(&events);
                let found: Vec<String> = ids(&events);
                let unique: BTreeSet<String> = found.iter().cloned().collect();
                assert_eq!(unique.len(), found.len(), "duplicates for {key:?}={value}");
                let expected = expected(&records, account, key, value);
                assert!(!expected.is_empty());
                assert_eq!(unique, expected, "{key:?}={value}");
                checked += 1;
            }
        }
    }
    assert!(checked > 40);

    // Time-range-only lookups see exactly the window.
    let start = Utc.with_ymd_and_hms(2023, 7, 10, 12, 10, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2023, 7, 10, 12, 20, 0).unwrap();
    let input = LookupEventsRequest {
        start_time: seconds(start.timestamp() as f64),
        end_time: seconds(end.timestamp() as f64),
        ..Default::default()
    };
    let events = all_pages(&store, &conformance_request(CONFORMANCE_ACCOUNT, input));
    let expected: BTreeSet<String> = records
        .iter()
        .filter(|record| HistoryCategory::of(record).is_some())
        .filter(|record| record.recipient_account_id() == CONFORMANCE_ACCOUNT)
        .filter(|record| {
            record
                .event_time()
                .is_some_and(|time| time >= start && time <= end)
        })
        .map(|record| record.event_id().to_owned())
        .collect();
    assert!(!expected.is_empty());
    assert_newest_first(&events);
    assert_eq!(ids(&events).into_iter().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn conformance_events_keep_their_original_json() {
    let records = conformance_records();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    insert(&store, 0, &records);
    store.flush().unwrap();
    for record in records.iter().step_by(97) {
        let page = store
            .lookup(&conformance_request(
                record.recipient_account_id(),
                by_attribute("EventId", record.event_id()),
            ))
            .unwrap();
        assert_eq!(page.events().len(), 1);
        let event = &page.events()[0];
        assert_eq!(event.cloud_trail_event.as_deref(), Some(record.json()));
        assert_eq!(
            event_seconds(event),
            record.event_time().map(|time| time.timestamp())
        );
        assert_eq!(event.event_name.as_deref(), Some(record.event_name()));
        assert!(page.next_token.is_none());
    }
}

#[test]
fn synthetic_attributes_and_event_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let base = now().timestamp() - 3_600;
    let assumed = Synthetic::new("assumed", at(base))
        .name("sts.amazonaws.com", "AssumeRole")
        .read_only(false)
        .identity(json!({
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:build-42",
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/build-42"),
            "accountId": ACCOUNT,
            "accessKeyId": "ASIATEMP",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "Deployer"}}
        }))
        .resources(json!([
            {"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": format!("arn:aws:iam::{ACCOUNT}:role/Target")},
            {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::logs"}
        ]));
    let root = Synthetic::new("root", at(base + 1)).identity(json!({
        "type": "Root", "principalId": ACCOUNT, "arn": format!("arn:aws:iam::{ACCOUNT}:root"), "accountId": ACCOUNT
    }));
    let plain = Synthetic::new("plain", at(base + 2));
    insert(
        &store,
        0,
        &[assumed.record(), root.record(), plain.record()],
    );

    let only = |key: &str, value: &str| {
        ids(store
            .lookup(&request(now(), by_attribute(key, value)))
            .unwrap()
            .events())
    };
    assert_eq!(only("Username", "build-42"), ["assumed"]);
    assert_eq!(only("Username", "Deployer"), Vec::<String>::new());
    assert_eq!(only("Username", "root"), ["root"]);
    assert_eq!(only("Username", "alice"), ["plain"]);
    assert_eq!(only("AccessKeyId", "ASIATEMP"), ["assumed"]);
    assert_eq!(only("AccessKeyId", "AKIAALICE"), ["plain"]);
    assert_eq!(only("ReadOnly", "false"), ["assumed"]);
    assert_eq!(only("ReadOnly", "true"), ["plain", "root"]);
    assert_eq!(only("ResourceType", "AWS::S3::Bucket"), ["assumed"]);
    assert_eq!(only("ResourceName", "arn:aws:s3:::logs"), ["assumed"]);
    assert_eq!(only("ResourceName", "logs"), Vec::<String>::new());
    assert_eq!(only("EventSource", "sts.amazonaws.com"), ["assumed"]);
    assert_eq!(only("EventName", "DescribeInstances"), ["plain", "root"]);
    assert_eq!(only("EventName", "describeinstances"), Vec::<String>::new());
    assert_eq!(only("EventId", "root"), ["root"]);
    assert_eq!(only("EventId", "missing"), Vec::<String>::new());

    let page = store
        .lookup(&request(now(), by_attribute("EventId", "assumed")))
        .unwrap();
    let wire = serde_json::to_value(&page).unwrap();
    assert_eq!(
        wire,
        json!({"Events": [{
            "EventId": "assumed",
            "EventName": "AssumeRole",
            "ReadOnly": "false",
            "AccessKeyId": "ASIATEMP",
            "EventTime": base,
            "EventSource": "sts.amazonaws.com",
            "Username": "build-42",
            "Resources": [
                {"ResourceType": "AWS::IAM::Role", "ResourceName": format!("arn:aws:iam::{ACCOUNT}:role/Target")},
                {"ResourceType": "AWS::S3::Bucket", "ResourceName": "arn:aws:s3:::logs"}
            ],
            "CloudTrailEvent": assumed.record().json()
        }]})
    );
    let empty = store
        .lookup(&request(now(), by_attribute("EventId", "plain")))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&empty).unwrap()["Events"][0]["Resources"],
        json!([])
    );
}

#[test]
fn insights_are_only_returned_for_the_insight_category() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let time = at(now().timestamp() - 60);
    insert(
        &store,
        0,
        &[
            insight("insight-1", time, "s3.amazonaws.com", "PutObject"),
            Synthetic::new("management-1", time)
                .name("s3.amazonaws.com", "PutBucketPolicy")
                .record(),
        ],
    );
    for flushed in [false, true] {
        if flushed {
            store.flush().unwrap();
        }
        let management = store
            .lookup(&request(now(), LookupEventsRequest::default()))
            .unwrap();
        assert_eq!(ids(management.events()), ["management-1"]);
        let mut input = by_attribute("EventSource", "s3.amazonaws.com");
        input.event_category = Some("insight".into());
        let insights = store.lookup(&request(now(), input)).unwrap();
        assert_eq!(ids(insights.events()), ["insight-1"]);
        assert_eq!(
            insights.events()[0].event_name.as_deref(),
            Some("PutObject")
        );
        let mut input = by_attribute("EventName", "PutObject");
        input.event_category = Some("insight".into());
        assert_eq!(
            ids(store.lookup(&request(now(), input)).unwrap().events()),
            ["insight-1"]
        );
        let mut input = by_attribute("EventId", "management-1");
        input.event_category = Some("insight".into());
        assert!(store
            .lookup(&request(now(), input))
            .unwrap()
            .events()
            .is_empty());
    }
}
