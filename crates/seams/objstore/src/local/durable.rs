//! Crash-safe file system steps: a file is written and fsynced under a
//! temporary name, renamed into place, and the directories whose entries
//! changed are fsynced too, so a crash leaves the old or the new file, never
//! a torn one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::layout::io_error;
use crate::StoreError;

/// Flushes a directory's entries (new, renamed or removed files) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| io_error("sync directory", dir, e))
}

/// Creates `dir` and any missing ancestors below `base`, syncing each parent
/// that gained an entry.
pub(crate) fn create_dirs(base: &Path, dir: &Path) -> Result<(), StoreError> {
    let Ok(relative) = dir.strip_prefix(base) else {
        return Err(StoreError::Other(format!(
            "{} is outside {}",
            dir.display(),
            base.display()
        )));
    };
    let mut current = base.to_path_buf();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        match fs::create_dir(&current) {
            Ok(()) => sync_dir(&parent)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && current.is_dir() => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Other(format!(
                    "cannot create directory {}: an object has that name",
                    current.display()
                )))
            }
            Err(e) => return Err(io_error("create directory", &current, e)),
        }
    }
    Ok(())
}

/// A complete, fsynced file waiting under a temporary name.
pub(crate) struct StagedFile(NamedTempFile);

/// Writes `contents` to a new temporary file in `tmp_dir` and fsyncs it.
pub(crate) fn stage(tmp_dir: &Path, contents: &[u8]) -> Result<StagedFile, StoreError> {
    let mut file = NamedTempFile::new_in(tmp_dir)
        .map_err(|e| io_error("create temporary file in", tmp_dir, e))?;
    file.write_all(contents)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| io_error("write temporary file", file.path(), e))?;
    Ok(StagedFile(file))
}

impl StagedFile {
    /// Renames the file to `target` (replacing it), creating parent
    /// directories below `base`. Returns the directory to sync afterwards.
    pub(crate) fn install(self, base: &Path, target: &Path) -> Result<PathBuf, StoreError> {
        let parent = target.parent().ok_or_else(|| {
            StoreError::Other(format!("{} has no parent directory", target.display()))
        })?;
        create_dirs(base, parent)?;
        if target.is_dir() {
            return Err(StoreError::Other(format!(
                "cannot write {}: keys below it exist",
                target.display()
            )));
        }
        self.0
            .persist(target)
            .map_err(|e| io_error("rename temporary file to", target, e.error))?;
        Ok(parent.to_path_buf())
    }
}

/// Removes a file; a missing file (or a directory where a file was expected)
/// counts as removed. Returns whether a file was removed.
pub(crate) fn remove_file(path: &Path) -> Result<bool, StoreError> {
    if path.is_dir() {
        return Ok(false);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error("remove", path, e)),
    }
}

/// Removes now-empty directories from `dir` up to, not including, `stop`.
pub(crate) fn prune_empty_dirs(stop: &Path, dir: &Path) {
    let mut current = dir;
    while current != stop && current.starts_with(stop) {
        // Fails (harmlessly) as soon as a directory still has entries.
        if fs::remove_dir(current).is_err() {
            return;
        }
        let Some(parent) = current.parent() else {
            return;
        };
        // Best effort: an unsynced removal of an empty directory is harmless.
        let _ = sync_dir(parent);
        current = parent;
    }
}
