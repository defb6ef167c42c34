//! Digest chains across hours with a test clock, checked by the validation engine:
//! links, signatures, empty hours, stop/start gaps, key rotation, and tampering.

mod common;

use bytes::Bytes;
use chrono::Duration;
use common::{region, t0, trail, Ev, Harness, TEST_KEYS};
use opentrail_delivery::digest::DigestFile;
use opentrail_delivery::log_file::{gunzip_single_member, gzip_single_member, sha256_hex};
use opentrail_delivery::signing::DigestSigningKey;
use opentrail_delivery::validate::{
    validate_logs, DigestStatus, LogFileStatus, ValidationReport, ValidationRequest,
};
use opentrail_delivery::{DeliveryOutcome, TrailTarget};
use opentrail_model::AccountId;

fn validating(name: &str) -> TrailTarget {
    let mut target = trail(name, "us-east-1");
    target.log_file_validation = true;
    target
}

fn request(h: &Harness, target: &TrailTarget, region_name: &str, hours: i64) -> ValidationRequest {
    let start = t0() - Duration::minutes(5);
    let end = t0() + Duration::hours(hours);
    ValidationRequest {
        bucket: target.s3_bucket.clone(),
        prefix: target.s3_key_prefix.clone(),
        account: AccountId::parse(common::ACCOUNT).unwrap(),
        trail: target.arn(),
        region: region(region_name),
        start,
        end,
        public_keys: h
            .keys
            .public_keys(&region(region_name), start, end + Duration::hours(2)),
    }
}

async fn validate(
    h: &Harness,
    target: &TrailTarget,
    region_name: &str,
    hours: i64,
) -> ValidationReport {
    validate_logs(h.store.as_ref(), &request(h, target, region_name, hours))
        .await
        .unwrap()
}

async fn digest(
    h: &Harness,
    bucket: &str,
    key: &str,
) -> (DigestFile, Vec<u8>, Vec<(String, String)>) {
    let object = h.store.get_object(bucket, key).await.unwrap().unwrap();
    let json = gunzip_single_member(&object.body).unwrap();
    (
        serde_json::from_slice(&json).unwrap(),
        json,
        object.metadata,
    )
}

/// Three hours of a validating trail: events in hours 1 and 3, none in hour 2.
async fn three_hours(h: &Harness, target: &TrailTarget) {
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    for hour in 0..3 {
        if hour != 1 {
            let events: Vec<Ev> = (0..5)
                .map(|i| {
                    Ev::new(
                        format!("h{hour}-{i}"),
                        "us-east-1",
                        "ec2.amazonaws.com",
                        "RunInstances",
                    )
                    .at(t0() + Duration::hours(hour) + Duration::minutes(i))
                })
                .collect();
            h.append(&events).await;
            worker.step(None).await.unwrap();
            h.advance(60);
            worker.step(None).await.unwrap();
            h.advance(60 * 59);
        } else {
            h.advance(3600);
        }
        worker.step(None).await.unwrap();
    }
}

