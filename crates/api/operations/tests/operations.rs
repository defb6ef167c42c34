use chrono::{TimeZone, Utc};
use opentrail_operations::*;
use serde_json::json;

#[test]
fn all_61_operations_alphabetical_and_round_trip_by_name() {
    assert_eq!(Operation::ALL.len(), 61);
    let names: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(Operation::ALL[0], Operation::AddTags);
    for op in Operation::ALL {
        assert_eq!(Operation::from_name(op.name()), Some(op));
        assert_eq!(op.to_string(), op.name());
        let mut errors = op.errors().to_vec();
        errors.sort();
        assert_eq!(errors, op.errors());
    }
    assert_eq!(Operation::from_name("createTrail"), None);
    assert_eq!(Operation::from_name("Nope"), None);
}

#[test]
fn services_iam_actions_and_http() {
    assert_eq!(
        Operation::CreateTrail.iam_action(),
        "cloudtrail:CreateTrail"
    );
    assert_eq!(
        Operation::LookupEvents.iam_action(),
        "cloudtrail:LookupEvents"
    );
    assert_eq!(
        Operation::PutAuditEvents.iam_action(),
        "cloudtrail-data:PutAuditEvents"
    );
    assert_eq!(Operation::CreateTrail.service(), Service::CloudTrail);
    assert_eq!(Operation::PutAuditEvents.service(), Service::CloudTrailData);
    assert_eq!(Operation::CreateTrail.http(), ("POST", "/"));
    assert_eq!(
        Operation::PutAuditEvents.http(),
        ("POST", "/PutAuditEvents")
    );
    assert!(Operation::CreateTrail
        .errors()
        .contains(&"TrailAlreadyExistsException"));
    assert!(Operation::PutAuditEvents
        .errors()
        .contains(&"ChannelNotFound"));
    assert_eq!(
        Operation::ALL
            .iter()
            .filter(|op| op.service() == Service::CloudTrailData)
            .count(),
        1
    );
    assert_eq!(
        SERVICE_PREFIXES,
        [
            "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.",
            "CloudTrail_20131101."
        ]
    );
    assert_eq!(CLOUDTRAIL_SIGNING_NAME, "cloudtrail");
    assert_eq!(CLOUDTRAIL_DATA_SIGNING_NAME, "cloudtrail-data");
    assert_eq!(Service::CloudTrailData.signing_name(), "cloudtrail-data");
    assert_eq!(Service::CloudTrail.protocol(), "json");
    assert_eq!(Service::CloudTrailData.protocol(), "rest-json");
}

#[test]
fn marker_types_tie_operations_to_shapes() {
    fn input_of<O: OperationShape>(json: serde_json::Value) -> O::Input {
        serde_json::from_value(json).unwrap()
    }
    assert_eq!(
        <op::CreateTrail as OperationShape>::OPERATION,
        Operation::CreateTrail
    );
    let input: CreateTrailRequest =
        input_of::<op::CreateTrail>(json!({"Name": "t", "S3BucketName": "b"}));
    assert_eq!(input.name, "t");
    assert_eq!(Operation::CreateTrail.input_shape(), "CreateTrailRequest");
    assert_eq!(Operation::CreateTrail.output_shape(), "CreateTrailResponse");
    let _: PutAuditEventsResponse = serde_json::from_value::<
        <op::PutAuditEvents as OperationShape>::Output,
    >(json!({"failed": [], "successful": []}))
    .unwrap();
}

#[test]
fn create_trail_request_deserialises() {
    let input: CreateTrailRequest = serde_json::from_str(
        r#"{"Name":"t","S3BucketName":"b","IsMultiRegionTrail":true,"TagsList":[{"Key":"k","Value":"v"}]}"#,
    )
    .unwrap();
    assert_eq!(input.name, "t");
    assert_eq!(input.s3_bucket_name, "b");
    assert_eq!(input.is_multi_region_trail, Some(true));
    assert_eq!(input.include_global_service_events, None);
    let tags = input.tags_list.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].key, "k");
    assert_eq!(tags[0].value.as_deref(), Some("v"));
    // A required member missing is a deserialisation error.
    assert!(serde_json::from_str::<CreateTrailRequest>(r#"{"Name":"t"}"#).is_err());
}

#[test]
fn responses_use_botocore_member_names_and_omit_none() {
    let trail = Trail {
        name: Some("t".into()),
        s3_bucket_name: Some("b".into()),
        is_multi_region_trail: Some(true),
        sns_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:topic".into()),
        ..Default::default()
    };
    let out = DescribeTrailsResponse {
        trail_list: Some(vec![trail.clone()]),
    };
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"trailList": [{
            "Name": "t",
            "S3BucketName": "b",
            "IsMultiRegionTrail": true,
            "SnsTopicARN": "arn:aws:sns:us-east-1:123456789012:topic"
        }]})
    );
    let get = GetTrailResponse { trail: Some(trail) };
    let value = serde_json::to_value(&get).unwrap();
    assert_eq!(value["Trail"]["Name"], "t");
    assert_eq!(value["Trail"].as_object().unwrap().len(), 4);
    assert_eq!(
        serde_json::to_string(&GetTrailResponse::default()).unwrap(),
        "{}"
    );
    let back: DescribeTrailsResponse =
        serde_json::from_value(serde_json::to_value(&out).unwrap()).unwrap();
    assert_eq!(back, out);
}

