//! The audit record every API request produces, and where it goes.
//! The events issue turns these into CloudTrail event records on the durable event log.

use crate::auth::Caller;
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub request_id: String,
    pub event_time: DateTime<Utc>,
    /// The operation named by X-Amz-Target, when there was one.
    pub operation: Option<String>,
    pub read_only: bool,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// Absent when authentication failed.
    pub caller: Option<Caller>,
    /// The region of the credential scope, when the request carried one.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub request_parameters: Option<Value>,
    pub response_elements: Option<Value>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

pub trait AuditSink: Send + Sync + 'static {
    fn record(&self, record: AuditRecord);
}

/// Logs each record at debug level until the event log consumes them.
pub struct TracingAuditSink;

impl AuditSink for TracingAuditSink {
    fn record(&self, record: AuditRecord) {
        let caller = record.caller.as_ref();
        tracing::debug!(
            request_id = %record.request_id,
            event_time = %record.event_time,
            operation = record.operation.as_deref().unwrap_or("-"),
            read_only = record.read_only,
            source_ip = %record.source_ip,
            user_agent = record.user_agent.as_deref().unwrap_or("-"),
            account = caller.map_or("-", |c| c.account.as_str()),
            user_name = caller.map_or("-", |c| c.user_name.as_str()),
            is_root = caller.is_some_and(|c| c.is_root),
            region = record.region.as_deref().unwrap_or("-"),
            access_key_id = record.access_key_id.as_deref().unwrap_or("-"),
            request_parameters = ?record.request_parameters,
            response_elements = ?record.response_elements,
            error_code = record.error_code.as_deref().unwrap_or("-"),
            error_message = record.error_message.as_deref().unwrap_or("-"),
            "api request"
        );
    }
}

/// Whether an operation only reads, as CloudTrail's `readOnly` field says.
pub fn is_read_only(operation: &str) -> bool {
    ["Get", "Describe", "List", "Lookup"]
        .iter()
        .any(|prefix| operation.starts_with(prefix))
}
