//! `opentrail-bench ingest`: POST /events throughput and ack latency on the reference
//! dataset, and `opentrail-bench import`: the wall time of `opentrail import` on it.

use crate::dataset::{overwrite_string, RECIPIENT_ACCOUNT};
use crate::events::{build_bodies, copy_record, percentile, send_paced, Ack, EventsClient};
use crate::server::{BenchServer, ServeOptions, ACCOUNT_ID};
use anyhow::bail;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Directory of CloudTrail .json.gz files (gen_cloudtrail.py output).
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// Largest request body.
    #[arg(long, default_value_t = 1024 * 1024)]
    batch_bytes: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The server's event history retention: the reference data set is from 2024, so
    /// with AWS's 90 days event history would drop every event instead of indexing it.
    #[arg(long, default_value_t = 36_500)]
    history_retention_days: u32,
    /// Also create one event data store of all the set's events (management events and
    /// the S3 object, Lambda and DynamoDB data events; each record's `recipientAccountId`
    /// becomes the bench account) before sending, and wait until the lake writer has
    /// written everything: the end-to-end rate then covers ingest, history and the store.
    #[arg(long)]
    lake_store: bool,
    /// Offer this many events per second (a steady load) instead of sending as fast as the
    /// server acknowledges: the figures then say whether history (and the store) keep up
    /// with that rate: how far behind the log's end they fell while it ran and how long
    /// after the last acknowledgement they had everything.
    #[arg(long)]
    rate: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// See `ingest --history-retention-days`.
    #[arg(long, default_value_t = 36_500)]
    history_retention_days: u32,
}

/// A server whose event history keeps (and so indexes) events `retention_days` old.
fn start_server(bin: &std::path::Path, retention_days: u32) -> anyhow::Result<BenchServer> {
    BenchServer::start_with(
        bin,
        &ServeOptions {
            serve_args: vec![
                "--history-retention-days".to_owned(),
                retention_days.to_string(),
            ],
            ..ServeOptions::default()
        },
    )
}

pub async fn run_ingest(args: IngestArgs) -> anyhow::Result<()> {
    eprintln!("reading {}", args.input.display());
    let mut to_bench_account = |record: &[u8], body: &mut Vec<u8>| {
        let start = body.len();
        body.extend_from_slice(record);
        overwrite_string(&mut body[start..], RECIPIENT_ACCOUNT, ACCOUNT_ID.as_bytes());
    };
    let bodies = if args.lake_store {
        build_bodies(&args.input, args.batch_bytes, &mut to_bench_account)?
    } else {
        build_bodies(&args.input, args.batch_bytes, &mut copy_record)?
    };
    let events: usize = bodies.iter().map(|b| b.records).sum();
    let bytes: usize = bodies.iter().map(|b| b.bytes.len()).sum();
    let server = start_server(&args.opentrail_bin, args.history_retention_days)?;
    let store = match args.lake_store {
        true => Some(lake::create_all_events_store(&server).await?),
        false => None,
    };
    let client = EventsClient::new(&server, args.concurrency)?;
    // Sign every request up front so the client's hashing does not compete with the server
    // for the two cores while the clock runs; the server still verifies every payload hash.
    let requests = bodies
        .into_iter()
        .map(|body| client.sign(body))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    let watch = LagWatch::start(server.endpoint());
    let acks = send_paced(&client, requests, args.concurrency, args.rate).await?;
    let elapsed = started.elapsed();
    let last_ack = Instant::now();
    // How far event history got while ingest ran, and when it had everything.
    let (log_end, applied_during) = history_progress(&server.endpoint()).await?;
    let searchable = wait_until_indexed(&server.endpoint()).await;
    let lake = match &store {
        Some(store) => Some(lake::wait_until_written(&server, store, started).await?),
        None => None,
    };
    let lags = watch.stop().await;
    let cpu_seconds = server.cpu_seconds();
    let mut latencies: Vec<Duration> = acks.iter().map(Ack::latency).collect();
    latencies.sort();
    server.stop()?;
    let searchable = (searchable? - started).as_secs_f64();
    let indexing_rate = applied_during as f64 / elapsed.as_secs_f64();
    let rate = events as f64 / elapsed.as_secs_f64();
    let mb_s = bytes as f64 / 1e6 / elapsed.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p99, max) = (
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "events": events, "requests": latencies.len(), "seconds": elapsed.as_secs_f64(),
                "events_per_second": rate, "mb_per_second": mb_s, "ack_ms": { "p50": p50, "p99": p99, "max": max },
                "history": { "log_records": log_end, "indexed_during_ingest": applied_during,
                    "indexed_per_second_during_ingest": indexing_rate, "all_searchable_after_seconds": searchable },
                "offered_events_per_second": args.rate, "max_records_behind": { "history": lags.history, "store": lags.lake },
                "store_written_after_seconds": lake.as_ref().map(|lake| lake.written_after),
                "server_cpu_seconds": cpu_seconds })
        );
        return Ok(());
    }
    println!(
        "ingest: {events} events in {} requests, {:.2}s: {rate:.0} events/s, {mb_s:.0} MB/s; ack latency p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        latencies.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "event history: {applied_during} of {log_end} log records indexed while ingest ran ({indexing_rate:.0} records/s); all searchable after {searchable:.2}s"
    );
    if let Some(lake) = &lake {
        let end_to_end = lake.written_after.max(searchable);
        println!(
            "event data store: {} events written into it, the lake writer done after {:.2}s; ingest + history + store end to end: {:.0} events/s ({events} events / {end_to_end:.2}s)",
            lake.stored, lake.written_after, events as f64 / end_to_end
        );
    }
    // Whether the consumers kept up: how far behind the log's end they fell, and how long
    // after the last acknowledgement they had everything.
    let after_last_ack = |seconds: f64| seconds - (last_ack - started).as_secs_f64();
    println!(
        "offered {}; behind the log's end at most: history {} records, store {}; everything searchable {:.2}s after the last ack{}; server CPU {}",
        args.rate.map_or("as fast as acknowledged".to_owned(), |r| format!("{r:.0} events/s")),
        lags.history,
        lags.lake.map_or("-".to_owned(), |l| l.to_string()),
        after_last_ack(searchable),
        lake.as_ref().map_or(String::new(), |lake| format!(
            ", in the store {:.2}s after",
            after_last_ack(lake.written_after)
        )),
        cpu_seconds.map_or("unknown".to_owned(), |cpu| format!(
            "{cpu:.1}s ({:.1} µs/event)",
            cpu * 1e6 / events as f64
        )),
    );
    Ok(())
}

