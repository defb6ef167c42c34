//! `opentrail-bench validate`: the dataset delivered with log file validation into a
//! moto_server bucket, then `opentrail validate` and `aws cloudtrail validate-logs` timed
//! on the same files; both must find every digest and log file valid.

use crate::events::load_average;
use crate::moto::MotoServer;
use crate::server::{BenchServer, ServeOptions, ACCOUNT_ID, BUCKET};
use crate::trail_run::{deliver_dataset, log_file_prefix, start_trail, RunOptions};
use anyhow::{bail, ensure, Context};
use chrono::{DateTime, NaiveDateTime, Utc};
use opentrail_objstore::ObjectStore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
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

/// A validator run: its wall time and output.
struct Timed {
    seconds: f64,
    output: Output,
}

async fn time_command(mut command: tokio::process::Command) -> anyhow::Result<Timed> {
    // Our environment's AWS_* settings must not reach either validator.
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
    ] {
        command.env_remove(name);
    }
    let started = Instant::now();
    let output = command.output().await.context("failed to run validator")?;
    Ok(Timed {
        seconds: started.elapsed().as_secs_f64(),
        output,
    })
}

/// The digests and log files of one region in the bucket.
#[derive(Debug, Clone, Default)]
struct RegionFiles {
    digests: usize,
    logs: usize,
}

/// The region of an `AWSLogs/<acct>/CloudTrail[-Digest]/<region>/...` key.
fn region_of(key: &str) -> Option<String> {
    key.split('/').nth(3).map(str::to_owned)
}

fn opentrail_validate(
    args: &ValidateArgs,
    server: &BenchServer,
    moto: &MotoServer,
    region: &str,
    trail_arn: &str,
    start_time: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&args.opentrail_bin);
    command
        .arg("validate")
        .arg("--endpoint")
        .arg(server.endpoint())
        .args(["--region", region])
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(moto.opentrail_args())
        .args(["--trail-arn", trail_arn, "--start-time", start_time]);
    command
}

fn aws_validate_logs(
    args: &ValidateArgs,
    server: &BenchServer,
    moto: &MotoServer,
    region: &str,
    trail_arn: &str,
    start_time: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&args.aws_cli);
    command
        .args(["cloudtrail", "validate-logs", "--endpoint-url"])
        .arg(server.endpoint())
        .args(["--region", region])
        .args(["--trail-arn", trail_arn, "--start-time", start_time])
        .env("AWS_ENDPOINT_URL_S3", &moto.endpoint)
        .env("AWS_SHARED_CREDENTIALS_FILE", server.credentials_path())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_PAGER", "");
    command
}

/// Fails unless `run` exited 0 and reported all of `files` valid.
fn check_all_valid(
    name: &str,
    region: &str,
    run: &Timed,
    files: &RegionFiles,
) -> anyhow::Result<()> {
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    let RegionFiles { digests, logs } = files;
    let all_digests = format!("{digests}/{digests} digest files valid");
    let all_logs = format!("{logs}/{logs} log files valid");
    if !run.output.status.success() || !stdout.contains(&all_digests) || !stdout.contains(&all_logs)
    {
        bail!(
            "{name} --region {region} did not report {all_digests} and {all_logs} (exit {}):\n{stdout}\n{stderr}",
            run.output.status
        );
    }
    Ok(())
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
    for (region, files) in &regions {
        let ours = opentrail_validate(&args, &server, &moto, region, &trail_arn, &start_time);
        let ours = time_command(ours).await?;
        check_all_valid("opentrail validate", region, &ours, files)?;
        let theirs = aws_validate_logs(&args, &server, &moto, region, &trail_arn, &start_time);
        let theirs = time_command(theirs).await?;
        check_all_valid("aws cloudtrail validate-logs", region, &theirs, files)?;
        eprintln!(
            "{region}: {} digests, {} log files: opentrail validate {:.2}s, aws cloudtrail validate-logs {:.2}s",
            files.digests, files.logs, ours.seconds, theirs.seconds
        );
        results.push((region.clone(), files.clone(), ours.seconds, theirs.seconds));
    }
    server.stop()?;
    drop(moto);
    let load_after = load_average();

    let ours_total: f64 = results.iter().map(|r| r.2).sum();
    let theirs_total: f64 = results.iter().map(|r| r.3).sum();
    let speedup = theirs_total / ours_total;
    if args.json {
        let per_region: Vec<_> = results
            .iter()
            .map(|(region, files, ours, theirs)| {
                serde_json::json!({ "region": region, "digests": files.digests, "log_files": files.logs,
                    "opentrail_validate_seconds": ours, "aws_validate_logs_seconds": theirs,
                    "speedup": theirs / ours })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "events_delivered": delivered.events_expected, "log_files": logs.len(),
                "log_bytes": log_bytes, "digests": digests.len(), "regions": per_region,
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
    for (region, files, ours, theirs) in &results {
        println!(
            "  {region:<15} {:>3} digests {:>4} log files: opentrail validate {ours:6.2}s, aws cloudtrail validate-logs {theirs:6.2}s, {:5.1}x",
            files.digests,
            files.logs,
            theirs / ours
        );
    }
    println!(
        "all regions: opentrail validate {ours_total:.2}s, aws cloudtrail validate-logs {theirs_total:.2}s: {speedup:.1}x faster (target >= 20x)"
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
