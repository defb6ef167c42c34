//! The matching matrix: every sample event against every sample selector set,
//! each cell the expected answer of `TrailSelectors::matches`.

use crate::test_event::TestEvent;
use crate::{
    validate_advanced_event_selectors, validate_event_selectors, AdvancedEventSelector,
    AdvancedFieldSelector, DataResource, EventSelector, Operator, ReadWriteType, TrailSelectors,
};

const ACCOUNT: &str = "111122223333";

fn basic(selector: EventSelector) -> TrailSelectors {
    validate_event_selectors(vec![selector]).expect("sample basic selector is valid")
}

fn data_resource(type_name: &str, values: &[&str]) -> DataResource {
    DataResource {
        r#type: Some(type_name.to_string()),
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    }
}

fn advanced(selectors: Vec<Vec<AdvancedFieldSelector>>) -> TrailSelectors {
    let selectors = selectors
        .into_iter()
        .map(|field_selectors| AdvancedEventSelector {
            name: None,
            field_selectors,
        })
        .collect();
    validate_advanced_event_selectors(selectors).expect("sample advanced selector is valid")
}

fn fs(field: &str, operator: Operator, values: &[&str]) -> AdvancedFieldSelector {
    AdvancedFieldSelector::new(field).with(operator, values.iter().copied())
}

fn selector_sets() -> Vec<(&'static str, TrailSelectors)> {
    let lambda_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:helloworld");
    let table_arn = format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders");
    vec![
        ("S1 default", TrailSelectors::default_for_new_trail()),
        (
            "S2 basic write-only management",
            basic(EventSelector {
                read_write_type: Some(ReadWriteType::WriteOnly),
                ..EventSelector::default()
            }),
        ),
        (
            "S3 basic read-only management without kms",
            basic(EventSelector {
                read_write_type: Some(ReadWriteType::ReadOnly),
                exclude_management_event_sources: Some(vec!["kms.amazonaws.com".into()]),
                ..EventSelector::default()
            }),
        ),
        (
            "S4 basic one bucket, no management",
            basic(EventSelector {
                include_management_events: Some(false),
                data_resources: Some(vec![data_resource(
                    "AWS::S3::Object",
                    &["arn:aws:s3:::logs-bucket/"],
                )]),
                ..EventSelector::default()
            }),
        ),
        (
            "S5 basic all S3 + one function + management",
            basic(EventSelector {
                data_resources: Some(vec![
                    data_resource("AWS::S3::Object", &["arn:aws:s3"]),
                    data_resource("AWS::Lambda::Function", &[&lambda_arn]),
                ]),
                ..EventSelector::default()
            }),
        ),
        (
            "S6 basic write-only one table, no management",
            basic(EventSelector {
                read_write_type: Some(ReadWriteType::WriteOnly),
                include_management_events: Some(false),
                data_resources: Some(vec![data_resource("AWS::DynamoDB::Table", &[&table_arn])]),
                ..EventSelector::default()
            }),
        ),
        (
            "S7 advanced write management without kms",
            advanced(vec![vec![
                fs("eventCategory", Operator::Equals, &["Management"]),
                fs("readOnly", Operator::Equals, &["false"]),
                fs("eventSource", Operator::NotEquals, &["kms.amazonaws.com"]),
            ]]),
        ),
        (
            "S8 advanced one bucket except tmp/",
            advanced(vec![vec![
                fs("eventCategory", Operator::Equals, &["Data"]),
                fs("resources.type", Operator::Equals, &["AWS::S3::Object"]),
                AdvancedFieldSelector::new("resources.ARN")
                    .with(Operator::StartsWith, ["arn:aws:s3:::logs-bucket/"])
                    .with(Operator::NotStartsWith, ["arn:aws:s3:::logs-bucket/tmp/"]),
            ]]),
        ),
        (
            "S9 advanced Lambda Invoke by alice",
            advanced(vec![vec![
                fs("eventCategory", Operator::Equals, &["Data"]),
                fs(
                    "resources.type",
                    Operator::Equals,
                    &["AWS::Lambda::Function"],
                ),
                fs("eventName", Operator::Equals, &["Invoke"]),
                fs("userIdentity.arn", Operator::EndsWith, &[":user/alice"]),
            ]]),
        ),
        (
            "S10 advanced KMS VPC endpoint denials",
            advanced(vec![vec![
                fs("eventCategory", Operator::Equals, &["NetworkActivity"]),
                fs("eventSource", Operator::Equals, &["kms.amazonaws.com"]),
                fs("errorCode", Operator::Equals, &["VpceAccessDenied"]),
            ]]),
        ),
        (
            "S11 advanced read management or any table",
            advanced(vec![
                vec![
                    fs("eventCategory", Operator::Equals, &["Management"]),
                    fs("readOnly", Operator::Equals, &["true"]),
                ],
                vec![
                    fs("eventCategory", Operator::Equals, &["Data"]),
                    fs(
                        "resources.type",
                        Operator::Equals,
                        &["AWS::DynamoDB::Table"],
                    ),
                ],
            ]),
        ),
    ]
}

