//! Where event data stores live in the object store: one folder per store, one folder per
//! event day, files named by the range of log offsets whose events they hold:
//! `<root>/<store-id>/eventday=YYYY-MM-DD/part-<first offset>-<last offset>.parquet`.

use chrono::NaiveDate;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;

const DAY_PREFIX: &str = "eventday=";
const PART_PREFIX: &str = "part-";
const PART_SUFFIX: &str = ".parquet";

/// The object store holding the lake and the folder inside it.
#[derive(Clone, Debug)]
pub struct LakeStorage {
    pub objects: Arc<dyn ObjectStore>,
    pub root: Path,
}

/// One lake file, parsed from its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartFile {
    pub(crate) store: String,
    pub(crate) day: NaiveDate,
    /// Offsets of the first and last log record of the batch that wrote it.
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl LakeStorage {
    pub fn new(objects: Arc<dyn ObjectStore>, root: Path) -> Self {
        Self { objects, root }
    }

    /// A lake in a local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> crate::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            crate::LakeError::Io(format!(
                "failed to create lake directory {}: {e}",
                dir.display()
            ))
        })?;
        let objects = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self::new(Arc::new(objects), Path::default()))
    }

    pub(crate) fn store_prefix(&self, store: &str) -> Path {
        self.root.clone().join(store)
    }

    pub(crate) fn day_prefix(&self, store: &str, day: NaiveDate) -> Path {
        self.store_prefix(store)
            .join(format!("{DAY_PREFIX}{}", day.format("%Y-%m-%d")))
    }

    pub(crate) fn part_path(&self, part: &PartFile) -> Path {
        self.day_prefix(&part.store, part.day).join(format!(
            "{PART_PREFIX}{:020}-{:020}{PART_SUFFIX}",
            part.first, part.last
        ))
    }

    /// The lake file at `path`, if it is one.
    pub(crate) fn parse_part(&self, path: &Path) -> Option<PartFile> {
        let relative: Vec<_> = path.prefix_match(&self.root)?.collect();
        let [store, day, name] = relative.as_slice() else {
            return None;
        };
        let day =
            NaiveDate::parse_from_str(day.as_ref().strip_prefix(DAY_PREFIX)?, "%Y-%m-%d").ok()?;
        let range = name
            .as_ref()
            .strip_prefix(PART_PREFIX)?
            .strip_suffix(PART_SUFFIX)?;
        let (first, last) = range.split_once('-')?;
        Some(PartFile {
            store: store.as_ref().to_string(),
            day,
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        })
    }
}

/// A stored lake file.
#[derive(Clone, Debug)]
pub(crate) struct StoredPart {
    pub(crate) part: PartFile,
    pub(crate) path: Path,
    pub(crate) size: u64,
}

impl LakeStorage {
    /// The lake files of one store (or of all), each with its size.
    pub(crate) async fn list_parts(&self, store: Option<&str>) -> crate::Result<Vec<StoredPart>> {
        let prefix = match store {
            Some(store) => self.store_prefix(store),
            None => self.root.clone(),
        };
        let mut listing = self.objects.list(Some(&prefix));
        let mut parts = Vec::new();
        while let Some(object) = listing.next().await {
            let object = object?;
            if let Some(part) = self.parse_part(&object.location) {
                parts.push(StoredPart {
                    part,
                    path: object.location,
                    size: object.size,
                });
            }
        }
        Ok(parts)
    }
}

/// Files whose offset range lies inside another file's of the same store and day: the
/// inputs of a compaction whose output is already stored. Batches never overlap, so only
/// compaction makes such pairs; the inputs are dropped by the writer and never read.
pub(crate) fn superseded(parts: &[StoredPart]) -> Vec<usize> {
    (0..parts.len())
        .filter(|&i| {
            let inner = &parts[i].part;
            parts.iter().enumerate().any(|(j, outer)| {
                let outer = &outer.part;
                j != i
                    && outer.store == inner.store
                    && outer.day == inner.day
                    && outer.first <= inner.first
                    && inner.last <= outer.last
                    && (outer.first, outer.last) != (inner.first, inner.last)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_paths_round_trip() {
        let storage = LakeStorage::new(
            Arc::new(object_store::memory::InMemory::new()),
            Path::from("lake"),
        );
        let part = PartFile {
            store: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111".into(),
            day: NaiveDate::from_ymd_opt(2023, 1, 22).unwrap(),
            first: 7,
            last: 42,
        };
        let path = storage.part_path(&part);
        assert_eq!(
            path.as_ref(),
            "lake/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111/eventday=2023-01-22/part-00000000000000000007-00000000000000000042.parquet"
        );
        assert_eq!(storage.parse_part(&path), Some(part));
        assert_eq!(
            storage.parse_part(&Path::from("lake/x/eventday=2023-01-22/other.txt")),
            None
        );
        assert_eq!(
            storage.parse_part(&Path::from(
                "elsewhere/x/eventday=2023-01-22/part-1-2.parquet"
            )),
            None
        );
    }
}
