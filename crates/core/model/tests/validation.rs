//! Every validation error, parse error and derived field, one small record at a time.

use opentrail_model::event::{
    parse_log_file, parse_records_ndjson, EventError, EventRecord, MAX_RECORD_BYTES,
};
use opentrail_selectors::EventView;
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "eventVersion": "1.11",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:alice",
            "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": "arn:aws:iam::111122223333:role/Admin",
                    "accountId": "111122223333",
                    "userName": "Admin"
                },
                "attributes": {"creationDate": "2024-05-01T10:00:00Z", "mfaAuthenticated": "false"}
            }
        },
        "eventTime": "2024-05-01T10:11:12Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "192.0.2.1",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"bucketName": "b", "key": "k"},
        "responseElements": null,
        "requestID": "REQ1",
        "eventID": "0d9b4c8c-7a37-4d7f-a1c5-6d3b2e0f9a11",
        "readOnly": true,
        "resources": [
            {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::b/k"},
            {"accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::b"}
        ],
        "eventType": "AwsApiCall",
        "managementEvent": false,
        "recipientAccountId": "111122223333",
        "eventCategory": "Data"
    })
}

fn insight() -> Value {
    json!({
        "eventVersion": "1.07",
        "eventTime": "2024-05-01T10:00:00Z",
        "awsRegion": "us-east-1",
        "eventID": "9a1f2c3d-0000-4000-8000-000000000001",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "111122223333",
        "sharedEventID": "9a1f2c3d-0000-4000-8000-000000000002",
        "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"},
        "eventCategory": "Insight"
    })
}

fn record(value: &Value) -> EventRecord {
    EventRecord::from_json(&value.to_string()).expect("parses")
}

fn with(path: &[&str], new: Value) -> Value {
    let mut value = base();
    let (last, parents) = path.split_last().expect("path");
    let mut at = &mut value;
    for key in parents {
        at = at.get_mut(*key).expect("parent");
    }
    at.as_object_mut()
        .expect("object")
        .insert((*last).to_owned(), new);
    value
}

fn without(key: &str) -> Value {
    let mut value = base();
    value.as_object_mut().expect("object").remove(key);
    value
}

fn error_of(value: &Value) -> EventError {
    record(value).validate().expect_err("must not validate")
}

#[track_caller]
fn assert_error(error: EventError, code: &str, field: &str) {
    assert_eq!(error.code(), code, "{error}");
    assert_eq!(error.field(), Some(field), "{error}");
    assert!(
        error.to_string().contains(field),
        "message names the field: {error}"
    );
}

#[test]
fn the_base_record_is_valid() {
    assert_eq!(record(&base()).validate(), Ok(()));
    assert_eq!(record(&insight()).validate(), Ok(()));
}

#[test]
fn missing_required_fields() {
    for field in [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "eventID",
        "eventType",
    ] {
        assert_error(error_of(&without(field)), "MissingField", field);
        // `null` is the same as absent.
        assert_error(
            error_of(&with(&[field], Value::Null)),
            "MissingField",
            field,
        );
    }
}

#[test]
fn a_missing_recipient_is_taken_from_the_identity_or_missing() {
    for absent in [
        without("recipientAccountId"),
        with(&["recipientAccountId"], Value::Null),
    ] {
        let event = record(&absent);
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(event.recipient_account_id(), "111122223333");
        let mut anonymous = absent.clone();
        anonymous["userIdentity"]
            .as_object_mut()
            .expect("identity")
            .remove("accountId");
        assert_error(error_of(&anonymous), "MissingField", "recipientAccountId");
    }
}

#[test]
fn required_fields_with_bad_values() {
    let cases: Vec<(&str, Value)> = vec![
        ("eventVersion", json!("2.0")),
        ("eventVersion", json!("1.x")),
        ("eventVersion", json!(1.08)),
        ("eventVersion", json!("")),
        ("userIdentity", json!("alice")),
        ("userIdentity", json!([])),
        ("eventTime", json!("2024-05-01 10:11:12Z")),
        ("eventTime", json!("2024-05-01T10:11:12.123Z")),
        ("eventTime", json!("2024-05-01T10:11:12+00:00")),
        ("eventTime", json!("2024-02-30T10:11:12Z")),
        ("eventTime", json!(1714558272)),
        ("eventSource", json!("")),
        ("eventSource", json!(5)),
        ("eventName", json!({"name": "GetObject"})),
        ("awsRegion", json!("EU-WEST-1")),
        ("awsRegion", json!("eu west 1")),
        ("eventID", json!("")),
        ("eventID", json!(42)),
        ("eventType", json!(true)),
        ("recipientAccountId", json!("")),
        ("recipientAccountId", json!("12345")),
        ("recipientAccountId", json!("11112222333a")),
        ("recipientAccountId", json!(111122223333u64)),
    ];
    for (field, value) in cases {
        assert_error(error_of(&with(&[field], value)), "InvalidField", field);
    }
}

