//! Where an ingested record came from. Records stay byte-identical; their provenance
//! travels beside them in the event log as one marker record written in the same append,
//! right before the records it describes: `MARKER`, the number of records (u64 LE), then
//! the provenance as JSON. A marker is never an event (it starts with a NUL byte, which
//! no JSON text does), so a consumer that does not know it skips it like any non-event.

use serde::{Deserialize, Serialize};

/// The first bytes of a provenance marker record.
pub const PROVENANCE_MARKER: &[u8] = b"\0OTPROV1";

/// Who sent a batch of records, and through which door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Provenance {
    /// The access key that signed the request.
    pub access_key_id: String,
    /// The principal of that key (`arn:aws:iam::ACCOUNT:root` or `...:user/NAME`).
    pub principal: String,
    /// The API that took the records (`opentrail:PutEvents` for `POST /events`).
    pub channel: String,
    /// The address the request came from.
    #[serde(rename = "SourceIPAddress")]
    pub source_ip_address: String,
}

impl Provenance {
    /// The marker record announcing that the next `count` records came from here.
    pub fn marker(&self, count: u64) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut bytes = Vec::with_capacity(PROVENANCE_MARKER.len() + 8 + json.len());
        bytes.extend_from_slice(PROVENANCE_MARKER);
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes
    }

    pub fn from_json(json: &[u8]) -> Option<Self> {
        serde_json::from_slice(json).ok()
    }
}

/// Whether an event log record is a provenance marker rather than an event.
pub fn is_provenance_marker(bytes: &[u8]) -> bool {
    bytes.starts_with(PROVENANCE_MARKER)
}

/// A marker's record count and provenance JSON; `None` for anything else.
pub fn parse_provenance_marker(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let rest = bytes.strip_prefix(PROVENANCE_MARKER)?;
    let (count, json) = rest.split_at_checked(8)?;
    let count = u64::from_le_bytes(count.try_into().ok()?);
    Provenance::from_json(json)?;
    Some((count, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_and_is_never_an_event() {
        let provenance = Provenance {
            access_key_id: "AKIAEXAMPLE".into(),
            principal: "arn:aws:iam::111122223333:user/alice".into(),
            channel: "opentrail:PutEvents".into(),
            source_ip_address: "127.0.0.1".into(),
        };
        let marker = provenance.marker(7);
        assert!(is_provenance_marker(&marker));
        let (count, json) = parse_provenance_marker(&marker).unwrap();
        assert_eq!(count, 7);
        assert_eq!(Provenance::from_json(json), Some(provenance));
        assert!(crate::EventRecord::from_slice(&marker).is_err());
        assert!(parse_provenance_marker(b"{\"eventVersion\":\"1.08\"}").is_none());
        assert!(parse_provenance_marker(PROVENANCE_MARKER).is_none());
    }
}
