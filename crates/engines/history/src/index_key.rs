//! The byte keys of the per-attribute indexes. A key names one (category, account,
//! region) stream and, for attribute keys, one value; components are length-prefixed so
//! no account or region can be confused with another.

use crate::attributes::{HistoryCategory, LookupAttributeKey};
use crate::hash::hash64;

/// What an index key selects within a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Every event of the stream (time-range-only lookups).
    Stream,
    /// Events with one attribute value.
    Attribute(LookupAttributeKey),
}

impl KeyKind {
    fn tag(self) -> u8 {
        match self {
            Self::Stream => 0,
            Self::Attribute(key) => match key {
                LookupAttributeKey::EventId => 1,
                LookupAttributeKey::EventName => 2,
                LookupAttributeKey::ReadOnly => 3,
                LookupAttributeKey::Username => 4,
                LookupAttributeKey::ResourceType => 5,
                LookupAttributeKey::ResourceName => 6,
                LookupAttributeKey::EventSource => 7,
                LookupAttributeKey::AccessKeyId => 8,
            },
        }
    }
}

/// Encodes an index key; `None` when the account or region is longer than 255 bytes
/// (real ones are 12 and about 15), which insert refuses as invalid.
pub(crate) fn index_key(
    kind: KeyKind,
    category: HistoryCategory,
    account: &str,
    region: &str,
    value: &str,
) -> Option<Vec<u8>> {
    let mut key = Vec::with_capacity(4 + account.len() + region.len() + value.len());
    push_index_key(&mut key, kind, category, account, region, value).then_some(key)
}

/// Appends an index key to `out`; `false` (and nothing appended) when it cannot be encoded.
pub(crate) fn push_index_key(
    out: &mut Vec<u8>,
    kind: KeyKind,
    category: HistoryCategory,
    account: &str,
    region: &str,
    value: &str,
) -> bool {
    let (Ok(account_len), Ok(region_len)) =
        (u8::try_from(account.len()), u8::try_from(region.len()))
    else {
        return false;
    };
    out.push(kind.tag());
    out.push(category.byte());
    out.push(account_len);
    out.extend_from_slice(account.as_bytes());
    out.push(region_len);
    out.extend_from_slice(region.as_bytes());
    out.extend_from_slice(value.as_bytes());
    true
}

/// Whether `key` is a stream key (segments keep stream ranges, not stream postings).
pub(crate) fn is_stream_key(key: &[u8]) -> bool {
    key.first() == Some(&KeyKind::Stream.tag())
}

/// The bloom filter item of an index key.
pub(crate) fn key_bloom_hash(key: &[u8]) -> u64 {
    hash64(key)
}

/// The bloom filter item of an event fingerprint (kept apart from key hashes by a marker
/// byte no key starts with).
pub(crate) fn fingerprint_bloom_hash(fingerprint: u32) -> u64 {
    let bytes = fingerprint.to_be_bytes();
    hash64(&[0xff, bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_cannot_run_into_each_other() {
        let a = index_key(
            KeyKind::Stream,
            HistoryCategory::Management,
            "12",
            "3us",
            "",
        );
        let b = index_key(
            KeyKind::Stream,
            HistoryCategory::Management,
            "123",
            "us",
            "",
        );
        assert_ne!(a, b);
        let long = "x".repeat(256);
        assert_eq!(
            index_key(KeyKind::Stream, HistoryCategory::Management, &long, "r", ""),
            None
        );
    }
}
