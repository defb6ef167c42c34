//! `opentrail-bench ingest`: POST /events throughput and ack latency on the reference
//! dataset, and `opentrail-bench import`: the wall time of `opentrail import` on it.

use crate::dataset::{overwrite_string, RECIPIENT_ACCOUNT};
use crate::events::{build_bodies, copy_record, percentile, send_paced, Ack, Body, EventsClient};
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
    /// Runs, each on a fresh server: with more than one, the median, lowest and highest
    /// end-to-end rate, ingest rate and server CPU per event close the report (one run on
    /// the shared 2-core machine can be ~10 % off).
    #[arg(long, default_value_t = 1)]
    runs: usize,
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
    let runs = args.runs.max(1);
    let mut figures = Vec::with_capacity(runs);
    for run in 1..=runs {
        let one = ingest_once(&args, bodies.clone()).await?;
        if !args.json {
            if runs > 1 {
                println!("run {run} of {runs}:");
            }
            one.print(args.rate);
        }
        figures.push(one);
    }
    if args.json {
        let json = match figures.as_slice() {
            [one] => one.json(args.rate),
            all => serde_json::json!({
                "runs": all.iter().map(|one| one.json(args.rate)).collect::<Vec<_>>(),
                "median": Spread::of(all).json(),
            }),
        };
        println!("{json}");
    } else if runs > 1 {
        Spread::of(&figures).print(runs);
    }
    Ok(())
}

/// One server, one pass over the data set: what [`run_ingest`] reports per run.
struct RunFigures {
    events: usize,
    bytes: usize,
    latencies: Vec<Duration>,
    /// From the first request to the last acknowledgement.
    elapsed: Duration,
    log_end: u64,
    applied_during: u64,
    /// When everything was searchable in event history, from the start.
    searchable: f64,
    lake: Option<lake::LakeFigures>,
    lags: MaxLags,
    cpu_seconds: Option<f64>,
}

async fn ingest_once(args: &IngestArgs, bodies: Vec<Body>) -> anyhow::Result<RunFigures> {
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
    Ok(RunFigures {
        events,
        bytes,
        latencies,
        elapsed,
        log_end,
        applied_during,
        searchable: (searchable? - started).as_secs_f64(),
        lake,
        lags,
        cpu_seconds,
    })
}

impl RunFigures {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// Ingest, history and (with `--lake-store`) the store, from the first request until
    /// both had everything.
    fn end_to_end_seconds(&self) -> f64 {
        self.lake.as_ref().map_or(self.searchable, |lake| {
            lake.written_after.max(self.searchable)
        })
    }

    fn end_to_end_rate(&self) -> f64 {
        self.events as f64 / self.end_to_end_seconds()
    }

    fn cpu_micros_per_event(&self) -> Option<f64> {
        self.cpu_seconds.map(|cpu| cpu * 1e6 / self.events as f64)
    }

