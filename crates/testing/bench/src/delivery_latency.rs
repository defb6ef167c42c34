//! `opentrail-bench delivery-latency`: events sent at a steady rate, each with an eventID of
//! its own; the time from each event's ack to the first listing of the log file holding it.

use crate::bucket_watch::{read_gzip_object, BucketWatcher};
use crate::dataset::{event_ids, parse_event_id, EventId};
use crate::events::{load_average, percentile, Body, EventsClient};
use crate::server::{BenchServer, ServeOptions, ACCOUNT_ID, BUCKET};
use crate::trail_run::{log_file_prefix, start_trail};
use anyhow::Context;
use bytes::Bytes;
use opentrail_objstore::{LocalStore, ObjectStore};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct DeliveryLatencyArgs {
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// The server's `--delivery-interval`, in seconds.
    #[arg(long, default_value_t = 5)]
    delivery_interval: u64,
    /// Events per second.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Milliseconds between requests (each carries rate × tick events).
    #[arg(long, default_value_t = 50)]
    tick_ms: u64,
    /// Milliseconds between listings of the bucket.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Regions the events are spread over: one log file lane each.
const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"];
/// Low bits of an eventID: the event's sequence number; high bits: this run's tag.
const SEQ_BITS: u32 = 48;

/// Event IDs `<run tag>-<sequence number>` shaped as version 4 UUIDs.
struct EventIds {
    tag: [u32; 3],
    /// The high bits every eventID of this run shares.
    tag_bits: EventId,
}

impl EventIds {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
        let mut ids = Self {
            tag: [
                (seed >> 32) as u32,
                (seed & 0xffff) as u32,
                ((seed >> 16) & 0xfff) as u32,
            ],
            tag_bits: 0,
        };
        ids.tag_bits = parse_event_id(ids.format(0).as_bytes()).unwrap_or_default() >> SEQ_BITS;
        ids
    }

    fn format(&self, seq: u64) -> String {
        let [a, b, c] = self.tag;
        format!("{a:08x}-{b:04x}-4{c:03x}-8000-{seq:012x}")
    }

    /// The sequence number of an eventID of this run.
    fn seq(&self, id: EventId) -> Option<usize> {
        (id >> SEQ_BITS == self.tag_bits).then_some((id & ((1 << SEQ_BITS) - 1)) as usize)
    }
}

