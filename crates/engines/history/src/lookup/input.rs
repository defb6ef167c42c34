//! The LookupEvents request as it arrives on the wire (botocore `LookupEventsRequest`),
//! plus the caller's account, region and clock reading. Values are kept loose (strings,
//! numbers) so validation can answer with LookupEvents' own exception names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// botocore `LookupEventsRequest`. Dates are epoch seconds (JSON numbers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_attributes: Option<Vec<LookupAttribute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// botocore `LookupAttribute`; both members are required, which validation checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_value: Option<String>,
}

impl LookupAttribute {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            attribute_key: Some(key.into()),
            attribute_value: Some(value.into()),
        }
    }
}

/// One LookupEvents call: the wire input and who is asking, where, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupRequest {
    /// The caller's account; only its events are visible.
    pub account: String,
    /// The region the request was sent to; only events recorded there are visible.
    pub region: String,
    /// The current time: the default `EndTime` and the end of the retention window.
    pub now: DateTime<Utc>,
    pub input: LookupEventsInput,
}
