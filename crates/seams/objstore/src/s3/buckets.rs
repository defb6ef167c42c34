//! Bucket administration (HeadBucket, CreateBucket, DeleteBucket,
//! ListBuckets), which the `object_store` crate does not do: one small signed
//! request helper (path or virtual-host style, SigV4 with
//! `x-amz-content-sha256`) that turns S3 error bodies into [`StoreError`].
//! Objects never go through here; they go through `object_store::aws`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use opentrail_sigv4::{encode_pairs, sha256_hex, sign, PayloadHash, SigningParams};

use super::xml;
use super::S3Config;
use crate::StoreError;

/// What a request is about, for addressing it and for error messages.
pub(crate) struct Target<'a> {
    /// The S3 operation name, e.g. `CreateBucket`.
    pub(crate) operation: &'static str,
    /// `None` for service-level requests (ListBuckets).
    pub(crate) bucket: Option<&'a str>,
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.operation)?;
        match self.bucket {
            Some(bucket) => write!(f, " {bucket}"),
            None => Ok(()),
        }
    }
}

pub(crate) struct BucketAdmin {
    config: S3Config,
    endpoint: reqwest::Url,
    http: reqwest::Client,
}

impl BucketAdmin {
    pub(crate) fn new(
        config: S3Config,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<BucketAdmin, StoreError> {
        let endpoint = reqwest::Url::parse(&config.endpoint).map_err(|e| {
            StoreError::Other(format!("invalid S3 endpoint {}: {e}", config.endpoint))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(StoreError::Other(format!(
                "invalid S3 endpoint {}: expected http(s)://host[:port]",
                config.endpoint
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StoreError::Other(format!("failed to build HTTP client: {e}")))?;
        Ok(BucketAdmin {
            config,
            endpoint,
            http,
        })
    }

    pub(crate) fn region(&self) -> &str {
        &self.config.region
    }

    /// The URL of the service or of a bucket.
    fn url(&self, target: &Target, query: &[(&str, &str)]) -> Result<reqwest::Url, StoreError> {
        let mut url = self.endpoint.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        let path = match (target.bucket, self.config.path_style) {
            (Some(bucket), true) => format!("{base_path}/{bucket}"),
            (Some(bucket), false) => {
                let host = url.host_str().unwrap_or_default().to_owned();
                url.set_host(Some(&format!("{bucket}.{host}")))
                    .map_err(|e| {
                        StoreError::Other(format!("cannot address bucket {bucket} on {host}: {e}"))
                    })?;
                format!("{base_path}/")
            }
            (None, _) => format!("{base_path}/"),
        };
        url.set_path(&path);
        let query = encode_pairs(query);
        url.set_query((!query.is_empty()).then_some(query.as_str()));
        Ok(url)
    }

    /// Signs and sends a request; any HTTP status comes back as a response.
    pub(crate) async fn send(
        &self,
        method: Method,
        target: &Target<'_>,
        query: &[(&str, &str)],
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, StoreError> {
        let url = self.url(target, query)?;
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|e| StoreError::Other(format!("{target}: invalid request URI: {e}")))?;
        let payload_hash = sha256_hex(&body);
        let params = SigningParams {
            access_key_id: &self.config.access_key,
            secret_access_key: &self.config.secret_key,
            region: &self.config.region,
            service: "s3",
            time: chrono::Utc::now(),
            session_token: None,
            uri_double_encode: false,
            payload: PayloadHash::Precomputed(&payload_hash),
            set_content_sha256_header: true,
        };
        let signed = sign(&method, &uri, &headers, &params)
            .map_err(|e| StoreError::Other(format!("{target}: failed to sign request: {e}")))?;
        for (name, value) in signed {
            headers.insert(name, value);
        }
        tracing::debug!(operation = target.operation, bucket = ?target.bucket, "sending S3 request");
        self.http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(target, &e))
    }
}

/// A failure to talk to the endpoint at all (refused, reset, timed out).
pub(crate) fn transport_error(target: &Target, err: &reqwest::Error) -> StoreError {
    if err.is_builder() {
        return StoreError::Other(format!("{target}: {err}"));
    }
    // reqwest's message names the URL, which never holds secrets (they
    // travel in headers); the source says what went wrong underneath.
    let detail = match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    };
    StoreError::Unavailable(format!("{target} to S3 endpoint failed: {detail}"))
}

/// A non-2xx response with its S3 error code and message (empty when the
/// body is not an S3 error document, e.g. for HEAD).
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
}

/// Reads the body of a failed response; fails only if the body cannot be read.
async fn read_failure(
    target: &Target<'_>,
    response: reqwest::Response,
) -> Result<Failure, StoreError> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(target, &e))?;
    let error = xml::parse_error(&String::from_utf8_lossy(&body));
    Ok(Failure {
        status,
        code: error.code,
        message: error.message,
    })
}

