//! Property tests: records of any shape round-trip byte for byte, and no input panics.

use opentrail_model::event::{parse_log_file, parse_records_ndjson, write_log_file, EventRecord};
use opentrail_selectors::EventView;
use proptest::prelude::*;

/// JSON whitespace, zero to two characters.
fn whitespace() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![' ', '\t', '\n', '\r']), 0..3)
        .prop_map(|chars| chars.into_iter().collect())
}

/// `text` as a JSON string literal, escaped in one of several legal styles.
fn string_literal(text: String) -> impl Strategy<Value = String> {
    (0..3u8).prop_map(move |style| match style {
        0 => serde_json::to_string(&text).unwrap_or_default(),
        // serde_json never escapes '/', so this only adds escapes.
        1 => serde_json::to_string(&text)
            .unwrap_or_default()
            .replace('/', "\\/"),
        _ => {
            let mut literal = String::from("\"");
            for unit in text.encode_utf16() {
                literal.push_str(&format!("\\u{unit:04X}"));
            }
            literal.push('"');
            literal
        }
    })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ./:-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
        Just("quote\" backslash\\ slash/ tab\t nl\n é 😀".to_owned()),
    ]
}

/// Number spellings a re-serialiser would change.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "-0",
            "0.0",
            "1.688560107857E9",
            "1E+2",
            "1e-7",
            "0.000",
            "-12.50",
            "123456789012345678901234567890",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Any JSON value as text, with arbitrary whitespace and spellings.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number(),
        any_text().prop_flat_map(string_literal),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec((whitespace(), inner.clone(), whitespace()), 0..4).prop_map(
                |items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(a, v, b)| format!("{a}{v}{b}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }
            ),
            prop::collection::vec(
                (
                    any_text().prop_flat_map(string_literal),
                    whitespace(),
                    inner
                ),
                0..4
            )
            .prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(key, ws, value)| format!("{key}{ws}:{ws}{value}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// The values of the required fields of a generated record.
#[derive(Clone, Debug)]
struct Required {
    event_id: String,
    event_source: String,
    event_name: String,
    region: String,
    account: String,
    time: String,
    read_only: Option<bool>,
}

fn required() -> impl Strategy<Value = Required> {
    (
        any_text().prop_filter("non-empty", |s| !s.is_empty()),
        any_text().prop_filter("non-empty", |s| !s.is_empty()),
        any_text().prop_filter("non-empty", |s| !s.is_empty()),
        "[a-z]{2}-[a-z]{4,9}-[1-9]",
        "[0-9]{12}",
        (
            2000..2100i32,
            1..=12u32,
            1..=28u32,
            0..24u32,
            0..60u32,
            0..60u32,
        ),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(event_id, event_source, event_name, region, account, t, read_only)| Required {
                event_id,
                event_source,
                event_name,
                region,
                account,
                time: format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    t.0, t.1, t.2, t.3, t.4, t.5
                ),
                read_only,
            },
        )
}

/// A valid record as text: the required fields, arbitrary extra fields (keys start
/// with `x`, so they never name a known field), shuffled, with arbitrary whitespace.
fn record_text() -> impl Strategy<Value = (String, Required)> {
    required().prop_flat_map(|req| {
        let known = vec![
            string_literal(req.event_id.clone())
                .prop_map(|v| ("eventID".to_owned(), v))
                .boxed(),
            string_literal(req.event_source.clone())
                .prop_map(|v| ("eventSource".to_owned(), v))
                .boxed(),
            string_literal(req.event_name.clone())
                .prop_map(|v| ("eventName".to_owned(), v))
                .boxed(),
            Just(("awsRegion".to_owned(), format!("\"{}\"", req.region))).boxed(),
            Just((
                "recipientAccountId".to_owned(),
                format!("\"{}\"", req.account),
            ))
            .boxed(),
            Just(("eventTime".to_owned(), format!("\"{}\"", req.time))).boxed(),
            Just(("eventVersion".to_owned(), "\"1.11\"".to_owned())).boxed(),
            Just(("eventType".to_owned(), "\"AwsApiCall\"".to_owned())).boxed(),
            (json_value(), json_value())
                .prop_map(|(a, b)| {
                    (
                        "userIdentity".to_owned(),
                        format!("{{\"xa\":{a},\"xb\" : {b}}}"),
                    )
                })
                .boxed(),
        ];
        let extras = prop::collection::vec(
            (any_text().prop_map(|key| format!("x{key}")), json_value()),
            0..5,
        );
        (known, extras, Just(req)).prop_flat_map(|(mut members, extras, req)| {
            if let Some(read_only) = req.read_only {
                members.push(("readOnly".to_owned(), read_only.to_string()));
            }
            let members: Vec<(String, String)> =
                members
                    .into_iter()
                    .map(|(key, value)| (format!("\"{key}\""), value))
                    .chain(extras.into_iter().map(|(key, value)| {
                        (serde_json::to_string(&key).unwrap_or_default(), value)
                    }))
                    .collect();
            let count = members.len();
            (
                Just(members).prop_shuffle(),
                prop::collection::vec((whitespace(), whitespace()), count),
                Just(req),
            )
                .prop_map(|(members, spaces, req)| {
                    let body: Vec<String> = members
                        .iter()
                        .zip(&spaces)
                        .map(|((key, value), (a, b))| format!("{a}{key}{b}:{a}{value}{b}"))
                        .collect();
                    (format!("{{{}}}", body.join(",")), req)
                })
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_records_round_trip_byte_for_byte((text, req) in record_text()) {
        let record = EventRecord::from_json(&text).expect("parses");
        prop_assert_eq!(record.json(), text.as_str());
        prop_assert_eq!(record.validate(), Ok(()));
        prop_assert_eq!(record.event_id(), req.event_id.as_str());
        prop_assert_eq!(record.event_source(), req.event_source.as_str());
        prop_assert_eq!(record.event_name(), req.event_name.as_str());
        prop_assert_eq!(record.aws_region(), req.region.as_str());
        prop_assert_eq!(record.recipient_account_id(), req.account.as_str());
        prop_assert_eq!(record.event_time_text(), req.time.as_str());
        prop_assert!(record.event_time().is_some());
        prop_assert_eq!(record.read_only(), req.read_only);

        let file = write_log_file(&[record.clone(), record.clone()]);
        let expected = format!("{{\"Records\":[{text},{text}]}}\n");
        prop_assert_eq!(&file[..], expected.as_bytes());
        let again = parse_log_file(&file).expect("log file parses");
        prop_assert_eq!(again.len(), 2);
        prop_assert!(again.iter().all(|r| r.json() == text));
    }

    #[test]
    fn log_files_with_any_whitespace_keep_records_exact(
        records in prop::collection::vec(record_text(), 0..4),
        spaces in prop::collection::vec(whitespace(), 12),
    ) {
        let texts: Vec<&str> = records.iter().map(|(text, _)| text.as_str()).collect();
        let s = |i: usize| spaces[i].as_str();
        let body = texts.join(&format!("{},{}", s(0), s(1)));
        let file = format!(
            "{}{{{}\"Records\"{}:{}[{}{body}{}]{}}}{}",
            s(2), s(3), s(4), s(5), s(6), s(7), s(8), s(9)
        );
        let parsed = parse_log_file(file.as_bytes()).expect("parses");
        let parsed_texts: Vec<&str> = parsed.iter().map(EventRecord::json).collect();
        prop_assert_eq!(parsed_texts, texts);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(records) = parse_log_file(&bytes) {
            records.iter().for_each(exercise);
        }
        if let Ok(records) = parse_records_ndjson(&bytes) {
            records.iter().for_each(exercise);
        }
        if let Ok(record) = EventRecord::from_slice(&bytes) {
            exercise(&record);
        }
    }

    #[test]
    fn parsing_mutated_records_never_panics(
        (text, _) in record_text(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
    ) {
        let bytes = damage(text.into_bytes(), edits);
        let parsed = EventRecord::from_slice(&bytes);
        if let Ok(record) = &parsed {
            exercise(record);
        }
        accepted_like_serde(&bytes, &parsed)?;
        let mut file = b"{\"Records\":[".to_vec();
        file.extend_from_slice(&bytes);
        file.extend_from_slice(b"]}");
        if let Ok(records) = parse_log_file(&file) {
            records.iter().for_each(exercise);
        }
    }

    #[test]
    fn parsing_arbitrary_json_objects_never_panics(value in json_value()) {
        let parsed = EventRecord::from_json(&value);
        if let Ok(record) = &parsed {
            prop_assert_eq!(record.json(), value.trim_matches([' ', '\t', '\n', '\r']));
            exercise(record);
        }
        accepted_like_serde(value.as_bytes(), &parsed)?;
    }
}

/// `text` (a valid record) as an eventVersion 1.0 record: without `eventID`, `eventType`
/// and `recipientAccountId`, with `userIdentity.accountId` set to `account`.
fn as_version_1_0(text: &str, account: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(text).expect("json");
    let object = value.as_object_mut().expect("object");
    for key in ["eventID", "eventType", "recipientAccountId"] {
        object.shift_remove(key);
    }
    object.insert("eventVersion".to_owned(), "1.0".into());
    object["userIdentity"]["accountId"] = account.into();
    value
}

fn is_uuid_of_version_8(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups[2].starts_with('8')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
        && id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The eventID derived for a record that predates the field is a UUID, the same for
    /// every spelling of the same JSON value (compact, pretty, members reordered), and
    /// another for another value.
    #[test]
    fn derived_event_ids_are_deterministic_and_stable((text, req) in record_text()) {
        let value = as_version_1_0(&text, &req.account);
        let compact = EventRecord::from_json(&value.to_string()).expect("parses");
        prop_assert_eq!(compact.validate(), Ok(()));
        prop_assert_eq!(compact.recorded_event_id(), None);
        let id = compact.event_id().to_owned();
        prop_assert!(is_uuid_of_version_8(&id), "{}", id);
        prop_assert_eq!(compact.recipient_account_id(), req.account.as_str());
        prop_assert_eq!(compact.event_type(), "AwsApiCall");

        let again = EventRecord::from_json(compact.json()).expect("parses");
        prop_assert_eq!(again.event_id(), id.as_str());
        let pretty = serde_json::to_string_pretty(&value).expect("pretty");
        let pretty = EventRecord::from_json(&pretty).expect("parses");
        prop_assert_eq!(pretty.event_id(), id.as_str());
        let mut reversed = serde_json::Map::new();
        for (key, member) in value.as_object().expect("object").iter().rev() {
            reversed.insert(key.clone(), member.clone());
        }
        let reversed = serde_json::Value::Object(reversed).to_string();
        let reversed = EventRecord::from_json(&reversed).expect("parses");
        prop_assert_eq!(reversed.event_id(), id.as_str());

        let mut other = value.clone();
        other["eventName"] = format!("{}x", req.event_name).into();
        let other = EventRecord::from_json(&other.to_string()).expect("parses");
        prop_assert_ne!(other.event_id(), id.as_str());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn damaged_json_is_accepted_exactly_when_serde_accepts_it(
        value in json_value(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(b"{}[]:,\"\\ 019-.eE+tfnu\x01x".to_vec()), 0..3u8), 1..4),
    ) {
        let bytes = damage(value.into_bytes(), edits);
        accepted_like_serde(&bytes, &EventRecord::from_slice(&bytes))?;
    }
}

/// `bytes` with each edit applied: 0 replaces the byte at the index, 1 removes it, 2
/// inserts one there.
fn damage(mut bytes: Vec<u8>, edits: Vec<(prop::sample::Index, u8, u8)>) -> Vec<u8> {
    for (at, byte, kind) in edits {
        let at = at.index(bytes.len() + 1);
        match kind {
            0 if at < bytes.len() => bytes[at] = byte,
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, byte),
        }
    }
    bytes
}

/// The record parser (a hand-written scanner) must accept exactly the well-formed JSON
/// objects serde_json accepts, except that it also refuses a known key given twice or a
/// key whose escapes do not decode, as serde's typed parsing did. Fields it reads agree
/// with serde's reading of the same text.
fn accepted_like_serde(
    bytes: &[u8],
    parsed: &Result<EventRecord, opentrail_model::EventError>,
) -> Result<(), TestCaseError> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .map(|text| text.trim_matches([' ', '\t', '\n', '\r']));
    let serde_accepts = text.is_some_and(|text| {
        text.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    });
    match parsed {
        Ok(record) => {
            prop_assert!(serde_accepts, "accepted what serde refuses: {:?}", text);
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(text.unwrap_or("")) {
                let text_of = |key: &str| value[key].as_str().unwrap_or("").to_owned();
                prop_assert_eq!(record.event_id(), text_of("eventID"));
                prop_assert_eq!(record.event_name(), text_of("eventName"));
                prop_assert_eq!(record.aws_region(), text_of("awsRegion"));
            }
        }
        Err(error) if serde_accepts => {
            let reason = error.to_string();
            prop_assert!(
                reason.contains("duplicate field") || reason.contains("invalid escape in a key"),
                "refused what serde accepts: {:?}: {}",
                text,
                reason
            );
        }
        Err(_) => {}
    }
    Ok(())
}

/// Calls everything that reads a record.
fn exercise(record: &EventRecord) {
    let _ = record.validate();
    let _ = record.to_document();
    let view: &dyn EventView = record;
    let _ = (
        view.event_category(),
        view.event_source(),
        view.event_name(),
        view.event_type(),
        view.read_only(),
        view.management_event(),
        view.resources(),
        view.user_identity_arn(),
        view.session_credential_from_console(),
        view.error_code(),
        view.vpc_endpoint_id(),
    );
    let _ = (
        record.event_version(),
        record.event_id(),
        record.event_time(),
        record.aws_region(),
        record.recipient_account_id(),
        record.user_identity(),
        record.user_identity_json(),
        record.request_parameters_json(),
        record.response_elements_json(),
        record.additional_event_data_json(),
        record.tls_details_json(),
        record.insight_details_json(),
        record.service_event_details_json(),
        record.edge_device_details_json(),
        record.addendum_json(),
        record.source_ip_address(),
        record.user_agent(),
        record.error_message(),
        record.request_id(),
        record.shared_event_id(),
        record.vpc_endpoint_account_id(),
        record.api_version(),
    );
    let _ = write_log_file(std::slice::from_ref(record));
}
