//! `POST /PutAuditEvents` (service `cloudtrail-data`, rest-json): producers outside AWS
//! send events through a channel. Each event is checked on its own (partial success);
//! the accepted ones are appended to the durable event log as `ActivityAuditLog` records
//! and acknowledged only once the log has fsynced them.
//!
//! The record appended for an accepted event has the shape CloudTrail Lake stores:
//! `eventVersion`, `eventCategory` `ActivityAuditLog`, `eventType` `ActivityLog`,
//! `eventID` (the `successful[].eventID` of the answer), `eventTime` (the producer's,
//! normalised), `awsRegion` (the channel's), `recipientAccountId` (the channel owner),
//! `metadata` {`ingestionTime`, `channelARN`}, `eventData` (the producer's JSON object,
//! as sent) and `eventDataChecksum` (the producer's, else the base64 SHA-256 of the
//! `eventData` text sent). Event history and trail delivery skip such records, as on AWS.

use crate::app::App;
use crate::audit::Call;
use crate::exchange::Exchange;
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use opentrail_log::{LogError, LogRecord};
use opentrail_model::iso8601;
use opentrail_operations::Operation;
use opentrail_stores::{IngestTarget, IngestionAttempt};
use opentrail_wire::ApiError;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The SigV4 service name of PutAuditEvents.
pub const CLOUDTRAIL_DATA_SERVICE: &str = opentrail_operations::CLOUDTRAIL_DATA_SIGNING_NAME;

/// Most events one call may carry (the model's `AuditEvents` max).
pub const MAX_AUDIT_EVENTS: usize = 100;

/// Largest request body: 1 MB per call, as AWS documents.
pub const MAX_AUDIT_EVENTS_BODY_BYTES: usize = 1024 * 1024;

/// Largest `eventData`: 256 KB, as AWS documents.
pub const MAX_EVENT_DATA_BYTES: usize = 256 * 1024;

/// `eventVersion` of the records OpenTrail writes for channel events.
const EVENT_VERSION: &str = "1.11";

/// The provenance channel of records sent with PutAuditEvents.
const PROVENANCE_CHANNEL: &str = "cloudtrail-data:PutAuditEvents";

/// The per-event error code when no destination store of the channel takes events.
pub const INGESTION_STOPPED: &str = "IngestionStopped";

/// Fields `eventData` must have (the integrations event schema), in the order checked.
const REQUIRED_STRINGS: [&str; 6] = [
    "version",
    "eventSource",
    "eventName",
    "eventTime",
    "UID",
    "recipientAccountId",
];

/// Optional `eventData` fields that must be strings when present.
const OPTIONAL_STRINGS: [&str; 5] = [
    "userAgent",
    "errorCode",
    "errorMessage",
    "sourceIPAddress",
    "eventCategory",
];

/// One event of the request, as read from the body.
#[derive(Debug)]
struct AuditEvent {
    id: String,
    event_data: String,
    checksum: Option<String>,
}

/// An event's outcome: accepted (its eventID and log record) or refused.
type Outcome = Result<(String, Bytes), (&'static str, String)>;

fn validation(message: String) -> ApiError {
    ApiError::validation(format!("1 validation error detected: {message}"))
}

/// The query string's members, percent-decoded.
fn query_value(parts: &http::request::Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_encoding::percent_decode_str(key)
            .decode_utf8()
            .ok()?;
        if key != name {
            return None;
        }
        percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .ok()
            .map(|v| v.into_owned())
    })
}

fn check_external_id(value: &str) -> Result<(), ApiError> {
    let len = value.chars().count();
    let allowed = |c: char| c.is_alphanumeric() || c == '_' || "+=,.@:/-".contains(c);
    if (2..=1224).contains(&len) && value.chars().all(allowed) {
        return Ok(());
    }
    Err(validation(format!(
        "Value '{value}' at 'externalId' failed to satisfy constraint: Member must be 2 to 1224 characters of letters, digits and +=,.@:/-_"
    )))
}

