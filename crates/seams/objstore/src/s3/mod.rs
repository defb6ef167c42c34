//! [`ObjectStore`] on any S3-compatible server (AWS S3, MinIO, Ceph RGW,
//! Garage, moto): objects through `object_store::aws::AmazonS3`, bucket
//! administration through a small signed request helper.

mod buckets;
mod objects;
mod xml;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use object_store::path::Path;
use object_store::{ObjectStore as _, ObjectStoreExt as _, PutOptions, PutPayload};

use crate::object_key::{invalid_key, validate_object_key};
use crate::{metadata, validate_bucket_name, Object, ObjectInfo, ObjectStore, StoreError};
use buckets::{error_from_response, BucketAdmin, Failure, Target};
use objects::{attributes, store_error, user_metadata, BucketClients};

/// Where and how to reach the S3-compatible server.
#[derive(Clone)]
pub struct S3Config {
    /// `http(s)://host[:port][/base-path]`.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// The signing region; buckets are created with it as location constraint
    /// unless it is `us-east-1`.
    pub region: String,
    /// `endpoint/bucket/key` instead of `bucket.endpoint/key`.
    pub path_style: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &"** redacted **")
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .finish()
    }
}

pub struct S3Store {
    admin: BucketAdmin,
    objects: BucketClients,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").finish_non_exhaustive()
    }
}

fn check_bucket_name(bucket: &str) -> Result<(), StoreError> {
    validate_bucket_name(bucket).map_err(|why| StoreError::invalid_bucket_name(bucket, &why))
}

impl S3Store {
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

    pub fn new(config: S3Config) -> Result<S3Store, StoreError> {
        S3Store::with_timeouts(
            config,
            S3Store::DEFAULT_CONNECT_TIMEOUT,
            S3Store::DEFAULT_REQUEST_TIMEOUT,
        )
    }

    /// A request that takes longer than `request_timeout` in total fails with
    /// [`StoreError::Unavailable`].
    pub fn with_timeouts(
        config: S3Config,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<S3Store, StoreError> {
        Ok(S3Store {
            admin: BucketAdmin::new(config.clone(), connect_timeout, request_timeout)?,
            objects: BucketClients::new(config, connect_timeout, request_timeout),
        })
    }

    /// A 404 from an object request means a missing key or a missing bucket;
    /// only asking for the bucket tells which.
    async fn missing_key_or_bucket<T>(
        &self,
        bucket: &str,
        missing_key: T,
    ) -> Result<T, StoreError> {
        match self.bucket_exists(bucket).await? {
            true => Ok(missing_key),
            false => Err(StoreError::NoSuchBucket(bucket.to_owned())),
        }
    }

    async fn send_admin(
        &self,
        method: Method,
        target: &Target<'_>,
        query: &[(&str, &str)],
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Bytes, StoreError> {
        let response = self
            .admin
            .send(method, target, query, headers, body)
            .await?;
        if !response.status().is_success() {
            return Err(error_from_response(target, response).await);
        }
        response
            .bytes()
            .await
            .map_err(|e| buckets::transport_error(target, &e))
    }
}

fn create_bucket_configuration(region: &str) -> Bytes {
    Bytes::from(format!(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
    ))
}

/// `object_store` lists whole path segments; our prefixes are plain string
/// prefixes, so list below the prefix's last `/` and filter.
fn listing_dir(prefix: &str) -> Option<&str> {
    prefix
        .rfind('/')
        .map(|slash| &prefix[..slash])
        .filter(|dir| !dir.is_empty())
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn bucket_exists(&self, bucket: &str) -> Result<bool, StoreError> {
        check_bucket_name(bucket)?;
        let target = Target {
            operation: "HeadBucket",
            bucket: Some(bucket),
        };
        let response = self
            .admin
            .send(Method::HEAD, &target, &[], HeaderMap::new(), Bytes::new())
            .await?;
        // A HEAD response has no body, so only the status tells.
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(Failure {
                status,
                code: String::new(),
                message: String::new(),
            }
            .into_error(&target)),
        }
    }

    async fn create_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        check_bucket_name(bucket)?;
        // In us-east-1 S3 answers 200 to re-creating one's own bucket; asking
        // first gives every backend the same BucketAlreadyExists.
        if self.bucket_exists(bucket).await? {
            return Err(StoreError::BucketAlreadyExists(bucket.to_owned()));
        }
        let target = Target {
            operation: "CreateBucket",
            bucket: Some(bucket),
        };
        let region = self.admin.region();
        let (headers, body) = if region == "us-east-1" {
            (HeaderMap::new(), Bytes::new())
        } else {
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            (headers, create_bucket_configuration(region))
        };
        self.send_admin(Method::PUT, &target, &[], headers, body)
            .await
            .map(drop)
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        check_bucket_name(bucket)?;
        let target = Target {
            operation: "DeleteBucket",
            bucket: Some(bucket),
        };
        self.send_admin(Method::DELETE, &target, &[], HeaderMap::new(), Bytes::new())
            .await
            .map(drop)
    }