/// Reads the body of a failed response into the matching [`StoreError`].
pub(crate) async fn error_from_response(
    target: &Target<'_>,
    response: reqwest::Response,
) -> StoreError {
    match read_failure(target, response).await {
        Ok(failure) => failure.into_error(target),
        Err(error) => error,
    }
}

impl Failure {
    pub(crate) fn into_error(self, target: &Target) -> StoreError {
        let bucket = target.bucket.unwrap_or_default().to_owned();
        let detail = format!(
            "{target} failed: HTTP {} {} {}",
            self.status.as_u16(),
            self.code,
            self.message
        );
        match self.code.as_str() {
            "NoSuchBucket" => StoreError::NoSuchBucket(bucket),
            "BucketAlreadyExists" | "BucketAlreadyOwnedByYou" => {
                StoreError::BucketAlreadyExists(bucket)
            }
            "BucketNotEmpty" => StoreError::BucketNotEmpty(bucket),
            "InvalidBucketName" => {
                StoreError::InvalidBucketName(format!("{bucket}: {}", self.message))
            }
            _ if self.status == StatusCode::FORBIDDEN => StoreError::AccessDenied(detail),
            _ if self.status.is_server_error() => StoreError::Unavailable(detail),
            _ => StoreError::Other(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str, path_style: bool) -> BucketAdmin {
        let config = S3Config {
            endpoint: endpoint.to_owned(),
            access_key: "AKID".to_owned(),
            secret_key: "secret".to_owned(),
            region: "us-east-1".to_owned(),
            path_style,
        };
        BucketAdmin::new(config, Duration::from_secs(1), Duration::from_secs(1)).unwrap()
    }

    fn bucket(bucket: &str) -> Target<'_> {
        Target {
            operation: "HeadBucket",
            bucket: Some(bucket),
        }
    }

    #[test]
    fn path_style_urls() {
        let s3 = client("http://127.0.0.1:9000", true);
        let url = s3
            .url(&bucket("logs"), &[("continuation-token", "a b")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/logs?continuation-token=a%20b"
        );
        let service = Target {
            operation: "ListBuckets",
            bucket: None,
        };
        assert_eq!(
            s3.url(&service, &[]).unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
    }

    #[test]
    fn virtual_host_urls_keep_a_base_path() {
        let s3 = client("https://s3.example.com/base/", false);
        let url = s3.url(&bucket("logs"), &[]).unwrap();
        assert_eq!(url.as_str(), "https://logs.s3.example.com/base/");
    }

    #[test]
    fn rejects_bad_endpoints() {
        let config = S3Config {
            endpoint: "ftp://x".to_owned(),
            access_key: String::new(),
            secret_key: String::new(),
            region: "us-east-1".to_owned(),
            path_style: true,
        };
        assert!(BucketAdmin::new(config, Duration::from_secs(1), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn maps_s3_error_codes() {
        let target = Target {
            operation: "DeleteBucket",
            bucket: Some("logs"),
        };
        let map = |status: u16, code: &str| {
            Failure {
                status: StatusCode::from_u16(status).unwrap(),
                code: code.to_owned(),
                message: "msg".to_owned(),
            }
            .into_error(&target)
        };
        assert_eq!(
            map(404, "NoSuchBucket"),
            StoreError::NoSuchBucket("logs".into())
        );
        assert_eq!(
            map(409, "BucketNotEmpty"),
            StoreError::BucketNotEmpty("logs".into())
        );
        assert_eq!(
            map(409, "BucketAlreadyOwnedByYou"),
            StoreError::BucketAlreadyExists("logs".into())
        );
        assert!(matches!(
            map(403, "SignatureDoesNotMatch"),
            StoreError::AccessDenied(_)
        ));
        assert!(matches!(map(503, "SlowDown"), StoreError::Unavailable(_)));
        assert!(
            matches!(map(400, "InvalidArgument"), StoreError::Other(m) if m.contains("InvalidArgument msg"))
        );
    }
}
