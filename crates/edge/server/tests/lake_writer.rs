//! Event data stores receive events: the real server's lake writer turns events sent to
//! `POST /events` into each store's Parquet files under `<data-dir>/lake/`, read back here
//! with the lake's own query engine. A store holds the events logged while it ingests
//! (none from before its creation, none while stopped), and `kill -9` in the middle of
//! writing neither loses nor duplicates an acknowledged event.

mod common;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use common::{http_get, AccessKey, TestServer, ACCOUNT_ID};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentrail_lake::{DataFusionEngine, LakeStorage, QueryEngine};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const REGION: &str = "us-east-1";
/// How long anything may take to show up on a busy machine.
const DEADLINE: Duration = Duration::from_secs(90);

type Http = Client<HttpConnector, Full<Bytes>>;

fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A management event of the test account, now.
fn record(event_id: &str, source: &str) -> Value {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT_ID, "userName": "alice"},
        "eventTime": now,
        "eventSource": source,
        "eventName": "PutLoad",
        "awsRegion": REGION,
        "sourceIPAddress": "10.0.0.1",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "readOnly": false,
        "managementEvent": true,
        "eventCategory": "Management",
        "recipientAccountId": ACCOUNT_ID,
    })
}

fn new_ids(n: usize) -> Vec<String> {
    (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect()
}

/// `POST /events` signed for service `opentrail`; the event ids acknowledged, or why not.
async fn post_events(
    http: &Http,
    addr: SocketAddr,
    key: &AccessKey,
    records: &[Value],
) -> Result<Vec<String>, String> {
    let body = json!({ "Records": records }).to_string();
    let url = format!("http://{addr}/events");
    let host = addr.to_string();
    let identity: Identity = Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("opentrail")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/json"),
    ];
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut builder = http::Request::builder().method("POST").uri(&url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    for (name, value) in instructions.headers() {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .expect("http request");
    let response = http
        .request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("read: {e}"))?
        .to_bytes();
    if status != 200 {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    let answer: Value = serde_json::from_slice(&body).map_err(|e| format!("answer: {e}"))?;
    let failed = &answer["failed"];
    if failed.as_array().is_some_and(|f| !f.is_empty()) {
        return Err(format!("rejected: {failed}"));
    }
    Ok(answer["successful"]
        .as_array()
        .expect("successful list")
        .iter()
        .map(|entry| entry["eventID"].as_str().expect("eventID").to_owned())
        .collect())
}

/// Sends `ids` as events of `source`; all must be acknowledged.
async fn ingest(server: &TestServer, ids: &[String], source: &str) {
    let records: Vec<Value> = ids.iter().map(|id| record(id, source)).collect();
    let acked = post_events(&http(), server.addr(), server.credentials(), &records)
        .await
        .expect("events acknowledged");
    assert_eq!(acked.len(), ids.len());
}

async fn create_store(server: &TestServer, name: &str) -> String {
    let created = server
        .client(REGION)
        .create_event_data_store()
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create event data store {name}: {e:?}"));
    let arn = created.event_data_store_arn().expect("store ARN");
    arn.rsplit('/').next().expect("store id").to_owned()
}

/// The eventIDs of `source` events in `store`, read from its Parquet files (one entry
/// per stored row).
async fn stored_ids(lake: &Path, store: &str, source: &str) -> Vec<String> {
    let engine = DataFusionEngine::new(LakeStorage::local(lake).expect("lake storage"));
    let sql = format!("SELECT eventid FROM {store} WHERE eventsource = '{source}'");
    let output = engine
        .run(&sql, &[store.to_owned()])
        .await
        .unwrap_or_else(|e| panic!("query {sql}: {e}"));
    output
        .result_rows()
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            row[0]["eventid"]
                .as_str()
                .unwrap_or_else(|| panic!("row without eventid: {row}"))
                .to_owned()
        })
        .collect()
}