    async fn list_buckets(&self) -> Result<Vec<String>, StoreError> {
        let target = Target {
            operation: "ListBuckets",
            bucket: None,
        };
        let mut buckets = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let query: Vec<(&str, &str)> = continuation
                .as_deref()
                .map(|token| vec![("continuation-token", token)])
                .unwrap_or_default();
            let body = self
                .send_admin(Method::GET, &target, &query, HeaderMap::new(), Bytes::new())
                .await?;
            let (names, next) = xml::parse_list_buckets(&String::from_utf8_lossy(&body))
                .map_err(|e| StoreError::Other(format!("{target}: unreadable response: {e}")))?;
            buckets.extend(names);
            if next.is_none() || next == continuation {
                break;
            }
            continuation = next;
        }
        buckets.sort();
        buckets.dedup();
        Ok(buckets)
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        metadata: &[(String, String)],
    ) -> Result<(), StoreError> {
        check_bucket_name(bucket)?;
        validate_object_key(key).map_err(|why| invalid_key(key, &why))?;
        let path = Path::parse(key).map_err(|e| invalid_key(key, &e.to_string()))?;
        let options = PutOptions {
            attributes: attributes(metadata::normalize(metadata)?),
            ..PutOptions::default()
        };
        let result = self
            .objects
            .bucket(bucket)?
            .put_opts(&path, PutPayload::from_bytes(body), options)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::NoSuchBucket(bucket.to_owned()))
            }
            Err(e) => Err(store_error("PutObject", bucket, e)),
        }
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, StoreError> {
        check_bucket_name(bucket)?;
        let path = match validate_object_key(key).map(|()| Path::parse(key)) {
            Ok(Ok(path)) => path,
            // No store accepts such a key, but the bucket must still exist.
            _ => return self.missing_key_or_bucket(bucket, None).await,
        };
        let result = match self.objects.bucket(bucket)?.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return self.missing_key_or_bucket(bucket, None).await
            }
            Err(e) => return Err(store_error("GetObject", bucket, e)),
        };
        let metadata = user_metadata(&result.attributes);
        let body = result
            .bytes()
            .await
            .map_err(|e| store_error("GetObject", bucket, e))?;
        Ok(Some(Object { body, metadata }))
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>, StoreError> {
        check_bucket_name(bucket)?;
        let dir = match listing_dir(prefix).map(Path::parse) {
            None => None,
            Some(Ok(dir)) => Some(dir),
            // No stored key lies below a prefix that is not a path.
            Some(Err(_)) => return self.missing_key_or_bucket(bucket, Vec::new()).await,
        };
        let listed: Result<Vec<_>, _> = self
            .objects
            .bucket(bucket)?
            .list(dir.as_ref())
            .try_collect()
            .await;
        let listed = match listed {
            Ok(listed) => listed,
            // `object_store` reports a listing's 404 (NoSuchBucket) as a
            // generic error, so ask for the bucket before blaming anything else.
            Err(e) => {
                return Err(match self.bucket_exists(bucket).await? {
                    false => StoreError::NoSuchBucket(bucket.to_owned()),
                    true => store_error("ListObjectsV2", bucket, e),
                })
            }
        };
        let mut objects: Vec<ObjectInfo> = listed
            .into_iter()
            .filter(|meta| meta.location.as_ref().starts_with(prefix))
            .map(|meta| ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
                last_modified: meta.last_modified,
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    fn bucket_store(&self, bucket: &str) -> Result<Arc<dyn object_store::ObjectStore>, StoreError> {
        check_bucket_name(bucket)?;
        Ok(self.objects.bucket(bucket)?)
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        check_bucket_name(bucket)?;
        let path = match validate_object_key(key).map(|()| Path::parse(key)) {
            Ok(Ok(path)) => path,
            _ => return self.missing_key_or_bucket(bucket, ()).await,
        };
        match self.objects.bucket(bucket)?.delete(&path).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => {
                self.missing_key_or_bucket(bucket, ()).await
            }
            Err(e) => Err(store_error("DeleteObject", bucket, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_below_the_last_slash() {
        assert_eq!(listing_dir(""), None);
        assert_eq!(listing_dir("AWSLogs"), None);
        assert_eq!(listing_dir("AWSLogs/1/"), Some("AWSLogs/1"));
        assert_eq!(listing_dir("AWSLogs/1/Cloud"), Some("AWSLogs/1"));
    }
}
