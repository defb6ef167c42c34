//! `opentrail-bench validate`: the dataset delivered with log file validation into a
//! moto_server bucket, then `opentrail validate` and `aws cloudtrail validate-logs` timed
//! on the same files; both must find every digest and log file valid.

use crate::events::load_average;
use crate::moto::MotoServer;
use crate::server::{BenchServer, ServeOptions, ACCOUNT_ID, BUCKET};
use crate::trail_run::{deliver_dataset, log_file_prefix, start_trail, RunOptions};
use crate::validate_runs::{
    aws_validate_logs, check_all_valid, download_seconds, opentrail_validate, region_of,
    time_command, RegionFiles, RegionResult,
};
use anyhow::{bail, ensure, Context};
use chrono::{DateTime, NaiveDateTime, Utc};
use opentrail_objstore::ObjectStore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Directory of CloudTrail .json.gz files (gen_cloudtrail.py output).
    #[arg(long, default_value = "/tmp/ct1m")]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    #[arg(long, default_value = ".venv/bin/moto_server")]
    moto_server: PathBuf,
    /// The AWS CLI whose `cloudtrail validate-logs` is the reference.
    #[arg(long, default_value = ".venv/bin/aws")]
    aws_cli: PathBuf,
    /// The server's `--delivery-interval`, in seconds.
    #[arg(long, default_value_t = 5)]
    delivery_interval: u64,
    /// The server's (hidden) `--digest-interval`, in seconds: short, so that the run
    /// leaves a chain of several digests.
    #[arg(long, default_value_t = 20)]
    digest_interval: u64,
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

const DIGEST_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// `(region, digest end time)` from `AWSLogs/<acct>/CloudTrail-Digest/<region>/.../<...>_<YYYYMMDDTHHMMSSZ>.json.gz`.
fn digest_region_and_end(key: &str) -> Option<(String, DateTime<Utc>)> {
    let region = key.split('/').nth(3)?.to_owned();
    let stamp = key.strip_suffix(".json.gz")?.rsplit('_').next()?;
    let end = NaiveDateTime::parse_from_str(stamp, DIGEST_TIME_FORMAT).ok()?;
    Some((region, end.and_utc()))
}

