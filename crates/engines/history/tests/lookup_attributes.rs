//! Every lookup attribute, over real AWS records and synthetic ones, against a naive
//! model of LookupEvents.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use opentrail_history::{EventSummary, HistoryCategory, LookupAttributeKey, LookupRequest};
use opentrail_model::EventRecord;
use opentrail_operations::LookupEventsRequest;
use serde_json::json;
use std::collections::BTreeSet;

/// The recipient account of every conformance record (the files are named for the
/// bucket owner's account).
const CONFORMANCE_ACCOUNT: &str = "123837392027";

fn conformance_request(account: &str, input: LookupEventsRequest) -> LookupRequest {
    LookupRequest {
        account: account.into(),
        region: "us-east-1".into(),
        now: Utc.with_ymd_and_hms(2023, 7, 11, 0, 0, 0).unwrap(),
        input,
    }
}

/// The naive answer: management events of the account's stream with `key` = `value`.
fn expected(
    records: &[EventRecord],
    account: &str,
    key: LookupAttributeKey,
    value: &str,
) -> BTreeSet<String> {
    records
        .iter()
        .filter(|record| HistoryCategory::of(record) == Some(HistoryCategory::Management))
        .filter(|record| {
            record.recipient_account_id() == account && record.aws_region() == "us-east-1"
        })
        .filter(|record| EventSummary::of(record).values(key).contains(&value))
        .map(|record| record.event_id().to_owned())
        .collect()
}

