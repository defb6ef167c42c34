//! Persisted consumer cursors: one small file per consumer, `cursors/<name>.cursor`, with two
//! checksummed slots written alternately, each commit one in-place write plus one fdatasync.
//! A torn write can damage only the slot being written; the other still holds the previous
//! cursor, so a commit is atomic without a rename.

use std::collections::hash_map::{Entry, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::cursor_store::{CursorStore, StoredCursor};
use crate::error::{IoContext, LogError, Result};
use crate::segment::sync_dir;

const SLOT_LEN: usize = 24;
/// Slots sit in different 512-byte sectors so a torn sector write touches only one.
const SLOT_POSITIONS: [u64; 2] = [0, 512];
const SLOT_MAGIC: [u8; 4] = *b"OTC1";
const CURSOR_SUFFIX: &str = ".cursor";
const MAX_CONSUMER_NAME_LEN: usize = 64;

/// A consumer name that is safe as a file name (every store takes the same names).
pub(crate) fn validate_consumer_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_CONSUMER_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(LogError::InvalidConsumerName {
            name: name.to_string(),
        })
    }
}

/// One committed cursor value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// Commit sequence number; the valid slot with the higher one is current.
    sequence: u64,
    offset: u64,
}

impl Slot {
    fn encode(&self) -> [u8; SLOT_LEN] {
        let mut bytes = [0u8; SLOT_LEN];
        bytes[..4].copy_from_slice(&SLOT_MAGIC);
        bytes[4..12].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.offset.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..20]);
        bytes[20..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; SLOT_LEN] = bytes.get(..SLOT_LEN)?.try_into().ok()?;
        let (body, crc) = bytes.split_at(20);
        if body[..4] != SLOT_MAGIC || crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        Some(Self {
            sequence: u64::from_le_bytes(body[4..12].try_into().ok()?),
            offset: u64::from_le_bytes(body[12..20].try_into().ok()?),
        })
    }
}

/// The current slot in a cursor file's bytes. `Ok(None)`: never committed (missing, empty
/// or all-zero file — a creation that did not finish).
fn current_slot(path: &Path, bytes: &[u8]) -> Result<Option<Slot>> {
    let current = SLOT_POSITIONS
        .iter()
        .filter_map(|&position| bytes.get(position as usize..).and_then(Slot::decode))
        .max_by_key(|slot| slot.sequence);
    if current.is_some() || bytes.iter().all(|&b| b == 0) {
        return Ok(current);
    }
    Err(LogError::Corrupt {
        path: path.to_path_buf(),
        position: 0,
        reason: "no valid slot in cursor file".into(),
    })
}

#[derive(Debug)]
struct OpenCursor {
    file: File,
    path: PathBuf,
    last: Option<Slot>,
}

/// The cursors of every consumer of one log as files in one directory: the embedded
/// log's own store ([`crate::EventLog::open`]), and what earlier versions kept, which
/// [`crate::EventLog::open_with_cursors`] moves into its store.
#[derive(Debug)]
pub(crate) struct FileCursorStore {
    dir: PathBuf,
    /// Open cursor files by consumer name; the lock also serializes commits.
    open: Mutex<HashMap<String, OpenCursor>>,
    /// Cursor files damaged while the log was open and overwritten by a commit.
    overwritten: AtomicU64,
}

impl FileCursorStore {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            open: Mutex::new(HashMap::new()),
            overwritten: AtomicU64::new(0),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{CURSOR_SUFFIX}"))
    }

    /// Replaces the cursor file of `name`, whatever it holds, with one committed `offset`.
    fn rewrite(&self, name: &str, offset: u64) -> Result<()> {
        validate_consumer_name(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(name);
        let path = self.path(name);
        let existed = path.exists();
        let mut bytes = vec![0u8; SLOT_POSITIONS[1] as usize + SLOT_LEN];
        bytes[..SLOT_LEN].copy_from_slice(
            &Slot {
                sequence: 0,
                offset,
            }
            .encode(),
        );
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        file.write_all_at(&bytes, 0)
            .and_then(|()| file.set_len(bytes.len() as u64))
            .and_then(|()| file.sync_all())
            .at(&path)?;
        if !existed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The cursor files in the directory, by consumer name (files that are not cursors are
    /// ignored; a missing directory holds none).
    fn consumers(&self) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(error) => return Err(error).at(&self.dir),
        };
        for entry in entries {
            let entry = entry.at(&self.dir)?;
            let name = entry.file_name();
            if let Some(consumer) = name
                .to_str()
                .and_then(|name| name.strip_suffix(CURSOR_SUFFIX))
                .filter(|consumer| validate_consumer_name(consumer).is_ok())
            {
                found.push(consumer.to_string());
            }
        }
        found.sort();
        Ok(found)
    }

    /// Deletes every cursor file and then the directory, durably: the cursors moved to
    /// another store.
    pub(crate) fn remove_all(&self) -> Result<()> {
        for consumer in self.consumers()? {
            let path = self.path(&consumer);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error).at(&path),
            }
        }
        if !self.dir.is_dir() {
            return Ok(());
        }
        sync_dir(&self.dir)?;
        // Anything else left in it (not a cursor) keeps the directory.
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => {
                if let Some(parent) = self.dir.parent() {
                    sync_dir(parent)?;
                }
                Ok(())
            }
            Err(error) => {
                tracing::warn!(dir = ?self.dir, %error, "the old cursors directory holds other files; left in place");
                Ok(())
            }
        }
    }

    fn open_cursor(&self, name: &str) -> Result<OpenCursor> {
        let path = self.path(name);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).at(&path)?;
        let last = match current_slot(&path, &bytes) {
            Ok(last) => last,
            Err(error) => {
                // Damaged since the log was opened: this commit overwrites it.
                tracing::error!(consumer = name, %error, "cursor file has no valid slot; overwriting it with the consumer's new position");
                self.overwritten.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        if !existed {
            // The first commit's fdatasync covers the data; the name needs the directory.
            file.sync_all().at(&path)?;
            sync_dir(&self.dir)?;
        }
        Ok(OpenCursor { file, path, last })
    }
}

