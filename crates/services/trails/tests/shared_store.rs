//! Several `TrailService`s on one SQLite file (as two nodes sharing a database): the name
//! and per-region rules hold under races, and each trail's runtime status belongs to that
//! trail's incarnation only.

use chrono::{TimeZone, Utc};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Region, TestClock, TrailArn};
use opentrail_objstore::{LocalStore, ObjectStore};
use opentrail_operations::{
    AddTagsRequest, CreateTrailRequest, DeleteTrailRequest, GetTrailStatusRequest,
    GetTrailStatusResponse, StartLoggingRequest, Tag, Timestamp,
};
use opentrail_trails::{
    RequestContext, TopicDirectory, TrailError, TrailService, MAX_TRAILS_PER_REGION,
};
use opentrail_wire::AwsError;
use std::path::Path;
use std::sync::Arc;

const ACCOUNT: &str = "111122223333";
const HOME: &str = "us-east-1";
const BUCKET: &str = "trail-logs";

struct NoTopics;

impl TopicDirectory for NoTopics {
    fn topic_exists(&self, _: &str) -> bool {
        false
    }
}

/// One node: its own metadata store instance on the shared file.
async fn node(dir: &Path) -> (Arc<TrailService>, Arc<dyn MetaStore>) {
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.join("meta.sqlite")).unwrap());
    let store = LocalStore::new(dir.join("buckets"));
    let _ = store.create_bucket(BUCKET).await; // the second node finds it made
    let clock = TestClock::new(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap());
    let service = TrailService::new(
        Arc::clone(&meta),
        Arc::new(store),
        Arc::new(NoTopics),
        Arc::new(clock),
        Arc::new(|| 0),
        50,
    );
    (Arc::new(service), meta)
}

fn ctx() -> RequestContext {
    RequestContext {
        account: AccountId::parse(ACCOUNT).unwrap(),
        region: Region::parse(HOME).unwrap(),
        principal: opentrail_model::Principal {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            kind: opentrail_model::PrincipalKind::Root,
        },
    }
}

fn create(name: &str) -> CreateTrailRequest {
    CreateTrailRequest {
        name: name.into(),
        s3_bucket_name: BUCKET.into(),
        ..Default::default()
    }
}

