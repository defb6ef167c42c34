//! `api-latency`: sequential CreateTrail and DescribeTrails calls, timed one by one.

use crate::server::{BenchServer, BUCKET};
use crate::ApiLatencyArgs;
use anyhow::{ensure, Context};
use aws_sdk_cloudtrail::Client;
use serde_json::json;
use std::time::{Duration, Instant};

/// Latency distribution of one operation.
#[derive(Debug)]
struct Summary {
    operation: &'static str,
    requests: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    /// Requests per second of the timed calls alone (untimed setup calls excluded).
    throughput: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    debug_assert!(!sorted.is_empty());
    // Nearest-rank: the smallest sample with at least p% of samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summarize(operation: &'static str, mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Summary {
        operation,
        requests: samples.len(),
        p50: percentile(&samples, 50.0),
        p90: percentile(&samples, 90.0),
        p99: percentile(&samples, 99.0),
        max: *samples.last().expect("at least one sample"),
        throughput: samples.len() as f64 / total.as_secs_f64(),
    }
}

async fn create_delete_cycle(client: &Client, name: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    client
        .create_trail()
        .name(name)
        .s3_bucket_name(BUCKET)
        .send()
        .await
        .with_context(|| format!("CreateTrail {name}"))?;
    let elapsed = started.elapsed();
    client
        .delete_trail()
        .name(name)
        .send()
        .await
        .with_context(|| format!("DeleteTrail {name}"))?;
    Ok(elapsed)
}

async fn describe(client: &Client, expected: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = client
        .describe_trails()
        .send()
        .await
        .context("DescribeTrails")?;
    let elapsed = started.elapsed();
    ensure!(
        out.trail_list().len() == expected,
        "DescribeTrails returned {} trails, expected {expected}",
        out.trail_list().len()
    );
    Ok(elapsed)
}

async fn measure(args: &ApiLatencyArgs, server: &BenchServer) -> anyhow::Result<Vec<Summary>> {
    let client = server.cloudtrail_client(&args.region);

    // CreateTrail: create + delete cycles so the 5-trails-per-region limit is never hit;
    // only the CreateTrail call is timed.
    for i in 0..args.warmup {
        create_delete_cycle(&client, &format!("warmup-{i}")).await?;
    }
    let mut create = Vec::with_capacity(args.requests);
    for i in 0..args.requests {
        create.push(create_delete_cycle(&client, &format!("bench-trail-{i}")).await?);
    }

    // DescribeTrails with a few trails present.
    for i in 0..args.describe_trails {
        client
            .create_trail()
            .name(format!("described-{i}"))
            .s3_bucket_name(BUCKET)
            .send()
            .await
            .context("CreateTrail for DescribeTrails")?;
    }
    for _ in 0..args.warmup {
        describe(&client, args.describe_trails).await?;
    }
    let mut describe_samples = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        describe_samples.push(describe(&client, args.describe_trails).await?);
    }
    Ok(vec![
        summarize("CreateTrail", create),
        summarize("DescribeTrails", describe_samples),
    ])
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

fn print_table(summaries: &[Summary]) {
    println!(
        "{:<16} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "operation", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s"
    );
    for s in summaries {
        println!(
            "{:<16} {:>8} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.1}",
            s.operation,
            s.requests,
            millis(s.p50),
            millis(s.p90),
            millis(s.p99),
            millis(s.max),
            s.throughput
        );
    }
}

fn to_json(args: &ApiLatencyArgs, summaries: &[Summary]) -> serde_json::Value {
    json!({
        "benchmark": "api-latency",
        "requests": args.requests,
        "warmup": args.warmup,
        "region": args.region,
        "describe_trails_present": args.describe_trails,
        "results": summaries.iter().map(|s| json!({
            "operation": s.operation,
            "requests": s.requests,
            "p50_ms": millis(s.p50),
            "p90_ms": millis(s.p90),
            "p99_ms": millis(s.p99),
            "max_ms": millis(s.max),
            "requests_per_second": (s.throughput * 10.0).round() / 10.0,
        })).collect::<Vec<_>>(),
    })
}

pub async fn run(args: ApiLatencyArgs) -> anyhow::Result<()> {
    ensure!(args.requests > 0, "--requests must be at least 1");
    let server = BenchServer::start(&args.opentrail_bin)?;
    let measured = measure(&args, &server).await;
    let summaries = match measured {
        Ok(summaries) => summaries,
        Err(e) => {
            // The data dir goes away with the server; show the end of its log now.
            let log = std::fs::read_to_string(server.data_dir().join("server.stderr.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(e.context(format!(
                "benchmark failed; last server log lines:\n{}",
                tail.join("\n")
            )));
        }
    };
    server.stop()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&args, &summaries))?
        );
    } else {
        print_table(&summaries);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(
            percentile(&[Duration::from_millis(7)], 99.0),
            Duration::from_millis(7)
        );
    }
}
