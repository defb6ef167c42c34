//! Issue 9: unreadable cursor files are rewritten (and counted) instead of failing every
//! commit; the writer's health is readable cheaply.

use bytes::Bytes;
use opentrail_log::{EventLog, LogOptions};

fn numbered(range: std::ops::Range<u64>) -> Vec<Bytes> {
    range.map(|i| Bytes::from(format!("record-{i}"))).collect()
}

#[test]
fn a_cursor_file_without_a_valid_slot_is_rewritten_to_the_oldest_offset_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = || LogOptions {
        segment_bytes: 512,
        ..LogOptions::default()
    };
    {
        let log = EventLog::open(dir.path(), options()).expect("open");
        for start in (0..100).step_by(10) {
            log.append_blocking(numbered(start..start + 10))
                .expect("append");
        }
        log.commit_cursor("history", 90).expect("commit");
        log.commit_cursor("delivery", 60).expect("commit");
        log.truncate_before(50).expect("retention");
        assert!(log.start_offset() > 0);
        assert_eq!(log.health().cursors_rewritten, 0);
    }
    let garbage = dir.path().join("cursors").join("history.cursor");
    std::fs::write(&garbage, [0xab; 1024]).expect("damage cursor");

    let log = EventLog::open(dir.path(), options()).expect("open rewrites the cursor");
    let health = log.health();
    assert_eq!(health.cursors_rewritten, 1);
    assert!(health.writable && health.last_error.is_none(), "{health:?}");
    // Re-read from the oldest retained record: nothing is skipped.
    assert_eq!(
        log.cursor("history").expect("read"),
        Some(log.start_offset())
    );
    assert_eq!(log.cursor("delivery").expect("read"), Some(60));
    log.commit_cursor("history", 95)
        .expect("commits work again");
    drop(log);
    let log = EventLog::open(dir.path(), options()).expect("reopen");
    assert_eq!(log.cursor("history").expect("read"), Some(95));
    assert_eq!(log.health().cursors_rewritten, 0);
}

#[test]
fn a_cursor_file_damaged_while_open_is_overwritten_by_the_next_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
    log.append_blocking(numbered(0..10)).expect("append");
    std::fs::write(dir.path().join("cursors").join("late.cursor"), [7u8; 600])
        .expect("garbage cursor");
    log.commit_cursor("late", 5).expect("commit overwrites");
    assert_eq!(log.cursor("late").expect("read"), Some(5));
    assert_eq!(log.health().cursors_rewritten, 1);
}

#[test]
fn repair_of_a_deleted_log_reserves_the_offsets_consumers_passed() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
        log.append_blocking(numbered(0..30)).expect("append");
        log.commit_cursor("delivery", 25).expect("commit");
    }
    std::fs::remove_dir_all(dir.path().join("segments")).expect("delete the log");
    assert!(matches!(
        EventLog::open(dir.path(), LogOptions::default()),
        Err(opentrail_log::LogError::CursorBeyondEnd {
            cursor: 25,
            durable_end: 0,
            ..
        })
    ));
    let report = opentrail_log::repair(dir.path(), 28).expect("repair");
    assert_eq!((report.placeholders, report.durable_end), (28, 28));
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open after repair");
    assert_eq!(log.reader(0).poll_batch(100).expect("read"), vec![]);
    let ack = log.append_blocking(numbered(30..31)).expect("append");
    assert_eq!(ack.first_offset, 28);
    assert_eq!(
        log.reader(0).poll_batch(100).expect("read"),
        vec![(28, numbered(30..31).remove(0))]
    );
}

#[test]
fn repair_leaves_a_healthy_or_missing_log_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = opentrail_log::repair(dir.path().join("nothing"), 0).expect("repair");
    assert_eq!(report, opentrail_log::RepairReport::default());
    assert!(!dir.path().join("nothing").exists());
    {
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
        log.append_blocking(numbered(0..30)).expect("append");
        log.commit_cursor("delivery", 30).expect("commit");
    }
    let report = opentrail_log::repair(dir.path(), 30).expect("repair");
    assert_eq!(report.segment, None);
    assert_eq!(report.durable_end, 30);
}