fn is_event_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads `{"auditEvents":[{"id","eventData","eventDataChecksum"}...]}` with the model's
/// type, presence and length rules.
fn parse_events(body: &[u8]) -> Result<Vec<AuditEvent>, ApiError> {
    if body.len() > MAX_AUDIT_EVENTS_BODY_BYTES {
        return Err(ApiError::new(
            "RequestEntityTooLargeException",
            format!(
                "request body is {} bytes; PutAuditEvents takes at most {MAX_AUDIT_EVENTS_BODY_BYTES} bytes (1 MB) per call",
                body.len()
            ),
        )
        .with_status(413));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(mut request) = value else {
        return Err(ApiError::serialization(
            "request body must be a JSON object",
        ));
    };
    let events =
        match request.remove("auditEvents") {
            None | Some(Value::Null) => return Err(validation(
                "Value null at 'auditEvents' failed to satisfy constraint: Member must not be null"
                    .into(),
            )),
            Some(Value::Array(events)) => events,
            Some(_) => return Err(ApiError::serialization("expected list at 'auditEvents'")),
        };
    if events.is_empty() || events.len() > MAX_AUDIT_EVENTS {
        return Err(validation(format!(
            "Value at 'auditEvents' failed to satisfy constraint: Member must have length between 1 and {MAX_AUDIT_EVENTS} (it has {})",
            events.len()
        )));
    }
    let mut parsed = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        let at = |member: &str| format!("auditEvents.{}.member.{member}", index + 1);
        let Value::Object(mut fields) = event else {
            return Err(ApiError::serialization(format!(
                "expected structure at 'auditEvents.{}.member'",
                index + 1
            )));
        };
        let mut take = |member: &str, required: bool| -> Result<Option<String>, ApiError> {
            match fields.remove(member) {
                None | Some(Value::Null) if required => Err(validation(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    at(member)
                ))),
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text)),
                Some(_) => Err(ApiError::serialization(format!(
                    "expected string at '{}'",
                    at(member)
                ))),
            }
        };
        let id = take("id", true)?.unwrap_or_default();
        let event_data = take("eventData", true)?.unwrap_or_default();
        let checksum = take("eventDataChecksum", false)?;
        if !is_event_id(&id) {
            return Err(validation(format!(
                "Value '{id}' at '{}' failed to satisfy constraint: Member must be 1 to 128 characters matching ^[-_A-Za-z0-9]+$",
                at("id")
            )));
        }
        parsed.push(AuditEvent {
            id,
            event_data,
            checksum,
        });
    }
    let mut seen = HashSet::with_capacity(parsed.len());
    if let Some(duplicate) = parsed.iter().find(|e| !seen.insert(e.id.as_str())) {
        return Err(ApiError::new(
            "DuplicatedAuditEventId",
            format!(
                "auditEvents holds more than one event with id {}; each event of a call needs its own id",
                duplicate.id
            ),
        ));
    }
    Ok(parsed)
}

/// `eventTime` as the integrations schema writes it (`yyyy-MM-ddTHH:mm:ss`, UTC), with
/// or without a zone or fraction.
fn parse_event_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    None
}

/// Checks `eventData` against the integrations event schema: an object with the required
/// fields of the right types, naming the channel owner as its recipient.
fn check_event_data(
    data: &Map<String, Value>,
    owner: &str,
) -> Result<DateTime<Utc>, (&'static str, String)> {
    let missing = |field: &str| {
        (
            "FieldNotFound",
            format!("eventData is missing required field {field}"),
        )
    };
    let not_string = |field: &str| ("InvalidData", format!("eventData.{field} must be a string"));
    let string = |field: &'static str| -> Result<&str, (&'static str, String)> {
        match data.get(field) {
            None | Some(Value::Null) => Err(missing(field)),
            Some(Value::String(text)) if text.is_empty() => Err((
                "InvalidData",
                format!("eventData.{field} must not be empty"),
            )),
            Some(Value::String(text)) => Ok(text),
            Some(_) => Err(not_string(field)),
        }
    };
    let identity = match data.get("userIdentity") {
        None | Some(Value::Null) => return Err(missing("userIdentity")),
        Some(Value::Object(identity)) => identity,
        Some(_) => {
            return Err((
                "InvalidData",
                "eventData.userIdentity must be an object".into(),
            ))
        }
    };
    for field in ["type", "principalId"] {
        match identity.get(field) {
            None | Some(Value::Null) => return Err(missing(&format!("userIdentity.{field}"))),
            Some(Value::String(_)) => {}
            Some(_) => return Err(not_string(&format!("userIdentity.{field}"))),
        }
    }
    for field in REQUIRED_STRINGS {
        string(field)?;
    }
    for field in OPTIONAL_STRINGS {
        if !matches!(
            data.get(field),
            None | Some(Value::Null) | Some(Value::String(_))
        ) {
            return Err(not_string(field));
        }
    }
    let time_text = string("eventTime")?;
    let time = parse_event_time(time_text).ok_or_else(|| {
        (
            "InvalidData",
            format!("eventData.eventTime {time_text:?} is not a time in yyyy-MM-ddTHH:mm:ssZ form (UTC)"),
        )
    })?;
    let recipient = string("recipientAccountId")?;
    if recipient != owner {
        return Err((
            "InvalidRecipient",
            format!(
                "eventData.recipientAccountId {recipient} is not the channel owner's account {owner}"
            ),
        ));
    }
    Ok(time)
}

