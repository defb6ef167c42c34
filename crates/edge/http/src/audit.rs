//! The audit record every API request produces, and where it goes.
//! The events issue turns these into CloudTrail event records on the durable event log.

use crate::auth::Caller;
use chrono::{DateTime, Utc};
use opentrail_operations::Operation;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub request_id: String,
    pub event_time: DateTime<Utc>,
    /// What the request called, once it named something this server knows.
    pub operation: Option<Call>,
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
    /// Control-plane calls are management events; event ingest is recorded as data events,
    /// as AWS records PutAuditEvents.
    pub management_event: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The resources (type, ARN) of `resources`, when the pipeline knew them; `None`:
    /// derived from the request and answer (`Operation::audit_resource`).
    pub resources: Option<Vec<(&'static str, String)>>,
}

/// Completes when the audit event is durable in the event log, or says why it is not.
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

pub trait AuditSink: Send + Sync + 'static {
    /// Builds the request's audit event and starts making it durable; a call whose effect
    /// must not be acknowledged without its audit record awaits the returned future.
    fn record(&self, record: AuditRecord) -> Durable;
}

/// What a request called: a modelled operation, or OpenTrail's own ingest endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Api(Operation),
    /// `POST /events`.
    PutEvents,
}

impl Call {
    /// The `eventName` of its audit event and its metrics label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Api(operation) => operation.name(),
            Self::PutEvents => "PutEvents",
        }
    }

    /// Whether it only reads, as CloudTrail's `readOnly` field says.
    pub fn read_only(self) -> bool {
        match self {
            Self::Api(operation) => operation.read_only(),
            Self::PutEvents => false,
        }
    }
}
