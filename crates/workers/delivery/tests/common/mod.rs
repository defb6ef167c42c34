//! Shared by the integration tests: events, a trail directory, a harness around a real
//! event log, and a moto S3 server.

#![allow(dead_code)] // each test binary uses a different subset

pub mod moto;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use opentrail_delivery::keys::SIGNING_KEYS;
use opentrail_delivery::{
    DeliveryConfig, DeliveryDeps, DeliveryOutcome, DeliveryWorker, KeyStore, TrailDirectory,
    TrailTarget,
};
use opentrail_log::{EventLog, LogOptions};
use opentrail_meta::{MetaStore, Transactions};
use opentrail_model::{
    iso8601, parse_log_file, AccountId, EventRecord, Region, TestClock, TrailArn, TrailName,
};
use opentrail_objstore::{LocalStore, ObjectStore};
use opentrail_selectors::TrailSelectors;

pub const ACCOUNT: &str = "123456789012";

pub const TEST_KEYS: [&str; 3] = [
    include_str!("../fixtures/test-key-1.pem"),
    include_str!("../fixtures/test-key-2.pem"),
    include_str!("../fixtures/test-key-3.pem"),
];

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 7, 9, 0, 0).unwrap()
}

pub fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

/// One event record's JSON: a management API call unless `category` says otherwise.
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: String,
    pub time: DateTime<Utc>,
    pub region: String,
    pub source: String,
    pub name: String,
    pub read_only: bool,
    pub category: String,
    pub account: String,
    /// `resources` elements as (type, ARN).
    pub resources: Vec<(String, String)>,
    pub sts_host: Option<String>,
}

impl Ev {
    pub fn new(id: impl ToString, region: &str, source: &str, name: &str) -> Ev {
        Ev {
            id: id.to_string(),
            time: t0(),
            region: region.to_owned(),
            source: source.to_owned(),
            name: name.to_owned(),
            read_only: name.starts_with("Get")
                || name.starts_with("List")
                || name.starts_with("Describe"),
            category: "Management".to_owned(),
            account: ACCOUNT.to_owned(),
            resources: Vec::new(),
            sts_host: None,
        }
    }

    pub fn at(mut self, time: DateTime<Utc>) -> Ev {
        self.time = time;
        self
    }

    pub fn data(mut self, resource_type: &str, arn: &str) -> Ev {
        self.category = "Data".to_owned();
        self.resources
            .push((resource_type.to_owned(), arn.to_owned()));
        self
    }

    pub fn account(mut self, account: &str) -> Ev {
        self.account = account.to_owned();
        self
    }

    pub fn sts_host(mut self, host: &str) -> Ev {
        self.sts_host = Some(host.to_owned());
        self
    }

    pub fn json(&self) -> String {
        let resources = if self.resources.is_empty() {
            String::new()
        } else {
            let items: Vec<String> = self
                .resources
                .iter()
                .map(|(t, arn)| format!(r#"{{"type":"{t}","ARN":"{arn}"}}"#))
                .collect();
            format!(r#","resources":[{}]"#, items.join(","))
        };
        let tls = self
            .sts_host
            .as_ref()
            .map(|host| format!(r#","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{host}"}}"#))
            .unwrap_or_default();
        let management = self.category == "Management";
        format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::{acct}:user/alice","accountId":"{acct}","userName":"alice"}},"eventTime":"{time}","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2","requestParameters":{{"n":"{id}"}},"responseElements":null,"requestID":"req-{id}","eventID":"{id}","readOnly":{ro},"eventType":"AwsApiCall","managementEvent":{management},"recipientAccountId":"{acct}","eventCategory":"{category}"{resources}{tls}}}"#,
            acct = self.account,
            time = iso8601(self.time),
            source = self.source,
            name = self.name,
            region = self.region,
            id = self.id,
            ro = self.read_only,
            category = self.category,
        )
    }
}

/// A trail as the server would list it: default selectors, logging since `t0() - 1h`.
pub fn trail(name: &str, home: &str) -> TrailTarget {
    TrailTarget {
        account: AccountId::parse(ACCOUNT).unwrap(),
        name: TrailName::parse(name).unwrap(),
        home_region: region(home),
        is_multi_region: false,
        include_global_service_events: true,
        s3_bucket: "trail-bucket".to_owned(),
        s3_key_prefix: None,
        selectors: TrailSelectors::default_for_new_trail(),
        log_file_validation: false,
        insight_types: Vec::new(),
        is_logging: true,
        logging_since: Some(t0() - chrono::Duration::hours(1)),
        logging_since_offset: None,
    }
}

/// Selectors from their JSON wire form (`PutEventSelectors` / advanced).
pub fn basic_selectors(json: serde_json::Value) -> TrailSelectors {
    opentrail_selectors::validate_event_selectors(serde_json::from_value(json).unwrap()).unwrap()
}

pub fn advanced_selectors(json: serde_json::Value) -> TrailSelectors {
    opentrail_selectors::validate_advanced_event_selectors(serde_json::from_value(json).unwrap())
        .unwrap()
}

/// A directory whose trails the test sets, recording every outcome.
#[derive(Default)]
pub struct TestDirectory {
    pub trails: Mutex<Vec<TrailTarget>>,
    pub outcomes: Mutex<Vec<(TrailArn, DeliveryOutcome)>>,
}

impl TestDirectory {
    pub fn set(&self, trails: Vec<TrailTarget>) {
        *self.trails.lock().unwrap() = trails;
    }

    pub fn outcomes(&self) -> Vec<(TrailArn, DeliveryOutcome)> {
        self.outcomes.lock().unwrap().clone()
    }

    pub fn last_outcome(&self) -> Option<DeliveryOutcome> {
        self.outcomes.lock().unwrap().last().map(|(_, o)| o.clone())
    }
}

impl TrailDirectory for TestDirectory {
    fn logging_trails(&self) -> Vec<TrailTarget> {
        self.trails.lock().unwrap().clone()
    }

    fn record_delivery(&self, trail: &TrailArn, outcome: DeliveryOutcome) {
        self.outcomes.lock().unwrap().push((trail.clone(), outcome));
    }
}

/// A real event log, a store, keys and a test clock in a temporary directory.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub log: EventLog,
    pub store: Arc<dyn ObjectStore>,
    pub directory: Arc<TestDirectory>,
    pub keys: Arc<KeyStore>,
    pub meta: Arc<dyn MetaStore>,
    pub clock: TestClock,
}

/// Which of the first two test keys signs `name`'s digests: us-east-1 and ap-southeast-2
/// the first, eu-west-1 and us-west-2 the second (as the tests expect), the others by
/// position.
fn test_key_index(name: &str, index: usize) -> usize {
    match name {
        "us-east-1" | "ap-southeast-2" => 0,
        "eu-west-1" | "us-west-2" => 1,
        _ => index % 2,
    }
}

impl Harness {
    /// With a [`LocalStore`] holding the bucket `trail-bucket`.
    pub async fn local() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("store")));
        store.create_bucket("trail-bucket").await.unwrap();
        Harness::with_store(dir, store)
    }

