//! Properties: validation never panics, validated selectors survive the wire,
//! StartsWith and Equals select exactly what they say.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::test_event::TestEvent;
use crate::{
    validate_advanced_event_selectors, validate_event_selectors, AdvancedEventSelector,
    AdvancedFieldSelector, DataResource, EventSelector, Operator, ReadWriteType, TrailSelectors,
};

const FIELDS: [&str; 12] = [
    "eventCategory",
    "eventSource",
    "eventName",
    "eventType",
    "readOnly",
    "resources.type",
    "resources.ARN",
    "userIdentity.arn",
    "sessionCredentialFromConsole",
    "errorCode",
    "vpcEndpointId",
    "eventTime",
];

/// Text that is sometimes meaningful to selectors and sometimes arbitrary.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Management".to_string()),
        Just("Data".to_string()),
        Just("NetworkActivity".to_string()),
        Just("true".to_string()),
        Just("AWS::S3::Object".to_string()),
        Just("kms.amazonaws.com".to_string()),
        Just("arn:aws:s3".to_string()),
        Just("arn:aws:s3:::bucket/".to_string()),
        Just(String::new()),
        "arn:aws:[a-z0-9]{0,8}:[a-z0-9-]{0,10}:[0-9]{0,12}:[a-zA-Z0-9/:*_.-]{0,20}",
        any::<String>(),
    ]
}

fn read_write_type() -> impl Strategy<Value = ReadWriteType> {
    prop_oneof![
        Just(ReadWriteType::ReadOnly),
        Just(ReadWriteType::WriteOnly),
        Just(ReadWriteType::All)
    ]
}

fn any_event_selector() -> impl Strategy<Value = EventSelector> {
    let data_resource = (
        option::of(prop_oneof![
            Just("AWS::S3::Object".to_string()),
            Just("AWS::Lambda::Function".to_string()),
            Just("AWS::DynamoDB::Table".to_string()),
            text(),
        ]),
        option::of(vec(text(), 0..4)),
    )
        .prop_map(|(r#type, values)| DataResource { r#type, values });
    (
        option::of(read_write_type()),
        option::of(any::<bool>()),
        option::of(vec(data_resource, 0..4)),
        option::of(vec(text(), 0..3)),
    )
        .prop_map(|(read_write_type, include, data, exclude)| EventSelector {
            read_write_type,
            include_management_events: include,
            data_resources: data,
            exclude_management_event_sources: exclude,
        })
}

fn any_field_selector() -> impl Strategy<Value = AdvancedFieldSelector> {
    let field = prop_oneof![
        proptest::sample::select(&FIELDS[..]).prop_map(str::to_string),
        any::<String>()
    ];
    let operand = || option::of(vec(text(), 0..3));
    (
        field,
        operand(),
        operand(),
        operand(),
        operand(),
        operand(),
        operand(),
    )
        .prop_map(
            |(
                field,
                equals,
                starts_with,
                ends_with,
                not_equals,
                not_starts_with,
                not_ends_with,
            )| {
                AdvancedFieldSelector {
                    field,
                    equals,
                    starts_with,
                    ends_with,
                    not_equals,
                    not_starts_with,
                    not_ends_with,
                }
            },
        )
}

fn any_advanced_selector() -> impl Strategy<Value = AdvancedEventSelector> {
    (option::of(text()), vec(any_field_selector(), 0..5)).prop_map(|(name, field_selectors)| {
        AdvancedEventSelector {
            name,
            field_selectors,
        }
    })
}

/// Basic selectors that pass validation.
fn valid_event_selector() -> impl Strategy<Value = EventSelector> {
    let value = prop_oneof![
        Just("arn:aws:s3".to_string()),
        "[a-z0-9]{3,20}".prop_map(|bucket| format!("arn:aws:s3:::{bucket}/")),
        ("[a-z0-9]{3,20}", "[a-zA-Z0-9/._*-]{0,30}")
            .prop_map(|(bucket, prefix)| format!("arn:aws:s3:::{bucket}/{prefix}")),
    ];
    (
        option::of(read_write_type()),
        vec(value, 1..4),
        option::of(proptest::sample::subsequence(
            vec!["kms.amazonaws.com", "rdsdata.amazonaws.com"],
            0..=2,
        )),
        any::<bool>(),
    )
        .prop_map(
            |(read_write_type, values, exclude, include)| EventSelector {
                read_write_type,
                include_management_events: Some(include),
                data_resources: Some(vec![DataResource {
                    r#type: Some("AWS::S3::Object".to_string()),
                    values: Some(values),
                }]),
                exclude_management_event_sources: exclude
                    .map(|sources| sources.into_iter().map(str::to_string).collect()),
            },
        )
}

/// Advanced selectors that pass validation.
fn valid_advanced_selector() -> impl Strategy<Value = AdvancedEventSelector> {
    let name = option::of("[ -~]{1,40}");
    let event_names = vec("[A-Za-z]{1,20}", 1..4);
    let prefix = "[a-z0-9]{3,20}".prop_map(|bucket| format!("arn:aws:s3:::{bucket}/"));
    (name, event_names, prefix).prop_map(|(name, event_names, prefix)| AdvancedEventSelector {
        name,
        field_selectors: vec![
            AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, ["Data"]),
            AdvancedFieldSelector::new("resources.type")
                .with(Operator::Equals, ["AWS::S3::Object"]),
            AdvancedFieldSelector::new("eventName").with(Operator::NotEquals, event_names),
            AdvancedFieldSelector::new("resources.ARN").with(Operator::StartsWith, [prefix]),
        ],
    })
}

fn s3_data_selector(extra: AdvancedFieldSelector) -> TrailSelectors {
    let selector = AdvancedEventSelector {
        name: None,
        field_selectors: vec![
            AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, ["Data"]),
            AdvancedFieldSelector::new("resources.type")
                .with(Operator::Equals, ["AWS::S3::Object"]),
            extra,
        ],
    };
    validate_advanced_event_selectors(vec![selector]).expect("valid by construction")
}

