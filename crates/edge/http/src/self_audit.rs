//! CloudTrail records its own API: every request to OpenTrail becomes a management event
//! with eventSource cloudtrail.amazonaws.com, built here from the pipeline's audit record.

use crate::audit::{AuditRecord, AuditSink, Call, Durable};
use crate::metrics::AuditDrops;
use crate::rate_limit::RateLimiter;
use bytes::Bytes;
use opentrail_log::DurableLog;
use opentrail_model::{iso8601, AccountId};
use opentrail_operations::ResourceType;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;

const EVENT_VERSION: &str = "1.11";
const API_VERSION: &str = "2013-11-01";

/// Request members that must never reach an event record.
const SECRET_MEMBERS: [&str; 3] = ["secretAccessKey", "password", "sessionToken"];

/// Longest untrusted string (user agent, error message, operation name) an audit event
/// keeps, in bytes; longer ones are cut at a character boundary.
pub const MAX_UNTRUSTED_BYTES: usize = 1024;

/// Cuts `text` to at most [`MAX_UNTRUSTED_BYTES`] bytes, at a character boundary.
fn truncated(text: &str) -> &str {
    if text.len() <= MAX_UNTRUSTED_BYTES {
        return text;
    }
    let mut end = MAX_UNTRUSTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An error message fit for the trail: the client's Authorization header, which SigV4
/// errors quote as AWS does in its answers, is left out (AWS records no Authorization
/// header), any `Signature=` value is masked, and the result is truncated.
fn audited_error_message(message: &str) -> String {
    let mut kept = message;
    for quote in ["Authorization=", "in Authorization header: '"] {
        if let Some(at) = kept.find(quote) {
            kept = &kept[..at];
        }
    }
    let mut cleaned = String::with_capacity(kept.len().min(MAX_UNTRUSTED_BYTES));
    let mut rest = kept;
    while let Some(at) = rest.find("Signature=") {
        let value_start = at + "Signature=".len();
        cleaned.push_str(&rest[..value_start]);
        cleaned.push_str("REDACTED");
        let value_len = rest[value_start..]
            .find(|c: char| c == ',' || c == '\'' || c.is_whitespace())
            .unwrap_or(rest.len() - value_start);
        rest = &rest[value_start + value_len..];
        if cleaned.len() > MAX_UNTRUSTED_BYTES {
            break;
        }
    }
    cleaned.push_str(rest);
    truncated(cleaned.trim_end()).to_owned()
}

/// CloudTrail writes parameters with lower-camel member names (`s3BucketName`, `trailARN`).
fn lower_camel_keys(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, v)| {
                    let mut chars = key.chars();
                    let renamed: String = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect(),
                        None => String::new(),
                    };
                    let cleaned = if SECRET_MEMBERS.contains(&renamed.as_str()) {
                        json!("HIDDEN_DUE_TO_SECURITY_REASONS")
                    } else {
                        lower_camel_keys(v)
                    };
                    (renamed, cleaned)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lower_camel_keys).collect()),
        other => other.clone(),
    }
}

fn user_identity(record: &AuditRecord, server_account: &AccountId) -> Value {
    let Some(caller) = &record.caller else {
        return json!({
            "type": "Unknown",
            "accountId": server_account.as_str(),
            "accessKeyId": record.access_key_id.as_deref().unwrap_or(""),
        });
    };
    let account = caller.account.as_str();
    if caller.is_root {
        return json!({
            "type": "Root",
            "principalId": account,
            "arn": format!("arn:aws:iam::{account}:root"),
            "accountId": account,
            "accessKeyId": caller.access_key_id,
        });
    }
    json!({
        "type": "IAMUser",
        "principalId": caller.access_key_id.replacen("AKIA", "AIDA", 1),
        "arn": format!("arn:aws:iam::{account}:user/{}", caller.user_name),
        "accountId": account,
        "accessKeyId": caller.access_key_id,
        "userName": caller.user_name,
    })
}