#[test]
fn conformance_records_are_found_by_every_attribute() {
    let records = conformance_records();
    assert!(records.len() > 1_000);
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let (flushed, recent) = records.split_at(records.len() - 30);
    for (batch, chunk) in flushed.chunks(100).enumerate() {
        insert(&store, (batch * 100) as u64, chunk);
    }
    store.flush().unwrap();
    insert(&store, flushed.len() as u64, recent);
    assert!(store.stats().segments > 1, "{:?}", store.stats());
    assert!(store.stats().memtable_events > 0, "{:?}", store.stats());

    let mut checked = 0;
    for record in records.iter().step_by(131) {
        let summary = EventSummary::of(record);
        let account = record.recipient_account_id();
        for key in LookupAttributeKey::ALL {
            for value in summary.values(key) {
                let events = all_pages(
                    &store,
                    &conformance_request(account, by_attribute(key.as_str(), value)),
                );
                assert_newest_first(&events);
                let found: Vec<String> = ids(&events);
                let unique: BTreeSet<String> = found.iter().cloned().collect();
                assert_eq!(unique.len(), found.len(), "duplicates for {key:?}={value}");
                let expected = expected(&records, account, key, value);
                assert!(!expected.is_empty());
                assert_eq!(unique, expected, "{key:?}={value}");
                checked += 1;
            }
        }
    }
    assert!(checked > 40);

    // Time-range-only lookups see exactly the window.
    let start = Utc.with_ymd_and_hms(2023, 7, 10, 12, 10, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2023, 7, 10, 12, 20, 0).unwrap();
    let input = LookupEventsRequest {
        start_time: seconds(start.timestamp() as f64),
        end_time: seconds(end.timestamp() as f64),
        ..Default::default()
    };
    let events = all_pages(&store, &conformance_request(CONFORMANCE_ACCOUNT, input));
    let expected: BTreeSet<String> = records
        .iter()
        .filter(|record| HistoryCategory::of(record).is_some())
        .filter(|record| record.recipient_account_id() == CONFORMANCE_ACCOUNT)
        .filter(|record| {
            record
                .event_time()
                .is_some_and(|time| time >= start && time <= end)
        })
        .map(|record| record.event_id().to_owned())
        .collect();
    assert!(!expected.is_empty());
    assert_newest_first(&events);
    assert_eq!(ids(&events).into_iter().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn conformance_events_keep_their_original_json() {
    let records = conformance_records();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    insert(&store, 0, &records);
    store.flush().unwrap();
    for record in records.iter().step_by(97) {
        let page = store
            .lookup(&conformance_request(
                record.recipient_account_id(),
                by_attribute("EventId", record.event_id()),
            ))
            .unwrap();
        assert_eq!(page.events().len(), 1);
        let event = &page.events()[0];
        assert_eq!(event.cloud_trail_event.as_deref(), Some(record.json()));
        assert_eq!(
            event_seconds(event),
            record.event_time().map(|time| time.timestamp())
        );
        assert_eq!(event.event_name.as_deref(), Some(record.event_name()));
        assert!(page.next_token.is_none());
    }
}

#[test]
fn synthetic_attributes_and_event_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let base = now().timestamp() - 3_600;
    let assumed = Synthetic::new("assumed", at(base))
        .name("sts.amazonaws.com", "AssumeRole")
        .read_only(false)
        .identity(json!({
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:build-42",
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/build-42"),
            "accountId": ACCOUNT,
            "accessKeyId": "ASIATEMP",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "Deployer"}}
        }))
        .resources(json!([
            {"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": format!("arn:aws:iam::{ACCOUNT}:role/Target")},
            {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::logs"}
        ]));
    let root = Synthetic::new("root", at(base + 1)).identity(json!({
        "type": "Root", "principalId": ACCOUNT, "arn": format!("arn:aws:iam::{ACCOUNT}:root"), "accountId": ACCOUNT
    }));
    let plain = Synthetic::new("plain", at(base + 2));
    insert(
        &store,
        0,
        &[assumed.record(), root.record(), plain.record()],
    );

    let only = |key: &str, value: &str| {
        ids(store
            .lookup(&request(now(), by_attribute(key, value)))
            .unwrap()
            .events())
    };
    assert_eq!(only("Username", "build-42"), ["assumed"]);
    assert_eq!(only("Username", "Deployer"), Vec::<String>::new());
    assert_eq!(only("Username", "root"), ["root"]);
    assert_eq!(only("Username", "alice"), ["plain"]);
    assert_eq!(only("AccessKeyId", "ASIATEMP"), ["assumed"]);
    assert_eq!(only("AccessKeyId", "AKIAALICE"), ["plain"]);
    assert_eq!(only("ReadOnly", "false"), ["assumed"]);
    assert_eq!(only("ReadOnly", "true"), ["plain", "root"]);
    assert_eq!(only("ResourceType", "AWS::S3::Bucket"), ["assumed"]);
    assert_eq!(only("ResourceName", "arn:aws:s3:::logs"), ["assumed"]);
    // The name or ID inside a recorded ARN finds the event too.
    assert_eq!(only("ResourceName", "logs"), ["assumed"]);
    assert_eq!(only("ResourceName", "Target"), ["assumed"]);
    assert_eq!(
        only("ResourceName", "arn:aws:s3:::log"),
        Vec::<String>::new()
    );
    assert_eq!(only("EventSource", "sts.amazonaws.com"), ["assumed"]);
    assert_eq!(only("EventName", "DescribeInstances"), ["plain", "root"]);
    assert_eq!(only("EventName", "describeinstances"), Vec::<String>::new());
    assert_eq!(only("EventId", "root"), ["root"]);
    assert_eq!(only("EventId", "missing"), Vec::<String>::new());

    let page = store
        .lookup(&request(now(), by_attribute("EventId", "assumed")))
        .unwrap();
    let wire = serde_json::to_value(&page).unwrap();
    assert_eq!(
        wire,
        json!({"Events": [{
            "EventId": "assumed",
            "EventName": "AssumeRole",
            "ReadOnly": "false",
            "AccessKeyId": "ASIATEMP",
            "EventTime": base,
            "EventSource": "sts.amazonaws.com",
            "Username": "build-42",
            "Resources": [
                {"ResourceType": "AWS::IAM::Role", "ResourceName": format!("arn:aws:iam::{ACCOUNT}:role/Target")},
                {"ResourceType": "AWS::S3::Bucket", "ResourceName": "arn:aws:s3:::logs"}
            ],
            "CloudTrailEvent": assumed.record().json()
        }]})
    );
    let empty = store
        .lookup(&request(now(), by_attribute("EventId", "plain")))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&empty).unwrap()["Events"][0]["Resources"],
        json!([])
    );
}

