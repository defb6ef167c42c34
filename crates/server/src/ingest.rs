//! `POST /events`: other producers send CloudTrail records; each record is validated on its
//! own (partial success, like PutAuditEvents) and the accepted ones are acknowledged only
//! once the durable event log has fsynced them.

use crate::api::{App, Exchange};
use bytes::Bytes;
use opentrail_model::{log_file_record_texts, EventError, EventRecord, RecordRef};
use opentrail_sigv4::RequestParts;
use opentrail_wire::ApiError;
use serde_json::{json, Value};
use std::io::Read;

/// The SigV4 service name of the ingest API.
pub const INGEST_SERVICE: &str = "opentrail";
/// Largest body after gzip decoding, so a small compressed body cannot expand without bound.
const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// One record's outcome: its position in the request and what happened.
enum Outcome {
    Accepted { event_id: String },
    Rejected { code: &'static str, message: String },
}

/// The body as sent, or gunzipped when `Content-Encoding: gzip`.
fn decode_body(parts: &http::request::Parts, body: &Bytes) -> Result<Bytes, ApiError> {
    let gzipped = parts
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzipped {
        return Ok(body.clone());
    }
    let mut decoded = Vec::with_capacity(body.len() * 8);
    flate2::read::MultiGzDecoder::new(&body[..])
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut decoded)
        .map_err(|e| ApiError::serialization(format!("request body is not valid gzip: {e}")))?;
    if decoded.len() as u64 > MAX_DECODED_BYTES {
        return Err(ApiError::new(
            "RequestEntityTooLargeException",
            format!("decoded request body is larger than {MAX_DECODED_BYTES} bytes"),
        )
        .with_status(413));
    }
    Ok(Bytes::from(decoded))
}

/// One record's text in a request body.
enum RecordText<'a> {
    /// An element of `{"Records":[...]}`: already checked to be well-formed JSON.
    Element(&'a str),
    /// A line of newline-delimited records, not parsed yet.
    Line(&'a str),
}

impl<'a> RecordText<'a> {
    fn text(&self) -> &'a str {
        match self {
            RecordText::Element(text) | RecordText::Line(text) => text,
        }
    }

    fn parse(&self) -> Result<RecordRef<'a>, EventError> {
        EventRecord::parse_borrowed(self.text())
    }
}

/// Splits a body into record texts: `{"Records":[...]}` or one JSON object per line.
fn split_records(body: &[u8]) -> Result<Vec<RecordText<'_>>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::serialization(format!("request body is not UTF-8: {e}")))?;
    // A body of records has a `Records` member; a first line that is a record has none
    // (serde stops at its end), so it is read as newline-delimited records.
    if text.trim_start().starts_with('{') {
        if let Ok(records) = log_file_record_texts(text) {
            return Ok(records.into_iter().map(RecordText::Element).collect());
        }
    }
    let lines: Vec<RecordText<'_>> = text
        .split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty())
        .map(RecordText::Line)
        .collect();
    if lines.is_empty() {
        return Err(ApiError::validation(
            "request body holds no records; send {\"Records\":[...]} or one JSON record per line",
        ));
    }
    Ok(lines)
}

fn check_record<'a>(
    text: &RecordText<'a>,
    caller_account: &str,
    any_account: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<RecordRef<'a>, (&'static str, String)> {
    let record = text.parse().map_err(|e| (e.code(), e.to_string()))?;
    record
        .validate_at(now)
        .map_err(|e| (e.code(), e.to_string()))?;
    let recipient = record.recipient_account_id();
    if !any_account && !recipient.is_empty() && recipient != caller_account {
        return Err((
            "AccountMismatch",
            format!(
                "recipientAccountId {recipient} is not the caller's account {caller_account}; this access key may only ingest its own account's events"
            ),
        ));
    }
    Ok(record)
}

/// An accepted record: its exact text, to append to the log, and its parsed form when
/// event history will want it.
type Accepted = (Bytes, Option<EventRecord>);

/// Decodes the body and checks each record: the outcome per record, and the accepted
/// records with their exact texts (slices of the decoded body), parsed records kept only
/// when `keep_parsed`.
fn check_body(
    parts: &http::request::Parts,
    body: &Bytes,
    caller_account: &str,
    any_account: bool,
    keep_parsed: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<Outcome>, Vec<Accepted>), ApiError> {
    let decoded = decode_body(parts, body)?;
    let texts = split_records(&decoded)?;
    let mut outcomes = Vec::with_capacity(texts.len());
    let mut accepted = Vec::with_capacity(texts.len());
    for text in texts {
        match check_record(&text, caller_account, any_account, now) {
            Ok(record) => {
                outcomes.push(Outcome::Accepted {
                    event_id: record.event_id().to_owned(),
                });
                // The record's exact text is a slice of the (decoded) body: share, don't copy.
                let exact = decoded.slice_ref(record.json().as_bytes());
                accepted.push((exact, keep_parsed.then(|| record.to_record())));
            }
            Err((code, message)) => outcomes.push(Outcome::Rejected { code, message }),
        }
    }
    Ok((outcomes, accepted))
}

