//! The write-ahead log: every accepted batch is appended (and by default fsynced) before
//! `insert_batch` returns, so the applied offset is durable together with the events it
//! covers. Files are replayed into the memtable on open and deleted once a flush has
//! put their events into segments.
//!
//! Frame: `MAGIC u32 | payload len u32 | crc32 u32 | payload`, where the payload is zstd
//! of `end offset u64 | count | (len | record)*` (varints). A torn or corrupt tail —
//! a crash in the middle of an append — ends replay and is cut off.

use crate::error::HistoryError;
use crate::varint;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const FRAME_MAGIC: u32 = 0x4f54_574c;
const HEADER_LEN: usize = 12;
const LEVEL: i32 = 1;

pub(crate) struct Wal {
    path: PathBuf,
    id: u64,
    file: File,
    sync: bool,
}

/// One replayed batch.
pub(crate) struct WalBatch {
    pub(crate) end_offset: u64,
    pub(crate) records: Vec<Vec<u8>>,
}

pub(crate) fn wal_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("wal-{id:08}.log"))
}

impl Wal {
    /// Creates WAL file `id` (empty) and makes its existence durable.
    pub(crate) fn create(dir: &Path, id: u64, sync: bool) -> Result<Self, HistoryError> {
        let path = wal_path(dir, id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|error| HistoryError::io(&path, error))?;
        crate::fsutil::sync_dir(dir)?;
        Ok(Self {
            path,
            id,
            file,
            sync,
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Appends one batch: the records accepted and the log offset it brings the store to.
    pub(crate) fn append(
        &mut self,
        end_offset: u64,
        records: &[&[u8]],
    ) -> Result<(), HistoryError> {
        let mut body = Vec::with_capacity(16 + records.iter().map(|r| r.len() + 3).sum::<usize>());
        body.extend_from_slice(&end_offset.to_le_bytes());
        varint::put(&mut body, records.len() as u64);
        for record in records {
            varint::put(&mut body, record.len() as u64);
            body.extend_from_slice(record);
        }
        let payload = zstd::bulk::compress(&body, LEVEL)
            .map_err(|error| HistoryError::io(&self.path, error))?;
        let len = u32::try_from(payload.len())
            .map_err(|_| HistoryError::corrupt(&self.path, "batch larger than 4 GiB"))?;
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        frame.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        self.file
            .write_all(&frame)
            .map_err(|error| HistoryError::io(&self.path, error))?;
        if self.sync {
            self.file
                .sync_data()
                .map_err(|error| HistoryError::io(&self.path, error))?;
        }
        Ok(())
    }

    /// WAL file ids present in `dir`, ascending.
    pub(crate) fn list(dir: &Path) -> Result<Vec<u64>, HistoryError> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|error| HistoryError::io(dir, error))? {
            let entry = entry.map_err(|error| HistoryError::io(dir, error))?;
            let name = entry.file_name();
            let id: Option<u64> = name
                .to_str()
                .and_then(|name| name.strip_prefix("wal-"))
                .and_then(|name| name.strip_suffix(".log"))
                .and_then(|id| id.parse().ok());
            ids.extend(id);
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Reads every intact batch of WAL file `id`. A torn or corrupt tail is cut off;
    /// returns whether the file was intact to its end.
    pub(crate) fn replay(
        dir: &Path,
        id: u64,
        mut visit: impl FnMut(WalBatch) -> Result<(), HistoryError>,
    ) -> Result<bool, HistoryError> {
        let path = wal_path(dir, id);
        let bytes = std::fs::read(&path).map_err(|error| HistoryError::io(&path, error))?;
        let mut pos = 0usize;
        while pos < bytes.len() {
            let Some(batch) = read_frame(&bytes, &mut pos) else {
                tracing::warn!(path = %path.display(), at = pos, "cutting off torn write-ahead log tail");
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|error| HistoryError::io(&path, error))?;
                file.set_len(pos as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(|error| HistoryError::io(&path, error))?;
                return Ok(false);
            };
            visit(batch)?;
        }
        Ok(true)
    }

    pub(crate) fn remove(dir: &Path, id: u64) -> Result<(), HistoryError> {
        let path = wal_path(dir, id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(HistoryError::io(&path, error)),
        }
    }
}

/// Decodes the frame at `*pos`, advancing past it; `None` if it is torn or corrupt.
fn read_frame(bytes: &[u8], pos: &mut usize) -> Option<WalBatch> {
    let header = bytes.get(*pos..pos.checked_add(HEADER_LEN)?)?;
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    if word(0) != FRAME_MAGIC {
        return None;
    }
    let len = word(4) as usize;
    let start = *pos + HEADER_LEN;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if crc32fast::hash(payload) != word(8) {
        return None;
    }
    let body = zstd::stream::decode_all(payload).ok()?;
    let end_offset = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    let mut at = 8;
    let count = varint::get_usize(&body, &mut at)?;
    let mut records = Vec::with_capacity(count.min(body.len()));
    for _ in 0..count {
        let len = varint::get_usize(&body, &mut at)?;
        records.push(body.get(at..at.checked_add(len)?)?.to_vec());
        at += len;
    }
    if at != body.len() {
        return None;
    }
    *pos = start + len;
    Some(WalBatch {
        end_offset,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_batches_and_cuts_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), 3, true).unwrap();
        wal.append(10, &[b"{\"a\":1}", b"{}"]).unwrap();
        wal.append(12, &[]).unwrap();
        drop(wal);
        let path = wal_path(dir.path(), 3);
        let intact_len = std::fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&FRAME_MAGIC.to_le_bytes()).unwrap();
        file.write_all(&[9, 9]).unwrap();
        drop(file);

        let mut seen = Vec::new();
        let intact = Wal::replay(dir.path(), 3, |batch| {
            seen.push((batch.end_offset, batch.records));
            Ok(())
        })
        .unwrap();
        assert!(!intact);
        assert_eq!(
            seen,
            vec![
                (10, vec![b"{\"a\":1}".to_vec(), b"{}".to_vec()]),
                (12, vec![])
            ]
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), intact_len);
        assert_eq!(Wal::list(dir.path()).unwrap(), vec![3]);
        Wal::remove(dir.path(), 3).unwrap();
        assert!(Wal::list(dir.path()).unwrap().is_empty());
    }
}
