//! CloudTrail log files: `{"Records":[...]}` as delivered to S3, and newline-delimited
//! records as bulk imports carry them.

use super::error::EventError;
use super::record::EventRecord;
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
    let mut records: Option<Vec<&str>> = None;
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
        let texts = records.insert(Vec::new());
        scanner
            .array(|scanner| {
                if texts.len() >= max {
                    too_many = true;
                    return Err(ScanError::at("too many records".into(), 0));
                }
                let (start, end) = scanner.value()?;
                texts.push(&text[start..end]);
                Ok(())
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
