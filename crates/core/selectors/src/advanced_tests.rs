//! One test per advanced-selector validation rule, asserting its message.

use super::*;

fn fs(field: &str) -> AdvancedFieldSelector {
    AdvancedFieldSelector::new(field)
}

fn category(value: &str) -> AdvancedFieldSelector {
    fs("eventCategory").with(Operator::Equals, [value])
}

fn named(name: &str, field_selectors: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
    AdvancedEventSelector {
        name: Some(name.to_string()),
        field_selectors,
    }
}

fn unnamed(field_selectors: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
    AdvancedEventSelector {
        name: None,
        field_selectors,
    }
}

fn data_selector(extra: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
    let mut field_selectors = vec![
        category("Data"),
        fs("resources.type").with(Operator::Equals, ["AWS::S3::Object"]),
    ];
    field_selectors.extend(extra);
    named("Log S3", field_selectors)
}

fn management_selector(extra: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
    let mut field_selectors = vec![category("Management")];
    field_selectors.extend(extra);
    named("Mgmt", field_selectors)
}

fn network_selector(extra: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
    let mut field_selectors = vec![
        category("NetworkActivity"),
        fs("eventSource").with(Operator::Equals, ["kms.amazonaws.com"]),
    ];
    field_selectors.extend(extra);
    named("Net", field_selectors)
}

fn ok(selectors: Vec<AdvancedEventSelector>) {
    if let Err(err) = validate_advanced_event_selectors(selectors) {
        panic!("expected valid, got: {err}");
    }
}

fn message(selectors: Vec<AdvancedEventSelector>) -> String {
    validate_advanced_event_selectors(selectors)
        .expect_err("expected invalid")
        .message
}

#[test]
fn valid_selectors_are_stored_unchanged() {
    let input = vec![
        management_selector(vec![
            fs("readOnly").with(Operator::Equals, ["false"]),
            fs("eventSource").with(
                Operator::NotEquals,
                ["kms.amazonaws.com", "rdsdata.amazonaws.com"],
            ),
        ]),
        data_selector(vec![
            fs("resources.ARN")
                .with(Operator::StartsWith, ["arn:aws:s3:::bucket/"])
                .with(Operator::NotStartsWith, ["arn:aws:s3:::bucket/tmp/"]),
            fs("eventName").with(Operator::NotEquals, ["GetObject"]),
            fs("eventSource").with(Operator::Equals, ["s3.amazonaws.com"]),
            fs("eventType").with(Operator::Equals, ["AwsApiCall"]),
            fs("readOnly").with(Operator::Equals, ["true"]),
            fs("userIdentity.arn").with(Operator::EndsWith, ["HumanRole"]),
            fs("sessionCredentialFromConsole").with(Operator::NotEquals, ["true"]),
        ]),
        network_selector(vec![
            fs("errorCode").with(Operator::Equals, ["VpceAccessDenied"]),
            fs("vpcEndpointId").with(Operator::NotEquals, ["vpce-1234"]),
            fs("eventName").with(Operator::StartsWith, ["Get"]),
            fs("userIdentity.arn").with(
                Operator::NotStartsWith,
                ["arn:aws:iam::111122223333:role/x"],
            ),
        ]),
    ];
    assert_eq!(
        validate_advanced_event_selectors(input.clone()).unwrap(),
        TrailSelectors::Advanced(input)
    );
}

#[test]
fn at_least_one_selector() {
    assert_eq!(
        message(vec![]),
        "AdvancedEventSelectors must contain at least one advanced event selector"
    );
}

#[test]
fn each_selector_needs_a_field_selector() {
    assert_eq!(
        message(vec![named("Empty", vec![])]),
        "Advanced event selector 'Empty': FieldSelectors must contain at least one field selector"
    );
}

#[test]
fn unnamed_selectors_are_named_by_position() {
    let good = management_selector(vec![]);
    assert_eq!(
        message(vec![good, unnamed(vec![])]),
        "Advanced event selector 2: FieldSelectors must contain at least one field selector"
    );
    assert!(message(vec![named("", vec![])]).starts_with("Advanced event selector 1: "));
}

