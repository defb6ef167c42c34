//! The client side of `POST /events`: request bodies built from a directory of CloudTrail
//! log files, signed with the bench key, and sent with a fixed number of requests in flight.

use crate::server::BenchServer;
use anyhow::{bail, Context};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use opentrail_sigv4::{sign, PayloadHash, SigningParams};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One `{"Records":[...]}` request body.
#[derive(Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub records: usize,
}

/// A body with its SigV4 headers, ready to send.
pub struct SignedRequest {
    body: Body,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// When one request went out and when its answer (after fsync) came back.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub sent: Instant,
    pub acked: Instant,
}

impl Ack {
    pub fn latency(&self) -> Duration {
        self.acked - self.sent
    }
}

#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

fn log_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            log_files(&path, out)?;
        } else if path.to_string_lossy().ends_with(".json.gz") {
            out.push(path);
        }
    }
    Ok(())
}

/// Copies a record into a body unchanged.
pub fn copy_record(record: &[u8], body: &mut Vec<u8>) {
    body.extend_from_slice(record);
}

/// Request bodies of at most `limit` bytes holding every record of the `.json.gz` files
/// under `input`, each written into its body by `write_record`.
pub fn build_bodies(
    input: &Path,
    limit: usize,
    write_record: &mut dyn FnMut(&[u8], &mut Vec<u8>),
) -> anyhow::Result<Vec<Body>> {
    let mut files = Vec::new();
    log_files(input, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("no .json.gz files under {}", input.display());
    }
    let mut bodies = Vec::new();
    let mut finish = |mut body: Vec<u8>, records: usize| {
        body.extend_from_slice(b"]}");
        bodies.push(Body {
            bytes: Bytes::from(body),
            records,
        });
    };
    for file in files {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&file)?)
            .read_to_end(&mut text)
            .with_context(|| format!("failed to read {}", file.display()))?;
        let parsed: LogFile<'_> = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a CloudTrail log file", file.display()))?;
        let (mut body, mut count) = (Vec::with_capacity(limit), 0);
        for record in parsed.records {
            let json = record.get().as_bytes();
            if count > 0 && body.len() + json.len() + 3 > limit {
                finish(
                    std::mem::replace(&mut body, Vec::with_capacity(limit)),
                    count,
                );
                count = 0;
            }
            body.extend_from_slice(if count == 0 { b"{\"Records\":[" } else { b"," });
            write_record(json, &mut body);
            count += 1;
        }
        if count > 0 {
            finish(body, count);
        }
    }
    Ok(bodies)
}

/// Signs and sends `POST /events` requests to one server.
pub struct EventsClient {
    url: String,
    uri: http::Uri,
    access_key_id: String,
    secret_access_key: String,
    http: reqwest::Client,
}

impl EventsClient {
    pub fn new(server: &BenchServer, connections: usize) -> anyhow::Result<Arc<Self>> {
        let url = format!("{}/events", server.endpoint());
        Ok(Arc::new(Self {
            uri: url.parse()?,
            url,
            access_key_id: server.access_key_id.clone(),
            secret_access_key: server.secret_access_key.clone(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(connections)
                .build()?,
        }))
    }

    pub fn sign(&self, body: Body) -> anyhow::Result<SignedRequest> {
        let params = SigningParams {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            region: "us-east-1",
            service: "opentrail",
            time: chrono::Utc::now(),
            session_token: None,
            uri_double_encode: true,
            payload: PayloadHash::Body(&body.bytes),
            set_content_sha256_header: false,
        };
        let headers = sign(
            &http::Method::POST,
            &self.uri,
            &http::HeaderMap::new(),
            &params,
        )
        .map_err(|e| anyhow::anyhow!("signing failed: {}", e.message()))?;
        Ok(SignedRequest { body, headers })
    }

    /// Sends one request and checks that the server accepted every record.
    pub async fn send(&self, request: SignedRequest) -> anyhow::Result<Ack> {
        let records = request.body.records;
        let mut builder = self.http.post(&self.url).body(request.body.bytes);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let sent = Instant::now();
        let response = builder.send().await?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await?;
        let acked = Instant::now();
        if !status.is_success() {
            bail!("ingest failed with HTTP {status}: {answer}");
        }
        let ok = answer["successful"].as_array().map_or(0, Vec::len);
        if ok != records {
            bail!(
                "{} of {records} records rejected: {}",
                records - ok,
                answer["failed"]
            );
        }
        Ok(Ack { sent, acked })
    }
}

/// Sends every request with `concurrency` in flight; the acks in completion order.
pub async fn send_all(
    client: &Arc<EventsClient>,
    requests: Vec<SignedRequest>,
    concurrency: usize,
) -> anyhow::Result<Vec<Ack>> {
    send_paced(client, requests, concurrency, None).await
}

/// [`send_all`], at most `rate` events per second when given: each request goes out when
/// the records before it are due (its place in the schedule from the start), or later if
/// every connection is still waiting for an answer.
pub async fn send_paced(
    client: &Arc<EventsClient>,
    requests: Vec<SignedRequest>,
    concurrency: usize,
    rate: Option<f64>,
) -> anyhow::Result<Vec<Ack>> {
    let started = tokio::time::Instant::now();
    let mut due_records = 0usize;
    let scheduled: VecDeque<(Duration, SignedRequest)> = requests
        .into_iter()
        .map(|request| {
            let due = rate.map_or(Duration::ZERO, |rate| {
                Duration::from_secs_f64(due_records as f64 / rate)
            });
            due_records += request.body.records;
            (due, request)
        })
        .collect();
    let queue = Arc::new(Mutex::new(scheduled));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (queue, client) = (Arc::clone(&queue), Arc::clone(client));
        workers.spawn(async move {
            let mut acks = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow::anyhow!("queue poisoned"))?
                    .pop_front();
                let Some((due, request)) = next else {
                    break;
                };
                tokio::time::sleep_until(started + due).await;
                acks.push(client.send(request).await?);
            }
            Ok::<_, anyhow::Error>(acks)
        });
    }
    let mut acks = Vec::new();
    while let Some(worker) = workers.join_next().await {
        acks.extend(worker??);
    }
    Ok(acks)
}

/// Nearest rank: the smallest sample with at least p% of samples at or below it.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    debug_assert!(!sorted.is_empty());
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 1-minute load average, to note how busy the shared machine was.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}
