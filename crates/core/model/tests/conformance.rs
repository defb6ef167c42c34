//! Real CloudTrail log files parse, index and re-emit byte for byte.

use opentrail_model::event::{parse_log_file, parse_records_ndjson, write_log_file, EventRecord};
use opentrail_selectors::EventView;
use serde_json::Value;
use std::path::PathBuf;

const LOG_FILE_START: &[u8] = b"{\"Records\":[";

fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("read fixture dir")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("read fixture");
            (name, bytes)
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 55, "expected the 55 delivered log files");
    files
}

#[test]
fn every_delivered_file_round_trips_byte_for_byte() {
    let mut total = 0;
    for (name, bytes) in fixture_files() {
        // The files are in delivered form: one compact line and a newline.
        assert!(bytes.starts_with(LOG_FILE_START), "{name}");
        assert!(bytes.ends_with(b"]}\n"), "{name}");
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1, "{name}");

        let records = parse_log_file(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!records.is_empty(), "{name}");

        // Each record is exactly its slice of the file, separated by single commas.
        let mut at = LOG_FILE_START.len();
        for (index, record) in records.iter().enumerate() {
            let end = at + record.byte_len();
            assert_eq!(&bytes[at..end], record.as_bytes(), "{name} record {index}");
            let separator = if index + 1 == records.len() {
                b']'
            } else {
                b','
            };
            assert_eq!(bytes[end], separator, "{name} record {index}");
            at = end + 1;
        }
        assert_eq!(&bytes[at..], b"}\n", "{name}");

        // And the rewritten file is the original, byte for byte.
        assert!(
            write_log_file(&records) == bytes,
            "{name}: rewritten file differs"
        );
        total += records.len();
    }
    assert_eq!(total, 2_900);
}

