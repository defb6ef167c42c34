//! Stable hashes written to disk: they must not change between builds or platforms,
//! so nothing here uses `std`'s randomly seeded hashers.

use sha2::{Digest, Sha256};

/// A 64-bit hash for bloom filters and in-memory tables (FNV-1a with a splitmix finaliser).
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(hash)
}

/// The splitmix64 finaliser: spreads every input bit over the whole word.
pub(crate) fn mix64(mut value: u64) -> u64 {
    value ^= value >> 30;
    value = value.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value ^= value >> 27;
    value = value.wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// The 32-bit fingerprint of an event's identity (account, region, eventID). It orders
/// events that share a second and finds candidates for EventId lookups and duplicate
/// checks; every candidate is confirmed against the stored record, so collisions never
/// produce a wrong answer. SHA-256 keeps producers from choosing colliding IDs cheaply.
pub(crate) fn event_fingerprint(account: &str, region: &str, event_id: &str) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(account.as_bytes());
    hasher.update([0]);
    hasher.update(region.as_bytes());
    hasher.update([0]);
    hasher.update(event_id.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable() {
        // Values are persisted; a change here breaks every existing store.
        assert_eq!(hash64(b""), mix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(hash64(b"abc"), hash64(b"abc"));
        assert_ne!(hash64(b"abc"), hash64(b"abd"));
        assert_eq!(
            event_fingerprint("123456789012", "us-east-1", "e"),
            event_fingerprint("123456789012", "us-east-1", "e")
        );
        assert_ne!(
            event_fingerprint("123456789012", "us-east-1", "e"),
            event_fingerprint("123456789012", "us-east-2", "e")
        );
    }
}
