//! Resource-based policies on dashboard ARNs: the stores service asks a `DashboardLookup`
//! (the dashboards crate's, in the server) whether the dashboard exists, stores and returns
//! its policy, refuses actions other than StartDashboardRefresh, and answers
//! ResourceNotFoundException for dashboards that do not exist (or with no lookup at all).

use chrono::{TimeZone, Utc};
use opentrail_meta::{Documents, MetaStore, SqliteMetaStore, Transactions};
use opentrail_model::{AccountId, Region, RequestContext, TestClock};
use opentrail_operations::{
    DeleteResourcePolicyRequest, GetResourcePolicyRequest, PutResourcePolicyRequest,
};
use opentrail_stores::{DashboardLookup, StoreError, StoreService};
use opentrail_wire::AwsError;
use std::sync::Arc;

const DASHBOARD: &str = "arn:aws:cloudtrail:us-east-1:111122223333:dashboard/main";

/// Knows the dashboards listed in the `test_dashboards` collection.
struct Listed;

impl DashboardLookup for Listed {
    fn find_dashboard(
        &self,
        docs: &dyn Documents,
        _ctx: &RequestContext,
        arn: &str,
    ) -> opentrail_meta::Result<Option<String>> {
        Ok(docs
            .get_document("test_dashboards", arn)?
            .map(|_| arn.to_owned()))
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

fn policy(action: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": action,
            "Condition": {"StringEquals": {"AWS:SourceArn": DASHBOARD}}
        }]
    })
    .to_string()
}

fn code<T: std::fmt::Debug>(result: Result<T, StoreError>) -> &'static str {
    result.expect_err("expected an error").code()
}

async fn put(service: &StoreService, arn: &str, action: &str) -> Result<(), StoreError> {
    service
        .put_resource_policy(
            &ctx(),
            PutResourcePolicyRequest {
                resource_arn: arn.into(),
                resource_policy: policy(action),
            },
        )
        .await
        .map(|_| ())
}

async fn get(service: &StoreService, arn: &str) -> Result<String, StoreError> {
    service
        .get_resource_policy(
            &ctx(),
            GetResourcePolicyRequest {
                resource_arn: arn.into(),
            },
        )
        .await
        .map(|answer| answer.resource_policy.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_policies_follow_the_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.path().join("meta.sqlite")).unwrap());
    let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());

    // Without a lookup no dashboard exists.
    let bare = StoreService::new(meta.clone(), Arc::new(clock.clone()));
    assert_eq!(
        code(get(&bare, DASHBOARD).await),
        "ResourceNotFoundException"
    );

    let service =
        StoreService::new(meta.clone(), Arc::new(clock.clone())).with_dashboards(Arc::new(Listed));
    assert_eq!(
        code(get(&service, DASHBOARD).await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(put(&service, DASHBOARD, "cloudtrail:StartDashboardRefresh").await),
        "ResourceNotFoundException"
    );
    tokio::task::block_in_place(|| {
        meta.transaction(|tx| tx.put_document("test_dashboards", DASHBOARD, "{}"))
    })
    .unwrap();

    assert_eq!(
        code(get(&service, DASHBOARD).await),
        "ResourcePolicyNotFoundException"
    );
    put(&service, DASHBOARD, "cloudtrail:StartDashboardRefresh")
        .await
        .unwrap();
    assert_eq!(
        get(&service, DASHBOARD).await.unwrap(),
        policy("cloudtrail:StartDashboardRefresh")
    );
    // A dashboard's policy grants refreshes only.
    for action in ["cloudtrail:StartQuery", "cloudtrail-data:PutAuditEvents"] {
        assert_eq!(
            code(put(&service, DASHBOARD, action).await),
            "ResourcePolicyNotValidException",
            "{action}"
        );
    }
    // Other accounts' and regions' dashboards are not the caller's.
    for other in [
        "arn:aws:cloudtrail:us-east-1:444455556666:dashboard/main",
        "arn:aws:cloudtrail:eu-west-1:111122223333:dashboard/main",
    ] {
        assert_eq!(
            code(get(&service, other).await),
            "ResourceNotFoundException"
        );
    }
    assert_eq!(
        code(
            get(
                &service,
                "arn:aws:cloudtrail:us-east-1:111122223333:dashboard/"
            )
            .await
        ),
        "ResourceARNNotValidException"
    );

    service
        .delete_resource_policy(
            &ctx(),
            DeleteResourcePolicyRequest {
                resource_arn: DASHBOARD.into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        code(get(&service, DASHBOARD).await),
        "ResourcePolicyNotFoundException"
    );

    // The dashboards service removes the policy in the transaction that deletes the dashboard.
    put(&service, DASHBOARD, "cloudtrail:StartDashboardRefresh")
        .await
        .unwrap();
    let removed = tokio::task::block_in_place(|| {
        meta.transaction(|tx| {
            tx.delete_document("test_dashboards", DASHBOARD)?;
            opentrail_stores::remove_resource_policy(tx, DASHBOARD)
        })
    })
    .unwrap();
    assert!(removed);
    tokio::task::block_in_place(|| {
        meta.transaction(|tx| tx.put_document("test_dashboards", DASHBOARD, "{}"))
    })
    .unwrap();
    assert_eq!(
        code(get(&service, DASHBOARD).await),
        "ResourcePolicyNotFoundException"
    );
}