#[test]
fn unknown_field_names_are_refused() {
    assert_eq!(
        message(vec![management_selector(vec![fs("eventTime").with(Operator::Equals, ["x"])])]),
        "Advanced event selector 'Mgmt': field 'eventTime' is not supported; supported fields are eventCategory, eventSource, eventName, eventType, readOnly, resources.type, resources.ARN, userIdentity.arn, sessionCredentialFromConsole, errorCode and vpcEndpointId"
    );
    assert!(message(vec![management_selector(vec![
        fs("resources.arn").with(Operator::Equals, ["x"])
    ])])
    .contains("field 'resources.arn' is not supported"));
}

#[test]
fn a_field_selector_needs_an_operator() {
    assert_eq!(
        message(vec![data_selector(vec![fs("eventName")])]),
        "Advanced event selector 'Log S3': field 'eventName' has no operator; specify at least one of Equals, StartsWith, EndsWith, NotEquals, NotStartsWith or NotEndsWith"
    );
}

#[test]
fn operator_lists_must_not_be_empty() {
    let empty: [&str; 0] = [];
    assert_eq!(
        message(vec![data_selector(vec![
            fs("eventName").with(Operator::StartsWith, empty)
        ])]),
        "Advanced event selector 'Log S3': operator StartsWith of field 'eventName' has no values"
    );
}

#[test]
fn values_are_1_to_2048_characters() {
    let longest = "a".repeat(2048);
    ok(vec![data_selector(vec![
        fs("eventName").with(Operator::Equals, [longest])
    ])]);
    assert_eq!(
        message(vec![data_selector(vec![fs("eventName").with(Operator::Equals, [""])])]),
        "Advanced event selector 'Log S3': a value of operator Equals of field 'eventName' is 0 characters long; values must be 1 to 2048 characters"
    );
    let too_long = "a".repeat(2049);
    assert!(message(vec![data_selector(vec![
        fs("eventName").with(Operator::EndsWith, [too_long])
    ])])
    .contains("is 2049 characters long; values must be 1 to 2048 characters"));
}

#[test]
fn a_field_is_used_at_most_once_per_selector() {
    assert_eq!(
        message(vec![data_selector(vec![
            fs("eventName").with(Operator::Equals, ["PutObject"]),
            fs("eventName").with(Operator::Equals, ["GetObject"]),
        ])]),
        "Advanced event selector 'Log S3': field 'eventName' appears more than once; use each field at most once per selector"
    );
}

#[test]
fn event_category_is_required() {
    assert_eq!(
        message(vec![named(
            "No category",
            vec![fs("readOnly").with(Operator::Equals, ["true"])]
        )]),
        "Advanced event selector 'No category': field 'eventCategory' is required"
    );
}

#[test]
fn event_category_supports_only_equals() {
    assert_eq!(
        message(vec![named("c", vec![fs("eventCategory").with(Operator::StartsWith, ["Data"])])]),
        "Advanced event selector 'c': field 'eventCategory' supports only the Equals operator; got StartsWith"
    );
}

#[test]
fn event_category_takes_one_value() {
    assert_eq!(
        message(vec![named(
            "c",
            vec![fs("eventCategory").with(Operator::Equals, ["Management", "Data"])]
        )]),
        "Advanced event selector 'c': field 'eventCategory' takes exactly one value; got 2"
    );
}

#[test]
fn event_category_values_for_trails() {
    assert_eq!(
        message(vec![named("c", vec![category("management")])]),
        "Advanced event selector 'c': value 'management' is not valid for field 'eventCategory'; valid values are Management, Data and NetworkActivity"
    );
    assert_eq!(
        message(vec![named("c", vec![category("Insight")])]),
        "Advanced event selector 'c': value 'Insight' for field 'eventCategory' is valid only for event data stores; trails accept Management, Data and NetworkActivity"
    );
    for eds_only in ["ConfigurationItem", "Evidence", "ActivityAuditLog"] {
        assert!(message(vec![named("c", vec![category(eds_only)])])
            .contains("valid only for event data stores"));
    }
}