/// The most records event history and the lake writer were behind the log's end, sampled
/// from `/metrics` every 100 ms while the bench runs.
struct LagWatch {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<MaxLags>,
}

#[derive(Debug, Default, Clone, Copy)]
struct MaxLags {
    history: u64,
    lake: Option<u64>,
}

impl LagWatch {
    fn start(endpoint: String) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut max = MaxLags::default();
            while !*stopped.borrow() {
                if let Ok(text) = metrics_text(&endpoint).await {
                    let (end, applied) = (
                        gauge(&text, "opentrail_event_log_durable_end_offset "),
                        gauge(&text, "opentrail_history_applied_offset "),
                    );
                    if let (Some(end), Some(applied)) = (end, applied) {
                        max.history = max.history.max(end.saturating_sub(applied));
                    }
                    if let Some(lag) = gauge(&text, LAKE_LAG) {
                        max.lake = Some(max.lake.unwrap_or(0).max(lag));
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stopped.changed() => {}
                }
            }
            max
        });
        Self { stop, task }
    }

    async fn stop(self) -> MaxLags {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// The lake consumer's lag gauge in `/metrics`.
const LAKE_LAG: &str = "opentrail_event_log_consumer_lag_records{consumer=\"lake\"} ";

async fn metrics_text(endpoint: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("{endpoint}/metrics"))
        .await?
        .text()
        .await?)
}

/// The value of the `/metrics` line starting with `name` (which ends with a space).
fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
}

pub async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    let server = start_server(&args.opentrail_bin, args.history_retention_days)?;
    let started = Instant::now();
    let status = tokio::process::Command::new(&args.opentrail_bin)
        .arg("import")
        .arg("--quiet")
        .arg("--endpoint")
        .arg(server.endpoint())
        .arg("--data-dir")
        .arg(server.data_dir())
        .arg(&args.input)
        .status()
        .await?;
    let elapsed = started.elapsed();
    if !status.success() {
        server.stop()?;
        bail!("opentrail import failed: {status}");
    }
    let searchable = wait_until_indexed(&server.endpoint()).await;
    let peak_rss = server.peak_rss_bytes();
    server.stop()?;
    let searchable = searchable?;
    println!(
        "import of {}: {:.2}s; every imported event searchable in LookupEvents after {:.2}s; server peak RSS {}",
        args.input.display(),
        elapsed.as_secs_f64(),
        (searchable - started).as_secs_f64(),
        peak_rss.map_or("unknown".to_owned(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64)),
    );
    Ok(())
}

