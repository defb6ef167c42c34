//! The CloudTrail event record: the exact JSON text each record arrived as, typed access
//! to the fields OpenTrail reads, ingest validation, and the log file formats.
//!
//! Parsing is on the ingest hot path, so a record is indexed in one pass over its text
//! with borrowed raw JSON values; no `serde_json::Value` tree is built and nothing is
//! re-serialised. The full schema as owned values is [`EventDocument`].

mod derived;
mod document;
mod error;
mod event_time;
mod identity;
mod log_file;
mod parse;
mod record;
mod scan;
mod slot;
mod validate;
mod version;

pub use document::{
    Addendum, EventDocument, OnBehalfOf, ResourceDocument, SessionAttributes, SessionContext,
    SessionIssuerDocument, TlsDetails, UserIdentityDocument, WebIdFederationData,
};
pub use error::EventError;
pub use event_time::parse_event_time;
pub use identity::{Resource, SessionIssuer, UserIdentity, UserIdentityType};
pub use log_file::{
    log_file_record_texts, log_file_record_texts_at_most, log_file_records_at_most, parse_log_file,
    parse_records_ndjson, write_log_file,
};
pub use record::{EventRecord, RecordRef};
pub use validate::{
    check_event_time, EARLIEST_EVENT_TIME, MAX_EVENT_TIME_AHEAD_SECONDS, MAX_RECORD_BYTES,
};
