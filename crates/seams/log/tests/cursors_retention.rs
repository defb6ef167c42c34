//! Consumer cursors survive reopen and let a consumer resume; retention deletes whole
//! segments below the slowest cursor; the `DurableLog` seam works through a trait object.

use std::sync::Arc;

use bytes::Bytes;
use opentrail_log::{DurableLog, EventLog, LogError, LogOptions};

fn numbered(range: std::ops::Range<u64>) -> Vec<Bytes> {
    range
        .map(|i| Bytes::from(format!("event-{i:06}-{}", "p".repeat(100))))
        .collect()
}

fn segment_count(log: &EventLog) -> usize {
    std::fs::read_dir(log.dir().join("segments"))
        .expect("list segments")
        .count()
}

#[test]
fn cursors_persist_across_reopen_and_consumers_resume_from_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
    log.append_blocking(numbered(0..500)).expect("append");
    assert_eq!(log.cursor("history").expect("cursor"), None);

    let mut reader = log.reader(0);
    let batch = reader.poll_batch(120).expect("read");
    assert_eq!(batch.len(), 120);
    log.commit_cursor("history", reader.position())
        .expect("commit");
    log.commit_cursor("delivery", 7).expect("commit");
    // Many commits alternate between the two slots; the last one wins.
    for offset in 0..=33 {
        log.commit_cursor("lake", offset).expect("commit");
    }
    assert_eq!(log.cursor("history").expect("cursor"), Some(120));
    drop(log);

    let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
    assert_eq!(log.cursor("history").expect("cursor"), Some(120));
    assert_eq!(log.cursor("delivery").expect("cursor"), Some(7));
    assert_eq!(log.cursor("lake").expect("cursor"), Some(33));
    assert_eq!(log.cursor("insights").expect("cursor"), None);
    let resumed = log.reader(120).poll_batch(1).expect("resume");
    assert_eq!(
        resumed,
        numbered(120..121)
            .into_iter()
            .map(|r| (120, r))
            .collect::<Vec<_>>()
    );

    // Moving a cursor backwards (a replay) is allowed and also persists.
    log.commit_cursor("history", 10).expect("rewind");
    drop(log);
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
    assert_eq!(log.cursor("history").expect("cursor"), Some(10));
}

#[test]
fn cursor_arguments_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
    log.append_blocking(numbered(0..3)).expect("append");
    assert!(matches!(
        log.commit_cursor("history", 4),
        Err(LogError::OffsetBeyondEnd {
            requested: 4,
            durable_end: 3
        })
    ));
    log.commit_cursor("history", 3)
        .expect("the durable end itself is a valid cursor");
    for bad in ["", "../escape", ".hidden", "a b"] {
        assert!(matches!(
            log.commit_cursor(bad, 0),
            Err(LogError::InvalidConsumerName { .. })
        ));
        assert!(matches!(
            log.cursor(bad),
            Err(LogError::InvalidConsumerName { .. })
        ));
    }
}

#[test]
fn retention_deletes_whole_segments_below_the_offset_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        segment_bytes: 4096,
        ..LogOptions::default()
    };
    let log = EventLog::open(dir.path(), options.clone()).expect("open");
    for start in (0..1000).step_by(10) {
        log.append_blocking(numbered(start..start + 10))
            .expect("append");
    }
    let before = segment_count(&log);
    assert!(before > 10);

    let start = log.truncate_before(500).expect("truncate");
    assert!(
        start <= 500 && start > 400,
        "start {start} must be the first offset of the segment holding 500"
    );
    assert_eq!(log.start_offset(), start);
    assert!(segment_count(&log) < before);
    let first = log.reader(start).poll_batch(1).expect("read at new start");
    assert_eq!(first[0].0, start);
    assert!(matches!(
        log.reader(start - 1).poll_batch(1),
        Err(LogError::OffsetTruncated { .. })
    ));

    // The active segment survives even when every record is below the offset.
    let end = log.durable_end();
    let start = log.truncate_before(u64::MAX).expect("truncate all");
    assert_eq!(segment_count(&log), 1);
    assert!(start <= end);
    drop(log);

    let log = EventLog::open(dir.path(), options).expect("reopen");
    assert_eq!(log.start_offset(), start);
    assert_eq!(log.durable_end(), end);
    let ack = log.append_blocking(numbered(0..1)).expect("append");
    assert_eq!(ack.first_offset, end);
}

#[test]
fn a_reader_positioned_in_a_deleted_segment_reports_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(
        dir.path(),
        LogOptions {
            segment_bytes: 4096,
            ..LogOptions::default()
        },
    )
    .expect("open");
    for start in (0..300).step_by(10) {
        log.append_blocking(numbered(start..start + 10))
            .expect("append");
    }
    let mut lagging = log.reader(0);
    log.truncate_before(200).expect("truncate");
    assert!(matches!(
        lagging.poll_batch(10),
        Err(LogError::OffsetTruncated { requested: 0, .. })
    ));
}

#[tokio::test]
async fn the_embedded_log_works_through_the_seam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Arc<dyn DurableLog> =
        Arc::new(EventLog::open(dir.path(), LogOptions::default()).expect("open"));
    let ack = log.append(numbered(0..5)).await.expect("append");
    assert_eq!((ack.first_offset, ack.last_offset), (0, 4));
    assert_eq!(log.durable_end(), 5);
    let mut reader = log.reader(2);
    let batch = reader.next_batch(10).await.expect("read");
    assert_eq!(
        batch.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    log.commit_cursor("history", reader.position())
        .await
        .expect("commit");
    assert_eq!(log.cursor("history").await.expect("cursor"), Some(5));
    assert_eq!(log.truncate_before(5).await.expect("truncate"), 0);
}
