//! Shared helpers: synthetic records, the conformance records, and paging through results.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use opentrail_history::{HistoryOptions, HistoryStore, LookupError, LookupRequest};
use opentrail_model::EventRecord;
use opentrail_operations::{
    Event, LookupAttribute, LookupEventsRequest, LookupEventsResponse, Timestamp,
};
use serde_json::{json, Value};
use std::path::Path;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

/// 2024-03-31T00:00:00Z, the "now" of synthetic tests.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 31, 0, 0, 0).unwrap()
}

/// A synthetic management event; tweak it with the builder methods.
#[derive(Clone)]
pub struct Synthetic {
    pub value: Value,
}

impl Synthetic {
    pub fn new(id: &str, time: DateTime<Utc>) -> Self {
        Self {
            value: json!({
                "eventVersion": "1.09",
                "userIdentity": {
                    "type": "IAMUser",
                    "principalId": "AIDAEXAMPLE",
                    "arn": format!("arn:aws:iam::{ACCOUNT}:user/alice"),
                    "accountId": ACCOUNT,
                    "accessKeyId": "AKIAALICE",
                    "userName": "alice"
                },
                "eventTime": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "eventSource": "ec2.amazonaws.com",
                "eventName": "DescribeInstances",
                "awsRegion": REGION,
                "sourceIPAddress": "192.0.2.1",
                "userAgent": "aws-cli/2",
                "requestParameters": null,
                "responseElements": null,
                "requestID": format!("req-{id}"),
                "eventID": id,
                "readOnly": true,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": ACCOUNT,
                "eventCategory": "Management"
            }),
        }
    }

    pub fn set(mut self, field: &str, value: Value) -> Self {
        self.value[field] = value;
        self
    }

    pub fn account(self, account: &str) -> Self {
        self.set("recipientAccountId", json!(account))
    }

    pub fn region(self, region: &str) -> Self {
        self.set("awsRegion", json!(region))
    }

    pub fn name(self, source: &str, name: &str) -> Self {
        self.set("eventSource", json!(source))
            .set("eventName", json!(name))
    }

    pub fn read_only(self, read_only: bool) -> Self {
        self.set("readOnly", json!(read_only))
    }

    pub fn identity(self, identity: Value) -> Self {
        self.set("userIdentity", identity)
    }

    pub fn resources(self, resources: Value) -> Self {
        self.set("resources", resources)
    }

    pub fn data_event(self) -> Self {
        self.set("managementEvent", json!(false))
            .set("eventCategory", json!("Data"))
    }

    pub fn record(&self) -> EventRecord {
        EventRecord::from_json(&self.value.to_string()).unwrap()
    }
}

/// An Insights event as CloudTrail writes it.
pub fn insight(id: &str, time: DateTime<Utc>, source: &str, name: &str) -> EventRecord {
    let value = json!({
        "eventVersion": "1.08",
        "eventTime": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "awsRegion": REGION,
        "eventID": id,
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": ACCOUNT,
        "sharedEventID": "shared",
        "insightDetails": {
            "state": "Start",
            "eventSource": source,
            "eventName": name,
            "insightType": "ApiCallRateInsight",
            "insightContext": {}
        },
        "eventCategory": "Insight"
    });
    EventRecord::from_json(&value.to_string()).unwrap()
}

pub fn small_options() -> HistoryOptions {
    HistoryOptions {
        memtable_bytes: 256 << 10,
        dictionary_bytes: 16 << 10,
        sync_writes: false,
        compression_threads: 2,
        ..Default::default()
    }
}

pub fn open(dir: &Path, options: HistoryOptions) -> HistoryStore {
    HistoryStore::open(dir, options).unwrap()
}

/// Inserts records as one batch with offsets `first_offset..`.
pub fn insert(store: &HistoryStore, first_offset: u64, records: &[EventRecord]) {
    let batch: Vec<(u64, EventRecord)> = records
        .iter()
        .enumerate()
        .map(|(at, record)| (first_offset + at as u64, record.clone()))
        .collect();
    store.insert_batch(&batch).unwrap();
}

pub fn request(now: DateTime<Utc>, input: LookupEventsRequest) -> LookupRequest {
    LookupRequest {
        account: ACCOUNT.into(),
        region: REGION.into(),
        now,
        input,
    }
}

pub fn attribute(key: &str, value: &str) -> LookupAttribute {
    LookupAttribute {
        attribute_key: key.into(),
        attribute_value: value.into(),
    }
}

pub fn by_attribute(key: &str, value: &str) -> LookupEventsRequest {
    LookupEventsRequest {
        lookup_attributes: Some(vec![attribute(key, value)]),
        ..Default::default()
    }
}

/// A wire timestamp of `seconds` since the epoch.
pub fn seconds(seconds: f64) -> Option<Timestamp> {
    Timestamp::from_epoch_seconds(seconds)
}

/// An Event's `EventTime` in whole epoch seconds.
pub fn event_seconds(event: &Event) -> Option<i64> {
    event.event_time.map(|time| time.0.timestamp())
}

/// The events of a page (the store always answers `Events`, possibly empty).
pub trait Events {
    fn events(&self) -> &[Event];
}

impl Events for LookupEventsResponse {
    fn events(&self) -> &[Event] {
        self.events.as_deref().expect("Events is always present")
    }
}

pub fn lookup(
    store: &HistoryStore,
    request: &LookupRequest,
) -> Result<LookupEventsResponse, LookupError> {
    store.lookup(request)
}

/// Every page of a lookup, following NextToken.
pub fn all_pages(store: &HistoryStore, request: &LookupRequest) -> Vec<Event> {
    let mut request = request.clone();
    let mut events = Vec::new();
    for _ in 0..100_000 {
        let page = store.lookup(&request).unwrap();
        events.extend(page.events.expect("Events is always present"));
        match page.next_token {
            Some(token) => request.input.next_token = Some(token),
            None => return events,
        }
    }
    panic!("paging did not end");
}

pub fn ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|event| event.event_id.clone().unwrap())
        .collect()
}

/// The real AWS records under crates/core/model/tests/conformance.
pub fn conformance_records() -> Vec<EventRecord> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../core/model/tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| opentrail_model::parse_log_file(&std::fs::read(path).unwrap()).unwrap())
        .collect()
}

/// Asserts events are newest first.
pub fn assert_newest_first(events: &[Event]) {
    for pair in events.windows(2) {
        assert!(pair[0].event_time >= pair[1].event_time, "not newest first");
    }
}
