//! Values event history and trails need that records of early eventVersions lack: the
//! `eventID` (before 1.01), the `eventType` (before 1.02) and the `recipientAccountId`
//! (optional at every version). They are derived from the record alone, so every reader of
//! the same bytes (ingest, event history, delivery) derives the same values; the record's
//! text is never changed.

use super::parse::Fields;
use super::slot::Slot;
use super::version::{EVENT_ID_SINCE, EVENT_TYPE_SINCE};
use crate::AccountId;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// `userIdentity.type` values whose `accountId` is not the account that received the
/// event: another account's (cross-account access) or none at all.
const FOREIGN_IDENTITY_TYPES: [&str; 2] = ["AWSAccount", "AWSService"];

/// The event source of console sign-in events.
const SIGNIN_SOURCE: &str = "signin.amazonaws.com";

impl Fields {
    /// `eventID` as recorded, else the derived one (records before eventVersion 1.01);
    /// `""` when neither.
    pub(crate) fn event_id<'a>(&'a self, record: &'a str) -> &'a str {
        match self.top.event_id.as_str(self.source(record)) {
            Some(id) => id,
            None => self.derived_event_id.as_deref().unwrap_or(""),
        }
    }

    /// `eventType` as recorded; for records before eventVersion 1.02, which predate it,
    /// `AwsConsoleSignIn` for events of `signin.amazonaws.com` and `AwsApiCall` for the
    /// others (what CloudTrail recorded for such events once it had the field).
    pub(crate) fn event_type<'a>(&'a self, record: &'a str) -> &'a str {
        let source = self.source(record);
        if let Some(recorded) = self.top.event_type.as_str(source) {
            return recorded;
        }
        match self.minor_version {
            Some(minor) if minor < EVENT_TYPE_SINCE => {
                if self.top.event_source.as_str(source) == Some(SIGNIN_SOURCE) {
                    "AwsConsoleSignIn"
                } else {
                    "AwsApiCall"
                }
            }
            _ => "",
        }
    }

    /// `recipientAccountId` as recorded (when a non-empty string), else
    /// `userIdentity.accountId` when it is an account id and the identity is the account's
    /// own (not of type `AWSAccount` or `AWSService`); `""` when neither.
    pub(crate) fn recipient_account_id<'a>(&'a self, record: &'a str) -> &'a str {
        let source = self.source(record);
        if let Some(recorded) = self.top.recipient_account_id.as_str(source) {
            if !recorded.is_empty() {
                return recorded;
            }
        }
        let identity = &self.identity;
        if identity
            .identity_type
            .as_str(source)
            .is_some_and(|kind| FOREIGN_IDENTITY_TYPES.contains(&kind))
        {
            return "";
        }
        match identity.account_id.as_str(source) {
            Some(account) if AccountId::parse(account).is_ok() => account,
            _ => "",
        }
    }

    /// Derives the eventID of a record parsed into these fields that predates the field
    /// (eventVersion before 1.01) and has none; `None` for every other record.
    pub(crate) fn derive_event_id(&self, record: &str) -> Option<Box<str>> {
        if !matches!(self.top.event_id, Slot::Absent) {
            return None;
        }
        if self.minor_version? >= EVENT_ID_SINCE {
            return None;
        }
        derived_event_id(record)
    }
}

/// The eventID derived for `record` (one JSON object): the SHA-256 of its canonical JSON
/// text (members sorted by key, no whitespace, strings and numbers as serde_json writes
/// them), whose first 16 bytes are written as a UUID of version 8 (RFC 9562's custom
/// version) and variant 10. The same JSON value, however spaced or ordered, gets the same
/// id, so importing a record again is recognised as the same event.
pub(crate) fn derived_event_id(record: &str) -> Option<Box<str>> {
    let value: Value = serde_json::from_str(record).ok()?;
    let mut canonical = String::with_capacity(record.len());
    write_canonical(&value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        let _ = write!(id, "{byte:02x}");
    }
    Some(id.into_boxed_str())
}

/// `value` as compact JSON with every object's members sorted by key (bytewise).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, member)) in sorted.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key.as_str()).unwrap_or_default());
                out.push(':');
                write_canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(elements) => {
            out.push('[');
            for (index, element) in elements.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(element, out);
            }
            out.push(']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut String) {
    // Serialising a string, number, boolean or null to a string cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_sorts_keys_and_drops_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "é\n"}], "a": true }"#).unwrap();
        let mut text = String::new();
        write_canonical(&value, &mut text);
        assert_eq!(text, r#"{"a":true,"b":[1,{"a":"é\n","z":null}]}"#);
    }

    #[test]
    fn derived_ids_are_uuids_of_version_8() {
        let id = derived_event_id(r#"{"eventVersion":"1.0"}"#).unwrap();
        assert_eq!(id.len(), 36);
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('8'), "{id}");
        assert!(
            matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{id}"
        );
        assert!(id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(derived_event_id("not json"), None);
    }

    #[test]
    fn a_record_whose_id_cannot_be_derived_is_refused() {
        let record = r#"{"eventVersion":"1.0","userIdentity":{"type":"Root","accountId":"123456789012"},"eventTime":"2014-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","x":1e400}"#;
        let event = crate::event::EventRecord::from_json(record).unwrap();
        assert_eq!(event.event_id(), "");
        let error = event.validate().unwrap_err();
        assert_eq!(error.field(), Some("eventID"), "{error}");
        let fine = record.replace("1e400", "1e300");
        let event = crate::event::EventRecord::from_json(&fine).unwrap();
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(event.event_id().len(), 36);
    }
}
