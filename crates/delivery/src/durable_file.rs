//! Small state files that survive a crash whole or not at all: write a temporary file,
//! fsync it, rename it over the target, fsync the directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("state file has no directory"))?;
    fs::create_dir_all(dir)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    {
        let mut file = File::create(temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(temporary, path)?;
    sync_dir(dir)
}

/// Removes `path` (a missing file is fine) and makes the removal durable.
pub(crate) fn remove_durably(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    }
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Regular files in `dir` whose names end with `extension`, sorted by name; a missing
/// directory has none. Leftover temporaries of interrupted writes are removed.
pub(crate) fn files_with_extension(
    dir: &Path,
    extension: &str,
) -> io::Result<Vec<std::path::PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".tmp") {
            fs::remove_file(&path)?;
            continue;
        }
        if name.ends_with(extension) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_lists_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        fs::write(dir.path().join("a/b/other.json.tmp"), b"torn").unwrap();
        let listed = files_with_extension(&dir.path().join("a/b"), ".json").unwrap();
        assert_eq!(listed, vec![path.clone()]);
        assert!(!dir.path().join("a/b/other.json.tmp").exists());
        remove_durably(&path).unwrap();
        remove_durably(&path).unwrap();
        assert!(files_with_extension(&dir.path().join("missing"), ".json")
            .unwrap()
            .is_empty());
    }
}
