//! Events sent through channels in the lake, and the stores' event configuration: records
//! appended to a real event log, written by the lake writer, read back with Lake SQL.

use opentrail_lake::{
    ContextKeys, DataFusionEngine, LakeStorage, LakeWriter, QueryEngine, StoreSchema, StoreSpec,
    WriteStats, STANDARD_MAX_EVENT_BYTES,
};
use opentrail_log::{EventLog, LogOptions, LogRecord};
use opentrail_model::EventRecord;
use opentrail_selectors::{AdvancedEventSelector, AdvancedFieldSelector, Operator};
use serde_json::{json, Value};
use std::sync::Arc;

const ACCOUNT: &str = "123456789012";
const CHANNEL_A: &str =
    "arn:aws:cloudtrail:us-east-1:123456789012:channel/aaaaaaaa-0000-0000-0000-000000000001";
const CHANNEL_B: &str =
    "arn:aws:cloudtrail:us-east-1:123456789012:channel/bbbbbbbb-0000-0000-0000-000000000002";
const ACTIVITY: &str = "a0a0a0a0-1111-2222-3333-444455556666";
const MANAGEMENT: &str = "m0m0m0m0-1111-2222-3333-444455556666";

fn category(value: &str) -> Vec<AdvancedEventSelector> {
    vec![AdvancedEventSelector {
        name: None,
        field_selectors: vec![
            AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, [value])
        ],
    }]
}

fn management_store() -> StoreSpec {
    StoreSpec {
        id: MANAGEMENT.into(),
        account: ACCOUNT.into(),
        home_region: "us-east-1".into(),
        multi_region: false,
        advanced_selectors: category("Management"),
        ingestion_enabled: true,
        retention_days: 366,
        from_offset: 0,
        until_offset: None,
        insights_from: None,
        schema: StoreSchema::CloudTrailEvents,
        channels: vec![],
        max_event_bytes: STANDARD_MAX_EVENT_BYTES,
        context_keys: ContextKeys::default(),
    }
}

/// The destination store of channel A (not of channel B).
fn activity_store() -> StoreSpec {
    StoreSpec {
        id: ACTIVITY.into(),
        advanced_selectors: category("ActivityAuditLog"),
        schema: StoreSchema::ActivityAuditLog,
        channels: vec![CHANNEL_A.into()],
        ..management_store()
    }
}

/// A record as PutAuditEvents logs it.
fn channel_event(id: &str, channel: &str, name: &str) -> EventRecord {
    let record = json!({
        "eventVersion": "1.11",
        "eventCategory": "ActivityAuditLog",
        "eventType": "ActivityLog",
        "eventID": id,
        "eventTime": "2024-03-01T10:00:00Z",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "metadata": {"ingestionTime": "2024-03-01T10:00:02Z", "channelARN": channel},
        "eventData": {
            "version": "1.0",
            "userIdentity": {"type": "CustomUser", "principalId": "alice@example.com", "details": {"team": "red", "level": 3}},
            "userAgent": "app/1.0",
            "eventSource": "app.example.com",
            "eventName": name,
            "eventTime": "2024-03-01T10:00:00Z",
            "UID": format!("uid-{id}"),
            "requestParameters": {"door": "north"},
            "responseElements": {"opened": true},
            "errorCode": null,
            "sourceIPAddress": "198.51.100.4",
            "recipientAccountId": ACCOUNT,
            "additionalEventData": {"badge": "B-17"}
        },
        "eventDataChecksum": format!("sum-{id}")
    });
    EventRecord::from_json(&record.to_string()).unwrap()
}

fn management_event(id: &str, extra: Value) -> EventRecord {
    let mut record = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/alice", "accountId": ACCOUNT, "userName": "alice"},
        "eventTime": "2024-03-01T11:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateBucket",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.1",
        "userAgent": "aws-cli/2",
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management"
    });
    if let (Some(base), Value::Object(extra)) = (record.as_object_mut(), extra) {
        base.extend(extra);
    }
    EventRecord::from_json(&record.to_string()).unwrap()
}

struct Lake {
    _dir: tempfile::TempDir,
    log: EventLog,
    storage: LakeStorage,
    stores: Vec<StoreSpec>,
}

impl Lake {
    fn new(stores: Vec<StoreSpec>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path().join("log"), LogOptions::default()).unwrap();
        let storage = LakeStorage::local(&dir.path().join("lake")).unwrap();
        Self {
            _dir: dir,
            log,
            storage,
            stores,
        }
    }

    /// Logs `events` and writes them as one batch.
    async fn ingest(&self, events: Vec<EventRecord>) -> WriteStats {
        let records = events.into_iter().map(LogRecord::from_event).collect();
        self.log.append_records(records).await.unwrap();
        let writer = LakeWriter::new(
            Arc::new(self.log.clone()),
            Arc::new(self.stores.clone()),
            self.storage.clone(),
        );
        let start = writer.recover().await.unwrap();
        let batch = self.log.reader(start).poll_records(1000).unwrap();
        writer.write_batch(batch).await.unwrap()
    }

    async fn query(&self, sql: &str) -> Value {
        let stores: Vec<String> = self.stores.iter().map(|s| s.id.clone()).collect();
        let engine =
            DataFusionEngine::new(self.storage.clone()).with_catalog(Arc::new(self.stores.clone()));
        match engine.run(sql, &stores).await {
            Ok(output) => output.result_rows(),
            Err(e) => panic!("query failed: {e}\n{sql}"),
        }
    }
}

