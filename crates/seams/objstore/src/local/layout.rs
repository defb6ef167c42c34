//! Where a local bucket keeps things: objects as plain files at
//! `<root>/<bucket>/<key>`, everything else under a hidden `.opentrail-meta/`
//! directory of the bucket that no valid key can name.

use std::io;
use std::path::{Path, PathBuf};

use crate::object_key::validate_object_key;
use crate::StoreError;

/// The bucket's private directory; excluded from listings.
pub(crate) const META_DIR: &str = ".opentrail-meta";
/// Sidecar metadata files, at the same relative path as their object.
const METADATA_DIR: &str = "metadata";
/// Temporary files, renamed into place once complete.
const TMP_DIR: &str = "tmp";

const MAX_SEGMENT_BYTES: usize = 255;

/// A valid object key (see `validate_object_key`) that is also a path inside
/// its bucket: not inside the private directory, segments short enough for
/// the file system.
#[derive(Debug, Clone)]
pub(crate) struct KeyPath(PathBuf);

impl KeyPath {
    pub(crate) fn parse(key: &str) -> Result<KeyPath, String> {
        validate_object_key(key)?;
        if key.split('/').next() == Some(META_DIR) {
            return Err(format!(
                "keys must not start with {META_DIR}/ in a local bucket"
            ));
        }
        if key
            .split('/')
            .any(|segment| segment.len() > MAX_SEGMENT_BYTES)
        {
            return Err(format!(
                "key segments must be at most {MAX_SEGMENT_BYTES} bytes long in a local bucket"
            ));
        }
        Ok(KeyPath(key.split('/').collect()))
    }

    pub(crate) fn relative(&self) -> &Path {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BucketDir {
    pub(crate) path: PathBuf,
}

impl BucketDir {
    pub(crate) fn object(&self, key: &KeyPath) -> PathBuf {
        self.path.join(key.relative())
    }

    pub(crate) fn metadata(&self, key: &KeyPath) -> PathBuf {
        self.path
            .join(META_DIR)
            .join(METADATA_DIR)
            .join(key.relative())
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.path.join(META_DIR).join(TMP_DIR)
    }

    pub(crate) fn exists(&self) -> bool {
        self.path.is_dir()
    }
}

/// Maps an I/O failure to the store's error, naming what failed where.
pub(crate) fn io_error(what: &str, path: &Path, err: io::Error) -> StoreError {
    let message = format!("failed to {what} {}: {err}", path.display());
    match err.kind() {
        io::ErrorKind::PermissionDenied => StoreError::AccessDenied(message),
        _ => StoreError::Other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cloudtrail_keys() {
        let key = "prefix/AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/17/123456789012_CloudTrail_us-east-1_20240517T0930Z_abcdefABCDEF0123.json.gz";
        assert_eq!(KeyPath::parse(key).unwrap().relative(), Path::new(key));
        assert!(KeyPath::parse("a b/ü/.hidden/x..y").is_ok());
        assert!(KeyPath::parse("x/.opentrail-meta/y").is_ok());
    }

    #[test]
    fn rejects_keys_that_escape_or_collide() {
        for key in [
            "",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "./a",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            ".opentrail-meta",
            ".opentrail-meta/metadata/x",
            "a\0b",
        ] {
            assert!(KeyPath::parse(key).is_err(), "{key:?}");
        }
        assert!(KeyPath::parse(&"k".repeat(1025)).is_err());
        assert!(KeyPath::parse(&"k".repeat(256)).is_err());
    }
}
