//! [`ObjectStore`] on any S3-compatible server (AWS S3, MinIO, Ceph RGW,
//! Garage, moto), over plain HTTP(S) with our own SigV4 signer.

mod client;
mod xml;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::object_key::{invalid_key, validate_object_key};
use crate::{metadata, validate_bucket_name, Object, ObjectInfo, ObjectStore, StoreError};
use client::{error_from_response, read_failure, transport_error, Failure, S3Client, Target};

const USER_METADATA_PREFIX: &str = "x-amz-meta-";

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
    client: S3Client,
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
            client: S3Client::new(config, connect_timeout, request_timeout)?,
        })
    }

    async fn expect_success(
        target: &Target<'_>,
        response: reqwest::Response,
    ) -> Result<Bytes, StoreError> {
        if !response.status().is_success() {
            return Err(error_from_response(target, response).await);
        }
        response
            .bytes()
            .await
            .map_err(|e| transport_error(target, &e))
    }

    async fn list_objects_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
    ) -> Result<xml::ObjectsPage, StoreError> {
        let target = Target {
            operation: "ListObjectsV2",
            bucket: Some(bucket),
            key: None,
        };
        let mut query = vec![("list-type", "2"), ("prefix", prefix)];
        if let Some(token) = continuation {
            query.push(("continuation-token", token));
        }
        let response = self
            .client
            .send(Method::GET, &target, &query, HeaderMap::new(), Bytes::new())
            .await?;
        let body = S3Store::expect_success(&target, response).await?;
        xml::parse_list_objects_v2(&String::from_utf8_lossy(&body))
            .map_err(|e| StoreError::Other(format!("{target}: unreadable response: {e}")))
    }
}

fn create_bucket_configuration(region: &str) -> Bytes {
    Bytes::from(format!(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
    ))
}

fn user_metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut metadata: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix(USER_METADATA_PREFIX)?;
            Some((
                name.to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect();
    metadata.sort();
    metadata
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn bucket_exists(&self, bucket: &str) -> Result<bool, StoreError> {
        check_bucket_name(bucket)?;
        let target = Target {
            operation: "HeadBucket",
            bucket: Some(bucket),
            key: None,
        };
        let response = self
            .client
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
            key: None,
        };
        let region = self.client.region();
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
        let response = self
            .client
            .send(Method::PUT, &target, &[], headers, body)
            .await?;
        S3Store::expect_success(&target, response).await.map(drop)
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        check_bucket_name(bucket)?;
        let target = Target {
            operation: "DeleteBucket",
            bucket: Some(bucket),
            key: None,
        };
        let response = self
            .client
            .send(Method::DELETE, &target, &[], HeaderMap::new(), Bytes::new())
            .await?;
        S3Store::expect_success(&target, response).await.map(drop)
    }

    async fn list_buckets(&self) -> Result<Vec<String>, StoreError> {
        let target = Target {
            operation: "ListBuckets",
            bucket: None,
            key: None,
        };
        let mut buckets = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let query: Vec<(&str, &str)> = continuation
                .as_deref()
                .map(|token| vec![("continuation-token", token)])
                .unwrap_or_default();
            let response = self
                .client
                .send(Method::GET, &target, &query, HeaderMap::new(), Bytes::new())
                .await?;
            let body = S3Store::expect_success(&target, response).await?;
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
        let mut headers = HeaderMap::new();
        for (name, value) in metadata::normalize(metadata)? {
            let name =
                HeaderName::from_bytes(format!("{USER_METADATA_PREFIX}{name}").as_bytes())
                    .map_err(|e| StoreError::Other(format!("invalid metadata name {name}: {e}")))?;
            let value = HeaderValue::from_str(&value).map_err(|e| {
                StoreError::Other(format!("invalid value for metadata {name}: {e}"))
            })?;
            headers.insert(name, value);
        }
        let target = Target {
            operation: "PutObject",
            bucket: Some(bucket),
            key: Some(key),
        };
        let response = self
            .client
            .send(Method::PUT, &target, &[], headers, body)
            .await?;
        S3Store::expect_success(&target, response).await.map(drop)
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, StoreError> {
        check_bucket_name(bucket)?;
        let target = Target {
            operation: "GetObject",
            bucket: Some(bucket),
            key: Some(key),
        };
        if validate_object_key(key).is_err() {
            // No store accepts such a key, but the bucket must still exist.
            return match self.bucket_exists(bucket).await? {
                true => Ok(None),
                false => Err(StoreError::NoSuchBucket(bucket.to_owned())),
            };
        }
        let response = self
            .client
            .send(Method::GET, &target, &[], HeaderMap::new(), Bytes::new())
            .await?;
        if !response.status().is_success() {
            let failure = read_failure(&target, response).await?;
            if failure.code == "NoSuchKey" {
                return Ok(None);
            }
            return Err(failure.into_error(&target));
        }
        let metadata = user_metadata(response.headers());
        let body = S3Store::expect_success(&target, response).await?;
        Ok(Some(Object { body, metadata }))
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>, StoreError> {
        check_bucket_name(bucket)?;
        let mut objects = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let page = self
                .list_objects_page(bucket, prefix, continuation.as_deref())
                .await?;
            objects.extend(page.objects);
            if !page.is_truncated {
                break;
            }
            let Some(next) = page.next_continuation_token else {
                return Err(StoreError::Other(format!(
                    "ListObjectsV2 {bucket}: truncated page without a continuation token"
                )));
            };
            continuation = Some(next);
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        check_bucket_name(bucket)?;
        if validate_object_key(key).is_err() {
            return match self.bucket_exists(bucket).await? {
                true => Ok(()),
                false => Err(StoreError::NoSuchBucket(bucket.to_owned())),
            };
        }
        let target = Target {
            operation: "DeleteObject",
            bucket: Some(bucket),
            key: Some(key),
        };
        let response = self
            .client
            .send(Method::DELETE, &target, &[], HeaderMap::new(), Bytes::new())
            .await?;
        if !response.status().is_success() {
            let failure = read_failure(&target, response).await?;
            if failure.code == "NoSuchKey" {
                return Ok(());
            }
            return Err(failure.into_error(&target));
        }
        Ok(())
    }
}
