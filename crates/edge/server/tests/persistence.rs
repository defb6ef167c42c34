//! Durability: a clean restart keeps every piece of state, and a `kill -9` in the middle
//! of a burst of concurrent writes loses none of the writes that were acknowledged.

mod common;

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, EventSelector, InsightSelector, InsightType,
    ReadWriteType,
};
use aws_sdk_cloudtrail::Client;
use common::{
    create_multi_region_trail, create_trail, tag, trail_arn, TestServer, ACCOUNT_ID, BUCKET,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything the API reports about one trail, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct TrailSnapshot {
    trail: aws_sdk_cloudtrail::types::Trail,
    tags: Vec<(String, Option<String>)>,
    event_selectors: String,
    insight_selectors: Option<Vec<String>>,
    is_logging: Option<bool>,
    start_logging_time: Option<i64>,
    stop_logging_time: Option<i64>,
}

async fn snapshot(client: &Client, region: &str, name: &str) -> TrailSnapshot {
    let arn = trail_arn(region, name);
    let trail = client
        .get_trail()
        .name(&arn)
        .send()
        .await
        .expect("get trail")
        .trail
        .expect("trail");
    let mut tags: Vec<_> = client
        .list_tags()
        .resource_id_list(&arn)
        .send()
        .await
        .expect("list tags")
        .resource_tag_list()[0]
        .tags_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().map(str::to_owned)))
        .collect();
    tags.sort();
    let selectors = client
        .get_event_selectors()
        .trail_name(&arn)
        .send()
        .await
        .expect("get event selectors");
    let event_selectors = format!(
        "{:?} {:?}",
        selectors.event_selectors(),
        selectors.advanced_event_selectors()
    );
    let insight_selectors = client
        .get_insight_selectors()
        .trail_name(&arn)
        .send()
        .await
        .ok()
        .map(|out| {
            out.insight_selectors()
                .iter()
                .filter_map(|s| s.insight_type().map(|t| t.as_str().to_owned()))
                .collect()
        });
    let status = client
        .get_trail_status()
        .name(&arn)
        .send()
        .await
        .expect("trail status");
    TrailSnapshot {
        trail,
        tags,
        event_selectors,
        insight_selectors,
        is_logging: status.is_logging(),
        start_logging_time: status.start_logging_time().map(|t| t.secs()),
        stop_logging_time: status.stop_logging_time().map(|t| t.secs()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_every_setting() {
    let mut server = TestServer::start();
    let root_key = server.credentials().clone();
    let user_key = server.create_key("restart-user");
    let east = server.client("us-east-1");
    let eu = server.client("eu-west-1");

    create_trail(&east, "plain").await;
    server.create_topic("us-east-1", "kept-topic");
    east.update_trail()
        .name("plain")
        .s3_key_prefix("kept/prefix")
        .enable_log_file_validation(true)
        .sns_topic_name("kept-topic")
        .send()
        .await
        .expect("update");
    east.add_tags()
        .resource_id(trail_arn("us-east-1", "plain"))
        .tags_list(tag("env", "prod"))
        .tags_list(tag("team", "sec"))
        .send()
        .await
        .expect("tag");
    east.put_event_selectors()
        .trail_name("plain")
        .event_selectors(
            EventSelector::builder()
                .read_write_type(ReadWriteType::WriteOnly)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .expect("basic selectors");
    east.put_insight_selectors()
        .trail_name("plain")
        .insight_selectors(
            InsightSelector::builder()
                .insight_type(InsightType::ApiCallRateInsight)
                .build(),
        )
        .send()
        .await
        .expect("insights");
    east.start_logging()
        .name("plain")
        .send()
        .await
        .expect("start logging");

    create_multi_region_trail(&eu, "global").await;
    eu.put_event_selectors()
        .trail_name("global")
        .advanced_event_selectors(
            AdvancedEventSelector::builder()
                .name("management only")
                .field_selectors(
                    AdvancedFieldSelector::builder()
                        .field("eventCategory")
                        .equals("Management")
                        .build()
                        .expect("field"),
                )
                .build()
                .expect("selector"),
        )
        .send()
        .await
        .expect("advanced selectors");
    eu.start_logging()
        .name("global")
        .send()
        .await
        .expect("start");
    eu.stop_logging().name("global").send().await.expect("stop");

    let before_plain = snapshot(&east, "us-east-1", "plain").await;
    let before_global = snapshot(&eu, "eu-west-1", "global").await;
    let before_list = east
        .list_trails()
        .send()
        .await
        .expect("list")
        .trails()
        .to_vec();
    assert_eq!(before_plain.is_logging, Some(true));
    assert_eq!(before_global.is_logging, Some(false));

    server.stop();
    server.restart();
    assert!(
        server
            .startup_lines()
            .iter()
            .all(|l| !l.contains("created access key")),
        "a restart must not create another bootstrap key: {:?}",
        server.startup_lines()
    );
    assert_eq!(
        server.credentials(),
        &root_key,
        "credentials file unchanged"
    );
    let east = server.client("us-east-1");
    let eu = server.client("eu-west-1");

    assert_eq!(snapshot(&east, "us-east-1", "plain").await, before_plain);
    assert_eq!(snapshot(&eu, "eu-west-1", "global").await, before_global);
    assert_eq!(
        east.list_trails()
            .send()
            .await
            .expect("list")
            .trails()
            .to_vec(),
        before_list
    );
    // The multi-region trail still shadows into other regions, with the same account id.
    let shadow = east
        .get_trail()
        .name("global")
        .send()
        .await
        .expect("shadow")
        .trail
        .expect("trail");
    assert_eq!(
        shadow.trail_arn(),
        Some(format!("arn:aws:cloudtrail:eu-west-1:{ACCOUNT_ID}:trail/global").as_str())
    );
    // Keys created before the restart still work; state keeps changing normally.
    server
        .client_with_key("us-east-1", &user_key)
        .describe_trails()
        .send()
        .await
        .expect("user key after restart");
    east.delete_trail()
        .name("plain")
        .send()
        .await
        .expect("delete after restart");

    // A second restart, without --account-id, sees the deletion and the same account.
    server.stop();
    server.restart_without_account_id();
    let east = server.client("us-east-1");
    let names: Vec<_> = east
        .list_trails()
        .send()
        .await
        .expect("list")
        .trails()
        .iter()
        .filter_map(|t| t.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["global"]);
    let trail = east
        .get_trail()
        .name("global")
        .send()
        .await
        .expect("get")
        .trail
        .expect("trail");
    assert_eq!(
        trail.trail_arn(),
        Some(format!("arn:aws:cloudtrail:eu-west-1:{ACCOUNT_ID}:trail/global").as_str()),
        "the account id comes from the data dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_another_account_id_is_refused() {
    let mut server = TestServer::start();
    server.stop();
    let out = std::process::Command::new(common::opentrail_bin())
        .args([
            "serve",
            "--data-dir",
            server.data_dir_str(),
            "--listen",
            "127.0.0.1:0",
            "--account-id",
            "999988887777",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run opentrail serve");
    assert!(
        !out.status.success(),
        "a data dir keeps its account id; serve must refuse another one"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("999988887777"),
        "the error names the rejected account: {stderr}"
    );
    server.restart();
    server
        .client("us-east-1")
        .describe_trails()
        .send()
        .await
        .expect("the right account still starts");
}

/// What one writer learned from the server: acknowledged writes, and the one that was
/// in flight when the server died (it may or may not have been applied).
#[derive(Debug, Default)]
struct WriterLog {
    created: Vec<String>,
    /// trail → (last acknowledged prefix, prefix sent but not acknowledged)
    prefixes: BTreeMap<String, (Option<String>, Option<String>)>,
    tags: BTreeMap<String, BTreeSet<String>>,
    errors: Vec<String>,
}

const WRITER_REGIONS: [&str; 8] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-northeast-1",
];
const TRAILS_PER_WRITER: usize = 5;
const TAGS_PER_TRAIL: usize = 40;
/// Acknowledged writes before the server is killed (a debug build does ~1,000/s).
const KILL_AFTER_ACKS: usize = 400;

/// Creates trails in its own region and keeps updating and tagging them until a call fails.
async fn writer(
    client: Client,
    writer: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    log: Arc<Mutex<WriterLog>>,
) {
    let mut step = 0usize;
    let mut trails: Vec<String> = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        step += 1;
        if trails.len() < TRAILS_PER_WRITER && step % 3 == 1 {
            let name = format!("w{writer}-t{}", trails.len());
            match client
                .create_trail()
                .name(&name)
                .s3_bucket_name(BUCKET)
                .send()
                .await
            {
                Ok(_) => {
                    log.lock().unwrap().created.push(name.clone());
                    trails.push(name);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    log.lock()
                        .unwrap()
                        .errors
                        .push(format!("create {name}: {e:?}"));
                    return;
                }
            }
            continue;
        }
        if trails.is_empty() {
            continue;
        }
        let trail = trails[step % trails.len()].clone();
        if step % 4 < 2 {
            let prefix = format!("p{step}");
            log.lock()
                .unwrap()
                .prefixes
                .entry(trail.clone())
                .or_default()
                .1 = Some(prefix.clone());
            match client
                .update_trail()
                .name(&trail)
                .s3_key_prefix(&prefix)
                .send()
                .await
            {
                Ok(_) => {
                    log.lock()
                        .unwrap()
                        .prefixes
                        .insert(trail, (Some(prefix), None));
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    log.lock()
                        .unwrap()
                        .errors
                        .push(format!("update {trail}: {e:?}"));
                    return;
                }
            }
        } else {
            let count = log
                .lock()
                .unwrap()
                .tags
                .get(&trail)
                .map_or(0, BTreeSet::len);
            if count >= TAGS_PER_TRAIL {
                continue;
            }
            let key = format!("k{step}");
            let arn = trail_arn(WRITER_REGIONS[writer], &trail);
            match client
                .add_tags()
                .resource_id(&arn)
                .tags_list(tag(&key, "v"))
                .send()
                .await
            {
                Ok(_) => {
                    log.lock()
                        .unwrap()
                        .tags
                        .entry(trail)
                        .or_default()
                        .insert(key);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    log.lock()
                        .unwrap()
                        .errors
                        .push(format!("tag {trail}: {e:?}"));
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_write_burst_loses_no_acknowledged_write() {
    let mut server = TestServer::start();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let mut logs = Vec::new();
    // One writer per region, so each stays within the 5-trail limit of its region.
    for (i, region) in WRITER_REGIONS.iter().enumerate() {
        let log = Arc::new(Mutex::new(WriterLog::default()));
        logs.push(log.clone());
        tasks.push(tokio::spawn(writer(
            server.client(region),
            i,
            stop.clone(),
            acked.clone(),
            log,
        )));
    }

    // Let the burst get going, then kill the server while requests are in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::Relaxed) < KILL_AFTER_ACKS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let acked_at_kill = acked.load(Ordering::Relaxed);
    assert!(
        acked_at_kill >= KILL_AFTER_ACKS,
        "the burst was too slow to test anything: {acked_at_kill} writes in 120s"
    );
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("writer finishes after the kill")
            .expect("writer task");
    }
    let failed_writers = logs
        .iter()
        .filter(|l| !l.lock().unwrap().errors.is_empty())
        .count();
    eprintln!("{acked_at_kill} writes acknowledged before kill -9; {failed_writers} writers saw a failed call");

    server.restart();
    let mut checked_trails = 0;
    let mut checked_tags = 0;
    for (i, region) in WRITER_REGIONS.iter().enumerate() {
        let client = server.client(region);
        // The writers are done: take their logs out of the mutexes.
        let log = std::mem::take(&mut *logs[i].lock().unwrap());
        // Errors before the kill would mean the burst itself was broken.
        for error in &log.errors {
            assert!(
                !error.contains("ServiceError"),
                "writer {i} got a service error (not a connection failure) during the burst: {error}"
            );
        }
        let listed: BTreeSet<String> = client
            .describe_trails()
            .include_shadow_trails(false)
            .send()
            .await
            .expect("describe trails after kill -9")
            .trail_list()
            .iter()
            .filter_map(|t| t.name().map(str::to_owned))
            .collect();
        for name in &log.created {
            assert!(
                listed.contains(name),
                "acknowledged CreateTrail {name} in {region} lost after kill -9; have {listed:?}"
            );
            checked_trails += 1;
        }
        for trail in &log.created {
            // The last acknowledged prefix, or the one in flight at the kill.
            let (acked_prefix, in_flight) = log.prefixes.get(trail).cloned().unwrap_or_default();
            let got = client
                .get_trail()
                .name(trail)
                .send()
                .await
                .expect("get trail")
                .trail
                .expect("trail");
            let prefix = got.s3_key_prefix().map(str::to_owned);
            assert!(
                prefix == acked_prefix || (in_flight.is_some() && prefix == in_flight),
                "trail {trail}: S3KeyPrefix {prefix:?} is neither the last acknowledged {acked_prefix:?} nor the in-flight {in_flight:?}"
            );
        }
        for (trail, keys) in &log.tags {
            let listed = client
                .list_tags()
                .resource_id_list(trail_arn(region, trail))
                .send()
                .await
                .expect("list tags after kill -9");
            let present: BTreeSet<String> = listed.resource_tag_list()[0]
                .tags_list()
                .iter()
                .map(|t| t.key().to_owned())
                .collect();
            let lost: Vec<_> = keys.difference(&present).collect();
            assert!(
                lost.is_empty(),
                "trail {trail}: acknowledged tags {lost:?} lost after kill -9"
            );
            checked_tags += keys.len();
        }
    }
    assert!(
        checked_trails > 0 && checked_tags > 0,
        "nothing was checked"
    );
    eprintln!("verified {checked_trails} trails and {checked_tags} tags after restart");

    // The store is healthy: it takes writes and survives a clean restart.
    let client = server.client("sa-east-1");
    create_trail(&client, "after-crash").await;
    server.stop();
    server.restart();
    server
        .client("sa-east-1")
        .get_trail()
        .name("after-crash")
        .send()
        .await
        .expect("write after crash recovery kept");
}