#[tokio::test]
async fn hourly_digests_chain_and_validate() {
    let h = Harness::local().await;
    let target = validating("main");
    three_hours(&h, &target).await;

    let keys = h.digest_keys("trail-bucket").await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(
        keys[0],
        "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/05/07/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20240507T100000Z.json.gz"
    );
    let (first, first_json, first_meta) = digest(&h, "trail-bucket", &keys[0]).await;
    let (second, _, second_meta) = digest(&h, "trail-bucket", &keys[1]).await;
    let (third, _, _) = digest(&h, "trail-bucket", &keys[2]).await;
    assert_eq!(first.digest_start_time, "2024-05-07T09:00:00Z");
    assert_eq!(first.digest_end_time, "2024-05-07T10:00:00Z");
    assert_eq!(first.previous_digest_signature, None);
    assert_eq!(first.log_files.len(), 1);
    assert_eq!(
        first.oldest_event_time.as_deref(),
        Some("2024-05-07T09:00:00Z")
    );
    assert_eq!(
        first.newest_event_time.as_deref(),
        Some("2024-05-07T09:04:00Z")
    );
    let log = h
        .store
        .get_object("trail-bucket", &first.log_files[0].s3_object)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.log_files[0].hash_value,
        sha256_hex(&gunzip_single_member(&log.body).unwrap())
    );

    assert!(
        second.log_files.is_empty(),
        "an hour without log files still has a digest"
    );
    assert_eq!(second.oldest_event_time, None);
    assert_eq!(second.digest_start_time, first.digest_end_time);
    assert_eq!(
        second.previous_digest_s3_object.as_deref(),
        Some(keys[0].as_str())
    );
    assert_eq!(
        second.previous_digest_hash_value,
        Some(sha256_hex(&first_json))
    );
    assert_eq!(
        second.previous_digest_hash_algorithm.as_deref(),
        Some("SHA-256")
    );
    let signature = |meta: &[(String, String)]| {
        meta.iter()
            .find(|(n, _)| n == "signature")
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(
        second.previous_digest_signature,
        Some(signature(&first_meta))
    );
    assert_eq!(
        third.previous_digest_signature,
        Some(signature(&second_meta))
    );
    assert!(first_meta.contains(&("signature-algorithm".to_owned(), "SHA256withRSA".to_owned())));
    assert_eq!(
        first.digest_public_key_fingerprint,
        h.keys.public_keys(&region("us-east-1"), t0(), t0())[0].fingerprint
    );

    let report = validate(&h, &target, "us-east-1", 3).await;
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.valid_digests(), 3);
    assert_eq!(report.valid_log_files(), 2);
    assert!(matches!(
        h.directory.last_outcome(),
        Some(DeliveryOutcome::DigestDelivered { .. })
    ));
}

