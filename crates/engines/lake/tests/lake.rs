//! The lake end to end: events appended to a real event log, written by the lake writer
//! into Parquet files in a local directory, queried with Lake SQL.

use async_trait::async_trait;
use opentrail_lake::{
    ContextKeys, DataFusionEngine, LakeError, LakeStorage, LakeWriter, QueryEngine, QueryOutput,
    StoreCatalog, StoreSchema, StoreSpec, STANDARD_MAX_EVENT_BYTES,
};
use opentrail_log::{
    AppendAck, DurableLog, DurableLogReader, EventLog, LogHealth, LogOptions, LogRecord,
};
use opentrail_model::EventRecord;
use opentrail_selectors::{AdvancedEventSelector, AdvancedFieldSelector, Operator};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const ACCOUNT: &str = "123456789012";
const STORE: &str = "EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE";
const LOGINS: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

fn selector(category: &str, more: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
    let mut field_selectors =
        vec![AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, [category])];
    field_selectors.extend(more);
    AdvancedEventSelector {
        name: None,
        field_selectors,
    }
}

/// A multi-region store of management events and S3 object data events.
fn main_store() -> StoreSpec {
    StoreSpec {
        id: STORE.into(),
        account: ACCOUNT.into(),
        home_region: "us-east-1".into(),
        multi_region: true,
        advanced_selectors: vec![
            selector("Management", vec![]),
            selector(
                "Data",
                vec![AdvancedFieldSelector::new("resources.type")
                    .with(Operator::Equals, ["AWS::S3::Object"])],
            ),
        ],
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

/// A home-region-only store of console sign-ins.
fn logins_store() -> StoreSpec {
    StoreSpec {
        id: LOGINS.into(),
        home_region: "us-east-1".into(),
        multi_region: false,
        advanced_selectors: vec![selector(
            "Management",
            vec![AdvancedFieldSelector::new("eventName").with(Operator::Equals, ["ConsoleLogin"])],
        )],
        ..main_store()
    }
}

/// A management event; `extra` members are merged over the defaults.
fn event(id: &str, time: &str, source: &str, name: &str, extra: Value) -> EventRecord {
    let mut record = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/alice", "accountId": ACCOUNT, "userName": "alice"},
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
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
    });
    if let (Some(base), Value::Object(extra)) = (record.as_object_mut(), extra) {
        base.extend(extra);
    }
    EventRecord::from_json(&record.to_string()).unwrap()
}

/// Events that make AWS's documented example queries answer with the documented rows.
fn documented_events() -> Vec<EventRecord> {
    vec![
        // Example 1: the one CreateBucket by a principal on 2023-01-22.
        event(
            "e-create",
            "2023-01-22T10:00:00Z",
            "s3.amazonaws.com",
            "CreateBucket",
            json!({
                "userIdentity": {"type": "AssumedRole", "principalId": "principal_ID", "arn": "arn:aws:sts::123456789012:assumed-role/r/s", "accountId": ACCOUNT},
                "readOnly": false,
                "requestParameters": {"bucketName": "amzn-s3-demo-bucket", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}, "x-amz-acl": ["private"]}
            }),
        ),
        event(
            "e-create-later",
            "2023-01-23T10:00:00Z",
            "s3.amazonaws.com",
            "CreateBucket",
            json!({
                "userIdentity": {"type": "AssumedRole", "principalId": "other_ID", "accountId": ACCOUNT}
            }),
        ),
        // Example 2: bob's one call on 2023-01-22, and one the next day.
        event(
            "EXAMPLE-c3b6-4b0b-b7c2-4bdbEXAMPLE",
            "2023-01-22T16:53:53Z",
            "cloudtrail.amazonaws.com",
            "DescribeQuery",
            json!({
                "userIdentity": {"type": "IAMUser", "principalId": "AIDABOB", "arn": "arn:aws:iam::123456789012:user/bob", "accountId": ACCOUNT, "userName": "bob"}
            }),
        ),
        event(
            "e-bob-later",
            "2023-01-23T01:00:00Z",
            "cloudtrail.amazonaws.com",
            "ListQueries",
            json!({
                "userIdentity": {"type": "IAMUser", "principalId": "AIDABOB", "accountId": ACCOUNT, "userName": "bob"}
            }),
        ),
        // Example 4: a console sign-in in us-east-1, another in a region the query leaves out.
        event(
            "e-login",
            "2022-02-08T19:54:44Z",
            "signin.amazonaws.com",
            "ConsoleLogin",
            json!({
                "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:example", "arn": "arn:aws:sts::123456789012:assumed-role/example-identity", "accountId": ACCOUNT},
                "readOnly": false,
                "responseElements": {"ConsoleLogin": "Success"},
                "additionalEventData": {"MFAUsed": "No"}
            }),
        ),
        event(
            "e-login-eu",
            "2022-02-08T20:00:00Z",
            "signin.amazonaws.com",
            "ConsoleLogin",
            json!({
                "awsRegion": "eu-west-1"
            }),
        ),
        // Example 5: a StartQuery with its response, and one without.
        event(
            "e-start",
            "2023-01-10T08:00:00Z",
            "cloudtrail.amazonaws.com",
            "StartQuery",
            json!({
                "readOnly": false,
                "requestParameters": {"queryStatement": "select * from event_data_store_ID limit 1;"},
                "responseElements": {"queryId": "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE"}
            }),
        ),
        event(
            "e-start-failed",
            "2023-01-11T08:00:00Z",
            "cloudtrail.amazonaws.com",
            "StartQuery",
            json!({
                "errorCode": "InvalidQueryStatementException",
                "requestParameters": {"queryStatement": "delete"}
            }),
        ),
        // Another account's event, which no store of ACCOUNT holds.
        event(
            "e-foreign",
            "2023-01-22T11:00:00Z",
            "s3.amazonaws.com",
            "CreateBucket",
            json!({
                "recipientAccountId": "210987654321",
                "userIdentity": {"type": "AssumedRole", "principalId": "principal_ID"}
            }),
        ),
    ]
}