/// The resource a request concerns, as CloudTrail lists it in `resources`: (type, ARN).
/// Where to look is the operation's answer to `Operation::audit_resource`.
fn audited_resource(record: &AuditRecord) -> Option<(&'static str, String)> {
    let Some(Call::Api(operation)) = record.operation else {
        return None;
    };
    let wanted = operation.audit_resource()?;
    let member = |value: Option<&Value>, names: &[&str]| {
        let value = value?;
        names
            .iter()
            .find_map(|name| {
                let named = value.get(*name)?;
                // A list of resources (StartImport's Destinations) names its first.
                named
                    .as_str()
                    .or_else(|| named.as_array()?.first()?.as_str())
            })
            .map(str::to_owned)
    };
    let named = member(record.response_elements.as_ref(), wanted.response_members)
        .or_else(|| member(record.request_parameters.as_ref(), wanted.request_members))?;
    if named.starts_with("arn:") {
        let kind = wanted
            .resource_type
            .or_else(|| ResourceType::of_arn(&named))?;
        return Some((kind.type_name(), named));
    }
    // A bare name or id: trails are named; other resources by their ARN's last part.
    let kind = wanted.resource_type.unwrap_or(ResourceType::Trail);
    let caller = record.caller.as_ref()?;
    Some((
        kind.type_name(),
        format!(
            "arn:aws:cloudtrail:{}:{}:{}/{named}",
            caller.region,
            caller.account,
            kind.arn_segment()
        ),
    ))
}

/// Builds the CloudTrail event (compact JSON) for one API request.
pub fn api_call_event(record: &AuditRecord, server_account: &AccountId) -> String {
    let account = record
        .caller
        .as_ref()
        .map_or(server_account.as_str(), |c| c.account.as_str());
    let mut event = Map::new();
    event.insert("eventVersion".into(), json!(EVENT_VERSION));
    event.insert("userIdentity".into(), user_identity(record, server_account));
    event.insert("eventTime".into(), json!(iso8601(record.event_time)));
    let source = if record.management_event {
        "cloudtrail.amazonaws.com"
    } else {
        "cloudtrail-data.amazonaws.com"
    };
    event.insert("eventSource".into(), json!(source));
    event.insert(
        "eventName".into(),
        json!(record.operation.map_or("Unknown", Call::name)),
    );
    event.insert(
        "awsRegion".into(),
        json!(record.region.as_deref().unwrap_or("us-east-1")),
    );
    event.insert("sourceIPAddress".into(), json!(record.source_ip));
    if let Some(agent) = &record.user_agent {
        event.insert("userAgent".into(), json!(truncated(agent)));
    }
    if let Some(code) = &record.error_code {
        event.insert("errorCode".into(), json!(code));
        event.insert(
            "errorMessage".into(),
            json!(audited_error_message(
                record.error_message.as_deref().unwrap_or("")
            )),
        );
    }
    event.insert(
        "requestParameters".into(),
        record
            .request_parameters
            .as_ref()
            .map_or(Value::Null, lower_camel_keys),
    );
    let response = match (&record.response_elements, record.read_only) {
        (Some(elements), false) => lower_camel_keys(elements),
        _ => Value::Null,
    };
    event.insert("responseElements".into(), response);
    event.insert("requestID".into(), json!(record.request_id));
    event.insert("eventID".into(), json!(uuid::Uuid::new_v4().to_string()));
    event.insert("readOnly".into(), json!(record.read_only));
    let resources = match &record.resources {
        Some(known) => known.clone(),
        None => audited_resource(record).into_iter().collect(),
    };
    if !resources.is_empty() {
        let listed: Vec<Value> = resources
            .iter()
            .map(|(resource_type, arn)| json!({ "accountId": account, "type": resource_type, "ARN": arn }))
            .collect();
        event.insert("resources".into(), Value::Array(listed));
    }
    event.insert("eventType".into(), json!("AwsApiCall"));
    event.insert("apiVersion".into(), json!(API_VERSION));
    event.insert("managementEvent".into(), json!(record.management_event));
    event.insert("recipientAccountId".into(), json!(account));
    let category = if record.management_event {
        "Management"
    } else {
        "Data"
    };
    event.insert("eventCategory".into(), json!(category));
    Value::Object(event).to_string()
}

