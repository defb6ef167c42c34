//! The sort-key column: for every record, in order, `eventTime << 32 | fingerprint`.
//! Lookups binary-search it to turn time bounds and page positions into ordinals.
//! Stored in chunks of [`CHUNK_LEN`] keys: time deltas as varints, then fingerprints.

use crate::varint;

pub(crate) const CHUNK_LEN: usize = 1024;

/// The sort key of an event: ordering by it descending is "newest first", with the
/// identity fingerprint breaking ties within a second.
pub(crate) fn sort_key(time: u32, fingerprint: u32) -> u64 {
    (u64::from(time) << 32) | u64::from(fingerprint)
}

pub(crate) fn key_time(key: u64) -> u32 {
    (key >> 32) as u32
}

pub(crate) fn key_fingerprint(key: u64) -> u32 {
    key as u32
}

/// One decoded chunk: keys in descending order.
#[derive(Debug)]
pub(crate) struct SortKeyChunk {
    pub(crate) keys: Vec<u64>,
}

impl SortKeyChunk {
    pub(crate) fn memory_bytes(&self) -> usize {
        self.keys.capacity() * 8
    }

    /// Encodes keys that are in descending order.
    pub(crate) fn encode(keys: &[u64]) -> Vec<u8> {
        debug_assert!(keys.windows(2).all(|pair| pair[0] >= pair[1]));
        let mut out = Vec::with_capacity(keys.len() * 6 + 8);
        varint::put(&mut out, keys.len() as u64);
        let mut previous = keys.first().map_or(0, |&key| key_time(key));
        varint::put(&mut out, u64::from(previous));
        for &key in keys {
            let time = key_time(key);
            varint::put(&mut out, u64::from(previous - time));
            previous = time;
        }
        for &key in keys {
            out.extend_from_slice(&key_fingerprint(key).to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(raw: &[u8]) -> Option<Self> {
        let mut pos = 0;
        let count = varint::get_usize(raw, &mut pos)?;
        if count > CHUNK_LEN {
            return None;
        }
        let mut time = varint::get_u32(raw, &mut pos)?;
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            time = time.checked_sub(varint::get_u32(raw, &mut pos)?)?;
            times.push(time);
        }
        let fingerprints = raw.get(pos..)?;
        if fingerprints.len() != count * 4 {
            return None;
        }
        let keys = times
            .into_iter()
            .zip(fingerprints.chunks_exact(4))
            .map(|(time, fp)| sort_key(time, u32::from_le_bytes([fp[0], fp[1], fp[2], fp[3]])))
            .collect();
        Some(Self { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn chunks_round_trip(mut keys in proptest::collection::vec(any::<u64>(), 0..CHUNK_LEN)) {
            keys.sort_unstable_by(|a, b| b.cmp(a));
            let chunk = SortKeyChunk::decode(&SortKeyChunk::encode(&keys)).unwrap();
            prop_assert_eq!(chunk.keys, keys);
        }
    }

    #[test]
    fn key_parts() {
        let key = sort_key(1_700_000_000, 0xdead_beef);
        assert_eq!(key_time(key), 1_700_000_000);
        assert_eq!(key_fingerprint(key), 0xdead_beef);
        assert!(sort_key(2, 0) > sort_key(1, u32::MAX));
    }
}
