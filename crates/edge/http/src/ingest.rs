//! `POST /events`: other producers send CloudTrail records; each record is validated on its
//! own (partial success, like PutAuditEvents) and the accepted ones are acknowledged only
//! once the durable event log has fsynced them.

use crate::accounts::AccountRegistry;
use crate::api::Output;
use crate::app::App;
use crate::exchange::Exchange;
use bytes::Bytes;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use opentrail_log::{LogError, LogRecord};
use opentrail_model::{log_file_records_at_most, EventError, EventRecord, KnownRegions, RecordRef};
pub use opentrail_wire::ingest::{INGEST_SERVICE, MAX_RECORDS_PER_REQUEST};
use opentrail_wire::ApiError;
use serde_json::json;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;

/// The channel named in the provenance of records sent to `POST /events`.
const PROVENANCE_CHANNEL: &str = "opentrail:PutEvents";

/// Largest body after gzip decoding, as a multiple of `--max-request-bytes`, so a small
/// compressed body cannot expand without bound (CloudTrail log files compress ~10:1).
pub const MAX_DECODED_FACTOR: usize = 8;

fn too_many_records() -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: the request holds more than {MAX_RECORDS_PER_REQUEST} records; send at most {MAX_RECORDS_PER_REQUEST} records per request"
    ))
}

/// One record's outcome: its position in the request and what happened.
enum Outcome {
    Accepted {
        event_id: String,
        /// A history event older than history's retention: delivered by trails, never
        /// searchable with LookupEvents.
        outside_retention: bool,
    },
    Rejected {
        code: &'static str,
        message: String,
    },
}

/// The body as sent, or gunzipped when `Content-Encoding: gzip`.
fn decode_body(
    parts: &http::request::Parts,
    body: &Bytes,
    max_decoded: usize,
) -> Result<Bytes, ApiError> {
    let gzipped = parts
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzipped {
        return Ok(body.clone());
    }
    let mut decoded = Vec::with_capacity(body.len().saturating_mul(8).min(max_decoded));
    flate2::read::MultiGzDecoder::new(&body[..])
        .take(max_decoded as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|e| ApiError::serialization(format!("request body is not valid gzip: {e}")))?;
    if decoded.len() > max_decoded {
        return Err(ApiError::new(
            "RequestEntityTooLargeException",
            format!("decoded request body is larger than the limit of {max_decoded} bytes"),
        )
        .with_status(413));
    }
    Ok(Bytes::from(decoded))
}

/// One record's text in a request body.
// Elements are kept parsed side by side in one vector per request (one allocation),
// whose size is what the parse is.
#[allow(clippy::large_enum_variant)]
enum RecordText<'a> {
    /// An element of `{"Records":[...]}` (well-formed JSON), parsed as the body was read.
    Element(Result<RecordRef<'a>, EventError>),
    /// A line of newline-delimited records, not parsed yet.
    Line(&'a str),
}

impl<'a> RecordText<'a> {
    #[cfg(test)]
    fn text(&self) -> &'a str {
        match self {
            RecordText::Element(Ok(record)) => record.json(),
            RecordText::Element(Err(_)) => "",
            RecordText::Line(text) => text,
        }
    }

    fn parse(self) -> Result<RecordRef<'a>, EventError> {
        match self {
            RecordText::Element(parsed) => parsed,
            RecordText::Line(text) => EventRecord::parse_borrowed(text),
        }
    }
}

/// Splits a body into record texts: `{"Records":[...]}` or one JSON object per line.
/// The decoded body as text (shared, not copied).
fn body_text(body: Bytes) -> Result<ByteString, ApiError> {
    ByteString::try_from(body)
        .map_err(|e| ApiError::serialization(format!("request body is not UTF-8: {e}")))
}