/// Waits until `store` holds exactly the `expected` events of `source`; returns how long
/// it took.
async fn wait_for_ids(lake: &Path, store: &str, source: &str, expected: &[String]) -> Duration {
    let started = Instant::now();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    loop {
        let stored = stored_ids(lake, store, source).await;
        let got: BTreeSet<&str> = stored.iter().map(String::as_str).collect();
        if got == expected && stored.len() == expected.len() {
            return started.elapsed();
        }
        assert!(
            got.is_subset(&expected) && stored.len() == got.len(),
            "store {store} holds unexpected or duplicate {source} events: {stored:?}"
        );
        assert!(
            started.elapsed() < DEADLINE,
            "store {store} has {} of {} {source} events after {DEADLINE:?}",
            got.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(parquet_files(&path));
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_collect_the_events_logged_while_they_ingest() {
    let server = TestServer::start();
    let lake = server.data_dir().join("lake");
    let (status, health) = http_get(server.addr(), "/health").expect("health");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&health).expect("health JSON");
    assert_eq!(health["components"]["lake"]["status"], "ok", "{health}");

    // Logged before any store exists: no store ever gets them.
    let early = new_ids(5);
    ingest(&server, &early, "early.example.com").await;

    let first = create_store(&server, "first").await;
    let batch_b = new_ids(20);
    ingest(&server, &batch_b, "loadtest.example.com").await;
    let waited = wait_for_ids(&lake, &first, "loadtest.example.com", &batch_b).await;
    eprintln!("20 events queryable {waited:?} after their acknowledgement");
    assert!(stored_ids(&lake, &first, "early.example.com")
        .await
        .is_empty());

    // The files are zstd Parquet per store and event day.
    let files = parquet_files(&lake.join(&first));
    assert!(!files.is_empty());
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for file in &files {
        let day = file.parent().and_then(Path::file_name).expect("day folder");
        assert!(
            day.to_string_lossy().starts_with("eventday="),
            "{}",
            file.display()
        );
        let name = file.file_name().expect("name").to_string_lossy();
        assert!(name.starts_with("part-"), "{}", file.display());
    }
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().contains(&format!("eventday={today}"))));

    // Whole events, with their fields typed.
    let engine = DataFusionEngine::new(LakeStorage::local(&lake).expect("lake storage"));
    let sql = format!(
        "SELECT eventname, recipientaccountid, awsregion, useridentity.username, eventjson FROM {first} WHERE eventid = '{}'",
        batch_b[0]
    );
    let rows = engine
        .run(&sql, std::slice::from_ref(&first))
        .await
        .expect("query one event")
        .result_rows();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    let row = &rows[0];
    assert_eq!(row[0]["eventname"], "PutLoad");
    assert_eq!(row[1]["recipientaccountid"], ACCOUNT_ID);
    assert_eq!(row[2]["awsregion"], REGION);
    assert_eq!(row[3]["username"], "alice");
    let original: Value =
        serde_json::from_str(row[4]["eventjson"].as_str().expect("eventjson")).expect("JSON");
    assert_eq!(original["eventID"], batch_b[0].as_str());

    // A store created now has none of the events logged before it.
    let second = create_store(&server, "second").await;
    let batch_c = new_ids(10);
    ingest(&server, &batch_c, "later.example.com").await;
    wait_for_ids(&lake, &second, "later.example.com", &batch_c).await;
    wait_for_ids(&lake, &first, "later.example.com", &batch_c).await;
    assert!(stored_ids(&lake, &second, "loadtest.example.com")
        .await
        .is_empty());
    assert!(stored_ids(&lake, &second, "early.example.com")
        .await
        .is_empty());

    // A stopped store receives nothing; the other store shows the writer went past.
    server
        .client(REGION)
        .stop_event_data_store_ingestion()
        .event_data_store(&first)
        .send()
        .await
        .expect("stop ingestion");
    let batch_d = new_ids(10);
    ingest(&server, &batch_d, "stopped.example.com").await;
    wait_for_ids(&lake, &second, "stopped.example.com", &batch_d).await;
    assert!(stored_ids(&lake, &first, "stopped.example.com")
        .await
        .is_empty());

    // Started again: it collects from then on, not what was logged while it was stopped.
    server
        .client(REGION)
        .start_event_data_store_ingestion()
        .event_data_store(&first)
        .send()
        .await
        .expect("start ingestion");
    let batch_e = new_ids(10);
    ingest(&server, &batch_e, "restarted.example.com").await;
    wait_for_ids(&lake, &first, "restarted.example.com", &batch_e).await;
    assert!(stored_ids(&lake, &first, "stopped.example.com")
        .await
        .is_empty());

    // API calls are management events too: the second store holds the first's restart.
    let restarts = engine
        .run(
            &format!("SELECT count(*) AS n FROM {second} WHERE eventname = 'StartEventDataStoreIngestion'"),
            std::slice::from_ref(&second),
        )
        .await
        .expect("count self-audit events")
        .result_rows();
    assert_eq!(restarts[0][0]["n"], "1", "{restarts}");
}

