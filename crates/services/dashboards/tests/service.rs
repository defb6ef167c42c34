//! The dashboard operations over a scripted query engine: create, get, list, update,
//! delete, tags, the managed dashboards, manual refreshes (widget queries found by alias
//! and refresh id) and scheduled refreshes driven by a test clock, across a restart.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use opentrail_dashboards::{DashboardError, DashboardService};
use opentrail_lake::{LakeError, QueryEngine, QueryOutput, QueryStatistics};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Clock, Region, RequestContext, TestClock};
use opentrail_operations::{
    AddTagsRequest, CreateDashboardRequest, CreateEventDataStoreRequest, DashboardType,
    DeleteDashboardRequest, DeleteResourcePolicyRequest, DescribeQueryRequest, GetDashboardRequest,
    GetResourcePolicyRequest, ListDashboardsRequest, ListTagsRequest, PutResourcePolicyRequest,
    RefreshSchedule, RefreshScheduleFrequency, RefreshScheduleFrequencyUnit, RefreshScheduleStatus,
    RequestWidget, StartDashboardRefreshRequest, Tag, UpdateDashboardRequest,
};
use opentrail_queries::{QueryOptions, QueryService};
use opentrail_stores::StoreService;
use opentrail_wire::AwsError;
use std::sync::Arc;

/// Plans anything naming the caller's stores except statements starting with `bad ` (store
/// ids are random UUIDs, which may hold `bad` anywhere); runs every query to an empty result.
struct ScriptedEngine;

#[async_trait]
impl QueryEngine for ScriptedEngine {
    async fn validate(&self, sql: &str, stores: &[String]) -> opentrail_lake::Result<()> {
        if sql.starts_with("bad ") {
            return Err(LakeError::InvalidQuery(format!("cannot parse: {sql}")));
        }
        for store in opentrail_lake::referenced_stores(sql) {
            if !stores.contains(&store) {
                return Err(LakeError::StoreNotFound(store));
            }
        }
        Ok(())
    }

    async fn run(&self, _sql: &str, _stores: &[String]) -> opentrail_lake::Result<QueryOutput> {
        Ok(QueryOutput {
            columns: vec!["eventName".into()],
            rows: Vec::new(),
            statistics: QueryStatistics::default(),
        })
    }
}