#[tokio::test]
async fn tampering_is_reported_per_file() {
    let h = Harness::local().await;
    let target = validating("main");
    three_hours(&h, &target).await;
    let digests = h.digest_keys("trail-bucket").await;
    let logs = h.log_file_keys("trail-bucket").await;
    let store = &h.store;

    // A log file whose content changed.
    let original = store
        .get_object("trail-bucket", &logs[0])
        .await
        .unwrap()
        .unwrap();
    let mut content = gunzip_single_member(&original.body).unwrap();
    let at = content.len() / 2;
    content[at] ^= 0x20;
    store
        .put_object(
            "trail-bucket",
            &logs[0],
            Bytes::from(gzip_single_member(&content)),
            &[],
        )
        .await
        .unwrap();
    // A log file with a second gzip member appended.
    let second = store
        .get_object("trail-bucket", &logs[1])
        .await
        .unwrap()
        .unwrap();
    let mut two_members = second.body.to_vec();
    two_members.extend(gzip_single_member(b"{}"));
    store
        .put_object("trail-bucket", &logs[1], Bytes::from(two_members), &[])
        .await
        .unwrap();
    let report = validate(&h, &target, "us-east-1", 3).await;
    assert!(!report.is_valid());
    let status = |key: &str| {
        report
            .log_files
            .iter()
            .find(|l| l.key == key)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(status(&logs[0]), LogFileStatus::HashMismatch);
    assert_eq!(status(&logs[1]), LogFileStatus::TrailingData);
    assert_eq!(report.valid_digests(), 3);

    // A deleted log file.
    store.delete_object("trail-bucket", &logs[0]).await.unwrap();
    let report = validate(&h, &target, "us-east-1", 3).await;
    assert_eq!(
        report
            .log_files
            .iter()
            .find(|l| l.key == logs[0])
            .unwrap()
            .status,
        LogFileStatus::NotFound
    );

    // A digest whose content changed (signature no longer matches).
    let middle = store
        .get_object("trail-bucket", &digests[1])
        .await
        .unwrap()
        .unwrap();
    let json = String::from_utf8(gunzip_single_member(&middle.body).unwrap()).unwrap();
    let forged = json.replace("\"logFiles\":[]", "\"logFiles\":[] ");
    store
        .put_object(
            "trail-bucket",
            &digests[1],
            Bytes::from(gzip_single_member(forged.as_bytes())),
            &middle.metadata,
        )
        .await
        .unwrap();
    let report = validate(&h, &target, "us-east-1", 3).await;
    assert_eq!(report.digests[1].status, DigestStatus::SignatureFailed);
    assert_eq!(report.digests[0].status, DigestStatus::Valid);
    assert_eq!(
        report.digests[2].status,
        DigestStatus::Valid,
        "the walk goes on past a bad digest"
    );

    // A deleted digest.
    store
        .delete_object("trail-bucket", &digests[1])
        .await
        .unwrap();
    let report = validate(&h, &target, "us-east-1", 3).await;
    assert_eq!(report.digests[1].status, DigestStatus::NotFound);

    // A digest copied elsewhere is reported as moved.
    let newest = store
        .get_object("trail-bucket", &digests[2])
        .await
        .unwrap()
        .unwrap();
    let moved_key = digests[2].replace("T120000Z", "T120500Z");
    store
        .put_object(
            "trail-bucket",
            &moved_key,
            newest.body.clone(),
            &newest.metadata,
        )
        .await
        .unwrap();
    let report = validate(&h, &target, "us-east-1", 3).await;
    assert_eq!(report.digests[0].key, moved_key);
    assert_eq!(report.digests[0].status, DigestStatus::Moved);
}

#[tokio::test]
async fn no_digests_is_never_success() {
    let h = Harness::local().await;
    let target = validating("main");
    let report = validate(&h, &target, "us-east-1", 3).await;
    assert!(report.digests.is_empty());
    assert!(!report.is_valid());
}

#[tokio::test]
async fn stop_writes_a_final_digest_and_restart_starts_a_new_chain() {
    let h = Harness::local().await;
    let mut target = validating("main");
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.append(&[Ev::new(
        "one",
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    worker.step(None).await.unwrap();
    h.advance(20 * 60);

    target.is_logging = false;
    h.directory.set(vec![target.clone()]);
    worker.step(None).await.unwrap();
    let digests = h.digest_keys("trail-bucket").await;
    assert_eq!(digests.len(), 1, "final digest on stop");
    let (final_digest, _, _) = digest(&h, "trail-bucket", &digests[0]).await;
    assert_eq!(final_digest.digest_end_time, "2024-05-07T09:20:00Z");
    assert_eq!(
        final_digest.log_files.len(),
        1,
        "the open file was written and digested"
    );

    h.advance(3 * 3600);
    worker.step(None).await.unwrap();
    assert_eq!(
        h.digest_keys("trail-bucket").await.len(),
        1,
        "no digests while stopped"
    );

    target.is_logging = true;
    target.logging_since = Some(t0() + Duration::hours(3));
    h.directory.set(vec![target.clone()]);
    worker.step(None).await.unwrap();
    h.advance(3600);
    worker.step(None).await.unwrap();
    let digests = h.digest_keys("trail-bucket").await;
    assert_eq!(digests.len(), 2);
    let (restarted, _, _) = digest(&h, "trail-bucket", &digests[1]).await;
    assert_eq!(restarted.previous_digest_s3_object, None, "a new chain");

    let report = validate(&h, &target, "us-east-1", 5).await;
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.valid_digests(), 2);
    assert_eq!(report.gaps.len(), 1);
}

#[tokio::test]
async fn chain_survives_a_restart_and_catches_up_missed_hours() {
    let h = Harness::local().await;
    let target = validating("main");
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.append(&[Ev::new(
        "one",
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    worker.step(None).await.unwrap();
    h.advance(60);
    worker.step(None).await.unwrap();
    drop(worker);

    // Down for 3.5 hours: each missed hour gets its digest, the file is in the first.
    h.advance(3 * 3600 + 1800);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    let digests = h.digest_keys("trail-bucket").await;
    assert_eq!(digests.len(), 3);
    let (first, _, _) = digest(&h, "trail-bucket", &digests[0]).await;
    assert_eq!(first.log_files.len(), 1);
    let report = validate(&h, &target, "us-east-1", 4).await;
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.valid_digests(), 3);
}

#[tokio::test]
async fn multi_region_trails_get_a_chain_per_region_and_rotated_keys_validate() {
    let h = Harness::local().await;
    let mut target = validating("everywhere");
    target.is_multi_region = true;
    target.s3_key_prefix = Some("org/logs".to_owned());
    // A newer eu-west-1 key takes over after the first hour.
    let rotated = DigestSigningKey::from_pkcs1_pem(TEST_KEYS[2]).unwrap();
    let rotated_fingerprint = rotated.fingerprint().to_owned();
    h.keys
        .import_key(&region("eu-west-1"), t0() + Duration::minutes(90), rotated)
        .unwrap();
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.append(&[
        Ev::new("us", "us-east-1", "ec2.amazonaws.com", "RunInstances"),
        Ev::new("eu", "eu-west-1", "ec2.amazonaws.com", "RunInstances"),
    ])
    .await;
    worker.step(None).await.unwrap();
    h.advance(60);
    worker.step(None).await.unwrap();
    h.advance(2 * 3600);
    worker.step(None).await.unwrap();

    let digests = h.digest_keys("trail-bucket").await;
    let eu: Vec<&String> = digests
        .iter()
        .filter(|k| k.contains("/eu-west-1/"))
        .collect();
    let us: Vec<&String> = digests
        .iter()
        .filter(|k| k.contains("/us-east-1/"))
        .collect();
    assert_eq!((us.len(), eu.len()), (2, 2), "{digests:?}");
    assert!(eu[0].starts_with("org/logs/AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/"));
    assert!(eu[0].contains("_CloudTrail-Digest_eu-west-1_everywhere_us-east-1_"));
    let (eu_second, _, _) = digest(&h, "trail-bucket", eu[1]).await;
    assert_eq!(eu_second.digest_public_key_fingerprint, rotated_fingerprint);

    for region_name in ["us-east-1", "eu-west-1"] {
        let report = validate(&h, &target, region_name, 3).await;
        assert!(report.is_valid(), "{region_name}: {report:#?}");
        assert_eq!(report.valid_digests(), 2);
        assert_eq!(report.valid_log_files(), 1);
    }
    // Without the rotated key, the newer eu digest cannot be checked.
    let mut old_keys_only = request(&h, &target, "eu-west-1", 3);
    old_keys_only
        .public_keys
        .retain(|k| k.fingerprint != rotated_fingerprint);
    let report = validate_logs(h.store.as_ref(), &old_keys_only)
        .await
        .unwrap();
    assert!(matches!(
        report.digests[0].status,
        DigestStatus::PublicKeyNotFound { .. }
    ));
}

#[tokio::test]
async fn digest_write_failures_are_retried_and_reported() {
    let h = Harness::local().await;
    let mut target = validating("main");
    target.s3_bucket = "digest-bucket".to_owned();
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.advance(3600);
    worker.step(None).await.unwrap();
    assert!(matches!(
        h.directory.last_outcome(),
        Some(DeliveryOutcome::DigestFailed { error, .. }) if error == "NoSuchBucket"
    ));
    drop(worker);
    h.store.create_bucket("digest-bucket").await.unwrap();
    let mut worker = h.worker().await;
    h.advance(3600);
    worker.step(None).await.unwrap();
    assert!(matches!(
        h.directory.last_outcome(),
        Some(DeliveryOutcome::DigestDelivered { .. })
    ));
    assert_eq!(
        h.digest_keys("digest-bucket").await.len(),
        2,
        "the pending digest survived the restart"
    );
    let report = validate(&h, &target, "us-east-1", 3).await;
    assert!(report.is_valid(), "{report:#?}");
}

#[tokio::test]
async fn a_trail_that_becomes_single_region_closes_its_other_chains() {
    let h = Harness::local().await;
    let mut target = validating("main");
    target.is_multi_region = true;
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.append(&[Ev::new(
        "eu",
        "eu-west-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    worker.step(None).await.unwrap();
    h.advance(60);
    worker.step(None).await.unwrap();

    target.is_multi_region = false;
    h.directory.set(vec![target.clone()]);
    h.advance(60);
    worker.step(None).await.unwrap();
    let eu: Vec<String> = h
        .digest_keys("trail-bucket")
        .await
        .into_iter()
        .filter(|k| k.contains("/eu-west-1/"))
        .collect();
    assert_eq!(eu.len(), 1, "a final eu-west-1 digest");
    h.advance(3 * 3600);
    worker.step(None).await.unwrap();
    let keys = h.digest_keys("trail-bucket").await;
    assert_eq!(keys.iter().filter(|k| k.contains("/eu-west-1/")).count(), 1);
    assert_eq!(keys.iter().filter(|k| k.contains("/us-east-1/")).count(), 3);
    assert!(validate(&h, &target, "eu-west-1", 4).await.is_valid());
    assert!(validate(&h, &target, "us-east-1", 4).await.is_valid());
}

#[tokio::test]
async fn quiet_regions_of_a_multi_region_trail_get_empty_chained_digests() {
    let h = Harness::local().await;
    let mut target = validating("everywhere");
    target.is_multi_region = true;
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.append(&[Ev::new(
        "us",
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    worker.step(None).await.unwrap();
    h.advance(60);
    worker.step(None).await.unwrap();
    h.advance(2 * 3600);
    worker.step(None).await.unwrap();

    let digests = h.digest_keys("trail-bucket").await;
    let regions = opentrail_model::AWS_REGIONS;
    assert_eq!(digests.len(), 2 * regions.len(), "{digests:?}");
    for name in regions {
        let of_region: Vec<&String> = digests
            .iter()
            .filter(|k| k.contains(&format!("/CloudTrail-Digest/{name}/")))
            .collect();
        assert_eq!(of_region.len(), 2, "{name}: {digests:?}");
    }
    // A quiet region: two digests of whole hours from the start of logging, no log files,
    // the second linked to the first.
    let quiet: Vec<&String> = digests
        .iter()
        .filter(|k| k.contains("/eu-central-1/"))
        .collect();
    let (first, _, first_meta) = digest(&h, "trail-bucket", quiet[0]).await;
    let (second, _, _) = digest(&h, "trail-bucket", quiet[1]).await;
    assert!(first.log_files.is_empty() && second.log_files.is_empty());
    assert_eq!(first.digest_start_time, "2024-05-07T09:00:00Z");
    assert_eq!(first.previous_digest_signature, None);
    let signature = first_meta
        .iter()
        .find(|(name, _)| name == "signature")
        .map(|(_, value)| value.clone());
    assert_eq!(second.previous_digest_signature, signature);
    assert_eq!(second.digest_start_time, first.digest_end_time);
    for region_name in ["eu-central-1", "us-east-1"] {
        let report = validate(&h, &target, region_name, 3).await;
        assert!(report.is_valid(), "{region_name}: {report:#?}");
        assert_eq!(report.valid_digests(), 2);
        assert!(report.gaps.is_empty());
    }
    // One status update per trail for the whole batch of regions' digests.
    let digest_outcomes = h
        .directory
        .outcomes()
        .into_iter()
        .filter(|(_, o)| matches!(o, DeliveryOutcome::DigestDelivered { .. }))
        .count();
    assert!(
        digest_outcomes < digests.len() / 2,
        "{digest_outcomes} status updates for {} digests",
        digests.len()
    );
}
