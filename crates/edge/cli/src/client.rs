//! A small signed client of OpenTrail's own API, for the CLI commands that talk to a
//! running server (`import`, `events lookup`, `events export`).

use crate::args::ClientArgs;
use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use opentrail_sigv4::{sign, PayloadHash, SigningParams};
use serde_json::Value;

const TARGET_PREFIX: &str = "CloudTrail_20131101.";

#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Clone)]
pub struct ApiClient {
    endpoint: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    http: reqwest::Client,
}

/// Reads `aws_access_key_id` / `aws_secret_access_key` of the `[default]` profile.
fn read_credentials_file(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read credentials file {}", path.display()))?;
    let mut in_default = false;
    let (mut key, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if !in_default {
            continue;
        }
        match name.trim() {
            "aws_access_key_id" => key = Some(value.trim().to_owned()),
            "aws_secret_access_key" => secret = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    match (key, secret) {
        (Some(k), Some(s)) => Ok((k, s)),
        _ => bail!(
            "credentials file {} has no [default] access key",
            path.display()
        ),
    }
}

impl ApiClient {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let (access_key_id, secret_access_key) =
            match (&args.access_key_id, &args.secret_access_key) {
                (Some(k), Some(s)) => (k.clone(), s.clone()),
                _ => read_credentials_file(&args.data_dir.join(crate::store::CREDENTIALS_FILE))?,
            };
        let mut http = reqwest::Client::builder().pool_max_idle_per_host(16);
        if let Some(path) = &args.ca_bundle {
            let pem = std::fs::read(path)
                .with_context(|| format!("failed to read CA bundle {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
            if certificates.is_empty() {
                bail!("{} holds no PEM certificate", path.display());
            }
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().context("failed to build HTTP client")?;
        Ok(Self {
            endpoint: args.endpoint.trim_end_matches('/').to_owned(),
            region: args.region.clone(),
            access_key_id,
            secret_access_key,
            http,
        })
    }

    async fn post(
        &self,
        path: &str,
        service: &str,
        mut headers: http::HeaderMap,
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        let url = format!("{}{path}", self.endpoint);
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("bad endpoint URL {url}"))?;
        let params = SigningParams {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region: &self.region,
            service,
            time: chrono::Utc::now(),
            session_token: None,
            uri_double_encode: true,
            payload: PayloadHash::Body(&body),
            set_content_sha256_header: false,
        };
        let signed = sign(&http::Method::POST, &uri, &headers, &params)
            .map_err(|e| anyhow!("failed to sign request: {}", e.message()))?;
        for (name, value) in signed {
            headers.insert(name, value);
        }
        let response = self
            .http
            .post(&url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .with_context(|| format!("failed to reach OpenTrail at {}", self.endpoint))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.context("failed to read response")?;
        Ok((status, body))
    }

    /// Calls a CloudTrail JSON 1.1 operation; AWS errors come back as `ApiError`.
    pub async fn call(&self, operation: &str, input: &Value) -> anyhow::Result<Value> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(
            "x-amz-target",
            http::HeaderValue::from_str(&format!("{TARGET_PREFIX}{operation}"))?,
        );
        let (status, body) = self
            .post("/", "cloudtrail", headers, Bytes::from(input.to_string()))
            .await?;
        json_answer(operation, status, &body)
    }

    /// Sends records to `POST /events`; returns the parsed `{successful, failed}` answer.
    pub async fn ingest(&self, body: Bytes) -> anyhow::Result<Value> {
        self.ingest_encoded(body, false).await
    }

    /// `POST /events` with a gzip body (`Content-Encoding: gzip`), e.g. a log file as is.
    pub async fn ingest_gzip(&self, body: Bytes) -> anyhow::Result<Value> {
        self.ingest_encoded(body, true).await
    }

    async fn ingest_encoded(&self, body: Bytes, gzip: bool) -> anyhow::Result<Value> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        if gzip {
            headers.insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static("gzip"),
            );
        }
        let (status, body) = self
            .post(
                "/events",
                opentrail_wire::ingest::INGEST_SERVICE,
                headers,
                body,
            )
            .await?;
        json_answer("ingest", status, &body)
    }
}

/// A JSON answer, or the AWS error (`{"__type","message"}`) it carries.
fn json_answer(operation: &str, status: u16, body: &[u8]) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_slice(body).with_context(|| {
        format!("{operation} returned HTTP {status} with a body that is not JSON")
    })?;
    if status != 200 {
        return Err(ApiError {
            code: value["__type"]
                .as_str()
                .unwrap_or("UnknownError")
                .to_owned(),
            message: value["message"].as_str().unwrap_or("").to_owned(),
        }
        .into());
    }
    Ok(value)
}

/// A time given on the command line: RFC 3339 or epoch seconds.
pub fn parse_time_arg(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    let seconds: f64 = text
        .parse()
        .map_err(|_| anyhow!("{text} is neither RFC 3339 nor epoch seconds"))?;
    chrono::DateTime::from_timestamp_millis((seconds * 1000.0) as i64).context("time out of range")
}