#[test]
fn insights_are_only_returned_for_the_insight_category() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let time = at(now().timestamp() - 60);
    insert(
        &store,
        0,
        &[
            insight("insight-1", time, "s3.amazonaws.com", "PutObject"),
            Synthetic::new("management-1", time)
                .name("s3.amazonaws.com", "PutBucketPolicy")
                .record(),
        ],
    );
    for flushed in [false, true] {
        if flushed {
            store.flush().unwrap();
        }
        let management = store
            .lookup(&request(now(), LookupEventsRequest::default()))
            .unwrap();
        assert_eq!(ids(management.events()), ["management-1"]);
        let mut input = by_attribute("EventSource", "s3.amazonaws.com");
        input.event_category = Some("insight".into());
        let insights = store.lookup(&request(now(), input)).unwrap();
        assert_eq!(ids(insights.events()), ["insight-1"]);
        assert_eq!(
            insights.events()[0].event_name.as_deref(),
            Some("PutObject")
        );
        let mut input = by_attribute("EventName", "PutObject");
        input.event_category = Some("insight".into());
        assert_eq!(
            ids(store.lookup(&request(now(), input)).unwrap().events()),
            ["insight-1"]
        );
        let mut input = by_attribute("EventId", "management-1");
        input.event_category = Some("insight".into());
        assert!(store
            .lookup(&request(now(), input))
            .unwrap()
            .events()
            .is_empty());
    }
}

