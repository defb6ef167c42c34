//! Notifications to HTTP webhooks on a real server on loopback: the exact envelope and
//! headers, the HMAC signatures, retries, and the outcomes `GetTrailStatus` shows.

mod common;

use std::sync::Arc;

use common::{config, fast_retries, start_time, Harness, WebhookServer};
use opentrail_notify::{
    log_file_message, verify_body_signature, NotificationEnvelope, NotificationOutcome,
    NotifierConfig, TopicRegistry,
};

const ACCOUNT: &str = "123456789012";
const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:123456789012:trail/management";
const BUCKET: &str = "trail-logs";
const KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/17/123456789012_CloudTrail_us-east-1_20240517T0930Z_LnPgDQnpkSKEsppV.json.gz";
const SECRET: &str = "webhook-secret-0123456789";

struct Setup {
    _dir: tempfile::TempDir,
    registry: Arc<TopicRegistry>,
    topic_arn: String,
}

fn setup() -> Setup {
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
        .create_topic(ACCOUNT, "us-east-1", "trail-alerts")
        .unwrap();
    Setup {
        _dir: dir,
        registry,
        topic_arn: topic.arn,
    }
}

fn header<'a>(received: &'a common::Received, name: &str) -> &'a str {
    received
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", received.headers))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn envelope_and_headers_are_exactly_sns_shaped_and_signed() {
    let setup = setup();
    let server = WebhookServer::start(&[]).await;
    let subscription = setup
        .registry
        .subscribe_webhook(
            &setup.topic_arn,
            &server.url("/hooks/cloudtrail?token=abc"),
            Some(SECRET.into()),
            true,
        )
        .unwrap();
    let mut harness = Harness::start(Arc::clone(&setup.registry), config(fast_retries(3)));

    harness
        .notifier
        .log_file_delivered(TRAIL, &setup.topic_arn, BUCKET, KEY);
    let outcome = harness.next_outcome().await;
    assert_eq!(
        outcome,
        NotificationOutcome::Delivered {
            trail_arn: TRAIL.into(),
            topic_arn: setup.topic_arn.clone(),
            at: start_time(),
        }
    );

    let received = server.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path_and_query, "/hooks/cloudtrail?token=abc");
    let mut names: Vec<&str> = request.headers.keys().map(|n| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "accept",
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "x-amz-sns-message-id",
            "x-amz-sns-message-type",
            "x-amz-sns-subscription-arn",
            "x-amz-sns-topic-arn",
            "x-opentrail-signature",
        ]
    );
    assert_eq!(header(request, "content-type"), "text/plain; charset=UTF-8");
    assert_eq!(
        header(request, "user-agent"),
        "OpenTrail Notification Agent"
    );
    assert_eq!(header(request, "x-amz-sns-message-type"), "Notification");
    assert_eq!(header(request, "x-amz-sns-topic-arn"), setup.topic_arn);
    assert_eq!(
        header(request, "x-amz-sns-subscription-arn"),
        subscription.arn
    );
    let message_id = header(request, "x-amz-sns-message-id");
    assert!(uuid::Uuid::parse_str(message_id).is_ok(), "{message_id}");
    assert!(verify_body_signature(
        SECRET.as_bytes(),
        &request.body,
        header(request, "x-opentrail-signature")
    ));
    assert!(!verify_body_signature(
        b"another-secret-0123",
        &request.body,
        header(request, "x-opentrail-signature")
    ));

    // The body, byte for byte, except the signature computed below.
    let envelope: NotificationEnvelope = serde_json::from_slice(&request.body).unwrap();
    let message = format!(r#"{{"s3Bucket":"{BUCKET}","s3ObjectKey":["{KEY}"]}}"#);
    assert_eq!(message, log_file_message(BUCKET, &[KEY]));
    let expected = format!(
        concat!(
            r#"{{"Type":"Notification","MessageId":"{id}","TopicArn":"{topic}","#,
            r#""Message":{message},"Timestamp":"2024-05-17T09:30:12.345Z","#,
            r#""SignatureVersion":"opentrail-hmac-sha256","Signature":"{signature}","#,
            r#""SigningCertURL":"","UnsubscribeURL":""}}"#
        ),
        id = message_id,
        topic = setup.topic_arn,
        message = serde_json::to_string(&message).unwrap(),
        signature = envelope.signature,
    );
    assert_eq!(String::from_utf8(request.body.clone()).unwrap(), expected);
    assert!(envelope.verify(SECRET.as_bytes()));
    assert_eq!(
        envelope,
        NotificationEnvelope::new(
            SECRET.as_bytes(),
            message_id,
            &setup.topic_arn,
            &message,
            start_time()
        )
    );
    harness.notifier.shutdown().await;
}