fn split_records(text: &str) -> Result<Vec<RecordText<'_>>, ApiError> {
    // A body of records has a `Records` member; a first line that is a record has none
    // (serde stops at its end), so it is read as newline-delimited records.
    if text.trim_start().starts_with('{') {
        match log_file_records_at_most(text, MAX_RECORDS_PER_REQUEST) {
            Ok(records) => {
                return Ok(records
                    .into_iter()
                    .map(|(_, parsed)| RecordText::Element(parsed))
                    .collect())
            }
            Err(EventError::TooManyRecords { .. }) => return Err(too_many_records()),
            Err(_) => {}
        }
    }
    let mut lines = Vec::new();
    for line in text
        .split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty())
    {
        if lines.len() == MAX_RECORDS_PER_REQUEST {
            return Err(too_many_records());
        }
        lines.push(RecordText::Line(line));
    }
    if lines.is_empty() {
        return Err(ApiError::validation(
            "request body holds no records; send {\"Records\":[...]} or one JSON record per line",
        ));
    }
    Ok(lines)
}

/// The event sources of OpenTrail's own audit events (see `self_audit`).
const SELF_AUDIT_SOURCES: [&str; 2] = ["cloudtrail.amazonaws.com", "cloudtrail-data.amazonaws.com"];

/// Whether a record claims to be one of OpenTrail's own audit events: an `AwsApiCall` of
/// the CloudTrail API or of event ingest.
fn claims_self_audit(record: &RecordRef<'_>) -> bool {
    record.event_type() == "AwsApiCall" && SELF_AUDIT_SOURCES.contains(&record.event_source())
}

/// The accounts this server records audit events for: every registered account (the
/// bootstrap account, those made by `opentrail accounts create` and by ingest). Looked up
/// once per account and request, in the registry's in-memory cache first.
struct ServerAccounts {
    server: String,
    registry: Option<Arc<AccountRegistry>>,
    /// Per account seen in this request: registered (before this request), or `None` when
    /// the registry could not be read.
    seen: RefCell<HashMap<String, Option<bool>>>,
}

impl ServerAccounts {
    fn new(server: String, registry: Option<Arc<AccountRegistry>>) -> Self {
        Self {
            server,
            registry,
            seen: RefCell::new(HashMap::new()),
        }
    }

    fn lookup(&self, account: &str) -> Option<bool> {
        if account == self.server {
            return Some(true);
        }
        let Some(registry) = &self.registry else {
            return Some(false);
        };
        if let Some(known) = self.seen.borrow().get(account) {
            return *known;
        }
        let known = match registry.is_registered(account) {
            Ok(known) => Some(known),
            Err(e) => {
                tracing::warn!(error = %e, account, "failed to read the accounts registry; refusing records that claim to be this server's audit events");
                None
            }
        };
        self.seen.borrow_mut().insert(account.to_owned(), known);
        known
    }

    /// Whether `account` is one of this server's (when unsure: yes).
    fn contains(&self, account: &str) -> bool {
        self.lookup(account).unwrap_or(true)
    }

    /// Whether `account` was unknown to this server before this request (when unsure: yes,
    /// registering it again does no harm).
    fn is_new(&self, account: &str) -> bool {
        !self.lookup(account).unwrap_or(false)
    }
}

/// What each record of a request is checked against.
struct RecordPolicy {
    caller_account: String,
    /// The key may ingest other accounts' records.
    any_account: bool,
    regions: KnownRegions,
    /// Events older than this are outside event history's retention.
    history_cutoff: DateTime<Utc>,
    /// The key may send records claiming to be this server's own audit events.
    forward_audit: bool,
    server_accounts: ServerAccounts,
    /// The server's clock: event times are accepted up to a day after it.
    now: DateTime<Utc>,
}

/// Whether event history keeps `record` (management and Insights events), as
/// `opentrail_history::HistoryCategory::of` decides.
fn is_history_event(record: &RecordRef<'_>) -> bool {
    match record.event_category() {
        "Insight" => true,
        "Management" => record.management_event(),
        _ => false,
    }
}

/// Why a record without a recipient account cannot be stored.
const NO_RECIPIENT: &str = "missing required field recipientAccountId: event history and trails file each record under its recipient account, and this record names none (neither recipientAccountId nor a userIdentity.accountId of the account's own identity, which OpenTrail takes when recipientAccountId is absent)";

/// A record's validation error as an outcome: its code and message.
fn rejection(error: EventError) -> (&'static str, String) {
    match error {
        EventError::MissingField {
            field: "recipientAccountId",
        } => ("MissingField", NO_RECIPIENT.to_owned()),
        error => (error.code(), error.to_string()),
    }
}