/// An S3 object-level data event.
fn put_object(index: usize) -> EventRecord {
    event(
        &format!("put-{index}"),
        "2023-01-05T12:00:00Z",
        "s3.amazonaws.com",
        "PutObject",
        json!({
            "eventCategory": "Data",
            "managementEvent": false,
            "readOnly": false,
            "resources": [{"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::bucket/k{index}")}, {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::bucket"}]
        }),
    )
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

    fn writer(&self, log: Arc<dyn DurableLog>) -> LakeWriter {
        LakeWriter::new(log, Arc::new(self.stores.clone()), self.storage.clone())
    }

    async fn append(&self, events: Vec<EventRecord>) {
        for chunk in events.chunks(5000) {
            let records = chunk.iter().cloned().map(LogRecord::from_event).collect();
            self.log.append_records(records).await.unwrap();
        }
    }

    async fn ingest(&self, events: Vec<EventRecord>) {
        self.append(events).await;
        self.writer(Arc::new(self.log.clone()))
            .catch_up()
            .await
            .unwrap();
    }

    fn engine(&self) -> DataFusionEngine {
        DataFusionEngine::new(self.storage.clone()).with_catalog(Arc::new(self.stores.clone()))
    }

    async fn query(&self, sql: &str) -> QueryOutput {
        let stores: Vec<String> = self.stores.iter().map(|s| s.id.clone()).collect();
        match self.engine().run(sql, &stores).await {
            Ok(output) => output,
            Err(e) => panic!("query failed: {e}\n{sql}"),
        }
    }

    async fn error(&self, sql: &str) -> LakeError {
        let stores: Vec<String> = self.stores.iter().map(|s| s.id.clone()).collect();
        self.engine().run(sql, &stores).await.unwrap_err()
    }
}

async fn documented_lake() -> Lake {
    let lake = Lake::new(vec![main_store(), logins_store()]);
    lake.ingest(documented_events()).await;
    lake
}

fn rows(output: &QueryOutput) -> Value {
    output.result_rows()
}

#[tokio::test]
async fn example_principal_and_event_name() {
    let lake = documented_lake().await;
    let output = lake
        .query(&format!(
            "SELECT userIdentity.principalid, eventName FROM {STORE}
             WHERE userIdentity.principalid IS NOT NULL AND eventTime > '2023-01-22 00:00:00'
               AND eventTime < '2023-01-23 00:00:00' AND eventName='CreateBucket'"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"principalid": "principal_ID"}, {"eventName": "CreateBucket"}]])
    );
    let stats = output.statistics;
    assert_eq!(stats.events_matched, 1, "{stats:?}");
    assert!(
        stats.events_scanned >= 1 && stats.events_scanned <= 8,
        "{stats:?}"
    );
    assert!(stats.bytes_scanned > 0, "{stats:?}");
}

#[tokio::test]
async fn example_user_calls_with_times() {
    let lake = documented_lake().await;
    let output = lake
        .query(&format!(
            "SELECT eventID, eventName, eventSource, eventTime FROM {STORE}
             WHERE userIdentity.username = 'bob' AND eventTime > '2023-01-22 00:00:00' AND eventTime < '2023-01-23 00:00:00'"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[
            {"eventID": "EXAMPLE-c3b6-4b0b-b7c2-4bdbEXAMPLE"},
            {"eventName": "DescribeQuery"},
            {"eventSource": "cloudtrail.amazonaws.com"},
            {"eventTime": "2023-01-22 16:53:53.000"}
        ]])
    );
}

#[tokio::test]
async fn example_api_counts() {
    let lake = Lake::new(vec![main_store()]);
    let mut events: Vec<EventRecord> = (0..96059).map(put_object).collect();
    events.extend(documented_events());
    lake.ingest(events).await;
    let output = lake
        .query(&format!(
            "SELECT eventSource, eventName, COUNT(*) AS apiCount FROM {STORE} WHERE eventTime > '2023-01-01 00:00:00'
             GROUP BY eventSource, eventName ORDER BY apiCount DESC"
        ))
        .await;
    let rows = rows(&output);
    assert_eq!(
        rows[0],
        json!([{"eventSource": "s3.amazonaws.com"}, {"eventName": "PutObject"}, {"apiCount": "96059"}])
    );
    // CreateBucket and StartQuery twice, DescribeQuery and ListQueries once (ties in any order).
    assert_eq!(rows.as_array().unwrap().len(), 5, "{rows}");
    assert_eq!(rows[1][2], json!({"apiCount": "2"}));
    assert_eq!(rows[4][2], json!({"apiCount": "1"}));
    // The memory bound: a query that must hold every event id fails with AWS's message.
    let stores = vec![STORE.to_string()];
    let error = lake
        .engine()
        .with_memory_limit(256 * 1024)
        .run(
            &format!("SELECT eventid, count(*) FROM {STORE} GROUP BY eventid ORDER BY 2, 1"),
            &stores,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, LakeError::ResourcesExhausted), "{error:?}");
    assert_eq!(
        error.to_string(),
        "Query exhausted resources at this scale factor"
    );
}

#[tokio::test]
async fn example_sign_ins_by_region() {
    let lake = documented_lake().await;
    let output = lake
        .query(&format!(
            "SELECT eventTime, useridentity.arn, awsRegion FROM {STORE}
             WHERE awsRegion in ('us-east-1', 'us-west-2') AND eventName = 'ConsoleLogin'"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[
            {"eventTime": "2022-02-08 19:54:44.000"},
            {"arn": "arn:aws:sts::123456789012:assumed-role/example-identity"},
            {"awsRegion": "us-east-1"}
        ]])
    );
}

#[tokio::test]
async fn example_element_at_on_maps() {
    let lake = documented_lake().await;
    let output = lake
        .query(&format!(
            "SELECT element_at(responseElements, 'queryId'), element_at(requestParameters, 'queryStatement') FROM {STORE}
             WHERE eventName='StartQuery' AND eventSource = 'cloudtrail.amazonaws.com' AND responseElements IS NOT NULL
               AND eventTime > '2023-01-01 00:00:00' AND eventTime < '2023-02-01 00:00:00'"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[
            {"_col0": "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE"},
            {"_col1": "select * from event_data_store_ID limit 1;"}
        ]])
    );
}

