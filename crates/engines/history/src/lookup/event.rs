//! How one stored record (and the provenance stored beside it) becomes the generated
//! botocore `Event`, with OpenTrail's `OpenTrailProvenance` extension member.

use crate::attributes::{read_only_text, EventSummary};
use chrono::DateTime;
use opentrail_model::{EventRecord, Provenance};
use opentrail_operations::{Event, OpenTrailProvenance, Resource, Timestamp};

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// The Event shape of a stored record. `EventTime` is whole epoch seconds;
/// `CloudTrailEvent` is the record's original JSON text; `Resources` is always present
/// (possibly empty); `OpenTrailProvenance` is there when `provenance` (the JSON stored
/// beside the record) is a valid one.
pub(crate) fn event(record: &EventRecord, provenance: Option<&[u8]>) -> Event {
    let summary = EventSummary::of(record);
    Event {
        event_id: non_empty(summary.event_id),
        event_name: non_empty(&summary.event_name),
        read_only: summary
            .read_only
            .map(|flag| read_only_text(flag).to_owned()),
        access_key_id: summary.access_key_id.map(str::to_owned),
        event_time: record
            .event_time()
            .and_then(|time| DateTime::from_timestamp(time.timestamp(), 0))
            .map(Timestamp),
        event_source: non_empty(&summary.event_source),
        username: summary.username.map(|name| name.into_owned()),
        resources: Some(
            summary
                .resources
                .iter()
                .map(|resource| Resource {
                    resource_type: resource.resource_type.map(str::to_owned),
                    resource_name: resource.resource_name.as_deref().map(str::to_owned),
                })
                .collect(),
        ),
        cloud_trail_event: Some(record.json().to_owned()),
        open_trail_provenance: provenance
            .and_then(Provenance::from_json)
            .map(|provenance| OpenTrailProvenance {
                access_key_id: provenance.access_key_id,
                principal: provenance.principal,
                channel: provenance.channel,
                source_ip_address: provenance.source_ip_address,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_is_the_extension_member() {
        let record = EventRecord::from_json(
            r#"{"eventVersion":"1.09","eventTime":"2024-03-30T12:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","eventID":"e1","eventType":"AwsApiCall","recipientAccountId":"123456789012"}"#,
        )
        .unwrap();
        let provenance = Provenance {
            access_key_id: "AKIAEXAMPLE".into(),
            principal: "arn:aws:iam::123456789012:user/alice".into(),
            channel: "opentrail:PutEvents".into(),
            source_ip_address: "10.0.0.7".into(),
        };
        let json = serde_json::to_vec(&provenance).unwrap();
        let value = serde_json::to_value(event(&record, Some(&json))).unwrap();
        assert_eq!(
            value["OpenTrailProvenance"],
            serde_json::json!({
                "AccessKeyId": "AKIAEXAMPLE",
                "Principal": "arn:aws:iam::123456789012:user/alice",
                "Channel": "opentrail:PutEvents",
                "SourceIPAddress": "10.0.0.7",
            })
        );
        assert_eq!(value["EventTime"], serde_json::json!(1_711_800_000));
        assert_eq!(value["Resources"], serde_json::json!([]));

        let without = serde_json::to_value(event(&record, None)).unwrap();
        assert!(without.get("OpenTrailProvenance").is_none());
        let invalid = serde_json::to_value(event(&record, Some(b"{}"))).unwrap();
        assert!(invalid.get("OpenTrailProvenance").is_none());
    }
}
