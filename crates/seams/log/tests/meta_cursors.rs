//! Consumer cursors in the metadata store: cursor files of an earlier version move there on
//! open, a cursor beyond the log's end still refuses to open until repaired, unreadable
//! values are rewritten, retention keeps what a consumer has not passed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use opentrail_log::{
    CursorStore, EventLog, LogError, LogOptions, MetaCursorStore, RetentionPolicy,
    CURSOR_COLLECTION,
};
use opentrail_meta::{MetaStore, SqliteMetaStore};

fn numbered(range: std::ops::Range<u64>) -> Vec<Bytes> {
    range
        .map(|i| Bytes::from(format!("record-{i:04}-{}", "p".repeat(200))))
        .collect()
}

/// Appends `range` in batches of 5 records (a batch never spans segments).
fn append(log: &EventLog, range: std::ops::Range<u64>) {
    for start in range.clone().step_by(5) {
        log.append_blocking(numbered(start..(start + 5).min(range.end)))
            .expect("append");
    }
}

fn small_segments() -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        direct_io: false,
        ..LogOptions::default()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    log_dir: std::path::PathBuf,
    meta: Arc<dyn MetaStore>,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta: Arc<dyn MetaStore> =
            Arc::new(SqliteMetaStore::open(&dir.path().join("meta.db")).expect("meta"));
        Self {
            log_dir: dir.path().join("log"),
            _dir: dir,
            meta,
        }
    }

    fn store(&self) -> Arc<MetaCursorStore> {
        Arc::new(MetaCursorStore::new(Arc::clone(&self.meta), "meta.db"))
    }

    fn open(&self) -> opentrail_log::Result<EventLog> {
        EventLog::open_with_cursors(&self.log_dir, small_segments(), self.store())
    }

    fn cursor_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.log_dir.join("cursors")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A log of an earlier version: cursor files in `log/cursors/`.
fn write_old_version(log_dir: &Path, records: u64, cursors: &[(&str, u64)]) {
    let log = EventLog::open(log_dir, small_segments()).expect("open old");
    append(&log, 0..records);
    for (consumer, offset) in cursors {
        log.commit_cursor(consumer, *offset).expect("commit");
    }
}

#[test]
fn cursor_files_of_an_earlier_version_move_into_the_metadata_store_on_first_open() {
    let setup = Setup::new();
    write_old_version(
        &setup.log_dir,
        100,
        &[("event-history", 90), ("trail-delivery", 60)],
    );
    // A file that was created but never committed, and one with no valid slot.
    std::fs::write(setup.log_dir.join("cursors/never.cursor"), b"").expect("write");
    std::fs::write(setup.log_dir.join("cursors/garbage.cursor"), [0xab; 1024]).expect("write");
    assert_eq!(setup.cursor_files().len(), 4);

    let log = setup.open().expect("open moves the cursors");
    assert!(
        !setup.log_dir.join("cursors").exists(),
        "the cursor files are deleted: {:?}",
        setup.cursor_files()
    );
    assert_eq!(log.cursor("event-history").expect("cursor"), Some(90));
    assert_eq!(log.cursor("trail-delivery").expect("cursor"), Some(60));
    // Unreadable: rewritten to re-read from the oldest record, and counted.
    assert_eq!(log.cursor("garbage").expect("cursor"), Some(0));
    assert_eq!(log.health().cursors_rewritten, 1);
    assert_eq!(log.cursor("never").expect("cursor"), None);
    assert_eq!(
        setup.meta.list_documents(CURSOR_COLLECTION).expect("list"),
        vec![
            ("event-history".to_string(), "90".to_string()),
            ("garbage".to_string(), "0".to_string()),
            ("trail-delivery".to_string(), "60".to_string()),
        ]
    );
    log.commit_cursor("event-history", 100).expect("commit");
    drop(log);

    let log = setup.open().expect("reopen");
    assert_eq!(log.cursor("event-history").expect("cursor"), Some(100));
    assert_eq!(log.health().cursors_rewritten, 0);
    assert!(!setup.log_dir.join("cursors").exists());
}

#[test]
fn a_cursor_already_in_the_store_wins_over_a_file_left_by_an_interrupted_move() {
    let setup = Setup::new();
    write_old_version(&setup.log_dir, 50, &[("event-history", 10), ("other", 20)]);
    // The move committed, then the process died before the files were deleted; the
    // consumer committed again since.
    setup
        .store()
        .replace_all(&[("event-history".into(), 40), ("other".into(), 20)])
        .expect("store");
    let log = setup.open().expect("open");
    assert_eq!(log.cursor("event-history").expect("cursor"), Some(40));
    assert_eq!(log.cursor("other").expect("cursor"), Some(20));
    assert!(setup.cursor_files().is_empty());
}