#[tokio::test]
async fn retries_after_server_errors_then_succeeds_with_the_same_message() {
    let setup = setup();
    let server = WebhookServer::start(&[500, 503, 429]).await;
    setup
        .registry
        .subscribe_webhook(&setup.topic_arn, &server.url("/hook"), None, true)
        .unwrap();
    let mut harness = Harness::start(Arc::clone(&setup.registry), config(fast_retries(5)));

    harness
        .notifier
        .log_file_delivered(TRAIL, &setup.topic_arn, BUCKET, KEY);
    assert!(matches!(
        harness.next_outcome().await,
        NotificationOutcome::Delivered { .. }
    ));
    let received = server.received();
    assert_eq!(received.len(), 4, "three failures, then success");
    for retry in &received[1..] {
        assert_eq!(retry.body, received[0].body, "resent unchanged");
        assert_eq!(
            retry.headers.get("x-amz-sns-message-id"),
            received[0].headers.get("x-amz-sns-message-id")
        );
    }
    harness.notifier.shutdown().await;
}

#[tokio::test]
async fn permanent_failures_are_reported_with_the_error() {
    let setup = setup();
    let failing = WebhookServer::start(&[500; 10]).await;
    let missing = WebhookServer::start(&[404]).await;
    let healthy = WebhookServer::start(&[]).await;
    let failing_sub = setup
        .registry
        .subscribe_webhook(
            &setup.topic_arn,
            &failing.url("/hook?token=s3cret"),
            None,
            true,
        )
        .unwrap();
    let missing_sub = setup
        .registry
        .subscribe_webhook(&setup.topic_arn, &missing.url("/gone"), None, true)
        .unwrap();
    setup
        .registry
        .subscribe_webhook(&setup.topic_arn, &healthy.url("/ok"), None, true)
        .unwrap();
    let mut harness = Harness::start(Arc::clone(&setup.registry), config(fast_retries(3)));
    harness.clock.advance(chrono::Duration::seconds(5));

    harness
        .notifier
        .log_file_delivered(TRAIL, &setup.topic_arn, BUCKET, KEY);
    let NotificationOutcome::Failed {
        trail_arn,
        topic_arn,
        attempted_at,
        error,
    } = harness.next_outcome().await
    else {
        panic!("expected a failure");
    };
    assert_eq!(
        (trail_arn.as_str(), topic_arn.as_str(), attempted_at),
        (
            TRAIL,
            setup.topic_arn.as_str(),
            start_time() + chrono::Duration::seconds(5)
        )
    );
    let expected = [
        format!(
            "webhook {}/gone ({}): HTTP 404 Not Found from {}/gone (not retryable, attempt 1)",
            missing.base_url, missing_sub.arn, missing.base_url
        ),
        format!(
            "webhook {}/hook ({}): HTTP 500 Internal Server Error from {}/hook (gave up after 3 attempts)",
            failing.base_url, failing_sub.arn, failing.base_url
        ),
    ];
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(error, expected.join("; "));
    assert!(!error.contains("s3cret"), "no URL query in errors");
    assert_eq!(failing.received().len(), 3);
    assert_eq!(missing.received().len(), 1);
    assert_eq!(
        healthy.received().len(),
        1,
        "the healthy subscriber still got it"
    );

    // Each subscriber verifies with its own secret; all carry the same MessageId.
    let ids: Vec<_> = [&failing, &missing, &healthy]
        .iter()
        .map(|s| s.received()[0].headers["x-amz-sns-message-id"].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    let topic = setup.registry.topic(&setup.topic_arn).unwrap();
    for (server, subscription) in [&failing, &missing, &healthy]
        .iter()
        .zip(&topic.subscriptions)
    {
        let opentrail_notify::Endpoint::Webhook { secret, .. } = &subscription.endpoint else {
            panic!("webhook subscription");
        };
        let request = &server.received()[0];
        assert!(verify_body_signature(
            secret.as_bytes(),
            &request.body,
            request.headers["x-opentrail-signature"].to_str().unwrap()
        ));
    }
    harness.notifier.shutdown().await;
}

#[tokio::test]
async fn unreachable_webhooks_and_unknown_topics_fail() {
    let setup = setup();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    setup
        .registry
        .subscribe_webhook(
            &setup.topic_arn,
            &format!("http://127.0.0.1:{closed_port}/hook"),
            None,
            true,
        )
        .unwrap();
    let mut harness = Harness::start(Arc::clone(&setup.registry), config(fast_retries(2)));

    harness
        .notifier
        .log_file_delivered(TRAIL, &setup.topic_arn, BUCKET, KEY);
    let NotificationOutcome::Failed { error, .. } = harness.next_outcome().await else {
        panic!("expected a failure");
    };
    assert!(
        error.contains("connection failed") && error.ends_with("(gave up after 2 attempts)"),
        "{error}"
    );

    let unknown = "arn:aws:sns:us-east-1:123456789012:nobody";
    harness
        .notifier
        .log_file_delivered(TRAIL, unknown, BUCKET, KEY);
    assert_eq!(
        harness.next_outcome().await,
        NotificationOutcome::Failed {
            trail_arn: TRAIL.into(),
            topic_arn: unknown.into(),
            attempted_at: start_time(),
            error: format!("topic {unknown} does not exist"),
        }
    );
    harness.notifier.shutdown().await;
}

#[tokio::test]
async fn a_topic_without_subscribers_counts_as_delivered() {
    let setup = setup();
    let mut harness = Harness::start(Arc::clone(&setup.registry), config(fast_retries(2)));
    harness
        .notifier
        .log_file_delivered(TRAIL, &setup.topic_arn, BUCKET, KEY);
    assert!(matches!(
        harness.next_outcome().await,
        NotificationOutcome::Delivered { .. }
    ));
    harness.notifier.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_fails_at_once_instead_of_blocking_delivery() {
    let setup = setup();
    let server = WebhookServer::start(&[]).await;
    setup
        .registry
        .subscribe_webhook(&setup.topic_arn, &server.url("/slow"), None, true)
        .unwrap();
    server.hold();
    let mut harness = Harness::start(
        Arc::clone(&setup.registry),
        NotifierConfig {
            retry: fast_retries(2),
            queue_capacity: 1,
            max_concurrent: 1,
        },
    );

    let trail = |n: u32| format!("{TRAIL}-{n}");
    harness
        .notifier
        .log_file_delivered(&trail(1), &setup.topic_arn, BUCKET, KEY);
    server.wait_for_requests(1).await;
    // One in flight (held by the server), at most one waiting for a slot and one in the
    // queue: the fourth cannot be taken.
    for n in 2..=4 {
        harness
            .notifier
            .log_file_delivered(&trail(n), &setup.topic_arn, BUCKET, KEY);
    }
    // Whether the third found room depends on whether the dispatcher ran in between.
    let mut dropped = Vec::new();
    while let Ok(outcome) = harness.outcomes.try_recv() {
        let NotificationOutcome::Failed {
            trail_arn, error, ..
        } = outcome
        else {
            panic!("only drops are reported at once: {outcome:?}");
        };
        assert_eq!(
            error,
            format!("notification queue is full: notification for s3://{BUCKET}/{KEY} dropped")
        );
        dropped.push(trail_arn);
    }
    assert!(dropped.contains(&trail(4)), "{dropped:?}");
    assert!(!dropped.contains(&trail(2)), "{dropped:?}");

    server.release();
    harness.notifier.shutdown().await;
    let mut delivered = Vec::new();
    while let Ok(outcome) = harness.outcomes.try_recv() {
        match outcome {
            NotificationOutcome::Delivered { trail_arn, .. } => delivered.push(trail_arn),
            NotificationOutcome::Failed { trail_arn, .. } => panic!("{trail_arn} failed"),
        }
    }
    delivered.sort();
    let mut expected: Vec<String> = (1..=3)
        .map(trail)
        .filter(|t| !dropped.contains(t))
        .collect();
    expected.sort();
    assert_eq!(delivered, expected);
}