#[tokio::test]
async fn unnamed_expressions_are_numbered_by_position() {
    let lake = documented_lake().await;
    let output = lake
        .query(&format!(
            "SELECT eventName, count(*), upper(eventSource) AS Src, max(eventTime) FROM {STORE}
             WHERE eventName = 'CreateBucket' GROUP BY eventName, eventSource"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"eventName": "CreateBucket"}, {"_col1": "2"}, {"Src": "S3.AMAZONAWS.COM"}, {"_col3": "2023-01-23 10:00:00.000"}]])
    );
}

#[tokio::test]
async fn stores_join_and_union() {
    let lake = documented_lake().await;
    // The sign-ins store holds only us-east-1 console sign-ins.
    let joined = lake
        .query(&format!(
            "SELECT a.eventID, b.awsRegion FROM {STORE} a JOIN {LOGINS} b ON a.eventid = b.eventid ORDER BY 1"
        ))
        .await;
    assert_eq!(
        rows(&joined),
        json!([[{"eventID": "e-login"}, {"awsRegion": "us-east-1"}]])
    );
    let union = lake
        .query(&format!(
            "SELECT eventName, count(*) AS n FROM (
                SELECT eventName FROM {STORE} WHERE eventName = 'ConsoleLogin'
                UNION ALL SELECT eventName FROM {LOGINS}) GROUP BY eventName"
        ))
        .await;
    assert_eq!(
        rows(&union),
        json!([[{"eventName": "ConsoleLogin"}, {"n": "3"}]])
    );
    let with = lake
        .query(&format!(
            "WITH logins AS (SELECT eventid FROM {LOGINS}) SELECT count(*) AS c FROM {STORE} WHERE eventid IN (SELECT eventid FROM logins)"
        ))
        .await;
    assert_eq!(rows(&with), json!([[{"c": "1"}]]));
}

#[tokio::test]
async fn timestamps_compare_with_strings_literals_and_intervals() {
    let lake = documented_lake().await;
    for condition in [
        "eventTime >= '2023-01-22 16:53:53'",
        "eventTime >= timestamp '2023-01-22 16:53:53'",
        "eventTime >= timestamp '2023-01-23 16:53:53' - interval '1' day",
        "eventTime BETWEEN '2023-01-22 16:00:00' AND '2023-01-22 17:00:00'",
        "date_diff('hour', eventTime, from_iso8601_timestamp('2023-01-22T18:53:53Z')) = 2",
        "format_datetime(eventTime, 'yyyy-MM-dd HH') = '2023-01-22 16'",
        "date_add('day', 1, eventTime) = timestamp '2023-01-23 16:53:53'",
        "day_of_week(eventTime) = 7 AND hour(eventTime) = 16 AND year(eventTime) = 2023",
    ] {
        let output = lake
            .query(&format!(
                "SELECT eventName FROM {STORE} WHERE {condition} AND eventTime < '2023-01-23 00:00:00' AND userIdentity.userName = 'bob'"
            ))
            .await;
        assert_eq!(
            rows(&output),
            json!([[{"eventName": "DescribeQuery"}]]),
            "{condition}"
        );
    }
}

#[tokio::test]
async fn maps_arrays_and_json() {
    let lake = documented_lake().await;
    let output = lake
        .query(&format!(
            "SELECT json_extract_scalar(requestparameters, '$.bucketName') AS bucket,
                    json_extract_scalar(requestParameters, '$.CreateBucketConfiguration.LocationConstraint') AS region,
                    json_extract(element_at(requestparameters, 'CreateBucketConfiguration'), '$.LocationConstraint') AS quoted,
                    json_array_length(element_at(requestparameters, 'x-amz-acl')) AS acls,
                    cardinality(requestparameters) AS n,
                    contains(map_keys(requestparameters), 'bucketName') AS has,
                    requestparameters['bucketName'] AS direct,
                    requestparameters
             FROM {STORE} WHERE eventid = 'e-create'"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[
            {"bucket": "amzn-s3-demo-bucket"},
            {"region": "eu-west-1"},
            {"quoted": "\"eu-west-1\""},
            {"acls": "1"},
            {"n": "3"},
            {"has": "true"},
            {"direct": "amzn-s3-demo-bucket"},
            {"requestparameters": "{bucketName=amzn-s3-demo-bucket, CreateBucketConfiguration={\"LocationConstraint\":\"eu-west-1\"}, x-amz-acl=[\"private\"]}"}
        ]])
    );
    let resources = Lake::new(vec![main_store()]);
    resources.ingest(vec![put_object(7)]).await;
    let output = resources
        .query(&format!(
            "SELECT resources[1].arn, element_at(resources, -1).type, cardinality(resources) FROM {STORE}"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"arn": "arn:aws:s3:::bucket/k7"}, {"type": "AWS::S3::Bucket"}, {"_col2": "2"}]])
    );
}

#[tokio::test]
async fn only_read_only_queries_run() {
    let lake = documented_lake().await;
    for sql in [
        format!("DELETE FROM {STORE} WHERE eventname = 'x'"),
        format!("INSERT INTO {STORE} SELECT * FROM {STORE}"),
        format!("UPDATE {STORE} SET eventname = 'x'"),
        "CREATE TABLE t (a int)".to_string(),
        format!("SELECT count(*) FROM {STORE}; SELECT 1 FROM {STORE}"),
    ] {
        let error = lake.error(&sql).await;
        assert_eq!(
            error.aws_error_code(),
            Some("InvalidQueryStatementException"),
            "{sql}: {error}"
        );
    }
    let error = lake
        .error(&format!("SELECT nosuchcolumn FROM {STORE}"))
        .await;
    assert_eq!(
        error.aws_error_code(),
        Some("InvalidQueryStatementException")
    );
    assert!(error.to_string().contains("nosuchcolumn"), "{error}");
    let error = lake.error("SELECT * FROM aaaa-bbbb-cccc").await;
    assert_eq!(
        error.aws_error_code(),
        Some("EventDataStoreNotFoundException")
    );
}

/// Fails the first cursor commit: the crash between storing a batch's files and committing.
/// An event log whose next cursor commit fails while `crash` is set, and whose readers
/// count the records they hand out in `read`.
struct TestLog {
    log: EventLog,
    crash: AtomicBool,
    read: Arc<AtomicUsize>,
}

impl TestLog {
    fn new(log: &EventLog, crash: bool) -> Self {
        Self {
            log: log.clone(),
            crash: AtomicBool::new(crash),
            read: Arc::default(),
        }
    }
}

