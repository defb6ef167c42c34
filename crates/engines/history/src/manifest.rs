//! The manifest: the durable list of what the store holds — segments per day partition,
//! dictionaries, the applied log offset those segments cover, and which WAL files still
//! need replaying. It is replaced atomically, so a crash leaves either the old or the
//! new state; files it does not name are leftovers and are removed on open.

use crate::error::HistoryError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "MANIFEST";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentEntry {
    pub(crate) id: u64,
    pub(crate) day: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) version: u32,
    /// The log offset the segments cover; WAL replay continues from here.
    pub(crate) applied_offset: u64,
    /// WAL files with this id or higher hold events not yet in segments.
    pub(crate) wal_floor: u64,
    pub(crate) next_segment_id: u64,
    pub(crate) next_dictionary_id: u32,
    /// The dictionary new segments are compressed with (0: none yet).
    pub(crate) current_dictionary: u32,
    /// Records compressed with the current dictionary so far.
    pub(crate) current_dictionary_records: u64,
    /// Partitions before this day were expired; events for them are not stored again.
    pub(crate) expired_before_day: Option<i32>,
    pub(crate) segments: Vec<SegmentEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            version: VERSION,
            applied_offset: 0,
            wal_floor: 0,
            next_segment_id: 1,
            next_dictionary_id: 1,
            current_dictionary: 0,
            current_dictionary_records: 0,
            expired_before_day: None,
            segments: Vec::new(),
        }
    }
}

impl Manifest {
    fn path(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// The manifest in `dir`, or an empty one for a new store.
    pub(crate) fn load(dir: &Path) -> Result<Self, HistoryError> {
        let path = Self::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default())
            }
            Err(error) => return Err(HistoryError::io(&path, error)),
        };
        let manifest: Self = serde_json::from_slice(&bytes)
            .map_err(|error| HistoryError::corrupt(&path, error.to_string()))?;
        if manifest.version != VERSION {
            return Err(HistoryError::corrupt(
                &path,
                format!("unsupported manifest version {}", manifest.version),
            ));
        }
        Ok(manifest)
    }

    pub(crate) fn store(&self, dir: &Path) -> Result<(), HistoryError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|error| HistoryError::corrupt(Self::path(dir), error.to_string()))?;
        crate::fsutil::write_durably(&Self::path(dir), &bytes)
    }

    /// Dictionary ids still needed: the current one and those segments use.
    pub(crate) fn live_dictionaries(
        &self,
        segment_dictionaries: impl Iterator<Item = u32>,
    ) -> Vec<u32> {
        let mut ids: Vec<u32> = segment_dictionaries
            .chain([self.current_dictionary])
            .filter(|&id| id != 0)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
