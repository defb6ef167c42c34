//! What the pipeline learns about one request as it goes, for its audit event.

use crate::audit::Call;
use crate::auth::Caller;
use opentrail_wire::ApiError;
use serde_json::Value;

/// What the pipeline learned about a request, filled in as it goes.
pub struct Exchange {
    /// What the request called, once it named something this server knows; requests
    /// naming nothing known are labelled `unknown` in metrics and `Unknown` in audit.
    pub operation: Option<Call>,
    pub caller: Option<Caller>,
    pub request_parameters: Option<Value>,
    /// What the audit event records as `responseElements` instead of the whole answer
    /// (an ingest answer lists every record).
    pub response_summary: Option<Value>,
    /// Whether the request's body was read whole; a request refused before (or while)
    /// its body arrived is answered with `Connection: close`, since the rest of the body
    /// still sits in the connection and no next request can be read after it.
    pub body_read: bool,
    /// The address the request came from.
    pub source_ip: String,
    /// The resources (type, ARN) the audit event names when the operation's answer or
    /// request does not say (a query's event data stores); `None`: found as usual.
    pub audit_resources: Option<Vec<(&'static str, String)>>,
}

/// The caller [`authenticate_and_handle`] authenticated.
pub fn authenticated_caller(exchange: &Exchange) -> Result<Caller, ApiError> {
    exchange
        .caller
        .clone()
        .ok_or_else(|| ApiError::internal("request reached its handler unauthenticated"))
}