#[test]
fn every_delivered_record_validates() {
    for (name, bytes) in fixture_files() {
        for (index, record) in parse_log_file(&bytes).expect("parse").iter().enumerate() {
            if let Err(error) = record.validate() {
                panic!("{name} record {index}: {error} ({})", error.code());
            }
        }
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Every typed accessor agrees with a full, independent parse of the same record.
#[test]
fn typed_fields_agree_with_a_full_parse() {
    for (name, bytes) in fixture_files() {
        for (index, record) in parse_log_file(&bytes).expect("parse").iter().enumerate() {
            let at = format!("{name} record {index}");
            let value: Value = serde_json::from_str(record.json()).expect("json");
            let text = |key: &str| str_at(&value, &format!("/{key}"));

            assert_eq!(Some(record.event_version()), text("eventVersion"), "{at}");
            assert_eq!(Some(record.event_id()), text("eventID"), "{at}");
            assert_eq!(Some(record.event_source()), text("eventSource"), "{at}");
            assert_eq!(Some(record.event_name()), text("eventName"), "{at}");
            assert_eq!(Some(record.aws_region()), text("awsRegion"), "{at}");
            assert_eq!(Some(record.event_type()), text("eventType"), "{at}");
            assert_eq!(Some(record.event_time_text()), text("eventTime"), "{at}");
            assert_eq!(
                record.event_time().map(opentrail_model::iso8601).as_deref(),
                text("eventTime"),
                "{at}"
            );
            assert_eq!(
                Some(record.recipient_account_id()),
                text("recipientAccountId")
            );
            assert_eq!(record.source_ip_address(), text("sourceIPAddress"), "{at}");
            assert_eq!(record.user_agent(), text("userAgent"), "{at}");
            assert_eq!(record.error_code(), text("errorCode"), "{at}");
            assert_eq!(record.error_message(), text("errorMessage"), "{at}");
            assert_eq!(record.request_id(), text("requestID"), "{at}");
            assert_eq!(record.shared_event_id(), text("sharedEventID"), "{at}");
            assert_eq!(record.vpc_endpoint_id(), text("vpcEndpointId"), "{at}");
            assert_eq!(record.api_version(), text("apiVersion"), "{at}");
            assert_eq!(
                record.recorded_event_category(),
                text("eventCategory"),
                "{at}"
            );
            assert_eq!(record.event_category(), text("eventCategory").unwrap_or(""));
            assert_eq!(record.read_only(), value["readOnly"].as_bool(), "{at}");
            assert_eq!(
                record.recorded_management_event(),
                value["managementEvent"].as_bool(),
                "{at}"
            );
            assert_eq!(
                record.session_credential_from_console(),
                text("sessionCredentialFromConsole").map(|flag| flag == "true"),
                "{at}"
            );

            let identity = record.user_identity();
            let id = |key: &str| str_at(&value, &format!("/userIdentity/{key}"));
            assert_eq!(identity.identity_type, id("type"), "{at}");
            assert_eq!(identity.principal_id, id("principalId"), "{at}");
            assert_eq!(identity.arn, id("arn"), "{at}");
            assert_eq!(identity.account_id, id("accountId"), "{at}");
            assert_eq!(identity.access_key_id, id("accessKeyId"), "{at}");
            assert_eq!(identity.user_name, id("userName"), "{at}");
            assert_eq!(identity.invoked_by, id("invokedBy"), "{at}");
            assert_eq!(
                identity.session_issuer_user_name(),
                id("sessionContext/sessionIssuer/userName"),
                "{at}"
            );
            assert_eq!(
                identity.session_issuer.and_then(|issuer| issuer.arn),
                id("sessionContext/sessionIssuer/arn"),
                "{at}"
            );

            let expected: Vec<(Option<&str>, Option<&str>, Option<&str>)> = value["resources"]
                .as_array()
                .map(|resources| {
                    resources
                        .iter()
                        .map(|r| {
                            (
                                r["ARN"].as_str(),
                                r["accountId"].as_str(),
                                r["type"].as_str(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let actual: Vec<_> = record
                .resources()
                .map(|r| (r.arn, r.account_id, r.resource_type))
                .collect();
            assert_eq!(actual, expected, "{at}");

            for (json, key) in [
                (record.request_parameters_json(), "requestParameters"),
                (record.response_elements_json(), "responseElements"),
                (record.additional_event_data_json(), "additionalEventData"),
                (record.tls_details_json(), "tlsDetails"),
                (record.service_event_details_json(), "serviceEventDetails"),
                (record.user_identity_json(), "userIdentity"),
            ] {
                let expected = value.get(key).filter(|v| v.is_object());
                let actual = json.map(|json| serde_json::from_str::<Value>(json).expect("json"));
                assert_eq!(actual.as_ref(), expected, "{at} {key}");
            }

            // What selectors see.
            let view: &dyn EventView = record;
            assert_eq!(view.event_category(), "Management", "{at}");
            assert!(view.management_event(), "{at}");
            assert_eq!(view.user_identity_arn(), id("arn"), "{at}");
            assert_eq!(view.resources().len(), expected.len(), "{at}");
        }
    }
}

/// The owned schema covers every field of the real records: a record read into an
/// `EventDocument` and written back means the same JSON.
#[test]
fn documents_cover_every_delivered_field() {
    for (name, bytes) in fixture_files() {
        for (index, record) in parse_log_file(&bytes).expect("parse").iter().enumerate() {
            let at = format!("{name} record {index}");
            let document = record.to_document().unwrap_or_else(|e| panic!("{at}: {e}"));
            let rebuilt = EventRecord::from_document(&document).expect("rebuild");
            let original: Value = serde_json::from_str(record.json()).expect("json");
            let rebuilt_value: Value = serde_json::from_str(rebuilt.json()).expect("json");
            assert_eq!(rebuilt_value, original, "{at}");
            assert_eq!(rebuilt.validate(), Ok(()), "{at}");
        }
    }
}

#[test]
fn delivered_records_as_ndjson_round_trip() {
    for (name, bytes) in fixture_files().into_iter().take(5) {
        let records = parse_log_file(&bytes).expect("parse");
        let mut ndjson = Vec::new();
        for record in &records {
            ndjson.extend_from_slice(record.as_bytes());
            ndjson.extend_from_slice(b"\r\n");
        }
        let again = parse_records_ndjson(&ndjson).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again, records, "{name}");
    }
}

/// Parse rate on the fixtures; prints, never asserts on time. Run with
/// `cargo test --release -p opentrail-model --test conformance -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, run by hand in release mode"]
fn parse_rate() {
    let files = fixture_files();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let rounds = 20;
    let start = std::time::Instant::now();
    let mut records = 0;
    for _ in 0..rounds {
        for (_, file) in &files {
            records += parse_log_file(file).expect("parse").len();
        }
    }
    let parse = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        for (_, file) in &files {
            for record in parse_log_file(file).expect("parse") {
                record.validate().expect("valid");
            }
        }
    }
    let parse_and_validate = start.elapsed().as_secs_f64();
    println!(
        "parse_log_file: {:.0} records/s, {:.0} MB/s; with validate: {:.0} records/s (one core)",
        records as f64 / parse,
        (bytes * rounds) as f64 / parse / 1e6,
        records as f64 / parse_and_validate,
    );
}
