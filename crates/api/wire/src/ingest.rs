//! OpenTrail's own event ingest endpoint (`POST /events`): what clients and the server
//! agree on.

/// The SigV4 service name of the ingest API.
pub const INGEST_SERVICE: &str = "opentrail";

/// Most records one request may carry (AWS's PutAuditEvents takes 100); more are refused
/// as a whole before any is checked, so that the answer stays small.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;
