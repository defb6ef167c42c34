//! A store collects the events logged while it ingests: the event log's end is recorded
//! when it is created, when ingestion starts or stops, when it is deleted or restored.

use chrono::{TimeZone, Utc};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Region, RequestContext, TestClock};
use opentrail_operations::{
    CreateEventDataStoreRequest, DeleteEventDataStoreRequest, RestoreEventDataStoreRequest,
    StartEventDataStoreIngestionRequest, StopEventDataStoreIngestionRequest,
};
use opentrail_stores::{StoreRecord, StoreService};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

struct Harness {
    _dir: tempfile::TempDir,
    end: Arc<AtomicU64>,
    service: StoreService,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.path().join("meta.sqlite")).unwrap());
    let clock = TestClock::new(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap());
    let end = Arc::new(AtomicU64::new(0));
    let service = StoreService::new(meta, Arc::new(clock)).with_log_end({
        let end = Arc::clone(&end);
        Arc::new(move || end.load(Ordering::SeqCst))
    });
    Harness {
        _dir: dir,
        end,
        service,
    }
}

impl Harness {
    fn at(&self, end: u64) {
        self.end.store(end, Ordering::SeqCst);
    }

    fn only(&self) -> StoreRecord {
        let stores = self.service.all_stores().unwrap();
        assert_eq!(stores.len(), 1);
        stores.into_iter().next().unwrap()
    }

    fn offsets(&self) -> (u64, Option<u64>) {
        let store = self.only();
        (store.ingest_from_offset, store.ingest_until_offset)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_windows_follow_the_event_log() {
    let h = harness();
    h.at(100);
    let before = h.service.changes();
    let arn = h
        .service
        .create_event_data_store(
            &ctx(),
            CreateEventDataStoreRequest {
                name: "lake".into(),
                termination_protection_enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .event_data_store_arn
        .unwrap();
    assert!(h.service.changes() > before, "a create counts as a change");
    assert_eq!(h.offsets(), (100, None));
    let listed = h.service.stores_of(&ctx().account, &ctx().region).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(h
        .service
        .stores_of(&ctx().account, &Region::parse("eu-west-1").unwrap())
        .unwrap()
        .is_empty());

    h.at(150);
    h.service
        .stop_event_data_store_ingestion(
            &ctx(),
            StopEventDataStoreIngestionRequest {
                event_data_store: arn.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(h.offsets(), (100, Some(150)));

    h.at(200);
    h.service
        .start_event_data_store_ingestion(
            &ctx(),
            StartEventDataStoreIngestionRequest {
                event_data_store: arn.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(h.offsets(), (200, None));

    h.at(250);
    h.service
        .delete_event_data_store(
            &ctx(),
            DeleteEventDataStoreRequest {
                event_data_store: arn.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(h.offsets(), (200, Some(250)));

    h.at(300);
    h.service
        .restore_event_data_store(
            &ctx(),
            RestoreEventDataStoreRequest {
                event_data_store: arn.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(h.offsets(), (300, None));
    assert!(h.only().ingesting());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_created_stopped_collects_nothing() {
    let h = harness();
    h.at(42);
    h.service
        .create_event_data_store(
            &ctx(),
            CreateEventDataStoreRequest {
                name: "quiet".into(),
                start_ingestion: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(h.offsets(), (42, Some(42)));
    assert!(!h.only().ingesting());
}
