//! `opentrail-bench log-retention`: ingests N events (cycling over the input dataset) into a
//! server with a short `--event-log-retention` and samples the event log's disk use over
//! time; with retention the log's size plateaus instead of growing with N.

use crate::events::{build_bodies, copy_record, Body, EventsClient};
use crate::server::{BenchServer, ServeOptions};
use anyhow::bail;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct LogRetentionArgs {
    /// Directory of CloudTrail .json.gz files (gen_cloudtrail.py output); sent over and over
    /// until `--events` are acknowledged (event history keeps each eventID once).
    #[arg(long)]
    input: PathBuf,
    /// Events to ingest.
    #[arg(long, default_value_t = 20_000_000)]
    events: u64,
    /// The server's `--event-log-retention`.
    #[arg(long, default_value = "30s")]
    retention: String,
    /// The server's (hidden) `--event-log-segment-bytes`; its default (128 MiB) when absent.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Time between samples, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    sample_ms: u64,
    /// Seconds to keep sampling after the last ack (the last segments age out).
    #[arg(long, default_value_t = 45)]
    settle_seconds: u64,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// Largest request body.
    #[arg(long, default_value_t = 1024 * 1024)]
    batch_bytes: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Events per second to send at most (0: as fast as the server acks). Event history
    /// indexes more slowly than the log appends, and its cursor holds retention back: below
    /// history's rate the log reaches a steady state (the plateau) instead of growing with
    /// history's backlog.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Print the samples as CSV instead of a table.
    #[arg(long)]
    csv: bool,
    /// See `ingest --history-retention-days`.
    #[arg(long, default_value_t = 36_500)]
    history_retention_days: u32,
}

/// One sample of the log's state.
struct Sample {
    seconds: f64,
    acked: u64,
    /// Segment files' bytes, measured by the bench (`du` of `DATA/log/segments`).
    segments_bytes: u64,
    segments: usize,
    /// Bytes of `DATA/history`, for context (it keeps each eventID once).
    history_bytes: u64,
    /// `/metrics`: the server's own figure, oldest offset, and consumers' lag in records.
    metrics_disk_bytes: Option<u64>,
    start_offset: Option<u64>,
    durable_end: Option<u64>,
    history_lag: Option<u64>,
    delivery_lag: Option<u64>,
}

fn dir_bytes(dir: &Path) -> (u64, usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut bytes, mut files) = (0, 0);
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (b, f) = dir_bytes(&entry.path());
            bytes += b;
            files += f;
        } else {
            bytes += meta.len();
            files += 1;
        }
    }
    (bytes, files)
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}

async fn sample(server: &BenchServer, started: Instant, acked: u64) -> Sample {
    let data = server.data_dir();
    let (segments_bytes, segments) = dir_bytes(&data.join("log").join("segments"));
    let (history_bytes, _) = dir_bytes(&data.join("history"));
    let text = match reqwest::get(format!("{}/metrics", server.endpoint())).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let lag = |consumer: &str| {
        metric(
            &text,
            &format!("opentrail_event_log_consumer_lag_records{{consumer=\"{consumer}\"}}"),
        )
    };
    Sample {
        seconds: started.elapsed().as_secs_f64(),
        acked,
        segments_bytes,
        segments,
        history_bytes,
        metrics_disk_bytes: metric(&text, "opentrail_event_log_disk_bytes"),
        start_offset: metric(&text, "opentrail_event_log_start_offset"),
        durable_end: metric(&text, "opentrail_event_log_durable_end_offset"),
        history_lag: lag("event-history"),
        delivery_lag: lag("trail-delivery"),
    }
}

fn print_sample(row: &Sample, csv: bool) {
    let opt = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    if csv {
        println!(
            "{:.1},{},{},{},{},{},{},{},{},{}",
            row.seconds,
            row.acked,
            row.segments_bytes,
            row.segments,
            opt(row.metrics_disk_bytes),
            opt(row.start_offset),
            opt(row.durable_end),
            opt(row.history_lag),
            opt(row.delivery_lag),
            row.history_bytes
        );
    } else {
        println!(
            "{:>8.1} {:>12} {:>12.1} {:>5} {:>12.1} {:>12} {:>12} {:>10} {:>10} {:>12.1}",
            row.seconds,
            row.acked,
            mib(row.segments_bytes),
            row.segments,
            row.metrics_disk_bytes.map_or(f64::NAN, mib),
            opt(row.start_offset),
            opt(row.durable_end),
            opt(row.history_lag),
            opt(row.delivery_lag),
            mib(row.history_bytes)
        );
    }
}

