//! Small state files that survive a crash whole or not at all: write a temporary file,
//! fsync it, rename it over the target, fsync the directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, bytes, false)
}

/// [`write_atomically`] for secrets: the directories it creates are 0700 and the file is
/// 0600 from its first byte (created with that mode, whatever the umask), so no other
/// user can ever open it. Existing directories are made 0700 too.
#[cfg_attr(not(test), allow(dead_code))] // no secret is a file since signing keys moved to the metadata store
pub(crate) fn write_private_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, bytes, true)
}

fn write_atomically_with(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("state file has no directory"))?;
    if private {
        create_private_dir_all(dir)?;
    } else {
        fs::create_dir_all(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    {
        let mut file = if private {
            create_private_file(temporary)?
        } else {
            File::create(temporary)?
        };
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(temporary, path)?;
    sync_dir(dir)
}

/// Creates (or truncates) `path` readable and writable by its owner only, from the start:
/// a leftover file is removed first, so an old file's mode (or an open descriptor another
/// user holds on it) never carries over.
#[cfg(unix)]
pub(crate) fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask can only take bits away; this makes sure nothing else was added.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
pub(crate) fn create_private_file(path: &Path) -> io::Result<File> {
    File::create(path)
}

/// Makes an existing file readable and writable by its owner only.
#[cfg(unix)]
pub(crate) fn restrict_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
pub(crate) fn restrict_file(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// `create_dir_all` where every directory it creates, and `dir` itself, is 0700.
#[cfg(unix)]
pub(crate) fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
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

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only_from_the_first_byte() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/us-east-1/key.pem");
        // A leftover temporary that anybody may read: replaced, never reused as it is.
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let temporary = dir.path().join("keys/us-east-1/key.pem.tmp");
        fs::write(&temporary, b"old").unwrap();
        fs::set_permissions(&temporary, fs::Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(path.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
        let file = create_private_file(&temporary).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
        assert_eq!(mode(&temporary), 0o600, "0600 before anything is written");
        drop(file);

        write_private_atomically(&path, b"secret").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let fresh = dir.path().join("other/deeper/key.pem");
        write_private_atomically(&fresh, b"secret").unwrap();
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(mode(&dir.path().join("other")), 0o700);
        assert_eq!(mode(&dir.path().join("other/deeper")), 0o700);
    }
}
