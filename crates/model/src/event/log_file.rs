//! CloudTrail log files: `{"Records":[...]}` as delivered to S3, and newline-delimited
//! records as bulk imports carry them.

use super::error::EventError;
use super::record::EventRecord;
use serde::Deserialize;
use serde_json::value::RawValue;

const LOG_FILE_START: &[u8] = b"{\"Records\":[";
const LOG_FILE_END: &[u8] = b"]}\n";

#[derive(Deserialize)]
struct LogFileJson<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

/// Parses a log file `{"Records":[...]}`, with any whitespace between tokens. Each
/// record keeps its exact text; other top-level keys are ignored.
pub fn parse_log_file(bytes: &[u8]) -> Result<Vec<EventRecord>, EventError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| EventError::malformed(format!("log file is not utf-8: {error}")))?;
    // serde would also read a struct from an array; a log file must be an object.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(EventError::malformed("log file is not a json object"));
    }
    let file: LogFileJson<'_> = serde_json::from_str(text)
        .map_err(|error| EventError::malformed(format!("log file: {error}")))?;
    file.records
        .into_iter()
        .enumerate()
        .map(|(index, json)| {
            EventRecord::from_raw_value(json.to_owned()).map_err(|error| in_record(index, error))
        })
        .collect()
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