    /// Ack latency p50, p99 and max, in milliseconds.
    fn ack_ms(&self) -> (f64, f64, f64) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        (
            ms(percentile(&self.latencies, 50.0)),
            ms(percentile(&self.latencies, 99.0)),
            ms(*self.latencies.last().unwrap_or(&Duration::ZERO)),
        )
    }

    fn json(&self, offered: Option<f64>) -> serde_json::Value {
        let (p50, p99, max) = self.ack_ms();
        let elapsed = self.elapsed.as_secs_f64();
        serde_json::json!({ "events": self.events, "requests": self.latencies.len(), "seconds": elapsed,
            "events_per_second": self.rate(), "mb_per_second": self.bytes as f64 / 1e6 / elapsed,
            "ack_ms": { "p50": p50, "p99": p99, "max": max },
            "history": { "log_records": self.log_end, "indexed_during_ingest": self.applied_during,
                "indexed_per_second_during_ingest": self.applied_during as f64 / elapsed,
                "all_searchable_after_seconds": self.searchable },
            "offered_events_per_second": offered,
            "max_records_behind": { "history": self.lags.history, "store": self.lags.lake },
            "max_event_log_tail_bytes": self.lags.tail_bytes,
            "store_written_after_seconds": self.lake.as_ref().map(|lake| lake.written_after),
            "end_to_end_events_per_second": self.end_to_end_rate(),
            "server_cpu_seconds": self.cpu_seconds })
    }

    fn print(&self, offered: Option<f64>) {
        let (p50, p99, max) = self.ack_ms();
        let (events, elapsed) = (self.events, self.elapsed.as_secs_f64());
        println!(
            "ingest: {events} events in {} requests, {elapsed:.2}s: {:.0} events/s, {:.0} MB/s; ack latency p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
            self.latencies.len(),
            self.rate(),
            self.bytes as f64 / 1e6 / elapsed,
        );
        println!(
            "event history: {} of {} log records indexed while ingest ran ({:.0} records/s); all searchable after {:.2}s",
            self.applied_during,
            self.log_end,
            self.applied_during as f64 / elapsed,
            self.searchable
        );
        if let Some(lake) = &self.lake {
            println!(
                "event data store: {} events written into it, the lake writer done after {:.2}s; ingest + history + store end to end: {:.0} events/s ({events} events / {:.2}s)",
                lake.stored,
                lake.written_after,
                self.end_to_end_rate(),
                self.end_to_end_seconds()
            );
        }
        // Whether the consumers kept up: how far behind the log's end they fell, and how
        // long after the last acknowledgement they had everything.
        let after_last_ack = |seconds: f64| seconds - elapsed;
        println!(
            "offered {}; behind the log's end at most: history {} records, store {}; the log's in-memory tail at most {} MiB; everything searchable {:.2}s after the last ack{}; server CPU {}",
            offered.map_or("as fast as acknowledged".to_owned(), |r| format!("{r:.0} events/s")),
            self.lags.history,
            self.lags.lake.map_or("-".to_owned(), |l| l.to_string()),
            self.lags.tail_bytes >> 20,
            after_last_ack(self.searchable),
            self.lake.as_ref().map_or(String::new(), |lake| format!(
                ", in the store {:.2}s after",
                after_last_ack(lake.written_after)
            )),
            match (self.cpu_seconds, self.cpu_micros_per_event()) {
                (Some(cpu), Some(micros)) => format!("{cpu:.1}s ({micros:.1} µs/event)"),
                _ => "unknown".to_owned(),
            },
        );
    }
}

/// Median, lowest and highest of a figure over the runs.
#[derive(Debug, Clone, Copy)]
struct Range {
    median: f64,
    min: f64,
    max: f64,
}

impl Range {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        let (&min, &max) = (values.first()?, values.last()?);
        let middle = values.len() / 2;
        let median = if values.len().is_multiple_of(2) {
            (values[middle - 1] + values[middle]) / 2.0
        } else {
            values[middle]
        };
        Some(Self { median, min, max })
    }

    fn json(self) -> serde_json::Value {
        serde_json::json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

/// The run-to-run spread of the figures that decide a comparison (end to end, ingest,
/// server CPU per event): one run on the shared 2-core machine can be ~10 % off.
struct Spread {
    end_to_end: Option<Range>,
    ingest: Option<Range>,
    cpu_micros_per_event: Option<Range>,
}

impl Spread {
    fn of(runs: &[RunFigures]) -> Self {
        Self {
            end_to_end: Range::of(runs.iter().map(RunFigures::end_to_end_rate).collect()),
            ingest: Range::of(runs.iter().map(RunFigures::rate).collect()),
            cpu_micros_per_event: Range::of(
                runs.iter()
                    .filter_map(RunFigures::cpu_micros_per_event)
                    .collect(),
            ),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "end_to_end_events_per_second": self.end_to_end.map(Range::json),
            "events_per_second": self.ingest.map(Range::json),
            "server_cpu_micros_per_event": self.cpu_micros_per_event.map(Range::json),
        })
    }

    fn print(&self, runs: usize) {
        let show = |range: Option<Range>, digits: usize, unit: &str| {
            range.map_or("unknown".to_owned(), |r| {
                format!(
                    "median {:.digits$} {unit} ({:.digits$}–{:.digits$})",
                    r.median, r.min, r.max
                )
            })
        };
        println!(
            "over {runs} runs: end to end {}; ingest {}; server CPU {}",
            show(self.end_to_end, 0, "events/s"),
            show(self.ingest, 0, "events/s"),
            show(self.cpu_micros_per_event, 1, "µs/event"),
        );
    }
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
    /// The most memory the event log's in-memory tail held (records kept for its readers).
    tail_bytes: u64,
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
                    if let Some(bytes) = gauge(&text, TAIL_BYTES) {
                        max.tail_bytes = max.tail_bytes.max(bytes);
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
/// The bytes the event log's in-memory tail holds.
const TAIL_BYTES: &str = "opentrail_event_log_tail_bytes ";

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

#[cfg(test)]
mod tests {
    use super::Range;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let odd = Range::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Range::of(vec![40.0, 10.0, 30.0, 20.0]).unwrap();
        assert_eq!((even.median, even.min, even.max), (25.0, 10.0, 40.0));
        assert!(Range::of(Vec::new()).is_none());
    }
}