fn checksum_matches(event_data: &str, checksum: &str) -> bool {
    use base64::Engine;
    let digest = Sha256::digest(event_data.as_bytes());
    base64::engine::general_purpose::STANDARD
        .decode(checksum.trim())
        .is_ok_and(|claimed| claimed == digest.as_slice())
}

/// Checks one event and builds its log record.
fn check_event(event: &AuditEvent, target: &IngestTarget, now: DateTime<Utc>) -> Outcome {
    if !target.has_enabled_destination() {
        let stores: Vec<&str> = target
            .destinations
            .iter()
            .map(|(arn, _)| arn.as_str())
            .collect();
        return Err((
            INGESTION_STOPPED,
            format!(
                "no destination event data store of channel {} is ingesting events (ENABLED): {}",
                target.channel_arn,
                stores.join(", ")
            ),
        ));
    }
    if event.event_data.len() > MAX_EVENT_DATA_BYTES {
        return Err((
            "FieldTooLong",
            format!(
                "eventData is {} bytes; the limit is {MAX_EVENT_DATA_BYTES} bytes (256 KB)",
                event.event_data.len()
            ),
        ));
    }
    if let Some(checksum) = &event.checksum {
        if !checksum_matches(&event.event_data, checksum) {
            return Err((
                "InvalidChecksum",
                "eventDataChecksum is not the base64 SHA-256 of eventData".into(),
            ));
        }
    }
    let data: Map<String, Value> = match serde_json::from_str(&event.event_data) {
        Ok(Value::Object(data)) => data,
        Ok(_) => return Err(("InvalidData", "eventData must be a JSON object".into())),
        Err(e) => return Err(("InvalidData", format!("eventData is not valid JSON: {e}"))),
    };
    let event_time = check_event_data(&data, target.account.as_str())?;
    // The producer's checksum, else one of the eventData it sent: what Lake's
    // `eventDataChecksum` column shows.
    let checksum = event
        .checksum
        .as_deref()
        .map(|checksum| checksum.trim().to_string())
        .unwrap_or_else(|| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .encode(Sha256::digest(event.event_data.as_bytes()))
        });
    let event_id = uuid::Uuid::new_v4().to_string();
    let record = json!({
        "eventVersion": EVENT_VERSION,
        "eventCategory": "ActivityAuditLog",
        "eventType": "ActivityLog",
        "eventID": event_id,
        "eventTime": iso8601(event_time),
        "awsRegion": target.region.as_str(),
        "recipientAccountId": target.account.as_str(),
        "metadata": {
            "ingestionTime": iso8601(now),
            "channelARN": target.channel_arn,
        },
        "eventData": Value::Object(data),
        "eventDataChecksum": checksum,
    });
    Ok((event_id, Bytes::from(record.to_string())))
}

fn durable_error(e: LogError) -> ApiError {
    match e {
        // Temporary (a full disk, say): nothing was acknowledged; retrying is safe.
        LogError::WriterFailed { .. } | LogError::Closed => ApiError::new(
            "ServiceUnavailable",
            format!("the events could not be made durable; none were stored, retry later: {e}"),
        )
        .with_status(503),
        e => ApiError::internal(format!("failed to make events durable: {e}")).with_status(503),
    }
}

