//! zstd dictionaries trained from stored records. CloudTrail records share most of their
//! text (field names, principals, services), so a dictionary lets small blocks compress
//! almost as well as whole files while staying cheap to decompress one at a time.

use crate::error::HistoryError;
use crate::segment::block_compressor;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use zstd::bulk::Compressor;
use zstd::dict::DecoderDictionary;

/// Records sampled for training, at most this many bytes in all.
const TRAINING_SAMPLE_BYTES: usize = 12 << 20;
/// Below this many sample records training is not worth it.
pub(crate) const MIN_TRAINING_RECORDS: usize = 1_000;

/// Compressors kept per dictionary for later blocks: each holds the dictionary's tables,
/// built once (~1 MiB indexed) rather than for every batch of blocks.
const POOLED_COMPRESSORS: usize = 4;

/// A trained dictionary, with compressors for the store's level and prepared for
/// decompression.
pub(crate) struct Dictionary {
    id: u32,
    bytes: Vec<u8>,
    level: i32,
    /// Compressors kept for later blocks; `None` once a newer dictionary compresses new
    /// blocks (retired: none are kept any more).
    compressors: Mutex<Option<Vec<Compressor<'static>>>>,
    decoder: DecoderDictionary<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary").field("id", &self.id).finish()
    }
}

impl Dictionary {
    pub(crate) fn new(id: u32, bytes: &[u8], level: i32) -> Self {
        Self {
            id,
            bytes: bytes.to_vec(),
            level,
            compressors: Mutex::new(Some(Vec::new())),
            decoder: DecoderDictionary::copy(bytes),
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// A compressor of record blocks with this dictionary (one frame per block, with a
    /// checksum): from the pool when one is there, else a new one. [`Self::put_back`]
    /// returns it for later blocks.
    pub(crate) fn take_compressor(&self) -> io::Result<Compressor<'static>> {
        let pooled = self
            .compressors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .and_then(Vec::pop);
        match pooled {
            Some(compressor) => Ok(compressor),
            None => block_compressor(Some(&self.bytes), self.level),
        }
    }

    #[cfg(test)]
    pub(crate) fn pooled_compressors(&self) -> usize {
        self.compressors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, Vec::len)
    }

    /// Keeps `compressor` (from [`Self::take_compressor`], its work done) for later blocks.
    pub(crate) fn put_back(&self, compressor: Compressor<'static>) {
        let mut pool = self
            .compressors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = pool.as_mut().filter(|pool| pool.len() < POOLED_COMPRESSORS) {
            pool.push(compressor);
        }
    }

    /// Frees the pooled compressors (a few MiB each) and keeps none from now on: a newer
    /// dictionary compresses new blocks. A block compressed later (a merge planned before
    /// the newer dictionary) still gets a compressor, made for it.
    pub(crate) fn retire_compressors(&self) {
        *self
            .compressors
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn decoder(&self) -> &DecoderDictionary<'static> {
        &self.decoder
    }

    pub(crate) fn path(dir: &Path, id: u32) -> PathBuf {
        dir.join(format!("dict-{id:06}.zdict"))
    }

    pub(crate) fn load(dir: &Path, id: u32, level: i32) -> Result<Arc<Self>, HistoryError> {
        let path = Self::path(dir, id);
        let bytes = std::fs::read(&path).map_err(|error| HistoryError::io(&path, error))?;
        Ok(Arc::new(Self::new(id, &bytes, level)))
    }

    /// Trains a dictionary of at most `max_bytes` from `records` (evenly sampled) and
    /// writes it durably as dictionary `id`. `None` when there is too little to learn from.
    pub(crate) fn train(
        dir: &Path,
        id: u32,
        records: &[&[u8]],
        max_bytes: usize,
        level: i32,
    ) -> Result<Option<Arc<Self>>, HistoryError> {
        if records.len() < MIN_TRAINING_RECORDS || max_bytes == 0 {
            return Ok(None);
        }
        let total: usize = records.iter().map(|record| record.len()).sum();
        let step = total.div_ceil(TRAINING_SAMPLE_BYTES).max(1);
        let samples: Vec<&[u8]> = records.iter().step_by(step).copied().collect();
        let bytes = match zstd::dict::from_samples(&samples, max_bytes) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, samples = samples.len(), "dictionary training failed; compressing without one");
                return Ok(None);
            }
        };
        let path = Self::path(dir, id);
        crate::fsutil::write_durably(&path, &bytes)?;
        Ok(Some(Arc::new(Self::new(id, &bytes, level))))
    }
}
