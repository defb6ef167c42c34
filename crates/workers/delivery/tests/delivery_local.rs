//! The worker against a real event log and a `LocalStore`: where events land, what the
//! files hold, cadence, outages and restarts.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{advanced_selectors, basic_selectors, trail, Ev, Harness, ACCOUNT};
use opentrail_delivery::log_file::gunzip_single_member;
use opentrail_delivery::DeliveryOutcome;
use opentrail_model::{write_log_file, EventRecord};
use serde_json::json;

/// `[prefix/]AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16>.json.gz`
/// split into (prefix, region, time part), checking every fixed part.
fn parse_log_key(key: &str) -> (Option<String>, String, String) {
    let at = key.find("AWSLogs/").expect("AWSLogs/ in key");
    let prefix = (at > 0).then(|| key[..at - 1].to_owned());
    let parts: Vec<&str> = key[at..].split('/').collect();
    assert_eq!(parts.len(), 8, "{key}");
    assert_eq!(parts[1], ACCOUNT);
    assert_eq!(parts[2], "CloudTrail");
    let region = parts[3];
    let name = parts[7];
    let name_parts: Vec<&str> = name.trim_end_matches(".json.gz").split('_').collect();
    assert!(name.ends_with(".json.gz"), "{key}");
    assert_eq!(name_parts.len(), 5, "{key}");
    assert_eq!(name_parts[0], ACCOUNT);
    assert_eq!(name_parts[1], "CloudTrail");
    assert_eq!(name_parts[2], region);
    let time = name_parts[3];
    assert_eq!(time.len(), 14, "YYYYMMDDTHHmmZ in {key}");
    assert_eq!(
        format!("{}/{}/{}", &time[..4], &time[4..6], &time[6..8]),
        parts[4..7].join("/")
    );
    assert_eq!(name_parts[4].len(), 16);
    assert!(name_parts[4].bytes().all(|b| b.is_ascii_alphanumeric()));
    (prefix, region.to_owned(), time.to_owned())
}