fn check_record<'a>(
    text: RecordText<'a>,
    policy: &RecordPolicy,
) -> Result<RecordRef<'a>, (&'static str, String)> {
    let record = text.parse().map_err(rejection)?;
    record.validate_at(policy.now).map_err(rejection)?;
    let region = record.aws_region();
    if !policy.regions.contains(region) {
        return Err((
            "InvalidField",
            format!(
                "invalid field awsRegion: {region:?} is not a region of the aws, aws-cn or aws-us-gov partitions nor one of this server's --extra-regions"
            ),
        ));
    }
    let caller_account = policy.caller_account.as_str();
    let recipient = record.recipient_account_id();
    if recipient.is_empty() {
        // Insights records may lack it, but trails and event history file every record
        // under its recipient account: one without cannot be stored.
        return Err(("MissingField", NO_RECIPIENT.to_owned()));
    }
    if !policy.any_account && recipient != caller_account {
        return Err((
            "AccountMismatch",
            format!(
                "recipientAccountId {recipient} is not the caller's account {caller_account}; this access key may only ingest its own account's events"
            ),
        ));
    }
    if !policy.forward_audit
        && claims_self_audit(&record)
        && policy.server_accounts.contains(recipient)
    {
        return Err((
            "ForwardAuditDenied",
            format!(
                "an {} record of {} for account {recipient} claims to be this server's own audit event; only a key created with `opentrail keys create --forward-audit` may send one",
                record.event_type(),
                record.event_source()
            ),
        ));
    }
    Ok(record)
}

/// About the memory of an accepted record and its parse in the log's in-memory tail.
const PARSED_RECORD_BYTES: u64 = 2048;

/// An accepted record as appended to the log: its exact text, with its parsed form when
/// the log's readers will get it in time.
type Accepted = LogRecord;

/// What a request's records amount to: the outcome per record, the accepted records, and
/// the accounts of accepted records this server did not know (keys that may ingest for
/// any account register them).
struct Checked {
    outcomes: Vec<Outcome>,
    accepted: Vec<Accepted>,
    new_accounts: BTreeSet<String>,
}

/// Decodes the body and checks each record: the outcome per record, and the accepted
/// records: parsed events (whose text is the record's exact text) when `keep_parsed`, else
/// the exact texts alone (slices of the decoded body).
fn check_body(
    parts: &http::request::Parts,
    body: &Bytes,
    policy: &RecordPolicy,
    keep_parsed: bool,
    max_decoded: usize,
) -> Result<Checked, ApiError> {
    let decoded = body_text(decode_body(parts, body, max_decoded)?)?;
    let texts = split_records(&decoded)?;
    let mut outcomes = Vec::with_capacity(texts.len());
    let mut accepted = Vec::with_capacity(texts.len());
    let mut new_accounts = BTreeSet::new();
    for text in texts {
        match check_record(text, policy) {
            Ok(record) => {
                let recipient = record.recipient_account_id();
                if policy.any_account
                    && recipient != policy.caller_account
                    && policy.server_accounts.is_new(recipient)
                {
                    new_accounts.insert(recipient.to_owned());
                }
                let outside_retention = is_history_event(&record)
                    && record
                        .event_time()
                        .is_some_and(|time| time < policy.history_cutoff);
                outcomes.push(Outcome::Accepted {
                    event_id: record.event_id().to_owned(),
                    outside_retention,
                });
                // Slices of the (decoded) body: shared, not copied.
                accepted.push(if keep_parsed {
                    LogRecord::from_event(record.to_record_within(&decoded))
                } else {
                    LogRecord::from_bytes(decoded.as_bytes().slice_ref(record.json().as_bytes()))
                });
            }
            Err((code, message)) => outcomes.push(Outcome::Rejected { code, message }),
        }
    }
    Ok(Checked {
        outcomes,
        accepted,
        new_accounts,
    })
}

