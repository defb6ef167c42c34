//! Federation end to end in the lake: the writer publishes an enabling store's Iceberg
//! table (and reports it), commits a new version as files arrive, after compaction and
//! after retention, and removes the table of a disabling store (keeping the data files).

use opentrail_lake::{
    ContextKeys, FederatedStore, FederationState, LakeStorage, LakeWriter, StoreCatalog,
    StoreSchema, StoreSpec, STANDARD_MAX_EVENT_BYTES,
};
use opentrail_log::{DurableLog, EventLog, LogOptions, LogRecord};
use opentrail_model::EventRecord;
use opentrail_selectors::{AdvancedEventSelector, AdvancedFieldSelector, Operator};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const ACCOUNT: &str = "123456789012";
const STORE: &str = "5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";

fn store() -> StoreSpec {
    StoreSpec {
        id: STORE.into(),
        account: ACCOUNT.into(),
        home_region: "us-east-1".into(),
        multi_region: true,
        advanced_selectors: vec![AdvancedEventSelector {
            name: None,
            field_selectors: vec![
                AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, ["Management"])
            ],
        }],
        ingestion_enabled: true,
        retention_days: 30,
        from_offset: 0,
        until_offset: None,
        insights_from: None,
        schema: StoreSchema::CloudTrailEvents,
        channels: vec![],
        max_event_bytes: STANDARD_MAX_EVENT_BYTES,
        context_keys: ContextKeys::default(),
    }
}

/// One store whose federation state the test sets; records what the writer settles.
struct Catalog {
    state: Mutex<Option<FederationState>>,
    settled: Mutex<Vec<bool>>,
}

impl StoreCatalog for Catalog {
    fn stores(&self) -> opentrail_lake::Result<Vec<StoreSpec>> {
        Ok(vec![store()])
    }

    fn federated(&self) -> opentrail_lake::Result<Vec<FederatedStore>> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .map(|state| FederatedStore {
                id: STORE.into(),
                schema: StoreSchema::CloudTrailEvents,
                state,
            })
            .into_iter()
            .collect())
    }

    fn federation_settled(&self, store: &str, enabled: bool) -> opentrail_lake::Result<()> {
        assert_eq!(store, STORE);
        self.settled.lock().unwrap().push(enabled);
        let mut state = self.state.lock().unwrap();
        *state = enabled.then_some(FederationState::Enabled);
        Ok(())
    }
}

fn event(id: usize, day: u32) -> EventRecord {
    let record = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": ACCOUNT, "userName": "alice"},
        "eventTime": format!("2024-03-{day:02}T10:00:00Z"),
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "requestParameters": {"bucketName": "b"},
        "eventID": format!("e-{id}"),
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management"
    });
    EventRecord::from_json(&record.to_string()).unwrap()
}

