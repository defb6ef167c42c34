//! `opentrail validate`: the counterpart of `aws cloudtrail validate-logs`. It asks the
//! server for the trail (DescribeTrails) and its region's public keys (ListPublicKeys),
//! then checks every digest and log file in the bucket itself.

use crate::args::ValidateArgs;
use crate::client::{parse_time_arg as parse_time, ApiClient};
use crate::store::object_store;
use anyhow::{anyhow, bail, Context};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use opentrail_delivery::validate::{
    check_chain_end, unlisted_log_files, validate_logs, DigestStatus, ExpectedChainEnd,
    LogFileStatus, ValidationRequest,
};
use opentrail_delivery::PublicKeyInfo;
use opentrail_model::{iso8601, AccountId, Region, TrailArn};
use serde_json::{json, Value};

fn seconds(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_f64()
        .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0).round() as i64))
}

fn public_key(entry: &Value) -> anyhow::Result<PublicKeyInfo> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(entry["Value"].as_str().unwrap_or(""))
        .context("ListPublicKeys returned a key that is not base64")?;
    Ok(PublicKeyInfo {
        der,
        validity_start: seconds(&entry["ValidityStartTime"])
            .context("key without ValidityStartTime")?,
        validity_end: seconds(&entry["ValidityEndTime"]).context("key without ValidityEndTime")?,
        fingerprint: entry["Fingerprint"].as_str().unwrap_or("").to_owned(),
    })
}

fn digest_status(status: &DigestStatus) -> String {
    match status {
        DigestStatus::Valid => "valid".into(),
        DigestStatus::NotFound => "INVALID: not found".into(),
        DigestStatus::Moved => "INVALID: has been moved from its original location".into(),
        DigestStatus::InvalidFormat(why) => format!("INVALID: invalid format ({why})"),
        DigestStatus::SignatureFailed => "INVALID: signature verification failed".into(),
        DigestStatus::PublicKeyNotFound { fingerprint } => {
            format!("INVALID: public key not found for fingerprint {fingerprint}")
        }
        DigestStatus::ChainMismatch(why) => {
            format!("INVALID: does not match the next digest ({why})")
        }
    }
}

fn log_status(status: &LogFileStatus) -> String {
    match status {
        LogFileStatus::Valid => "valid".into(),
        LogFileStatus::HashMismatch => "INVALID: hash value doesn't match".into(),
        LogFileStatus::NotFound => "INVALID: not found".into(),
        other => format!("INVALID: {other:?}"),
    }
}

pub async fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let trail_arn = TrailArn::parse(&args.trail_arn).map_err(|e| anyhow!("{e}"))?;
    let region = Region::parse(&args.client.region).map_err(anyhow::Error::msg)?;
    let start = parse_time(&args.start_time)?;
    let end = match &args.end_time {
        Some(t) => parse_time(t)?,
        None => Utc::now(),
    };
    if start > end {
        bail!(
            "--start-time {} is after --end-time {}",
            iso8601(start),
            iso8601(end)
        );
    }
    let described = client
        .call(
            "DescribeTrails",
            &json!({ "trailNameList": [args.trail_arn] }),
        )
        .await?;
    let trail = described["trailList"]
        .as_array()
        .and_then(|list| list.first())
        .with_context(|| format!("trail {} was not found", args.trail_arn))?;
    let bucket = match &args.s3_bucket {
        Some(bucket) => bucket.clone(),
        None => trail["S3BucketName"].as_str().unwrap_or("").to_owned(),
    };
    let prefix = args
        .s3_prefix
        .clone()
        .or_else(|| trail["S3KeyPrefix"].as_str().map(str::to_owned));
    let status = client
        .call("GetTrailStatus", &json!({ "Name": args.trail_arn }))
        .await?;
    let keys = client
        .call(
            "ListPublicKeys",
            &json!({ "StartTime": start.timestamp(), "EndTime": (end + Duration::hours(2)).timestamp() }),
        )
        .await?;
    let public_keys = keys["PublicKeyList"]
        .as_array()
        .into_iter()
        .flatten()
        .map(public_key)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let account_id = args
        .account_id
        .clone()
        .unwrap_or_else(|| trail_arn.account.to_string());
    let request = ValidationRequest {
        bucket,
        prefix,
        account: AccountId::parse(&account_id).map_err(anyhow::Error::msg)?,
        trail: trail_arn.clone(),
        region,
        start,
        end,
        public_keys,
    };
    println!(
        "Validating log files for trail {} between {} and {}\n",
        trail_arn,
        iso8601(start),
        iso8601(end)
    );
    let store = object_store(&args.client.data_dir, &args.s3)?;
    let report = validate_logs(store.as_ref(), &request).await?;
    // Beyond validate-logs: the chain must reach the trail's latest digest (or the
    // requested end), and every log file written inside a digest's window must be listed.
    // Only the home region's chain runs for as long as the trail logs with validation.
    let truncated = if request.region == trail_arn.region {
        let open_at_end = status["IsLogging"].as_bool() == Some(true)
            && trail["LogFileValidationEnabled"].as_bool() == Some(true)
            && seconds(&status["StartLoggingTime"]).is_some_and(|t| t <= end);
        check_chain_end(
            &report,
            &ExpectedChainEnd {
                end,
                latest_digest_delivery: seconds(&status["LatestDigestDeliveryTime"]),
                open_at_end,
                multi_region: trail["IsMultiRegionTrail"].as_bool() == Some(true),
            },
        )
    } else {
        None
    };
    let unlisted = unlisted_log_files(store.as_ref(), &request, &report).await?;
    for digest in &report.digests {
        if args.verbose || digest.status != DigestStatus::Valid {
            println!(
                "Digest file\ts3://{}/{}\t{}",
                digest.bucket,
                digest.key,
                digest_status(&digest.status)
            );
        }
    }
    for log in &report.log_files {
        if args.verbose || log.status != LogFileStatus::Valid {
            println!(
                "Log file\ts3://{}/{}\t{}",
                log.bucket,
                log.key,
                log_status(&log.status)
            );
        }
    }
    let valid_digests = report
        .digests
        .iter()
        .filter(|d| d.status == DigestStatus::Valid)
        .count();
    let valid_logs = report
        .log_files
        .iter()
        .filter(|l| l.status == LogFileStatus::Valid)
        .count();
    for (bucket, key) in &unlisted {
        println!("Log file\ts3://{bucket}/{key}\tINVALID: not listed in any digest");
    }
    if let Some(why) = &truncated {
        println!("Digest chain\tINVALID: {why}");
    }
    println!(
        "\nResults requested for {} to {}",
        iso8601(start),
        iso8601(end)
    );
    if report.digests.is_empty() {
        println!("No digest files were found");
        bail!(
            "no digest files found for {trail_arn} in {}",
            request.region
        );
    }
    println!(
        "{valid_digests}/{} digest files valid",
        report.digests.len()
    );
    println!("{valid_logs}/{} log files valid", report.log_files.len());
    if !unlisted.is_empty() {
        println!("{} log files not listed in any digest", unlisted.len());
    }
    if !report.is_valid() || truncated.is_some() || !unlisted.is_empty() {
        bail!("validation failed");
    }
    Ok(())
}
