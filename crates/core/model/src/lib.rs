//! CloudTrail domain types shared by every OpenTrail crate.
//! Values here are validated on construction, so holding one is proof it is well formed.

mod account;
mod arn;
mod clock;
pub mod event;
mod provenance;
mod region;
mod request;
pub mod resource_rules;
mod time_format;
pub mod trail_layout;
mod trail_name;

pub use account::AccountId;
pub use arn::{Arn, ArnError, TrailArn};
pub use clock::{Clock, SystemClock, TestClock};
pub use event::{
    check_event_time, log_file_record_texts, log_file_record_texts_at_most,
    log_file_records_at_most, parse_event_time, parse_log_file, parse_records_ndjson,
    write_log_file, EventError, EventRecord, RecordRef,
};
pub use provenance::{
    is_provenance_marker, parse_provenance_marker, Provenance, PROVENANCE_MARKER,
};
pub use region::{KnownRegions, Region, AWS_CN_REGIONS, AWS_REGIONS, AWS_US_GOV_REGIONS};
pub use request::{Principal, PrincipalKind, RequestContext};
pub use time_format::{epoch_seconds, iso8601, iso8601_millis};
pub use trail_name::{TrailName, TrailNameError};
