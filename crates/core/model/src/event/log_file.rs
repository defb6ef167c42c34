//! CloudTrail log files: `{"Records":[...]}` as delivered to S3, and newline-delimited
//! records as bulk imports carry them.

use super::error::EventError;
use super::record::{EventRecord, RecordRef};
use super::scan::{ScanError, Scanner};

const LOG_FILE_START: &[u8] = b"{\"Records\":[";
const LOG_FILE_END: &[u8] = b"]}\n";

/// Parses a log file `{"Records":[...]}`, with any whitespace between tokens. Each
/// record keeps its exact text; other top-level keys are ignored.
pub fn parse_log_file(bytes: &[u8]) -> Result<Vec<EventRecord>, EventError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| EventError::malformed(format!("log file is not utf-8: {error}")))?;
    log_file_record_texts(text)?
        .into_iter()
        .enumerate()
        .map(|(index, json)| EventRecord::from_json(json).map_err(|error| in_record(index, error)))
        .collect()
}

/// The exact texts of the elements of `Records` in a log file `{"Records":[...]}` (any
/// whitespace between tokens, other top-level keys ignored), after checking that the
/// whole text is well-formed JSON. Elements may be any JSON value; parsing them as records
/// says which are not objects.
pub fn log_file_record_texts(text: &str) -> Result<Vec<&str>, EventError> {
    log_file_record_texts_at_most(text, usize::MAX)
}

/// [`log_file_record_texts`] that stops at the first element past `max` with
/// [`EventError::TooManyRecords`], before collecting more.
pub fn log_file_record_texts_at_most(text: &str, max: usize) -> Result<Vec<&str>, EventError> {
    walk_log_file(text, max, |scanner, texts| {
        let (start, end) = scanner.value()?;
        texts.push(&text[start..end]);
        Ok(())
    })
}

/// The texts of the elements of `Records` in a log file, each with its parse as a record
/// (or the error its parse gave), as [`log_file_record_texts_at_most`] then
/// [`EventRecord::parse_borrowed`] of each text would give them, in one pass over the text:
/// a record that parses is not scanned again to find where it ends.
#[allow(clippy::type_complexity)]
pub fn log_file_records_at_most(
    text: &str,
    max: usize,
) -> Result<Vec<(&str, Result<RecordRef<'_>, EventError>)>, EventError> {
    walk_log_file(text, max, |scanner, records| {
        scanner.skip_whitespace();
        let start = scanner.position();
        match EventRecord::parse_leading_borrowed(&text[start..]) {
            Ok((record, length)) => {
                scanner.advance_to(start + length);
                records.push((&text[start..start + length], Ok(record)));
            }
            // Not a record: the element's extent as a value, and its parse's error.
            Err(_) => {
                let (start, end) = scanner.value()?;
                let element = &text[start..end];
                records.push((element, EventRecord::parse_borrowed(element)));
            }
        }
        Ok(())
    })
}

/// What a record of a log file takes, about, for sizing the list of its records up front.
const EXPECTED_RECORD_BYTES: usize = 1024;

