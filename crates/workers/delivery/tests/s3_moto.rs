//! Delivery to a real S3-compatible server (moto on loopback), read back with an
//! independent client, and validated by the AWS CLI's own validate-logs code.
//!
//! moto_server comes from `OPENTRAIL_MOTO_SERVER` or `<workspace>/.venv`; without it
//! these tests fail and say how to install it.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Duration;
use common::moto::{free_port, python, store_at, Moto, MotoStore};
use common::{region, t0, trail, Ev, Harness};
use opentrail_delivery::log_file::{gunzip_single_member, gzip_single_member};
use opentrail_delivery::{DeliveryOutcome, TrailTarget};
use opentrail_model::{epoch_seconds, iso8601};
use opentrail_objstore::ObjectStore;

async fn harness_on(moto: &Moto) -> Harness {
    let store: Arc<dyn ObjectStore> = Arc::new(moto.store());
    store.create_bucket("trail-bucket").await.unwrap();
    Harness::with_store(tempfile::tempdir().unwrap(), store)
}

/// What `validate_with_awscli.py` printed and whether it succeeded.
struct CliRun {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs the real `aws cloudtrail validate-logs` for `target` in `region_name` over
/// `[t0 - 5 min, t0 + hours]`, with S3 on moto and DescribeTrails/ListPublicKeys
/// answered by a stand-in exactly as OpenTrail must answer them.
fn awscli_validate(
    moto: &Moto,
    h: &Harness,
    target: &TrailTarget,
    region_name: &str,
    hours: i64,
) -> CliRun {
    let keys_file = h.dir.path().join(format!("public-keys-{region_name}.json"));
    let far = t0() + Duration::days(3650);
    let entries: Vec<serde_json::Value> = h
        .keys
        .public_keys(&region(region_name), t0() - Duration::days(3650), far)
        .iter()
        .map(|key| {
            serde_json::json!({
                "Value": key.value_wire(),
                "ValidityStartTime": epoch_seconds(key.validity_start),
                "ValidityEndTime": epoch_seconds(key.validity_end),
                "Fingerprint": key.fingerprint,
            })
        })
        .collect();
    std::fs::write(&keys_file, serde_json::to_vec(&entries).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_with_awscli.py");
    let mut command = Command::new(python());
    command
        .arg(script)
        .arg("--aws")
        .arg(python().with_file_name("aws"))
        .args(["--trail-arn", &target.arn().to_string()])
        .args(["--region", region_name])
        .args(["--start-time", &iso8601(t0() - Duration::minutes(5))])
        .args(["--end-time", &iso8601(t0() + Duration::hours(hours))])
        .args(["--s3-bucket", &target.s3_bucket])
        .arg("--public-keys")
        .arg(&keys_file)
        .env("AWS_ENDPOINT_URL_S3", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", region_name)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    if let Some(prefix) = &target.s3_key_prefix {
        command.args(["--s3-prefix", prefix]);
    }
    let output = command.output().expect("run validate_with_awscli.py");
    CliRun {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_pass_the_aws_cli_validator_and_tampering_fails_it() {
    let moto = Moto::start_open_on(free_port()).await;
    let h = harness_on(&moto).await;
    let mut target = trail("org-trail", "us-east-1");
    target.is_multi_region = true;
    target.log_file_validation = true;
    target.s3_key_prefix = Some("audit/prod".to_owned());
    h.directory.set(vec![target.clone()]);

    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    // Hour 1: events in two regions; hour 2: none; hour 3: events again.
    for hour in 0..3 {
        if hour != 1 {
            let events: Vec<Ev> = (0..6)
                .map(|i| {
                    let region = if i % 2 == 0 { "us-east-1" } else { "eu-west-1" };
                    Ev::new(
                        format!("h{hour}-{i}"),
                        region,
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
            h.advance(3540);
        } else {
            h.advance(3600);
        }
        worker.step(None).await.unwrap();
    }
    // The eu-west-1 chain started with its first file, a minute after the home chain.
    h.advance(60);
    worker.step(None).await.unwrap();
    assert_eq!(
        worker.stats().digest_failures + worker.stats().log_file_failures,
        0
    );

    for region_name in ["us-east-1", "eu-west-1"] {
        let run = awscli_validate(&moto, &h, &target, region_name, 3);
        assert!(run.success, "{region_name}\n{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("3/3 digest files valid"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("2/2 log files valid"), "{}", run.stdout);
    }

    // A changed log file and a deleted digest: the CLI's verdict turns to failure.
    let logs = h.log_file_keys("trail-bucket").await;
    let us_log = logs.iter().find(|k| k.contains("/us-east-1/")).unwrap();
    let object = h
        .store
        .get_object("trail-bucket", us_log)
        .await
        .unwrap()
        .unwrap();
    let mut content = gunzip_single_member(&object.body).unwrap();
    let at = content.len() / 2;
    content[at] ^= 0x01;
    h.store
        .put_object(
            "trail-bucket",
            us_log,
            Bytes::from(gzip_single_member(&content)),
            &[],
        )
        .await
        .unwrap();
    let run = awscli_validate(&moto, &h, &target, "us-east-1", 3);
    assert!(!run.success);
    assert!(
        run.stderr.contains("INVALID: hash value doesn't match"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("CloudTrail_20131101.DescribeTrails {}"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("CloudTrail_20131101.ListPublicKeys {\"StartTime\""),
        "{}",
        run.stderr
    );

    let eu_digests: Vec<String> = h
        .digest_keys("trail-bucket")
        .await
        .into_iter()
        .filter(|k| k.contains("/eu-west-1/"))
        .collect();
    h.store
        .delete_object("trail-bucket", &eu_digests[1])
        .await
        .unwrap();
    let run = awscli_validate(&moto, &h, &target, "eu-west-1", 3);
    assert!(!run.success);
    assert!(run.stderr.contains("INVALID: not found"), "{}", run.stderr);

    // Our own engine agrees on the same objects.
    let request = opentrail_delivery::validate::ValidationRequest {
        bucket: "trail-bucket".to_owned(),
        prefix: target.s3_key_prefix.clone(),
        account: target.account.clone(),
        trail: target.arn(),
        region: region("us-east-1"),
        start: t0() - Duration::minutes(5),
        end: t0() + Duration::hours(3),
        public_keys: h.keys.public_keys(
            &region("us-east-1"),
            t0() - Duration::minutes(5),
            t0() + Duration::hours(5),
        ),
    };
    let report = opentrail_delivery::validate::validate_logs(h.store.as_ref(), &request)
        .await
        .unwrap();
    assert_eq!(report.valid_digests(), 3);
    assert_eq!(report.valid_log_files(), 1);
    assert!(!report.is_valid());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_on_s3_are_byte_correct_and_in_place() {
    let moto = Moto::start_open_on(free_port()).await;
    let h = harness_on(&moto).await;
    let mut target = trail("main", "eu-west-1");
    target.s3_key_prefix = Some("p".to_owned());
    h.directory.set(vec![target]);
    let events: Vec<Ev> = (0..30)
        .map(|i| {
            Ev::new(
                format!("s{i:02}"),
                if i % 2 == 0 { "eu-west-1" } else { "us-west-2" },
                "ec2.amazonaws.com",
                "RunInstances",
            )
        })
        .collect();
    h.append(&events).await;
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.advance(60);
    worker.step(None).await.unwrap();

    // Read back with a fresh client of its own.
    let reader = moto.store();
    let objects = reader.list_objects("trail-bucket", "").await.unwrap();
    assert_eq!(
        objects.len(),
        1,
        "only the home region of a single-region trail"
    );
    let key = &objects[0].key;
    assert!(key.starts_with("p/AWSLogs/123456789012/CloudTrail/eu-west-1/2024/05/07/123456789012_CloudTrail_eu-west-1_20240507T0901Z_"), "{key}");
    let body = reader
        .get_object("trail-bucket", key)
        .await
        .unwrap()
        .unwrap()
        .body;
    let expected: Vec<opentrail_model::EventRecord> = events
        .iter()
        .filter(|e| e.region == "eu-west-1")
        .map(|e| opentrail_model::EventRecord::from_json(&e.json()).unwrap())
        .collect();
    assert_eq!(
        gunzip_single_member(&body).unwrap(),
        opentrail_model::write_log_file(&expected)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_down_then_up_and_bucket_missing_then_created() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(store_at(&format!("http://127.0.0.1:{port}")));
    let h = Harness::with_store(dir, store);
    h.directory.set(vec![trail("main", "us-east-1")]);
    h.append(&[Ev::new(
        "while-down",
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )])
    .await;
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.advance(60);
    let report = worker.step(None).await.unwrap();
    assert_eq!(report.log_files_spooled, 1);
    assert!(matches!(
        h.directory.last_outcome(),
        Some(DeliveryOutcome::LogFileFailed { error, .. }) if error == "ServiceUnavailable"
    ));

    // The endpoint comes up, but without the bucket.
    let moto = Moto::start_open_on(port).await;
    h.advance(60);
    worker.step(None).await.unwrap();
    assert!(matches!(
        h.directory.last_outcome(),
        Some(DeliveryOutcome::LogFileFailed { error, .. }) if error == "NoSuchBucket"
    ));
    assert_eq!(worker.spooled_files(), 1);

    moto.store().create_bucket("trail-bucket").await.unwrap();
    h.advance(120);
    worker.step(None).await.unwrap();
    assert!(matches!(
        h.directory.last_outcome(),
        Some(DeliveryOutcome::LogFileDelivered { .. })
    ));
    assert_eq!(worker.spooled_files(), 0);
    let ids: Vec<String> = h
        .delivered_ids("trail-bucket")
        .await
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .collect();
    assert_eq!(ids, ["while-down"]);
}
