//! Delivers the reference CloudTrail data set through the real worker into a LocalStore
//! and reports throughput, gzip speed and compression against `gzip -6`.
//!
//! ```text
//! python3 benches/gen_cloudtrail.py --out /tmp/ct1m --events 1000000 --seed 42
//! cargo run --profile fast -p opentrail-micro-bench --bin opentrail-delivery-bench -- --input /tmp/ct1m
//! ```

mod compare;
mod load;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use opentrail_delivery::{
    DeliveryConfig, DeliveryDeps, DeliveryOutcome, DeliveryWorker, KeyStore, TrailDirectory,
    TrailTarget,
};
use opentrail_log::{EventLog, LogOptions};
use opentrail_model::{AccountId, Region, SystemClock, TrailArn, TrailName};
use opentrail_objstore::{LocalStore, ObjectStore};
use opentrail_selectors::{AdvancedEventSelector, AdvancedFieldSelector, Operator, TrailSelectors};

/// The allocator the server runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Benchmark trail delivery on the reference CloudTrail data set")]
struct Args {
    /// Directory of CloudTrail .json.gz files (gen_cloudtrail.py output).
    #[arg(long, env = "OPENTRAIL_BENCH_INPUT", default_value = "/tmp/ct1m")]
    input: PathBuf,
    /// Work directory for the event log, the bucket and delivery state (a temporary
    /// directory when absent; removed afterwards).
    #[arg(long, env = "OPENTRAIL_BENCH_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// Fail unless the input holds exactly this many events (0: any number).
    #[arg(long, default_value_t = 1_000_000)]
    expect_events: usize,
    /// Uncompressed size bound of one log file, in MiB.
    #[arg(long, default_value_t = 8)]
    max_file_mib: usize,
    /// Sign digests (log file validation on).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    validation: bool,
    /// Skip re-compressing every delivered file with `gzip -6`.
    #[arg(long)]
    skip_gzip_compare: bool,
}

/// One multi-region trail per account, selecting every management and data event.
struct BenchDirectory {
    trails: Vec<TrailTarget>,
}

impl TrailDirectory for BenchDirectory {
    fn logging_trails(&self) -> Vec<TrailTarget> {
        self.trails.clone()
    }

    fn record_delivery(&self, trail: &TrailArn, outcome: DeliveryOutcome) {
        if let DeliveryOutcome::LogFileFailed { error, .. }
        | DeliveryOutcome::DigestFailed { error, .. } = outcome
        {
            eprintln!("delivery failed for {trail}: {error}");
        }
    }
}

fn every_event() -> TrailSelectors {
    TrailSelectors::Advanced(vec![AdvancedEventSelector {
        name: Some("everything".to_owned()),
        field_selectors: vec![AdvancedFieldSelector::new("eventCategory")
            .with(Operator::Equals, ["Management", "Data"])],
    }])
}