/// Walks a log file `{"Records":[...]}`, `element` consuming each element of `Records` into
/// the list, up to `max` of them.
fn walk_log_file<'a, T>(
    text: &'a str,
    max: usize,
    mut element: impl FnMut(&mut Scanner<'a>, &mut Vec<T>) -> Result<(), Box<ScanError>>,
) -> Result<Vec<T>, EventError> {
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(EventError::malformed("log file is not a json object"));
    }
    if u32::try_from(text.len()).is_err() {
        return Err(EventError::malformed("log file is larger than 4 GiB"));
    }
    let mut scanner = Scanner::new(text);
    let mut records: Option<Vec<T>> = None;
    let mut too_many = false;
    let walked = scanner.object(|scanner, key| {
        let name = scanner.key_text(key)?;
        if name != "Records" {
            return scanner.value().map(drop);
        }
        if records.is_some() {
            return Err(ScanError::duplicate_field("Records", key.start));
        }
        if scanner.peek() != Some(b'[') {
            return Err(ScanError::at("`Records` is not an array".into(), key.end));
        }
        // Room for records of ~1 KiB up front: a request's records are large (`RecordRef`
        // holds its index inline), and growing the list by doubling copied them over again.
        let items = records.insert(Vec::with_capacity(
            (text.len() / EXPECTED_RECORD_BYTES).clamp(1, max.max(1)),
        ));
        scanner
            .array(|scanner| {
                if items.len() >= max {
                    too_many = true;
                    return Err(ScanError::at("too many records".into(), 0));
                }
                element(scanner, items)
            })
            .map(drop)
    });
    if too_many {
        return Err(EventError::TooManyRecords { limit: max });
    }
    walked
        .and_then(|_| scanner.finish())
        .map_err(|error| EventError::malformed(format!("log file: {error}")))?;
    records.ok_or_else(|| EventError::malformed("log file: missing field `Records`"))
}

/// Parses newline-delimited records, one JSON object per line. Blank lines and a
/// `\r` before each `\n` are allowed.
pub fn parse_records_ndjson(bytes: &[u8]) -> Result<Vec<EventRecord>, EventError> {
    let mut records = Vec::new();
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(|byte| matches!(byte, b' ' | b'\t' | b'\r')) {
            continue;
        }
        let record = EventRecord::from_slice(line).map_err(|error| in_line(index + 1, error))?;
        records.push(record);
    }
    Ok(records)
}

/// Writes records as CloudTrail delivers them: `{"Records":[r1,r2,...]}` and a
/// newline, each record's exact text. The file is one line when every record's text is
/// compact, as records parsed from delivered log files are.
pub fn write_log_file(records: &[EventRecord]) -> Vec<u8> {
    let records_len: usize = records.iter().map(EventRecord::byte_len).sum();
    let separators = records.len().saturating_sub(1);
    let mut file =
        Vec::with_capacity(LOG_FILE_START.len() + records_len + separators + LOG_FILE_END.len());
    file.extend_from_slice(LOG_FILE_START);
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            file.push(b',');
        }
        file.extend_from_slice(record.as_bytes());
    }
    file.extend_from_slice(LOG_FILE_END);
    file
}

fn in_record(index: usize, error: EventError) -> EventError {
    match error {
        EventError::MalformedJson { reason } => {
            EventError::malformed(format!("record {index}: {reason}"))
        }
        other => other,
    }
}