#[async_trait]
impl DurableLog for TestLog {
    async fn append_records(&self, records: Vec<LogRecord>) -> opentrail_log::Result<AppendAck> {
        self.log.append_records(records).await
    }
    fn health(&self) -> LogHealth {
        self.log.health()
    }
    fn durable_end(&self) -> u64 {
        self.log.durable_end()
    }
    fn start_offset(&self) -> u64 {
        self.log.start_offset()
    }
    fn reader(&self, from: u64) -> Box<dyn DurableLogReader> {
        Box::new(CountingReader {
            inner: Box::new(self.log.reader(from)),
            read: Arc::clone(&self.read),
        })
    }
    async fn cursor(&self, consumer: &str) -> opentrail_log::Result<Option<u64>> {
        DurableLog::cursor(&self.log, consumer).await
    }
    async fn commit_cursor(&self, consumer: &str, offset: u64) -> opentrail_log::Result<()> {
        if self.crash.swap(false, Ordering::SeqCst) {
            return Err(opentrail_log::LogError::Closed);
        }
        DurableLog::commit_cursor(&self.log, consumer, offset).await
    }
    async fn truncate_before(&self, offset: u64) -> opentrail_log::Result<u64> {
        DurableLog::truncate_before(&self.log, offset).await
    }
}

#[tokio::test]
async fn a_writer_crash_never_duplicates_rows() {
    let lake = Lake::new(vec![main_store()]);
    let events: Vec<EventRecord> = (0..30).map(put_object).collect();
    lake.append(events[..10].to_vec()).await;
    let crashing: Arc<dyn DurableLog> = Arc::new(TestLog::new(&lake.log, true));
    let writer = lake.writer(Arc::clone(&crashing));
    let start = writer.recover().await.unwrap();
    let batch = crashing.reader(start).poll_records(100).unwrap();
    assert_eq!(batch.len(), 10);
    assert!(writer.write_batch(batch).await.is_err(), "the commit fails");
    let count = format!("SELECT count(*) AS n FROM {STORE}");
    // The files of the uncommitted batch are stored (a reader may see them meanwhile).
    assert_eq!(rows(&lake.query(&count).await), json!([[{"n": "10"}]]));
    // After the restart the log holds more, so the replayed batch has other bounds.
    lake.append(events[10..].to_vec()).await;
    let restarted = lake.writer(Arc::new(lake.log.clone()));
    assert_eq!(restarted.catch_up().await.unwrap(), 30);
    assert_eq!(rows(&lake.query(&count).await), json!([[{"n": "30"}]]));
    // A second restart finds nothing beyond the cursor to drop or write again.
    assert_eq!(restarted.catch_up().await.unwrap(), 30);
    let distinct = format!("SELECT count(DISTINCT eventid) AS n, count(*) AS m FROM {STORE}");
    assert_eq!(
        rows(&lake.query(&distinct).await),
        json!([[{"n": "30"}, {"m": "30"}]])
    );
}

/// The reader of a [`TestLog`]: counts the records it hands out.
struct CountingReader {
    inner: Box<dyn DurableLogReader>,
    read: Arc<AtomicUsize>,
}

#[async_trait]
impl DurableLogReader for CountingReader {
    async fn next_records(&mut self, max: usize) -> opentrail_log::Result<Vec<(u64, LogRecord)>> {
        let records = self.inner.next_records(max).await?;
        self.read.fetch_add(records.len(), Ordering::SeqCst);
        Ok(records)
    }
    fn poll_records(&mut self, max: usize) -> opentrail_log::Result<Vec<(u64, LogRecord)>> {
        let records = self.inner.poll_records(max)?;
        self.read.fetch_add(records.len(), Ordering::SeqCst);
        Ok(records)
    }
    fn position(&self) -> u64 {
        self.inner.position()
    }
}

/// Stores that come and go while the writer runs.
struct ChangingCatalog(Mutex<Vec<StoreSpec>>);

impl StoreCatalog for ChangingCatalog {
    fn stores(&self) -> opentrail_lake::Result<Vec<StoreSpec>> {
        Ok(self.0.lock().unwrap().clone())
    }
}

/// Waits (up to 20 s) until the lake writer's committed cursor is `offset`.
async fn cursor_reaches(log: &EventLog, offset: u64) {
    for _ in 0..2000 {
        if DurableLog::cursor(log, opentrail_lake::CONSUMER)
            .await
            .unwrap()
            == Some(offset)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the lake writer's cursor did not reach {offset}");
}

#[tokio::test]
async fn without_a_store_the_log_is_not_read_and_a_later_store_gets_what_follows() {
    let before: Vec<EventRecord> = (0..3000).map(put_object).collect();
    let after: Vec<EventRecord> = (3000..3010).map(put_object).collect();
    // The store as created once the first 3,000 records are in the log.
    let created = StoreSpec {
        from_offset: 3000,
        ..main_store()
    };
    let lake = Lake::new(vec![created.clone()]);
    lake.append(before).await;
    let counting = TestLog::new(&lake.log, false);
    let read = Arc::clone(&counting.read);
    let log: Arc<dyn DurableLog> = Arc::new(counting);
    let catalog = Arc::new(ChangingCatalog(Mutex::new(Vec::new())));
    let writer = LakeWriter::new(log, catalog.clone(), lake.storage.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move {
        writer
            .run(Arc::new(opentrail_model::SystemClock), stopped)
            .await
    });
    cursor_reaches(&lake.log, 3000).await;
    assert_eq!(
        read.load(Ordering::SeqCst),
        0,
        "records no store collects were read"
    );

    catalog.0.lock().unwrap().push(created);
    lake.append(after).await;
    cursor_reaches(&lake.log, 3010).await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(read.load(Ordering::SeqCst), 10);
    let ids = format!("SELECT eventid FROM {STORE} ORDER BY eventid");
    let expected: Vec<Value> = (3000..3010)
        .map(|index| json!([{ "eventid": format!("put-{index}") }]))
        .collect();
    assert_eq!(rows(&lake.query(&ids).await), Value::Array(expected));
}

/// A failed skip (the cursor could not be committed: a full disk, say) is reported, and
/// the writer reports itself well again once a skip commits, even with no record to write.
#[tokio::test]
async fn a_failed_skip_is_reported_and_cleared_by_the_next_one() {
    let lake = Lake::new(vec![]);
    lake.append((0..20).map(put_object).collect()).await;
    let failing: Arc<dyn DurableLog> = Arc::new(TestLog::new(&lake.log, true));
    let writer = LakeWriter::new(
        failing,
        Arc::new(Vec::<StoreSpec>::new()),
        lake.storage.clone(),
    );
    let reports: Arc<Mutex<Vec<bool>>> = Arc::default();
    let seen = Arc::clone(&reports);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move {
        let observe = move |failure: Option<&str>| seen.lock().unwrap().push(failure.is_some());
        writer
            .run_observed(Arc::new(opentrail_model::SystemClock), stopped, &observe)
            .await
    });
    cursor_reaches(&lake.log, 20).await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(*reports.lock().unwrap(), vec![true, false]);
}

