//! AddTags / RemoveTags / ListTags and StartLogging / StopLogging / GetTrailStatus
//! through aws-sdk-cloudtrail.

mod common;

use aws_sdk_cloudtrail::Client;
use common::{create_trail, expect_error, expect_error_naming, tag, trail_arn, TestServer, BUCKET};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

const REGION: &str = "us-east-1";

async fn tags_of(client: &Client, arn: &str) -> BTreeMap<String, Option<String>> {
    let listed = client
        .list_tags()
        .resource_id_list(arn)
        .send()
        .await
        .expect("list tags");
    let resources = listed.resource_tag_list();
    assert_eq!(resources.len(), 1, "{listed:?}");
    assert_eq!(resources[0].resource_id(), Some(arn));
    resources[0]
        .tags_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().map(str::to_owned)))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
}

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_remove_tags_round_trip() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "tagged").await;
    let arn = trail_arn(REGION, "tagged");
    assert!(tags_of(&client, &arn).await.is_empty());

    client
        .add_tags()
        .resource_id(&arn)
        .tags_list(tag("env", "prod"))
        .tags_list(tag("team", "security"))
        .tags_list(tag("cost center", "a@b.c/d+e=f:g-h_i"))
        .send()
        .await
        .expect("add tags");
    assert_eq!(
        tags_of(&client, &arn).await,
        map(&[
            ("env", "prod"),
            ("team", "security"),
            ("cost center", "a@b.c/d+e=f:g-h_i")
        ])
    );

    // Adding an existing key replaces its value.
    client
        .add_tags()
        .resource_id(&arn)
        .tags_list(tag("env", "staging"))
        .send()
        .await
        .expect("replace tag");
    assert_eq!(
        tags_of(&client, &arn).await,
        map(&[
            ("env", "staging"),
            ("team", "security"),
            ("cost center", "a@b.c/d+e=f:g-h_i")
        ])
    );

    client
        .remove_tags()
        .resource_id(&arn)
        .tags_list(
            aws_sdk_cloudtrail::types::Tag::builder()
                .key("team")
                .build()
                .expect("tag"),
        )
        .tags_list(tag("cost center", "a@b.c/d+e=f:g-h_i"))
        .send()
        .await
        .expect("remove tags");
    assert_eq!(tags_of(&client, &arn).await, map(&[("env", "staging")]));

    // A tag without a value.
    client
        .add_tags()
        .resource_id(&arn)
        .tags_list(
            aws_sdk_cloudtrail::types::Tag::builder()
                .key("flag")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag without value");
    let tags = tags_of(&client, &arn).await;
    let flag = tags
        .get("flag")
        .unwrap_or_else(|| panic!("tag without value is listed: {tags:?}"));
    assert_eq!(
        flag.as_deref().unwrap_or(""),
        "",
        "tag without value: {tags:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tags_of_several_trails() {
    let server = TestServer::start();
    let client = server.client(REGION);
    for name in ["one", "two"] {
        create_trail(&client, name).await;
        client
            .add_tags()
            .resource_id(trail_arn(REGION, name))
            .tags_list(tag("name", name))
            .send()
            .await
            .expect("add tags");
    }
    let listed = client
        .list_tags()
        .resource_id_list(trail_arn(REGION, "one"))
        .resource_id_list(trail_arn(REGION, "two"))
        .send()
        .await
        .expect("list tags");
    let by_resource: BTreeMap<_, _> = listed
        .resource_tag_list()
        .iter()
        .map(|r| {
            (
                r.resource_id().expect("ResourceId").to_owned(),
                r.tags_list()[0].value().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        by_resource,
        BTreeMap::from([
            (trail_arn(REGION, "one"), Some("one".to_owned())),
            (trail_arn(REGION, "two"), Some("two".to_owned())),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_fifty_tags_per_trail() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "many-tags").await;
    let arn = trail_arn(REGION, "many-tags");
    let mut request = client.add_tags().resource_id(&arn);
    for i in 0..50 {
        request = request.tags_list(tag(&format!("key-{i}"), "v"));
    }
    request.send().await.expect("50 tags are allowed");
    // Replacing a value at the limit is fine, a 51st key is not.
    client
        .add_tags()
        .resource_id(&arn)
        .tags_list(tag("key-0", "new"))
        .send()
        .await
        .expect("replace at limit");
    expect_error(
        client
            .add_tags()
            .resource_id(&arn)
            .tags_list(tag("key-50", "v"))
            .send()
            .await,
        "TagsLimitExceededException",
    );
    let tags = tags_of(&client, &arn).await;
    assert_eq!(tags.len(), 50);
    assert_eq!(tags["key-0"].as_deref(), Some("new"));
    assert!(!tags.contains_key("key-50"));

    // CreateTrail with 51 tags is rejected and creates nothing.
    let mut create = client
        .create_trail()
        .name("too-many")
        .s3_bucket_name(BUCKET);
    for i in 0..51 {
        create = create.tags_list(tag(&format!("key-{i}"), "v"));
    }
    expect_error(create.send().await, "TagsLimitExceededException");
    expect_error(
        client.get_trail().name("too-many").send().await,
        "TrailNotFoundException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tags_are_rejected() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "strict").await;
    let arn = trail_arn(REGION, "strict");
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    let cases: Vec<(aws_sdk_cloudtrail::types::Tag, &str)> = vec![
        (tag("", "v"), "Tag key"),
        (tag("aws:reserved", "v"), "aws:reserved"),
        (tag(&long_key, "v"), &long_key),
        (tag("long-value", &long_value), "long-value"),
        (tag("semi;colon", "v"), "semi;colon"),
    ];
    for (bad, needle) in cases {
        expect_error_naming(
            client
                .add_tags()
                .resource_id(&arn)
                .tags_list(bad.clone())
                .send()
                .await,
            "InvalidTagParameterException",
            needle,
        );
        expect_error(
            client
                .create_trail()
                .name("other")
                .s3_bucket_name(BUCKET)
                .tags_list(bad)
                .send()
                .await,
            "InvalidTagParameterException",
        );
    }
    // 128-character keys and 256-character values are the limits, inclusive.
    client
        .add_tags()
        .resource_id(&arn)
        .tags_list(tag(&"k".repeat(128), &"v".repeat(256)))
        .send()
        .await
        .expect("tags at the length limits");
    assert_eq!(tags_of(&client, &arn).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_unknown_or_malformed_resources() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "exists").await;
    let missing = trail_arn(REGION, "missing");
    expect_error_naming(
        client
            .add_tags()
            .resource_id(&missing)
            .tags_list(tag("k", "v"))
            .send()
            .await,
        "ResourceNotFoundException",
        &missing,
    );
    expect_error(
        client
            .remove_tags()
            .resource_id(&missing)
            .tags_list(tag("k", "v"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    expect_error(
        client.list_tags().resource_id_list(&missing).send().await,
        "ResourceNotFoundException",
    );
    // A trail of another account is not found either.
    let foreign = "arn:aws:cloudtrail:us-east-1:999988887777:trail/exists";
    expect_error(
        client
            .add_tags()
            .resource_id(foreign)
            .tags_list(tag("k", "v"))
            .send()
            .await,
        "ResourceNotFoundException",
    );
    for bad in ["exists", "not-an-arn", "arn:aws"] {
        expect_error_naming(
            client
                .add_tags()
                .resource_id(bad)
                .tags_list(tag("k", "v"))
                .send()
                .await,
            "CloudTrailARNInvalidException",
            bad,
        );
        expect_error(
            client.list_tags().resource_id_list(bad).send().await,
            "CloudTrailARNInvalidException",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_status_follows_start_and_stop() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "logged").await;
    let arn = trail_arn(REGION, "logged");

    let fresh = client
        .get_trail_status()
        .name("logged")
        .send()
        .await
        .expect("status");
    assert_eq!(
        fresh.is_logging(),
        Some(false),
        "a new trail does not log until StartLogging"
    );
    assert_eq!(fresh.start_logging_time(), None);
    assert_eq!(fresh.stop_logging_time(), None);

    let before = now_epoch();
    client
        .start_logging()
        .name("logged")
        .send()
        .await
        .expect("start logging");
    let started = client
        .get_trail_status()
        .name(&arn)
        .send()
        .await
        .expect("status by ARN");
    assert_eq!(started.is_logging(), Some(true));
    let start_time = started
        .start_logging_time()
        .expect("StartLoggingTime after StartLogging")
        .secs();
    assert!(
        (before - 5..=now_epoch() + 5).contains(&start_time),
        "StartLoggingTime {start_time} is not now ({before})"
    );
    let text = started.time_logging_started().expect("TimeLoggingStarted");
    assert!(
        text.starts_with(&format!("{}", chrono::Utc::now().format("%Y-"))),
        "ISO-8601 TimeLoggingStarted: {text}"
    );

    // Starting twice is harmless.
    client
        .start_logging()
        .name(&arn)
        .send()
        .await
        .expect("start logging again");
    assert_eq!(
        client
            .get_trail_status()
            .name("logged")
            .send()
            .await
            .expect("status")
            .is_logging(),
        Some(true)
    );

    client
        .stop_logging()
        .name(&arn)
        .send()
        .await
        .expect("stop logging");
    let stopped = client
        .get_trail_status()
        .name("logged")
        .send()
        .await
        .expect("status");
    assert_eq!(stopped.is_logging(), Some(false));
    let stop_time = stopped
        .stop_logging_time()
        .expect("StopLoggingTime after StopLogging")
        .secs();
    assert!(
        stop_time >= start_time,
        "stop {stop_time} before start {start_time}"
    );
    assert_eq!(
        stopped.start_logging_time().map(|t| t.secs()),
        Some(start_time),
        "start time is kept"
    );
    assert!(
        stopped
            .time_logging_stopped()
            .is_some_and(|t| !t.is_empty()),
        "{stopped:?}"
    );

    expect_error_naming(
        client.get_trail_status().name("nope").send().await,
        "TrailNotFoundException",
        "nope",
    );
    expect_error_naming(
        client.start_logging().name("nope").send().await,
        "TrailNotFoundException",
        "nope",
    );
    expect_error_naming(
        client.stop_logging().name("nope").send().await,
        "TrailNotFoundException",
        "nope",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_state_is_per_trail() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "logging-on").await;
    create_trail(&client, "logging-off").await;
    client
        .start_logging()
        .name("logging-on")
        .send()
        .await
        .expect("start");
    assert_eq!(
        client
            .get_trail_status()
            .name("logging-on")
            .send()
            .await
            .expect("status")
            .is_logging(),
        Some(true)
    );
    assert_eq!(
        client
            .get_trail_status()
            .name("logging-off")
            .send()
            .await
            .expect("status")
            .is_logging(),
        Some(false)
    );
    // Deleting and re-creating a trail starts it over, not logging.
    client
        .delete_trail()
        .name("logging-on")
        .send()
        .await
        .expect("delete");
    create_trail(&client, "logging-on").await;
    assert_eq!(
        client
            .get_trail_status()
            .name("logging-on")
            .send()
            .await
            .expect("status")
            .is_logging(),
        Some(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_trails_take_their_tags_with_them() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "reborn").await;
    let arn = trail_arn(REGION, "reborn");
    client
        .add_tags()
        .resource_id(&arn)
        .tags_list(tag("old", "tag"))
        .send()
        .await
        .expect("tag");
    client
        .delete_trail()
        .name("reborn")
        .send()
        .await
        .expect("delete");
    expect_error(
        client.list_tags().resource_id_list(&arn).send().await,
        "ResourceNotFoundException",
    );
    create_trail(&client, "reborn").await;
    assert!(
        tags_of(&client, &arn).await.is_empty(),
        "a re-created trail starts without tags"
    );
}