struct Harness {
    dir: tempfile::TempDir,
    meta: Arc<dyn MetaStore>,
    clock: TestClock,
    stores: Arc<StoreService>,
    queries: Arc<QueryService>,
    dashboards: DashboardService,
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

fn code<T: std::fmt::Debug>(result: Result<T, DashboardError>) -> &'static str {
    result.expect_err("expected an error").code()
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetaStore> =
            Arc::new(SqliteMetaStore::open(&dir.path().join("meta.db")).unwrap());
        let clock = TestClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        let stores = Arc::new(
            StoreService::new(meta.clone(), Arc::new(clock.clone()))
                .with_dashboards(Arc::new(opentrail_dashboards::Directory)),
        );
        let (queries, dashboards) = Self::services(&dir, &meta, &clock, &stores);
        Harness {
            dir,
            meta,
            clock,
            stores,
            queries,
            dashboards,
        }
    }

    fn services(
        dir: &tempfile::TempDir,
        meta: &Arc<dyn MetaStore>,
        clock: &TestClock,
        stores: &Arc<StoreService>,
    ) -> (Arc<QueryService>, DashboardService) {
        let clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let queries = Arc::new(
            QueryService::new(
                meta.clone(),
                clock.clone(),
                Arc::clone(stores),
                Arc::new(ScriptedEngine),
                dir.path().join("queries"),
                QueryOptions::default(),
            )
            .unwrap(),
        );
        let dashboards = DashboardService::new(meta.clone(), clock, Arc::clone(&queries));
        (queries, dashboards)
    }

    /// The same metadata store and data dir, new services (a server restart).
    fn restart(&mut self) {
        let (queries, dashboards) =
            Self::services(&self.dir, &self.meta, &self.clock, &self.stores);
        self.queries = queries;
        self.dashboards = dashboards;
    }

    async fn store(&self) -> String {
        let created = self
            .stores
            .create_event_data_store(
                &ctx(),
                CreateEventDataStoreRequest {
                    name: "lake".into(),
                    termination_protection_enabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        created
            .event_data_store_arn
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    }

    async fn get(&self, id: &str) -> opentrail_operations::GetDashboardResponse {
        self.dashboards
            .get_dashboard(
                &ctx(),
                GetDashboardRequest {
                    dashboard_id: id.into(),
                },
            )
            .await
            .unwrap()
    }

    async fn widget_finished(&self, alias: &str, refresh_id: &str) -> bool {
        for _ in 0..900 {
            let described = self
                .queries
                .describe_query(
                    &ctx(),
                    DescribeQueryRequest {
                        query_alias: Some(alias.into()),
                        refresh_id: Some(refresh_id.into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            match described.query_status.unwrap().as_str() {
                "FINISHED" => return true,
                "QUEUED" | "RUNNING" => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                _ => return false,
            }
        }
        false
    }
}

fn widget(store: &str) -> RequestWidget {
    RequestWidget {
        query_statement: format!("SELECT eventName FROM {store} WHERE eventTime >= '?'"),
        query_parameters: Some(vec!["$StartTime$".into()]),
        view_properties: [("View".to_string(), "Table".to_string())].into(),
    }
}

fn hourly() -> RefreshSchedule {
    RefreshSchedule {
        frequency: Some(RefreshScheduleFrequency {
            unit: Some(RefreshScheduleFrequencyUnit::Hours),
            value: Some(1),
        }),
        status: Some(RefreshScheduleStatus::Enabled),
        time_of_day: Some("00:30".into()),
    }
}

fn create(name: &str, widgets: Vec<RequestWidget>) -> CreateDashboardRequest {
    CreateDashboardRequest {
        name: name.into(),
        widgets: Some(widgets),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_names_limits_and_tags() {
    let h = Harness::new();
    let store = h.store().await;
    let created = h
        .dashboards
        .create_dashboard(&ctx(), create("main", vec![widget(&store)]))
        .await
        .unwrap();
    let arn = created.dashboard_arn.unwrap();
    assert_eq!(
        arn,
        "arn:aws:cloudtrail:us-east-1:111122223333:dashboard/main"
    );
    assert_eq!(
        code(
            h.dashboards
                .create_dashboard(&ctx(), create("main", vec![]))
                .await
        ),
        "ConflictException"
    );
    let mut bad = widget(&store);
    bad.query_statement = "bad SELECT FROM x".into();
    bad.query_parameters = None;
    assert_eq!(
        code(
            h.dashboards
                .create_dashboard(&ctx(), create("other", vec![bad]))
                .await
        ),
        "InvalidQueryStatementException"
    );

    let listed = h
        .dashboards
        .list_dashboards(&ctx(), ListDashboardsRequest::default())
        .await
        .unwrap()
        .dashboards
        .unwrap();
    assert_eq!(listed.len(), 6);
    assert_eq!(
        listed
            .iter()
            .filter(|d| d.r#type == Some(DashboardType::Managed))
            .count(),
        5
    );

    // 100 custom dashboards per region; managed ones do not count.
    for i in 1..100 {
        h.dashboards
            .create_dashboard(&ctx(), create(&format!("extra-{i:03}"), vec![]))
            .await
            .unwrap();
    }
    assert_eq!(
        code(
            h.dashboards
                .create_dashboard(&ctx(), create("one-too-many", vec![]))
                .await
        ),
        "ServiceQuotaExceededException"
    );

    h.dashboards
        .add_tags(
            &ctx(),
            AddTagsRequest {
                resource_id: arn.clone(),
                tags_list: vec![Tag {
                    key: "k".into(),
                    value: Some("v".into()),
                }],
            },
        )
        .await
        .unwrap();
    let tags = h
        .dashboards
        .list_tags(
            &ctx(),
            ListTagsRequest {
                resource_id_list: vec![arn.clone()],
                next_token: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        tags.resource_tag_list.unwrap()[0]
            .tags_list
            .as_ref()
            .unwrap()
            .len(),
        1
    );

    h.dashboards
        .update_dashboard(
            &ctx(),
            UpdateDashboardRequest {
                dashboard_id: arn.clone(),
                termination_protection_enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let delete = || DeleteDashboardRequest {
        dashboard_id: "main".into(),
    };
    assert_eq!(
        code(h.dashboards.delete_dashboard(&ctx(), delete()).await),
        "ConflictException"
    );
    h.dashboards
        .update_dashboard(
            &ctx(),
            UpdateDashboardRequest {
                dashboard_id: "main".into(),
                termination_protection_enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.dashboards
        .delete_dashboard(&ctx(), delete())
        .await
        .unwrap();
    assert_eq!(
        code(h.dashboards.delete_dashboard(&ctx(), delete()).await),
        "ResourceNotFoundException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_and_scheduled_refreshes_run_the_widgets() {
    let mut h = Harness::new();
    let store = h.store().await;
    let mut request = create("scheduled", vec![widget(&store), widget(&store)]);
    request.refresh_schedule = Some(hourly());
    h.dashboards
        .create_dashboard(&ctx(), request)
        .await
        .unwrap();

    let refresh_id = h
        .dashboards
        .start_dashboard_refresh(
            &ctx(),
            StartDashboardRefreshRequest {
                dashboard_id: "scheduled".into(),
                query_parameter_values: None,
            },
        )
        .await
        .unwrap()
        .refresh_id
        .unwrap();
    assert!(h.widget_finished("widget-1", &refresh_id).await);
    assert!(h.widget_finished("widget-2", &refresh_id).await);
    assert_eq!(
        h.get("scheduled").await.last_refresh_id.as_deref(),
        Some(refresh_id.as_str())
    );

    // Nothing is due before 12:30; a restart keeps the schedule's next run.
    assert_eq!(h.dashboards.refresh_due().await.unwrap(), 0);
    h.restart();
    h.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 1, 12, 31, 0).unwrap());
    assert_eq!(h.dashboards.refresh_due().await.unwrap(), 1);
    let scheduled = h.get("scheduled").await.last_refresh_id.unwrap();
    assert!(scheduled.parse::<u64>().unwrap() > refresh_id.parse::<u64>().unwrap());
    assert!(h.widget_finished("widget-1", &scheduled).await);
    // The run is claimed: the next is at 13:30.
    assert_eq!(h.dashboards.refresh_due().await.unwrap(), 0);
    h.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 1, 13, 30, 0).unwrap());
    assert_eq!(h.dashboards.refresh_due().await.unwrap(), 1);

    // A disabled schedule is never due.
    h.dashboards
        .update_dashboard(
            &ctx(),
            UpdateDashboardRequest {
                dashboard_id: "scheduled".into(),
                refresh_schedule: Some(RefreshSchedule {
                    status: Some(RefreshScheduleStatus::Disabled),
                    ..hourly()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap());
    assert_eq!(h.dashboards.refresh_due().await.unwrap(), 0);

    // A managed dashboard refreshes over the store its $EventDataStoreId$ names.
    let managed = h
        .dashboards
        .start_dashboard_refresh(
            &ctx(),
            StartDashboardRefreshRequest {
                dashboard_id: "AWSCloudTrail-ErrorAnalysis".into(),
                query_parameter_values: Some(
                    [("$EventDataStoreId$".to_string(), store.clone())].into(),
                ),
            },
        )
        .await
        .unwrap()
        .refresh_id
        .unwrap();
    assert!(h.widget_finished("widget-3", &managed).await);
    // Over an unknown store, the refresh fails and says why.
    let failed = h
        .dashboards
        .start_dashboard_refresh(
            &ctx(),
            StartDashboardRefreshRequest {
                dashboard_id: "AWSCloudTrail-ErrorAnalysis".into(),
                query_parameter_values: Some(
                    [(
                        "$EventDataStoreId$".to_string(),
                        "0000aaaa-1111-2222-3333-444455556666".to_string(),
                    )]
                    .into(),
                ),
            },
        )
        .await;
    assert_eq!(code(failed), "EventDataStoreNotFoundException");
    let reason = h
        .get("AWSCloudTrail-ErrorAnalysis")
        .await
        .last_refresh_failure_reason
        .unwrap();
    assert!(
        reason.contains("0000aaaa-1111-2222-3333-444455556666"),
        "{reason}"
    );
}

fn refresh_policy(arn: &str, action: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": action,
            "Condition": {"StringEquals": {"AWS:SourceArn": arn, "AWS:SourceAccount": "111122223333"}}
        }]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_policies_on_dashboards_live_and_die_with_them() {
    let h = Harness::new();
    let store = h.store().await;
    let arn = h
        .dashboards
        .create_dashboard(&ctx(), create("main", vec![widget(&store)]))
        .await
        .unwrap()
        .dashboard_arn
        .unwrap();
    let context = ctx();
    let get = |arn: &str| {
        h.stores.get_resource_policy(
            &context,
            GetResourcePolicyRequest {
                resource_arn: arn.into(),
            },
        )
    };
    let put = |arn: &str, policy: String| {
        h.stores.put_resource_policy(
            &context,
            PutResourcePolicyRequest {
                resource_arn: arn.into(),
                resource_policy: policy,
            },
        )
    };
    let store_code = |e: opentrail_stores::StoreError| e.code();
    assert_eq!(
        store_code(get(&arn).await.unwrap_err()),
        "ResourcePolicyNotFoundException"
    );
    let policy = refresh_policy(&arn, "cloudtrail:StartDashboardRefresh");
    let put_answer = put(&arn, policy.clone()).await.unwrap();
    assert_eq!(put_answer.resource_arn.as_deref(), Some(arn.as_str()));
    let got = get(&arn).await.unwrap();
    assert_eq!(got.resource_policy.as_deref(), Some(policy.as_str()));
    // A dashboard's policy grants refreshes, not queries.
    assert_eq!(
        store_code(
            put(&arn, refresh_policy(&arn, "cloudtrail:StartQuery"))
                .await
                .unwrap_err()
        ),
        "ResourcePolicyNotValidException"
    );
    // Managed dashboards exist for every account; unknown ones do not.
    let managed = "arn:aws:cloudtrail:us-east-1:111122223333:dashboard/AWSCloudTrail-Overview";
    assert_eq!(
        store_code(get(managed).await.unwrap_err()),
        "ResourcePolicyNotFoundException"
    );
    for unknown in [
        "arn:aws:cloudtrail:us-east-1:111122223333:dashboard/nope",
        "arn:aws:cloudtrail:us-east-1:444455556666:dashboard/main",
        "arn:aws:cloudtrail:eu-west-1:111122223333:dashboard/main",
    ] {
        assert_eq!(
            store_code(get(unknown).await.unwrap_err()),
            "ResourceNotFoundException",
            "{unknown}"
        );
    }

    // Deleting the dashboard deletes its policy: one made again under the name has none.
    h.dashboards
        .delete_dashboard(
            &ctx(),
            DeleteDashboardRequest {
                dashboard_id: arn.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store_code(get(&arn).await.unwrap_err()),
        "ResourceNotFoundException"
    );
    h.dashboards
        .create_dashboard(&ctx(), create("main", vec![widget(&store)]))
        .await
        .unwrap();
    assert_eq!(
        store_code(get(&arn).await.unwrap_err()),
        "ResourcePolicyNotFoundException"
    );
    put(&arn, policy).await.unwrap();
    h.stores
        .delete_resource_policy(
            &ctx(),
            DeleteResourcePolicyRequest {
                resource_arn: arn.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store_code(get(&arn).await.unwrap_err()),
        "ResourcePolicyNotFoundException"
    );
}
