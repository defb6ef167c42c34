//! Open segment files, bounded: a segment's file is opened when it is read, kept in a
//! small LRU of descriptors and closed when it falls out, so the number of descriptors the
//! store holds does not grow with the number of day partitions or segments.

use crate::error::HistoryError;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

struct Entry {
    file: Arc<File>,
    tick: u64,
}

#[derive(Default)]
struct Lru {
    /// Segment id → its open file.
    entries: HashMap<u64, Entry>,
    by_age: BTreeMap<u64, u64>,
    tick: u64,
}

/// At most `capacity` segment files open at once (plus those lent out to readers at the
/// moment they are evicted, which close as soon as the read ends).
pub(crate) struct OpenFiles {
    capacity: usize,
    lru: Mutex<Lru>,
}

impl OpenFiles {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            lru: Mutex::new(Lru::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // The LRU is consistent between statements; a panicking holder leaves it usable.
        self.lru
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The open file of segment `id` at `path`, opening it (and closing the least recently
    /// used one beyond the cap) when it is not open.
    pub(crate) fn get(&self, id: u64, path: &Path) -> Result<Arc<File>, HistoryError> {
        {
            let mut lru = self.lock();
            lru.tick += 1;
            let tick = lru.tick;
            if let Some(entry) = lru.entries.get_mut(&id) {
                let old = std::mem::replace(&mut entry.tick, tick);
                let file = entry.file.clone();
                lru.by_age.remove(&old);
                lru.by_age.insert(tick, id);
                return Ok(file);
            }
        }
        // Opened outside the lock: other readers go on meanwhile.
        let file = Arc::new(File::open(path).map_err(|error| HistoryError::io(path, error))?);
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some(old) = lru.entries.insert(
            id,
            Entry {
                file: file.clone(),
                tick,
            },
        ) {
            lru.by_age.remove(&old.tick);
        }
        lru.by_age.insert(tick, id);
        while lru.entries.len() > self.capacity {
            let Some((_, oldest)) = lru.by_age.pop_first() else {
                break;
            };
            lru.entries.remove(&oldest);
        }
        Ok(file)
    }

    /// Closes segment `id`'s file (after it was merged away, expired or quarantined).
    pub(crate) fn forget(&self, id: u64) {
        let mut lru = self.lock();
        if let Some(entry) = lru.entries.remove(&id) {
            lru.by_age.remove(&entry.tick);
        }
    }

    /// Descriptors held now.
    pub(crate) fn open_count(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_capacity_files_open_least_recently_used_closed_first() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<_> = (0..5)
            .map(|index| {
                let path = dir.path().join(format!("f{index}"));
                std::fs::write(&path, [index as u8]).unwrap();
                path
            })
            .collect();
        let files = OpenFiles::new(2);
        files.get(0, &paths[0]).unwrap();
        files.get(1, &paths[1]).unwrap();
        files.get(0, &paths[0]).unwrap();
        files.get(2, &paths[2]).unwrap();
        assert_eq!(files.open_count(), 2);
        let lru = files.lock();
        assert!(lru.entries.contains_key(&0) && lru.entries.contains_key(&2));
        drop(lru);
        files.forget(0);
        assert_eq!(files.open_count(), 1);
        assert!(files.get(9, &dir.path().join("missing")).is_err());
        assert_eq!(files.open_count(), 1);
    }
}
