//! The LookupEvents response (botocore `LookupEventsResponse`, `Event`, `Resource`) and
//! how one stored record becomes an `Event`.

use crate::attributes::{read_only_text, EventSummary};
use opentrail_model::EventRecord;
use serde::{Deserialize, Serialize};

/// botocore `LookupEventsResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupResponse {
    pub events: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// botocore `Event`. `EventTime` is epoch seconds; `CloudTrailEvent` is the record's
/// original JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_trail_event: Option<String>,
    /// OpenTrail's extension (not in botocore's model, so AWS SDKs ignore it): who sent
    /// the record to OpenTrail, for records that arrived through `POST /events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_trail_provenance: Option<opentrail_model::Provenance>,
}

/// botocore `Resource`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

impl Event {
    /// The Event shape of a stored record.
    pub fn from_record(record: &EventRecord) -> Self {
        let summary = EventSummary::of(record);
        Self {
            event_id: non_empty(summary.event_id),
            event_name: non_empty(&summary.event_name),
            read_only: summary
                .read_only
                .map(|flag| read_only_text(flag).to_owned()),
            access_key_id: summary.access_key_id.map(str::to_owned),
            event_time: record.event_time().map(|time| time.timestamp()),
            event_source: non_empty(&summary.event_source),
            username: summary.username.map(|name| name.into_owned()),
            resources: summary
                .resources
                .iter()
                .map(|resource| Resource {
                    resource_type: resource.resource_type.map(str::to_owned),
                    resource_name: resource.resource_name.map(str::to_owned),
                })
                .collect(),
            cloud_trail_event: Some(record.json().to_owned()),
            open_trail_provenance: None,
        }
    }
}