/// Creates `names[i]` on node `i % 2`, all at once; returns each result's error code.
async fn race_creates(nodes: &[Arc<TrailService>; 2], names: Vec<String>) -> Vec<Option<String>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(names.len()));
    let tasks: Vec<_> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let (service, barrier) = (Arc::clone(&nodes[i % 2]), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                service
                    .create_trail(&ctx(), create(&name))
                    .await
                    .err()
                    .map(|e: TrailError| e.code().to_owned())
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
async fn two_nodes_racing_for_one_trail_name_create_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = [node(dir.path()).await.0, node(dir.path()).await.0];
    for round in 0..4 {
        let name = format!("contested-{round}");
        let results = race_creates(&nodes, vec![name; 6]).await;
        let won = results.iter().filter(|r| r.is_none()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .flatten()
            .all(|code| code == "TrailAlreadyExistsException"));
    }
    assert_eq!(nodes[1].all_trails().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_for_the_last_trail_of_a_region_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = [node(dir.path()).await.0, node(dir.path()).await.0];
    for i in 0..MAX_TRAILS_PER_REGION - 1 {
        nodes[0]
            .create_trail(&ctx(), create(&format!("existing-{i}")))
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
        .all(|code| code == "MaximumNumberOfTrailsExceededException"));
    assert_eq!(nodes[0].all_trails().unwrap().len(), MAX_TRAILS_PER_REGION);
}

async fn status(service: &TrailService, name: &str) -> GetTrailStatusResponse {
    service
        .get_trail_status(&ctx(), GetTrailStatusRequest { name: name.into() })
        .await
        .unwrap()
}

fn trail_arn(name: &str) -> TrailArn {
    TrailArn::parse(&format!("arn:aws:cloudtrail:{HOME}:{ACCOUNT}:trail/{name}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_status_update_of_a_deleted_trail_misses_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let (trails, _) = node(dir.path()).await;
    let delivered = Utc.with_ymd_and_hms(2024, 3, 1, 12, 5, 0).unwrap();
    trails.create_trail(&ctx(), create("twice")).await.unwrap();
    trails
        .start_logging(
            &ctx(),
            StartLoggingRequest {
                name: "twice".into(),
            },
        )
        .await
        .unwrap();
    let old = trails.all_trails().unwrap().remove(0).incarnation;
    assert!(trails
        .update_status(&trail_arn("twice"), &old, |s| {
            s.latest_delivery_time = Some(delivered)
        })
        .await
        .unwrap());
    assert_eq!(
        status(&trails, "twice").await.latest_delivery_time,
        Some(Timestamp(delivered))
    );

    trails
        .delete_trail(
            &ctx(),
            DeleteTrailRequest {
                name: "twice".into(),
            },
        )
        .await
        .unwrap();
    trails.create_trail(&ctx(), create("twice")).await.unwrap();
    let new = trails.all_trails().unwrap().remove(0).incarnation;
    assert_ne!(new, old);
    // The old trail's outcome, reported late, finds no trail of its incarnation.
    assert!(!trails
        .update_status(&trail_arn("twice"), &old, |s| {
            s.latest_delivery_time = Some(delivered)
        })
        .await
        .unwrap());
    let fresh = status(&trails, "twice").await;
    assert_eq!(fresh.is_logging, Some(false));
    assert_eq!(fresh.latest_delivery_time, None);
    assert_eq!(fresh.start_logging_time, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_stored_inside_an_older_trail_document_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (trails, meta) = node(dir.path()).await;
    trails.create_trail(&ctx(), create("old")).await.unwrap();
    // Rewrite the document as the previous version stored it: no incarnation, the
    // status inside.
    let key = format!("{ACCOUNT}/{HOME}/old");
    let mut doc: serde_json::Value =
        serde_json::from_str(&meta.get_document("trails", &key).unwrap().unwrap()).unwrap();
    let incarnation = doc["incarnation"].as_str().unwrap().to_owned();
    meta.delete_document("trail_status", &incarnation).unwrap();
    let object = doc.as_object_mut().unwrap();
    object.remove("incarnation");
    let delivered = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
    object.insert(
        "status".into(),
        serde_json::json!({
            "is_logging": true, "logging_since_offset": 7,
            "start_logging_time": "2024-01-01T00:00:00Z", "stop_logging_time": null,
            "latest_delivery_time": delivered, "latest_delivery_attempt_time": delivered,
            "latest_delivery_attempt_succeeded": delivered, "latest_delivery_error": null,
            "latest_digest_delivery_time": null, "latest_digest_delivery_error": null,
            "latest_notification_time": null, "latest_notification_attempt_time": null,
            "latest_notification_attempt_succeeded": null, "latest_notification_error": null
        }),
    );
    meta.put_document("trails", &key, &doc.to_string()).unwrap();

    let before = status(&trails, "old").await;
    assert_eq!(before.is_logging, Some(true));
    assert_eq!(before.latest_delivery_time, Some(Timestamp(delivered)));
    let listed = trails.all_trails().unwrap().remove(0);
    assert_eq!(listed.incarnation, "");
    assert_eq!(listed.status.logging_since_offset, Some(7));

    // Changing the trail moves its status into its own record, unchanged.
    trails
        .add_tags(
            &ctx(),
            AddTagsRequest {
                resource_id: trail_arn("old").to_string(),
                tags_list: vec![Tag {
                    key: "k".into(),
                    value: None,
                }],
            },
        )
        .await
        .unwrap();
    let migrated = trails.all_trails().unwrap().remove(0);
    assert!(!migrated.incarnation.is_empty());
    assert_eq!(migrated.status, listed.status);
    assert_eq!(status(&trails, "old").await, before);
    let stored = meta.get_document("trails", &key).unwrap().unwrap();
    assert!(!stored.contains("\"status\""), "{stored}");
}
