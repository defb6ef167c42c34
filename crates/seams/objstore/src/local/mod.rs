//! The embedded object store: a bucket is the directory `<root>/<bucket>/`,
//! an object the file `<root>/<bucket>/<key>`, its user metadata a JSON
//! sidecar under the bucket's hidden `.opentrail-meta/` tree.
//!
//! Writes are crash safe (temporary file, fsync, rename, fsync directory).
//! Within one process a lock makes each put, delete and read see an object's
//! body and metadata together; the root is owned by one OpenTrail process.

mod durable;
mod layout;
mod listing;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::object_key::invalid_key;
use crate::{metadata, validate_bucket_name, Object, ObjectInfo, ObjectStore, StoreError};
use layout::{io_error, BucketDir, KeyPath};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    /// Readers share it; installing or removing an object takes it alone.
    lock: Arc<RwLock<()>>,
}

impl LocalStore {
    /// A store keeping its buckets under `root` (created with the first bucket).
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore {
            root,
            lock: Arc::new(RwLock::new(())),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> Result<BucketDir, StoreError> {
        validate_bucket_name(bucket)
            .map_err(|why| StoreError::invalid_bucket_name(bucket, &why))?;
        Ok(BucketDir {
            path: self.root.join(bucket),
        })
    }

    fn existing_bucket_dir(&self, bucket: &str) -> Result<BucketDir, StoreError> {
        let dir = self.bucket_dir(bucket)?;
        if !dir.exists() {
            return Err(StoreError::NoSuchBucket(bucket.to_owned()));
        }
        Ok(dir)
    }

    /// Runs blocking file system work off the async runtime.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(LocalStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(store))
            .await
            .map_err(|e| StoreError::Other(format!("local store task failed: {e}")))?
    }

    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        // The lock guards no data, so a panic elsewhere cannot leave it inconsistent.
        self.lock
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.lock
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn create_bucket_now(&self, bucket: &str) -> Result<(), StoreError> {
        let dir = self.bucket_dir(bucket)?;
        fs::create_dir_all(&self.root).map_err(|e| io_error("create store root", &self.root, e))?;
        match fs::create_dir(&dir.path) {
            Ok(()) => durable::sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StoreError::BucketAlreadyExists(bucket.to_owned()))
            }
            Err(e) => Err(io_error("create bucket directory", &dir.path, e)),
        }
    }

    fn delete_bucket_now(&self, bucket: &str) -> Result<(), StoreError> {
        let _guard = self.write_lock();
        let dir = self.existing_bucket_dir(bucket)?;
        if listing::has_objects(&dir.path)? {
            return Err(StoreError::BucketNotEmpty(bucket.to_owned()));
        }
        // Renaming first makes the deletion atomic; the hidden name is never
        // a valid bucket name, so a crash leaves only ignored leftovers.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let doomed = self
            .root
            .join(format!(".deleted-{bucket}-{}-{nanos}", std::process::id()));
        fs::rename(&dir.path, &doomed)
            .map_err(|e| io_error("remove bucket directory", &dir.path, e))?;
        durable::sync_dir(&self.root)?;
        fs::remove_dir_all(&doomed).map_err(|e| io_error("remove", &doomed, e))
    }

    fn list_buckets_now(&self) -> Result<Vec<String>, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list store root", &self.root, e)),
        };
        let mut buckets = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list store root", &self.root, e))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if let (true, Ok(name)) = (is_dir, entry.file_name().into_string()) {
                if validate_bucket_name(&name).is_ok() {
                    buckets.push(name);
                }
            }
        }
        buckets.sort();
        Ok(buckets)
    }

    fn put_object_now(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        metadata: &[(String, String)],
    ) -> Result<(), StoreError> {
        let key_path = KeyPath::parse(key).map_err(|why| invalid_key(key, &why))?;
        let metadata = metadata::normalize(metadata)?;
        let dir = self.existing_bucket_dir(bucket)?;

        // The slow part (writing and syncing) happens before taking the lock.
        let tmp = dir.tmp();
        durable::create_dirs(&dir.path, &tmp)?;
        let staged_body = durable::stage(&tmp, body)?;
        let staged_metadata = if metadata.is_empty() {
            None
        } else {
            let json = serde_json::to_vec(&metadata).map_err(|e| {
                StoreError::Other(format!("failed to encode metadata of {key}: {e}"))
            })?;
            Some(durable::stage(&tmp, &json)?)
        };

        let (object_parent, metadata_parent) = {
            let _guard = self.write_lock();
            if !dir.exists() {
                return Err(StoreError::NoSuchBucket(bucket.to_owned()));
            }
            // Metadata first: a crash in between leaves no object or the
            // previous one, never a new body without its metadata.
            let metadata_path = dir.metadata(&key_path);
            let metadata_parent = match staged_metadata {
                Some(staged) => Some(staged.install(&dir.path, &metadata_path)?),
                None if durable::remove_file(&metadata_path)? => {
                    metadata_path.parent().map(Path::to_path_buf)
                }
                None => None,
            };
            let object_parent = staged_body.install(&dir.path, &dir.object(&key_path))?;
            (object_parent, metadata_parent)
        };
        durable::sync_dir(&object_parent)?;
        if let Some(parent) = metadata_parent {
            durable::sync_dir(&parent)?;
        }
        Ok(())
    }

    fn get_object_now(&self, bucket: &str, key: &str) -> Result<Option<Object>, StoreError> {
        let _guard = self.read_lock();
        let dir = self.existing_bucket_dir(bucket)?;
        let Ok(key_path) = KeyPath::parse(key) else {
            return Ok(None); // no such key can have been stored
        };
        let object_path = dir.object(&key_path);
        let body = match fs::read(&object_path) {
            Ok(body) => body,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::IsADirectory
                        | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(io_error("read", &object_path, e)),
        };
        let metadata_path = dir.metadata(&key_path);
        let metadata = match fs::read(&metadata_path) {
            Ok(json) => serde_json::from_slice(&json).map_err(|e| {
                StoreError::Other(format!(
                    "corrupt metadata file {}: {e}",
                    metadata_path.display()
                ))
            })?,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Vec::new()
            }
            Err(e) => return Err(io_error("read", &metadata_path, e)),
        };
        Ok(Some(Object {
            body: Bytes::from(body),
            metadata,
        }))
    }

    fn list_objects_now(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let _guard = self.read_lock();
        let dir = self.existing_bucket_dir(bucket)?;
        listing::list(&dir.path, prefix)
    }

    fn delete_object_now(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let _guard = self.write_lock();
        let dir = self.existing_bucket_dir(bucket)?;
        let Ok(key_path) = KeyPath::parse(key) else {
            return Ok(()); // no such key can have been stored
        };
        for path in [dir.object(&key_path), dir.metadata(&key_path)] {
            if durable::remove_file(&path)? {
                if let Some(parent) = path.parent() {
                    durable::sync_dir(parent)?;
                    durable::prune_empty_dirs(&dir.path, parent);
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    async fn bucket_exists(&self, bucket: &str) -> Result<bool, StoreError> {
        let bucket = bucket.to_owned();
        self.blocking(move |store| Ok(store.bucket_dir(&bucket)?.exists()))
            .await
    }

    async fn create_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let bucket = bucket.to_owned();
        self.blocking(move |store| store.create_bucket_now(&bucket))
            .await
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let bucket = bucket.to_owned();
        self.blocking(move |store| store.delete_bucket_now(&bucket))
            .await
    }

    async fn list_buckets(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(|store| store.list_buckets_now()).await
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        metadata: &[(String, String)],
    ) -> Result<(), StoreError> {
        let (bucket, key, metadata) = (bucket.to_owned(), key.to_owned(), metadata.to_vec());
        self.blocking(move |store| store.put_object_now(&bucket, &key, &body, &metadata))
            .await
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, StoreError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |store| store.get_object_now(&bucket, &key))
            .await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>, StoreError> {
        let (bucket, prefix) = (bucket.to_owned(), prefix.to_owned());
        self.blocking(move |store| store.list_objects_now(&bucket, &prefix))
            .await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |store| store.delete_object_now(&bucket, &key))
            .await
    }

    /// `object_store`'s `LocalFileSystem` rooted at the bucket directory
    /// (which must exist). It also lists the hidden `.opentrail-meta/` tree;
    /// readers register the prefixes they read.
    fn bucket_store(&self, bucket: &str) -> Result<Arc<dyn object_store::ObjectStore>, StoreError> {
        let dir = self.existing_bucket_dir(bucket)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir.path)
            .map_err(|e| io_error_text("open bucket directory", &dir.path, &e))?;
        Ok(Arc::new(store))
    }
}

fn io_error_text(what: &str, path: &Path, err: &dyn std::fmt::Display) -> StoreError {
    StoreError::Other(format!("failed to {what} {}: {err}", path.display()))
}
