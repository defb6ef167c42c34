//! aws-sdk-cloudtrail against the real binary for CloudTrail Insights: with a test clock,
//! a burst of SendCommand calls starts and ends an insight; the typed SDK reads our
//! ListInsightsMetricData and ListInsightsData answers and their modelled errors.

mod common;

use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::{
    InsightSelector, InsightType, InsightsMetricDataType, ListInsightsDataDimensionKey,
    ListInsightsDataType,
};
use chrono::{Duration, Utc};
use common::{expect_error, run_cli, trail_arn, TestServer, ACCOUNT_ID, BUCKET};
use std::path::Path;

const REGION: &str = "us-east-1";
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);

fn iso(time: chrono::DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn sdk_time(time: chrono::DateTime<Utc>) -> DateTime {
    DateTime::from_secs(time.timestamp())
}

/// 40 SendCommand calls in each of the two minutes from `t0` (a new key fires at 30).
fn write_burst(path: &Path, t0: chrono::DateTime<Utc>) {
    let records: Vec<serde_json::Value> = (0..80)
        .map(|i| {
            serde_json::json!({
                "eventVersion": "1.08",
                "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT_ID,
                                 "arn": format!("arn:aws:iam::{ACCOUNT_ID}:user/burst")},
                "eventTime": iso(t0 + Duration::milliseconds(i * 1500)),
                "eventSource": "ssm.amazonaws.com",
                "eventName": "SendCommand",
                "awsRegion": REGION,
                "sourceIPAddress": "10.0.0.1",
                "userAgent": "burst-agent",
                "eventID": format!("00000000-0000-4000-8000-{i:012}"),
                "eventType": "AwsApiCall",
                "readOnly": false,
                "managementEvent": true,
                "eventCategory": "Management",
                "recipientAccountId": ACCOUNT_ID,
            })
        })
        .collect();
    let body = serde_json::json!({ "Records": records }).to_string();
    std::fs::write(path, body).expect("write the burst file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_metric_data_and_insights_data_through_the_sdk() {
    let clock_dir = tempfile::tempdir().expect("temp dir");
    let clock = clock_dir.path().join("clock");
    let t0 = Utc::now() - Duration::seconds(i64::from(Utc::now().timestamp() as u32 % 60));
    std::fs::write(&clock, iso(t0)).expect("write the clock");
    let server = TestServer::builder()
        .arg("--insights-test-clock-file")
        .arg(clock.to_str().expect("utf-8 path"))
        .start();
    let client = server.client(REGION);
    client
        .create_trail()
        .name("watched")
        .s3_bucket_name(BUCKET)
        .send()
        .await
        .expect("CreateTrail");
    client
        .put_insight_selectors()
        .trail_name("watched")
        .insight_selectors(
            InsightSelector::builder()
                .insight_type(InsightType::ApiCallRateInsight)
                .build(),
        )
        .send()
        .await
        .expect("PutInsightSelectors");
    client
        .start_logging()
        .name("watched")
        .send()
        .await
        .expect("StartLogging");
    let deadline = std::time::Instant::now() + DEADLINE;
    while !server.logs().contains("insights enabled") {
        assert!(
            std::time::Instant::now() < deadline,
            "insights did not start: {}",
            server.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let burst = clock_dir.path().join("burst.json");
    write_burst(&burst, t0);
    run_cli(&[
        "import",
        burst.to_str().expect("utf-8 path"),
        "--endpoint",
        &server.endpoint(),
        "--data-dir",
        server.data_dir_str(),
        "--region",
        REGION,
        "--quiet",
    ]);

    // The clock moves a minute at a time: the insight starts, then ends after 5 quiet minutes.
    let source = trail_arn(REGION, "watched");
    let mut events = Vec::new();
    for minute in 1..=12 {
        std::fs::write(
            &clock,
            iso(t0 + Duration::minutes(minute) + Duration::seconds(5)),
        )
        .expect("move the clock");
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    }
    while events.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline + DEADLINE,
            "no Start and End: {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        events = client
            .list_insights_data()
            .insight_source(&source)
            .data_type(ListInsightsDataType::InsightsEvents)
            .dimensions(ListInsightsDataDimensionKey::EventName, "SendCommand")
            .start_time(sdk_time(t0 - Duration::hours(1)))
            .end_time(sdk_time(t0 + Duration::hours(1)))
            .send()
            .await
            .expect("ListInsightsData")
            .events()
            .to_vec();
    }
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.event_name(), Some("SendCommand"));
        assert_eq!(event.event_source(), Some("ssm.amazonaws.com"));
        let record: serde_json::Value =
            serde_json::from_str(event.cloud_trail_event().expect("the record")).expect("JSON");
        assert_eq!(record["eventType"], "AwsCloudTrailInsight");
    }

    let metrics = client
        .list_insights_metric_data()
        .event_source("ssm.amazonaws.com")
        .event_name("SendCommand")
        .insight_type(InsightType::ApiCallRateInsight)
        .period(60)
        .start_time(sdk_time(t0 - Duration::minutes(1)))
        .end_time(sdk_time(t0 + Duration::minutes(3)))
        .data_type(InsightsMetricDataType::FillWithZeros)
        .send()
        .await
        .expect("ListInsightsMetricData");
    assert_eq!(metrics.event_source(), Some("ssm.amazonaws.com"));
    assert_eq!(metrics.event_name(), Some("SendCommand"));
    assert_eq!(
        metrics.insight_type(),
        Some(&InsightType::ApiCallRateInsight)
    );
    assert_eq!(metrics.values(), [0.0, 40.0, 40.0, 0.0]);
    let starts: Vec<i64> = metrics.timestamps().iter().map(DateTime::secs).collect();
    let t0_secs = t0.timestamp();
    assert_eq!(starts, [t0_secs - 60, t0_secs, t0_secs + 60, t0_secs + 120]);

    // The modelled errors: an error-rate series needs its error code; one dimension only.
    let message = expect_error(
        client
            .list_insights_metric_data()
            .event_source("ssm.amazonaws.com")
            .event_name("SendCommand")
            .insight_type(InsightType::ApiErrorRateInsight)
            .send()
            .await,
        "InvalidParameterException",
    );
    assert!(message.contains("ErrorCode"), "{message}");
    expect_error(
        client
            .list_insights_data()
            .insight_source(&source)
            .data_type(ListInsightsDataType::InsightsEvents)
            .dimensions(ListInsightsDataDimensionKey::EventName, "SendCommand")
            .dimensions(
                ListInsightsDataDimensionKey::EventSource,
                "ssm.amazonaws.com",
            )
            .send()
            .await,
        "InvalidParameterException",
    );
}
