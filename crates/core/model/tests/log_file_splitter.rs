//! Property tests of the log-file splitter (`log_file_record_texts_at_most`, what ingest
//! runs on every `POST /events` body) and the JSON scanner under it: no input panics,
//! valid files split into exactly the texts serde_json sees, split records re-join into
//! the same file, and the record limit holds. CI runs a fixed number of cases (bounded
//! time); `PROPTEST_CASES=100000 cargo test -p opentrail-model --test log_file_splitter`
//! fuzzes longer.

use opentrail_model::event::{log_file_record_texts, log_file_record_texts_at_most};
use opentrail_model::EventError;
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::Value;

/// `default` cases, or `PROPTEST_CASES` when set.
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// Any JSON value, nested a few levels, with strings of any characters.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[a-zA-Z\"\\\\/ ]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec(("[a-zA-Z\"\\\\]{0,6}", inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// JSON whitespace, zero to two characters.
fn whitespace() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![' ', '\t', '\n', '\r']), 0..3)
        .prop_map(|chars| chars.into_iter().collect())
}

/// A valid log file and the texts of its records: the records compact or pretty, any
/// whitespace between tokens, maybe other top-level keys before and after `Records`.
fn log_file() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        prop::collection::vec((json_value(), any::<bool>()), 0..6),
        prop::collection::vec(whitespace(), 10),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
    )
        .prop_map(|(records, spaces, before, after)| {
            let s = |i: usize| spaces[i].as_str();
            let texts: Vec<String> = records
                .iter()
                .map(|(value, pretty)| match pretty {
                    true => serde_json::to_string_pretty(value).unwrap(),
                    false => serde_json::to_string(value).unwrap(),
                })
                .collect();
            let body = texts.join(&format!("{},{}", s(0), s(1)));
            let before = before
                .map(|v| format!("\"before\"{}:{}{v}{},{}", s(2), s(3), s(4), s(5)))
                .unwrap_or_default();
            let after = after
                .map(|v| format!("{},{}\"after\"{}:{}{v}", s(2), s(3), s(4), s(5)))
                .unwrap_or_default();
            let file = format!(
                "{}{{{}{before}\"Records\"{}:[{}{body}{}]{after}}}{}",
                s(6),
                s(7),
                s(8),
                s(9),
                s(0),
                s(1)
            );
            (file, texts)
        })
}

/// The record texts serde_json finds in a log file, or `None` when it refuses the file.
fn serde_record_texts(text: &str) -> Option<Vec<&str>> {
    #[derive(serde::Deserialize)]
    struct LogFile<'a> {
        #[serde(borrow, rename = "Records")]
        records: Vec<&'a RawValue>,
    }
    // serde also reads a struct from an array; log files are objects.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return None;
    }
    let file: LogFile = serde_json::from_str(text).ok()?;
    Some(file.records.into_iter().map(RawValue::get).collect())
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

fn structural_byte() -> impl Strategy<Value = u8> {
    prop::sample::select(b"{}[]:,\"\\ 019-.eE+tfnuR\x01x".to_vec())
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn splitting_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        max in 0..8usize,
    ) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(texts) = log_file_record_texts_at_most(&text, max) {
            prop_assert!(texts.len() <= max);
        }
        let _ = log_file_record_texts(&text);
    }

    #[test]
    fn valid_log_files_split_as_serde_reads_them_and_rejoin((file, written) in log_file()) {
        let texts = log_file_record_texts(&file).expect("a valid log file splits");
        prop_assert_eq!(&texts, &written);
        prop_assert_eq!(Some(texts.clone()), serde_record_texts(&file));

        // Re-joined as delivery writes them, the records split into the same texts.
        let rejoined = format!("{{\"Records\":[{}]}}\n", texts.join(","));
        prop_assert_eq!(log_file_record_texts(&rejoined).unwrap(), texts);
        let rejoined: Value = serde_json::from_str(&rejoined).unwrap();
        let values: Vec<Value> = written.iter().map(|text| serde_json::from_str(text).unwrap()).collect();
        prop_assert_eq!(&rejoined["Records"], &Value::from(values));
    }

    #[test]
    fn the_record_limit_holds((file, written) in log_file(), max in 0..8usize) {
        match log_file_record_texts_at_most(&file, max) {
            Ok(texts) => {
                prop_assert!(written.len() <= max);
                prop_assert_eq!(texts.len(), written.len());
            }
            Err(EventError::TooManyRecords { limit }) => {
                prop_assert!(written.len() > max);
                prop_assert_eq!(limit, max);
            }
            Err(other) => prop_assert!(false, "valid log file refused: {}", other),
        }
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    /// The scanner accepts exactly the log files serde_json accepts, and finds the same
    /// record texts in them.
    #[test]
    fn damaged_log_files_split_exactly_when_serde_accepts_them(
        (file, _) in log_file(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), structural_byte(), 0..3u8), 1..4),
    ) {
        let bytes = damage(file.into_bytes(), edits);
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Ok(());
        };
        let ours = log_file_record_texts(text).ok();
        prop_assert_eq!(ours, serde_record_texts(text), "{:?}", text);
    }
}
