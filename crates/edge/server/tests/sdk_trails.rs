//! aws-sdk-cloudtrail against the real binary: what only a typed SDK shows.
//!
//! Every request/answer case of the control plane lives in `tests/scenarios/*.json`
//! (run by `tests/py/test_scenarios.py`). Here: one smoke test that calls each trail
//! operation once and reads typed fields (the SDK deserialises our answers, its paginator
//! follows our tokens), and concurrent creates, which no request table can express.

mod common;

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, InsightSelector, InsightType, Tag,
};
use common::{create_trail, expect_error, tag, trail_arn, TestServer, ACCOUNT_ID, BUCKET};

const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trail_operation_once_through_the_sdk() {
    let server = TestServer::builder()
        .arg("--list-trails-page-size")
        .arg("2")
        .start();
    let client = server.client(REGION);
    let arn = trail_arn(REGION, "smoke");
    server.create_topic(REGION, "smoke-topic");

    let created = client
        .create_trail()
        .name("smoke")
        .s3_bucket_name(BUCKET)
        .s3_key_prefix("audit")
        .sns_topic_name("smoke-topic")
        .enable_log_file_validation(true)
        .kms_key_id("alias/trail-key")
        .tags_list(tag("team", "security"))
        .send()
        .await
        .expect("CreateTrail");
    assert_eq!(created.name(), Some("smoke"));
    assert_eq!(created.s3_bucket_name(), Some(BUCKET));
    assert_eq!(created.s3_key_prefix(), Some("audit"));
    assert_eq!(
        created.sns_topic_arn(),
        Some(format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:smoke-topic").as_str())
    );
    assert_eq!(created.include_global_service_events(), Some(true));
    assert_eq!(created.is_multi_region_trail(), Some(false));
    assert_eq!(created.trail_arn(), Some(arn.as_str()));
    assert_eq!(created.log_file_validation_enabled(), Some(true));
    assert_eq!(
        created.kms_key_id(),
        Some(format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/trail-key").as_str())
    );
    assert_eq!(created.is_organization_trail(), Some(false));

    let trail = client
        .get_trail()
        .name("smoke")
        .send()
        .await
        .expect("GetTrail")
        .trail
        .expect("GetTrail returns a Trail");
    assert_eq!(trail.trail_arn(), Some(arn.as_str()));
    assert_eq!(trail.home_region(), Some(REGION));
    assert_eq!(trail.has_custom_event_selectors(), Some(false));
    assert_eq!(trail.has_insight_selectors(), Some(false));
    #[allow(deprecated)] // SnsTopicName is deprecated in the model but still sent by AWS
    let topic_name = trail.sns_topic_name();
    assert_eq!(topic_name, Some("smoke-topic"));

    let described = client
        .describe_trails()
        .trail_name_list(&arn)
        .send()
        .await
        .expect("DescribeTrails");
    assert_eq!(described.trail_list().len(), 1);
    assert_eq!(described.trail_list()[0].name(), Some("smoke"));

    let updated = client
        .update_trail()
        .name(&arn)
        .s3_key_prefix("")
        .is_multi_region_trail(true)
        .send()
        .await
        .expect("UpdateTrail");
    assert_eq!(updated.s3_key_prefix(), None);
    assert_eq!(updated.is_multi_region_trail(), Some(true));

    let fresh = client
        .get_trail_status()
        .name("smoke")
        .send()
        .await
        .expect("GetTrailStatus");
    assert_eq!(fresh.is_logging(), Some(false));
    assert_eq!(fresh.start_logging_time(), None);
    client
        .start_logging()
        .name("smoke")
        .send()
        .await
        .expect("StartLogging");
    let started = client
        .get_trail_status()
        .name(&arn)
        .send()
        .await
        .expect("GetTrailStatus");
    assert_eq!(started.is_logging(), Some(true));
    let start_time = started
        .start_logging_time()
        .expect("StartLoggingTime")
        .secs();
    assert!(start_time > 1_700_000_000, "StartLoggingTime {start_time}");
    assert!(started
        .time_logging_started()
        .is_some_and(|t| !t.is_empty()));
    client
        .stop_logging()
        .name("smoke")
        .send()
        .await
        .expect("StopLogging");
    let stopped = client
        .get_trail_status()
        .name("smoke")
        .send()
        .await
        .expect("GetTrailStatus");
    assert_eq!(stopped.is_logging(), Some(false));
    assert!(stopped.stop_logging_time().expect("StopLoggingTime").secs() >= start_time);

    let selector = AdvancedEventSelector::builder()
        .name("S3 writes")
        .field_selectors(
            AdvancedFieldSelector::builder()
                .field("eventCategory")
                .equals("Data")
                .build()
                .expect("field"),
        )
        .field_selectors(
            AdvancedFieldSelector::builder()
                .field("resources.type")
                .equals("AWS::S3::Object")
                .build()
                .expect("field"),
        )
        .field_selectors(
            AdvancedFieldSelector::builder()
                .field("resources.ARN")
                .starts_with("arn:aws:s3:::audit-bucket/")
                .build()
                .expect("field"),
        )
        .build()
        .expect("selector");
    // Management events too: Insights (below) analyses them, and AWS refuses Insights on a
    // trail that does not log them.
    let management = AdvancedEventSelector::builder()
        .name("Management events")
        .field_selectors(
            AdvancedFieldSelector::builder()
                .field("eventCategory")
                .equals("Management")
                .build()
                .expect("field"),
        )
        .build()
        .expect("selector");
    let selectors = vec![selector, management];
    let put = client
        .put_event_selectors()
        .trail_name("smoke")
        .set_advanced_event_selectors(Some(selectors.clone()))
        .send()
        .await
        .expect("PutEventSelectors");
    assert_eq!(put.trail_arn(), Some(arn.as_str()));
    assert_eq!(put.advanced_event_selectors(), selectors.as_slice());
    let got = client
        .get_event_selectors()
        .trail_name("smoke")
        .send()
        .await
        .expect("GetEventSelectors");
    assert_eq!(got.advanced_event_selectors(), selectors.as_slice());
    assert!(got.event_selectors().is_empty());

    let insight = InsightSelector::builder()
        .insight_type(InsightType::ApiErrorRateInsight)
        .build();
    let put = client
        .put_insight_selectors()
        .trail_name("smoke")
        .insight_selectors(insight.clone())
        .send()
        .await
        .expect("PutInsightSelectors");
    assert_eq!(put.insight_selectors(), std::slice::from_ref(&insight));
    let got = client
        .get_insight_selectors()
        .trail_name(&arn)
        .send()
        .await
        .expect("GetInsightSelectors");
    assert_eq!(got.trail_arn(), Some(arn.as_str()));
    assert_eq!(got.insight_selectors(), [insight]);

    client
        .add_tags()
        .resource_id(&arn)
        .tags_list(tag("env", "prod"))
        .tags_list(Tag::builder().key("flag").build().expect("tag"))
        .send()
        .await
        .expect("AddTags");
    client
        .remove_tags()
        .resource_id(&arn)
        .tags_list(Tag::builder().key("team").build().expect("tag"))
        .send()
        .await
        .expect("RemoveTags");
    let listed = client
        .list_tags()
        .resource_id_list(&arn)
        .send()
        .await
        .expect("ListTags");
    let resource = &listed.resource_tag_list()[0];
    assert_eq!(resource.resource_id(), Some(arn.as_str()));
    let tags: Vec<_> = resource
        .tags_list()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert_eq!(tags, [("env", Some("prod")), ("flag", None)]);

    let keys = client
        .list_public_keys()
        .send()
        .await
        .expect("ListPublicKeys");
    for key in keys.public_key_list() {
        assert!(key.fingerprint().is_some_and(|f| !f.is_empty()), "{key:?}");
    }

    // Five trails over pages of two: the SDK's paginator follows our NextToken.
    for name in ["page-a", "page-b", "page-c", "page-d"] {
        create_trail(&client, name).await;
    }
    let mut names = Vec::new();
    let mut items = client.list_trails().into_paginator().items().send();
    while let Some(item) = items.next().await {
        let item = item.expect("ListTrails page");
        assert_eq!(item.home_region(), Some(REGION));
        names.push(item.name().expect("Name").to_owned());
    }
    assert_eq!(names, ["page-a", "page-b", "page-c", "page-d", "smoke"]);

    client
        .delete_trail()
        .name("smoke")
        .send()
        .await
        .expect("DeleteTrail");
    expect_error(
        client.get_trail().name("smoke").send().await,
        "TrailNotFoundException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_respect_uniqueness_and_the_limit() {
    let server = TestServer::start();
    let client = server.client(REGION);

    // Eight racing creates of one name: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .create_trail()
                    .name("contested")
                    .s3_bucket_name(BUCKET)
                    .send()
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.expect("join") {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(
                aws_sdk_cloudtrail::error::ProvideErrorMetadata::code(&e),
                Some("TrailAlreadyExistsException"),
                "{e:?}"
            ),
        }
    }
    assert_eq!(won, 1, "exactly one CreateTrail of the same name succeeds");

    // Twelve racing creates of different names: the region ends with exactly five trails.
    let racers: Vec<_> = (0..12)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .create_trail()
                    .name(format!("racer-{i}"))
                    .s3_bucket_name(BUCKET)
                    .send()
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.expect("join") {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(
                aws_sdk_cloudtrail::error::ProvideErrorMetadata::code(&e),
                Some("MaximumNumberOfTrailsExceededException"),
                "{e:?}"
            ),
        }
    }
    assert_eq!(won, 4, "four more fit next to 'contested'");
    let described = client.describe_trails().send().await.expect("describe");
    assert_eq!(described.trail_list().len(), 5);
}