pub(crate) async fn handle(
    app: &App,
    parts: &http::request::Parts,
    body: &Bytes,
    exchange: &mut Exchange,
) -> Result<Output, ApiError> {
    exchange.operation = Some(crate::audit::Call::PutEvents);
    let caller = crate::exchange::authenticated_caller(exchange)?;
    // Inflating and parsing a body takes milliseconds: off the runtime.
    let (head, owned_body) = (parts.clone(), body.clone());
    let policy = RecordPolicy {
        caller_account: caller.account.as_str().to_owned(),
        any_account: caller.ingest_any_account,
        regions: app.regions.clone(),
        history_cutoff: app.clock.now()
            - chrono::Duration::days(i64::from(app.history_retention_days)),
        forward_audit: caller.forward_audit,
        server_accounts: ServerAccounts::new(
            app.account.to_string(),
            Some(Arc::clone(&app.accounts)),
        ),
        now: app.clock.now(),
    };
    // Handing the log parsed records only pays when event history will read them from its
    // in-memory tail, before they are evicted (a parsed record of ~1.1 KB holds ~1.8 KB
    // there); a lagging history (bulk imports) parses them itself.
    let lag = app
        .log
        .durable_end()
        .saturating_sub(app.history.applied_offset());
    let keep_parsed = lag.saturating_mul(PARSED_RECORD_BYTES) < app.log.parsed_tail_bytes() as u64;
    let max_decoded = app.max_request_bytes.saturating_mul(MAX_DECODED_FACTOR);
    let registry = Arc::clone(&app.accounts);
    let (outcomes, accepted) = tokio::task::spawn_blocking(move || {
        let checked = check_body(&head, &owned_body, &policy, keep_parsed, max_decoded)?;
        // Records of accounts this server did not host yet create them (origin `ingest`),
        // before the records are appended.
        for account in &checked.new_accounts {
            if let Err(e) = registry.register_from_ingest(account) {
                tracing::warn!(error = %e, account, "failed to register an account of ingested records; its records are kept, create it with `opentrail accounts create --account-id`");
            }
        }
        Ok::<_, ApiError>((checked.outcomes, checked.accepted))
    })
    .await
    .map_err(|e| ApiError::internal(format!("ingest task failed: {e}")))??;
    let accepted_count = accepted.len();
    exchange.request_parameters = Some(json!({ "recordCount": outcomes.len() }));
    if !accepted.is_empty() {
        // Who sent them travels beside the records (which stay byte-identical): a marker
        // record in the same append, right before them.
        let provenance = opentrail_model::Provenance {
            access_key_id: caller.access_key_id.clone(),
            principal: caller.principal_arn(),
            channel: PROVENANCE_CHANNEL.to_owned(),
            source_ip_address: exchange.source_ip.clone(),
        };
        let mut appended_records = Vec::with_capacity(accepted.len() + 1);
        appended_records.push(LogRecord::from_bytes(Bytes::from(
            provenance.marker(accepted.len() as u64),
        )));
        appended_records.extend(accepted);
        app.log
            .append_records(appended_records)
            .await
            .map_err(|e| match e {
                // Temporary (a full disk, say): nothing was acknowledged; retrying is safe.
                LogError::WriterFailed { .. } | LogError::Closed => ApiError::new(
                    "ServiceUnavailable",
                    format!(
                        "the events could not be made durable; none were stored, retry later: {e}"
                    ),
                )
                .with_status(503),
                e => ApiError::internal(format!("failed to make events durable: {e}"))
                    .with_status(503),
            })?;
    }
    let mut answer = PutEventsAnswer {
        successful: Vec::with_capacity(accepted_count),
        failed: Vec::new(),
    };
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Accepted {
                event_id,
                outside_retention,
            } => answer.successful.push(Successful {
                id: index,
                event_id,
                history: outside_retention.then_some("outside-retention"),
            }),
            Outcome::Rejected { code, message } => answer.failed.push(Failed {
                id: index,
                error_code: code,
                error_message: message,
            }),
        }
    }
    exchange.response_summary = Some(json!({
        "successfulCount": answer.successful.len(),
        "failedCount": answer.failed.len(),
    }));
    // Written directly: a tree of values for every record cost more than the rest of the
    // answer (a request carries up to MAX_RECORDS_PER_REQUEST records).
    serde_json::to_string(&answer)
        .map(Output::Text)
        .map_err(|e| ApiError::internal(format!("failed to write the answer: {e}")))
}