fn trail_for(account: &str, validation: bool) -> anyhow::Result<TrailTarget> {
    Ok(TrailTarget {
        account: AccountId::parse(account).map_err(anyhow::Error::msg)?,
        name: TrailName::parse("bench-trail").map_err(|e| anyhow::anyhow!(e.0))?,
        home_region: Region::parse("us-east-1").map_err(anyhow::Error::msg)?,
        is_multi_region: true,
        include_global_service_events: true,
        s3_bucket: "bench-bucket".to_owned(),
        s3_key_prefix: Some("bench".to_owned()),
        selectors: every_event(),
        log_file_validation: validation,
        insight_types: Vec::new(),
        is_logging: true,
        logging_since: None,
        logging_since_offset: None,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temporary;
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::Builder::new()
                .prefix("opentrail-delivery-bench")
                .tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    let log = EventLog::open(work.join("log"), LogOptions::default()).context("open event log")?;

    let started = Instant::now();
    let loaded = load::append_input(&log, &args.input).await?;
    let load_time = started.elapsed();
    if args.expect_events != 0 && loaded.events != args.expect_events {
        bail!(
            "{} holds {} events, expected {} (regenerate it with gen_cloudtrail.py or pass --expect-events 0)",
            args.input.display(),
            loaded.events,
            args.expect_events
        );
    }
    println!(
        "input: {} events, {} files, {:.1} MB uncompressed, {} accounts; appended to the log in {:.1} s",
        loaded.events,
        loaded.files,
        loaded.uncompressed_bytes as f64 / 1e6,
        loaded.accounts.len(),
        load_time.as_secs_f64()
    );

    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(work.join("store")));
    store.create_bucket("bench-bucket").await?;
    let trails = loaded
        .accounts
        .iter()
        .map(|account| trail_for(account, args.validation))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut config = DeliveryConfig::new(work.join("state"));
    config.max_file_bytes = args.max_file_mib * 1024 * 1024;
    config.read_batch_records = 8192;
    let meta: Arc<dyn opentrail_meta::MetaStore> = Arc::new(opentrail_meta::SqliteMetaStore::open(
        &work.join("meta.sqlite"),
    )?);
    let keys = Arc::new(KeyStore::open(
        Arc::clone(&meta),
        work.join("keys"),
        opentrail_delivery::keys::DEFAULT_ROTATION,
    )?);
    let log_seam: Arc<dyn opentrail_log::DurableLog> = Arc::new(log.clone());
    let mut worker = DeliveryWorker::start(
        config,
        DeliveryDeps {
            log: Arc::clone(&log_seam),
            store: Arc::clone(&store),
            directory: Arc::new(BenchDirectory { trails }),
            keys,
            meta,
            clock: Arc::new(SystemClock),
        },
    )
    .await?;

    let started = Instant::now();
    while worker.read_position() < log.durable_end() {
        worker.step(None).await?;
    }
    worker.flush_all().await?;
    let delivery_time = started.elapsed();
    let stats = worker.stats().clone();
    if stats.events_routed != loaded.events as u64 || worker.spooled_files() != 0 {
        bail!(
            "delivered {} of {} events",
            stats.events_routed,
            loaded.events
        );
    }
    let seconds = delivery_time.as_secs_f64();
    let gzip_seconds = Duration::from_nanos(stats.gzip_nanos).as_secs_f64();
    println!(
        "delivery (log -> route -> gzip -> LocalStore, cursor committed): {} events in {:.2} s = {:.0} events/s, {:.1} MB/s uncompressed",
        stats.events_routed,
        seconds,
        stats.events_routed as f64 / seconds,
        stats.uncompressed_bytes as f64 / 1e6 / seconds
    );
    let part = |nanos: u64| Duration::from_nanos(nanos).as_secs_f64();
    println!(
        "  wall time by part (gzip overlaps reading and routing): read log {:.2} s, parse+route and write finished files {:.2} s, write remaining files + digests {:.2} s, commit cursor {:.2} s",
        part(stats.read_nanos),
        part(stats.route_nanos),
        part(stats.write_nanos),
        part(stats.commit_nanos)
    );
    println!(
        "log files: {} written, {:.1} MB uncompressed -> {:.1} MB gzip (ratio {:.2})",
        stats.log_files_written,
        stats.uncompressed_bytes as f64 / 1e6,
        stats.compressed_bytes as f64 / 1e6,
        stats.uncompressed_bytes as f64 / stats.compressed_bytes as f64
    );
    println!(
        "gzip in delivery (flate2 + zlib-rs, level {}): {:.1} MB/s per core ({:.2} CPU-s over {} files)",
        opentrail_delivery::log_file::GZIP_LEVEL,
        stats.uncompressed_bytes as f64 / 1e6 / gzip_seconds,
        gzip_seconds,
        stats.log_files_written
    );

    if !args.skip_gzip_compare {
        let compared = compare::against_gzip_6(store.as_ref(), "bench-bucket").await?;
        let mb = compared.uncompressed_bytes as f64 / 1e6;
        println!(
            "same {} files, one thread each, CPU time: ours {:.1} MB/s, ratio {:.3}; gzip -6 {:.1} MB/s, ratio {:.3}; ours / gzip -6 size: {:.4}",
            compared.files,
            mb / compared.ours_seconds,
            compared.uncompressed_bytes as f64 / compared.ours_bytes as f64,
            mb / compared.gzip6_seconds,
            compared.uncompressed_bytes as f64 / compared.gzip6_bytes as f64,
            compared.ours_bytes as f64 / compared.gzip6_bytes as f64
        );
    }
    Ok(())
}
