//! Where digest chains live: in the metadata store (collection `digest_chains`). Chain
//! files an older version kept in `<state dir>/chains/` move into the store on start and
//! the chain goes on from where it stopped: same link, nothing signed again.

mod common;

use chrono::Duration;
use common::{t0, trail, Ev, Harness};
use opentrail_delivery::digest::DigestFile;
use opentrail_delivery::log_file::{gunzip_single_member, sha256_hex};
use opentrail_delivery::validate::{validate_logs, ValidationRequest};
use opentrail_delivery::{TrailTarget, DIGEST_CHAINS};
use opentrail_model::{AccountId, Region};

fn validating() -> TrailTarget {
    let mut target = trail("main", "us-east-1");
    target.log_file_validation = true;
    target
}

async fn digest(h: &Harness, key: &str) -> (DigestFile, Vec<u8>, Vec<(String, String)>) {
    let object = h
        .store
        .get_object("trail-bucket", key)
        .await
        .unwrap()
        .unwrap();
    let json = gunzip_single_member(&object.body).unwrap();
    (
        serde_json::from_slice(&json).unwrap(),
        object.body.to_vec(),
        object.metadata,
    )
}

fn signature(metadata: &[(String, String)]) -> String {
    metadata
        .iter()
        .find(|(name, _)| name == "signature")
        .map(|(_, value)| value.clone())
        .expect("a digest has a signature")
}

/// Writes the store's chains as an older version kept them: `chains/<hash>.json`, the
/// chain's JSON, one file each; and removes them from the store.
fn write_as_old_version(h: &Harness, chains: &[(String, String)]) -> std::path::PathBuf {
    let dir = h.dir.path().join("state").join("chains");
    std::fs::create_dir_all(&dir).unwrap();
    for (id, state) in chains {
        let name = &sha256_hex(id.as_bytes())[..32];
        std::fs::write(dir.join(format!("{name}.json")), state).unwrap();
        assert!(h.meta.delete_document(DIGEST_CHAINS, id).unwrap());
    }
    dir
}

#[tokio::test]
async fn chain_state_lives_in_the_metadata_store() {
    let h = Harness::local().await;
    let target = validating();
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    let chains = h.meta.list_documents(DIGEST_CHAINS).unwrap();
    assert_eq!(
        chains.len(),
        1,
        "the home region's chain starts with logging"
    );
    assert!(chains[0].0.starts_with(&target.arn().to_string()));
    assert!(!h.dir.path().join("state").join("chains").exists());

    // Closed and written: forgotten.
    let mut stopped = target.clone();
    stopped.is_logging = false;
    h.directory.set(vec![stopped]);
    h.advance(60);
    worker.step(None).await.unwrap();
    assert_eq!(h.digest_keys("trail-bucket").await.len(), 1);
    assert!(h.meta.list_documents(DIGEST_CHAINS).unwrap().is_empty());
}