/// Events acknowledged before the kill: enough for several lake batches.
const KILL_AFTER_ACKS: usize = 6_000;
const SENDERS: usize = 4;
const BATCH: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_lake_writing_loses_and_duplicates_nothing() {
    const SOURCE: &str = "crash.example.com";
    let mut server = TestServer::start();
    let lake = server.data_dir().join("lake");
    let stores = [
        create_store(&server, "crash-one").await,
        create_store(&server, "crash-two").await,
    ];
    let acknowledged = Arc::new(Mutex::new(HashSet::<String>::new()));
    let in_flight = Arc::new(Mutex::new(HashSet::<String>::new()));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (acknowledged, in_flight) = (Arc::clone(&acknowledged), Arc::clone(&in_flight));
        let (addr, key) = (server.addr(), server.credentials().clone());
        senders.push(tokio::spawn(async move {
            let http = http();
            loop {
                let ids = new_ids(BATCH);
                in_flight.lock().unwrap().extend(ids.iter().cloned());
                let records: Vec<Value> = ids.iter().map(|id| record(id, SOURCE)).collect();
                match post_events(&http, addr, &key, &records).await {
                    Ok(acked) => {
                        let mut in_flight = in_flight.lock().unwrap();
                        for id in &acked {
                            in_flight.remove(id);
                        }
                        acknowledged.lock().unwrap().extend(acked);
                    }
                    // The server is gone: this batch was never acknowledged.
                    Err(why) if why.starts_with("send") || why.starts_with("read") => return,
                    Err(why) => panic!("ingest failed before the kill: {why}"),
                }
            }
        }));
    }
    // Kill once the writer has written some of the burst and more is arriving.
    let started = Instant::now();
    loop {
        let acked = acknowledged.lock().unwrap().len();
        let written = parquet_files(&lake.join(&stores[0])).len();
        if acked >= KILL_AFTER_ACKS && written >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "too slow to test anything: {acked} events acknowledged, {written} lake files in 180s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill9();
    for sender in senders {
        tokio::time::timeout(DEADLINE, sender)
            .await
            .expect("sender ends after the kill")
            .expect("sender did not panic");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let in_flight = in_flight.lock().unwrap().clone();
    eprintln!(
        "{} events acknowledged before kill -9, {} in flight",
        acknowledged.len(),
        in_flight.len()
    );

    server.restart();
    for store in &stores {
        let started = Instant::now();
        loop {
            let stored = stored_ids(&lake, store, SOURCE).await;
            let distinct: HashSet<&String> = stored.iter().collect();
            assert_eq!(
                stored.len(),
                distinct.len(),
                "store {store}: an event is stored twice"
            );
            assert!(
                distinct
                    .iter()
                    .all(|id| acknowledged.contains(*id) || in_flight.contains(*id)),
                "store {store} holds an event that was never sent"
            );
            let missing = acknowledged
                .iter()
                .filter(|id| !distinct.contains(id))
                .count();
            if missing == 0 {
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "store {store}: {missing} acknowledged events missing {DEADLINE:?} after the restart"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Once caught up the writer leaves no stray file behind: a count over the files
    // matches the distinct events.
    for store in &stores {
        let engine = DataFusionEngine::new(LakeStorage::local(&lake).expect("lake storage"));
        let rows = engine
            .run(
                &format!("SELECT count(*) AS n, count(DISTINCT eventid) AS d FROM {store} WHERE eventsource = '{SOURCE}'"),
                std::slice::from_ref(store),
            )
            .await
            .expect("count")
            .result_rows();
        assert_eq!(rows[0][0]["n"], rows[0][1]["d"], "{rows}");
    }
}
