//! Listing a local bucket: a walk of its directory tree that skips the
//! private directory, starting as deep as the prefix allows.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::layout::{io_error, META_DIR};
use crate::{ObjectInfo, StoreError};

/// Objects of the bucket at `bucket_dir` whose keys start with `prefix`, sorted.
pub(crate) fn list(bucket_dir: &Path, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
    // Only whole directory names of the prefix can narrow the walk:
    // "a/b/c" starts in "a/b/", where "c..." may be a file or a directory.
    let (start_key, start_dir) = match prefix.rfind('/') {
        Some(end) => (&prefix[..=end], bucket_dir.join(&prefix[..end])),
        None => ("", bucket_dir.to_path_buf()),
    };
    // No stored key has such directory segments (see `KeyPath`).
    let dirs: Vec<&str> = start_key.split_terminator('/').collect();
    if dirs.iter().any(|dir| matches!(*dir, "" | "." | "..")) || dirs.first() == Some(&META_DIR) {
        return Ok(Vec::new());
    }
    let mut objects = Vec::new();
    walk(bucket_dir, &start_dir, start_key, prefix, &mut objects)?;
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

fn walk(
    bucket_dir: &Path,
    dir: &Path,
    dir_key: &str,
    prefix: &str,
    objects: &mut Vec<ObjectInfo>,
) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(io_error("list directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list directory", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(dir = %dir.display(), "skipping a file whose name is not UTF-8");
            continue;
        };
        if dir == bucket_dir && name == META_DIR {
            continue;
        }
        let key = format!("{dir_key}{name}");
        let file_type = entry
            .file_type()
            .map_err(|e| io_error("inspect", &entry.path(), e))?;
        if file_type.is_dir() {
            let sub_key = format!("{key}/");
            if sub_key.starts_with(prefix) || prefix.starts_with(&sub_key) {
                walk(bucket_dir, &entry.path(), &sub_key, prefix, objects)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            objects.push(object_info(entry.path(), key)?);
        }
    }
    Ok(())
}

fn object_info(path: PathBuf, key: String) -> Result<ObjectInfo, StoreError> {
    let metadata = fs::metadata(&path).map_err(|e| io_error("inspect", &path, e))?;
    let modified = metadata
        .modified()
        .map_err(|e| io_error("read modification time of", &path, e))?;
    Ok(ObjectInfo {
        key,
        size: metadata.len(),
        last_modified: DateTime::<Utc>::from(modified),
    })
}

/// Whether the bucket holds at least one object.
pub(crate) fn has_objects(bucket_dir: &Path) -> Result<bool, StoreError> {
    fn any_file(dir: &Path, skip: Option<&str>) -> Result<bool, StoreError> {
        let entries = fs::read_dir(dir).map_err(|e| io_error("list directory", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list directory", dir, e))?;
            if skip.is_some_and(|skip| entry.file_name() == skip) {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(|e| io_error("inspect", &entry.path(), e))?;
            if !file_type.is_dir() || any_file(&entry.path(), None)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
    any_file(bucket_dir, Some(META_DIR))
}