struct Harness {
    dir: tempfile::TempDir,
    log: EventLog,
    storage: LakeStorage,
    catalog: Arc<Catalog>,
    writer: LakeWriter,
    next: usize,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path().join("log"), LogOptions::default()).unwrap();
        let storage = LakeStorage::local(&dir.path().join("lake")).unwrap();
        let catalog = Arc::new(Catalog {
            state: Mutex::new(None),
            settled: Mutex::new(Vec::new()),
        });
        let writer = LakeWriter::new(
            Arc::new(log.clone()) as Arc<dyn DurableLog>,
            Arc::clone(&catalog) as Arc<dyn StoreCatalog>,
            storage.clone(),
        );
        Self {
            dir,
            log,
            storage,
            catalog,
            writer,
            next: 0,
        }
    }

    /// Appends `count` events of `day` as one batch and writes them.
    async fn ingest(&mut self, count: usize, day: u32) {
        let records = (0..count)
            .map(|i| LogRecord::from_event(event(self.next + i, day)))
            .collect();
        self.next += count;
        self.log.append_records(records).await.unwrap();
        self.writer.catch_up().await.unwrap();
    }

    fn metadata_dir(&self) -> std::path::PathBuf {
        self.dir
            .path()
            .join("lake/federation")
            .join(STORE)
            .join("metadata")
    }

    fn version(&self) -> Option<u64> {
        std::fs::read_to_string(self.metadata_dir().join("version-hint.text"))
            .ok()
            .map(|v| v.trim().parse().unwrap())
    }

    /// The newest metadata and the data files its snapshot lists (file URIs, sorted), with
    /// the record count its summary gives.
    fn table(&self) -> (Value, Vec<String>, u64) {
        let version = self.version().expect("a published table");
        let text = std::fs::read_to_string(
            self.metadata_dir()
                .join(format!("v{version}.metadata.json")),
        )
        .unwrap();
        let metadata: Value = serde_json::from_str(&text).unwrap();
        let summary = &metadata["snapshots"][0]["summary"];
        let records = summary["total-records"].as_str().unwrap().parse().unwrap();
        // The manifest's file paths, read from its bytes (they are plain strings in Avro).
        let manifests: Vec<_> = std::fs::read_dir(self.metadata_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name.starts_with(&format!("{version}-")) && name.ends_with("-m0.avro")
            })
            .collect();
        assert_eq!(manifests.len(), 1, "{manifests:?}");
        let bytes = std::fs::read(&manifests[0]).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let mut files: Vec<String> = text
            .match_indices("file://")
            .map(|(at, _)| {
                let rest = &text[at..];
                let end = rest.find(".parquet").unwrap() + ".parquet".len();
                rest[..end].to_string()
            })
            .collect();
        files.sort();
        (metadata, files, records)
    }

    /// The store's Parquet files on disk, as URIs.
    fn data_files(&self) -> Vec<String> {
        let root = std::fs::canonicalize(self.dir.path().join("lake")).unwrap();
        let mut files = Vec::new();
        for day in std::fs::read_dir(root.join(STORE)).unwrap() {
            for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
                files.push(format!("file://{}", file.unwrap().path().display()));
            }
        }
        files.sort();
        files
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_follows_the_store() {
    let mut h = Harness::new();
    h.ingest(3, 1).await;
    assert_eq!(h.version(), None, "not federated: no table");

    *h.catalog.state.lock().unwrap() = Some(FederationState::Enabling);
    h.writer.federate(false).await.unwrap();
    assert_eq!(*h.catalog.settled.lock().unwrap(), vec![true]);
    let (metadata, files, records) = h.table();
    assert_eq!(files, h.data_files());
    assert_eq!(records, 3);
    assert_eq!(metadata["format-version"], 2);
    let mapping = metadata["properties"]["schema.name-mapping.default"]
        .as_str()
        .unwrap();
    assert!(mapping.contains("\"eventid\""));
    let first = h.version().unwrap();

    // Nothing changed: no new version.
    h.writer.federate(true).await.unwrap();
    assert_eq!(h.version(), Some(first));

    // More batches on two days: one new version lists them all.
    for _ in 0..9 {
        h.ingest(2, 2).await;
    }
    let (_, files, records) = h.table();
    assert_eq!(files, h.data_files());
    assert_eq!(records, 21);
    assert_eq!(files.len(), 10);
    assert!(h.version().unwrap() > first);

    // Compaction merges day 2's nine files: the table lists the merged file only.
    assert_eq!(h.writer.compact().await.unwrap(), 9);
    h.writer.federate(true).await.unwrap();
    let (_, files, records) = h.table();
    assert_eq!(files, h.data_files());
    assert_eq!(files.len(), 2);
    assert_eq!(records, 21);

    // Retention drops day 1.
    let today = chrono::NaiveDate::from_ymd_opt(2024, 4, 1).unwrap();
    assert_eq!(h.writer.expire(today).await.unwrap(), 1);
    h.writer.federate(true).await.unwrap();
    let (_, files, records) = h.table();
    assert_eq!(files, h.data_files());
    assert_eq!(records, 18);

    // A restarted writer continues the version numbers.
    let before = h.version().unwrap();
    let writer = LakeWriter::new(
        Arc::new(h.log.clone()) as Arc<dyn DurableLog>,
        Arc::clone(&h.catalog) as Arc<dyn StoreCatalog>,
        h.storage.clone(),
    );
    h.writer = writer;
    h.ingest(1, 2).await;
    assert_eq!(h.version(), Some(before + 1));
    assert_eq!(h.table().2, 19);

    // Disabling removes the metadata, not the data.
    *h.catalog.state.lock().unwrap() = Some(FederationState::Disabling);
    h.writer.federate(false).await.unwrap();
    assert_eq!(*h.catalog.settled.lock().unwrap(), vec![true, false]);
    let left = std::fs::read_dir(h.metadata_dir()).map_or(0, |dir| dir.count());
    assert_eq!(left, 0, "table metadata left behind");
    assert_eq!(h.data_files().len(), 2);
}