fn in_line(line: usize, error: EventError) -> EventError {
    match error {
        EventError::MalformedJson { reason } => {
            EventError::malformed(format!("line {line}: {reason}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::log_file_record_texts;

    #[test]
    fn record_texts_are_exact_elements_of_records_and_bad_files_are_refused() {
        let file =
            " {\"x\":{\"Records\":1}, \"Records\" : [ {\"a\":1} ,\"s\", [ ] ] ,\"y\":null}\n";
        assert_eq!(
            log_file_record_texts(file).expect("parses"),
            vec!["{\"a\":1}", "\"s\"", "[ ]"]
        );
        for bad in [
            "{}",
            "[]",
            "{\"Records\":{}}",
            "{\"Records\":[],\"Records\":[]}",
            "{\"Records\":[1,]}",
            "{\"Records\":[]} x",
            "{\"Records\":[01]}",
            "{\"Records\":[]",
        ] {
            assert!(log_file_record_texts(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod one_pass {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    const KEYS: [&str; 17] = [
        "eventVersion",
        "eventTime",
        "eventID",
        "eventName",
        "eventSource",
        "awsRegion",
        "recipientAccountId",
        "eventType",
        "userIdentity",
        "resources",
        "requestParameters",
        "readOnly",
        "managementEvent",
        "eventCategory",
        "errorCode",
        "sourceIPAddress",
        "somethingElse",
    ];

    const VALUES: [&str; 16] = [
        r#""2024-03-01T00:00:00Z""#,
        r#""1.08""#,
        r#""1.0""#,
        r#""e1""#,
        r#""us-east-1""#,
        r#""123456789012""#,
        "true",
        "false",
        "null",
        "12",
        r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","sessionContext":{"sessionIssuer":{"type":"Role"},"attributes":{"mfaAuthenticated":"false"}}}"#,
        r#"[{"ARN":"arn:aws:s3:::b","type":"AWS::S3::Bucket"},{"ARNPrefix":"arn:x"}]"#,
        r#"{"bucketName":"b","n":[1,{"k":null}]}"#,
        r#""with \"escapes\" \u00e9 \/""#,
        "[]",
        "{}",
    ];

    /// An element of `Records`: mostly objects of CloudTrail's keys (repeated, missing,
    /// of the wrong type, in any order), sometimes another value.
    fn element() -> impl Strategy<Value = String> {
        let member = (
            prop::sample::select(KEYS.to_vec()),
            prop::sample::select(VALUES.to_vec()),
            prop::sample::select(vec!["", " ", "\n  "]),
        );
        prop_oneof![
            4 => prop::collection::vec(member, 0..14).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(key, value, space)| format!("{space}\"{key}\"{space}:{space}{value}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
            1 => prop::sample::select(vec!["1", "\"text\"", "[1,{}]", "null", "[]"]).prop_map(String::from),
        ]
    }

    fn log_file() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(element(), 0..6),
            prop::sample::select(vec!["", " ", "\n", "\r\n  "]),
        )
            .prop_map(|(elements, space)| {
                format!(
                    "{space}{{\"Records\":{space}[{space}{}{space}]}}{space}",
                    elements.join(&format!("{space},{space}"))
                )
            })
    }

    /// `text` with a byte at each of `edits` replaced by a structural one.
    fn damaged(text: String, edits: Vec<(prop::sample::Index, u8)>) -> String {
        let mut bytes = text.into_bytes();
        for (at, byte) in edits {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The one pass gives what splitting and then parsing each text gives.
    fn agree(text: &str, max: usize) -> Result<(), TestCaseError> {
        match (
            log_file_record_texts_at_most(text, max),
            log_file_records_at_most(text, max),
        ) {
            (Ok(texts), Ok(records)) => {
                prop_assert_eq!(texts.len(), records.len());
                for (text, (element, parsed)) in texts.into_iter().zip(records) {
                    prop_assert_eq!(text, element);
                    match (EventRecord::parse_borrowed(text), parsed) {
                        (Ok(split), Ok(one_pass)) => {
                            prop_assert_eq!(split.json(), one_pass.json());
                            prop_assert_eq!(split.fields(), one_pass.fields());
                        }
                        (Err(split), Err(one_pass)) => {
                            prop_assert_eq!(split.to_string(), one_pass.to_string())
                        }
                        (split, one_pass) => prop_assert!(
                            false,
                            "{text}: split then parsed {:?}, one pass {:?}",
                            split.err(),
                            one_pass.err()
                        ),
                    }
                }
            }
            (Err(split), Err(one_pass)) => prop_assert_eq!(split.to_string(), one_pass.to_string()),
            (split, one_pass) => prop_assert!(
                false,
                "{text}: split {:?}, one pass {:?}",
                split.err(),
                one_pass.err()
            ),
        }
        Ok(())
    }

    #[test]
    fn the_generated_elements_are_often_records() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let parsed = (0..200)
            .filter(|_| {
                let text = element().new_tree(&mut runner).expect("element").current();
                EventRecord::parse_borrowed(&text).is_ok()
            })
            .count();
        assert!(parsed >= 40, "{parsed} of 200 parse as records");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn one_pass_parses_what_splitting_then_parsing_does(
            file in log_file(),
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), prop::sample::select(b"{}[]:,\"\\ 0tn".to_vec())),
                0..3,
            ),
            max in 0..8usize,
        ) {
            agree(&damaged(file, edits), max)?;
        }
    }
}
