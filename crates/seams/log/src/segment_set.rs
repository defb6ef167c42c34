//! The in-memory list of live segments, shared by the writer (which adds segments when it
//! rolls), readers (which locate offsets) and retention (which removes old segments).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::error::Result;
use crate::segment::{scan_sealed_segment, SparseIndex, SEGMENT_HEADER_LEN};

/// One segment file and, once known, its sparse index.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) first_offset: u64,
    pub(crate) path: PathBuf,
    /// `None` for a sealed segment found at open that no reader has needed yet; built by a
    /// verifying scan on first use. The active segment always has one.
    index: Mutex<Option<SparseIndex>>,
}

impl Segment {
    pub(crate) fn new(first_offset: u64, path: PathBuf, index: Option<SparseIndex>) -> Self {
        Self {
            first_offset,
            path,
            index: Mutex::new(index),
        }
    }

    /// The indexed frame nearest at or before `offset` as `(offset, position)`. `end_offset`
    /// (the next segment's first offset) is needed only if the index must still be built.
    pub(crate) fn index_floor(&self, offset: u64, end_offset: Option<u64>) -> Result<(u64, u64)> {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = index.as_ref() {
            return Ok(index.floor(offset));
        }
        if offset == self.first_offset {
            // Sequential readers enter each segment at its start: no scan needed.
            return Ok((self.first_offset, SEGMENT_HEADER_LEN));
        }
        let Some(end_offset) = end_offset else {
            // Unreachable by construction (the active segment is always indexed); a scan
            // from the start is correct anyway.
            return Ok(SparseIndex::new(self.first_offset).floor(offset));
        };
        let built = scan_sealed_segment(
            &self.path,
            self.first_offset,
            end_offset - self.first_offset,
        )?;
        let floor = built.floor(offset);
        *index = Some(built);
        Ok(floor)
    }

    /// Verifies every frame of this sealed segment (and keeps the index it builds).
    pub(crate) fn verify_sealed(&self, end_offset: u64) -> Result<()> {
        let built = scan_sealed_segment(
            &self.path,
            self.first_offset,
            end_offset - self.first_offset,
        )?;
        *self.index.lock().unwrap_or_else(PoisonError::into_inner) = Some(built);
        Ok(())
    }

    /// Forgets index entries for offsets at or above `end` (the writer cut those frames).
    pub(crate) fn truncate_index(&self, end: u64) {
        if let Some(index) = self
            .index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            index.truncate(end);
        }
    }

    /// Adds index entries for frames the writer has just appended.
    pub(crate) fn extend_index(&self, entries: &[(u64, u64)]) {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let index = index.get_or_insert_with(|| SparseIndex::new(self.first_offset));
        for &(offset, position) in entries {
            index.note(offset, position);
        }
    }
}

/// A segment located for an offset.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) segment: Arc<Segment>,
    /// First offset of the next segment; `None` while this is the active segment.
    pub(crate) end_offset: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct SegmentSet {
    by_first_offset: RwLock<BTreeMap<u64, Arc<Segment>>>,
}

impl SegmentSet {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Arc<Segment>>> {
        // The map is never left half-updated, so a panic elsewhere does not poison its data.
        self.by_first_offset
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, Arc<Segment>>> {
        self.by_first_offset
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, segment: Arc<Segment>) {
        self.write().insert(segment.first_offset, segment);
    }

    /// First offset still on disk.
    pub(crate) fn start_offset(&self) -> u64 {
        self.read().keys().next().copied().unwrap_or(0)
    }

    /// The segment holding `offset`, or `None` if `offset` is below the first segment.
    pub(crate) fn locate(&self, offset: u64) -> Option<Located> {
        let map = self.read();
        let (_, segment) = map.range(..=offset).next_back()?;
        let end_offset = map
            .range(offset.saturating_add(1)..)
            .next()
            .map(|(&first, _)| first);
        Some(Located {
            segment: Arc::clone(segment),
            end_offset,
        })
    }

    /// The paths of every segment, the active one last.
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        self.read()
            .values()
            .map(|segment| segment.path.clone())
            .collect()
    }

    /// Every sealed segment with its end offset, ascending.
    pub(crate) fn sealed(&self) -> Vec<Located> {
        let map = self.read();
        map.values()
            .zip(map.keys().skip(1))
            .map(|(segment, &end)| Located {
                segment: Arc::clone(segment),
                end_offset: Some(end),
            })
            .collect()
    }

    /// Removes and returns, ascending, the sealed segments whose records all lie below
    /// `offset`. The active (last) segment is never removed.
    pub(crate) fn remove_below(&self, offset: u64) -> Vec<Arc<Segment>> {
        let mut map = self.write();
        let doomed: Vec<u64> = map
            .keys()
            .zip(map.keys().skip(1))
            .take_while(|&(_, &end)| end <= offset)
            .map(|(&first, _)| first)
            .collect();
        doomed
            .iter()
            .filter_map(|first| map.remove(first))
            .collect()
    }
}
