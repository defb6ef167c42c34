//! The reference dataset made deliverable to one trail: each record's `recipientAccountId`
//! becomes the bench account and its `eventTime` now (trails skip events older than
//! StartLogging), and the eventIDs of the management events are kept to find them again.

use crate::events::{build_bodies, Body};
use crate::server::ACCOUNT_ID;
use anyhow::bail;
use memchr::memmem;
use std::collections::HashSet;
use std::path::Path;

/// An eventID (a UUID) as a number, cheap to keep a million of.
pub type EventId = u128;

pub(crate) const RECIPIENT_ACCOUNT: &[u8] = b"\"recipientAccountId\":\"";
const EVENT_TIME: &[u8] = b"\"eventTime\":\"";
const EVENT_ID: &[u8] = b"\"eventID\":\"";
const MANAGEMENT_EVENT: &[u8] = b"\"managementEvent\":true";

/// Request bodies ready to send, and the events a trail with default selectors delivers.
pub struct DeliverableDataset {
    pub bodies: Vec<Body>,
    pub events: usize,
    /// Management events: what a trail with the default selectors delivers.
    pub expected: HashSet<EventId>,
}

/// Parses a UUID's 36 characters (`8-4-4-4-12` hex digits).
pub fn parse_event_id(text: &[u8]) -> Option<EventId> {
    if text.len() != 36 {
        return None;
    }
    let mut id: u128 = 0;
    for (at, &byte) in text.iter().enumerate() {
        if matches!(at, 8 | 13 | 18 | 23) {
            if byte != b'-' {
                return None;
            }
            continue;
        }
        id = (id << 4) | u128::from((byte as char).to_digit(16)?);
    }
    Some(id)
}

/// The eventIDs in a log file's text, in order (found textually: no JSON parse).
pub fn event_ids(text: &[u8]) -> impl Iterator<Item = EventId> + '_ {
    memmem::find_iter(text, EVENT_ID).filter_map(move |at| {
        let start = at + EVENT_ID.len();
        text.get(start..start + 36).and_then(parse_event_id)
    })
}

/// Overwrites the string value of the first `"field":"` in `record` with `value` when it
/// has the same length; false when the field is missing or its value is longer or shorter.
pub(crate) fn overwrite_string(record: &mut [u8], field: &[u8], value: &[u8]) -> bool {
    let Some(at) = memmem::find(record, field) else {
        return false;
    };
    let start = at + field.len();
    let end = start + value.len();
    if record.get(end) != Some(&b'"') {
        return false;
    }
    record[start..end].copy_from_slice(value);
    true
}

/// Reads the dataset and rewrites each record as the module doc says.
pub fn load_deliverable(input: &Path, body_limit: usize) -> anyhow::Result<DeliverableDataset> {
    // One event time for all: gen_cloudtrail.py writes whole seconds, 20 characters.
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut expected = HashSet::new();
    let mut unpatched = 0usize;
    let mut without_id = 0usize;
    let mut write_record = |record: &[u8], body: &mut Vec<u8>| {
        let start = body.len();
        body.extend_from_slice(record);
        let written = &mut body[start..];
        let patched = overwrite_string(written, RECIPIENT_ACCOUNT, ACCOUNT_ID.as_bytes())
            && overwrite_string(written, EVENT_TIME, now.as_bytes());
        if !patched {
            unpatched += 1;
        }
        if memmem::find(written, MANAGEMENT_EVENT).is_none() {
            return;
        }
        match event_ids(written).next() {
            Some(id) => {
                expected.insert(id);
            }
            None => without_id += 1,
        }
    };
    let bodies = build_bodies(input, body_limit, &mut write_record)?;
    if unpatched > 0 {
        bail!("{unpatched} records in {} lack a 12-digit recipientAccountId or a whole-second eventTime", input.display());
    }
    if without_id > 0 {
        bail!(
            "{without_id} management events in {} have no UUID eventID",
            input.display()
        );
    }
    let events = bodies.iter().map(|b| b.records).sum();
    Ok(DeliverableDataset {
        bodies,
        events,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_round_trip() {
        let text =
            br#"{"Records":[{"eventID":"eb2fbd19-03ce-43f6-a6b3-117b619571a6"},{"eventID":"x"}]}"#;
        let ids: Vec<_> = event_ids(text).collect();
        assert_eq!(ids, vec![0xeb2fbd1903ce43f6a6b3117b619571a6]);
    }

    #[test]
    fn overwrite_keeps_length() {
        let mut record = br#"{"recipientAccountId":"123456789012","x":1}"#.to_vec();
        assert!(overwrite_string(
            &mut record,
            RECIPIENT_ACCOUNT,
            b"111122223333"
        ));
        assert_eq!(record, br#"{"recipientAccountId":"111122223333","x":1}"#);
        assert!(!overwrite_string(&mut record, RECIPIENT_ACCOUNT, b"1"));
    }
}
