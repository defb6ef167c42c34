//! The time-based rules of event data stores with a test clock: a deleted store stays
//! PENDING_DELETION (restorable, counted, its name held) for seven days, then is purged.

use chrono::{Duration, TimeZone, Utc};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Region, RequestContext, TestClock};
use opentrail_operations::{
    CreateEventDataStoreRequest, DeleteEventDataStoreRequest, EventDataStoreStatus,
    GetEventDataStoreRequest, ListEventDataStoresRequest, RestoreEventDataStoreRequest,
};
use opentrail_stores::{StoreError, StoreService};
use opentrail_wire::AwsError;
use std::sync::Arc;

struct Harness {
    _dir: tempfile::TempDir,
    clock: TestClock,
    service: StoreService,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.path().join("meta.sqlite")).unwrap());
    let clock = TestClock::new(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap());
    let service = StoreService::new(meta, Arc::new(clock.clone()));
    Harness {
        _dir: dir,
        clock,
        service,
    }
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

fn code<T: std::fmt::Debug>(result: Result<T, StoreError>) -> &'static str {
    result.expect_err("expected an error").code()
}

impl Harness {
    async fn create(&self, name: &str) -> String {
        let request = CreateEventDataStoreRequest {
            name: name.into(),
            termination_protection_enabled: Some(false),
            ..Default::default()
        };
        let created = self
            .service
            .create_event_data_store(&ctx(), request)
            .await
            .unwrap();
        created.event_data_store_arn.unwrap()
    }

    async fn delete(&self, arn: &str) {
        let request = DeleteEventDataStoreRequest {
            event_data_store: arn.into(),
        };
        self.service
            .delete_event_data_store(&ctx(), request)
            .await
            .unwrap();
    }

    async fn status(&self, arn: &str) -> Result<EventDataStoreStatus, StoreError> {
        let request = GetEventDataStoreRequest {
            event_data_store: arn.into(),
        };
        let got = self.service.get_event_data_store(&ctx(), request).await?;
        Ok(got.status.unwrap())
    }

    async fn count(&self) -> usize {
        self.service
            .list_event_data_stores(&ctx(), ListEventDataStoresRequest::default())
            .await
            .unwrap()
            .event_data_stores
            .unwrap()
            .len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_store_is_restorable_for_seven_days_then_purged() {
    let h = harness();
    let arn = h.create("lake").await;
    h.delete(&arn).await;
    h.clock.advance(Duration::days(7) - Duration::seconds(1));
    assert_eq!(
        h.status(&arn).await.unwrap(),
        EventDataStoreStatus::PendingDeletion
    );
    let restore = || RestoreEventDataStoreRequest {
        event_data_store: arn.clone(),
    };
    let restored = h
        .service
        .restore_event_data_store(&ctx(), restore())
        .await
        .unwrap();
    assert_eq!(restored.status, Some(EventDataStoreStatus::Enabled));

    // Deleted again; one second past the seven days it is gone, and its name is free.
    h.delete(&arn).await;
    assert_eq!(h.count().await, 1);
    h.clock.advance(Duration::days(7) + Duration::seconds(1));
    assert_eq!(
        code(h.status(&arn).await),
        "EventDataStoreNotFoundException"
    );
    assert_eq!(h.count().await, 0);
    assert_eq!(
        code(h.service.restore_event_data_store(&ctx(), restore()).await),
        "EventDataStoreNotFoundException"
    );
    let again = h.create("lake").await;
    assert_ne!(again, arn);
    assert_eq!(h.service.all_stores().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_pending_deletion_count_towards_the_limit_until_purged() {
    let h = harness();
    let mut arns = Vec::new();
    for i in 0..10 {
        arns.push(h.create(&format!("store-{i}")).await);
    }
    h.delete(&arns[0]).await;
    let request = CreateEventDataStoreRequest {
        name: "eleventh".into(),
        ..Default::default()
    };
    assert_eq!(
        code(
            h.service
                .create_event_data_store(&ctx(), request.clone())
                .await
        ),
        "EventDataStoreMaxLimitExceededException"
    );
    h.clock.advance(Duration::days(8));
    h.service
        .create_event_data_store(&ctx(), request)
        .await
        .unwrap();
    assert_eq!(h.count().await, 10);
}
