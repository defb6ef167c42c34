//! Small durable-file helpers: write-then-rename with fsync of file and directory.

use crate::error::HistoryError;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file is written and synced, renamed
/// over `path`, and the directory is synced so the rename survives a crash.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), HistoryError> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|error| HistoryError::io(&tmp, error))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| HistoryError::io(&tmp, error))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|error| HistoryError::io(path, error))?;
    sync_parent(path)
}

/// Syncs the directory holding `path`, making creations, renames and removals in it durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), HistoryError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), HistoryError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| HistoryError::io(dir, error))
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), HistoryError> {
    std::fs::create_dir_all(dir).map_err(|error| HistoryError::io(dir, error))
}
