//! Object I/O on an S3-compatible server through `object_store::aws::AmazonS3`
//! (one client per bucket, built on first use): user metadata travels as
//! `Attribute::Metadata` (`x-amz-meta-<name>`), and `object_store` errors
//! become [`StoreError`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::HttpError;
use object_store::{Attribute, AttributeValue, Attributes, ClientOptions, RetryConfig};

use super::S3Config;
use crate::StoreError;

/// Retries of one request inside `object_store`; the delivery worker retries
/// whole files with its own backoff, so a few quick ones are enough here.
const MAX_RETRIES: usize = 2;

pub(crate) struct BucketClients {
    config: S3Config,
    connect_timeout: Duration,
    request_timeout: Duration,
    clients: Mutex<HashMap<String, Arc<AmazonS3>>>,
}

impl BucketClients {
    pub(crate) fn new(
        config: S3Config,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> BucketClients {
        BucketClients {
            config,
            connect_timeout,
            request_timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The `object_store` client of one bucket (the bucket name is valid).
    pub(crate) fn bucket(&self, bucket: &str) -> Result<Arc<AmazonS3>, StoreError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(bucket) {
            return Ok(client.clone());
        }
        let client = Arc::new(self.build(bucket)?);
        clients.insert(bucket.to_owned(), client.clone());
        Ok(client)
    }

    fn build(&self, bucket: &str) -> Result<AmazonS3, StoreError> {
        let config = &self.config;
        let endpoint = bucket_endpoint(&config.endpoint, bucket, config.path_style)?;
        let options = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout);
        let retry = RetryConfig {
            max_retries: MAX_RETRIES,
            retry_timeout: self.request_timeout,
            ..RetryConfig::default()
        };
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key)
            .with_secret_access_key(&config.secret_key)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| {
                StoreError::Other(format!(
                    "failed to configure S3 bucket {bucket} on {}: {e}",
                    config.endpoint
                ))
            })
    }
}

/// Path style: the endpoint itself (`object_store` appends `/bucket`).
/// Virtual-host style: `object_store` wants the bucket already in the host.
fn bucket_endpoint(endpoint: &str, bucket: &str, path_style: bool) -> Result<String, StoreError> {
    let trimmed = endpoint.trim_end_matches('/').to_owned();
    if path_style {
        return Ok(trimmed);
    }
    let mut url = reqwest::Url::parse(&trimmed)
        .map_err(|e| StoreError::Other(format!("invalid S3 endpoint {endpoint}: {e}")))?;
    let host = url.host_str().unwrap_or_default().to_owned();
    url.set_host(Some(&format!("{bucket}.{host}")))
        .map_err(|e| StoreError::Other(format!("cannot address bucket {bucket} on {host}: {e}")))?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// User metadata (normalised names, without the prefix) as attributes.
pub(crate) fn attributes(metadata: Vec<(String, String)>) -> Attributes {
    metadata
        .into_iter()
        .map(|(name, value)| {
            (
                Attribute::Metadata(name.into()),
                AttributeValue::from(value),
            )
        })
        .collect()
}

/// The user metadata among an object's attributes, lower-case and sorted.
pub(crate) fn user_metadata(attributes: &Attributes) -> Vec<(String, String)> {
    let mut metadata: Vec<(String, String)> = attributes
        .iter()
        .filter_map(|(attribute, value)| match attribute {
            Attribute::Metadata(name) => {
                Some((name.to_ascii_lowercase(), value.as_ref().to_owned()))
            }
            _ => None,
        })
        .collect();
    metadata.sort();
    metadata
}

/// What a failed `object_store` call means for us. `NotFound` is handled by
/// each caller (a missing key and a missing bucket both answer 404).
pub(crate) fn store_error(operation: &str, bucket: &str, err: object_store::Error) -> StoreError {
    let detail = format!("{operation} {bucket} failed: {err}");
    match err {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StoreError::AccessDenied(detail),
        object_store::Error::Generic { source, .. } if is_unavailable(source.as_ref()) => {
            StoreError::Unavailable(detail)
        }
        _ => StoreError::Other(detail),
    }
}

/// Transport failures (refused, reset, timed out) and HTTP 5xx answers are
/// worth retrying later. `object_store` keeps the status in a private type,
/// so a status is read from its message ("... status code: 503 ...").
fn is_unavailable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        current = err.source();
    }
    let message = err.to_string();
    message
        .split_once("status code: ")
        .is_some_and(|(_, rest)| rest.starts_with('5'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_per_addressing_style() {
        assert_eq!(
            bucket_endpoint("http://127.0.0.1:9000/", "logs", true).unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            bucket_endpoint("https://s3.example.com", "logs", false).unwrap(),
            "https://logs.s3.example.com"
        );
    }

    #[test]
    fn metadata_round_trips_through_attributes() {
        let metadata = vec![
            ("signature".to_owned(), "ab".to_owned()),
            ("signature-algorithm".to_owned(), "SHA256withRSA".to_owned()),
        ];
        assert_eq!(user_metadata(&attributes(metadata.clone())), metadata);
    }
}