#[test]
fn optional_fields_with_wrong_types() {
    let cases: Vec<(&[&str], Value, &str)> = vec![
        (&["sourceIPAddress"], json!(1), "sourceIPAddress"),
        (&["userAgent"], json!([]), "userAgent"),
        (&["errorCode"], json!(5), "errorCode"),
        (&["errorMessage"], json!({}), "errorMessage"),
        (&["requestParameters"], json!("bucket"), "requestParameters"),
        (&["requestParameters"], json!([1]), "requestParameters"),
        (&["responseElements"], json!(5), "responseElements"),
        (&["additionalEventData"], json!(true), "additionalEventData"),
        (&["requestID"], json!(7), "requestID"),
        (&["readOnly"], json!("yes"), "readOnly"),
        (&["readOnly"], json!(1), "readOnly"),
        (
            &["resources"],
            json!({"ARN": "arn:aws:s3:::b"}),
            "resources",
        ),
        (&["resources"], json!([1]), "resources"),
        (&["resources"], json!([null]), "resources"),
        (&["resources"], json!([{"ARN": 5}]), "resources.ARN"),
        (
            &["resources"],
            json!([{"ARNPrefix": []}]),
            "resources.ARNPrefix",
        ),
        (
            &["resources"],
            json!([{"accountId": 1}]),
            "resources.accountId",
        ),
        (
            &["resources"],
            json!([{"ARN": "a", "type": false}]),
            "resources.type",
        ),
        (&["apiVersion"], json!(2), "apiVersion"),
        (&["managementEvent"], json!("maybe"), "managementEvent"),
        (&["sharedEventID"], json!(1), "sharedEventID"),
        (&["vpcEndpointId"], json!(1), "vpcEndpointId"),
        (&["vpcEndpointAccountId"], json!(1), "vpcEndpointAccountId"),
        (&["eventCategory"], json!(""), "eventCategory"),
        (&["eventCategory"], json!(3), "eventCategory"),
        (&["addendum"], json!("late"), "addendum"),
        (
            &["sessionCredentialFromConsole"],
            json!(1),
            "sessionCredentialFromConsole",
        ),
        (&["edgeDeviceDetails"], json!("x"), "edgeDeviceDetails"),
        (&["tlsDetails"], json!([]), "tlsDetails"),
        (&["insightDetails"], json!(0), "insightDetails"),
        (&["serviceEventDetails"], json!("x"), "serviceEventDetails"),
        (&["userIdentity", "type"], json!(1), "userIdentity.type"),
        (
            &["userIdentity", "principalId"],
            json!(1),
            "userIdentity.principalId",
        ),
        (&["userIdentity", "arn"], json!(5), "userIdentity.arn"),
        (
            &["userIdentity", "accountId"],
            json!(111122223333u64),
            "userIdentity.accountId",
        ),
        (
            &["userIdentity", "accessKeyId"],
            json!(true),
            "userIdentity.accessKeyId",
        ),
        (
            &["userIdentity", "userName"],
            json!([]),
            "userIdentity.userName",
        ),
        (
            &["userIdentity", "invokedBy"],
            json!({}),
            "userIdentity.invokedBy",
        ),
        (
            &["userIdentity", "credentialId"],
            json!(1),
            "userIdentity.credentialId",
        ),
        (
            &["userIdentity", "identityProvider"],
            json!(1),
            "userIdentity.identityProvider",
        ),
        (
            &["userIdentity", "sessionContext"],
            json!("x"),
            "userIdentity.sessionContext",
        ),
    ];
    for (path, value, field) in cases {
        assert_error(error_of(&with(path, value)), "InvalidField", field);
    }

    let mut issuer = base();
    issuer["userIdentity"]["sessionContext"]["sessionIssuer"] = json!("Admin");
    assert_error(
        error_of(&issuer),
        "InvalidField",
        "userIdentity.sessionContext.sessionIssuer",
    );
    let mut issuer_name = base();
    issuer_name["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] = json!(1);
    assert_error(
        error_of(&issuer_name),
        "InvalidField",
        "userIdentity.sessionContext.sessionIssuer.userName",
    );
    let mut source_identity = base();
    source_identity["userIdentity"]["sessionContext"]["sourceIdentity"] = json!(1);
    assert_error(
        error_of(&source_identity),
        "InvalidField",
        "userIdentity.sessionContext.sourceIdentity",
    );
}

#[test]
fn resource_errors_name_the_element() {
    let error = error_of(&with(&["resources"], json!([{"ARN": "a"}, {"ARN": 5}])));
    assert!(error.to_string().contains("element 1"), "{error}");
}

#[test]
fn flags_accept_booleans_and_their_strings() {
    for (value, expected) in [
        (json!(true), true),
        (json!("true"), true),
        (json!("false"), false),
    ] {
        let event = record(&with(&["readOnly"], value.clone()));
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(event.read_only(), Some(expected));
        let event = record(&with(&["managementEvent"], value.clone()));
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(event.recorded_management_event(), Some(expected));
        let event = record(&with(&["sessionCredentialFromConsole"], value));
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(event.session_credential_from_console(), Some(expected));
    }
    let event = record(&without("readOnly"));
    assert_eq!(event.validate(), Ok(()));
    assert_eq!(event.read_only(), None);
}

#[test]
fn a_string_that_does_not_decode_is_invalid_not_a_panic() {
    let text = base()
        .to_string()
        .replace("\"GetObject\"", "\"Get\\ud800Object\"");
    let event = EventRecord::from_json(&text).expect("still json");
    assert_eq!(event.event_name(), "");
    assert_error(
        event.validate().expect_err("invalid"),
        "InvalidField",
        "eventName",
    );
}

#[test]
fn record_size_limit() {
    let mut value = base();
    let overhead = value.to_string().len() + r#","pad":"""#.len();
    value["pad"] = json!("x".repeat(MAX_RECORD_BYTES - overhead));
    let at_limit = record(&value);
    assert_eq!(at_limit.byte_len(), MAX_RECORD_BYTES);
    assert_eq!(at_limit.validate(), Ok(()));

    value["pad"] = json!("x".repeat(MAX_RECORD_BYTES - overhead + 1));
    let error = record(&value).validate().expect_err("too large");
    assert_eq!(error.code(), "RecordTooLarge");
    assert_eq!(error.field(), None);
    assert_eq!(
        error,
        EventError::RecordTooLarge {
            size: MAX_RECORD_BYTES + 1,
            limit: MAX_RECORD_BYTES
        }
    );
}

#[test]
fn insight_events_have_their_own_required_fields() {
    let event = record(&insight());
    assert_eq!(event.event_category(), "Insight");
    assert!(!event.management_event());
    assert_eq!(event.user_identity_json(), None);

    for field in [
        "sharedEventID",
        "insightDetails",
        "eventID",
        "eventTime",
        "awsRegion",
    ] {
        let mut value = insight();
        value.as_object_mut().expect("object").remove(field);
        assert_error(
            record(&value).validate().expect_err("missing"),
            "MissingField",
            field,
        );
    }
    let mut no_recipient = insight();
    no_recipient
        .as_object_mut()
        .expect("object")
        .remove("recipientAccountId");
    assert_eq!(record(&no_recipient).validate(), Ok(()));

    let mut bad_identity = insight();
    bad_identity["userIdentity"] = json!("x");
    assert_error(
        record(&bad_identity).validate().expect_err("bad"),
        "InvalidField",
        "userIdentity",
    );
}

#[test]
fn malformed_json_is_reported_with_its_code() {
    let duplicate = base()
        .to_string()
        .replacen("\"eventID\"", "\"eventID\":\"a\",\"eventID\"", 1);
    let nested_duplicate = base()
        .to_string()
        .replacen("\"arn\"", "\"arn\":\"a\",\"arn\"", 1);
    for bad in [
        "",
        "not json",
        "[]",
        "[{\"eventID\":\"a\"}]",
        "\"record\"",
        "{\"eventID\":\"a\"",
        "{\"eventID\":\"a\"} {}",
        duplicate.as_str(),
        nested_duplicate.as_str(),
    ] {
        let error = EventRecord::from_json(bad).expect_err(bad);
        assert_eq!(error.code(), "MalformedJson", "{bad}: {error}");
        assert_eq!(error.field(), None);
    }
    let error = EventRecord::from_slice(b"{\"a\":\"\xff\"}").expect_err("not utf-8");
    assert_eq!(error.code(), "MalformedJson");
}

#[test]
fn log_file_errors() {
    for bad in [
        &b""[..],
        b"[]",
        b"[[]]",
        b"{}",
        b"{\"Records\":{}}",
        b"{\"Records\":[1]}",
        b"{\"Records\":[{}],\"Records\":[]}",
        b"{\"Records\":[{}]",
        b"{\"Records\":[{}]}x",
        b"{\"Records\":[\"\xff\"]}",
    ] {
        let error = parse_log_file(bad).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(error.code(), "MalformedJson", "{error}");
    }
    let second_bad = format!("{{\"Records\":[{},[]]}}", base());
    let error = parse_log_file(second_bad.as_bytes()).expect_err("second record");
    assert!(error.to_string().contains("record 1"), "{error}");
}

#[test]
fn log_files_accept_any_whitespace_and_keep_records_exact() {
    let one = base().to_string();
    let two = serde_json::to_string_pretty(&insight()).expect("pretty");
    let file = format!(" \n{{ \"Records\" :\t[ {one} ,\r\n{two}\n] , \"other\": 1 }}\n\n");
    let records = parse_log_file(file.as_bytes()).expect("parses");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].json(), one);
    assert_eq!(records[1].json(), two);
    assert_eq!(parse_log_file(b"{\"Records\":[]}").expect("empty"), vec![]);
    assert_eq!(opentrail_model::write_log_file(&[]), b"{\"Records\":[]}\n");
}