/// The rate-limit key of a source address: the address, or its /64 for IPv6 (one host
/// commonly holds a whole /64).
fn source_key(source_ip: &str) -> String {
    match source_ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let segments = v6.segments();
            format!(
                "{:x}:{:x}:{:x}:{:x}::/64",
                segments[0], segments[1], segments[2], segments[3]
            )
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_canonical().to_string(),
        _ => source_ip.to_owned(),
    }
}

/// The reason label of audit records dropped by the per-address limit.
pub const DROPPED_UNAUTHENTICATED: &str = "unauthenticated_rate_limit";

/// Appends each request's event to the durable event log. Calls that change state are
/// answered only once their event is durable; the others do not wait for it.
/// Requests without an authenticated caller are recorded at most at a per-source-address
/// rate; the rest are counted in `opentrail_audit_records_dropped_total`.
pub struct EventLogAuditSink {
    log: Arc<dyn DurableLog>,
    server_account: AccountId,
    unauthenticated: Option<RateLimiter>,
    drops: Arc<AuditDrops>,
}

impl EventLogAuditSink {
    /// `unauthenticated`: the limit on records of unauthenticated requests per source
    /// address, or none for no limit.
    pub fn new(
        log: Arc<dyn DurableLog>,
        server_account: AccountId,
        unauthenticated: Option<RateLimiter>,
        drops: Arc<AuditDrops>,
    ) -> Self {
        Self {
            log,
            server_account,
            unauthenticated,
            drops,
        }
    }
}