#[tokio::test]
async fn channel_events_go_to_their_destination_stores_with_the_integrations_schema() {
    let lake = Lake::new(vec![management_store(), activity_store()]);
    let stats = lake
        .ingest(vec![
            channel_event("c1", CHANNEL_A, "OpenDoor"),
            channel_event("c2", CHANNEL_B, "CloseDoor"),
            management_event("m1", json!({})),
        ])
        .await;
    assert_eq!(stats.events_written, 2, "{stats:?}");
    let rows = lake
        .query(&format!(
            "SELECT eventData.eventName, metadata.channelARN, eventData.userIdentity.principalId,
                    eventData.UID, eventDataChecksum, eventTime, metadata.ingestionTime,
                    eventData.requestParameters['door'], element_at(eventData.additionalEventData, 'badge'),
                    eventData.userIdentity.details['level'], eventData.errorCode, eventCategory, eventType, eventID
             FROM {ACTIVITY}"
        ))
        .await;
    assert_eq!(
        rows,
        json!([[
            {"eventName": "OpenDoor"},
            {"channelARN": CHANNEL_A},
            {"principalId": "alice@example.com"},
            {"UID": "uid-c1"},
            {"eventDataChecksum": "sum-c1"},
            {"eventTime": "2024-03-01 10:00:00.000"},
            {"ingestionTime": "2024-03-01 10:00:02.000"},
            {"_col7": "north"},
            {"_col8": "B-17"},
            {"_col9": "3"},
            {"errorCode": ""},
            {"eventCategory": "ActivityAuditLog"},
            {"eventType": "ActivityLog"},
            {"eventID": "c1"}
        ]])
    );
    // The CloudTrail-events store holds no channel event.
    let rows = lake
        .query(&format!("SELECT eventID FROM {MANAGEMENT}"))
        .await;
    assert_eq!(rows, json!([[{"eventID": "m1"}]]));
}

#[tokio::test]
async fn a_store_that_stopped_ingesting_takes_no_channel_events() {
    let stopped = StoreSpec {
        ingestion_enabled: false,
        ..activity_store()
    };
    let lake = Lake::new(vec![stopped]);
    let stats = lake
        .ingest(vec![channel_event("c1", CHANNEL_A, "OpenDoor")])
        .await;
    assert_eq!(stats.events_written, 0, "{stats:?}");
    let rows = lake
        .query(&format!("SELECT count(*) AS n FROM {ACTIVITY}"))
        .await;
    assert_eq!(rows, json!([[{"n": "0"}]]));
}

#[tokio::test]
async fn a_checksum_missing_from_the_record_is_computed_from_event_data() {
    let lake = Lake::new(vec![activity_store()]);
    let mut record: Value =
        serde_json::from_str(channel_event("c1", CHANNEL_A, "OpenDoor").json()).unwrap();
    record.as_object_mut().unwrap().remove("eventDataChecksum");
    let event_data = record["eventData"].to_string();
    lake.ingest(vec![EventRecord::from_json(&record.to_string()).unwrap()])
        .await;
    let rows = lake
        .query(&format!("SELECT eventDataChecksum FROM {ACTIVITY}"))
        .await;
    use base64::Engine;
    use sha2::Digest;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(event_data));
    assert_eq!(rows, json!([[{"eventDataChecksum": expected}]]));
}

#[tokio::test]
async fn events_larger_than_max_event_size_are_left_out() {
    let small = StoreSpec {
        max_event_bytes: 2_000,
        ..management_store()
    };
    let lake = Lake::new(vec![small]);
    let big = management_event(
        "big",
        json!({"requestParameters": {"policy": "x".repeat(2_000)}}),
    );
    assert!(big.byte_len() > 2_000);
    let stats = lake
        .ingest(vec![big, management_event("fits", json!({}))])
        .await;
    assert_eq!(stats.events_too_large, 1, "{stats:?}");
    assert_eq!(stats.events_written, 1, "{stats:?}");
    let rows = lake
        .query(&format!("SELECT eventID FROM {MANAGEMENT}"))
        .await;
    assert_eq!(rows, json!([[{"eventID": "fits"}]]));
}

#[tokio::test]
async fn context_key_selectors_add_event_context() {
    let enriched = StoreSpec {
        max_event_bytes: 1024 * 1024,
        context_keys: ContextKeys {
            request: vec!["aws:SourceIp".into(), "aws:PrincipalType".into()],
            tags: vec!["team".into()],
        },
        ..management_store()
    };
    let lake = Lake::new(vec![enriched]);
    lake.ingest(vec![
        management_event(
            "tagged",
            json!({"eventContext": {"tagContext": {"resourceTags": [{"arn": "arn:aws:s3:::b", "tags": {"team": "red", "cost": "7"}}]}}}),
        ),
        management_event("plain", json!({"sourceIPAddress": "s3.amazonaws.com", "userIdentity": {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}})),
    ])
    .await;
    let rows = lake
        .query(&format!(
            "SELECT eventID, eventContext FROM {MANAGEMENT} ORDER BY eventID"
        ))
        .await;
    let context = json!({
        "requestContext": {"aws:SourceIp": "192.0.2.1", "aws:PrincipalType": "User"},
        "tagContext": {"resourceTags": [{"arn": "arn:aws:s3:::b", "tags": {"team": "red"}}]}
    });
    assert_eq!(
        rows,
        json!([
            [{"eventID": "plain"}, {"eventContext": ""}],
            [{"eventID": "tagged"}, {"eventContext": context.to_string()}]
        ])
    );
    let rows = lake
        .query(&format!(
            "SELECT json_extract_scalar(eventContext, '$.requestContext[\"aws:SourceIp\"]') AS ip
             FROM {MANAGEMENT} WHERE eventID = 'tagged'"
        ))
        .await;
    assert_eq!(rows, json!([[{"ip": "192.0.2.1"}]]));
}