fn s3_event(name: &str, arn: &str) -> TestEvent {
    TestEvent::data("s3.amazonaws.com", name, false, "AWS::S3::Object", arn)
}

fn assert_round_trips(validated: &TrailSelectors) {
    let stored = serde_json::to_string(validated).expect("serialises");
    let back: TrailSelectors = serde_json::from_str(&stored).expect("deserialises");
    assert_eq!(&back, validated);
    let wire = match validated {
        TrailSelectors::Basic(selectors) => {
            let json = serde_json::to_string(selectors).expect("serialises");
            TrailSelectors::Basic(serde_json::from_str(&json).expect("deserialises"))
        }
        TrailSelectors::Advanced(selectors) => {
            let json = serde_json::to_string(selectors).expect("serialises");
            TrailSelectors::Advanced(serde_json::from_str(&json).expect("deserialises"))
        }
    };
    assert_eq!(&wire, validated);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn basic_validation_never_panics(input in vec(any_event_selector(), 0..7)) {
        if let Ok(validated) = validate_event_selectors(input) {
            assert_round_trips(&validated);
            let _ = validated.matches(&s3_event("PutObject", "arn:aws:s3:::bucket/key"));
        }
    }

    #[test]
    fn advanced_validation_never_panics(input in vec(any_advanced_selector(), 0..4)) {
        if let Ok(validated) = validate_advanced_event_selectors(input) {
            assert_round_trips(&validated);
            let _ = validated.matches(&s3_event("PutObject", "arn:aws:s3:::bucket/key"));
        }
    }

    #[test]
    fn validated_basic_selectors_round_trip(input in vec(valid_event_selector(), 1..=5)) {
        let validated = validate_event_selectors(input).expect("valid by construction");
        assert_round_trips(&validated);
        // Validation is idempotent: the echoed form validates to itself.
        let TrailSelectors::Basic(echoed) = validated.clone() else { unreachable!() };
        prop_assert_eq!(validate_event_selectors(echoed).expect("still valid"), validated);
    }

    #[test]
    fn validated_advanced_selectors_round_trip(input in vec(valid_advanced_selector(), 1..=5)) {
        let validated = validate_advanced_event_selectors(input).expect("valid by construction");
        assert_round_trips(&validated);
    }

    #[test]
    fn starts_with_selects_every_arn_with_that_prefix(
        bucket in "[a-z0-9]{3,20}",
        prefix in "[a-zA-Z0-9/._-]{0,20}",
        suffix in any::<String>(),
        other in "arn:aws:s3:::[a-z0-9/]{0,30}",
    ) {
        let x = format!("arn:aws:s3:::{bucket}/{prefix}");
        let selectors = s3_data_selector(AdvancedFieldSelector::new("resources.ARN").with(Operator::StartsWith, [x.clone()]));
        let below = format!("{x}{suffix}");
        prop_assert!(selectors.matches(&s3_event("GetObject", &below)));
        prop_assert_eq!(selectors.matches(&s3_event("GetObject", &other)), other.starts_with(&x));
    }

    #[test]
    fn equals_selects_exactly_its_values(
        values in vec("[A-Za-z]{1,12}", 1..5),
        probe in "[A-Za-z]{1,12}",
    ) {
        let selectors = s3_data_selector(AdvancedFieldSelector::new("eventName").with(Operator::Equals, values.clone()));
        for value in &values {
            prop_assert!(selectors.matches(&s3_event(value, "arn:aws:s3:::bucket/key")));
        }
        prop_assert_eq!(
            selectors.matches(&s3_event(&probe, "arn:aws:s3:::bucket/key")),
            values.contains(&probe)
        );
    }

    #[test]
    fn basic_prefix_value_selects_every_object_below_it(
        bucket in "[a-z0-9]{3,20}",
        prefix in "[a-zA-Z0-9/._-]{0,20}",
        suffix in "[a-zA-Z0-9/._-]{0,20}",
    ) {
        let value = format!("arn:aws:s3:::{bucket}/{prefix}");
        let selectors = validate_event_selectors(vec![EventSelector {
            data_resources: Some(vec![DataResource {
                r#type: Some("AWS::S3::Object".into()),
                values: Some(vec![value.clone()]),
            }]),
            ..EventSelector::default()
        }]).expect("valid by construction");
        let object = format!("{value}{suffix}");
        prop_assert!(selectors.matches(&s3_event("PutObject", &object)));
    }
}