    pub fn with_store(dir: tempfile::TempDir, store: Arc<dyn ObjectStore>) -> Harness {
        let log = EventLog::open(dir.path().join("log"), LogOptions::default()).unwrap();
        let meta: Arc<dyn MetaStore> = Arc::new(
            opentrail_meta::SqliteMetaStore::open(&dir.path().join("meta.sqlite")).unwrap(),
        );
        // Fixed keys for every region a multi-region trail covers (digests start in all of
        // them), stored in one transaction: generating 34 RSA keys per test is slow.
        let valid_from =
            opentrail_delivery::object_keys::compact_time(t0() - chrono::Duration::days(1));
        meta.transaction(|tx| {
            for (index, name) in opentrail_model::AWS_REGIONS.iter().enumerate() {
                let pem = TEST_KEYS[test_key_index(name, index)];
                tx.put_document(SIGNING_KEYS, &format!("{name}/{valid_from}"), pem)?;
            }
            Ok::<_, opentrail_meta::MetaError>(())
        })
        .unwrap();
        let keys = Arc::new(
            KeyStore::open(
                Arc::clone(&meta),
                dir.path().join("keys"),
                chrono::Duration::days(30),
            )
            .unwrap(),
        );
        Harness {
            dir,
            log,
            store,
            directory: Arc::new(TestDirectory::default()),
            keys,
            meta,
            clock: TestClock::new(t0()),
        }
    }

    pub fn config(&self) -> DeliveryConfig {
        let mut config = DeliveryConfig::new(self.dir.path().join("state"));
        config.delivery_interval = Duration::from_secs(60);
        config.retry.initial = Duration::from_secs(10);
        config.retry.max = Duration::from_secs(60);
        config.attempt_timeout = Duration::from_secs(10);
        // Every step commits, so that the tests see each step's cursor.
        config.cursor_commit_interval = Duration::ZERO;
        config
    }

    pub async fn worker(&self) -> DeliveryWorker {
        self.worker_with(self.config()).await
    }

    pub async fn worker_with(&self, config: DeliveryConfig) -> DeliveryWorker {
        DeliveryWorker::start(
            config,
            DeliveryDeps {
                log: Arc::new(self.log.clone()),
                store: Arc::clone(&self.store),
                directory: self.directory.clone(),
                keys: Arc::clone(&self.keys),
                meta: Arc::clone(&self.meta),
                clock: Arc::new(self.clock.clone()),
            },
        )
        .await
        .unwrap()
    }

    pub async fn append(&self, events: &[Ev]) {
        let records: Vec<Bytes> = events.iter().map(|e| Bytes::from(e.json())).collect();
        self.log.append(records).await.unwrap();
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(chrono::Duration::seconds(seconds));
    }

    /// Every log file key under `bucket`, sorted.
    pub async fn log_file_keys(&self, bucket: &str) -> Vec<String> {
        self.store
            .list_objects(bucket, "")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.contains("/CloudTrail/"))
            .collect()
    }

    pub async fn digest_keys(&self, bucket: &str) -> Vec<String> {
        self.store
            .list_objects(bucket, "")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.contains("/CloudTrail-Digest/"))
            .collect()
    }

    /// The records of one log file, checking it is a single gzip member.
    pub async fn records_in(&self, bucket: &str, key: &str) -> Vec<EventRecord> {
        let object = self.store.get_object(bucket, key).await.unwrap().unwrap();
        let inflated = opentrail_delivery::log_file::gunzip_single_member(&object.body).unwrap();
        parse_log_file(&inflated).unwrap()
    }

    /// Event IDs per log file key.
    pub async fn delivered_ids(&self, bucket: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for key in self.log_file_keys(bucket).await {
            let ids = self
                .records_in(bucket, &key)
                .await
                .iter()
                .map(|r| r.event_id().to_owned())
                .collect();
            out.push((key, ids));
        }
        out
    }
}
