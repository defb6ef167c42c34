//! Per-segment bloom filter over index keys and event fingerprints, kept in memory so a
//! lookup skips segments that cannot hold its key without reading them.

use crate::hash::mix64;

const BITS_PER_ITEM: usize = 12;
const PROBES: u32 = 8;

#[derive(Debug, Clone)]
pub(crate) struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    pub(crate) fn with_items(items: usize) -> Self {
        let bits = (items.max(1) * BITS_PER_ITEM).next_power_of_two().max(64);
        Self {
            words: vec![0; bits / 64],
        }
    }

    pub(crate) fn from_words(words: Vec<u64>) -> Option<Self> {
        (words.len().is_power_of_two()).then_some(Self { words })
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    fn probes(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> {
        let mask = (self.words.len() * 64 - 1) as u64;
        let first = hash;
        let step = mix64(hash) | 1;
        (0..PROBES).map(move |probe| {
            let bit = first.wrapping_add(step.wrapping_mul(u64::from(probe))) & mask;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    pub(crate) fn insert(&mut self, hash: u64) {
        let probes: Vec<_> = self.probes(hash).collect();
        for (word, bit) in probes {
            self.words[word] |= bit;
        }
    }

    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        self.probes(hash)
            .all(|(word, bit)| self.words[word] & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash64;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut bloom = Bloom::with_items(10_000);
        for item in 0..10_000u32 {
            bloom.insert(hash64(&item.to_le_bytes()));
        }
        for item in 0..10_000u32 {
            assert!(bloom.may_contain(hash64(&item.to_le_bytes())));
        }
        let false_positives = (10_000..110_000u32)
            .filter(|item| bloom.may_contain(hash64(&item.to_le_bytes())))
            .count();
        assert!(false_positives < 1_000, "{false_positives}");
    }
}