#[test]
fn read_only_supports_only_equals() {
    assert_eq!(
        message(vec![data_selector(vec![fs("readOnly").with(Operator::NotEquals, ["true"])])]),
        "Advanced event selector 'Log S3': field 'readOnly' supports only the Equals operator; got NotEquals"
    );
}

#[test]
fn read_only_values_are_true_or_false() {
    assert_eq!(
        message(vec![management_selector(vec![fs("readOnly").with(Operator::Equals, ["True"])])]),
        "Advanced event selector 'Mgmt': value 'True' is not valid for field 'readOnly'; valid values are true and false"
    );
}

#[test]
fn management_selectors_accept_only_category_source_and_read_only() {
    for field in [
        "eventName",
        "eventType",
        "resources.type",
        "resources.ARN",
        "userIdentity.arn",
        "sessionCredentialFromConsole",
        "errorCode",
        "vpcEndpointId",
    ] {
        let msg = message(vec![management_selector(vec![
            fs(field).with(Operator::Equals, ["x"])
        ])]);
        assert_eq!(
            msg,
            format!("Advanced event selector 'Mgmt': field '{field}' is not supported for Management events on a trail; supported fields are eventCategory, eventSource and readOnly")
        );
    }
}

#[test]
fn management_event_source_only_not_equals_kms_or_rdsdata() {
    assert_eq!(
        message(vec![management_selector(vec![fs("eventSource").with(Operator::Equals, ["kms.amazonaws.com"])])]),
        "Advanced event selector 'Mgmt': field 'eventSource' supports only the NotEquals operator for Management events; got Equals"
    );
    assert_eq!(
        message(vec![management_selector(vec![fs("eventSource").with(Operator::NotEquals, ["s3.amazonaws.com"])])]),
        "Advanced event selector 'Mgmt': value 's3.amazonaws.com' is not valid for field 'eventSource'; valid values are kms.amazonaws.com and rdsdata.amazonaws.com"
    );
}

#[test]
fn data_selectors_need_resources_type() {
    assert_eq!(
        message(vec![named("d", vec![category("Data")])]),
        "Advanced event selector 'd': field 'resources.type' is required for Data events"
    );
}

#[test]
fn resources_type_supports_only_equals() {
    assert_eq!(
        message(vec![named(
            "d",
            vec![category("Data"), fs("resources.type").with(Operator::StartsWith, ["AWS::S3::"])]
        )]),
        "Advanced event selector 'd': field 'resources.type' supports only the Equals operator; got StartsWith"
    );
}

#[test]
fn resources_type_takes_one_value() {
    assert_eq!(
        message(vec![named(
            "d",
            vec![
                category("Data"),
                fs("resources.type").with(Operator::Equals, ["AWS::S3::Object", "AWS::Lambda::Function"]),
            ]
        )]),
        "Advanced event selector 'd': field 'resources.type' takes exactly one value; got 2; add another selector for each further value"
    );
}

#[test]
fn resources_type_values_are_resource_types() {
    ok(vec![named(
        "sns",
        vec![
            category("Data"),
            fs("resources.type").with(Operator::Equals, ["AWS::SNS::Topic"]),
        ],
    )]);
    assert_eq!(
        message(vec![named(
            "d",
            vec![category("Data"), fs("resources.type").with(Operator::Equals, ["S3Object"])]
        )]),
        "Advanced event selector 'd': value 'S3Object' is not valid for field 'resources.type'; resource types look like AWS::S3::Object"
    );
}

#[test]
fn resources_arn_equals_needs_a_complete_arn() {
    ok(vec![data_selector(vec![fs("resources.ARN")
        .with(Operator::Equals, ["arn:aws:s3:::bucket/key"])
        .with(Operator::EndsWith, [".jpg"])])]);
    assert_eq!(
        message(vec![data_selector(vec![fs("resources.ARN").with(Operator::NotEquals, ["bucket/key"])])]),
        "Advanced event selector 'Log S3': value 'bucket/key' is not valid for field 'resources.ARN' with NotEquals; Equals and NotEquals need a complete ARN (use StartsWith for a prefix)"
    );
}

