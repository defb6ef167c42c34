//! Running the two validators side by side on one region: the commands, their wall
//! times, the check that each found every file valid, and the time of the GETs alone.

use crate::moto::MotoServer;
use crate::server::{BenchServer, ACCOUNT_ID, BUCKET};
use anyhow::{bail, Context};
use opentrail_objstore::ObjectStore;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

/// A validator run: its wall time and output.
pub struct Timed {
    pub seconds: f64,
    output: Output,
}

pub async fn time_command(mut command: tokio::process::Command) -> anyhow::Result<Timed> {
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
pub struct RegionFiles {
    pub digests: usize,
    pub logs: usize,
}

/// The region of an `AWSLogs/<acct>/CloudTrail[-Digest]/<region>/...` key.
pub fn region_of(key: &str) -> Option<String> {
    key.split('/').nth(3).map(str::to_owned)
}

pub fn opentrail_validate(
    opentrail_bin: &Path,
    server: &BenchServer,
    moto: &MotoServer,
    region: &str,
    trail_arn: &str,
    start_time: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(opentrail_bin);
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

pub fn aws_validate_logs(
    aws_cli: &Path,
    server: &BenchServer,
    moto: &MotoServer,
    region: &str,
    trail_arn: &str,
    start_time: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(aws_cli);
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
pub fn check_all_valid(
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

/// What one region's validations took.
pub struct RegionResult {
    pub region: String,
    pub files: RegionFiles,
    /// Sequential GETs of the region's log files and digests, without checking them.
    pub download: f64,
    pub ours: f64,
    pub theirs: f64,
}

impl RegionResult {
    pub fn line(&self) -> String {
        format!(
            "{:<15} {:>3} digests {:>4} log files: opentrail validate {:6.2}s, aws cloudtrail validate-logs {:6.2}s, {:5.1}x; GETs alone {:.2}s",
            self.region,
            self.files.digests,
            self.files.logs,
            self.ours,
            self.theirs,
            self.theirs / self.ours,
            self.download
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({ "region": self.region, "digests": self.files.digests,
            "log_files": self.files.logs, "download_seconds": self.download,
            "opentrail_validate_seconds": self.ours, "aws_validate_logs_seconds": self.theirs,
            "speedup": self.theirs / self.ours })
    }
}

/// Seconds to GET every log file and digest of `region`, one after the other: the floor
/// for a validator that reads them one at a time from this S3 server.
pub async fn download_seconds(store: &dyn ObjectStore, region: &str) -> anyhow::Result<f64> {
    let mut keys = Vec::new();
    for kind in ["CloudTrail", "CloudTrail-Digest"] {
        let prefix = format!("AWSLogs/{ACCOUNT_ID}/{kind}/{region}/");
        keys.extend(
            store
                .list_objects(BUCKET, &prefix)
                .await?
                .into_iter()
                .map(|o| o.key),
        );
    }
    let started = Instant::now();
    for key in &keys {
        store
            .get_object(BUCKET, key)
            .await?
            .with_context(|| format!("{key} disappeared"))?;
    }
    Ok(started.elapsed().as_secs_f64())
}
