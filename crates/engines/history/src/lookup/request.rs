//! One LookupEvents call: the generated wire request plus the caller's account, region
//! and clock reading.

use chrono::{DateTime, Utc};
use opentrail_operations::LookupEventsRequest;

/// One LookupEvents call: the wire input and who is asking, where, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupRequest {
    /// The caller's account; only its events are visible.
    pub account: String,
    /// The region the request was sent to; only events recorded there are visible.
    pub region: String,
    /// The current time: the default `EndTime` and the end of the retention window.
    pub now: DateTime<Utc>,
    pub input: LookupEventsRequest,
}