#[test]
fn a_cursor_beyond_the_end_refuses_to_open_moving_nothing_until_repaired() {
    let setup = Setup::new();
    write_old_version(&setup.log_dir, 30, &[("trail-delivery", 25)]);
    std::fs::remove_dir_all(setup.log_dir.join("segments")).expect("delete the log");

    // A cursor file of an earlier version counts, and a refused open leaves it in place.
    let refused = setup.open().expect_err("refuses");
    assert!(
        matches!(
            refused,
            LogError::CursorBeyondEnd {
                cursor: 25,
                durable_end: 0,
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("trail-delivery.cursor"));
    assert_eq!(
        setup.cursor_files(),
        vec!["trail-delivery.cursor".to_string()]
    );
    assert!(setup
        .meta
        .list_documents(CURSOR_COLLECTION)
        .expect("list")
        .is_empty());

    // So does one in the store; the message names where it is.
    setup
        .store()
        .commit("event-history", 27)
        .expect("commit to the store");
    let refused = setup.open().expect_err("refuses");
    let message = refused.to_string();
    assert!(
        message.contains("\"event-history\"")
            && message.contains(CURSOR_COLLECTION)
            && message.contains("beyond the event log's end 0")
            && message.contains("opentrail log repair"),
        "{message}"
    );

    let report = opentrail_log::repair_with_cursors(&setup.log_dir, 0, setup.store().as_ref())
        .expect("repair");
    assert_eq!((report.placeholders, report.durable_end), (27, 27));
    let log = setup.open().expect("open after repair");
    assert_eq!(log.cursor("event-history").expect("cursor"), Some(27));
    assert_eq!(log.cursor("trail-delivery").expect("cursor"), Some(25));
    assert_eq!(
        log.append_blocking(numbered(0..1))
            .expect("append")
            .first_offset,
        27,
        "no offset a consumer passed is reused"
    );
}

#[test]
fn a_stored_value_that_is_not_an_offset_is_rewritten_to_the_oldest_record() {
    let setup = Setup::new();
    {
        let log = setup.open().expect("open");
        append(&log, 0..100);
        log.register_consumer("event-history", 0).expect("register");
        log.commit_cursor("event-history", 80).expect("commit");
        log.truncate_before(50).expect("retention");
        assert!(log.start_offset() > 0);
    }
    setup
        .meta
        .put_document(CURSOR_COLLECTION, "event-history", "garbage")
        .expect("damage");
    let log = setup.open().expect("open rewrites it");
    assert_eq!(log.health().cursors_rewritten, 1);
    assert_eq!(
        log.cursor("event-history").expect("cursor"),
        Some(log.start_offset())
    );
}

#[test]
fn retention_keeps_what_a_consumer_in_the_store_has_not_passed_and_removing_it_releases_it() {
    let setup = Setup::new();
    let later = SystemTime::now() + Duration::from_secs(3600);
    let policy = RetentionPolicy {
        min_age: Duration::ZERO,
        lagging_after: Duration::ZERO,
    };
    {
        let log = setup.open().expect("open");
        append(&log, 0..200);
        log.register_consumer("event-history", 200)
            .expect("register");
        log.commit_cursor("retired", 40).expect("commit");
        let stats = log.apply_retention(policy, later).expect("retention");
        assert!(stats.deleted_segments > 0);
        assert!(log.start_offset() > 0 && log.start_offset() <= 40);
        let retired = &stats.consumers[0];
        assert_eq!(
            (
                retired.consumer.as_str(),
                retired.cursor,
                retired.registered
            ),
            ("retired", Some(40), false)
        );
    }
    // With the log closed, the operator removes the consumer it no longer runs.
    assert!(
        opentrail_log::remove_cursor(&setup.log_dir, "retired", setup.store().as_ref())
            .expect("remove")
    );
    assert!(
        !opentrail_log::remove_cursor(&setup.log_dir, "retired", setup.store().as_ref())
            .expect("remove again")
    );
    let log = setup.open().expect("reopen");
    log.register_consumer("event-history", 0).expect("register");
    let stats = log.apply_retention(policy, later).expect("retention");
    assert!(stats.deleted_segments > 0);
    assert!(log.start_offset() > 40);
    assert_eq!(stats.consumers.len(), 1);
}
