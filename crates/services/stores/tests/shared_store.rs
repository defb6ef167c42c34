//! Several `StoreService`s on one SQLite file (as two nodes sharing a database): the name
//! rules and the ten-stores and 25-channels per region limits hold under races; a
//! channel's ingestion status is shared through the file.

use chrono::{TimeZone, Utc};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Region, RequestContext, TestClock};
use opentrail_operations::{
    CreateChannelRequest, CreateEventDataStoreRequest, Destination, DestinationType,
    GetChannelRequest, ListChannelsRequest,
};
use opentrail_stores::{
    IngestError, IngestTarget, IngestionAttempt, StoreError, StoreService, MAX_CHANNELS_PER_REGION,
    MAX_EVENT_DATA_STORES_PER_REGION,
};
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

/// An event data store of ActivityAuditLog events, the destination channels need.
async fn audit_store(service: &StoreService) -> String {
    let request = CreateEventDataStoreRequest {
        name: "audit-lake".into(),
        advanced_event_selectors: Some(vec![opentrail_operations::AdvancedEventSelector {
            name: Some("channel events".into()),
            field_selectors: vec![opentrail_operations::AdvancedFieldSelector {
                field: "eventCategory".into(),
                equals: Some(vec!["ActivityAuditLog".into()]),
                ..Default::default()
            }],
        }]),
        ..Default::default()
    };
    service
        .create_event_data_store(&ctx(), request)
        .await
        .unwrap()
        .event_data_store_arn
        .unwrap()
}

fn create_channel(name: &str, store: &str) -> CreateChannelRequest {
    CreateChannelRequest {
        name: name.into(),
        source: "Custom".into(),
        destinations: vec![Destination {
            location: store.into(),
            r#type: DestinationType::EventDataStore,
        }],
        tags: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_for_the_last_channel_of_a_region_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = [node(dir.path()), node(dir.path())];
    let store = audit_store(&nodes[0]).await;
    for i in 0..MAX_CHANNELS_PER_REGION - 1 {
        nodes[i % 2]
            .create_channel(&ctx(), create_channel(&format!("existing-{i}"), &store))
            .await
            .unwrap();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(6));
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (service, barrier, store) = (
                Arc::clone(&nodes[i % 2]),
                Arc::clone(&barrier),
                store.clone(),
            );
            // Half of them race for one name as well.
            let name = if i < 3 {
                "contested".to_owned()
            } else {
                format!("new-{i}")
            };
            tokio::spawn(async move {
                barrier.wait().await;
                service
                    .create_channel(&ctx(), create_channel(&name, &store))
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
    assert_eq!(
        results.iter().filter(|r| r.is_none()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .flatten()
        .all(|code| code == "ChannelMaxLimitExceededException"
            || code == "ChannelAlreadyExistsException"));
    let listed = nodes[1]
        .list_channels(&ctx(), ListChannelsRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.channels.unwrap().len(), MAX_CHANNELS_PER_REGION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_audit_events_lookup_and_ingestion_status() {
    let dir = tempfile::tempdir().unwrap();
    let service = node(dir.path());
    let store = audit_store(&service).await;
    let channel = service
        .create_channel(&ctx(), create_channel("app", &store))
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    let (account, region) = (ctx().account, ctx().region);
    let target = service
        .channel_for_ingest(&account, &region, &channel)
        .unwrap();
    assert_eq!(target.channel_arn, channel);
    assert!(target.has_enabled_destination());
    let id = channel.rsplit('/').next().unwrap();
    assert_eq!(
        service
            .channel_for_ingest(&account, &region, id)
            .unwrap()
            .channel_arn,
        channel
    );
    let other = AccountId::parse("444455556666").unwrap();
    let code = |r: Result<IngestTarget, IngestError>| r.unwrap_err().code();
    assert_eq!(
        code(service.channel_for_ingest(&other, &region, &channel)),
        "ChannelInsufficientPermission"
    );
    let eu = Region::parse("eu-west-1").unwrap();
    assert_eq!(
        code(service.channel_for_ingest(&account, &eu, &channel)),
        "ChannelNotFound"
    );
    assert_eq!(
        code(service.channel_for_ingest(&account, &region, "arn:aws:s3:::b")),
        "InvalidChannelARN"
    );

    let time = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    service.record_ingestion(
        &target,
        IngestionAttempt {
            time,
            last_success_event_id: Some("event-1".into()),
            last_attempt_event_id: Some("p-2".into()),
            last_error_code: Some("InvalidChecksum".into()),
        },
    );
    let status = |service: &StoreService| {
        let got = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(service.get_channel(
                &ctx(),
                GetChannelRequest {
                    channel: channel.clone(),
                },
            ))
        });
        got.unwrap().ingestion_status.unwrap()
    };
    let seen = status(&service);
    assert_eq!(
        seen.latest_ingestion_success_event_id.as_deref(),
        Some("event-1")
    );
    assert_eq!(
        seen.latest_ingestion_attempt_event_id.as_deref(),
        Some("p-2")
    );
    assert_eq!(
        seen.latest_ingestion_error_code.as_deref(),
        Some("InvalidChecksum")
    );
    // The first outcome is stored at once: another node (or a restart) sees it.
    assert_eq!(status(&node(dir.path())), seen);
}
