//! Publishing to an SNS-compatible service: a real moto server with SigV4 enforced, its
//! topic subscribed by an SQS queue we read the notification back from.

mod common;

use std::sync::Arc;

use common::moto::{element, Moto};
use common::{config, fast_retries, Harness};
use opentrail_notify::{log_file_message, NotificationOutcome, TopicRegistry};

const SNS: &str = "2010-03-31";
const SQS: &str = "2012-11-05";
const ACCOUNT: &str = "123456789012";
const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:123456789012:trail/management";
const BUCKET: &str = "trail-logs";
const KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/17/123456789012_CloudTrail_us-east-1_20240517T0930Z_LnPgDQnpkSKEsppV.json.gz";

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&#xD;", "\r")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn notifications_are_published_to_an_sns_compatible_service() {
    let moto = Moto::start().await;
    let created = moto
        .query(
            "sns",
            SNS,
            &[("Action", "CreateTopic"), ("Name", "cloudtrail-forwarded")],
        )
        .await;
    let moto_topic = element(&created, "TopicArn");
    let queue = moto
        .query(
            "sqs",
            SQS,
            &[("Action", "CreateQueue"), ("QueueName", "ct-notifications")],
        )
        .await;
    let queue_url = element(&queue, "QueueUrl");
    let queue_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:ct-notifications");
    moto.query(
        "sns",
        SNS,
        &[
            ("Action", "Subscribe"),
            ("TopicArn", &moto_topic),
            ("Protocol", "sqs"),
            ("Endpoint", &queue_arn),
        ],
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(
        TopicRegistry::open(
            Arc::new(
                opentrail_meta::SqliteMetaStore::open(&dir.path().join("meta.sqlite")).unwrap(),
            ),
            &dir.path().join("topics.json"),
        )
        .unwrap(),
    );
    let topic = registry
        .create_topic(ACCOUNT, "us-east-1", "alerts")
        .unwrap();
    registry
        .subscribe_sns(
            &topic.arn,
            &moto.endpoint,
            &moto.access_key,
            &moto.secret_key,
            "us-east-1",
            &moto_topic,
        )
        .unwrap();
    let mut harness = Harness::start(Arc::clone(&registry), config(fast_retries(3)));

    harness
        .notifier
        .log_file_delivered(TRAIL, &topic.arn, BUCKET, KEY);
    let outcome = harness.next_outcome().await;
    assert!(
        matches!(outcome, NotificationOutcome::Delivered { .. }),
        "{outcome:?}\n{}",
        moto.log_text()
    );

    let received = moto
        .query(
            "sqs",
            SQS,
            &[
                ("Action", "ReceiveMessage"),
                ("QueueUrl", &queue_url),
                ("MaxNumberOfMessages", "10"),
                ("WaitTimeSeconds", "5"),
            ],
        )
        .await;
    let body = xml_unescape(&element(&received, "Body"));
    let envelope: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], moto_topic.as_str());
    assert_eq!(
        envelope["Message"].as_str().unwrap(),
        log_file_message(BUCKET, &[KEY]),
        "moto delivered exactly CloudTrail's message: {body}"
    );
    assert_eq!(
        envelope["Message"].as_str().unwrap(),
        format!(r#"{{"s3Bucket":"{BUCKET}","s3ObjectKey":["{KEY}"]}}"#)
    );
    harness.notifier.shutdown().await;
}

#[tokio::test]
async fn rejected_publishes_are_reported_with_the_sns_error() {
    let moto = Moto::start().await;
    let created = moto
        .query(
            "sns",
            SNS,
            &[("Action", "CreateTopic"), ("Name", "cloudtrail-forwarded")],
        )
        .await;
    let moto_topic = element(&created, "TopicArn");

    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(
        TopicRegistry::open(
            Arc::new(
                opentrail_meta::SqliteMetaStore::open(&dir.path().join("meta.sqlite")).unwrap(),
            ),
            &dir.path().join("topics.json"),
        )
        .unwrap(),
    );
    let wrong_key = registry
        .create_topic(ACCOUNT, "us-east-1", "wrong-key")
        .unwrap();
    registry
        .subscribe_sns(
            &wrong_key.arn,
            &moto.endpoint,
            &moto.access_key,
            "not-the-secret-key",
            "us-east-1",
            &moto_topic,
        )
        .unwrap();
    let missing_topic = registry
        .create_topic(ACCOUNT, "us-east-1", "missing")
        .unwrap();
    registry
        .subscribe_sns(
            &missing_topic.arn,
            &moto.endpoint,
            &moto.access_key,
            &moto.secret_key,
            "us-east-1",
            &format!("arn:aws:sns:us-east-1:{ACCOUNT}:does-not-exist"),
        )
        .unwrap();
    let mut harness = Harness::start(Arc::clone(&registry), config(fast_retries(3)));

    harness
        .notifier
        .log_file_delivered(TRAIL, &wrong_key.arn, BUCKET, KEY);
    let NotificationOutcome::Failed { error, .. } = harness.next_outcome().await else {
        panic!("a wrong signature fails");
    };
    assert!(
        error.contains("SNS Publish answered HTTP 403")
            && error.contains("SignatureDoesNotMatch")
            && error.ends_with("(not retryable, attempt 1)"),
        "{error}"
    );
    assert!(!error.contains("not-the-secret-key"));

    harness
        .notifier
        .log_file_delivered(TRAIL, &missing_topic.arn, BUCKET, KEY);
    let NotificationOutcome::Failed { error, .. } = harness.next_outcome().await else {
        panic!("a missing topic fails");
    };
    assert!(
        error.contains("NotFound") && error.ends_with("(not retryable, attempt 1)"),
        "{error}"
    );
    harness.notifier.shutdown().await;
}
