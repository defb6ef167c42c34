//! Records of every eventVersion from 1.0 to 1.11, built from AWS's record reference and
//! log file examples: each is accepted requiring only the fields its version had, and what
//! an early version lacks (eventID, eventType, recipientAccountId) is derived.

use opentrail_model::event::{parse_log_file, EventDocument, EventRecord};
use serde_json::{json, Value};
use std::path::PathBuf;

fn fixture() -> Vec<EventRecord> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/event_versions.json");
    let bytes = std::fs::read(&path).expect("read fixture");
    parse_log_file(&bytes).expect("parse fixture")
}

fn record(value: &Value) -> EventRecord {
    EventRecord::from_json(&value.to_string()).expect("parses")
}

fn value_of(record: &EventRecord) -> Value {
    serde_json::from_str(record.json()).expect("json")
}

fn without(record: &EventRecord, keys: &[&str]) -> Value {
    let mut value = value_of(record);
    let object = value.as_object_mut().expect("object");
    for key in keys {
        object.remove(*key);
    }
    value
}

/// The fields the record reference lists as present in every record ("Optional: False")
/// from the given minor version on, of those OpenTrail requires.
fn required_at(minor: u32) -> Vec<&'static str> {
    let mut fields = vec![
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
    ];
    if minor >= 1 {
        fields.push("eventID");
    }
    if minor >= 2 {
        fields.push("eventType");
    }
    fields
}

fn minor_of(record: &EventRecord) -> u32 {
    record.event_version()[2..].parse().expect("minor version")
}

#[test]
fn every_version_from_1_0_to_1_11_is_accepted() {
    let records = fixture();
    let versions: Vec<&str> = records.iter().map(EventRecord::event_version).collect();
    for version in [
        "1.0", "1.01", "1.02", "1.03", "1.04", "1.05", "1.06", "1.07", "1.08", "1.09", "1.10",
        "1.11",
    ] {
        assert!(versions.contains(&version), "fixture lacks {version}");
    }
    for record in &records {
        assert_eq!(record.validate(), Ok(()), "{}", record.json());
        assert!(!record.event_id().is_empty(), "{}", record.json());
        assert!(!record.event_type().is_empty(), "{}", record.json());
        assert_eq!(record.recipient_account_id(), "123456789012");
    }
}

#[test]
fn each_version_requires_exactly_what_it_had() {
    for original in fixture() {
        let minor = minor_of(&original);
        let required = required_at(minor);
        for field in required.iter().copied() {
            let error = record(&without(&original, &[field]))
                .validate()
                .expect_err(field);
            assert_eq!(
                error.code(),
                "MissingField",
                "{field} at 1.{minor}: {error}"
            );
            assert_eq!(error.field(), Some(field));
        }
        for field in ["eventID", "eventType", "recipientAccountId"] {
            if required.contains(&field) {
                continue;
            }
            let lacking = record(&without(&original, &[field]));
            let identity_type = original.user_identity().identity_type;
            if field == "recipientAccountId" && identity_type == Some("AWSAccount") {
                // Another account's identity: its accountId is not the recipient.
                let error = lacking.validate().expect_err("cross-account");
                assert_eq!(error.field(), Some(field), "{error}");
                continue;
            }
            assert_eq!(lacking.validate(), Ok(()), "{field} at 1.{minor}");
            assert!(!lacking.event_id().is_empty());
            assert!(!lacking.event_type().is_empty());
            assert_eq!(lacking.recipient_account_id(), "123456789012");
        }
    }
}

#[test]
fn a_1_0_record_gets_a_derived_event_id_type_and_recipient() {
    let records = fixture();
    let api_call = &records[0];
    assert_eq!(api_call.event_version(), "1.0");
    assert_eq!(api_call.recorded_event_id(), None);
    // Pinned: the derivation is part of the data's identity and must never change. The
    // value is SHA-256 over the canonical JSON, as the README describes it.
    assert_eq!(api_call.event_id(), "3afab81b-1d74-8ee0-9d95-465d0da98efd");
    assert_eq!(api_call.event_type(), "AwsApiCall");
    assert_eq!(api_call.recorded_recipient_account_id(), None);
    assert_eq!(api_call.recipient_account_id(), "123456789012");
    assert_eq!(api_call.event_category(), "Management");
    assert!(api_call.management_event());

    let sign_in = &records[1];
    assert_eq!(sign_in.event_name(), "ConsoleLogin");
    assert_eq!(sign_in.event_id(), "cf3e45bd-0f91-8ca0-860c-a76f4c4224f4");
    assert_eq!(sign_in.event_type(), "AwsConsoleSignIn");

    // The record itself is untouched.
    assert!(!api_call.json().contains("eventID"));
    assert!(!api_call.json().contains("recipientAccountId"));
}