#[test]
fn ndjson_reports_the_failing_line() {
    let line = base().to_string();
    let text = format!("{line}\n\n  \r\n{line}\r\n{{broken\n{line}");
    let error = parse_records_ndjson(text.as_bytes()).expect_err("line 5 is broken");
    assert_eq!(error.code(), "MalformedJson");
    assert!(error.to_string().contains("line 5"), "{error}");

    let text = format!("{line}\n\n  \r\n  {line}\t\r\n");
    let records = parse_records_ndjson(text.as_bytes()).expect("parses");
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|record| record.json() == line));
    assert_eq!(parse_records_ndjson(b"").expect("empty"), vec![]);
}

#[test]
fn event_category_is_derived_when_absent() {
    let mut data = without("eventCategory");
    assert_eq!(record(&data).event_category(), "Data");
    assert_eq!(record(&data).recorded_event_category(), None);
    assert!(!record(&data).management_event());

    data["managementEvent"] = json!(true);
    assert_eq!(record(&data).event_category(), "Management");

    data.as_object_mut()
        .expect("object")
        .remove("managementEvent");
    assert_eq!(record(&data).event_category(), "Management");
    assert!(record(&data).management_event());

    let mut old_insight = insight();
    old_insight
        .as_object_mut()
        .expect("object")
        .remove("eventCategory");
    assert_eq!(record(&old_insight).event_category(), "Insight");
    assert!(!record(&old_insight).management_event());

    let mut network = without("eventCategory");
    network["eventType"] = json!("AwsVpceEvent");
    assert_eq!(record(&network).event_category(), "NetworkActivity");

    // A recorded category wins, and managementEvent is derived from it when absent.
    let mut recorded = without("managementEvent");
    recorded["eventCategory"] = json!("Management");
    assert!(record(&recorded).management_event());
}

