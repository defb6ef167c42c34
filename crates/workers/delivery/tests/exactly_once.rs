//! Issue 9 item 7: a crash after log files were written but before the cursor passed
//! their records (another lane held it) delivers no event twice, and a file named before
//! the crash but not recorded as written is written again under the same key with the
//! same bytes.

mod common;

use std::collections::BTreeMap;

use common::{trail, Ev, Harness};

fn us(i: usize) -> Ev {
    Ev::new(
        format!("us{i:03}"),
        "us-east-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )
}

fn eu(i: usize) -> Ev {
    Ev::new(
        format!("eu{i:03}"),
        "eu-west-1",
        "ec2.amazonaws.com",
        "RunInstances",
    )
}

fn counts(delivered: &[(String, Vec<String>)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, ids) in delivered {
        for id in ids {
            *counts.entry(id.clone()).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test]
async fn files_written_while_another_lane_holds_the_cursor_are_not_written_again() {
    let h = Harness::local().await;
    let mut main = trail("main", "us-east-1");
    main.is_multi_region = true;
    main.log_file_validation = true;
    h.directory.set(vec![main]);
    let mut config = h.config();
    config.max_file_bytes = 1; // one record per file: files close at once
                               // The eu-west-1 lane opens first and stays open (not due): it holds the cursor at 0.
    h.append(&[eu(0)]).await;
    h.append(&(0..6).map(us).collect::<Vec<_>>()).await;
    let mut worker = h.worker_with(config.clone()).await;
    worker.step(None).await.unwrap();
    worker.step(None).await.unwrap();
    assert_eq!(
        worker.committed_offset(),
        0,
        "held by the open eu-west-1 file"
    );
    let before = h.delivered_ids("trail-bucket").await;
    assert!(before.len() >= 5, "us-east-1 files written: {before:?}");
    drop(worker); // a crash: nothing flushed, the cursor where it was

    let mut worker = h.worker_with(config).await;
    worker.step(None).await.unwrap();
    h.advance(600);
    worker.step(None).await.unwrap();
    worker.flush_all().await.unwrap();
    let after = h.delivered_ids("trail-bucket").await;
    let counts = counts(&after);
    assert_eq!(counts.len(), 7, "{counts:?}");
    assert!(
        counts.values().all(|n| *n == 1),
        "each event once: {counts:?}"
    );
    assert!(worker.stats().records_already_delivered >= 5);
}

#[tokio::test]
async fn a_file_named_but_not_recorded_is_written_again_identically() {
    let h = Harness::local().await;
    let mut main = trail("main", "us-east-1");
    main.is_multi_region = true;
    h.directory.set(vec![main]);
    // The open eu-west-1 file keeps the cursor before the us-east-1 file.
    h.append(&[eu(0)]).await;
    h.append(&(0..4).map(us).collect::<Vec<_>>()).await;
    let mut config = h.config();
    config.max_file_bytes = 1;
    let mut worker = h.worker_with(config.clone()).await;
    worker.step(None).await.unwrap();
    worker.step(None).await.unwrap();
    assert_eq!(worker.committed_offset(), 0);
    let first = h.log_file_keys("trail-bucket").await;
    assert!(!first.is_empty());
    let mut bytes = Vec::new();
    for key in &first {
        bytes.push(
            h.store
                .get_object("trail-bucket", key)
                .await
                .unwrap()
                .unwrap()
                .body,
        );
    }
    drop(worker);

    // As if the process died between the writes and recording them.
    let state = h.dir.path().join("state/files.json");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains("\"written\":true"), "{text}");
    std::fs::write(
        &state,
        text.replace("\"written\":true", "\"written\":false"),
    )
    .unwrap();

    h.advance(3600); // a later minute: a new name would differ
    let mut worker = h.worker_with(config).await;
    worker.step(None).await.unwrap();
    worker.step(None).await.unwrap();
    assert!(worker.stats().log_files_replayed >= first.len() as u64);
    let keys = h.log_file_keys("trail-bucket").await;
    let us_keys: Vec<&String> = keys.iter().filter(|k| k.contains("/us-east-1/")).collect();
    assert_eq!(us_keys, first.iter().collect::<Vec<_>>(), "the same keys");
    for (key, expected) in first.iter().zip(&bytes) {
        let again = h
            .store
            .get_object("trail-bucket", key)
            .await
            .unwrap()
            .unwrap()
            .body;
        assert_eq!(&again, expected, "the same bytes for {key}");
    }
    worker.flush_all().await.unwrap();
    let counts = counts(&h.delivered_ids("trail-bucket").await);
    assert!(
        counts.len() == 5 && counts.values().all(|n| *n == 1),
        "{counts:?}"
    );
}
