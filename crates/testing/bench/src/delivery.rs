//! `opentrail-bench delivery`: end-to-end delivery throughput of one trail into the embedded
//! bucket store, and how well the delivered files are compressed compared with `gzip -6`.

use crate::bucket_watch::read_gzip_object;
use crate::events::load_average;
use crate::server::{BenchServer, ServeOptions, BUCKET};
use crate::trail_run::{deliver_dataset, start_trail, DeliveredFile, RunOptions};
use anyhow::{bail, Context};
use opentrail_objstore::{LocalStore, ObjectStore};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DeliveryArgs {
    /// Directory of CloudTrail .json.gz files (gen_cloudtrail.py output).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// The server's `--delivery-interval`, in seconds.
    #[arg(long, default_value_t = 5)]
    delivery_interval: u64,
    /// Largest request body.
    #[arg(long, default_value_t = 1024 * 1024)]
    batch_bytes: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Delivered files compressed again with `gzip -6` for comparison.
    #[arg(long, default_value_t = 8)]
    gzip_sample: usize,
    /// Milliseconds between listings of the bucket.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Give up after this many seconds without every event delivered.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Our compressed size and `gzip -6`'s on the same decompressed files.
struct GzipComparison {
    files: usize,
    ours: u64,
    gzip6: u64,
}

/// The size of `gzip -6` output for `text`.
fn gzip6_size(text: &[u8]) -> anyhow::Result<u64> {
    let mut input = tempfile::NamedTempFile::new()?;
    input.write_all(text)?;
    input.flush()?;
    let out = std::process::Command::new("gzip")
        .args(["-6", "-c", "-n"])
        .arg(input.path())
        .output()
        .context("failed to run gzip")?;
    if !out.status.success() {
        bail!("gzip -6 failed with {}", out.status);
    }
    Ok(out.stdout.len() as u64)
}

/// Compresses `sample` files spread evenly over `files` with `gzip -6`.
async fn compare_with_gzip6(
    store: &dyn ObjectStore,
    files: &[DeliveredFile],
    sample: usize,
) -> anyhow::Result<GzipComparison> {
    let step = (files.len() / sample.max(1)).max(1);
    let mut comparison = GzipComparison {
        files: 0,
        ours: 0,
        gzip6: 0,
    };
    for file in files.iter().step_by(step).take(sample) {
        let (ours, text) = read_gzip_object(store, BUCKET, &file.key).await?;
        let gzip6 = tokio::task::spawn_blocking(move || gzip6_size(&text)).await??;
        comparison.files += 1;
        comparison.ours += ours;
        comparison.gzip6 += gzip6;
    }
    Ok(comparison)
}

pub async fn run(args: DeliveryArgs) -> anyhow::Result<()> {
    let load_before = load_average();
    let interval = Duration::from_secs(args.delivery_interval);
    let server = BenchServer::start_with(
        &args.opentrail_bin,
        &ServeOptions {
            serve_args: vec![
                "--delivery-interval".into(),
                format!("{}s", args.delivery_interval),
            ],
            no_local_bucket: false,
        },
    )?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(server.local_buckets_root()));
    let client = server.cloudtrail_client("us-east-1");
    start_trail(&client, "bench-delivery", false).await?;
    let options = RunOptions {
        input: args.input.clone(),
        batch_bytes: args.batch_bytes,
        concurrency: args.concurrency,
        poll: Duration::from_millis(args.poll_ms),
        quiet: interval + Duration::from_secs(2),
        timeout: Duration::from_secs(args.timeout),
    };
    let run = deliver_dataset(&server, Arc::clone(&store), &options).await?;
    let gzip = compare_with_gzip6(store.as_ref(), &run.files, args.gzip_sample).await?;
    server.stop()?;
    let load_after = load_average();

    let end_to_end = (run.last_visible - run.first_ack).as_secs_f64();
    let ingest = (run.last_ack - run.first_sent).as_secs_f64();
    let rate = run.events_expected as f64 / end_to_end;
    // How far delivery had come when the last event was acked, and how fast it drained after.
    let visible_at_last_ack: usize = run
        .files
        .iter()
        .filter(|f| f.seen_at <= run.last_ack)
        .map(|f| f.expected_events)
        .sum();
    let drain_seconds = run
        .last_visible
        .saturating_duration_since(run.last_ack)
        .as_secs_f64();
    let drain_rate = (run.events_expected - visible_at_last_ack) as f64 / drain_seconds;
    let compressed: u64 = run.files.iter().map(|f| f.compressed_bytes).sum();
    let uncompressed: u64 = run.files.iter().map(|f| f.uncompressed_bytes).sum();
    let ratio = uncompressed as f64 / compressed as f64;
    let gzip6_ratio_sample = gzip.ours as f64 / gzip.gzip6 as f64;
    let vs_gzip6_percent = (gzip6_ratio_sample - 1.0) * 100.0;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "events_sent": run.events_sent, "events_delivered": run.events_expected,
                "other_records_delivered": run.other_records, "requests": run.requests,
                "ingest_seconds": ingest, "end_to_end_seconds": end_to_end,
                "events_per_second": rate, "delivery_interval_seconds": args.delivery_interval,
                "visible_at_last_ack": visible_at_last_ack, "drain_seconds": drain_seconds,
                "drain_events_per_second": drain_rate,
                "log_files": run.files.len(), "compressed_bytes": compressed,
                "uncompressed_bytes": uncompressed, "gzip_ratio": ratio,
                "gzip6_sample": { "files": gzip.files, "ours_bytes": gzip.ours, "gzip6_bytes": gzip.gzip6,
                    "ours_larger_percent": vs_gzip6_percent },
                "load_average": { "before": load_before, "after": load_after },
            })
        );
        return Ok(());
    }
    println!(
        "delivery: {} events sent in {} requests ({ingest:.2}s to the last ack); {} management events delivered (+{} of the server's own audit events) in {} log files",
        run.events_sent, run.requests, run.events_expected, run.other_records, run.files.len()
    );
    println!(
        "end to end (first ack to last event visible, --delivery-interval {}s): {end_to_end:.2}s = {rate:.0} events/s",
        args.delivery_interval
    );
    println!(
        "at the last ack {visible_at_last_ack} events were visible; the rest took {drain_seconds:.2}s more ({drain_rate:.0} events/s)"
    );
    println!(
        "gzip: {:.1} MB -> {:.1} MB, ratio {ratio:.2}; on {} sampled files ours {} B vs gzip -6 {} B: {vs_gzip6_percent:+.2}%",
        uncompressed as f64 / 1e6,
        compressed as f64 / 1e6,
        gzip.files,
        gzip.ours,
        gzip.gzip6
    );
    println!("load average (1 min): {load_before} before, {load_after} after");
    Ok(())
}