async fn lake_files(lake: &Lake) -> Vec<(object_store::path::Path, bytes::Bytes)> {
    use futures_util::StreamExt;
    use object_store::ObjectStoreExt;
    let mut listing = lake.storage.objects.list(None);
    let mut files = Vec::new();
    while let Some(object) = listing.next().await {
        let path = object.unwrap().location;
        let bytes = lake
            .storage
            .objects
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        files.push((path, bytes));
    }
    files
}

#[tokio::test]
async fn compaction_merges_small_files_once() {
    use object_store::ObjectStoreExt;
    let lake = Lake::new(vec![main_store()]);
    let events: Vec<EventRecord> = (0..30).map(put_object).collect();
    lake.append(events).await;
    let writer = lake.writer(Arc::new(lake.log.clone()));
    let mut reader = lake.log.reader(writer.recover().await.unwrap());
    for _ in 0..10 {
        let batch = DurableLogReader::poll_records(&mut reader, 3).unwrap();
        writer.write_batch(batch).await.unwrap();
    }
    let inputs = lake_files(&lake).await;
    assert_eq!(inputs.len(), 10);
    assert_eq!(writer.compact().await.unwrap(), 10);
    let merged = lake_files(&lake).await;
    assert_eq!(merged.len(), 1);
    assert!(
        merged[0]
            .0
            .as_ref()
            .ends_with("part-00000000000000000000-00000000000000000029.parquet"),
        "{}",
        merged[0].0
    );
    let count = format!("SELECT count(*) AS n, count(DISTINCT eventid) AS d FROM {STORE}");
    assert_eq!(
        rows(&lake.query(&count).await),
        json!([[{"n": "30"}, {"d": "30"}]])
    );
    // A crash between storing the merged file and deleting its inputs leaves both: queries
    // skip the inputs and the next start deletes them.
    for (path, bytes) in inputs {
        lake.storage.objects.put(&path, bytes.into()).await.unwrap();
    }
    assert_eq!(
        rows(&lake.query(&count).await),
        json!([[{"n": "30"}, {"d": "30"}]])
    );
    writer.recover().await.unwrap();
    assert_eq!(lake_files(&lake).await.len(), 1);
    assert_eq!(writer.compact().await.unwrap(), 0, "nothing left to merge");
}

#[tokio::test]
async fn retention_drops_whole_old_days() {
    let lake = documented_lake().await;
    let writer = lake.writer(Arc::new(lake.log.clone()));
    let today = chrono::NaiveDate::from_ymd_opt(2023, 1, 23).unwrap();
    let mut short = main_store();
    short.retention_days = 1; // keeps 2023-01-22 and 2023-01-23
    let expiring = LakeWriter::new(
        Arc::new(lake.log.clone()),
        Arc::new(vec![short]),
        lake.storage.clone(),
    );
    assert!(expiring.expire(today).await.unwrap() > 0);
    let output = lake
        .query(&format!("SELECT min(eventTime) AS first FROM {STORE}"))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"first": "2023-01-22 10:00:00.000"}]])
    );
    assert_eq!(
        writer.expire(today).await.unwrap(),
        0,
        "366 days keep everything left"
    );
}

#[tokio::test]
async fn conformance_events_by_event_source() {
    let events = conformance_events();
    let account = events[0].recipient_account_id().to_string();
    let store = StoreSpec {
        id: "c0ffee00-1111-2222-3333-444455556666".into(),
        account: account.clone(),
        advanced_selectors: vec![selector("Management", vec![])],
        ..main_store()
    };
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for event in &events {
        if event.recipient_account_id() == account && event.event_category() == "Management" {
            *expected
                .entry(event.event_source().to_string())
                .or_default() += 1;
        }
    }
    assert!(expected.len() > 3);
    let lake = Lake::new(vec![store]);
    lake.ingest(events).await;
    let output = lake
        .query("SELECT eventSource, count(*) AS n FROM c0ffee00-1111-2222-3333-444455556666 GROUP BY eventSource ORDER BY eventSource")
        .await;
    let expected: Vec<Value> = expected
        .into_iter()
        .map(|(source, n)| json!([{"eventSource": source}, {"n": n.to_string()}]))
        .collect();
    assert_eq!(rows(&output), Value::Array(expected));
}

#[tokio::test]
async fn trino_functions_and_column_names() {
    let lake = documented_lake().await;
    for (select, expected) in [
        (
            "split(eventsource, '.'), slice(split(eventsource, '.'), -2, 5), array_distinct(split('a.a.b', '.'))",
            json!([{"_col0": "[s3, amazonaws, com]"}, {"_col1": "[amazonaws, com]"}, {"_col2": "[a, b]"}]),
        ),
        (
            "IF(readonly, 'r', 'w') AS rw, if(readonly, 1), coalesce(errorcode, 'none')",
            json!([{"rw": "w"}, {"_col1": ""}, {"_col2": "none"}]),
        ),
        (
            "CAST(eventtime AS date), date_trunc('day', eventtime), day_of_week(eventtime), week(eventtime), quarter(eventtime)",
            json!([{"_col0": "2023-01-22"}, {"_col1": "2023-01-22 00:00:00.000"}, {"_col2": "7"}, {"_col3": "3"}, {"_col4": "1"}]),
        ),
        (
            "json_array_get(element_at(requestparameters, 'x-amz-acl'), -1), json_array_contains(element_at(requestparameters, 'x-amz-acl'), 'private'), is_json_scalar('1')",
            json!([{"_col0": "\"private\""}, {"_col1": "true"}, {"_col2": "true"}]),
        ),
    ] {
        let output = lake
            .query(&format!("SELECT {select} FROM {STORE} WHERE eventid = 'e-create'"))
            .await;
        assert_eq!(rows(&output), json!([expected]), "{select}");
    }
    let output = lake
        .query(&format!(
            "SELECT arbitrary(eventname) AS any, approx_distinct(eventsource) FROM {STORE} WHERE eventid = 'e-create'"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"any": "CreateBucket"}, {"_col1": "1"}]])
    );
    // Trino names a subquery's unnamed columns _colN, and an outer query may use them.
    let output = lake
        .query(&format!(
            "SELECT max(_col1) AS latest FROM (SELECT eventname, max(eventtime) FROM {STORE} GROUP BY eventname)"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"latest": "2023-01-23 10:00:00.000"}]])
    );
}

