//! `routes`: which region's log file of which trail an event goes into.

mod common;

use common::{advanced_selectors, basic_selectors, region, t0, trail, Ev};
use opentrail_delivery::routes;
use opentrail_model::EventRecord;
use serde_json::json;

fn record(ev: Ev) -> EventRecord {
    EventRecord::from_json(&ev.json()).unwrap()
}

fn route(ev: Ev, target: &opentrail_delivery::TrailTarget) -> Option<String> {
    routes(&record(ev), target).map(|r| r.to_string())
}

#[test]
fn region_scope_single_and_multi_region() {
    let single = trail("single", "eu-west-1");
    let mut multi = trail("multi", "eu-west-1");
    multi.is_multi_region = true;
    let eu = || Ev::new(1, "eu-west-1", "ec2.amazonaws.com", "RunInstances");
    let ap = || Ev::new(2, "ap-southeast-2", "ec2.amazonaws.com", "RunInstances");
    assert_eq!(route(eu(), &single).as_deref(), Some("eu-west-1"));
    assert_eq!(route(ap(), &single), None);
    assert_eq!(route(eu(), &multi).as_deref(), Some("eu-west-1"));
    assert_eq!(route(ap(), &multi).as_deref(), Some("ap-southeast-2"));
}

#[test]
fn global_service_events() {
    let iam = || Ev::new(1, "us-east-1", "iam.amazonaws.com", "CreateUser");
    let mut multi = trail("multi", "eu-west-1");
    multi.is_multi_region = true;
    let us_single = trail("us-single", "us-east-1");
    let eu_single = trail("eu-single", "eu-west-1");
    assert_eq!(route(iam(), &multi).as_deref(), Some("us-east-1"));
    assert_eq!(route(iam(), &us_single).as_deref(), Some("us-east-1"));
    assert_eq!(
        route(iam(), &eu_single),
        None,
        "global events are recorded in us-east-1 only"
    );

    let mut no_global = multi.clone();
    no_global.include_global_service_events = false;
    let mut us_no_global = us_single.clone();
    us_no_global.include_global_service_events = false;
    for source in [
        "iam.amazonaws.com",
        "cloudfront.amazonaws.com",
        "route53.amazonaws.com",
    ] {
        let ev = Ev::new(1, "us-east-1", source, "Change");
        assert_eq!(route(ev.clone(), &no_global), None, "{source}");
        assert_eq!(route(ev, &us_no_global), None, "{source}");
    }
    // A regional us-east-1 service is not global.
    let s3 = Ev::new(2, "us-east-1", "s3.amazonaws.com", "CreateBucket");
    assert_eq!(route(s3, &us_no_global).as_deref(), Some("us-east-1"));

    // STS: the global endpoint is global, regional endpoints are not.
    let sts_global =
        Ev::new(3, "us-east-1", "sts.amazonaws.com", "AssumeRole").sts_host("sts.amazonaws.com");
    let sts_regional = Ev::new(4, "us-east-1", "sts.amazonaws.com", "AssumeRole")
        .sts_host("sts.us-east-1.amazonaws.com");
    let sts_eu = Ev::new(5, "eu-west-1", "sts.amazonaws.com", "AssumeRole")
        .sts_host("sts.eu-west-1.amazonaws.com");
    assert_eq!(route(sts_global.clone(), &no_global), None);
    assert_eq!(route(sts_global, &multi).as_deref(), Some("us-east-1"));
    assert_eq!(
        route(sts_regional, &no_global).as_deref(),
        Some("us-east-1")
    );
    assert_eq!(route(sts_eu, &no_global).as_deref(), Some("eu-west-1"));
}

#[test]
fn logging_window_and_account() {
    let mut target = trail("main", "us-east-1");
    let ev = || Ev::new(1, "us-east-1", "ec2.amazonaws.com", "RunInstances");
    assert!(route(ev(), &target).is_some());
    target.logging_since = Some(t0() + chrono::Duration::seconds(1));
    assert_eq!(route(ev(), &target), None, "before logging started");
    target.logging_since = None;
    assert!(route(ev(), &target).is_some());
    target.is_logging = false;
    assert_eq!(route(ev(), &target), None, "not logging");
    target.is_logging = true;
    assert_eq!(
        route(ev().account("210987654321"), &target),
        None,
        "another account"
    );
}

