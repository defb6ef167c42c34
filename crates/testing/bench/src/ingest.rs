//! `opentrail-bench ingest`: POST /events throughput and ack latency on the reference
//! dataset, and `opentrail-bench import`: the wall time of `opentrail import` on it.

use crate::events::{build_bodies, copy_record, percentile, send_all, Ack, EventsClient};
use crate::server::{BenchServer, ServeOptions};
use anyhow::bail;
use std::path::PathBuf;
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
    /// The server's event history retention: the reference data set is from 2024, so
    /// with AWS's 90 days event history would drop every event instead of indexing it.
    #[arg(long, default_value_t = 36_500)]
    history_retention_days: u32,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// See `ingest --history-retention-days`.
    #[arg(long, default_value_t = 36_500)]
    history_retention_days: u32,
}

/// A server whose event history keeps (and so indexes) events `retention_days` old.
fn start_server(bin: &std::path::Path, retention_days: u32) -> anyhow::Result<BenchServer> {
    BenchServer::start_with(
        bin,
        &ServeOptions {
            serve_args: vec![
                "--history-retention-days".to_owned(),
                retention_days.to_string(),
            ],
            ..ServeOptions::default()
        },
    )
}

pub async fn run_ingest(args: IngestArgs) -> anyhow::Result<()> {
    eprintln!("reading {}", args.input.display());
    let bodies = build_bodies(&args.input, args.batch_bytes, &mut copy_record)?;
    let events: usize = bodies.iter().map(|b| b.records).sum();
    let bytes: usize = bodies.iter().map(|b| b.bytes.len()).sum();
    let server = start_server(&args.opentrail_bin, args.history_retention_days)?;
    let client = EventsClient::new(&server, args.concurrency)?;
    // Sign every request up front so the client's hashing does not compete with the server
    // for the two cores while the clock runs; the server still verifies every payload hash.
    let requests = bodies
        .into_iter()
        .map(|body| client.sign(body))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    let acks = send_all(&client, requests, args.concurrency).await?;
    let elapsed = started.elapsed();
    // How far event history got while ingest ran, and when it had everything.
    let (log_end, applied_during) = history_progress(&server.endpoint()).await?;
    let searchable = wait_until_indexed(&server.endpoint()).await;
    let mut latencies: Vec<Duration> = acks.iter().map(Ack::latency).collect();
    latencies.sort();
    server.stop()?;
    let searchable = (searchable? - started).as_secs_f64();
    let indexing_rate = applied_during as f64 / elapsed.as_secs_f64();
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
                "events_per_second": rate, "mb_per_second": mb_s, "ack_ms": { "p50": p50, "p99": p99, "max": max },
                "history": { "log_records": log_end, "indexed_during_ingest": applied_during,
                    "indexed_per_second_during_ingest": indexing_rate, "all_searchable_after_seconds": searchable } })
        );
    } else {
        println!(
            "ingest: {events} events in {} requests, {:.2}s: {rate:.0} events/s, {mb_s:.0} MB/s; ack latency p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
            latencies.len(),
            elapsed.as_secs_f64()
        );
        println!(
            "event history: {applied_during} of {log_end} log records indexed while ingest ran ({indexing_rate:.0} records/s); all searchable after {searchable:.2}s"
        );
    }
    Ok(())
}

pub async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    let server = start_server(&args.opentrail_bin, args.history_retention_days)?;
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
    if !status.success() {
        server.stop()?;
        bail!("opentrail import failed: {status}");
    }
    let searchable = wait_until_indexed(&server.endpoint()).await;
    let peak_rss = server.peak_rss_bytes();
    server.stop()?;
    let searchable = searchable?;
    println!(
        "import of {}: {:.2}s; every imported event searchable in LookupEvents after {:.2}s; server peak RSS {}",
        args.input.display(),
        elapsed.as_secs_f64(),
        (searchable - started).as_secs_f64(),
        peak_rss.map_or("unknown".to_owned(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64)),
    );
    Ok(())
}

/// The durable end of the event log and event history's applied offset, from `/metrics`.
async fn history_progress(endpoint: &str) -> anyhow::Result<(u64, u64)> {
    let text = reqwest::get(format!("{endpoint}/metrics"))
        .await?
        .text()
        .await?;
    let gauge = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    match (
        gauge("opentrail_event_log_durable_end_offset "),
        gauge("opentrail_history_applied_offset "),
    ) {
        (Some(end), Some(applied)) => Ok((end, applied)),
        _ => bail!("the server's /metrics has no history progress gauges"),
    }
}

/// Polls `/metrics` until event history has indexed the whole durable log; returns when.
async fn wait_until_indexed(endpoint: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (end, applied) = history_progress(endpoint).await?;
        if applied >= end {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("event history did not catch up in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