#[test]
fn session_credential_from_console_equals_or_not_equals_true_false() {
    assert_eq!(
        message(vec![data_selector(vec![fs("sessionCredentialFromConsole").with(Operator::StartsWith, ["t"])])]),
        "Advanced event selector 'Log S3': field 'sessionCredentialFromConsole' supports only the Equals and NotEquals operators; got StartsWith"
    );
    assert!(message(vec![data_selector(vec![fs("sessionCredentialFromConsole").with(Operator::Equals, ["yes"])])])
        .contains("value 'yes' is not valid for field 'sessionCredentialFromConsole'; valid values are true and false"));
}

#[test]
fn data_selectors_refuse_network_fields() {
    for field in ["errorCode", "vpcEndpointId"] {
        let msg = message(vec![data_selector(vec![
            fs(field).with(Operator::Equals, ["x"])
        ])]);
        assert!(
            msg.contains(&format!(
                "field '{field}' is not supported for Data events on a trail"
            )),
            "{msg}"
        );
    }
}

#[test]
fn network_selectors_need_event_source() {
    assert_eq!(
        message(vec![named("n", vec![category("NetworkActivity")])]),
        "Advanced event selector 'n': field 'eventSource' is required for NetworkActivity events"
    );
}

#[test]
fn network_event_source_is_one_equals_value() {
    assert_eq!(
        message(vec![named(
            "n",
            vec![category("NetworkActivity"), fs("eventSource").with(Operator::NotEquals, ["kms.amazonaws.com"])]
        )]),
        "Advanced event selector 'n': field 'eventSource' supports only the Equals operator for NetworkActivity events; got NotEquals"
    );
    assert!(message(vec![named(
        "n",
        vec![
            category("NetworkActivity"),
            fs("eventSource").with(Operator::Equals, ["kms.amazonaws.com", "s3.amazonaws.com"]),
        ]
    )])
    .contains("field 'eventSource' takes exactly one value; got 2"));
}

#[test]
fn network_error_code_is_vpce_access_denied() {
    assert_eq!(
        message(vec![network_selector(vec![fs("errorCode").with(Operator::Equals, ["AccessDenied"])])]),
        "Advanced event selector 'Net': value 'AccessDenied' is not valid for field 'errorCode'; valid values are VpceAccessDenied"
    );
    assert!(message(vec![network_selector(vec![
        fs("errorCode").with(Operator::NotEquals, ["VpceAccessDenied"])
    ])])
    .contains("field 'errorCode' supports only the Equals operator"));
}

#[test]
fn network_selectors_refuse_data_and_management_fields() {
    for field in [
        "readOnly",
        "resources.type",
        "resources.ARN",
        "eventType",
        "sessionCredentialFromConsole",
    ] {
        let msg = message(vec![network_selector(vec![
            fs(field).with(Operator::Equals, ["true"])
        ])]);
        assert!(
            msg.contains(&format!(
                "field '{field}' is not supported for NetworkActivity events on a trail"
            )),
            "{msg}"
        );
    }
}

#[test]
fn at_most_500_values_across_all_selectors() {
    // Each selector: eventCategory (1) + resources.type (1) + 98 eventName values = 100.
    let names: Vec<String> = (0..98).map(|i| format!("Event{i}")).collect();
    let selector = data_selector(vec![fs("eventName").with(Operator::Equals, names.clone())]);
    ok(vec![selector.clone(); 5]);
    let mut too_many = vec![selector; 5];
    too_many.push(management_selector(vec![]));
    assert_eq!(
        message(too_many),
        "Advanced event selectors can have at most 500 values for all conditions in all selectors of a trail; got 501"
    );
}