#[tokio::test]
async fn deeply_nested_sql_fails_cleanly() {
    let lake = documented_lake().await;
    let stores = vec![STORE.to_string()];
    // As deep as the engine takes: planned and run on an ordinary thread's stack.
    let sum = vec!["1"; 250].join(" + ");
    let output = lake
        .query(&format!(
            "SELECT {sum} AS total FROM {STORE} WHERE eventid = 'e-create'"
        ))
        .await;
    assert_eq!(rows(&output), json!([[{"total": "250"}]]));
    // Deeper is refused before planning (a 10,000-character statement can nest 3,000 deep).
    let sum = vec!["1"; 3000].join("+");
    let error = lake
        .engine()
        .run(&format!("SELECT {sum} FROM {STORE}"), &stores)
        .await
        .unwrap_err();
    assert_eq!(
        error.aws_error_code(),
        Some("InvalidQueryStatementException"),
        "{error}"
    );
    assert!(error.to_string().contains("too large"), "{error}");
    let nested = format!(
        "SELECT {}1{} FROM {STORE}",
        "(".repeat(500),
        ")".repeat(500)
    );
    let error = lake.engine().run(&nested, &stores).await.unwrap_err();
    assert_eq!(
        error.aws_error_code(),
        Some("InvalidQueryStatementException"),
        "{error}"
    );
}

/// Every Trino function and construct the dialect adds, over the stored CreateBucket event.
#[tokio::test]
async fn trino_dialect_over_parquet() {
    let lake = documented_lake().await;
    for (select, expected) in [
        // Lambdas.
        ("transform(split(eventsource, '.'), x -> upper(x))", "[S3, AMAZONAWS, COM]"),
        ("filter(split(eventsource, '.'), x -> x <> 'com')", "[s3, amazonaws]"),
        ("any_match(split(eventsource, '.'), x -> x = 's3')", "true"),
        ("all_match(split(eventsource, '.'), x -> length(x) > 2)", "false"),
        ("none_match(split(eventsource, '.'), x -> x = eventname)", "true"),
        ("reduce(split(eventsource, '.'), 0, (s, x) -> s + length(x), s -> s * 10)", "140"),
        ("transform(map_keys(requestparameters), k -> element_at(requestparameters, k) LIKE '%eu-west-1%')", "[false, true, false]"),
        // Aggregates.
        ("max_by(eventname, eventtime)", "CreateBucket"),
        ("min_by(eventsource, eventtime)", "s3.amazonaws.com"),
        ("approx_percentile(length(eventname), 0.5)", "12.0"),
        ("count_if(readonly)", "0"),
        ("count_if(NOT readonly)", "1"),
        ("bool_or(readonly)", "false"),
        ("bool_and(NOT readonly)", "true"),
        // Regular expressions.
        ("regexp_extract(eventsource, '^([a-z0-9]+)\\.')", "s3."),
        ("regexp_extract(eventsource, '^([a-z0-9]+)\\.', 1)", "s3"),
        ("regexp_extract(eventsource, 'ec2')", ""),
        ("regexp_extract_all(eventsource, '[a-z]+')", "[s, amazonaws, com]"),
        ("regexp_replace(eventsource, '([a-z]+)\\.', '$1-')", "s3.amazonaws-com"),
        ("regexp_replace(eventsource, '[.]')", "s3amazonawscom"),
        ("regexp_like(eventsource, '^s3')", "true"),
        // Casts.
        ("CAST(requestparameters AS map(varchar, json))", "{bucketName=\"amzn-s3-demo-bucket\", CreateBucketConfiguration={\"LocationConstraint\":\"eu-west-1\"}, x-amz-acl=[\"private\"]}"),
        ("element_at(CAST(json_parse(element_at(requestparameters, 'CreateBucketConfiguration')) AS map(varchar, varchar)), 'LocationConstraint')", "eu-west-1"),
        ("CAST(element_at(requestparameters, 'x-amz-acl') AS array(json))", "[\"private\"]"),
        ("CAST(element_at(requestparameters, 'x-amz-acl') AS array(varchar))[1]", "private"),
        ("CAST(eventtime AS varchar)", "2023-01-22 10:00:00.000"),
        ("CAST(eventtime AS varchar(30)) LIKE '2023-01-22 %'", "true"),
        ("CAST(eventname AS json)", "\"CreateBucket\""),
        ("CAST(readonly AS json)", "false"),
        ("json_extract_scalar(CAST(useridentity AS json), '$.principalid')", "principal_ID"),
        ("try(CAST(eventname AS bigint))", ""),
        ("try(1 / (length(eventname) - 12))", ""),
        ("try(CAST(eventname AS map(varchar, json)))", ""),
        ("try_cast(eventname AS bigint)", ""),
        ("CAST('12' AS bigint) + 1", "13"),
        ("CAST('1.5' AS double)", "1.5"),
        ("CAST('2023-01-01' AS date)", "2023-01-01"),
        ("CAST('2023-01-01 10:00:00' AS timestamp)", "2023-01-01 10:00:00.000"),
        // Dates and times.
        ("from_unixtime(1674400000)", "2023-01-22 15:06:40.000"),
        ("from_unixtime(to_unixtime(eventtime) + 1.5)", "2023-01-22 10:00:01.500"),
        ("to_unixtime(eventtime)", "1674381600.0"),
        ("date_format(eventtime, '%Y-%m-%d %H:%i:%s')", "2023-01-22 10:00:00"),
        ("date_format(eventtime, '%W %e %M %y, %r')", "Sunday 22 January 23, 10:00:00 AM"),
        ("parse_datetime('2023-01-22 10:00', 'yyyy-MM-dd HH:mm') = eventtime", "true"),
        // URLs.
        ("url_extract_host('https://' || eventsource || ':8443/a/b?bucket=x+y&z=1#top')", "s3.amazonaws.com"),
        ("url_extract_port('https://' || eventsource || ':8443/a/b')", "8443"),
        ("url_extract_path('https://' || eventsource || '/a/b?c=1')", "/a/b"),
        ("url_extract_protocol('https://' || eventsource)", "https"),
        ("url_extract_query('https://h/p?bucket=x+y&z=1#top')", "bucket=x+y&z=1"),
        ("url_extract_fragment('https://h/p?bucket=x+y&z=1#top')", "top"),
        ("url_extract_parameter('https://h/p?bucket=x+y&z=1', 'bucket')", "x y"),
        // Strings and arrays.
        ("array_join(split(eventsource, '.'), '/')", "s3/amazonaws/com"),
        ("cardinality(requestparameters)", "3"),
        ("coalesce(errorcode, errormessage, eventname)", "CreateBucket"),
        ("strpos(eventsource, 'amazon')", "4"),
        ("length(eventname)", "12"),
        ("reverse(eventname)", "tekcuBetaerC"),
        ("lpad(eventname, 15, '*')", "***CreateBucket"),
        ("rpad(eventname, 15, '*')", "CreateBucket***"),
        ("trim('  ' || eventname || ' ')", "CreateBucket"),
        ("eventname LIKE 'Create%' AND '50%' LIKE '50\\%' ESCAPE '\\' AND NOT ('500' LIKE '50\\%' ESCAPE '\\')", "true"),
        ("split_part(eventsource, '.', 1)", "s3"),
        ("starts_with(eventsource, 's3')", "true"),
        ("array_position(split(eventsource, '.'), 'com')", "3"),
        ("greatest(length(eventname), 3)", "12"),
        ("row_number() OVER (PARTITION BY eventsource ORDER BY eventtime)", "1"),
        ("rank() OVER (ORDER BY eventtime)", "1"),
        ("dense_rank() OVER (ORDER BY eventtime)", "1"),
    ] {
        let output = lake
            .query(&format!("SELECT {select} FROM {STORE} WHERE eventid = 'e-create'"))
            .await;
        assert_eq!(rows(&output), json!([[{"_col0": expected}]]), "{select}");
    }
}

