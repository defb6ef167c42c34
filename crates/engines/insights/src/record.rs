//! Insights events in AWS's record shape (eventType `AwsCloudTrailInsight`), with event
//! IDs derived from the insight itself so that the same input gives the same bytes.

use crate::config::InsightType;
use crate::key::MetricKey;
use crate::topk::ATTRIBUTES;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `Start` or `End`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InsightState {
    Start,
    End,
}

/// One value of an attribute with its average calls per minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionValue {
    pub value: Arc<str>,
    pub average: f64,
}

/// The top values of one attribute during the insight and in the baseline window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    pub attribute: &'static str,
    pub insight: Vec<AttributionValue>,
    pub baseline: Vec<AttributionValue>,
}

/// One Insights event (a Start or an End).
#[derive(Debug, Clone, PartialEq)]
pub struct InsightEvent {
    pub key: MetricKey,
    pub state: InsightState,
    /// The start (Start) or end (End) of the insight.
    pub event_time: DateTime<Utc>,
    pub event_id: String,
    pub shared_event_id: String,
    /// Average per-minute count over the baseline window.
    pub baseline_average: f64,
    /// Start: the count in the first minute; End: the average over the insight.
    pub insight_average: f64,
    /// Minutes of the baseline window (the 7 whole UTC days before the start's day, and
    /// that day up to the start).
    pub baseline_duration: u32,
    /// End only: the insight's length in minutes.
    pub insight_duration: Option<u32>,
    pub attributions: Vec<Attribution>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    event_time: String,
    aws_region: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    event_type: &'static str,
    recipient_account_id: &'a str,
    #[serde(rename = "sharedEventID")]
    shared_event_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    insight_source: Option<&'a str>,
    insight_details: Details<'a>,
    event_category: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Details<'a> {
    state: InsightState,
    event_source: &'a str,
    event_name: &'a str,
    insight_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    insight_context: Context<'a>,
}

#[derive(Serialize)]
struct Context<'a> {
    statistics: Statistics,
    attributions: &'a [Attribution],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Statistics {
    baseline: Average,
    insight: Average,
    #[serde(skip_serializing_if = "Option::is_none")]
    insight_duration: Option<u32>,
    baseline_duration: u32,
}

#[derive(Serialize)]
struct Average {
    average: f64,
}

impl InsightEvent {
    /// The record's JSON text, as it goes into the event log and log files.
    pub fn to_json(&self) -> String {
        self.to_json_from(None)
    }

    /// The record's JSON text with `insightSource` (the source event data store's ARN)
    /// when given: the shape of an event data store's Insights events.
    pub fn to_json_from(&self, insight_source: Option<&str>) -> String {
        let record = Record {
            event_version: "1.08",
            event_time: self.event_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            aws_region: &self.key.region,
            event_id: &self.event_id,
            event_type: "AwsCloudTrailInsight",
            recipient_account_id: &self.key.account,
            shared_event_id: &self.shared_event_id,
            insight_source,
            insight_details: Details {
                state: self.state,
                event_source: &self.key.event_source,
                event_name: &self.key.event_name,
                insight_type: self.key.insight_type.as_str(),
                error_code: match self.key.insight_type {
                    InsightType::ApiErrorRateInsight => self.key.error_code.as_deref(),
                    InsightType::ApiCallRateInsight => None,
                },
                insight_context: Context {
                    statistics: Statistics {
                        baseline: Average {
                            average: self.baseline_average,
                        },
                        insight: Average {
                            average: self.insight_average,
                        },
                        insight_duration: self.insight_duration,
                        baseline_duration: self.baseline_duration,
                    },
                    attributions: &self.attributions,
                },
            },
            event_category: "Insight",
        };
        // Serialising plain structs of strings and finite numbers cannot fail.
        serde_json::to_string(&record).unwrap_or_default()
    }
}

/// A UUID (version 8) derived from the insight's source, key, start minute and `salt`.
pub(crate) fn derived_id(
    source_id: &str,
    key: &MetricKey,
    start_minute: u32,
    salt: &str,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        source_id,
        &key.account,
        &key.region,
        &key.event_source,
        &key.event_name,
        key.insight_type.as_str(),
        key.error_code.as_deref().unwrap_or(""),
        salt,
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(start_minute.to_le_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Attribution lists from sketch tops: `(value, count)` pairs turned into averages.
pub(crate) fn attribution_lists(
    insight: &[Vec<(Arc<str>, u64)>; 3],
    insight_minutes: u32,
    baseline: &[Vec<AttributionValue>; 3],
) -> Vec<Attribution> {
    ATTRIBUTES
        .iter()
        .enumerate()
        .map(|(index, attribute)| Attribution {
            attribute,
            insight: averages(&insight[index], insight_minutes),
            baseline: baseline[index].clone(),
        })
        .collect()
}

pub(crate) fn averages(top: &[(Arc<str>, u64)], minutes: u32) -> Vec<AttributionValue> {
    top.iter()
        .map(|(value, count)| AttributionValue {
            value: value.clone(),
            average: *count as f64 / f64::from(minutes.max(1)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> InsightEvent {
        let key = MetricKey {
            account: Arc::from("111122223333"),
            region: Arc::from("us-east-1"),
            event_source: Arc::from("ssm.amazonaws.com"),
            event_name: Arc::from("SendCommand"),
            insight_type: InsightType::ApiCallRateInsight,
            error_code: None,
        };
        InsightEvent {
            shared_event_id: derived_id("s", &key, 1, "shared"),
            event_id: derived_id("s", &key, 1, "Start"),
            key,
            state: InsightState::Start,
            event_time: DateTime::from_timestamp(60, 0).unwrap_or_default(),
            baseline_average: 0.5,
            insight_average: 40.0,
            baseline_duration: 10_080,
            insight_duration: None,
            attributions: Vec::new(),
        }
    }

    #[test]
    fn an_event_data_store_insight_names_its_source() {
        let trail: serde_json::Value = serde_json::from_str(&event().to_json()).unwrap();
        assert!(trail.get("insightSource").is_none());
        let source = "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/src";
        let lake: serde_json::Value =
            serde_json::from_str(&event().to_json_from(Some(source))).unwrap();
        assert_eq!(lake["insightSource"], source);
        assert_eq!(lake["eventCategory"], "Insight");
        assert_eq!(lake["eventType"], "AwsCloudTrailInsight");
        assert_eq!(lake["insightDetails"]["state"], "Start");
    }
}