pub async fn handle(
    app: &App,
    parts: &http::request::Parts,
    body: &Bytes,
    exchange: &mut Exchange,
) -> Result<Value, ApiError> {
    exchange.operation = Some("PutEvents".into());
    let signed = RequestParts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body[..],
    };
    let caller = app
        .auth
        .authenticate(&signed, INGEST_SERVICE, app.clock.now())?;
    exchange.caller = Some(caller.clone());
    // Inflating and parsing a body takes milliseconds: off the runtime.
    let (head, owned_body) = (parts.clone(), body.clone());
    let account = caller.account.as_str().to_owned();
    let any_account = caller.ingest_any_account;
    // Keeping parsed records for event history only pays when history will read them
    // before they are evicted; a lagging history (bulk imports) parses them itself.
    let lag = app
        .log
        .durable_end()
        .saturating_sub(app.history.applied_offset());
    let keep_parsed = app.parsed.reached_in_time(lag);
    let now = app.clock.now();
    let (outcomes, accepted) = tokio::task::spawn_blocking(move || {
        check_body(&head, &owned_body, &account, any_account, keep_parsed, now)
    })
    .await
    .map_err(|e| ApiError::internal(format!("ingest task failed: {e}")))??;
    let accepted_count = accepted.len();
    exchange.request_parameters = Some(json!({ "recordCount": outcomes.len() }));
    if !accepted.is_empty() {
        let mut texts = Vec::with_capacity(accepted.len());
        let mut parsed = Vec::new();
        for (text, record) in accepted {
            if let Some(record) = record {
                parsed.push((text.clone(), record));
            }
            texts.push(text);
        }
        app.parsed.insert_all(parsed);
        app.log.append(texts).await.map_err(|e| {
            ApiError::internal(format!("failed to make events durable: {e}")).with_status(503)
        })?;
    }
    let mut successful = Vec::with_capacity(accepted_count);
    let mut failed = Vec::new();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Accepted { event_id } => {
                successful.push(json!({ "id": index.to_string(), "eventID": event_id }))
            }
            Outcome::Rejected { code, message } => failed.push(
                json!({ "id": index.to_string(), "errorCode": code, "errorMessage": message }),
            ),
        }
    }
    exchange.response_summary = Some(json!({
        "successfulCount": successful.len(),
        "failedCount": failed.len(),
    }));
    Ok(json!({ "successful": successful, "failed": failed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_both_body_forms() {
        let records = br#"{"Records":[{"a":1},{"b":[2,3]}]}"#;
        let split = split_records(records).unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split[1].text(), r#"{"b":[2,3]}"#);
        let pretty = b"{\n  \"Records\": [\n    {\"a\": 1}\n  ]\n}\n";
        let split = split_records(pretty).unwrap();
        assert_eq!(split.len(), 1);
        assert_eq!(split[0].text(), r#"{"a": 1}"#);
        let ndjson = b"{\"a\":1}\r\n\n{\"b\":2}\n";
        let split = split_records(ndjson).unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].text(), r#"{"a":1}"#);
        assert!(split_records(b"  \n").is_err());
    }

    fn record(id: &str, account: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"Root"}},"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","eventID":"{id}","eventType":"AwsApiCall","recipientAccountId":"{account}"}}"#
        )
    }

    #[test]
    fn accepted_texts_are_exact_slices_whether_or_not_parsed_records_are_kept() {
        let body = format!(
            "{{\"Records\": [ {} , {}, {{\"eventID\":1}} ]}}",
            record("a", "111122223333"),
            record("b", "999988887777")
        );
        let (parts, _) = http::Request::new(()).into_parts();
        let body = Bytes::from(body);
        for keep_parsed in [true, false] {
            let (outcomes, accepted) = check_body(
                &parts,
                &body,
                "111122223333",
                false,
                keep_parsed,
                chrono::Utc::now(),
            )
            .unwrap();
            assert_eq!(outcomes.len(), 3);
            assert!(matches!(&outcomes[0], Outcome::Accepted { event_id } if event_id == "a"));
            assert!(
                matches!(&outcomes[1], Outcome::Rejected { code, .. } if *code == "AccountMismatch")
            );
            assert!(matches!(&outcomes[2], Outcome::Rejected { .. }));
            assert_eq!(accepted.len(), 1);
            let (text, parsed) = &accepted[0];
            assert_eq!(&text[..], record("a", "111122223333").as_bytes());
            assert_eq!(parsed.is_some(), keep_parsed);
            if let Some(parsed) = parsed {
                assert_eq!(parsed.as_bytes(), &text[..]);
            }
        }
    }
}
