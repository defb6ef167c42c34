//! EnableFederation / DisableFederation: ENABLING until the lake writer publishes the table
//! (ENABLED), DISABLING until it removes it (DISABLED); the state is the store's, so it
//! survives a restart; a federated store cannot be deleted.

use chrono::{TimeZone, Utc};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Region, RequestContext, TestClock};
use opentrail_operations::{
    CreateEventDataStoreRequest, DeleteEventDataStoreRequest, DisableFederationRequest,
    EnableFederationRequest, FederationStatus, GetEventDataStoreRequest,
};
use opentrail_stores::{StoreError, StoreService};
use opentrail_wire::AwsError;
use std::sync::Arc;

const ROLE: &str = "arn:aws:iam::111122223333:role/federation";

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

fn service(dir: &std::path::Path) -> StoreService {
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.join("meta.sqlite")).unwrap());
    let clock = TestClock::new(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap());
    StoreService::new(meta, Arc::new(clock))
}

fn enable(store: &str, role: &str) -> EnableFederationRequest {
    EnableFederationRequest {
        event_data_store: store.into(),
        federation_role_arn: role.into(),
    }
}

fn disable(store: &str) -> DisableFederationRequest {
    DisableFederationRequest {
        event_data_store: store.into(),
    }
}

fn code(e: StoreError) -> &'static str {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_moves_through_its_statuses_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let stores = service(dir.path());
    let ctx = ctx();
    let arn = stores
        .create_event_data_store(
            &ctx,
            CreateEventDataStoreRequest {
                name: "federated".into(),
                termination_protection_enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .event_data_store_arn
        .unwrap();
    let id = arn.rsplit('/').next().unwrap().to_string();
    assert_eq!(federation(&stores, &arn).await, (None, None));

    // Malformed role, unknown store.
    let bad = stores.enable_federation(&ctx, enable(&id, "role")).await;
    assert_eq!(code(bad.unwrap_err()), "InvalidParameterException");
    let missing = stores
        .enable_federation(&ctx, enable("a1b2c3d4-0000-0000-0000-000000000000", ROLE))
        .await;
    assert_eq!(
        code(missing.unwrap_err()),
        "EventDataStoreNotFoundException"
    );
    let invalid = stores
        .enable_federation(&ctx, enable("not/an/id", ROLE))
        .await;
    assert_eq!(
        code(invalid.unwrap_err()),
        "EventDataStoreARNInvalidException"
    );

    let enabled = stores
        .enable_federation(&ctx, enable(&id, ROLE))
        .await
        .unwrap();
    assert_eq!(enabled.event_data_store_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(enabled.federation_status, Some(FederationStatus::Enabling));
    assert_eq!(enabled.federation_role_arn.as_deref(), Some(ROLE));
    // While enabling: the lake writer sees it; another change is refused.
    assert_eq!(stores.federated_stores().unwrap().len(), 1);
    let again = stores.enable_federation(&ctx, enable(&id, ROLE)).await;
    assert_eq!(code(again.unwrap_err()), "ConcurrentModificationException");
    let early = stores.disable_federation(&ctx, disable(&arn)).await;
    assert_eq!(code(early.unwrap_err()), "ConcurrentModificationException");
    let delete = DeleteEventDataStoreRequest {
        event_data_store: arn.clone(),
    };
    let refused = stores.delete_event_data_store(&ctx, delete.clone()).await;
    assert_eq!(
        code(refused.unwrap_err()),
        "EventDataStoreFederationEnabledException"
    );

    // The writer published the table.
    stores.settle_federation(&id, true).unwrap();
    assert_eq!(
        federation(&stores, &arn).await,
        (Some(FederationStatus::Enabled), Some(ROLE.to_string()))
    );
    let twice = stores.enable_federation(&ctx, enable(&id, ROLE)).await;
    assert_eq!(
        code(twice.unwrap_err()),
        "EventDataStoreFederationEnabledException"
    );
    let refused = stores.delete_event_data_store(&ctx, delete.clone()).await;
    assert_eq!(
        code(refused.unwrap_err()),
        "EventDataStoreFederationEnabledException"
    );

    // A restart keeps it.
    drop(stores);
    let stores = service(dir.path());
    assert_eq!(
        federation(&stores, &arn).await,
        (Some(FederationStatus::Enabled), Some(ROLE.to_string()))
    );

    let disabling = stores
        .disable_federation(&ctx, disable(&arn))
        .await
        .unwrap();
    assert_eq!(
        disabling.federation_status,
        Some(FederationStatus::Disabling)
    );
    // Settling the other way round changes nothing.
    stores.settle_federation(&id, true).unwrap();
    assert_eq!(
        federation(&stores, &arn).await.0,
        Some(FederationStatus::Disabling)
    );
    stores.settle_federation(&id, false).unwrap();
    assert_eq!(
        federation(&stores, &arn).await,
        (Some(FederationStatus::Disabled), None)
    );
    assert!(stores.federated_stores().unwrap().is_empty());
    let idle = stores.disable_federation(&ctx, disable(&id)).await.unwrap();
    assert_eq!(idle.federation_status, Some(FederationStatus::Disabled));

    // Now it can be deleted; a store pending deletion cannot be federated.
    stores.delete_event_data_store(&ctx, delete).await.unwrap();
    let inactive = stores.enable_federation(&ctx, enable(&id, ROLE)).await;
    assert_eq!(
        code(inactive.unwrap_err()),
        "InactiveEventDataStoreException"
    );
    let inactive = stores.disable_federation(&ctx, disable(&id)).await;
    assert_eq!(
        code(inactive.unwrap_err()),
        "InactiveEventDataStoreException"
    );
}

async fn federation(
    stores: &StoreService,
    arn: &str,
) -> (Option<FederationStatus>, Option<String>) {
    let got = stores
        .get_event_data_store(
            &ctx(),
            GetEventDataStoreRequest {
                event_data_store: arn.into(),
            },
        )
        .await
        .unwrap();
    (got.federation_status, got.federation_role_arn)
}
