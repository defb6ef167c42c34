//! Benchmarks the event history on the reference CloudTrail dataset: ingest rate, disk
//! bytes per event, RSS, LookupEvents latency per attribute and for time ranges,
//! throughput, paging rate — and the same lookups in DuckDB for comparison.
//!
//! `cargo run --profile fast -p opentrail-micro-bench --bin opentrail-history-bench -- --data /tmp/ct1m`

mod dataset;
mod duckdb;
mod latency;
mod system;
mod workload;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Parser;
use opentrail_history::{HistoryOptions, HistoryStore, InsertStats};
use std::path::PathBuf;
use std::time::Instant;
use system::mib;

#[derive(Parser, Debug)]
#[command(about = "Benchmark opentrail-history on a CloudTrail dataset")]
struct Args {
    /// Directory produced by gen_cloudtrail.py (holds AWSLogs/).
    #[arg(long, env = "OPENTRAIL_BENCH_DATA")]
    data: PathBuf,
    /// Store directory (deleted and rebuilt unless --reuse-store).
    #[arg(
        long,
        env = "OPENTRAIL_BENCH_STORE",
        default_value = "/tmp/opentrail-history-bench/store"
    )]
    store: PathBuf,
    /// Query an existing store instead of ingesting again.
    #[arg(long)]
    reuse_store: bool,
    /// Events per insert_batch call.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Lookups per attribute (and for time ranges).
    #[arg(long, default_value_t = 1_000)]
    lookups: usize,
    /// Concurrent clients for the throughput run.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Events to page through per paging run.
    #[arg(long, default_value_t = 100_000)]
    page_events: usize,
    /// zstd level for record blocks.
    #[arg(long, default_value_t = HistoryOptions::default().compression_level)]
    level: i32,
    /// Uncompressed record block size, KiB.
    #[arg(long, default_value_t = HistoryOptions::default().block_bytes / 1024)]
    block_kib: usize,
    /// Dictionary size, KiB.
    #[arg(long, default_value_t = HistoryOptions::default().dictionary_bytes / 1024)]
    dictionary_kib: usize,
    /// Memtable size, MiB.
    #[arg(long, default_value_t = HistoryOptions::default().memtable_bytes >> 20)]
    memtable_mib: usize,
    /// Segment files kept open at once.
    #[arg(long, default_value_t = HistoryOptions::default().max_open_files)]
    max_open_files: usize,
    /// Segments a day partition holds before its smallest are merged.
    #[arg(long, default_value_t = HistoryOptions::default().max_segments_per_partition)]
    max_segments_per_partition: usize,
    /// Python with duckdb installed; runs the DuckDB comparison when given.
    #[arg(long, env = "OPENTRAIL_BENCH_DUCKDB_PYTHON")]
    duckdb_python: Option<PathBuf>,
    /// Report DuckDB figures from an earlier run's results in --duckdb-dir (the same
    /// data and seed give the same lookups) instead of loading and querying again.
    #[arg(long)]
    duckdb_reuse_results: bool,
    /// Lookups per kind replayed in DuckDB (default: all of them).
    #[arg(long)]
    duckdb_lookups: Option<usize>,
    /// Working directory for the DuckDB database and query files.
    #[arg(long, default_value = "/tmp/opentrail-history-bench/duckdb")]
    duckdb_dir: PathBuf,
}

