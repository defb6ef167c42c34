//! aws-sdk-cloudtrail against the real binary for CloudTrail Lake dashboards: the typed SDK
//! reads our answers to CreateDashboard, GetDashboard, ListDashboards, UpdateDashboard,
//! StartDashboardRefresh and DeleteDashboard, the widget queries a refresh starts
//! (DescribeQuery by QueryAlias and RefreshId) and the typed errors.

mod common;

use aws_sdk_cloudtrail::types::{
    DashboardStatus, DashboardType, QueryStatus, RefreshSchedule, RefreshScheduleFrequency,
    RefreshScheduleFrequencyUnit, RefreshScheduleStatus, RequestWidget,
};
use aws_sdk_cloudtrail::Client;
use common::{create_event_data_store, expect_error, store_id, TestServer, ACCOUNT_ID};
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";

async fn create_store(client: &Client, name: &str) -> String {
    store_id(&create_event_data_store(client, name).await)
}

async fn widget_status(client: &Client, alias: &str, refresh_id: &str) -> QueryStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let described = client
            .describe_query()
            .query_alias(alias)
            .refresh_id(refresh_id)
            .send()
            .await
            .expect("DescribeQuery by alias and refresh id");
        let status = described.query_status().expect("a status").clone();
        if !matches!(status, QueryStatus::Queued | QueryStatus::Running) {
            return status;
        }
        assert!(Instant::now() < deadline, "widget {alias} never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_is_created_refreshed_updated_and_deleted_through_the_sdk() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let store = create_store(&client, "sdk-dashboards").await;
    let widget = RequestWidget::builder()
        .query_statement(format!(
            "SELECT eventName, COUNT(*) AS calls FROM {store} WHERE eventTime >= '?' GROUP BY eventName"
        ))
        .query_parameters("$StartTime$")
        .view_properties("View", "Table")
        .view_properties("Title", "Calls")
        .build()
        .expect("a widget");
    let schedule = RefreshSchedule::builder()
        .frequency(
            RefreshScheduleFrequency::builder()
                .unit(RefreshScheduleFrequencyUnit::Hours)
                .value(12)
                .build(),
        )
        .status(RefreshScheduleStatus::Enabled)
        .time_of_day("04:00")
        .build();
    let created = client
        .create_dashboard()
        .name("sdk-dash")
        .widgets(widget.clone())
        .refresh_schedule(schedule.clone())
        .termination_protection_enabled(true)
        .send()
        .await
        .expect("CreateDashboard");
    let arn = format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:dashboard/sdk-dash");
    assert_eq!(created.dashboard_arn(), Some(arn.as_str()));
    assert_eq!(created.r#type(), Some(&DashboardType::Custom));
    assert_eq!(created.widgets()[0].query_alias(), Some("widget-1"));

    let got = client
        .get_dashboard()
        .dashboard_id(&arn)
        .send()
        .await
        .expect("GetDashboard");
    assert_eq!(got.status(), Some(&DashboardStatus::Created));
    assert_eq!(got.refresh_schedule(), Some(&schedule));
    assert_eq!(got.termination_protection_enabled(), Some(true));
    assert!(got.created_timestamp().is_some() && got.updated_timestamp().is_some());

    let listed = client
        .list_dashboards()
        .r#type(DashboardType::Managed)
        .send()
        .await
        .expect("ListDashboards");
    assert_eq!(listed.dashboards().len(), 5);
    assert!(listed
        .dashboards()
        .iter()
        .all(|d| d.r#type() == Some(&DashboardType::Managed)));

    let refresh = client
        .start_dashboard_refresh()
        .dashboard_id("sdk-dash")
        .query_parameter_values("$StartTime$", "2020-01-01T00:00:00Z")
        .send()
        .await
        .expect("StartDashboardRefresh");
    let refresh_id = refresh.refresh_id().expect("a refresh id").to_owned();
    assert_eq!(
        widget_status(&client, "widget-1", &refresh_id).await,
        QueryStatus::Finished
    );
    let got = client
        .get_dashboard()
        .dashboard_id("sdk-dash")
        .send()
        .await
        .expect("GetDashboard");
    assert_eq!(got.last_refresh_id(), Some(refresh_id.as_str()));

    expect_error(
        client
            .delete_dashboard()
            .dashboard_id("sdk-dash")
            .send()
            .await,
        "ConflictException",
    );
    let updated = client
        .update_dashboard()
        .dashboard_id("sdk-dash")
        .termination_protection_enabled(false)
        .send()
        .await
        .expect("UpdateDashboard");
    assert_eq!(updated.termination_protection_enabled(), Some(false));
    client
        .delete_dashboard()
        .dashboard_id("sdk-dash")
        .send()
        .await
        .expect("DeleteDashboard");
    expect_error(
        client.get_dashboard().dashboard_id("sdk-dash").send().await,
        "ResourceNotFoundException",
    );
    expect_error(
        client
            .create_dashboard()
            .name("AWSCloudTrail-Overview")
            .send()
            .await,
        "ValidationException",
    );
}