#[tokio::test]
async fn events_land_in_the_right_keys_and_only_there() {
    let h = Harness::local().await;
    h.store.create_bucket("other-bucket").await.unwrap();

    let home_us = trail("home-us", "us-east-1");
    let mut everywhere = trail("everywhere", "eu-west-1");
    everywhere.is_multi_region = true;
    everywhere.include_global_service_events = false;
    everywhere.s3_bucket = "other-bucket".to_owned();
    everywhere.s3_key_prefix = Some("team/audit".to_owned());
    everywhere.selectors =
        basic_selectors(json!([{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true}]));
    let mut s3_data = trail("s3-data", "eu-west-1");
    s3_data.s3_key_prefix = Some("data".to_owned());
    s3_data.selectors = advanced_selectors(json!([{
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}
        ]
    }]));
    h.directory.set(vec![home_us, everywhere, s3_data]);

    let events = vec![
        Ev::new("us-write", "us-east-1", "ec2.amazonaws.com", "RunInstances"),
        Ev::new(
            "us-read",
            "us-east-1",
            "ec2.amazonaws.com",
            "DescribeInstances",
        ),
        Ev::new("eu-write", "eu-west-1", "ec2.amazonaws.com", "RunInstances"),
        Ev::new(
            "ap-write",
            "ap-southeast-2",
            "ec2.amazonaws.com",
            "TerminateInstances",
        ),
        Ev::new("iam-write", "us-east-1", "iam.amazonaws.com", "CreateUser"),
        Ev::new("eu-data", "eu-west-1", "s3.amazonaws.com", "PutObject")
            .data("AWS::S3::Object", "arn:aws:s3:::b/k"),
        Ev::new("us-data", "us-east-1", "s3.amazonaws.com", "GetObject")
            .data("AWS::S3::Object", "arn:aws:s3:::b/k"),
        Ev::new(
            "other-account",
            "eu-west-1",
            "ec2.amazonaws.com",
            "RunInstances",
        )
        .account("210987654321"),
    ];
    h.append(&events).await;

    let mut worker = h.worker().await;
    let report = worker.step(None).await.unwrap();
    assert_eq!(report.records_read, events.len());
    assert_eq!(report.log_files_written, 0, "not due before the interval");
    h.advance(60);
    let report = worker.step(None).await.unwrap();
    assert_eq!(report.committed_offset, events.len() as u64);

    // (bucket, prefix, region) -> event ids, from what is in the buckets.
    let mut landed: BTreeMap<(String, Option<String>, String), BTreeSet<String>> = BTreeMap::new();
    for bucket in ["trail-bucket", "other-bucket"] {
        for (key, ids) in h.delivered_ids(bucket).await {
            let (prefix, region, time) = parse_log_key(&key);
            assert_eq!(time, "20240507T0901Z", "named for the delivery time");
            let lane = landed
                .entry((bucket.to_owned(), prefix, region))
                .or_default();
            for id in ids {
                assert!(lane.insert(id), "no event twice in one lane");
            }
        }
    }
    let lane = |bucket: &str, prefix: Option<&str>, region: &str, ids: &[&str]| {
        (
            (
                bucket.to_owned(),
                prefix.map(str::to_owned),
                region.to_owned(),
            ),
            ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
        )
    };
    let expected: BTreeMap<_, _> = [
        lane(
            "trail-bucket",
            None,
            "us-east-1",
            &["us-write", "us-read", "iam-write"],
        ),
        lane(
            "other-bucket",
            Some("team/audit"),
            "us-east-1",
            &["us-write"],
        ),
        lane(
            "other-bucket",
            Some("team/audit"),
            "eu-west-1",
            &["eu-write"],
        ),
        lane(
            "other-bucket",
            Some("team/audit"),
            "ap-southeast-2",
            &["ap-write"],
        ),
        lane("trail-bucket", Some("data"), "eu-west-1", &["eu-data"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(landed, expected);
}

#[tokio::test]
async fn files_are_single_member_gzip_of_the_original_records() {
    let h = Harness::local().await;
    let mut multi = trail("main", "us-east-1");
    multi.is_multi_region = true;
    h.directory.set(vec![multi]);
    let events: Vec<Ev> = (0..50)
        .map(|i| {
            let region = if i % 3 == 0 { "eu-west-1" } else { "us-east-1" };
            Ev::new(
                format!("ev-{i:03}"),
                region,
                "ec2.amazonaws.com",
                "RunInstances",
            )
            .at(common::t0() + chrono::Duration::seconds(i))
        })
        .collect();
    h.append(&events).await;
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.advance(61);
    worker.step(None).await.unwrap();

    let keys = h.log_file_keys("trail-bucket").await;
    assert_eq!(keys.len(), 2);
    for key in keys {
        let (_, region, _) = parse_log_key(&key);
        let expected: Vec<EventRecord> = events
            .iter()
            .filter(|e| e.region == region)
            .map(|e| EventRecord::from_json(&e.json()).unwrap())
            .collect();
        let body = h
            .store
            .get_object("trail-bucket", &key)
            .await
            .unwrap()
            .unwrap()
            .body;
        let inflated = gunzip_single_member(&body).expect("one gzip member, nothing after it");
        assert_eq!(inflated, write_log_file(&expected), "{key}");
        assert!(inflated.ends_with(b"]}\n") && !inflated[..inflated.len() - 1].contains(&b'\n'));
        // An independent inflater agrees.
        let mut decoder = flate2::read::MultiGzDecoder::new(&body[..]);
        let mut again = Vec::new();
        std::io::Read::read_to_end(&mut decoder, &mut again).unwrap();
        assert_eq!(again, inflated);
    }
}

#[tokio::test]
async fn cadence_interval_and_size_bound() {
    let h = Harness::local().await;
    h.directory.set(vec![trail("main", "us-east-1")]);
    let mut config = h.config();
    config.delivery_interval = Duration::from_secs(1);
    let one = Ev::new("e000", "us-east-1", "ec2.amazonaws.com", "RunInstances")
        .json()
        .len();
    config.max_file_bytes = 15 + 10 * (one + 1);
    let mut worker = h.worker_with(config).await;

    // Size bound: 35 events make three full files at once and one open file.
    let events: Vec<Ev> = (0..35)
        .map(|i| {
            Ev::new(
                format!("e{i:03}"),
                "us-east-1",
                "ec2.amazonaws.com",
                "RunInstances",
            )
        })
        .collect();
    h.append(&events).await;
    let report = worker.step(None).await.unwrap();
    assert_eq!(report.log_files_written, 3);
    assert_eq!(worker.waiting_events(), 5);
    assert_eq!(
        report.committed_offset, 30,
        "the cursor stops at the first undelivered event"
    );

    // Interval: one second later the rest goes.
    h.advance(1);
    let report = worker.step(None).await.unwrap();
    assert_eq!(report.log_files_written, 1);
    assert_eq!(report.committed_offset, 35);
    let delivered: Vec<usize> = h
        .delivered_ids("trail-bucket")
        .await
        .iter()
        .map(|(_, ids)| ids.len())
        .collect();
    assert_eq!(delivered.iter().sum::<usize>(), 35);
    assert!(delivered.iter().all(|&n| n <= 10));

    // Nothing to deliver: no empty files.
    h.advance(600);
    assert_eq!(worker.step(None).await.unwrap().log_files_written, 0);
}

#[tokio::test]
async fn outage_then_recovery_loses_nothing_and_does_not_block_other_trails() {
    let h = Harness::local().await;
    let mut broken = trail("broken", "us-east-1");
    broken.s3_bucket = "late-bucket".to_owned();
    let healthy = trail("healthy", "us-east-1");
    h.directory.set(vec![broken.clone(), healthy.clone()]);

    let first: Vec<Ev> = (0..20)
        .map(|i| {
            Ev::new(
                format!("a{i:03}"),
                "us-east-1",
                "ec2.amazonaws.com",
                "RunInstances",
            )
        })
        .collect();
    h.append(&first).await;
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.advance(60);
    let report = worker.step(None).await.unwrap();
    assert_eq!(report.log_files_written, 1, "the healthy trail delivers");
    assert_eq!(
        report.log_files_spooled, 1,
        "the broken trail's file waits on disk"
    );
    assert_eq!(
        report.committed_offset, 20,
        "spooled events are durable: the cursor moves on"
    );
    let broken_outcomes: Vec<DeliveryOutcome> = h
        .directory
        .outcomes()
        .into_iter()
        .filter(|(arn, _)| *arn == broken.arn())
        .map(|(_, o)| o)
        .collect();
    assert!(matches!(
        broken_outcomes.last(),
        Some(DeliveryOutcome::LogFileFailed { error, .. }) if error == "NoSuchBucket"
    ));

    // More events while the bucket is missing; a restart in between.
    let second: Vec<Ev> = (0..20)
        .map(|i| {
            Ev::new(
                format!("b{i:03}"),
                "us-east-1",
                "ec2.amazonaws.com",
                "RunInstances",
            )
        })
        .collect();
    h.append(&second).await;
    h.advance(5);
    worker.step(None).await.unwrap();
    drop(worker);
    let mut worker = h.worker().await;
    assert_eq!(worker.spooled_files(), 1, "the spool survives a restart");
    worker.step(None).await.unwrap();
    h.advance(60);
    let report = worker.step(None).await.unwrap();
    assert_eq!(report.log_files_written, 1, "healthy trail");
    assert_eq!(
        report.log_files_spooled, 1,
        "still backing off: straight to the spool"
    );

    // The bucket appears; after the backoff everything is delivered, in order.
    h.store.create_bucket("late-bucket").await.unwrap();
    h.advance(60);
    worker.step(None).await.unwrap();
    assert_eq!(worker.spooled_files(), 0);
    let last = h
        .directory
        .outcomes()
        .into_iter()
        .rev()
        .find(|(arn, _)| *arn == broken.arn())
        .map(|(_, o)| o);
    assert!(
        matches!(last, Some(DeliveryOutcome::LogFileDelivered { .. })),
        "{last:?}"
    );

    for bucket in ["late-bucket", "trail-bucket"] {
        let ids: Vec<String> = h
            .delivered_ids(bucket)
            .await
            .into_iter()
            .flat_map(|(_, ids)| ids)
            .collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), 40, "{bucket}: every event once");
        assert_eq!(unique.len(), 40);
    }
}