#[test]
fn selector_name_at_most_1000_characters() {
    ok(vec![named(&"n".repeat(1000), vec![category("Management")])]);
    assert_eq!(
        message(vec![named(&"n".repeat(1001), vec![category("Management")])]),
        "Advanced event selector 1: Name is 1001 characters long; names can be at most 1000 characters"
    );
}

#[test]
fn long_user_text_is_shortened_in_messages() {
    let field = "x".repeat(900);
    let msg = message(vec![management_selector(vec![
        fs(&field).with(Operator::Equals, ["v"])
    ])]);
    assert!(msg.contains(&format!("field '{}...' is not supported", "x".repeat(200))));
}

// ---------------------------------------------------------------- event data stores

fn store_error(input: Vec<AdvancedEventSelector>) -> String {
    validate_event_data_store_selectors(&input)
        .expect_err("selectors should be refused")
        .message
}

#[test]
fn event_data_store_management_selectors_accept_the_extra_fields() {
    let selector = management_selector(vec![
        fs("eventName").with(Operator::StartsWith, ["Create"]),
        fs("eventType").with(Operator::Equals, ["AwsApiCall"]),
        fs("userIdentity.arn").with(Operator::NotEquals, ["arn:aws:iam::111122223333:user/bot"]),
        fs("sessionCredentialFromConsole").with(Operator::Equals, ["true"]),
        fs("readOnly").with(Operator::Equals, ["false"]),
    ]);
    assert_eq!(
        validate_event_data_store_selectors(std::slice::from_ref(&selector)),
        Ok(EventDataStoreKind::CloudTrailEvents)
    );
    // The same selector on a trail: eventName is an event-data-store field.
    let message = validate_advanced_event_selectors(vec![selector])
        .unwrap_err()
        .message;
    assert!(
        message.contains("field 'eventName' is not supported for Management events on a trail"),
        "{message}"
    );
}

#[test]
fn event_data_store_kinds_from_their_category() {
    for (value, kind) in [
        ("ConfigurationItem", EventDataStoreKind::ConfigurationItem),
        ("ActivityAuditLog", EventDataStoreKind::ActivityAuditLog),
        ("Insight", EventDataStoreKind::Insight),
        ("Evidence", EventDataStoreKind::Evidence),
    ] {
        assert_eq!(
            validate_event_data_store_selectors(&[unnamed(vec![category(value)])]),
            Ok(kind)
        );
    }
    assert_eq!(
        validate_event_data_store_selectors(&[management_selector(vec![]), data_selector(vec![]),]),
        Ok(EventDataStoreKind::CloudTrailEvents)
    );
}

#[test]
fn event_data_store_other_categories_take_only_event_category() {
    let message = store_error(vec![named(
        "Config",
        vec![
            category("ConfigurationItem"),
            fs("readOnly").with(Operator::Equals, ["true"]),
        ],
    )]);
    assert_eq!(
        message,
        "Advanced event selector 'Config': field 'readOnly' is not supported for ConfigurationItem events on an event data store; supported fields are eventCategory"
    );
}

#[test]
fn event_data_store_kinds_do_not_mix() {
    let message = store_error(vec![
        management_selector(vec![]),
        unnamed(vec![category("ConfigurationItem")]),
    ]);
    assert_eq!(
        message,
        "Advanced event selectors of an event data store must all select CloudTrail events (Management, Data, NetworkActivity) or all the same other category; got Management and ConfigurationItem"
    );
}

#[test]
fn event_data_store_selector_count_and_unknown_category() {
    let six = (0..6).map(|_| management_selector(vec![])).collect();
    assert_eq!(
        store_error(six),
        "An event data store can have at most 5 advanced event selectors; got 6"
    );
    assert_eq!(
        store_error(vec![unnamed(vec![category("Logs")])]),
        "Advanced event selector 1: value 'Logs' is not valid for field 'eventCategory'; valid values are Management, Data, NetworkActivity, Insight, ConfigurationItem, Evidence and ActivityAuditLog"
    );
    assert_eq!(
        store_error(vec![]),
        "AdvancedEventSelectors must contain at least one advanced event selector"
    );
}