pub async fn handle(
    app: &App,
    parts: &http::request::Parts,
    body: &Bytes,
    exchange: &mut Exchange,
) -> Result<Value, ApiError> {
    exchange.operation = Some(Call::Api(Operation::PutAuditEvents));
    let caller = crate::exchange::authenticated_caller(exchange)?;
    if parts.method != http::Method::POST || parts.uri.path() != "/PutAuditEvents" {
        return Err(ApiError::new(
            "UnknownOperationException",
            format!("unknown operation {} {}", parts.method, parts.uri.path()),
        ));
    }
    let channel = query_value(parts, "channelArn").ok_or_else(|| {
        validation(
            "Value null at 'channelArn' failed to satisfy constraint: Member must not be null"
                .into(),
        )
    })?;
    let external_id = query_value(parts, "externalId");
    if let Some(external_id) = &external_id {
        check_external_id(external_id)?;
    }
    let events = parse_events(body)?;
    exchange.request_parameters = Some(json!({
        "channelArn": channel,
        "externalId": external_id,
        "auditEventCount": events.len(),
    }));
    if let Some(why) = app.event_log_failure() {
        return Err(ApiError::new(
            "ServiceUnavailable",
            format!(
                "the event log cannot take events right now ({why}); none were stored, retry later"
            ),
        )
        .with_status(503));
    }
    let target = app
        .stores
        .channel_for_ingest(&caller.account, &caller.region, &channel)?;
    let now = app.clock.now();
    // Parsing and hashing up to 1 MB of event data takes a while: off the runtime.
    let checked_target = target.clone();
    let (events, outcomes) = tokio::task::spawn_blocking(move || {
        let outcomes: Vec<Outcome> = events
            .iter()
            .map(|event| check_event(event, &checked_target, now))
            .collect();
        (events, outcomes)
    })
    .await
    .map_err(|e| ApiError::internal(format!("PutAuditEvents task failed: {e}")))?;

    let accepted: Vec<LogRecord> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .map(|(_, record)| LogRecord::from_bytes(record.clone()))
        .collect();
    if !accepted.is_empty() {
        let provenance = opentrail_model::Provenance {
            access_key_id: caller.access_key_id.clone(),
            principal: caller.principal_arn(),
            channel: PROVENANCE_CHANNEL.to_owned(),
            source_ip_address: exchange.source_ip.clone(),
        };
        let mut records = Vec::with_capacity(accepted.len() + 1);
        records.push(LogRecord::from_bytes(Bytes::from(
            provenance.marker(accepted.len() as u64),
        )));
        records.extend(accepted);
        app.log
            .append_records(records)
            .await
            .map_err(durable_error)?;
    }

    let mut successful = Vec::new();
    let mut failed = Vec::new();
    let mut attempt = IngestionAttempt {
        time: now,
        last_success_event_id: None,
        last_attempt_event_id: events.last().map(|e| e.id.clone()),
        last_error_code: None,
    };
    for (event, outcome) in events.into_iter().zip(outcomes) {
        match outcome {
            Ok((event_id, _)) => {
                attempt.last_success_event_id = Some(event_id.clone());
                successful.push(json!({ "id": event.id, "eventID": event_id }));
            }
            Err((code, message)) => {
                attempt.last_error_code = Some(code.to_owned());
                failed.push(json!({ "id": event.id, "errorCode": code, "errorMessage": message }));
            }
        }
    }
    let stores = std::sync::Arc::clone(&app.stores);
    tokio::task::block_in_place(|| stores.record_ingestion(&target, attempt));
    exchange.response_summary = Some(json!({
        "successfulCount": successful.len(),
        "failedCount": failed.len(),
    }));
    Ok(json!({ "successful": successful, "failed": failed }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_model::{AccountId, EventRecord, Region};
    use opentrail_operations::EventDataStoreStatus;

    fn target(status: EventDataStoreStatus) -> IngestTarget {
        IngestTarget {
            channel_arn: "arn:aws:cloudtrail:us-east-1:111122223333:channel/c1".into(),
            storage_key: "111122223333/us-east-1/c1".into(),
            account: AccountId::parse("111122223333").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            destinations: vec![(
                "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/s1".into(),
                Some(status),
            )],
        }
    }

    fn data(recipient: &str) -> String {
        json!({
            "version": "1.0",
            "userIdentity": {"type": "CustomUser", "principalId": "alice", "details": {"team": "a"}},
            "eventSource": "app.example.com",
            "eventName": "Login",
            "eventTime": "2024-05-01T10:00:00Z",
            "UID": "u-1",
            "recipientAccountId": recipient,
        })
        .to_string()
    }

    fn event(id: &str, event_data: String, checksum: Option<String>) -> AuditEvent {
        AuditEvent {
            id: id.into(),
            event_data,
            checksum,
        }
    }

    fn code(outcome: Outcome) -> &'static str {
        outcome.expect_err("expected a refusal").0
    }

    #[test]
    fn accepted_events_become_activity_audit_log_records() {
        use base64::Engine;
        let now = Utc::now();
        let text = data("111122223333");
        let checksum =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()));
        let (event_id, bytes) = check_event(
            &event("a", text.clone(), Some(checksum)),
            &target(EventDataStoreStatus::Enabled),
            now,
        )
        .unwrap();
        let record = EventRecord::from_slice(&bytes).unwrap();
        assert_eq!(record.event_id(), event_id);
        assert_eq!(record.event_category(), "ActivityAuditLog");
        assert_eq!(record.event_type(), "ActivityLog");
        assert_eq!(record.recipient_account_id(), "111122223333");
        assert_eq!(record.aws_region(), "us-east-1");
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["eventTime"], "2024-05-01T10:00:00Z");
        assert_eq!(
            value["eventData"],
            serde_json::from_str::<Value>(&text).unwrap()
        );
        assert_eq!(
            value["metadata"]["channelARN"],
            "arn:aws:cloudtrail:us-east-1:111122223333:channel/c1"
        );
        assert_eq!(value["metadata"]["ingestionTime"], iso8601(now));
    }

    #[test]
    fn each_problem_has_its_error_code() {
        let now = Utc::now();
        let enabled = target(EventDataStoreStatus::Enabled);
        let check = |e: AuditEvent| check_event(&e, &enabled, now);
        assert_eq!(
            code(check(event("a", data("111122223333"), Some("AAAA".into())))),
            "InvalidChecksum"
        );
        assert_eq!(
            code(check(event("a", "not json".into(), None))),
            "InvalidData"
        );
        assert_eq!(code(check(event("a", "[1]".into(), None))), "InvalidData");
        assert_eq!(
            code(check(event("a", data("999988887777"), None))),
            "InvalidRecipient"
        );
        let mut missing: Map<String, Value> = serde_json::from_str(&data("111122223333")).unwrap();
        missing.remove("UID");
        assert_eq!(
            code(check(event("a", Value::Object(missing).to_string(), None))),
            "FieldNotFound"
        );
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_EVENT_DATA_BYTES));
        assert_eq!(code(check(event("a", big, None))), "FieldTooLong");
        let bad_time = data("111122223333").replace("2024-05-01T10:00:00Z", "yesterday");
        assert_eq!(code(check(event("a", bad_time, None))), "InvalidData");
        let stopped = target(EventDataStoreStatus::StoppedIngestion);
        assert_eq!(
            code(check_event(
                &event("a", data("111122223333"), None),
                &stopped,
                now
            )),
            INGESTION_STOPPED
        );
    }

    #[test]
    fn request_rules() {
        let one = |id: &str| json!({"id": id, "eventData": "{}"});
        let body = |events: Vec<Value>| json!({ "auditEvents": events }).to_string();
        assert_eq!(
            parse_events(body(vec![one("a"), one("b")]).as_bytes())
                .unwrap()
                .len(),
            2
        );
        let e = parse_events(body(vec![one("a"), one("a")]).as_bytes()).unwrap_err();
        assert_eq!(e.code, "DuplicatedAuditEventId");
        let e = parse_events(body(vec![]).as_bytes()).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        let many: Vec<Value> = (0..=MAX_AUDIT_EVENTS)
            .map(|i| one(&i.to_string()))
            .collect();
        assert_eq!(
            parse_events(body(many).as_bytes()).unwrap_err().code,
            "ValidationException"
        );
        let e = parse_events(body(vec![one("not valid!")]).as_bytes()).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        let e = parse_events(br#"{"auditEvents":[{"id":"a"}]}"#).unwrap_err();
        assert!(
            e.message.contains("auditEvents.1.member.eventData"),
            "{}",
            e.message
        );
        let e = parse_events(br#"{"auditEvents":[{"id":"a","eventData":5}]}"#).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = parse_events(br#"{}"#).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(check_external_id("ab").is_ok());
        assert!(check_external_id("a").is_err());
    }
}