#[test]
fn typed_access_and_selector_view() {
    let event = record(&base());
    assert_eq!(event.event_id(), "0d9b4c8c-7a37-4d7f-a1c5-6d3b2e0f9a11");
    assert_eq!(event.event_time_text(), "2024-05-01T10:11:12Z");
    assert_eq!(
        event.event_time().map(opentrail_model::iso8601).as_deref(),
        Some("2024-05-01T10:11:12Z")
    );
    let identity = event.user_identity();
    assert_eq!(
        identity.kind(),
        Some(opentrail_model::event::UserIdentityType::AssumedRole)
    );
    assert_eq!(identity.session_issuer_user_name(), Some("Admin"));
    assert_eq!(identity.user_name, None);
    assert_eq!(
        event.request_parameters_json(),
        Some(r#"{"bucketName":"b","key":"k"}"#)
    );
    assert_eq!(event.response_elements_json(), None);

    let view: &dyn EventView = &event;
    assert_eq!(view.event_category(), "Data");
    assert!(!view.management_event());
    assert_eq!(view.read_only(), Some(true));
    assert_eq!(
        view.resources(),
        vec![
            ("AWS::S3::Object".to_owned(), "arn:aws:s3:::b/k".to_owned()),
            ("AWS::S3::Bucket".to_owned(), "arn:aws:s3:::b".to_owned()),
        ]
    );
    assert_eq!(
        view.user_identity_arn(),
        Some("arn:aws:sts::111122223333:assumed-role/Admin/alice")
    );
    assert_eq!(view.session_credential_from_console(), None);
    assert_eq!(view.error_code(), None);
    assert_eq!(view.vpc_endpoint_id(), None);

    let prefix = record(&with(
        &["resources"],
        json!([{"type": "AWS::S3::Object", "ARNPrefix": "arn:aws:s3:::b/logs/"}]),
    ));
    let view: &dyn EventView = &prefix;
    assert_eq!(
        view.resources(),
        vec![(
            "AWS::S3::Object".to_owned(),
            "arn:aws:s3:::b/logs/".to_owned()
        )]
    );
}

#[test]
fn escaped_text_is_decoded_and_the_bytes_are_kept() {
    let text = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":"al\u00efce\/x"},"eventTime":"2024-05-01T10:11:12Z","eventSource":"s3.amazonaws.com","eventName":"Put\u004fbject","awsRegion":"us-east-1","eventID":"e\"1","eventType":"AwsApiCall","recipientAccountId":"111122223333","n":1.0E+3}"#;
    let event = EventRecord::from_json(text).expect("parses");
    assert_eq!(event.json(), text);
    assert_eq!(event.event_name(), "PutObject");
    assert_eq!(event.event_id(), "e\"1");
    assert_eq!(event.user_identity().user_name, Some("alïce/x"));
    assert_eq!(event.validate(), Ok(()));
}

