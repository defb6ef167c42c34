//! `opentrail-bench ingest`: POST /events throughput and ack latency on the reference
//! dataset, and `opentrail-bench import`: the wall time of `opentrail import` on it.

use crate::server::BenchServer;
use anyhow::{bail, Context};
use bytes::Bytes;
use opentrail_sigv4::{sign, PayloadHash, SigningParams};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Directory of CloudTrail .json.gz files (gen_cloudtrail.py output).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// Largest request body.
    #[arg(long, default_value_t = 1024 * 1024)]
    batch_bytes: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
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

/// Request bodies of at most `limit` bytes with their record counts.
fn build_bodies(input: &Path, limit: usize) -> anyhow::Result<Vec<(Bytes, usize)>> {
    let mut files = Vec::new();
    log_files(input, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("no .json.gz files under {}", input.display());
    }
    let mut bodies = Vec::new();
    for file in files {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&file)?)
            .read_to_end(&mut text)
            .with_context(|| format!("failed to read {}", file.display()))?;
        let parsed: LogFile<'_> = serde_json::from_slice(&text)?;
        let (mut body, mut count) = (Vec::with_capacity(limit), 0);
        for record in parsed.records {
            let json = record.get().as_bytes();
            if count > 0 && body.len() + json.len() + 3 > limit {
                body.extend_from_slice(b"]}");
                bodies.push((Bytes::from(std::mem::take(&mut body)), count));
                count = 0;
            }
            body.extend_from_slice(if count == 0 { b"{\"Records\":[" } else { b"," });
            body.extend_from_slice(json);
            count += 1;
        }
        if count > 0 {
            body.extend_from_slice(b"]}");
            bodies.push((Bytes::from(body), count));
        }
    }
    Ok(bodies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn run_ingest(args: IngestArgs) -> anyhow::Result<()> {
    eprintln!("reading {}", args.input.display());
    let bodies = build_bodies(&args.input, args.batch_bytes)?;
    let events: usize = bodies.iter().map(|(_, n)| n).sum();
    let bytes: usize = bodies.iter().map(|(b, _)| b.len()).sum();
    let server = BenchServer::start(&args.opentrail_bin)?;
    let url = format!("{}/events", server.endpoint());
    let uri: http::Uri = url.parse()?;
    // Sign every request up front so the client's hashing does not compete with the server
    // for the two cores while the clock runs; the server still verifies every payload hash.
    let mut requests = Vec::with_capacity(bodies.len());
    for (body, count) in bodies {
        let params = SigningParams {
            access_key_id: &server.access_key_id,
            secret_access_key: &server.secret_access_key,
            region: "us-east-1",
            service: "opentrail",
            time: chrono::Utc::now(),
            session_token: None,
            uri_double_encode: true,
            payload: PayloadHash::Body(&body),
            set_content_sha256_header: false,
        };
        let headers = sign(&http::Method::POST, &uri, &http::HeaderMap::new(), &params)
            .map_err(|e| anyhow::anyhow!("signing failed: {}", e.message()))?;
        requests.push((body, count, headers));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let queue = Arc::new(std::sync::Mutex::new(requests));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (queue, client, url) = (Arc::clone(&queue), client.clone(), url.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow::anyhow!("queue poisoned"))?
                    .pop();
                let Some((body, count, headers)) = next else {
                    break;
                };
                let mut request = client.post(&url).body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let sent = Instant::now();
                let response = request.send().await?;
                let status = response.status();
                let answer: serde_json::Value = response.json().await?;
                if !status.is_success() {
                    bail!("ingest failed with HTTP {status}: {answer}");
                }
                let ok = answer["successful"].as_array().map_or(0, Vec::len);
                if ok != count {
                    bail!(
                        "{} of {count} records rejected: {}",
                        count - ok,
                        answer["failed"]
                    );
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(worker) = workers.join_next().await {
        latencies.extend(worker??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    server.stop()?;
    let rate = events as f64 / elapsed.as_secs_f64();
    let mb_s = bytes as f64 / 1e6 / elapsed.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p99, max) = (
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "events": events, "requests": latencies.len(), "seconds": elapsed.as_secs_f64(),
                "events_per_second": rate, "mb_per_second": mb_s, "ack_ms": { "p50": p50, "p99": p99, "max": max } })
        );
    } else {
        println!(
            "ingest: {events} events in {} requests, {:.2}s: {rate:.0} events/s, {mb_s:.0} MB/s; ack latency p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
            latencies.len(),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

pub async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    let server = BenchServer::start(&args.opentrail_bin)?;
    let started = Instant::now();
    let status = tokio::process::Command::new(&args.opentrail_bin)
        .arg("import")
        .arg("--quiet")
        .arg("--endpoint")
        .arg(server.endpoint())
        .arg("--data-dir")
        .arg(server.data_dir())
        .arg(&args.input)
        .status()
        .await?;
    let elapsed = started.elapsed();
    server.stop()?;
    if !status.success() {
        bail!("opentrail import failed: {status}");
    }
    println!(
        "import of {}: {:.2}s",
        args.input.display(),
        elapsed.as_secs_f64()
    );
    Ok(())
}