/// Waits until every region with digests has one ending at or after `stopped` (the final
/// digest StopLogging writes); returns the digest keys.
async fn wait_for_final_digests(
    store: &dyn ObjectStore,
    stopped: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let prefix = format!("AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/");
    let since = stopped - chrono::Duration::seconds(1);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let keys: Vec<String> = store
            .list_objects(BUCKET, &prefix)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        let mut latest: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        for (region, end) in keys.iter().filter_map(|k| digest_region_and_end(k)) {
            let entry = latest.entry(region).or_insert(end);
            *entry = (*entry).max(end);
        }
        if latest.contains_key("us-east-1") && latest.values().all(|end| *end >= since) {
            return Ok(keys);
        }
        if Instant::now() > deadline {
            bail!("no final digest after StopLogging in every region: latest digests {latest:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let load_before = load_average();
    let moto = MotoServer::start(&args.moto_server).await?;
    let store: Arc<dyn ObjectStore> = Arc::new(moto.store()?);
    store
        .create_bucket(BUCKET)
        .await
        .with_context(|| format!("failed to create bucket {BUCKET} in moto"))?;
    let mut serve_args = vec![
        "--delivery-interval".to_owned(),
        format!("{}s", args.delivery_interval),
        "--digest-interval".to_owned(),
        format!("{}s", args.digest_interval),
    ];
    serve_args.extend(moto.opentrail_args());
    let server = BenchServer::start_with(
        &args.opentrail_bin,
        &ServeOptions {
            serve_args,
            no_local_bucket: true,
        },
    )?;
    let start_time = (Utc::now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let client = server.cloudtrail_client("us-east-1");
    let trail_arn = start_trail(&client, "bench-validate", true).await?;
    let options = RunOptions {
        input: args.input.clone(),
        batch_bytes: args.batch_bytes,
        concurrency: args.concurrency,
        poll: Duration::from_millis(250),
        quiet: Duration::from_secs(args.delivery_interval + 2),
        timeout: Duration::from_secs(900),
    };
    let delivered = deliver_dataset(&server, Arc::clone(&store), &options).await?;
    let stopped = Utc::now();
    client
        .stop_logging()
        .name("bench-validate")
        .send()
        .await
        .context("StopLogging")?;
    let digests = wait_for_final_digests(store.as_ref(), stopped).await?;
    let logs = store.list_objects(BUCKET, &log_file_prefix()).await?;
    ensure!(
        logs.len() >= delivered.files.len(),
        "log files disappeared from the bucket"
    );
    let log_bytes: u64 = logs.iter().map(|o| o.size).sum();
    eprintln!(
        "{} log files ({:.1} MB) and {} digests in moto; validating",
        logs.len(),
        log_bytes as f64 / 1e6,
        digests.len()
    );

    // Both validators check one region's digest chain per run (the CLI's --region), so
    // every region with digests is validated by each, one after the other.
    let mut regions: BTreeMap<String, RegionFiles> = BTreeMap::new();
    for key in &digests {
        if let Some(region) = region_of(key) {
            regions.entry(region).or_default().digests += 1;
        }
    }
    for object in &logs {
        if let Some(region) = region_of(&object.key) {
            regions.entry(region).or_default().logs += 1;
        }
    }
    let mut results = Vec::new();
    for (region, files) in regions {
        let download = download_seconds(store.as_ref(), &region).await?;
        let ours = opentrail_validate(
            &args.opentrail_bin,
            &server,
            &moto,
            &region,
            &trail_arn,
            &start_time,
        );
        let ours = time_command(ours).await?;
        check_all_valid("opentrail validate", &region, &ours, &files)?;
        let theirs = aws_validate_logs(
            &args.aws_cli,
            &server,
            &moto,
            &region,
            &trail_arn,
            &start_time,
        );
        let theirs = time_command(theirs).await?;
        check_all_valid("aws cloudtrail validate-logs", &region, &theirs, &files)?;
        let result = RegionResult {
            region,
            files,
            download,
            ours: ours.seconds,
            theirs: theirs.seconds,
        };
        eprintln!("{}", result.line());
        results.push(result);
    }
    server.stop()?;
    drop(moto);
    let load_after = load_average();

    let ours_total: f64 = results.iter().map(|r| r.ours).sum();
    let theirs_total: f64 = results.iter().map(|r| r.theirs).sum();
    let download_total: f64 = results.iter().map(|r| r.download).sum();
    let speedup = theirs_total / ours_total;
    if args.json {
        let per_region: Vec<_> = results.iter().map(RegionResult::json).collect();
        println!(
            "{}",
            serde_json::json!({
                "events_delivered": delivered.events_expected, "log_files": logs.len(),
                "log_bytes": log_bytes, "digests": digests.len(), "regions": per_region,
                "download_seconds": download_total,
                "opentrail_validate_seconds": ours_total, "aws_validate_logs_seconds": theirs_total,
                "speedup": speedup, "target_speedup": 20,
                "load_average": { "before": load_before, "after": load_after },
            })
        );
        return Ok(());
    }
    println!(
        "validate: {} events in {} log files ({:.1} MB) and {} digests in a moto_server bucket, {} regions; both report every file valid",
        delivered.events_expected,
        logs.len(),
        log_bytes as f64 / 1e6,
        digests.len(),
        results.len()
    );
    for result in &results {
        println!("  {}", result.line());
    }
    println!(
        "all regions: opentrail validate {ours_total:.2}s, aws cloudtrail validate-logs {theirs_total:.2}s: {speedup:.1}x faster (target >= 20x); GETs alone {download_total:.2}s"
    );
    println!("load average (1 min): {load_before} before, {load_after} after");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_key_parts() {
        let key = "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/21/111122223333_CloudTrail-Digest_eu-west-1_t_us-east-1_20261121T032558Z.json.gz";
        let (region, end) = digest_region_and_end(key).expect("parsed");
        assert_eq!(region, "eu-west-1");
        assert_eq!(end.to_rfc3339(), "2026-11-21T03:25:58+00:00");
    }
}