impl CursorStore for FileCursorStore {
    fn load_all(&self) -> Result<Vec<StoredCursor>> {
        Ok(self
            .consumers()?
            .into_iter()
            .map(|consumer| StoredCursor {
                offset: self.load(&consumer),
                consumer,
            })
            .collect())
    }

    fn load(&self, name: &str) -> Result<Option<u64>> {
        validate_consumer_name(name)?;
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cursor) = open.get(name) {
            return Ok(cursor.last.map(|slot| slot.offset));
        }
        let path = self.path(name);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => file.read_to_end(&mut bytes).at(&path)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).at(&path),
        };
        Ok(current_slot(&path, &bytes)?.map(|slot| slot.offset))
    }

    fn commit(&self, name: &str, offset: u64) -> Result<()> {
        validate_consumer_name(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let cursor = match open.entry(name.to_string()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(self.open_cursor(name)?),
        };
        let sequence = cursor.last.map_or(0, |slot| slot.sequence + 1);
        let slot = Slot { sequence, offset };
        let position = SLOT_POSITIONS[(sequence % 2) as usize];
        cursor
            .file
            .write_all_at(&slot.encode(), position)
            .and_then(|()| cursor.file.sync_data())
            .at(&cursor.path)?;
        cursor.last = Some(slot);
        Ok(())
    }

    /// One file at a time, each replaced atomically (files share no transaction).
    fn replace_all(&self, cursors: &[(String, u64)]) -> Result<()> {
        for (name, offset) in cursors {
            self.rewrite(name, *offset)?;
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<bool> {
        validate_consumer_name(name)?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(name);
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error).at(&path),
        }
    }

    fn location(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn damaged_overwritten(&self) -> u64 {
        self.overwritten.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["history", "trail-delivery", "lake_1", "a.b"] {
            assert!(validate_consumer_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "x y", &"n".repeat(65)] {
            assert!(validate_consumer_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slot_round_trips_and_detects_damage() {
        let slot = Slot {
            sequence: 7,
            offset: 123_456,
        };
        let mut bytes = slot.encode();
        assert_eq!(Slot::decode(&bytes), Some(slot));
        bytes[13] ^= 0x40;
        assert_eq!(Slot::decode(&bytes), None);
    }

    #[test]
    fn a_torn_newer_slot_falls_back_to_the_older_one() {
        let path = Path::new("cursor");
        let mut file = vec![0u8; 1024];
        let older = Slot {
            sequence: 4,
            offset: 40,
        };
        let newer = Slot {
            sequence: 5,
            offset: 50,
        };
        file[..SLOT_LEN].copy_from_slice(&older.encode());
        file[512..512 + SLOT_LEN].copy_from_slice(&newer.encode());
        assert_eq!(current_slot(path, &file).ok().flatten(), Some(newer));
        file[512 + 3] ^= 1;
        assert_eq!(current_slot(path, &file).ok().flatten(), Some(older));
    }

    #[test]
    fn an_unfinished_creation_reads_as_never_committed_but_garbage_is_corrupt() {
        let path = Path::new("cursor");
        assert_eq!(current_slot(path, &[]).ok().flatten(), None);
        assert_eq!(current_slot(path, &[0u8; 30]).ok().flatten(), None);
        assert!(matches!(
            current_slot(path, &[1u8; 30]),
            Err(LogError::Corrupt { .. })
        ));
    }
}