#[test]
fn the_derived_id_ignores_spacing_and_member_order_but_not_content() {
    let original = fixture().remove(0);
    let pretty = serde_json::to_string_pretty(&value_of(&original)).expect("pretty");
    let pretty = EventRecord::from_json(&pretty).expect("parses");
    assert_ne!(pretty.json(), original.json());
    assert_eq!(pretty.event_id(), original.event_id());

    let mut reordered = serde_json::Map::new();
    let value = value_of(&original);
    for (key, member) in value.as_object().expect("object").iter().rev() {
        reordered.insert(key.clone(), member.clone());
    }
    let reordered = record(&Value::Object(reordered));
    assert_eq!(reordered.event_id(), original.event_id());

    let mut changed = value_of(&original);
    changed["eventTime"] = json!("2014-03-06T21:22:55Z");
    assert_ne!(record(&changed).event_id(), original.event_id());
}

#[test]
fn recorded_values_win_and_early_fields_may_still_be_present() {
    let mut value = value_of(&fixture()[0]);
    value["eventID"] = json!("given-id");
    value["eventType"] = json!("AwsServiceEvent");
    value["recipientAccountId"] = json!("999988887777");
    let given = record(&value);
    assert_eq!(given.validate(), Ok(()));
    assert_eq!(given.event_id(), "given-id");
    assert_eq!(given.event_type(), "AwsServiceEvent");
    assert_eq!(given.recipient_account_id(), "999988887777");

    for (field, bad) in [("eventID", json!("")), ("eventType", json!(1))] {
        let mut value = value_of(&fixture()[0]);
        value[field] = bad;
        let error = record(&value).validate().expect_err(field);
        assert_eq!(error.code(), "InvalidField", "{error}");
        assert_eq!(error.field(), Some(field));
    }
}

#[test]
fn a_missing_id_is_derived_only_where_the_version_had_none() {
    let at_1_01 = fixture()
        .into_iter()
        .find(|record| record.event_version() == "1.01")
        .expect("1.01 record");
    let lacking = record(&without(&at_1_01, &["eventID"]));
    assert_eq!(lacking.event_id(), "");
    let lacking_type = record(&without(&at_1_01, &["eventType"]));
    assert_eq!(lacking_type.event_type(), "AwsApiCall");
    let at_1_05 = fixture()
        .into_iter()
        .find(|record| record.event_version() == "1.05")
        .expect("1.05 record");
    assert_eq!(record(&without(&at_1_05, &["eventType"])).event_type(), "");
}

#[test]
fn the_recipient_comes_only_from_the_account_s_own_identity() {
    let sign_in = fixture()
        .into_iter()
        .find(|record| record.event_name() == "ConsoleLogin" && record.event_version() == "1.05")
        .expect("1.05 sign-in");
    assert_eq!(sign_in.recorded_recipient_account_id(), None);
    assert_eq!(sign_in.recipient_account_id(), "123456789012");

    let mut no_account = value_of(&sign_in);
    no_account["userIdentity"]
        .as_object_mut()
        .expect("identity")
        .remove("accountId");
    let mut foreign = value_of(&sign_in);
    foreign["userIdentity"]["type"] = json!("AWSAccount");
    let mut service = value_of(&sign_in);
    service["userIdentity"]["type"] = json!("AWSService");
    let mut malformed = value_of(&sign_in);
    malformed["userIdentity"]["accountId"] = json!("1234");
    for value in [no_account, foreign, service, malformed] {
        let lacking = record(&value);
        assert_eq!(lacking.recipient_account_id(), "");
        let error = lacking.validate().expect_err("no recipient");
        assert_eq!(error.code(), "MissingField", "{error}");
        assert_eq!(error.field(), Some("recipientAccountId"));
    }
}

#[test]
fn documents_read_records_of_every_version() {
    for original in fixture() {
        let document: EventDocument = serde_json::from_str(original.json()).expect("document");
        let rebuilt = EventRecord::from_json(&serde_json::to_string(&document).expect("json"))
            .expect("parses");
        assert_eq!(rebuilt.validate(), Ok(()), "{}", original.json());
        assert_eq!(rebuilt.recorded_event_id(), original.recorded_event_id());
        assert_eq!(rebuilt.event_type(), original.event_type());
        assert_eq!(
            rebuilt.recipient_account_id(),
            original.recipient_account_id()
        );
    }
}
