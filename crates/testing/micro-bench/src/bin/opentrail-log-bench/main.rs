//! Throughput and ack latency of the embedded event log: N concurrent producers append
//! batches (like ingest requests), optional readers tail the log meanwhile, then one reader
//! reads everything back.
//!
//! `cargo run --profile fast -p opentrail-micro-bench --bin opentrail-log-bench -- --help`

mod latency;
mod records;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use opentrail_log::{EventLog, LogOptions};

use crate::latency::LatencySummary;

#[derive(Debug, Parser)]
#[command(about = "Benchmark the opentrail durable event log")]
struct Args {
    /// Directory for the log; a fresh temporary directory under /tmp if omitted.
    #[arg(long, env = "OPENTRAIL_LOG_BENCH_DIR")]
    dir: Option<PathBuf>,
    /// Records to append.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Size of each synthetic record (ignored with --input).
    #[arg(long, default_value_t = 1400)]
    record_bytes: usize,
    /// Directory of CloudTrail .json.gz log files whose events are appended instead.
    #[arg(long, env = "OPENTRAIL_LOG_BENCH_INPUT")]
    input: Option<PathBuf>,
    /// Records per append (one ingest request).
    #[arg(long, default_value_t = 500)]
    batch_records: usize,
    /// Concurrent producers, each with one append in flight.
    #[arg(long, default_value_t = 8)]
    producers: usize,
    /// Readers that tail the log while it is being written (like the downstream consumers).
    #[arg(long, default_value_t = 0)]
    tailing_readers: usize,
    /// Segment size in MiB.
    #[arg(long, default_value_t = 128)]
    segment_mib: u64,
    /// Offered load in events/s, paced on a fixed schedule (0: as fast as acks allow).
    /// Latency is then measured from each batch's scheduled send time, so a stalled log is
    /// not hidden by producers that fall behind.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    worker_threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads)
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let load_started = Instant::now();
    let records = match &args.input {
        Some(input) => records::from_cloudtrail_files(input, args.records)?,
        None => records::synthetic(args.records, args.record_bytes),
    };
    let payload_bytes: usize = records.iter().map(Bytes::len).sum();
    println!(
        "loaded {} records, {:.1} MB, mean {} bytes, in {:.1?}",
        records.len(),
        payload_bytes as f64 / 1e6,
        payload_bytes / records.len().max(1),
        load_started.elapsed()
    );

    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("opentrail-log-bench")
                .tempdir_in("/tmp")?;
            temp.path().to_path_buf()
        }
    };
    let options = LogOptions {
        segment_bytes: args.segment_mib * 1024 * 1024,
        ..LogOptions::default()
    };
    let log = EventLog::open(&dir, options.clone())
        .with_context(|| format!("failed to open log in {}", dir.display()))?;
    let start_offset = log.durable_end();
    let target_end = start_offset + records.len() as u64;

    let tails: Vec<_> = (0..args.tailing_readers)
        .map(|_| tokio::spawn(tail(log.clone(), start_offset, target_end)))
        .collect();

    let records = Arc::new(records);
    let next_batch = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let pacing = (args.rate > 0).then(|| Pacing {
        start: tokio::time::Instant::now(),
        batch_interval: Duration::from_secs_f64(args.batch_records as f64 / args.rate as f64),
    });
    let producers: Vec<_> = (0..args.producers)
        .map(|_| {
            tokio::spawn(produce(
                log.clone(),
                Arc::clone(&records),
                Arc::clone(&next_batch),
                args.batch_records,
                pacing,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for producer in producers {
        latencies.extend(producer.await??);
    }
    let write_elapsed = started.elapsed();
    let mut tail_elapsed = Vec::new();
    for tail in tails {
        tail_elapsed.push(tail.await??);
    }

    let latency = LatencySummary::of(&mut latencies);
    let offered = match args.rate {
        0 => "as fast as acknowledged".to_string(),
        rate => format!("offered {rate} events/s"),
    };
    println!(
        "append: {} records in {} batches of {} from {} producers ({offered}): {:.2?}, {:.0} events/s, {:.1} MB/s",
        records.len(),
        latencies.len(),
        args.batch_records,
        args.producers,
        write_elapsed,
        records.len() as f64 / write_elapsed.as_secs_f64(),
        payload_bytes as f64 / 1e6 / write_elapsed.as_secs_f64(),
    );
    println!(
        "ack latency: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        latency.p50, latency.p99, latency.max
    );
    for (i, elapsed) in tail_elapsed.iter().enumerate() {
        println!(
            "tailing reader {i}: caught up {:.1?} after the appends started",
            elapsed
        );
    }

    // Reopened, so nothing comes from the in-memory tail: every record is read from the
    // segment files (which are in the page cache).
    let (read_records, read_bytes, read_elapsed) = tokio::task::spawn_blocking(move || {
        drop(log);
        let log = EventLog::open(&dir, options)?;
        let read_started = Instant::now();
        let (count, bytes) = read_back(&log, start_offset, target_end)?;
        anyhow::Ok((count, bytes, read_started.elapsed()))
    })
    .await??;
    anyhow::ensure!(
        read_records == records.len() && read_bytes == payload_bytes,
        "read back {read_records} records / {read_bytes} bytes, wrote {} / {payload_bytes}",
        records.len()
    );
    println!(
        "read back after reopen: {read_records} records in {:.2?}, {:.0} events/s, {:.1} MB/s (segment files, page cache warm)",
        read_elapsed,
        read_records as f64 / read_elapsed.as_secs_f64(),
        read_bytes as f64 / 1e6 / read_elapsed.as_secs_f64(),
    );
    Ok(())
}

/// A fixed send schedule: batch `i` is due at `start + i * batch_interval`.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    start: tokio::time::Instant,
    batch_interval: Duration,
}

/// Appends batches taken from the shared queue until none are left; returns ack latencies.
async fn produce(
    log: EventLog,
    records: Arc<Vec<Bytes>>,
    next_batch: Arc<AtomicUsize>,
    batch_records: usize,
    pacing: Option<Pacing>,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    loop {
        let batch_number = next_batch.fetch_add(1, Ordering::Relaxed);
        let start = batch_number * batch_records;
        if start >= records.len() {
            return Ok(latencies);
        }
        let batch = records[start..(start + batch_records).min(records.len())].to_vec();
        let sent = match pacing {
            Some(pacing) => {
                let due = pacing.start + pacing.batch_interval * batch_number as u32;
                tokio::time::sleep_until(due).await;
                due
            }
            None => tokio::time::Instant::now(),
        };
        log.append(batch).await?;
        latencies.push(sent.elapsed());
    }
}

/// Follows the log as a consumer would until `end`; returns when it caught up.
async fn tail(log: EventLog, from: u64, end: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut reader = log.reader(from);
    while reader.position() < end {
        reader.next_batch(10_000).await?;
    }
    Ok(started.elapsed())
}

fn read_back(log: &EventLog, from: u64, end: u64) -> anyhow::Result<(usize, usize)> {
    let mut reader = log.reader(from);
    let (mut count, mut bytes) = (0, 0);
    while reader.position() < end {
        let batch = reader.poll_batch(10_000)?;
        anyhow::ensure!(
            !batch.is_empty(),
            "log ends at {} before {end}",
            reader.position()
        );
        count += batch.len();
        bytes += batch.iter().map(|(_, r)| r.len()).sum::<usize>();
    }
    Ok((count, bytes))
}
