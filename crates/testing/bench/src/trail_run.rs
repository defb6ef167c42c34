//! Delivering the reference dataset through one trail: create and start a multi-region
//! trail, post every event, and wait until each expected event is in a log file.

use crate::bucket_watch::{read_gzip_object, BucketWatcher, SeenObject};
use crate::dataset::{event_ids, load_deliverable};
use crate::events::{send_all, EventsClient};
use crate::server::{BenchServer, ACCOUNT_ID, BUCKET};
use anyhow::{bail, Context};
use opentrail_objstore::ObjectStore;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The key prefix of the bench account's log files (digests are under `CloudTrail-Digest/`).
pub fn log_file_prefix() -> String {
    format!("AWSLogs/{ACCOUNT_ID}/CloudTrail/")
}

/// Creates a multi-region trail with the default selectors into [`BUCKET`] and starts
/// logging; returns its ARN.
pub async fn start_trail(
    client: &aws_sdk_cloudtrail::Client,
    name: &str,
    log_file_validation: bool,
) -> anyhow::Result<String> {
    let created = client
        .create_trail()
        .name(name)
        .s3_bucket_name(BUCKET)
        .is_multi_region_trail(true)
        .enable_log_file_validation(log_file_validation)
        .send()
        .await
        .with_context(|| format!("CreateTrail {name}"))?;
    client
        .start_logging()
        .name(name)
        .send()
        .await
        .with_context(|| format!("StartLogging {name}"))?;
    created
        .trail_arn()
        .map(str::to_owned)
        .context("CreateTrail returned no TrailARN")
}

/// How to send the dataset and how long to wait for it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub input: PathBuf,
    pub batch_bytes: usize,
    pub concurrency: usize,
    /// How often the bucket is listed.
    pub poll: Duration,
    /// Delivered files are read only once no new file appeared for this long, so that
    /// reading them does not compete with the server for the cores while it delivers.
    pub quiet: Duration,
    /// Give up when events are still missing this long after the first ack.
    pub timeout: Duration,
}

/// One delivered log file.
#[derive(Debug, Clone)]
pub struct DeliveredFile {
    pub key: String,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    /// When the file was first listed.
    pub seen_at: Instant,
    /// Expected events in the file.
    pub expected_events: usize,
}

/// What sending the dataset through the trail took.
#[derive(Debug)]
pub struct DatasetDelivery {
    pub events_sent: usize,
    /// Events the trail delivers (management events): all found in log files.
    pub events_expected: usize,
    pub requests: usize,
    pub first_sent: Instant,
    pub first_ack: Instant,
    pub last_ack: Instant,
    /// When the last file holding an expected event was first listed.
    pub last_visible: Instant,
    pub files: Vec<DeliveredFile>,
    /// Delivered records that were not expected: the server's audit events of the bench's
    /// own API calls (and duplicates, if any).
    pub other_records: usize,
}

/// Sends the dataset at `options.input` to `server`, whose logging trail writes to
/// [`BUCKET`] in `store`, and waits until every expected event is in a log file.
pub async fn deliver_dataset(
    server: &BenchServer,
    store: Arc<dyn ObjectStore>,
    options: &RunOptions,
) -> anyhow::Result<DatasetDelivery> {
    eprintln!("reading {}", options.input.display());
    let dataset = load_deliverable(&options.input, options.batch_bytes)?;
    let events_expected = dataset.expected.len();
    let mut missing = dataset.expected;
    let client = EventsClient::new(server, options.concurrency)?;
    // Signed up front so that hashing does not compete with the server while timed.
    let requests = dataset
        .bodies
        .into_iter()
        .map(|body| client.sign(body))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let requests_count = requests.len();
    eprintln!(
        "sending {} events ({events_expected} management events the trail delivers) in {requests_count} requests",
        dataset.events
    );

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = BucketWatcher::new(Arc::clone(&store), BUCKET, &log_file_prefix());
    let (found, watching) = watcher.spawn(options.poll, Arc::clone(&stop));
    let first_sent = Instant::now();
    let acks = send_all(&client, requests, options.concurrency).await?;
    let first_ack = acks.iter().map(|a| a.acked).min().context("no requests")?;
    let last_ack = acks.iter().map(|a| a.acked).max().context("no requests")?;
    eprintln!(
        "all acked after {:.2}s; waiting for delivery",
        (last_ack - first_sent).as_secs_f64()
    );

    let mut pending: Vec<SeenObject> = Vec::new();
    let mut last_new = Instant::now();
    let mut files = Vec::new();
    let mut other_records = 0;
    let mut last_visible = first_ack;
    while !missing.is_empty() {
        if watching.is_finished() {
            watching.await??;
            bail!("the bucket watcher stopped");
        }
        if first_ack.elapsed() > options.timeout {
            bail!(
                "{} of {events_expected} events not delivered {:?} after the first ack",
                missing.len(),
                options.timeout
            );
        }
        tokio::time::sleep(options.poll).await;
        let new = std::mem::take(&mut *found.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        if !new.is_empty() {
            last_new = Instant::now();
            pending.extend(new);
        }
        if pending.is_empty() || last_new.elapsed() < options.quiet {
            continue;
        }
        for object in pending.drain(..) {
            let (compressed_bytes, text) =
                read_gzip_object(store.as_ref(), BUCKET, &object.key).await?;
            let mut records = 0;
            let mut matched = 0;
            for id in event_ids(&text) {
                records += 1;
                if missing.remove(&id) {
                    matched += 1;
                }
            }
            other_records += records - matched;
            if matched > 0 {
                last_visible = last_visible.max(object.seen_at);
            }
            files.push(DeliveredFile {
                key: object.key,
                compressed_bytes,
                uncompressed_bytes: text.len() as u64,
                seen_at: object.seen_at,
                expected_events: matched,
            });
        }
        eprintln!(
            "{} files read, {} events still missing",
            files.len(),
            missing.len()
        );
    }
    stop.store(true, Ordering::Relaxed);
    watching.await??;
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(DatasetDelivery {
        events_sent: dataset.events,
        events_expected,
        requests: requests_count,
        first_sent,
        first_ack,
        last_ack,
        last_visible,
        files,
        other_records,
    })
}
