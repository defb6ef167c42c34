//! Several `StoreService`s on one SQLite file (as two nodes sharing a database): the name
//! rule and the ten-per-region limit hold under races.

use chrono::{TimeZone, Utc};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Region, RequestContext, TestClock};
use opentrail_operations::CreateEventDataStoreRequest;
use opentrail_stores::{StoreError, StoreService, MAX_EVENT_DATA_STORES_PER_REGION};
use opentrail_wire::AwsError;
use std::path::Path;
use std::sync::Arc;

/// One node: its own metadata store instance on the shared file.
fn node(dir: &Path) -> Arc<StoreService> {
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.join("meta.sqlite")).unwrap());
    let clock = TestClock::new(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap());
    Arc::new(StoreService::new(meta, Arc::new(clock)))
}

fn ctx() -> RequestContext {
    RequestContext {
        account: AccountId::parse("111122223333").unwrap(),
        region: Region::parse("us-east-1").unwrap(),
        principal: opentrail_model::Principal {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            kind: opentrail_model::PrincipalKind::Root,
        },
    }
}

fn create(name: &str) -> CreateEventDataStoreRequest {
    CreateEventDataStoreRequest {
        name: name.into(),
        ..Default::default()
    }
}

/// Creates `names[i]` on node `i % 2`, all at once; returns each result's error code.
async fn race_creates(nodes: &[Arc<StoreService>; 2], names: Vec<String>) -> Vec<Option<String>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(names.len()));
    let tasks: Vec<_> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let (service, barrier) = (Arc::clone(&nodes[i % 2]), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                service
                    .create_event_data_store(&ctx(), create(&name))
                    .await
                    .err()
                    .map(|e: StoreError| e.code().to_owned())
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_for_one_store_name_create_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = [node(dir.path()), node(dir.path())];
    for round in 0..4 {
        let name = format!("contested-{round}");
        let results = race_creates(&nodes, vec![name; 6]).await;
        assert_eq!(
            results.iter().filter(|r| r.is_none()).count(),
            1,
            "round {round}: {results:?}"
        );
        assert!(results
            .iter()
            .flatten()
            .all(|code| code == "EventDataStoreAlreadyExistsException"));
    }
    assert_eq!(nodes[1].all_stores().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_for_the_last_store_of_a_region_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = [node(dir.path()), node(dir.path())];
    for i in 0..MAX_EVENT_DATA_STORES_PER_REGION - 1 {
        nodes[0]
            .create_event_data_store(&ctx(), create(&format!("existing-{i}")))
            .await
            .unwrap();
    }
    let names = (0..6).map(|i| format!("new-{i}")).collect();
    let results = race_creates(&nodes, names).await;
    assert_eq!(
        results.iter().filter(|r| r.is_none()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .flatten()
        .all(|code| code == "EventDataStoreMaxLimitExceededException"));
    assert_eq!(
        nodes[0].all_stores().unwrap().len(),
        MAX_EVENT_DATA_STORES_PER_REGION
    );
}