/// The durable end of the event log and event history's applied offset, from `/metrics`.
async fn history_progress(endpoint: &str) -> anyhow::Result<(u64, u64)> {
    let text = metrics_text(endpoint).await?;
    match (
        gauge(&text, "opentrail_event_log_durable_end_offset "),
        gauge(&text, "opentrail_history_applied_offset "),
    ) {
        (Some(end), Some(applied)) => Ok((end, applied)),
        _ => bail!("the server's /metrics has no history progress gauges"),
    }
}

/// Polls `/metrics` until event history has indexed the whole durable log; returns when.
async fn wait_until_indexed(endpoint: &str) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (end, applied) = history_progress(endpoint).await?;
        if applied >= end {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("event history did not catch up in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The all-events store of `ingest --lake-store`.
mod lake {
    use super::*;
    use anyhow::Context;
    use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector, QueryStatus};

    const REGION: &str = "us-east-1";

    pub struct LakeFigures {
        pub stored: u64,
        /// Seconds from the first request until the writer's cursor reached the log's end.
        pub written_after: f64,
    }

    fn selector(name: &str, fields: &[(&str, &str)]) -> anyhow::Result<AdvancedEventSelector> {
        let mut selector = AdvancedEventSelector::builder().name(name);
        for (field, value) in fields {
            selector = selector.field_selectors(
                AdvancedFieldSelector::builder()
                    .field(*field)
                    .equals(*value)
                    .build()?,
            );
        }
        Ok(selector.build()?)
    }

    /// A multi-region store of every event category the reference set has; its id.
    pub async fn create_all_events_store(server: &BenchServer) -> anyhow::Result<String> {
        let mut selectors = vec![selector("management", &[("eventCategory", "Management")])?];
        for kind in [
            "AWS::S3::Object",
            "AWS::Lambda::Function",
            "AWS::DynamoDB::Table",
        ] {
            selectors.push(selector(
                kind,
                &[("eventCategory", "Data"), ("resources.type", kind)],
            )?);
        }
        let store = server
            .cloudtrail_client(REGION)
            .create_event_data_store()
            .name("bench-all-events")
            .set_advanced_event_selectors(Some(selectors))
            .retention_period(3653)
            .send()
            .await
            .context("CreateEventDataStore")?;
        let arn = store.event_data_store_arn().context("no store ARN")?;
        Ok(arn.rsplit('/').next().unwrap_or_default().to_owned())
    }

    /// Waits until the lake writer's cursor is at the log's end, then counts the store.
    pub async fn wait_until_written(
        server: &BenchServer,
        store: &str,
        started: Instant,
    ) -> anyhow::Result<LakeFigures> {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let text = metrics_text(&server.endpoint()).await?;
            match gauge(&text, LAKE_LAG) {
                Some(0) => break,
                Some(_) => {}
                None => bail!("the server's /metrics has no lake consumer lag"),
            }
            if Instant::now() > deadline {
                bail!("the lake writer did not catch up in 15 minutes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let written_after = started.elapsed().as_secs_f64();
        let client = server.cloudtrail_client(REGION);
        let query = client
            .start_query()
            .query_statement(format!("SELECT count(*) AS n FROM {store}"))
            .send()
            .await
            .context("StartQuery")?;
        let id = query.query_id().context("no query id")?.to_owned();
        loop {
            let described = client.describe_query().query_id(&id).send().await?;
            match described.query_status() {
                Some(QueryStatus::Finished) => break,
                Some(QueryStatus::Queued | QueryStatus::Running) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => bail!("the count query ended {other:?}"),
            }
        }
        let results = client.get_query_results().query_id(&id).send().await?;
        let stored = results
            .query_result_rows()
            .first()
            .and_then(|row| row.first())
            .and_then(|cell| cell.get("n"))
            .and_then(|n| n.parse().ok())
            .context("no count in the query result")?;
        Ok(LakeFigures {
            stored,
            written_after,
        })
    }
}