pub async fn run(args: LogRetentionArgs) -> anyhow::Result<()> {
    eprintln!("reading {}", args.input.display());
    let bodies = build_bodies(&args.input, args.batch_bytes, &mut copy_record)?;
    if bodies.is_empty() {
        bail!("no records under {}", args.input.display());
    }
    let per_cycle: usize = bodies.iter().map(|b| b.records).sum();
    let mut serve_args = vec![
        "--history-retention-days".to_owned(),
        args.history_retention_days.to_string(),
        "--event-log-retention".to_owned(),
        args.retention.clone(),
    ];
    if let Some(bytes) = args.segment_bytes {
        serve_args.extend(["--event-log-segment-bytes".to_owned(), bytes.to_string()]);
    }
    let server = BenchServer::start_with(
        &args.opentrail_bin,
        &ServeOptions {
            serve_args,
            // No trail: delivery skips every record, event history is the consumer.
            no_local_bucket: true,
        },
    )?;
    eprintln!(
        "ingesting {} events ({} a cycle over the input{}) with --event-log-retention {}; data dir {}",
        args.events,
        per_cycle,
        if args.rate > 0 { format!(", at most {} events/s", args.rate) } else { String::new() },
        args.retention,
        server.data_dir().display()
    );
    let client = EventsClient::new(&server, args.concurrency)?;
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // Events scheduled so far, for `--rate`: a body is sent no earlier than
    // `started + scheduled / rate`.
    let scheduled = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (bodies, next, acked, client, scheduled) = (
            Arc::clone(&bodies),
            Arc::clone(&next),
            Arc::clone(&acked),
            Arc::clone(&client),
            Arc::clone(&scheduled),
        );
        let (target, rate) = (args.events, args.rate);
        senders.spawn(async move {
            loop {
                // Claim a body; stop once enough events are claimed.
                let index = next.fetch_add(1, Ordering::Relaxed) as usize;
                let body = &bodies[index % bodies.len()];
                let claimed_before: u64 = acked.load(Ordering::Relaxed);
                if claimed_before >= target {
                    return Ok::<(), anyhow::Error>(());
                }
                if rate > 0 {
                    let at = scheduled.fetch_add(body.records as u64, Ordering::Relaxed);
                    let due = started + Duration::from_secs_f64(at as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                // Signed when sent: a SigV4 signature is valid for 15 minutes only.
                let request = client.sign(Body {
                    bytes: body.bytes.clone(),
                    records: body.records,
                })?;
                client.send(request).await?;
                acked.fetch_add(body.records as u64, Ordering::Relaxed);
            }
        });
    }
    if args.csv {
        println!("seconds,events_acked,segments_bytes,segments,metrics_disk_bytes,start_offset,durable_end,history_lag_records,delivery_lag_records,history_bytes");
    } else {
        println!(
            "{:>8} {:>12} {:>12} {:>5} {:>12} {:>12} {:>12} {:>10} {:>10} {:>12}",
            "seconds",
            "acked",
            "log MiB",
            "segs",
            "metric MiB",
            "start",
            "end",
            "hist lag",
            "deliv lag",
            "history MiB"
        );
    }
    let period = Duration::from_millis(args.sample_ms.max(100));
    let mut samples = Vec::new();
    let mut ingest_seconds = None;
    let mut settle_until = None;
    loop {
        tokio::select! {
            finished = senders.join_next(), if !done.load(Ordering::Relaxed) => {
                match finished {
                    Some(result) => result??,
                    None => {
                        done.store(true, Ordering::Relaxed);
                        ingest_seconds = Some(started.elapsed().as_secs_f64());
                        settle_until = Some(Instant::now() + Duration::from_secs(args.settle_seconds));
                    }
                }
                continue;
            }
            _ = tokio::time::sleep(period) => {}
        }
        let row = sample(&server, started, acked.load(Ordering::Relaxed)).await;
        print_sample(&row, args.csv);
        samples.push(row);
        if settle_until.is_some_and(|until| Instant::now() >= until) {
            break;
        }
    }
    server.stop()?;
    let total = acked.load(Ordering::Relaxed);
    let ingest_seconds = ingest_seconds.unwrap_or_default();
    summarize(&samples, total, ingest_seconds);
    Ok(())
}

/// Peak log size per quarter of the ingest: flat quarters mean the log plateaued.
fn summarize(samples: &[Sample], total: u64, ingest_seconds: f64) {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let peak = samples.iter().max_by_key(|s| s.segments_bytes);
    let last = samples.last().map_or(0, |s| s.segments_bytes);
    // What the log would hold without retention: its bytes per record at the peak times
    // every record appended.
    let unbounded = peak
        .zip(samples.last().and_then(|s| s.durable_end))
        .and_then(|(peak, end)| {
            let kept = peak.durable_end?.saturating_sub(peak.start_offset?);
            (kept > 0).then(|| peak.segments_bytes as f64 / kept as f64 * end as f64)
        })
        .unwrap_or(f64::NAN);
    eprintln!(
        "ingested {total} events in {ingest_seconds:.1}s ({:.0} events/s); log peak {:.1} MiB, at the end {:.1} MiB (without retention: ~{:.1} MiB)",
        total as f64 / ingest_seconds.max(f64::EPSILON),
        mib(peak.map_or(0, |s| s.segments_bytes)),
        mib(last),
        unbounded / (1u64 << 20) as f64
    );
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.seconds <= ingest_seconds)
        .collect();
    if during.len() >= 4 {
        let quarter = during.len() / 4;
        let peaks: Vec<String> = during
            .chunks(quarter)
            .take(4)
            .map(|chunk| {
                format!(
                    "{:.1}",
                    mib(chunk.iter().map(|s| s.segments_bytes).max().unwrap_or(0))
                )
            })
            .collect();
        eprintln!(
            "log peak MiB per quarter of the ingest: {}",
            peaks.join(" / ")
        );
    }
}
