//! Top values of an attribute (userIdentityArn, userAgent, errorCode) in a window, with a
//! Space-Saving sketch: at most `capacity` entries whatever the number of distinct values;
//! a value's count is exact while it stays in the sketch, an upper bound otherwise.

use crate::hash::hash_str;
use std::sync::Arc;

/// The three attributes Insights attributes an anomaly to, in AWS's order.
pub const ATTRIBUTES: [&str; 3] = ["userIdentityArn", "userAgent", "errorCode"];

#[derive(Debug, Clone)]
struct Entry {
    hash: u64,
    value: Arc<str>,
    count: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TopK {
    entries: Vec<Entry>,
}

impl TopK {
    pub(crate) fn add(&mut self, value: &str, count: u64, capacity: usize) {
        self.add_hashed(hash_str(value), value, None, count, capacity);
    }

    fn add_hashed(
        &mut self,
        hash: u64,
        value: &str,
        shared: Option<&Arc<str>>,
        count: u64,
        capacity: usize,
    ) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| entry.hash == hash && &*entry.value == value)
        {
            entry.count += count;
            return;
        }
        let value = shared.cloned().unwrap_or_else(|| Arc::from(value));
        if self.entries.len() < capacity {
            // Most sketches hold one or two values: grow one entry at a time.
            self.entries.reserve_exact(1);
            self.entries.push(Entry { hash, value, count });
            return;
        }
        // Space-Saving: the new value takes the smallest entry's place and count.
        let Some(smallest) = self
            .entries
            .iter_mut()
            .min_by(|a, b| a.count.cmp(&b.count).then_with(|| b.value.cmp(&a.value)))
        else {
            return;
        };
        smallest.hash = hash;
        smallest.value = value;
        smallest.count += count;
    }

    pub(crate) fn merge(&mut self, other: &TopK, capacity: usize) {
        for entry in &other.entries {
            self.add_hashed(
                entry.hash,
                &entry.value,
                Some(&entry.value),
                entry.count,
                capacity,
            );
        }
    }

    /// The `n` largest values with their counts, largest first (ties by value).
    pub(crate) fn top(&self, n: usize) -> Vec<(Arc<str>, u64)> {
        let mut entries: Vec<(Arc<str>, u64)> = self
            .entries
            .iter()
            .map(|entry| (entry.value.clone(), entry.count))
            .collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries.truncate(n);
        entries
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self
                .entries
                .iter()
                .map(|entry| entry.value.len() + 16)
                .sum::<usize>()
    }
}

/// One sketch per attribute.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attributions {
    pub(crate) by_attribute: [TopK; 3],
}

impl Attributions {
    pub(crate) fn merge(&mut self, other: &Attributions, capacity: usize) {
        for (mine, theirs) in self.by_attribute.iter_mut().zip(&other.by_attribute) {
            mine.merge(theirs, capacity);
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.by_attribute.iter().map(TopK::heap_bytes).sum()
    }

    /// Every entry of each sketch, to save them.
    pub(crate) fn to_lists(&self) -> [Vec<(String, u64)>; 3] {
        self.by_attribute.each_ref().map(|top| {
            top.top(usize::MAX)
                .into_iter()
                .map(|(value, count)| (value.to_string(), count))
                .collect()
        })
    }

    /// Sketches holding the saved entries again.
    pub(crate) fn from_lists(lists: &[Vec<(String, u64)>; 3], capacity: usize) -> Self {
        let mut restored = Self::default();
        for (top, list) in restored.by_attribute.iter_mut().zip(lists) {
            for (value, count) in list {
                top.add(value, *count, capacity);
            }
        }
        restored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exact_counts_within_capacity_and_bounds_entries() {
        let mut top = TopK::default();
        // A value with more than N/capacity of the N calls is never evicted, so its
        // count stays exact.
        for _ in 0..60 {
            top.add("alice", 1, 5);
        }
        for i in 0..100 {
            top.add(&format!("noise-{i}"), 1, 5);
        }
        assert_eq!(top.entries.len(), 5);
        let best = top.top(2);
        assert_eq!(&*best[0].0, "alice");
        assert_eq!(best[0].1, 60);
    }

    #[test]
    fn merge_adds_counts_of_equal_values() {
        let mut a = TopK::default();
        a.add("x", 2, 5);
        let mut b = TopK::default();
        b.add("x", 3, 5);
        b.add("y", 1, 5);
        a.merge(&b, 5);
        assert_eq!(a.top(5), vec![(Arc::from("x"), 5), (Arc::from("y"), 1)]);
    }
}