#[tokio::test]
async fn cross_join_unnest_over_columns() {
    let lake = documented_lake().await;
    let output = lake
        .query(&format!(
            "SELECT e.eventid, k, t.v FROM {STORE} AS e CROSS JOIN UNNEST(e.requestparameters) AS t(k, v)
             WHERE e.eventid = 'e-create' ORDER BY k"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([
            [{"eventid": "e-create"}, {"k": "CreateBucketConfiguration"}, {"v": "{\"LocationConstraint\":\"eu-west-1\"}"}],
            [{"eventid": "e-create"}, {"k": "bucketName"}, {"v": "amzn-s3-demo-bucket"}],
            [{"eventid": "e-create"}, {"k": "x-amz-acl"}, {"v": "[\"private\"]"}]
        ])
    );
    let output = lake
        .query(&format!(
            "SELECT x, n FROM {STORE} CROSS JOIN UNNEST(split(eventsource, '.')) WITH ORDINALITY AS t(x, n)
             WHERE eventid = 'e-create' ORDER BY n DESC"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"x": "com"}, {"n": "3"}], [{"x": "amazonaws"}, {"n": "2"}], [{"x": "s3"}, {"n": "1"}]])
    );
    let resources = Lake::new(vec![main_store()]);
    resources.ingest(vec![put_object(1), put_object(2)]).await;
    // Arrays of rows: one column per row, or the rows' fields; the comma form too.
    let output = resources
        .query(&format!(
            "SELECT eventid, r.arn, transform(resources, x -> x.type) AS types
             FROM {STORE} CROSS JOIN UNNEST(resources) AS t(r) WHERE r.type = 'AWS::S3::Object' ORDER BY 1"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([
            [{"eventid": "put-1"}, {"arn": "arn:aws:s3:::bucket/k1"}, {"types": "[AWS::S3::Object, AWS::S3::Bucket]"}],
            [{"eventid": "put-2"}, {"arn": "arn:aws:s3:::bucket/k2"}, {"types": "[AWS::S3::Object, AWS::S3::Bucket]"}]
        ])
    );
    let output = resources
        .query(&format!(
            "SELECT type, count(*) AS n FROM {STORE}, UNNEST(resources) AS t(type, arn, accountid) GROUP BY type ORDER BY type"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"type": "AWS::S3::Bucket"}, {"n": "2"}], [{"type": "AWS::S3::Object"}, {"n": "2"}]])
    );
    let output = resources
        .query(&format!(
            "SELECT a, b FROM {STORE} CROSS JOIN UNNEST(split('x.y.z', '.'), split('1.2', '.')) AS t(a, b) WHERE eventid = 'put-1'"
        ))
        .await;
    assert_eq!(
        rows(&output),
        json!([[{"a": "x"}, {"b": "1"}], [{"a": "y"}, {"b": "2"}], [{"a": "z"}, {"b": ""}]])
    );
}

#[tokio::test]
async fn dialect_errors_name_the_problem() {
    let lake = documented_lake().await;
    // Refused when planned (StartQuery answers InvalidQueryStatementException).
    for (sql, needle) in [
        (
            "SELECT all_match(eventname, x -> true) FROM {STORE}",
            "all_match takes an array",
        ),
        (
            "SELECT reduce(split(eventname, 'e'), 0) FROM {STORE}",
            "reduce",
        ),
        (
            "SELECT transform(split(eventname, 'e'), x -> ) FROM {STORE}",
            "not valid SQL",
        ),
        ("SELECT lake_field(eventname, 0) FROM {STORE}", "lake_field"),
    ] {
        let error = lake.error(&sql.replace("{STORE}", STORE)).await;
        assert_eq!(
            error.aws_error_code(),
            Some("InvalidQueryStatementException"),
            "{sql}: {error}"
        );
        assert!(error.to_string().contains(needle), "{sql}: {error}");
    }
    // Failing while running (the query ends FAILED with the message).
    for (sql, needle) in [
        (
            "SELECT regexp_extract(eventname, '(a)', 2) FROM {STORE}",
            "Cannot access group 2",
        ),
        (
            "SELECT regexp_extract(eventname, '(') FROM {STORE}",
            "invalid regular expression",
        ),
        (
            "SELECT CAST(eventname AS map(varchar, json)) FROM {STORE}",
            "Cannot cast to map",
        ),
        (
            "SELECT date_format(eventtime, '%D') FROM {STORE}",
            "%D not supported",
        ),
    ] {
        let error = lake.error(&sql.replace("{STORE}", STORE)).await;
        assert!(matches!(error, LakeError::Execution(_)), "{sql}: {error:?}");
        assert!(error.to_string().contains(needle), "{sql}: {error}");
    }
}

/// The conformance files' events (real CloudTrail records) of their first account.
fn conformance_events() -> Vec<EventRecord> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../core/model/tests/conformance"
    );
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "json") {
            events.extend(opentrail_model::parse_log_file(&std::fs::read(path).unwrap()).unwrap());
        }
    }
    events
}