fn options(args: &Args) -> HistoryOptions {
    HistoryOptions {
        compression_level: args.level,
        block_bytes: args.block_kib * 1024,
        dictionary_bytes: args.dictionary_kib * 1024,
        memtable_bytes: args.memtable_mib << 20,
        max_open_files: args.max_open_files,
        max_segments_per_partition: args.max_segments_per_partition,
        ..HistoryOptions::default()
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let files = dataset::log_files(&args.data)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no .json.gz files under {}",
        args.data.display()
    );
    println!(
        "dataset: {} files under {}",
        files.len(),
        args.data.display()
    );

    let mut reservoir = workload::Reservoir::new(5_000, 42);
    let mut totals = InsertStats::default();
    let (mut input_events, mut file_bytes) = (0u64, 0u64);
    if !args.reuse_store {
        if args.store.exists() {
            std::fs::remove_dir_all(&args.store)
                .with_context(|| format!("removing {}", args.store.display()))?;
        }
        let store = HistoryStore::open(&args.store, options(&args))?;
        let (batches, reader) = dataset::read_batches(files.clone(), args.batch, 2);
        let started = Instant::now();
        let mut in_store = 0.0f64;
        let mut peak_rss = 0u64;
        for batch in batches {
            let batch = batch?;
            for (_, record) in &batch.events {
                reservoir.offer(record);
            }
            input_events += batch.events.len() as u64;
            file_bytes += batch.file_bytes;
            let insert_started = Instant::now();
            let stats = store.insert_batch(&batch.events)?;
            in_store += insert_started.elapsed().as_secs_f64();
            totals.inserted += stats.inserted;
            totals.duplicates += stats.duplicates;
            totals.not_history += stats.not_history;
            totals.invalid += stats.invalid;
            peak_rss = peak_rss.max(system::rss().0);
        }
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
        let flush_started = Instant::now();
        store.flush()?;
        in_store += flush_started.elapsed().as_secs_f64();
        let wall = started.elapsed().as_secs_f64();
        // Lookups are timed on the store as merges leave it, not while the merger runs.
        let merge_started = Instant::now();
        store.merge_crowded()?;
        let merge_wait = merge_started.elapsed().as_secs_f64();
        let stats = store.stats();
        println!(
            "\n== ingest ({} events, {:.1} MiB gz)",
            input_events,
            mib(file_bytes)
        );
        println!(
            "stored {} management/insight events; skipped {} data, {} duplicate, {} invalid",
            totals.inserted, totals.not_history, totals.duplicates, totals.invalid
        );
        println!(
            "indexing: {:.0} input events/s in the store ({:.0} stored events/s); {:.0} input events/s end to end incl. gunzip+parse ({wall:.1} s)",
            input_events as f64 / in_store,
            totals.inserted as f64 / in_store,
            input_events as f64 / wall
        );
        println!(
            "segments: {} in {} partitions (crowded ones merged in {merge_wait:.1} s after the flush); RSS peak while ingesting: {:.0} MiB (sampled), VmHWM {:.0} MiB",
            stats.segments,
            stats.partitions,
            mib(peak_rss),
            mib(system::rss().1)
        );
        drop(store);
    } else {
        let (batches, reader) = dataset::read_batches(files.clone(), args.batch, 2);
        for batch in batches {
            for (_, record) in &batch?.events {
                reservoir.offer(record);
            }
        }
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
    }

    let open_started = Instant::now();
    let store = HistoryStore::open(&args.store, options(&args))?;
    let stats = store.stats();
    let stored = stats.segment_events + stats.memtable_events as u64;
    println!(
        "\n== storage (reopened in {:.2} s)",
        open_started.elapsed().as_secs_f64()
    );
    let disk = system::dir_bytes(&args.store);
    println!(
        "disk: {:.1} MiB for {} stored events = {:.1} bytes/stored event ({:.1} bytes/input event)",
        mib(disk),
        stored,
        disk as f64 / stored as f64,
        if input_events > 0 {
            disk as f64 / input_events as f64
        } else {
            f64::NAN
        },
    );
    let per_event = |bytes: u64| bytes as f64 / stats.segment_events.max(1) as f64;
    println!(
        "segments: {:.1} bytes/event = {:.1} compressed records + {:.1} indexes and metadata ({} segments, {} partitions)",
        per_event(stats.segment_bytes),
        per_event(stats.segment_record_bytes),
        per_event(stats.segment_bytes - stats.segment_record_bytes),
        stats.segments,
        stats.partitions
    );

    let now: DateTime<Utc> =
        DateTime::from_timestamp(reservoir.max_time + 60, 0).unwrap_or_else(Utc::now);
    let specs = workload::Reservoir::queries(&reservoir, args.lookups, 7);
    let cold = latency::per_kind(&store, &specs, now)?;
    let warm = latency::per_kind(&store, &specs, now)?;
    println!(
        "\n== LookupEvents latency ({} lookups per kind; cold = first pass after open)",
        args.lookups
    );
    println!(
        "{:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "kind", "p50 ms", "p99 ms", "mean ms", "cold p50", "cold p99", "avg events"
    );
    for (kind, summary) in &warm {
        let cold = cold.get(kind).cloned().unwrap_or_default();
        println!(
            "{kind:<13} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.1}",
            summary.p50_ms,
            summary.p99_ms,
            summary.mean_ms,
            cold.p50_ms,
            cold.p99_ms,
            summary.events as f64 / summary.count.max(1) as f64
        );
    }
    let sequential = latency::throughput(&store, &specs, now, 1)?;
    let concurrent = latency::throughput(&store, &specs, now, args.threads)?;
    println!(
        "throughput (mixed lookups): {sequential:.0} requests/s with 1 client, {concurrent:.0} requests/s with {} clients",
        args.threads
    );
    println!(
        "RSS now: {:.0} MiB, peak {:.0} MiB",
        mib(system::rss().0),
        mib(system::rss().1)
    );

    println!("\n== paging (MaxResults 50, following NextToken)");
    let busiest = specs
        .iter()
        .find(|spec| spec.kind == "ReadOnly" && spec.value.as_deref() == Some("true"));
    let whole_stream = specs
        .iter()
        .find(|spec| spec.kind == "TimeRange")
        .map(|spec| workload::QuerySpec {
            start: reservoir.min_time,
            end: reservoir.max_time,
            ..spec.clone()
        });
    for spec in whole_stream.iter().chain(busiest) {
        let (events, pages, seconds) = latency::page_through(&store, spec, now, args.page_events)?;
        println!(
            "{:<13} {} events in {} pages: {:.0} events/s ({:.2} ms/page)",
            spec.kind,
            events,
            pages,
            events as f64 / seconds,
            seconds * 1000.0 / pages as f64
        );
    }

    if let Some(python) = &args.duckdb_python {
        let per_kind = args.duckdb_lookups.unwrap_or(args.lookups);
        let mut taken: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let sample: Vec<workload::QuerySpec> = specs
            .iter()
            .filter(|spec| {
                let count = taken.entry(spec.kind.as_str()).or_default();
                *count += 1;
                *count <= per_kind
            })
            .cloned()
            .collect();
        duckdb::compare(
            python,
            &args.data,
            &args.duckdb_dir,
            &sample,
            &warm,
            args.threads,
            args.duckdb_reuse_results,
        )?;
    }
    Ok(())
}