#[tokio::test]
async fn a_crash_before_delivery_redelivers_and_a_clean_restart_does_not_duplicate() {
    let h = Harness::local().await;
    h.directory.set(vec![trail("main", "us-east-1")]);
    let events: Vec<Ev> = (0..10)
        .map(|i| {
            Ev::new(
                format!("c{i:03}"),
                "us-east-1",
                "ec2.amazonaws.com",
                "RunInstances",
            )
        })
        .collect();
    h.append(&events).await;

    // Read and batched, then "crash": nothing was written, the cursor did not move.
    let mut worker = h.worker().await;
    assert_eq!(worker.step(None).await.unwrap().committed_offset, 0);
    drop(worker);
    assert!(h.log_file_keys("trail-bucket").await.is_empty());

    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.advance(60);
    assert_eq!(worker.step(None).await.unwrap().committed_offset, 10);
    drop(worker);

    let mut worker = h.worker().await;
    h.advance(600);
    worker.step(None).await.unwrap();
    let delivered = h.delivered_ids("trail-bucket").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].1.len(),
        10,
        "delivered once, not again after the restart"
    );
}

#[tokio::test]
async fn stopping_a_trail_flushes_its_open_file_and_ends_delivery() {
    let h = Harness::local().await;
    let mut main = trail("main", "us-east-1");
    h.directory.set(vec![main.clone()]);
    h.append(&[Ev::new(
        "before-stop",
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();

    main.is_logging = false;
    h.directory.set(vec![main.clone()]);
    h.advance(1);
    let report = worker.step(None).await.unwrap();
    assert_eq!(
        report.log_files_written, 1,
        "written at once, not after the interval"
    );

    h.append(&[Ev::new(
        "after-stop",
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    h.advance(600);
    worker.step(None).await.unwrap();
    let ids: Vec<String> = h
        .delivered_ids("trail-bucket")
        .await
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .collect();
    assert_eq!(ids, ["before-stop"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_delivers_until_shut_down() {
    let h = Harness::local().await;
    h.directory.set(vec![trail("main", "us-east-1")]);
    let mut config = h.config();
    config.delivery_interval = Duration::from_secs(1);
    config.idle_wait = Duration::from_millis(20);
    let worker = h.worker_with(config).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));

    h.append(&[Ev::new(
        "live",
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h.log_file_keys("trail-bucket").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered in time"
        );
        h.advance(1);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(h.log.cursor("trail-delivery").unwrap(), Some(1));
}

/// StartLogging fixes a trail's first offset before the trail is saved; the worker may
/// read records after that offset before it lists the trail (or skip them while no trail
/// logs). They still reach the trail, and the records before the offset do not.
#[tokio::test]
async fn a_trail_gets_the_records_read_before_it_was_listed() {
    let h = Harness::local().await;
    let mut worker = h.worker().await;
    let ev = |id: &str| Ev::new(id, "us-east-1", "ec2.amazonaws.com", "RunInstances");
    h.append(&[ev("before")]).await;
    worker.step(None).await.unwrap();
    h.append(&[ev("after-1"), ev("after-2")]).await;
    worker.step(None).await.unwrap();
    assert_eq!(worker.read_position(), 3);

    let mut main = trail("main", "us-east-1");
    main.logging_since_offset = Some(1);
    h.directory.set(vec![main]);
    h.append(&[ev("after-3")]).await;
    worker.step(None).await.unwrap();
    h.advance(61);
    worker.step(None).await.unwrap();
    let delivered: Vec<String> = h
        .delivered_ids("trail-bucket")
        .await
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .collect();
    assert_eq!(delivered, ["after-1", "after-2", "after-3"]);
    assert_eq!(worker.committed_offset(), 4);
}

/// Each cursor commit is a durable metadata transaction: a step commits at most once per
/// `cursor_commit_interval`; `flush_all` and the end of `run` commit what is left.
#[tokio::test]
async fn cursor_commits_are_throttled_and_a_flush_commits_what_is_left() {
    let h = Harness::local().await;
    let mut config = h.config();
    config.cursor_commit_interval = Duration::from_secs(3600);
    let mut worker = h.worker_with(config.clone()).await;
    let ev = |id: &str| Ev::new(id, "us-east-1", "ec2.amazonaws.com", "RunInstances");
    // No trail logs: every record read is passed at once.
    h.append(&[ev("a")]).await;
    assert_eq!(worker.step(None).await.unwrap().committed_offset, 1);
    h.append(&[ev("b"), ev("c")]).await;
    worker.step(None).await.unwrap();
    assert_eq!(worker.read_position(), 3);
    assert_eq!(worker.committed_offset(), 1, "within the interval");
    assert_eq!(h.log.cursor("trail-delivery").unwrap(), Some(1));
    worker.flush_all().await.unwrap();
    assert_eq!(h.log.cursor("trail-delivery").unwrap(), Some(3));

    h.append(&[ev("d")]).await;
    let mut worker = h.worker_with(config).await;
    worker.step(None).await.unwrap();
    h.append(&[ev("e")]).await;
    worker.step(None).await.unwrap();
    assert_eq!(h.log.cursor("trail-delivery").unwrap(), Some(4));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    stop.send(true).unwrap();
    worker.run(stopped).await.unwrap();
    assert_eq!(h.log.cursor("trail-delivery").unwrap(), Some(5));
}