fn synthetic_body(ids: &EventIds, first: u64, count: u64) -> Body {
    let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let mut body = Vec::with_capacity(count as usize * 800);
    body.extend_from_slice(b"{\"Records\":[");
    for seq in first..first + count {
        if seq > first {
            body.push(b',');
        }
        let id = ids.format(seq);
        let region = REGIONS[(seq % REGIONS.len() as u64) as usize];
        body.extend_from_slice(
            format!(
                concat!(
                    r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDABENCHEXAMPLE","#,
                    r#""arn":"arn:aws:iam::{acct}:user/bench","accountId":"{acct}","accessKeyId":"AKIABENCHEXAMPLE","userName":"bench"}},"#,
                    r#""eventTime":"{time}","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"{region}","#,
                    r#""sourceIPAddress":"192.0.2.10","userAgent":"opentrail-bench","requestParameters":{{"instancesSet":{{}},"filterSet":{{}}}},"#,
                    r#""responseElements":null,"requestID":"{id}","eventID":"{id}","readOnly":true,"eventType":"AwsApiCall","#,
                    r#""managementEvent":true,"recipientAccountId":"{acct}","eventCategory":"Management"}}"#
                ),
                acct = ACCOUNT_ID,
                time = time,
                region = region,
                id = id,
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(b"]}");
    Body {
        bytes: Bytes::from(body),
        records: count as usize,
    }
}

/// Per event (by sequence number): when its ack came back, when its file was first listed.
#[derive(Default)]
struct Timeline {
    acked: Vec<Option<Instant>>,
    visible: Vec<Option<Instant>>,
    files: usize,
}

/// Lists the bucket every `every`, reads each new file once, and notes when each of our
/// events became visible.
async fn watch_bucket(
    store: Arc<dyn ObjectStore>,
    ids: Arc<EventIds>,
    timeline: Arc<Mutex<Timeline>>,
    every: Duration,
) -> anyhow::Result<()> {
    let mut watcher = BucketWatcher::new(Arc::clone(&store), BUCKET, &log_file_prefix());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for object in watcher.poll().await? {
            let (_, text) = read_gzip_object(store.as_ref(), BUCKET, &object.key).await?;
            let mut timeline = timeline.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            timeline.files += 1;
            for seq in event_ids(&text).filter_map(|id| ids.seq(id)) {
                if let Some(slot) = timeline.visible.get_mut(seq) {
                    slot.get_or_insert(object.seen_at);
                }
            }
        }
    }
}

/// Signed seconds from `from` to `to`.
fn seconds_between(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64()
    } else {
        -(from - to).as_secs_f64()
    }
}

pub async fn run(args: DeliveryLatencyArgs) -> anyhow::Result<()> {
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
    start_trail(
        &server.cloudtrail_client("us-east-1"),
        "bench-latency",
        false,
    )
    .await?;

    let per_tick = (args.rate * args.tick_ms / 1000).max(1);
    let ticks_total = args.duration * 1000 / args.tick_ms.max(1);
    let total = (per_tick * ticks_total) as usize;
    let ids = Arc::new(EventIds::new());
    let timeline = Arc::new(Mutex::new(Timeline {
        acked: vec![None; total],
        visible: vec![None; total],
        files: 0,
    }));
    let watching = tokio::spawn(watch_bucket(
        Arc::clone(&store),
        Arc::clone(&ids),
        Arc::clone(&timeline),
        Duration::from_millis(args.poll_ms),
    ));
    let client = EventsClient::new(&server, 8)?;
    eprintln!(
        "sending {total} events: {per_tick} every {} ms for {} s",
        args.tick_ms, args.duration
    );
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(args.tick_ms));
    for tick in 0..ticks_total {
        ticks.tick().await;
        let first = tick * per_tick;
        let request = client.sign(synthetic_body(&ids, first, per_tick))?;
        let (client, timeline) = (Arc::clone(&client), Arc::clone(&timeline));
        sends.spawn(async move {
            let ack = client.send(request).await?;
            let mut timeline = timeline.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            for seq in first..first + per_tick {
                timeline.acked[seq as usize] = Some(ack.acked);
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(sent) = sends.join_next().await {
        sent??;
    }
    let sending = started.elapsed();
    eprintln!("all acked; waiting for the last files");

    let deadline = Instant::now() + interval + Duration::from_secs(60);
    loop {
        let pending = {
            let timeline = timeline.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            timeline.visible.iter().filter(|v| v.is_none()).count()
        };
        if pending == 0 || Instant::now() > deadline || watching.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if watching.is_finished() {
        watching.await?.context("bucket watcher failed")?;
    } else {
        watching.abort();
    }
    server.stop()?;
    let load_after = load_average();

    let timeline = timeline.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut latencies: Vec<f64> = timeline
        .acked
        .iter()
        .zip(&timeline.visible)
        .filter_map(|(acked, visible)| Some(seconds_between((*acked)?, (*visible)?)))
        .collect();
    let missing = total - latencies.len();
    latencies.sort_by(f64::total_cmp);
    anyhow::ensure!(!latencies.is_empty(), "no event became visible");
    let (p50, p90, p99, max, min) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1],
        latencies[0],
    );
    let target = interval.as_secs_f64() + 5.0;
    let rate = total as f64 / sending.as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "events": total, "events_per_second": rate, "delivery_interval_seconds": args.delivery_interval,
                "visible": latencies.len(), "missing": missing, "log_files": timeline.files,
                "ack_to_visible_seconds": { "min": min, "p50": p50, "p90": p90, "p99": p99, "max": max },
                "target_p99_seconds": target, "poll_ms": args.poll_ms,
                "load_average": { "before": load_before, "after": load_after },
            })
        );
        return Ok(());
    }
    println!(
        "delivery-latency: {total} events at {rate:.0} events/s for {:.1}s, --delivery-interval {}s; {} visible, {missing} missing, {} log files",
        sending.as_secs_f64(),
        args.delivery_interval,
        latencies.len(),
        timeline.files
    );
    println!(
        "ack to visible (bucket listed every {} ms): min {min:.2}s, p50 {p50:.2}s, p90 {p90:.2}s, p99 {p99:.2}s, max {max:.2}s (target p99 <= {target:.0}s)",
        args.poll_ms
    );
    println!("load average (1 min): {load_before} before, {load_after} after");
    Ok(())
}
