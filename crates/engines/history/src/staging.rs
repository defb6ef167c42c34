//! Prepares a record for storage: decides whether event history keeps it, and computes
//! its sort key, day partition and index keys.

use crate::attributes::{EventSummary, HistoryCategory, LookupAttributeKey};
use crate::hash::event_fingerprint;
use crate::index_key::{push_index_key, KeyKind};
use crate::segment::sort_key;
use opentrail_model::EventRecord;

pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

/// A record ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StagedEvent {
    /// The record; the memtable copies its text into its arena.
    pub(crate) record: EventRecord,
    pub(crate) sort_key: u64,
    pub(crate) day: i32,
    /// Index keys: the stream key, then one per attribute value.
    pub(crate) keys: KeyList,
    /// The record's provenance JSON, when known. What is stored then is the record's text,
    /// a NUL byte (which no JSON text holds) and the provenance; see [`split_stored`].
    pub(crate) provenance: Option<Box<[u8]>>,
}

/// Several index keys in one buffer (one allocation instead of one per key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyList {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl KeyList {
    fn push_with(&mut self, encode: impl FnOnce(&mut Vec<u8>) -> bool) {
        if encode(&mut self.bytes) {
            self.ends.push(self.bytes.len() as u32);
        }
    }

    fn contains(&self, key_start: usize) -> bool {
        let new = &self.bytes[key_start..];
        self.iter().take(self.ends.len() - 1).any(|key| key == new)
    }

    fn pop(&mut self) {
        self.ends.pop();
        let end = self.ends.last().map_or(0, |&end| end as usize);
        self.bytes.truncate(end);
    }

    /// Bytes of the keys (about what the memtable's postings hold for them).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.len() + self.ends.len() * 4
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let key = &self.bytes[start..end as usize];
            start = end as usize;
            key
        })
    }
}

impl StagedEvent {
    /// The parts of the bytes stored for the event, in order: the record's text, then, if
    /// its provenance is known, a NUL byte and the provenance.
    pub(crate) fn stored_parts(&self) -> [&[u8]; 3] {
        match &self.provenance {
            Some(provenance) => [self.record.as_bytes(), b"\0", provenance],
            None => [self.record.as_bytes(), b"", b""],
        }
    }

    /// The bytes stored for the event, in one piece.
    pub(crate) fn stored(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.provenance {
            Some(_) => std::borrow::Cow::Owned(self.stored_parts().concat()),
            None => std::borrow::Cow::Borrowed(self.record.as_bytes()),
        }
    }

    /// Stores `provenance` (JSON) beside the record.
    pub(crate) fn with_provenance(mut self, provenance: Option<&[u8]>) -> Self {
        self.provenance = provenance.map(Box::from);
        self
    }

    pub(crate) fn fingerprint(&self) -> u32 {
        crate::segment::key_fingerprint(self.sort_key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Staging {
    Staged(StagedEvent),
    /// A data or network activity event, or an event data store's Insights event: not
    /// part of event history.
    NotHistory,
    /// Missing what history needs (eventID, a valid eventTime, account, region).
    Invalid,
}

/// The day partition of an epoch second.
pub(crate) fn day_of(seconds: i64) -> i32 {
    seconds.div_euclid(SECONDS_PER_DAY) as i32
}

pub(crate) fn stage(record: &EventRecord) -> Staging {
    let Some(category) = HistoryCategory::of(record) else {
        return Staging::NotHistory;
    };
    // An event data store's Insights events live in its destination store only.
    if record.insight_source().is_some() {
        return Staging::NotHistory;
    }
    let account = record.recipient_account_id();
    let region = record.aws_region();
    let event_id = record.event_id();
    let Some(time) = record
        .event_time()
        .and_then(|time| u32::try_from(time.timestamp()).ok())
    else {
        return Staging::Invalid;
    };
    if account.is_empty() || region.is_empty() || event_id.is_empty() {
        return Staging::Invalid;
    }
    let mut keys = KeyList {
        bytes: Vec::with_capacity(512),
        ends: Vec::with_capacity(12),
    };
    keys.push_with(|out| push_index_key(out, KeyKind::Stream, category, account, region, ""));
    if keys.ends.is_empty() {
        return Staging::Invalid;
    }
    let summary = EventSummary::of(record);
    for attribute in LookupAttributeKey::ALL {
        if attribute == LookupAttributeKey::EventId {
            continue;
        }
        summary.for_each_value(attribute, |value| {
            let start = keys.bytes.len();
            keys.push_with(|out| {
                push_index_key(
                    out,
                    KeyKind::Attribute(attribute),
                    category,
                    account,
                    region,
                    value,
                )
            });
            // An event lists a value once even when several resources share it.
            if keys.ends.last().is_some_and(|&end| end as usize > start) && keys.contains(start) {
                keys.pop();
            }
        });
    }
    Staging::Staged(StagedEvent {
        record: record.clone(),
        sort_key: sort_key(time, event_fingerprint(account, region, event_id)),
        day: day_of(i64::from(time)),
        keys,
        provenance: None,
    })
}

/// A stored event's record text and, when known, its provenance JSON.
pub(crate) fn split_stored(stored: &[u8]) -> (&[u8], Option<&[u8]>) {
    match stored.iter().position(|&byte| byte == 0) {
        Some(at) => (&stored[..at], Some(&stored[at + 1..])),
        None => (stored, None),
    }
}

/// What the store already holds of a record about to be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Nothing with its eventID (in its account and region).
    New,
    /// The same record (identical content): a redelivery or a re-import, skipped.
    Stored,
    /// Only records with its eventID but different content: an eventID conflict. Both are
    /// kept, so that a record sent first with a genuine record's eventID cannot hide it.
    Conflict,
}

impl Presence {
    /// Combines what two places hold: the same record anywhere wins, then a conflict.
    pub(crate) fn and(self, other: Presence) -> Presence {
        match (self, other) {
            (Presence::Stored, _) | (_, Presence::Stored) => Presence::Stored,
            (Presence::Conflict, _) | (_, Presence::Conflict) => Presence::Conflict,
            _ => Presence::New,
        }
    }
}

/// How stored record `json` relates to `record`: another event, the same record (byte
/// for byte, or the same JSON value with members in another order or other spacing),
/// or a different record under the same eventID, account and region.
pub(crate) fn compare(stored: &[u8], record: &EventRecord) -> Presence {
    let (json, _) = split_stored(stored);
    let Ok(stored) = EventRecord::from_slice(json) else {
        return Presence::New;
    };
    let same_event = stored.event_id() == record.event_id()
        && stored.recipient_account_id() == record.recipient_account_id()
        && stored.aws_region() == record.aws_region();
    if !same_event {
        return Presence::New;
    }
    if json == record.as_bytes() || same_json_value(json, record.as_bytes()) {
        Presence::Stored
    } else {
        Presence::Conflict
    }
}

fn same_json_value(a: &[u8], b: &[u8]) -> bool {
    match (
        serde_json::from_slice::<serde_json::Value>(a),
        serde_json::from_slice::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