#[test]
fn basic_selectors_decide() {
    let mut target = trail("main", "us-east-1");
    target.selectors = basic_selectors(json!([{
        "ReadWriteType": "WriteOnly",
        "IncludeManagementEvents": true,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::logged-bucket/"]}],
        "ExcludeManagementEventSources": ["kms.amazonaws.com"]
    }]));
    let write = Ev::new(1, "us-east-1", "ec2.amazonaws.com", "RunInstances");
    let read = Ev::new(2, "us-east-1", "ec2.amazonaws.com", "DescribeInstances");
    let kms = Ev::new(3, "us-east-1", "kms.amazonaws.com", "CreateKey");
    let data_in = Ev::new(4, "us-east-1", "s3.amazonaws.com", "PutObject")
        .data("AWS::S3::Object", "arn:aws:s3:::logged-bucket/a.txt");
    let data_out = Ev::new(5, "us-east-1", "s3.amazonaws.com", "PutObject")
        .data("AWS::S3::Object", "arn:aws:s3:::other-bucket/a.txt");
    assert!(route(write, &target).is_some());
    assert_eq!(route(read, &target), None);
    assert_eq!(route(kms, &target), None);
    assert!(route(data_in, &target).is_some());
    assert_eq!(route(data_out, &target), None);

    // The default selectors log management events only.
    let default = trail("default", "us-east-1");
    let data = Ev::new(6, "us-east-1", "s3.amazonaws.com", "GetObject")
        .data("AWS::S3::Object", "arn:aws:s3:::logged-bucket/a.txt");
    assert_eq!(route(data, &default), None);
}

#[test]
fn advanced_selectors_decide() {
    let mut target = trail("main", "us-east-1");
    target.is_multi_region = true;
    target.selectors = advanced_selectors(json!([{
        "Name": "s3 data in one bucket",
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::logged-bucket/"]}
        ]
    }]));
    let data_in = Ev::new(1, "ap-southeast-2", "s3.amazonaws.com", "GetObject")
        .data("AWS::S3::Object", "arn:aws:s3:::logged-bucket/k");
    let data_out = Ev::new(2, "ap-southeast-2", "s3.amazonaws.com", "GetObject")
        .data("AWS::S3::Object", "arn:aws:s3:::else/k");
    let management = Ev::new(3, "ap-southeast-2", "ec2.amazonaws.com", "RunInstances");
    assert_eq!(route(data_in, &target).as_deref(), Some("ap-southeast-2"));
    assert_eq!(route(data_out, &target), None);
    assert_eq!(route(management, &target), None);
    let _ = region("us-east-1");
}

#[test]
fn channel_events_are_never_delivered() {
    // What PutAuditEvents appends: an ActivityAuditLog record of the trail's account.
    let mut multi = trail("multi", "us-east-1");
    multi.is_multi_region = true;
    multi.logging_since = None;
    let channel_event = json!({
        "eventVersion": "1.11",
        "eventCategory": "ActivityAuditLog",
        "eventType": "ActivityLog",
        "eventID": "9d3c0a52-7c5e-4f4e-9a55-1f0c2f1e6a11",
        "eventTime": "2024-05-01T10:00:00Z",
        "awsRegion": "us-east-1",
        "recipientAccountId": multi.account.as_str(),
        "metadata": {"ingestionTime": "2024-05-01T10:00:01Z", "channelARN": "arn:aws:cloudtrail:us-east-1:111122223333:channel/c1"},
        "eventData": {"version": "1.0", "eventSource": "app", "eventName": "Login"},
    });
    let record = EventRecord::from_json(&channel_event.to_string()).unwrap();
    assert_eq!(routes(&record, &multi), None);
    // The same record as a management event would be delivered.
    let mut management = channel_event.clone();
    management["eventCategory"] = json!("Management");
    management["eventSource"] = json!("app.example.com");
    management["eventName"] = json!("Login");
    let record = EventRecord::from_json(&management.to_string()).unwrap();
    assert_eq!(
        routes(&record, &multi).map(|r| r.to_string()).as_deref(),
        Some("us-east-1")
    );
}