/// The (type, name) pairs of an Event's `Resources`.
fn resource_pairs(event: &opentrail_operations::Event) -> Vec<(String, String)> {
    event
        .resources
        .iter()
        .flatten()
        .map(|resource| {
            (
                resource.resource_type.clone().unwrap_or_default(),
                resource.resource_name.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn conformance_resources_are_found_by_name_id_and_arn() {
    let records = conformance_records();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    insert(&store, 0, &records);
    store.flush().unwrap();
    let found = |key: &str, value: &str| -> BTreeSet<String> {
        all_pages(
            &store,
            &conformance_request(CONFORMANCE_ACCOUNT, by_attribute(key, value)),
        )
        .iter()
        .map(|event| event.event_id.clone().unwrap())
        .collect()
    };
    let event_of = |event_id: &str| {
        let page = store
            .lookup(&conformance_request(
                CONFORMANCE_ACCOUNT,
                by_attribute("EventId", event_id),
            ))
            .unwrap();
        page.events()[0].clone()
    };

    // An IAM role by its name: CreateRole names it in requestParameters.roleName.
    let role = "stratus-red-team-ec2-get-password-data-role";
    let create_role = "ff709962-49b6-494d-8198-cdf0f7e8e666";
    let by_role = found("ResourceName", role);
    assert!(by_role.contains(create_role), "{by_role:?}");
    // ... and AssumeRole, which names it by ARN (requestParameters.roleArn, resources[]).
    let assume_role = "4bd2a6f6-dddc-49e6-ba7d-08f73e809e64";
    assert!(by_role.contains(assume_role), "{by_role:?}");
    let role_arn = format!("arn:aws:iam::{CONFORMANCE_ACCOUNT}:role/{role}");
    let by_role_arn = found("ResourceName", &role_arn);
    assert!(by_role_arn.contains(assume_role), "{by_role_arn:?}");
    assert!(by_role_arn.is_subset(&by_role));
    assert_eq!(
        resource_pairs(&event_of(assume_role)),
        [
            ("AWS::IAM::AccessKey", "ASIATFQR7NSC7E2ZIBM2"),
            (
                "AWS::STS::AssumedRole",
                "arn:aws:sts::123837392027:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1688990082523310002"
            ),
            (
                "AWS::STS::AssumedRole",
                "AROATFQR7NSCWWVLB7BES:aws-go-sdk-1688990082523310002"
            ),
            ("AWS::STS::AssumedRole", "aws-go-sdk-1688990082523310002"),
            ("AWS::IAM::Role", role_arn.as_str()),
        ]
        .map(|(resource_type, name)| (resource_type.to_owned(), name.to_owned()))
    );
    assert_eq!(
        resource_pairs(&event_of(create_role)),
        [("AWS::IAM::Role".to_owned(), role.to_owned())]
    );

    // An S3 bucket by its name (CreateBucket records no resources[]) and by its ARN
    // (GetBucket* records list it in resources[]).
    let bucket = "stratus-red-team-ctlr-bucket-zqfsvooxqj";
    let by_bucket = found("ResourceName", bucket);
    let create_bucket: Vec<&EventRecord> = records
        .iter()
        .filter(|record| record.event_name() == "CreateBucket")
        .filter(|record| {
            record
                .request_parameters_json()
                .is_some_and(|json| json.contains(bucket))
        })
        .collect();
    assert!(!create_bucket.is_empty());
    for record in &create_bucket {
        assert!(by_bucket.contains(record.event_id()), "{by_bucket:?}");
    }
    let by_bucket_arn = found("ResourceName", &format!("arn:aws:s3:::{bucket}"));
    assert!(!by_bucket_arn.is_empty());
    assert!(by_bucket_arn.is_subset(&by_bucket));
    assert!(by_bucket.len() > by_bucket_arn.len());
    let with_arn = by_bucket_arn.iter().next().unwrap();
    assert_eq!(
        resource_pairs(&event_of(with_arn)),
        [("AWS::S3::Bucket".to_owned(), bucket.to_owned())]
    );

    // An EC2 instance by its ID, from request parameters of EC2 and SSM calls and the
    // typeless instance ARNs SSM records in resources[].
    let instance = "i-0dbc91f429e48eeed";
    let by_instance = found("ResourceName", instance);
    let names: BTreeSet<&str> = records
        .iter()
        .filter(|record| by_instance.contains(record.event_id()))
        .map(|record| record.event_name())
        .collect();
    for expected in [
        "DescribeInstances",
        "TerminateInstances",
        "SendCommand",
        "UpdateInstanceInformation",
        "ListInstanceAssociations",
    ] {
        assert!(names.contains(expected), "{expected} not in {names:?}");
    }
    let instance_arn = format!("arn:aws:ec2:us-east-1:{CONFORMANCE_ACCOUNT}:instance/{instance}");
    let by_instance_arn = found("ResourceName", &instance_arn);
    assert!(!by_instance_arn.is_empty());
    assert!(by_instance_arn.is_subset(&by_instance));
    let by_type = found("ResourceType", "AWS::EC2::Instance");
    // The rest name a session after the instance: EC2 assumes the instance profile's
    // role with the instance ID as session name (an `AWS::STS::AssumedRole`).
    let sessions: BTreeSet<&str> = records
        .iter()
        .filter(|record| {
            by_instance
                .difference(&by_type)
                .any(|id| id == record.event_id())
        })
        .map(|record| record.event_name())
        .collect();
    assert_eq!(sessions, BTreeSet::from(["AssumeRole"]));

    // A KMS key keeps its ARN as shown; its ID finds the same events.
    let key_arn = "arn:aws:kms:us-east-1:123837392027:key/dad21b23-9915-42bd-981b-2a9f3c8f20c8";
    let by_key_arn = found("ResourceName", key_arn);
    assert!(!by_key_arn.is_empty());
    assert_eq!(
        found("ResourceName", "dad21b23-9915-42bd-981b-2a9f3c8f20c8"),
        by_key_arn
    );
}

#[test]
fn service_identities_are_found_by_the_invoking_service() {
    let records = conformance_records();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    insert(&store, 0, &records);
    let found = |value: &str| -> BTreeSet<String> {
        all_pages(
            &store,
            &conformance_request(CONFORMANCE_ACCOUNT, by_attribute("Username", value)),
        )
        .iter()
        .map(|event| {
            assert_eq!(event.username.as_deref(), Some(value));
            event.event_id.clone().unwrap()
        })
        .collect()
    };
    let by_service = |service: &str| -> BTreeSet<String> {
        records
            .iter()
            .filter(|record| record.user_identity().invoked_by == Some(service))
            .filter(|record| {
                let identity = record.user_identity();
                identity.identity_type == Some("AWSService") || identity.arn.is_none()
            })
            .map(|record| record.event_id().to_owned())
            .collect()
    };
    // `{"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}` (GetBucketAcl).
    let cloudtrail = by_service("cloudtrail.amazonaws.com");
    assert_eq!(cloudtrail.len(), 8);
    assert_eq!(found("cloudtrail.amazonaws.com"), cloudtrail);
    // `{"accountId": ..., "invokedBy": "secretsmanager.amazonaws.com"}`, no type.
    let secretsmanager = by_service("secretsmanager.amazonaws.com");
    assert_eq!(secretsmanager.len(), 40);
    assert_eq!(found("secretsmanager.amazonaws.com"), secretsmanager);
    // An IAM user acting through a service keeps the user's name.
    assert!(found("bert-jan").len() > 100);
}