/// `eventid` → (`eventjson`, `eventjsonchecksum`) of every row of `store`.
async fn record_texts(lake: &Lake, store: &str) -> BTreeMap<String, (String, String)> {
    let output = lake
        .query(&format!(
            "SELECT eventid, eventjson, eventjsonchecksum FROM {store}"
        ))
        .await;
    let text = |cell: &Value, key: &str| cell[key].as_str().unwrap().to_string();
    rows(&output)
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                text(&row[0], "eventid"),
                (
                    text(&row[1], "eventjson"),
                    text(&row[2], "eventjsonchecksum"),
                ),
            )
        })
        .collect()
}

fn expected_texts(events: &[EventRecord]) -> BTreeMap<String, (String, String)> {
    use sha2::{Digest, Sha256};
    events
        .iter()
        .map(|event| {
            (
                event.event_id().to_string(),
                (
                    event.json().to_string(),
                    hex::encode(Sha256::digest(event.as_bytes())),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn record_text_and_checksum_come_back_exactly() {
    let mut events = conformance_events();
    let account = events[0].recipient_account_id().to_string();
    events.retain(|event| event.recipient_account_id() == account);
    // Texts the typed columns would write differently stay whole: spacing, escapes,
    // a string where a boolean belongs, unknown members.
    for (index, json) in [
        r#"{ "eventVersion" : "1.08", "eventTime":"2023-02-01T10:00:00Z", "eventSource":"s3.amazonaws.com", "eventName":"Get\/Object", "awsRegion":"us-east-1", "readOnly":"true", "eventID":"odd-1", "eventType":"AwsApiCall", "recipientAccountId":"ACCOUNT", "eventCategory":"Management", "futureField":{"eventID":"inner"} }"#,
        r#"{"eventVersion":"1.08","eventTime":"2023-02-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"Tab\tName","awsRegion":"us-east-1","userAgent":"caf\u00e9 é","eventID":"odd-2","eventType":"AwsApiCall","recipientAccountId":"ACCOUNT","eventCategory":"Management"}"#,
    ]
    .iter()
    .enumerate()
    {
        let json = json.replace("ACCOUNT", &account);
        let event = EventRecord::from_json(&json).unwrap();
        assert_eq!(event.event_id(), format!("odd-{}", index + 1));
        events.push(event);
    }
    let store = StoreSpec {
        id: "c0ffee00-1111-2222-3333-444455556666".into(),
        account,
        advanced_selectors: vec![selector("Management", vec![]), selector("Data", vec![])],
        ..main_store()
    };
    events.retain(|event| ["Management", "Data"].contains(&event.event_category()));
    let lake = Lake::new(vec![store.clone()]);
    lake.ingest(events.clone()).await;
    let texts = record_texts(&lake, &store.id).await;
    let expected = expected_texts(&events);
    assert!(texts.len() > 100, "{}", texts.len());
    let differing: Vec<_> = expected
        .iter()
        .filter(|(id, text)| texts.get(*id) != Some(*text))
        .map(|(id, text)| (id, text, texts.get(id)))
        .take(3)
        .collect();
    assert!(differing.is_empty(), "{differing:#?}");
    assert_eq!(texts.len(), expected.len());
}

#[tokio::test]
async fn files_of_the_older_layout_are_read_and_merged_into_the_new_one() {
    use datafusion::parquet::arrow::ArrowWriter;
    use object_store::ObjectStoreExt;
    let lake = Lake::new(vec![main_store()]);
    let events: Vec<EventRecord> = (0..32).map(put_object).collect();
    lake.append(events.clone()).await;
    // Files as the writer wrote them before the skeleton layout: whole `eventjson` and
    // `eventjsonchecksum` columns, 4 records a file.
    for (index, chunk) in events.chunks(4).enumerate() {
        let batch = opentrail_lake::events_to_batch(chunk).unwrap();
        assert!(batch.column_by_name("eventjson").is_some());
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let path = lake
            .storage
            .root
            .clone()
            .join(STORE)
            .join("eventday=2023-01-05")
            .join(format!(
                "part-{:020}-{:020}.parquet",
                index * 4,
                index * 4 + 3
            ));
        lake.storage.objects.put(&path, bytes.into()).await.unwrap();
    }
    lake.log.commit_cursor("lake", 32).unwrap();
    assert_eq!(record_texts(&lake, STORE).await, expected_texts(&events));
    let writer = lake.writer(Arc::new(lake.log.clone()));
    assert_eq!(writer.compact().await.unwrap(), 8);
    let files = lake_files(&lake).await;
    assert_eq!(files.len(), 1);
    let merged =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            files[0].1.clone(),
        )
        .unwrap();
    let schema = merged.schema();
    assert!(schema.field_with_name("eventjson").is_err());
    assert!(schema.field_with_name("eventjsonchecksum").is_err());
    assert!(schema
        .field_with_name(opentrail_lake::EVENT_JSON_SKELETON)
        .is_ok());
    assert_eq!(record_texts(&lake, STORE).await, expected_texts(&events));
}

/// Narrow filtered scans run without filter pushdown, wide ones with it
/// (`Planner::physical_plan`): either way a query's rows are those of the engine with
/// pushdown off throughout.
#[tokio::test]
async fn filters_give_the_same_rows_with_and_without_pushdown() {
    let lake = documented_lake().await;
    let stores: Vec<String> = lake.stores.iter().map(|s| s.id.clone()).collect();
    for sql in [
        // (c)'s shape: a null test and one plain column besides.
        format!(
            "SELECT sourceIPAddress, COUNT(*) AS n FROM {STORE} WHERE errorCode IS NOT NULL
             GROUP BY sourceIPAddress ORDER BY n DESC, sourceIPAddress"
        ),
        // Ordered: files are read in parallel, so unordered rows come in either order.
        format!(
            "SELECT eventTime FROM {STORE} WHERE eventTime > '2023-01-22 00:00:00'
             ORDER BY eventTime"
        ),
        // (b)'s shape: every column of one principal's events.
        format!(
            "SELECT * FROM {STORE} WHERE userIdentity.principalid IS NOT NULL
             AND eventTime < '2023-01-23 00:00:00' ORDER BY eventTime, eventID"
        ),
    ] {
        let chosen = lake.engine().run(&sql, &stores).await.unwrap();
        let off = lake
            .engine()
            .with_filter_pushdown(false)
            .run(&sql, &stores)
            .await
            .unwrap();
        assert!(!chosen.rows.is_empty(), "{sql}");
        assert_eq!(chosen.rows, off.rows, "{sql}");
        assert_eq!(chosen.columns, off.columns, "{sql}");
    }
}