impl AuditSink for EventLogAuditSink {
    fn record(&self, record: AuditRecord) -> Durable {
        if record.caller.is_none() {
            let admitted = self.unauthenticated.as_ref().is_none_or(|limit| {
                limit.try_acquire(&source_key(&record.source_ip), Instant::now())
            });
            if !admitted {
                self.drops.count(DROPPED_UNAUTHENTICATED);
                // Never a call that changed state: those are authenticated.
                return Box::pin(async { Ok(()) });
            }
        }
        let event = Bytes::from(api_call_event(&record, &self.server_account));
        tracing::debug!(
            request_id = %record.request_id,
            operation = record.operation.map_or("-", Call::name),
            error_code = record.error_code.as_deref().unwrap_or("-"),
            "api request"
        );
        let log = Arc::clone(&self.log);
        Box::pin(async move {
            log.append(vec![event]).await.map(|_| ()).map_err(|e| {
                tracing::error!(error = %e, "failed to append self-audit event to the event log");
                e.to_string()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Caller;
    use opentrail_model::{EventRecord, Region};
    use opentrail_operations::Operation;

    fn record(caller: Option<Caller>) -> AuditRecord {
        AuditRecord {
            request_id: "req-1".into(),
            event_time: chrono::Utc::now(),
            operation: Some(Call::Api(Operation::CreateTrail)),
            read_only: false,
            source_ip: "127.0.0.1".into(),
            user_agent: Some("aws-cli/1.0".into()),
            region: Some("eu-west-1".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            caller,
            request_parameters: Some(
                json!({"Name": "t1", "S3BucketName": "b", "TagsList": [{"Key": "k", "Value": "v"}]}),
            ),
            response_elements: Some(
                json!({"Name": "t1", "TrailARN": "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"}),
            ),
            management_event: true,
            error_code: None,
            error_message: None,
            resources: None,
        }
    }

    fn alice() -> Caller {
        Caller {
            account: AccountId::parse("123456789012").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            access_key_id: "AKIAEXAMPLE".into(),
            user_name: "alice".into(),
            is_root: false,
            ingest_any_account: false,
            forward_audit: false,
        }
    }

    #[test]
    fn api_call_is_a_valid_management_event() {
        let server = AccountId::parse("999999999999").unwrap();
        let json = api_call_event(&record(Some(alice())), &server);
        let event = EventRecord::from_json(&json).unwrap();
        event.validate().unwrap();
        assert_eq!(event.event_source(), "cloudtrail.amazonaws.com");
        assert_eq!(event.event_name(), "CreateTrail");
        assert_eq!(event.aws_region(), "eu-west-1");
        assert_eq!(event.recipient_account_id(), "123456789012");
        assert_eq!(event.read_only(), Some(false));
        assert_eq!(event.user_identity().user_name, Some("alice"));
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["requestParameters"]["s3BucketName"], "b");
        assert_eq!(v["requestParameters"]["tagsList"][0]["key"], "k");
        assert_eq!(
            v["responseElements"]["trailARN"],
            "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"
        );
        assert_eq!(
            v["resources"][0]["ARN"],
            "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1"
        );
    }

    #[test]
    fn unauthenticated_failure_is_recorded_with_unknown_identity() {
        let server = AccountId::parse("999999999999").unwrap();
        let mut failed = record(None);
        failed.error_code = Some("UnrecognizedClientException".into());
        failed.error_message =
            Some("The security token included in the request is invalid.".into());
        failed.response_elements = None;
        let json = api_call_event(&failed, &server);
        let event = EventRecord::from_json(&json).unwrap();
        event.validate().unwrap();
        assert_eq!(event.error_code(), Some("UnrecognizedClientException"));
        assert_eq!(event.recipient_account_id(), "999999999999");
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["userIdentity"]["type"], "Unknown");
        assert_eq!(v["responseElements"], Value::Null);
    }

    #[test]
    fn untrusted_strings_are_truncated_and_signatures_never_recorded() {
        let server = AccountId::parse("999999999999").unwrap();
        let mut failed = record(None);
        let header = format!(
            "AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=0123abcd {}",
            "p".repeat(5000)
        );
        failed.user_agent = Some("é".repeat(3000));
        failed.operation = None;
        failed.error_code = Some("IncompleteSignatureException".into());
        failed.error_message = Some(format!(
            "Authorization header requires 'SignedHeaders' parameter. Authorization={header}"
        ));
        let json = api_call_event(&failed, &server);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert!(v["userAgent"].as_str().unwrap().len() <= MAX_UNTRUSTED_BYTES);
        assert_eq!(v["eventName"], "Unknown");
        let message = v["errorMessage"].as_str().unwrap();
        assert_eq!(
            message,
            "Authorization header requires 'SignedHeaders' parameter."
        );
        assert!(json.len() < 4 * MAX_UNTRUSTED_BYTES + 1024);
        assert!(!json.contains("0123abcd"));
        assert_eq!(
            audited_error_message("bad Signature=abc, Signature=def' x"),
            "bad Signature=REDACTED, Signature=REDACTED' x"
        );
        let quoted = format!("'x' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'.");
        assert_eq!(
            audited_error_message(&quoted),
            "'x' not a valid key=value pair (missing equal-sign)"
        );
    }

    #[test]
    fn ipv6_sources_share_their_slash_64() {
        assert_eq!(source_key("127.0.0.1"), "127.0.0.1");
        assert_eq!(source_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            source_key("2001:db8:1:2:bbbb::9"),
            source_key("2001:db8:1:2:aaaa::1")
        );
        assert_eq!(source_key("::ffff:10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn secrets_are_hidden() {
        let cleaned =
            lower_camel_keys(&json!({"SecretAccessKey": "s3cr3t", "Nested": {"Password": "p"}}));
        assert_eq!(cleaned["secretAccessKey"], "HIDDEN_DUE_TO_SECURITY_REASONS");
        assert_eq!(
            cleaned["nested"]["password"],
            "HIDDEN_DUE_TO_SECURITY_REASONS"
        );
    }
}