#[test]
fn enums_round_trip_and_keep_unknown_values() {
    let key: LookupAttributeKey = serde_json::from_str(r#""EventName""#).unwrap();
    assert_eq!(key, LookupAttributeKey::EventName);
    assert_eq!(serde_json::to_string(&key).unwrap(), r#""EventName""#);
    let rw: ReadWriteType = serde_json::from_str(r#""WriteOnly""#).unwrap();
    assert_eq!(rw, ReadWriteType::WriteOnly);
    assert_eq!(rw.as_str(), "WriteOnly");
    let status = EventDataStoreStatus::from("PENDING_DELETION");
    assert_eq!(status, EventDataStoreStatus::PendingDeletion);
    assert_eq!(status.to_string(), "PENDING_DELETION");

    let unknown: ReadWriteType = serde_json::from_str(r#""Sometimes""#).unwrap();
    assert_eq!(unknown, ReadWriteType::Unknown("Sometimes".into()));
    assert_eq!(unknown.as_str(), "Sometimes");
    assert_eq!(serde_json::to_string(&unknown).unwrap(), r#""Sometimes""#);
    assert_eq!(ReadWriteType::VALUES, ["ReadOnly", "WriteOnly", "All"]);
    for value in QueryStatus::VALUES {
        let parsed = QueryStatus::from(*value);
        assert!(!matches!(parsed, QueryStatus::Unknown(_)));
        assert_eq!(String::from(parsed), *value);
    }
}

#[test]
fn timestamps_accept_numbers_and_strings() {
    let expected = Timestamp(Utc.timestamp_millis_opt(1_688_989_503_123).unwrap());
    let from_number: Timestamp = serde_json::from_str("1688989503.123").unwrap();
    assert_eq!(from_number, expected);
    let from_rfc3339: Timestamp = serde_json::from_str(r#""2023-07-10T11:45:03.123Z""#).unwrap();
    assert_eq!(from_rfc3339, expected);
    let from_numeric_string: Timestamp = serde_json::from_str(r#""1688989503""#).unwrap();
    assert_eq!(
        from_numeric_string,
        Timestamp(Utc.timestamp_opt(1_688_989_503, 0).unwrap())
    );
    let from_integer: Timestamp = serde_json::from_str("1688989503").unwrap();
    assert_eq!(from_integer, from_numeric_string);
    assert_eq!(serde_json::to_string(&expected).unwrap(), "1688989503.123");
    // Whole seconds are written as an integer.
    assert_eq!(serde_json::to_string(&from_integer).unwrap(), "1688989503");
    let before_epoch = Timestamp(Utc.timestamp_opt(-5, 0).unwrap());
    assert_eq!(serde_json::to_string(&before_epoch).unwrap(), "-5");
    assert_eq!(expected.epoch_seconds(), 1688989503.123);
    // Sub-millisecond input is rounded.
    let rounded: Timestamp = serde_json::from_str("1688989503.1226").unwrap();
    assert_eq!(rounded, expected);
    assert!(serde_json::from_str::<Timestamp>(r#""yesterday""#).is_err());
    assert!(serde_json::from_str::<Timestamp>("true").is_err());
}

#[test]
fn blobs_are_base64() {
    let blob = Blob(b"hello".to_vec());
    assert_eq!(serde_json::to_string(&blob).unwrap(), r#""aGVsbG8=""#);
    let back: Blob = serde_json::from_str(r#""aGVsbG8=""#).unwrap();
    assert_eq!(back, blob);
    assert!(serde_json::from_str::<Blob>(r#""not base64!""#).is_err());
}

#[test]
fn lookup_events_request_with_attributes_and_numeric_start_time() {
    let input: LookupEventsRequest = serde_json::from_value(json!({
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}],
        "StartTime": 1688989503.123,
        "EndTime": "2023-07-10T12:00:00Z",
        "MaxResults": 50
    }))
    .unwrap();
    let attrs = input.lookup_attributes.as_deref().unwrap();
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0].attribute_key, LookupAttributeKey::EventName);
    assert_eq!(attrs[0].attribute_value, "CreateTrail");
    assert_eq!(
        input.start_time,
        Some(Timestamp(
            Utc.timestamp_millis_opt(1_688_989_503_123).unwrap()
        ))
    );
    assert_eq!(
        input.end_time,
        Some(Timestamp(Utc.timestamp_opt(1_688_990_400, 0).unwrap()))
    );
    assert_eq!(input.max_results, Some(50));
    assert_eq!(input.next_token, None);
}

#[test]
fn put_audit_events_query_bindings() {
    assert_eq!(
        PUT_AUDIT_EVENTS_REQUEST_QUERY_MEMBERS,
        [("channelArn", "channelArn"), ("externalId", "externalId")]
    );
    assert!(HTTP_BINDINGS
        .iter()
        .all(|b| b.shape == "PutAuditEventsRequest" && b.location == "querystring"));
    let input: PutAuditEventsRequest = serde_json::from_value(json!({
        "auditEvents": [{"id": "1", "eventData": "{}"}],
        "channelArn": "arn:aws:cloudtrail:us-east-1:123456789012:channel/c"
    }))
    .unwrap();
    assert_eq!(input.audit_events[0].id, "1");
    assert_eq!(input.external_id, None);
}
