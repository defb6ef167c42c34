//! The sort-key column: for every record, in order, `eventTime << 32 | fingerprint`.
//! Within a stream keys descend, so lookups binary-search it to turn time bounds and page
//! positions into ordinals. Stored in chunks of [`CHUNK_LEN`] keys: zigzag time deltas as
//! varints (they jump back up where a stream starts), then fingerprints.

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

    pub(crate) fn encode(keys: &[u64]) -> Vec<u8> {
        let mut out = Vec::with_capacity(keys.len() * 6 + 8);
        varint::put(&mut out, keys.len() as u64);
        let mut previous = 0i64;
        for &key in keys {
            let time = i64::from(key_time(key));
            let delta = previous - time;
            varint::put(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
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
        let mut time = 0i64;
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let zigzag = varint::get(raw, &mut pos)?;
            let delta = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
            time = time.checked_sub(delta)?;
            times.push(u32::try_from(time).ok()?);
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
        fn chunks_round_trip(keys in proptest::collection::vec(any::<u64>(), 0..CHUNK_LEN)) {
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