fn events() -> Vec<(&'static str, TestEvent)> {
    let lambda = |name: &str| {
        TestEvent::data(
            "lambda.amazonaws.com",
            "Invoke",
            false,
            "AWS::Lambda::Function",
            &format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"),
        )
    };
    let dynamodb = |name: &str, read_only: bool| {
        TestEvent::data(
            "dynamodb.amazonaws.com",
            name,
            read_only,
            "AWS::DynamoDB::Table",
            &format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders"),
        )
    };
    let console_login = TestEvent {
        read_only: None,
        event_type: "AwsConsoleSignIn".into(),
        ..TestEvent::management("signin.amazonaws.com", "ConsoleLogin", false)
    };
    let legacy_s3 = TestEvent {
        category: String::new(),
        ..TestEvent::s3_object("PutObject", false, "logs-bucket", "old/1.log")
    };
    vec![
        (
            "a ec2 RunInstances (write)",
            TestEvent::management("ec2.amazonaws.com", "RunInstances", false),
        ),
        (
            "b ec2 DescribeInstances (read)",
            TestEvent::management("ec2.amazonaws.com", "DescribeInstances", true),
        ),
        (
            "c kms Decrypt (read)",
            TestEvent::management("kms.amazonaws.com", "Decrypt", true),
        ),
        (
            "d kms CreateKey (write)",
            TestEvent::management("kms.amazonaws.com", "CreateKey", false),
        ),
        (
            "e s3 PutObject logs-bucket/app",
            TestEvent::s3_object("PutObject", false, "logs-bucket", "app/1.log"),
        ),
        (
            "f s3 GetObject logs-bucket/tmp",
            TestEvent::s3_object("GetObject", true, "logs-bucket", "tmp/x"),
        ),
        (
            "g s3 GetObject other-bucket",
            TestEvent::s3_object("GetObject", true, "other-bucket", "k"),
        ),
        ("h lambda Invoke helloworld", lambda("helloworld")),
        ("i lambda Invoke helloworld2", lambda("helloworld2")),
        ("j dynamodb PutItem (write)", dynamodb("PutItem", false)),
        ("k dynamodb GetItem (read)", dynamodb("GetItem", true)),
        (
            "l network kms Decrypt",
            TestEvent::network("kms.amazonaws.com", "Decrypt", "vpce-1"),
        ),
        (
            "m network s3 GetObject",
            TestEvent::network("s3.amazonaws.com", "GetObject", "vpce-1"),
        ),
        (
            "n insight ec2",
            TestEvent::insight("ec2.amazonaws.com", "RunInstances"),
        ),
        ("o ConsoleLogin (no readOnly)", console_login),
        ("p legacy s3 PutObject (no eventCategory)", legacy_s3),
    ]
}

/// Rows follow `events()`, columns follow `selector_sets()` (S1..S11).
#[rustfmt::skip]
const EXPECTED: [[bool; 11]; 16] = {
    const T: bool = true;
    const F: bool = false;
    [
        //  S1 S2 S3 S4 S5 S6 S7 S8 S9 S10 S11
        [T, T, F, F, T, F, T, F, F, F, F], // a ec2 write
        [T, F, T, F, T, F, F, F, F, F, T], // b ec2 read
        [T, F, F, F, T, F, F, F, F, F, T], // c kms read
        [T, T, F, F, T, F, F, F, F, F, F], // d kms write
        [F, F, F, T, T, F, F, T, F, F, F], // e s3 logs-bucket/app
        [F, F, F, T, T, F, F, F, F, F, F], // f s3 logs-bucket/tmp
        [F, F, F, F, T, F, F, F, F, F, F], // g s3 other-bucket
        [F, F, F, F, T, F, F, F, T, F, F], // h lambda helloworld
        [F, F, F, F, F, F, F, F, T, F, F], // i lambda helloworld2
        [F, F, F, F, F, T, F, F, F, F, T], // j dynamodb write
        [F, F, F, F, F, F, F, F, F, F, T], // k dynamodb read
        [F, F, F, F, F, F, F, F, F, T, F], // l network kms
        [F, F, F, F, F, F, F, F, F, F, F], // m network s3
        [F, F, F, F, F, F, F, F, F, F, F], // n insight
        [T, F, F, F, T, F, F, F, F, F, F], // o ConsoleLogin
        [F, F, F, T, T, F, F, T, F, F, F], // p legacy s3
    ]
};

#[test]
fn every_event_against_every_selector_set() {
    let sets = selector_sets();
    let events = events();
    assert_eq!(sets.len(), EXPECTED[0].len());
    assert_eq!(events.len(), EXPECTED.len());
    let mut wrong = Vec::new();
    for ((event_name, event), row) in events.iter().zip(EXPECTED) {
        for ((set_name, selectors), expected) in sets.iter().zip(row) {
            let actual = selectors.matches(event);
            if actual != expected {
                wrong.push(format!(
                    "{event_name} x {set_name}: expected {expected}, got {actual}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "mismatches:\n{}", wrong.join("\n"));
}

#[test]
fn unvalidated_selectors_never_panic_and_select_nothing_odd() {
    let odd = TrailSelectors::Basic(vec![EventSelector {
        data_resources: Some(vec![DataResource {
            r#type: None,
            values: None,
        }]),
        include_management_events: Some(false),
        ..EventSelector::default()
    }]);
    let weird_field = TrailSelectors::Advanced(vec![AdvancedEventSelector {
        name: None,
        field_selectors: vec![fs("eventTime", Operator::Equals, &["x"])],
    }]);
    for (_, event) in events() {
        assert!(!odd.matches(&event));
        assert!(!weird_field.matches(&event));
    }
}