#[test]
fn escaped_keys_are_the_keys_they_decode_to() {
    let text = base()
        .to_string()
        .replace("\"eventName\"", "\"\\u0065ventName\"");
    let event = EventRecord::from_json(&text).expect("parses");
    assert_eq!(event.event_name(), "GetObject");
    assert_eq!(event.json(), text);
}

#[test]
fn surrounding_whitespace_is_dropped_inner_whitespace_kept() {
    let pretty = serde_json::to_string_pretty(&base()).expect("pretty");
    let event = EventRecord::from_json(&format!("\n\t {pretty} \r\n")).expect("parses");
    assert_eq!(event.json(), pretty);
    assert_eq!(event.validate(), Ok(()));
    assert_eq!(event.event_source(), "s3.amazonaws.com");
}

#[test]
fn records_embed_verbatim_in_serde_json_output() {
    let text = r#"{ "eventID" : "a",  "n": 1.50E2 }"#;
    let event = EventRecord::from_json(text).expect("parses");
    let wrapped = serde_json::to_string(&vec![event.clone()]).expect("serialize");
    assert_eq!(wrapped, format!("[{text}]"));
    let back: Vec<EventRecord> = serde_json::from_str(&wrapped).expect("deserialize");
    assert_eq!(back, vec![event]);
}

#[test]
fn documents_build_valid_records() {
    let mut document = record(&base()).to_document().expect("document");
    document.event_name = "PutObject".to_owned();
    document.read_only = Some(false);
    let built = EventRecord::from_document(&document).expect("record");
    assert_eq!(built.validate(), Ok(()));
    assert_eq!(built.event_name(), "PutObject");
    assert_eq!(built.read_only(), Some(false));
    assert!(built
        .json()
        .starts_with(r#"{"eventVersion":"1.11","userIdentity":{"type":"AssumedRole""#));

    let insight_document = record(&insight()).to_document().expect("insight document");
    let rebuilt = EventRecord::from_document(&insight_document).expect("record");
    assert_eq!(rebuilt.validate(), Ok(()));
    assert_eq!(
        serde_json::from_str::<Value>(rebuilt.json()).expect("json"),
        insight()
    );
}

#[test]
fn records_are_cheap_to_share_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EventRecord>();
    let event = record(&base());
    let copy = event.clone();
    assert_eq!(copy, event);
    assert!(
        std::ptr::eq(copy.json(), event.json()),
        "clones share the text"
    );
}
