//! Trail lifecycle through aws-sdk-cloudtrail: CreateTrail, GetTrail, DescribeTrails,
//! ListTrails, UpdateTrail, DeleteTrail, their validation errors and the per-region limit.

mod common;

use common::{
    create_multi_region_trail, create_trail, expect_error, expect_error_naming, tag, trail_arn,
    TestServer, ACCOUNT_ID, BUCKET,
};
use std::collections::BTreeSet;

const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_describe_delete_round_trip() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let arn = trail_arn(REGION, "audit-trail");

    let created = create_trail(&client, "audit-trail").await;
    assert_eq!(created.name(), Some("audit-trail"));
    assert_eq!(created.s3_bucket_name(), Some(BUCKET));
    assert_eq!(created.trail_arn(), Some(arn.as_str()));
    assert_eq!(
        created.include_global_service_events(),
        Some(true),
        "AWS default"
    );
    assert_eq!(created.is_multi_region_trail(), Some(false));
    assert_eq!(created.log_file_validation_enabled(), Some(false));
    assert_eq!(created.is_organization_trail(), Some(false));
    assert_eq!(created.s3_key_prefix(), None);

    for name_or_arn in ["audit-trail", arn.as_str()] {
        let trail = client
            .get_trail()
            .name(name_or_arn)
            .send()
            .await
            .expect("get trail")
            .trail
            .expect("GetTrail returns a Trail");
        assert_eq!(trail.name(), Some("audit-trail"));
        assert_eq!(trail.trail_arn(), Some(arn.as_str()));
        assert_eq!(trail.home_region(), Some(REGION));
        assert_eq!(trail.s3_bucket_name(), Some(BUCKET));
        assert_eq!(trail.include_global_service_events(), Some(true));
        assert_eq!(trail.is_multi_region_trail(), Some(false));
        assert_eq!(trail.has_custom_event_selectors(), Some(false));
        assert_eq!(trail.has_insight_selectors(), Some(false));
        assert_eq!(trail.is_organization_trail(), Some(false));
    }

    let described = client
        .describe_trails()
        .send()
        .await
        .expect("describe trails");
    let names: Vec<_> = described
        .trail_list()
        .iter()
        .filter_map(|t| t.name())
        .collect();
    assert_eq!(names, ["audit-trail"]);

    client
        .delete_trail()
        .name(&arn)
        .send()
        .await
        .expect("delete trail by ARN");
    expect_error_naming(
        client.get_trail().name("audit-trail").send().await,
        "TrailNotFoundException",
        "audit-trail",
    );
    let described = client
        .describe_trails()
        .send()
        .await
        .expect("describe trails");
    assert!(
        described.trail_list().is_empty(),
        "deleted trail still described: {described:?}"
    );
    expect_error_naming(
        client.delete_trail().name("audit-trail").send().await,
        "TrailNotFoundException",
        "audit-trail",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_trail_with_every_setting() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let key_id = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let group = format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:CloudTrail/audit:*");
    let role = format!("arn:aws:iam::{ACCOUNT_ID}:role/CloudTrail_CloudWatchLogs_Role");
    server.create_topic(REGION, "trail-alerts");
    let created = client
        .create_trail()
        .name("full.trail_1")
        .s3_bucket_name(BUCKET)
        .s3_key_prefix("audit/logs")
        .sns_topic_name("trail-alerts")
        .include_global_service_events(false)
        .enable_log_file_validation(true)
        .cloud_watch_logs_log_group_arn(&group)
        .cloud_watch_logs_role_arn(&role)
        .kms_key_id(key_id)
        .tags_list(tag("team", "security"))
        .tags_list(tag("env", "prod"))
        .send()
        .await
        .expect("create trail with every setting");
    let sns_arn = format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:trail-alerts");
    let kms_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}");
    assert_eq!(created.s3_key_prefix(), Some("audit/logs"));
    assert_eq!(created.sns_topic_arn(), Some(sns_arn.as_str()));
    assert_eq!(created.include_global_service_events(), Some(false));
    assert_eq!(created.log_file_validation_enabled(), Some(true));
    assert_eq!(
        created.cloud_watch_logs_log_group_arn(),
        Some(group.as_str())
    );
    assert_eq!(created.cloud_watch_logs_role_arn(), Some(role.as_str()));
    assert_eq!(created.kms_key_id(), Some(kms_arn.as_str()));

    let trail = client
        .get_trail()
        .name("full.trail_1")
        .send()
        .await
        .expect("get trail")
        .trail
        .expect("trail");
    assert_eq!(trail.s3_key_prefix(), Some("audit/logs"));
    assert_eq!(trail.sns_topic_arn(), Some(sns_arn.as_str()));
    #[allow(deprecated)] // SnsTopicName is deprecated in the model but still sent by AWS
    let topic_name = trail.sns_topic_name();
    assert_eq!(topic_name, Some("trail-alerts"));
    assert_eq!(trail.log_file_validation_enabled(), Some(true));
    assert_eq!(trail.cloud_watch_logs_log_group_arn(), Some(group.as_str()));
    assert_eq!(trail.cloud_watch_logs_role_arn(), Some(role.as_str()));
    assert_eq!(trail.kms_key_id(), Some(kms_arn.as_str()));

    let tags = client
        .list_tags()
        .resource_id_list(trail_arn(REGION, "full.trail_1"))
        .send()
        .await
        .expect("list tags");
    let listed: Vec<(String, Option<String>)> = tags.resource_tag_list()[0]
        .tags_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().map(str::to_owned)))
        .collect();
    assert_eq!(
        listed.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            ("env".to_owned(), Some("prod".to_owned())),
            ("team".to_owned(), Some("security".to_owned())),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_trail_names_are_rejected_everywhere() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let long = "a".repeat(129);
    // (name, what the message must mention)
    let cases: [(&str, &str); 9] = [
        ("ab", "2"),
        (&long, "129"),
        ("has space", "has space"),
        ("-leading-dash", "-leading-dash"),
        ("trailing-dash-", "trailing-dash-"),
        ("my-_trail", "my-_trail"),
        ("my..trail", "my..trail"),
        ("192.168.5.4", "192.168.5.4"),
        ("sémantique", "sémantique"),
    ];
    for (name, needle) in cases {
        expect_error_naming(
            client
                .create_trail()
                .name(name)
                .s3_bucket_name(BUCKET)
                .send()
                .await,
            "InvalidTrailNameException",
            needle,
        );
        expect_error_naming(
            client.get_trail().name(name).send().await,
            "InvalidTrailNameException",
            needle,
        );
    }
    expect_error(
        client.delete_trail().name("-bad").send().await,
        "InvalidTrailNameException",
    );
    expect_error(
        client.update_trail().name("-bad").send().await,
        "InvalidTrailNameException",
    );
    expect_error(
        client.get_trail_status().name("-bad").send().await,
        "InvalidTrailNameException",
    );
    expect_error(
        client.start_logging().name("-bad").send().await,
        "InvalidTrailNameException",
    );
    // The longest and shortest legal names work.
    create_trail(&client, &"a".repeat(128)).await;
    create_trail(&client, "a1b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_trail_arns_are_rejected() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "real-trail").await;
    for arn in [
        "arn:aws:cloudtrail:us-east-1:111122223333:trail",
        "arn:aws:cloudtrail:us-east-1:111122223333:bucket/real-trail",
        "arn:aws:s3:us-east-1:111122223333:trail/real-trail",
        "arn:aws:cloudtrail:us-east-1:notanaccount:trail/real-trail",
        "arn:aws:cloudtrail",
    ] {
        expect_error_naming(
            client.get_trail().name(arn).send().await,
            "CloudTrailARNInvalidException",
            arn,
        );
        expect_error(
            client.delete_trail().name(arn).send().await,
            "CloudTrailARNInvalidException",
        );
        expect_error(
            client.get_trail_status().name(arn).send().await,
            "CloudTrailARNInvalidException",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arn_of_another_account_is_not_found() {
    let server = TestServer::start();
    let client = server.client(REGION);
    create_trail(&client, "mine").await;
    let foreign = format!("arn:aws:cloudtrail:{REGION}:999988887777:trail/mine");
    expect_error_naming(
        client.get_trail().name(&foreign).send().await,
        "TrailNotFoundException",
        &foreign,
    );
    expect_error(
        client.get_trail_status().name(&foreign).send().await,
        "TrailNotFoundException",
    );
    expect_error(
        client.delete_trail().name(&foreign).send().await,
        "TrailNotFoundException",
    );
    expect_error(
        client
            .update_trail()
            .name(&foreign)
            .s3_key_prefix("x")
            .send()
            .await,
        "TrailNotFoundException",
    );
    // The trail itself is untouched.
    client
        .get_trail()
        .name("mine")
        .send()
        .await
        .expect("own trail still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_errors() {
    let server = TestServer::start();
    let client = server.client(REGION);
    expect_error_naming(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name("no-such-bucket-here")
            .send()
            .await,
        "S3BucketDoesNotExistException",
        "no-such-bucket-here",
    );
    for bad in ["Bad_Bucket", "ab", "-leading", "has space", "bucket..dots"] {
        expect_error_naming(
            client
                .create_trail()
                .name("trail-one")
                .s3_bucket_name(bad)
                .send()
                .await,
            "InvalidS3BucketNameException",
            bad,
        );
    }
    // A bucket created with the admin CLI while the server runs is usable at once.
    server.create_bucket("late-bucket");
    client
        .create_trail()
        .name("trail-one")
        .s3_bucket_name("late-bucket")
        .send()
        .await
        .expect("create trail on a bucket created while the server runs");
    expect_error_naming(
        client
            .update_trail()
            .name("trail-one")
            .s3_bucket_name("missing-bucket-2")
            .send()
            .await,
        "S3BucketDoesNotExistException",
        "missing-bucket-2",
    );
    expect_error_naming(
        client
            .update_trail()
            .name("trail-one")
            .s3_bucket_name("Bad_Bucket")
            .send()
            .await,
        "InvalidS3BucketNameException",
        "Bad_Bucket",
    );
    let trail = client
        .get_trail()
        .name("trail-one")
        .send()
        .await
        .expect("get")
        .trail
        .expect("trail");
    assert_eq!(
        trail.s3_bucket_name(),
        Some("late-bucket"),
        "failed updates change nothing"
    );
    // Nothing was created by the failed CreateTrail calls.
    let described = client.describe_trails().send().await.expect("describe");
    assert_eq!(described.trail_list().len(), 1, "{described:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_validation_errors() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let group = format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:CloudTrail/audit:*");
    let role = format!("arn:aws:iam::{ACCOUNT_ID}:role/CloudTrail_CloudWatchLogs_Role");

    let prefix_200 = "p".repeat(200);
    let prefix_201 = "p".repeat(201);
    expect_error_naming(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .s3_key_prefix(&prefix_201)
            .send()
            .await,
        "InvalidS3PrefixException",
        "201",
    );
    expect_error_naming(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .sns_topic_name("bad topic!")
            .send()
            .await,
        "InvalidSnsTopicNameException",
        "bad topic!",
    );
    expect_error_naming(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .kms_key_id("not-a-key")
            .send()
            .await,
        "InvalidKmsKeyIdException",
        "not-a-key",
    );
    expect_error_naming(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .cloud_watch_logs_log_group_arn("arn:aws:logs:nowhere")
            .cloud_watch_logs_role_arn(&role)
            .send()
            .await,
        "InvalidCloudWatchLogsLogGroupArnException",
        "arn:aws:logs:nowhere",
    );
    expect_error_naming(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .cloud_watch_logs_log_group_arn(&group)
            .cloud_watch_logs_role_arn("arn:aws:iam::role")
            .send()
            .await,
        "InvalidCloudWatchLogsRoleArnException",
        "arn:aws:iam::role",
    );
    // The log group and the role must be given together.
    expect_error(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .cloud_watch_logs_log_group_arn(&group)
            .send()
            .await,
        "InvalidCloudWatchLogsRoleArnException",
    );
    expect_error(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .cloud_watch_logs_role_arn(&role)
            .send()
            .await,
        "InvalidCloudWatchLogsLogGroupArnException",
    );
    expect_error(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .is_multi_region_trail(true)
            .include_global_service_events(false)
            .send()
            .await,
        "InvalidParameterCombinationException",
    );
    expect_error(
        client
            .create_trail()
            .name("trail-one")
            .s3_bucket_name(BUCKET)
            .is_organization_trail(true)
            .send()
            .await,
        "OrganizationsNotInUseException",
    );
    let described = client.describe_trails().send().await.expect("describe");
    assert!(
        described.trail_list().is_empty(),
        "a rejected CreateTrail created a trail: {described:?}"
    );

    // The limits are inclusive, and the same rules apply to UpdateTrail.
    let created = client
        .create_trail()
        .name("trail-one")
        .s3_bucket_name(BUCKET)
        .s3_key_prefix(&prefix_200)
        .send()
        .await
        .expect("a 200-character prefix is allowed");
    assert_eq!(created.s3_key_prefix(), Some(prefix_200.as_str()));
    expect_error(
        client
            .update_trail()
            .name("trail-one")
            .s3_key_prefix(&prefix_201)
            .send()
            .await,
        "InvalidS3PrefixException",
    );
    expect_error(
        client
            .update_trail()
            .name("trail-one")
            .sns_topic_name("bad topic!")
            .send()
            .await,
        "InvalidSnsTopicNameException",
    );
    expect_error(
        client
            .update_trail()
            .name("trail-one")
            .kms_key_id("not-a-key")
            .send()
            .await,
        "InvalidKmsKeyIdException",
    );
    expect_error(
        client
            .update_trail()
            .name("trail-one")
            .cloud_watch_logs_role_arn(&role)
            .send()
            .await,
        "InvalidCloudWatchLogsLogGroupArnException",
    );
    expect_error(
        client
            .update_trail()
            .name("trail-one")
            .is_multi_region_trail(true)
            .include_global_service_events(false)
            .send()
            .await,
        "InvalidParameterCombinationException",
    );
    expect_error(
        client
            .update_trail()
            .name("trail-one")
            .is_organization_trail(true)
            .send()
            .await,
        "OrganizationsNotInUseException",
    );
    let trail = client
        .get_trail()
        .name("trail-one")
        .send()
        .await
        .expect("get")
        .trail
        .expect("trail");
    assert_eq!(
        trail.s3_key_prefix(),
        Some(prefix_200.as_str()),
        "failed updates change nothing"
    );
    assert_eq!(trail.is_multi_region_trail(), Some(false));
    assert_eq!(trail.sns_topic_arn(), None);
    assert_eq!(trail.kms_key_id(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trail_names_are_unique_per_region() {
    let server = TestServer::start();
    let east = server.client(REGION);
    let west = server.client("us-west-2");
    create_trail(&east, "dup").await;
    expect_error_naming(
        east.create_trail()
            .name("dup")
            .s3_bucket_name(BUCKET)
            .send()
            .await,
        "TrailAlreadyExistsException",
        "dup",
    );
    // A single-region trail of the same name in another region is a different trail.
    let other = create_trail(&west, "dup").await;
    assert_eq!(
        other.trail_arn(),
        Some(trail_arn("us-west-2", "dup").as_str())
    );
    // A multi-region trail occupies its name in every region.
    create_multi_region_trail(&east, "everywhere").await;
    expect_error_naming(
        west.create_trail()
            .name("everywhere")
            .s3_bucket_name(BUCKET)
            .send()
            .await,
        "TrailAlreadyExistsException",
        "everywhere",
    );
    // ... and cannot be created over a same-named trail in another region.
    create_trail(&west, "dup2").await;
    expect_error_naming(
        east.create_trail()
            .name("dup2")
            .s3_bucket_name(BUCKET)
            .is_multi_region_trail(true)
            .send()
            .await,
        "TrailAlreadyExistsException",
        "dup2",
    );
    // ... nor become multi-region while another region has its name.
    create_trail(&east, "dup3").await;
    create_trail(&west, "dup3").await;
    expect_error_naming(
        east.update_trail()
            .name("dup3")
            .is_multi_region_trail(true)
            .send()
            .await,
        "TrailAlreadyExistsException",
        "dup3",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_five_trails_per_region() {
    let server = TestServer::start();
    let east = server.client(REGION);
    let west = server.client("us-west-2");
    for i in 0..5 {
        create_trail(&east, &format!("east-{i}")).await;
    }
    expect_error(
        east.create_trail()
            .name("east-5")
            .s3_bucket_name(BUCKET)
            .send()
            .await,
        "MaximumNumberOfTrailsExceededException",
    );
    // Other regions have their own allowance.
    create_trail(&west, "west-0").await;
    // A multi-region trail would count in us-east-1 too, which is full.
    expect_error(
        west.create_trail()
            .name("west-multi")
            .s3_bucket_name(BUCKET)
            .is_multi_region_trail(true)
            .send()
            .await,
        "MaximumNumberOfTrailsExceededException",
    );
    expect_error(
        west.update_trail()
            .name("west-0")
            .is_multi_region_trail(true)
            .send()
            .await,
        "MaximumNumberOfTrailsExceededException",
    );
    // Deleting one frees a slot.
    east.delete_trail()
        .name("east-4")
        .send()
        .await
        .expect("delete");
    create_trail(&east, "east-5").await;
    let described = east
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .expect("describe");
    assert_eq!(described.trail_list().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_region_trails_count_in_every_region() {
    let server = TestServer::start();
    let east = server.client(REGION);
    let eu = server.client("eu-west-1");
    create_multi_region_trail(&east, "global").await;
    for i in 0..4 {
        create_trail(&eu, &format!("eu-{i}")).await;
    }
    expect_error(
        eu.create_trail()
            .name("eu-4")
            .s3_bucket_name(BUCKET)
            .send()
            .await,
        "MaximumNumberOfTrailsExceededException",
    );
    // A region nobody used yet still holds only the shadow of "global".
    let ap = server.client("ap-southeast-2");
    for i in 0..4 {
        create_trail(&ap, &format!("ap-{i}")).await;
    }
    expect_error(
        ap.create_trail()
            .name("ap-4")
            .s3_bucket_name(BUCKET)
            .send()
            .await,
        "MaximumNumberOfTrailsExceededException",
    );
    // Turning the multi-region trail into a single-region one frees a slot elsewhere.
    east.update_trail()
        .name("global")
        .is_multi_region_trail(false)
        .send()
        .await
        .expect("make single-region");
    create_trail(&eu, "eu-4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_trails_of_multi_region_trails() {
    let server = TestServer::start();
    let home = server.client(REGION);
    let away = server.client("eu-west-1");
    let arn = trail_arn(REGION, "org-wide");
    let created = create_multi_region_trail(&home, "org-wide").await;
    assert_eq!(created.is_multi_region_trail(), Some(true));
    assert_eq!(created.include_global_service_events(), Some(true));
    create_trail(&away, "local-eu").await;

    // Visible from another region by name and by ARN, with its home region.
    for name_or_arn in ["org-wide", arn.as_str()] {
        let shadow = away
            .get_trail()
            .name(name_or_arn)
            .send()
            .await
            .expect("get shadow trail")
            .trail
            .expect("trail");
        assert_eq!(shadow.trail_arn(), Some(arn.as_str()));
        assert_eq!(shadow.home_region(), Some(REGION));
        assert_eq!(shadow.is_multi_region_trail(), Some(true));
    }
    away.get_trail_status()
        .name("org-wide")
        .send()
        .await
        .expect("status of a shadow trail");
    away.get_event_selectors()
        .trail_name("org-wide")
        .send()
        .await
        .expect("selectors of a shadow trail");

    // DescribeTrails includes shadow trails unless asked not to.
    let with_shadows = away.describe_trails().send().await.expect("describe");
    let names: BTreeSet<_> = with_shadows
        .trail_list()
        .iter()
        .filter_map(|t| t.name())
        .collect();
    assert_eq!(names, BTreeSet::from(["org-wide", "local-eu"]));
    let without = away
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .expect("describe");
    let names: Vec<_> = without
        .trail_list()
        .iter()
        .filter_map(|t| t.name())
        .collect();
    assert_eq!(names, ["local-eu"]);
    let home_view = home
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .expect("describe");
    let names: Vec<_> = home_view
        .trail_list()
        .iter()
        .filter_map(|t| t.name())
        .collect();
    assert_eq!(
        names,
        ["org-wide"],
        "the home region describes its own trail, not eu-west-1's"
    );

    // Changes must come from the home region.
    let home_region_only = |op: &str, message: String| {
        assert!(
            message.contains(REGION),
            "{op}: message names the home region: {message}"
        );
    };
    home_region_only(
        "UpdateTrail",
        expect_error(
            away.update_trail()
                .name("org-wide")
                .s3_key_prefix("x")
                .send()
                .await,
            "InvalidHomeRegionException",
        ),
    );
    home_region_only(
        "DeleteTrail",
        expect_error(
            away.delete_trail().name(&arn).send().await,
            "InvalidHomeRegionException",
        ),
    );
    home_region_only(
        "StartLogging",
        expect_error(
            away.start_logging().name("org-wide").send().await,
            "InvalidHomeRegionException",
        ),
    );
    home_region_only(
        "StopLogging",
        expect_error(
            away.stop_logging().name("org-wide").send().await,
            "InvalidHomeRegionException",
        ),
    );
    expect_error(
        away.put_event_selectors()
            .trail_name("org-wide")
            .event_selectors(
                aws_sdk_cloudtrail::types::EventSelector::builder()
                    .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
                    .build(),
            )
            .send()
            .await,
        "InvalidHomeRegionException",
    );
    expect_error(
        away.put_insight_selectors()
            .trail_name("org-wide")
            .insight_selectors(
                aws_sdk_cloudtrail::types::InsightSelector::builder()
                    .insight_type(aws_sdk_cloudtrail::types::InsightType::ApiCallRateInsight)
                    .build(),
            )
            .send()
            .await,
        "InvalidHomeRegionException",
    );
    let trail = home
        .get_trail()
        .name("org-wide")
        .send()
        .await
        .expect("get")
        .trail
        .expect("trail");
    assert_eq!(
        trail.s3_key_prefix(),
        None,
        "a rejected update changed the trail"
    );

    // From the home region the trail can become single-region, and the shadow disappears.
    home.update_trail()
        .name("org-wide")
        .is_multi_region_trail(false)
        .send()
        .await
        .expect("update at home");
    expect_error_naming(
        away.get_trail().name("org-wide").send().await,
        "TrailNotFoundException",
        "org-wide",
    );
    let names: Vec<_> = away
        .describe_trails()
        .send()
        .await
        .expect("describe")
        .trail_list()
        .iter()
        .filter_map(|t| t.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["local-eu"]);
    home.delete_trail()
        .name("org-wide")
        .send()
        .await
        .expect("delete at home");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_region_trails_of_another_region_are_not_found() {
    let server = TestServer::start();
    let east = server.client(REGION);
    let west = server.client("us-west-2");
    create_trail(&east, "east-only").await;
    let arn = trail_arn(REGION, "east-only");
    for name_or_arn in ["east-only", arn.as_str()] {
        expect_error_naming(
            west.get_trail().name(name_or_arn).send().await,
            "TrailNotFoundException",
            name_or_arn,
        );
        expect_error(
            west.get_trail_status().name(name_or_arn).send().await,
            "TrailNotFoundException",
        );
        expect_error(
            west.delete_trail().name(name_or_arn).send().await,
            "TrailNotFoundException",
        );
        expect_error(
            west.update_trail()
                .name(name_or_arn)
                .s3_key_prefix("x")
                .send()
                .await,
            "TrailNotFoundException",
        );
        expect_error(
            west.start_logging().name(name_or_arn).send().await,
            "TrailNotFoundException",
        );
    }
    let described = west.describe_trails().send().await.expect("describe");
    assert!(described.trail_list().is_empty(), "{described:?}");
    east.get_trail()
        .name("east-only")
        .send()
        .await
        .expect("still there at home");
}

/// The DescribeTrails documentation: "To return information about a trail in another
/// Region, you must specify its trail ARN."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_trails_by_arn_returns_trail_of_another_region() {
    let server = TestServer::start();
    let east = server.client(REGION);
    let west = server.client("us-west-2");
    create_trail(&east, "east-only").await;
    let arn = trail_arn(REGION, "east-only");
    let described = west
        .describe_trails()
        .trail_name_list(&arn)
        .send()
        .await
        .expect("describe by ARN");
    let arns: Vec<_> = described
        .trail_list()
        .iter()
        .filter_map(|t| t.trail_arn())
        .collect();
    assert_eq!(arns, [arn.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_trails_by_name_and_arn() {
    let server = TestServer::start();
    let client = server.client(REGION);
    for name in ["alpha", "beta", "gamma"] {
        create_trail(&client, name).await;
    }
    let described = client
        .describe_trails()
        .trail_name_list("alpha")
        .trail_name_list(trail_arn(REGION, "gamma"))
        .trail_name_list("does-not-exist")
        .send()
        .await
        .expect("describe a list");
    let names: BTreeSet<_> = described
        .trail_list()
        .iter()
        .filter_map(|t| t.name())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["alpha", "gamma"]),
        "unknown names are skipped"
    );
    let all = client.describe_trails().send().await.expect("describe all");
    assert_eq!(all.trail_list().len(), 3);
    for trail in all.trail_list() {
        let name = trail.name().expect("name");
        assert_eq!(trail.trail_arn(), Some(trail_arn(REGION, name).as_str()));
        assert_eq!(trail.home_region(), Some(REGION));
    }
    expect_error(
        client
            .describe_trails()
            .trail_name_list("-bad-")
            .send()
            .await,
        "InvalidTrailNameException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_trail_changes_and_clears_settings() {
    let server = TestServer::start();
    let client = server.client(REGION);
    server.create_bucket("second-bucket");
    server.create_topic(REGION, "topic-1");
    create_trail(&client, "changing").await;
    let updated = client
        .update_trail()
        .name(trail_arn(REGION, "changing"))
        .s3_bucket_name("second-bucket")
        .s3_key_prefix("new/prefix")
        .sns_topic_name(format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:topic-1"))
        .enable_log_file_validation(true)
        .is_multi_region_trail(true)
        .kms_key_id("alias/trail-key")
        .send()
        .await
        .expect("update trail");
    assert_eq!(updated.name(), Some("changing"));
    assert_eq!(updated.s3_bucket_name(), Some("second-bucket"));
    assert_eq!(updated.s3_key_prefix(), Some("new/prefix"));
    assert_eq!(
        updated.sns_topic_arn(),
        Some(format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:topic-1").as_str())
    );
    assert_eq!(updated.log_file_validation_enabled(), Some(true));
    assert_eq!(updated.is_multi_region_trail(), Some(true));
    assert_eq!(
        updated.kms_key_id(),
        Some(format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/trail-key").as_str())
    );

    let trail = client
        .get_trail()
        .name("changing")
        .send()
        .await
        .expect("get")
        .trail
        .expect("trail");
    assert_eq!(trail.s3_bucket_name(), Some("second-bucket"));
    assert_eq!(trail.s3_key_prefix(), Some("new/prefix"));
    assert_eq!(trail.is_multi_region_trail(), Some(true));
    assert_eq!(trail.log_file_validation_enabled(), Some(true));

    // Omitted members stay; empty strings clear optional settings.
    let cleared = client
        .update_trail()
        .name("changing")
        .s3_key_prefix("")
        .sns_topic_name("")
        .kms_key_id("")
        .send()
        .await
        .expect("clear settings");
    assert_eq!(cleared.s3_key_prefix(), None);
    assert_eq!(cleared.sns_topic_arn(), None);
    assert_eq!(cleared.kms_key_id(), None);
    assert_eq!(cleared.s3_bucket_name(), Some("second-bucket"));
    assert_eq!(cleared.log_file_validation_enabled(), Some(true));
    assert_eq!(cleared.is_multi_region_trail(), Some(true));

    expect_error_naming(
        client
            .update_trail()
            .name("nope")
            .s3_key_prefix("x")
            .send()
            .await,
        "TrailNotFoundException",
        "nope",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_trails_pages_through_every_region() {
    let server = TestServer::builder()
        .arg("--list-trails-page-size")
        .arg("2")
        .start();
    let east = server.client(REGION);
    let eu = server.client("eu-west-1");
    let mut expected = BTreeSet::new();
    for name in ["east-a", "east-b", "east-c"] {
        create_trail(&east, name).await;
        expected.insert((trail_arn(REGION, name), name.to_owned(), REGION.to_owned()));
    }
    create_trail(&eu, "west-a").await;
    expected.insert((
        trail_arn("eu-west-1", "west-a"),
        "west-a".to_owned(),
        "eu-west-1".to_owned(),
    ));
    create_multi_region_trail(&eu, "w-multi").await;
    expected.insert((
        trail_arn("eu-west-1", "w-multi"),
        "w-multi".to_owned(),
        "eu-west-1".to_owned(),
    ));

    for client in [&east, &eu] {
        let mut seen = Vec::new();
        let mut page_sizes = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_trails()
                .set_next_token(token.clone())
                .send()
                .await
                .expect("list trails page");
            page_sizes.push(page.trails().len());
            for info in page.trails() {
                seen.push((
                    info.trail_arn().expect("TrailARN").to_owned(),
                    info.name().expect("Name").to_owned(),
                    info.home_region().expect("HomeRegion").to_owned(),
                ));
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
            assert!(
                page_sizes.len() < 10,
                "ListTrails never ends: {page_sizes:?}"
            );
        }
        assert_eq!(page_sizes, [2, 2, 1], "pages of --list-trails-page-size 2");
        let unique: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "a trail was listed twice: {seen:?}"
        );
        assert_eq!(unique, expected);
    }

    // The SDK paginator follows the same tokens.
    let mut paginated = Vec::new();
    let mut pages = east.list_trails().into_paginator().items().send();
    while let Some(item) = pages.next().await {
        paginated.push(
            item.expect("paginated item")
                .name()
                .expect("name")
                .to_owned(),
        );
    }
    assert_eq!(paginated.len(), 5, "{paginated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_trails_without_paging_and_when_empty() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let empty = client.list_trails().send().await.expect("list");
    assert!(empty.trails().is_empty());
    assert_eq!(empty.next_token(), None);
    for i in 0..3 {
        create_trail(&client, &format!("trail-{i}")).await;
    }
    let listed = client.list_trails().send().await.expect("list");
    assert_eq!(listed.trails().len(), 3);
    assert_eq!(listed.next_token(), None, "default page holds 3 trails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_id_is_fixed_by_the_data_dir() {
    let server = TestServer::start();
    let created = create_trail(&server.client("ca-central-1"), "acct").await;
    assert_eq!(
        created.trail_arn(),
        Some(format!("arn:aws:cloudtrail:ca-central-1:{ACCOUNT_ID}:trail/acct").as_str())
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