#[tokio::test]
async fn chain_files_of_an_older_version_move_into_the_metadata_store() {
    let h = Harness::local().await;
    let target = validating();
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    // Hour 1: a log file and the hour's digest; hour 2: a log file listed in the chain.
    for (hour, id) in [(0, "one"), (1, "two")] {
        h.append(&[
            Ev::new(id, "us-east-1", "ec2.amazonaws.com", "RunInstances")
                .at(t0() + Duration::hours(hour) + Duration::minutes(1)),
        ])
        .await;
        worker.step(None).await.unwrap();
        h.advance(60);
        worker.step(None).await.unwrap();
        if hour == 0 {
            h.advance(3600 - 60);
            worker.step(None).await.unwrap();
        }
    }
    drop(worker);
    let digests = h.digest_keys("trail-bucket").await;
    assert_eq!(digests.len(), 1);
    let (first, first_bytes, first_metadata) = digest(&h, &digests[0]).await;
    assert_eq!(first.log_files.len(), 1);

    let before = h.meta.list_documents(DIGEST_CHAINS).unwrap();
    assert_eq!(before.len(), 1);
    assert!(before[0].1.contains("\"log_files\":[{"), "{}", before[0].1);
    let old_dir = write_as_old_version(&h, &before);
    assert!(h.meta.list_documents(DIGEST_CHAINS).unwrap().is_empty());

    // The new version starts: the chains are in the store, the files gone.
    let mut worker = h.worker().await;
    assert_eq!(h.meta.list_documents(DIGEST_CHAINS).unwrap(), before);
    assert!(!old_dir.exists(), "the old chain directory is removed");
    worker.step(None).await.unwrap();
    assert_eq!(
        h.digest_keys("trail-bucket").await,
        digests,
        "nothing signed again"
    );

    // The chain goes on: the next digest links to the one before the upgrade and lists
    // the file delivered before it.
    h.advance(3600);
    worker.step(None).await.unwrap();
    let digests = h.digest_keys("trail-bucket").await;
    assert_eq!(digests.len(), 2, "{digests:?}");
    let (second, _, _) = digest(&h, &digests[1]).await;
    assert_eq!(second.log_files.len(), 1);
    assert_eq!(
        second.previous_digest_signature.as_deref(),
        Some(signature(&first_metadata).as_str())
    );
    assert_eq!(digest(&h, &digests[0]).await.1, first_bytes);

    let region = Region::parse("us-east-1").unwrap();
    let (start, end) = (t0() - Duration::minutes(5), t0() + Duration::hours(3));
    let request = ValidationRequest {
        bucket: target.s3_bucket.clone(),
        prefix: None,
        account: AccountId::parse(common::ACCOUNT).unwrap(),
        trail: target.arn(),
        region: region.clone(),
        start,
        end,
        public_keys: h.keys.public_keys(&region, start, end),
    };
    let report = validate_logs(h.store.as_ref(), &request).await.unwrap();
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.valid_digests(), 2);
    assert_eq!(report.valid_log_files(), 2);
    assert!(report.gaps.is_empty(), "{:?}", report.gaps);
}

#[tokio::test]
async fn a_pending_digest_of_an_older_version_is_written_as_signed() {
    let h = Harness::local().await;
    let mut target = validating();
    target.s3_bucket = "later-bucket".to_owned();
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    h.advance(3600);
    worker.step(None).await.unwrap();
    drop(worker);
    let before = h.meta.list_documents(DIGEST_CHAINS).unwrap();
    assert_eq!(before.len(), 1);
    let state: serde_json::Value = serde_json::from_str(&before[0].1).unwrap();
    let pending = state["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "the digest waits for its bucket");
    let signed_json = pending[0]["json"].as_str().unwrap().to_owned();
    write_as_old_version(&h, &before);

    h.store.create_bucket("later-bucket").await.unwrap();
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    let written = h.digest_keys("later-bucket").await;
    assert_eq!(written.len(), 1);
    let object = h
        .store
        .get_object("later-bucket", &written[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        gunzip_single_member(&object.body).unwrap(),
        signed_json.as_bytes(),
        "the digest signed before the upgrade, not a new one"
    );
}

#[tokio::test]
async fn chains_stopped_right_at_the_end_of_a_written_window_are_forgotten() {
    let h = Harness::local().await;
    let mut target = validating();
    target.is_multi_region = true;
    h.directory.set(vec![target.clone()]);
    let mut worker = h.worker().await;
    worker.step(None).await.unwrap();
    let regions = opentrail_model::AWS_REGIONS.len();
    assert_eq!(h.meta.list_documents(DIGEST_CHAINS).unwrap().len(), regions);
    h.advance(3600);
    worker.step(None).await.unwrap();
    assert_eq!(h.digest_keys("trail-bucket").await.len(), regions);

    // Stopped in the very second the written window ended: no final digest to make (its
    // window would be empty), and nothing may stay behind in the store.
    target.is_logging = false;
    h.directory.set(vec![target]);
    worker.step(None).await.unwrap();
    assert_eq!(h.digest_keys("trail-bucket").await.len(), regions);
    assert!(h.meta.list_documents(DIGEST_CHAINS).unwrap().is_empty());
}
