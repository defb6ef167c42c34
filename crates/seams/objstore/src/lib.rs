//! The object store seam behind trail buckets: [`LocalStore`] keeps buckets
//! as directories (the embedded default), [`S3Store`] talks to any
//! S3-compatible server through the `object_store` crate. Both behave the same
//! through [`ObjectStore`], which adds what `object_store` lacks (buckets,
//! durable local writes with user metadata) and hands out each bucket as an
//! `object_store::ObjectStore` for readers that speak it (DataFusion).

mod bucket_name;
mod error;
mod local;
mod metadata;
mod object_key;
mod s3;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use bucket_name::validate_bucket_name;
pub use error::StoreError;
pub use local::LocalStore;
pub use s3::{S3Config, S3Store};

/// An object's body and its user metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Bytes,
    /// User metadata (`x-amz-meta-<name>`): names without the prefix,
    /// lower-case, sorted by name.
    pub metadata: Vec<(String, String)>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// Buckets of objects, S3 semantics.
///
/// Metadata names are given without the `x-amz-meta-` prefix; S3 keeps them
/// lower-case, so both implementations return them lower-case and sorted.
/// Names must be HTTP token characters and values printable ASCII.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    async fn bucket_exists(&self, bucket: &str) -> Result<bool, StoreError>;
    /// Fails with [`StoreError::BucketAlreadyExists`] if it exists.
    async fn create_bucket(&self, bucket: &str) -> Result<(), StoreError>;
    /// Fails with [`StoreError::NoSuchBucket`] or [`StoreError::BucketNotEmpty`].
    async fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError>;
    /// Bucket names, sorted.
    async fn list_buckets(&self) -> Result<Vec<String>, StoreError>;
    /// Creates or replaces an object, body and metadata together.
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        metadata: &[(String, String)],
    ) -> Result<(), StoreError>;
    /// `None` when the bucket exists but the key does not.
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, StoreError>;
    /// Every object whose key starts with `prefix`, sorted by key (all pages).
    async fn list_objects(&self, bucket: &str, prefix: &str)
        -> Result<Vec<ObjectInfo>, StoreError>;
    /// Deleting a missing key succeeds, as in S3.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError>;
    /// One bucket as an `object_store` store (paths are object keys), for
    /// readers that speak `object_store`. Write through [`ObjectStore::put_object`]:
    /// only it keeps the local backend's durability and metadata rules.
    fn bucket_store(&self, bucket: &str) -> Result<Arc<dyn object_store::ObjectStore>, StoreError>;
}
