//! zstd dictionaries trained from stored records. CloudTrail records share most of their
//! text (field names, principals, services), so a dictionary lets small blocks compress
//! almost as well as whole files while staying cheap to decompress one at a time.

use crate::error::HistoryError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// Records sampled for training, at most this many bytes in all.
const TRAINING_SAMPLE_BYTES: usize = 12 << 20;
/// Below this many sample records training is not worth it.
pub(crate) const MIN_TRAINING_RECORDS: usize = 1_000;

/// A trained dictionary, prepared for compression at the store's level and for decompression.
pub(crate) struct Dictionary {
    id: u32,
    encoder: EncoderDictionary<'static>,
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
            encoder: EncoderDictionary::copy(bytes, level),
            decoder: DecoderDictionary::copy(bytes),
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn encoder(&self) -> &EncoderDictionary<'static> {
        &self.encoder
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