/// The answer to `POST /events`: `{"successful":[...],"failed":[...]}`.
#[derive(serde::Serialize)]
struct PutEventsAnswer {
    successful: Vec<Successful>,
    failed: Vec<Failed>,
}

/// An accepted record: its index in the request (a string) and its eventID.
#[derive(serde::Serialize)]
struct Successful {
    #[serde(serialize_with = "index_string")]
    id: usize,
    #[serde(rename = "eventID")]
    event_id: String,
    /// `outside-retention` when event history will not keep it (older than its retention).
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<&'static str>,
}

/// A refused record: its index in the request (a string) and why.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Failed {
    #[serde(serialize_with = "index_string")]
    id: usize,
    error_code: &'static str,
    error_message: String,
}

fn index_string<S: serde::Serializer>(index: &usize, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_written_as_a_tree_of_values_would_be() {
        let answer = PutEventsAnswer {
            successful: vec![
                Successful {
                    id: 0,
                    event_id: "e\"1".into(),
                    history: None,
                },
                Successful {
                    id: 12,
                    event_id: "e2".into(),
                    history: Some("outside-retention"),
                },
            ],
            failed: vec![Failed {
                id: 1,
                error_code: "InvalidField",
                error_message: "bad \u{1} \"x\" é\n".into(),
            }],
        };
        let tree = json!({
            "successful": [
                { "id": "0", "eventID": "e\"1" },
                { "id": "12", "eventID": "e2", "history": "outside-retention" },
            ],
            "failed": [
                { "id": "1", "errorCode": "InvalidField", "errorMessage": "bad \u{1} \"x\" é\n" },
            ],
        });
        assert_eq!(serde_json::to_string(&answer).unwrap(), tree.to_string());
    }

    #[test]
    fn splits_both_body_forms() {
        let records = r#"{"Records":[{"a":1},{"b":[2,3]}]}"#;
        let split = split_records(records).unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split[1].text(), r#"{"b":[2,3]}"#);
        let pretty = "{\n  \"Records\": [\n    {\"a\": 1}\n  ]\n}\n";
        let split = split_records(pretty).unwrap();
        assert_eq!(split.len(), 1);
        assert_eq!(split[0].text(), r#"{"a": 1}"#);
        let ndjson = "{\"a\":1}\r\n\n{\"b\":2}\n";
        let split = split_records(ndjson).unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].text(), r#"{"a":1}"#);
        assert!(split_records("  \n").is_err());
    }

    #[test]
    fn too_many_records_are_refused_before_they_are_collected() {
        let at_limit = "{}\n".repeat(MAX_RECORDS_PER_REQUEST);
        assert_eq!(
            split_records(&at_limit).unwrap().len(),
            MAX_RECORDS_PER_REQUEST
        );
        let over = "{}\n".repeat(MAX_RECORDS_PER_REQUEST + 1);
        let error = split_records(&over).err().unwrap();
        assert_eq!(error.code, "ValidationException");
        assert!(error.message.contains("10000"));
        let file = format!(
            "{{\"Records\":[{}]}}",
            vec!["{}"; MAX_RECORDS_PER_REQUEST + 1].join(",")
        );
        let error = split_records(&file).err().unwrap();
        assert_eq!(error.code, "ValidationException");
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
        let policy = RecordPolicy {
            caller_account: "111122223333".into(),
            any_account: false,
            regions: KnownRegions::default(),
            history_cutoff: chrono::Utc::now() - chrono::Duration::days(90),
            forward_audit: false,
            server_accounts: ServerAccounts::new("111122223333".into(), None),
            now: chrono::Utc::now(),
        };
        for keep_parsed in [true, false] {
            let Checked {
                outcomes,
                accepted,
                new_accounts,
            } = check_body(&parts, &body, &policy, keep_parsed, 1 << 20).unwrap();
            assert!(new_accounts.is_empty());
            assert_eq!(outcomes.len(), 3);
            assert!(
                matches!(&outcomes[0], Outcome::Accepted { event_id, outside_retention: true } if event_id == "a")
            );
            assert!(
                matches!(&outcomes[1], Outcome::Rejected { code, .. } if *code == "AccountMismatch")
            );
            assert!(matches!(&outcomes[2], Outcome::Rejected { .. }));
            assert_eq!(accepted.len(), 1);
            let appended = &accepted[0];
            assert_eq!(
                &appended.bytes()[..],
                record("a", "111122223333").as_bytes()
            );
            assert_eq!(appended.event().is_some(), keep_parsed);
            if let Some(parsed) = appended.event() {
                assert_eq!(parsed.as_bytes(), &appended.bytes()[..]);
            }
        }
    }

    fn record_1_0(identity: &str, source: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.0","userIdentity":{identity},"eventTime":"2024-01-01T00:00:00Z","eventSource":"{source}","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","requestParameters":null,"responseElements":null}}"#
        )
    }

    #[test]
    fn old_records_are_checked_with_their_derived_values() {
        let own = r#"{"type":"IAMUser","accountId":"111122223333","userName":"alice"}"#;
        let other = r#"{"type":"IAMUser","accountId":"999988887777","userName":"bob"}"#;
        let cross = r#"{"type":"AWSAccount","accountId":"111122223333"}"#;
        let body = [
            record_1_0(own, "s3.amazonaws.com"),
            record_1_0(other, "s3.amazonaws.com"),
            record_1_0(cross, "s3.amazonaws.com"),
            record_1_0(own, "cloudtrail.amazonaws.com"),
        ]
        .join("\n");
        let (parts, _) = http::Request::new(()).into_parts();
        let policy = RecordPolicy {
            caller_account: "111122223333".into(),
            any_account: false,
            regions: KnownRegions::default(),
            history_cutoff: chrono::Utc::now() - chrono::Duration::days(90_000),
            forward_audit: false,
            server_accounts: ServerAccounts::new("111122223333".into(), None),
            now: chrono::Utc::now(),
        };
        let checked =
            check_body(&parts, &Bytes::from(body.clone()), &policy, false, 1 << 20).unwrap();
        let expected_id = EventRecord::from_json(&record_1_0(own, "s3.amazonaws.com"))
            .unwrap()
            .event_id()
            .to_owned();
        assert_eq!(expected_id.len(), 36);
        let outcomes = &checked.outcomes;
        assert!(
            matches!(&outcomes[0], Outcome::Accepted { event_id, .. } if *event_id == expected_id)
        );
        assert!(
            matches!(&outcomes[1], Outcome::Rejected { code, .. } if *code == "AccountMismatch")
        );
        assert!(
            matches!(&outcomes[2], Outcome::Rejected { code, message } if *code == "MissingField" && message.contains("userIdentity.accountId"))
        );
        // A 1.0 record of the CloudTrail API is an AwsApiCall: it may not pose as this
        // server's own audit event either.
        assert!(
            matches!(&outcomes[3], Outcome::Rejected { code, .. } if *code == "ForwardAuditDenied")
        );
        // Stored as sent, byte for byte.
        assert_eq!(checked.accepted.len(), 1);
        assert_eq!(
            &checked.accepted[0].bytes()[..],
            record_1_0(own, "s3.amazonaws.com").as_bytes()
        );
    }

    #[test]
    fn self_audit_claims_need_forward_audit() {
        let forged =
            record("f", "111122223333").replace("s3.amazonaws.com", "cloudtrail.amazonaws.com");
        let foreign = forged.replace("111122223333", "999988887777");
        let body = Bytes::from(format!("{forged}\n{foreign}\n"));
        let (parts, _) = http::Request::new(()).into_parts();
        for forward_audit in [false, true] {
            let policy = RecordPolicy {
                caller_account: "111122223333".into(),
                any_account: true,
                regions: KnownRegions::default(),
                history_cutoff: chrono::Utc::now(),
                forward_audit,
                server_accounts: ServerAccounts::new("111122223333".into(), None),
                now: chrono::Utc::now(),
            };
            let checked = check_body(&parts, &body, &policy, false, 1 << 20).unwrap();
            assert_eq!(
                checked.new_accounts.into_iter().collect::<Vec<_>>(),
                vec!["999988887777".to_owned()]
            );
            let outcomes = checked.outcomes;
            assert_eq!(
                matches!(&outcomes[0], Outcome::Rejected { code, .. } if *code == "ForwardAuditDenied"),
                !forward_audit
            );
            assert!(matches!(&outcomes[1], Outcome::Accepted { .. }));
        }
    }
}
