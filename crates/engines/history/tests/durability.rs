//! Idempotent inserts and crash safety: the applied offset always matches what a
//! reopened store holds, whatever point a crash interrupted.

mod common;

use common::*;
use opentrail_history::{HistoryOptions, HistoryStore};
use opentrail_model::EventRecord;
use opentrail_operations::LookupEventsRequest;
use std::path::Path;

fn events(prefix: &str, count: usize) -> Vec<EventRecord> {
    let base = now().timestamp() - 10_000;
    (0..count)
        .map(|index| {
            Synthetic::new(&format!("{prefix}-{index:04}"), at(base + index as i64)).record()
        })
        .collect()
}

fn stored_ids(store: &HistoryStore) -> Vec<String> {
    let mut found = ids(&all_pages(
        store,
        &request(now(), LookupEventsRequest::default()),
    ));
    found.sort();
    found
}

fn sorted_ids(records: &[EventRecord]) -> Vec<String> {
    let mut expected: Vec<String> = records
        .iter()
        .map(|record| record.event_id().to_owned())
        .collect();
    expected.sort();
    expected
}

/// Simulates a crash: no destructor, no flush. Stores here flush synchronously, so no
/// background thread outlives the "crash".
fn crash(store: HistoryStore) {
    std::mem::forget(store);
}

fn crash_options() -> HistoryOptions {
    HistoryOptions {
        background_flush: false,
        ..small_options()
    }
}

#[test]
fn reinserting_is_idempotent_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let records = events("e", 300);
    let batch: Vec<(u64, EventRecord)> = records
        .iter()
        .cloned()
        .enumerate()
        .map(|(at, record)| (at as u64, record))
        .collect();
    let store = open(dir.path(), crash_options());
    assert_eq!(store.insert_batch(&batch).unwrap().inserted, 300);
    // In the memtable.
    let again = store.insert_batch(&batch).unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 300));
    // In segments.
    store.flush().unwrap();
    assert_eq!(store.insert_batch(&batch).unwrap().duplicates, 300);
    // After reopening, and repeated within one batch.
    drop(store);
    let store = open(dir.path(), crash_options());
    let doubled: Vec<(u64, EventRecord)> = batch.iter().chain(&batch).cloned().collect();
    assert_eq!(store.insert_batch(&doubled).unwrap().duplicates, 600);
    let fresh = events("f", 2);
    let mixed = vec![
        (900, fresh[0].clone()),
        (901, fresh[0].clone()),
        (902, records[3].clone()),
    ];
    let stats = store.insert_batch(&mixed).unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (1, 2));
    let mut expected = sorted_ids(&records);
    expected.push(fresh[0].event_id().to_owned());
    expected.sort();
    assert_eq!(stored_ids(&store), expected);
    assert_eq!(store.applied_offset(), 903);
}

#[test]
fn applied_offset_survives_crashes_with_the_events_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        sync_writes: true,
        ..small_options()
    };
    let records = events("e", 600);
    let store = open(dir.path(), options.clone());
    assert_eq!(store.applied_offset(), 0);
    insert(&store, 0, &records[..200]);
    assert_eq!(store.applied_offset(), 200);
    crash(store);

    let store = open(dir.path(), options.clone());
    assert_eq!(store.applied_offset(), 200);
    assert_eq!(stored_ids(&store), sorted_ids(&records[..200]));
    insert(&store, 200, &records[200..400]);
    store.flush().unwrap();
    insert(&store, 400, &records[400..450]);
    crash(store);

    let store = open(dir.path(), options.clone());
    assert_eq!(store.applied_offset(), 450);
    assert_eq!(stored_ids(&store), sorted_ids(&records[..450]));
    // A consumer resuming at the applied offset completes the data exactly once.
    insert(&store, 450, &records[450..]);
    drop(store);
    let store = open(dir.path(), options);
    assert_eq!(store.applied_offset(), 600);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
}

fn newest_wal(dir: &Path) -> std::path::PathBuf {
    let mut wals: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("wal-")
        })
        .filter(|path| std::fs::metadata(path).unwrap().len() > 0)
        .collect();
    wals.sort();
    wals.pop().unwrap()
}

#[test]
fn a_torn_last_batch_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let records = events("e", 30);
    let store = open(dir.path(), crash_options());
    insert(&store, 0, &records[..10]);
    insert(&store, 10, &records[10..30]);
    crash(store);

    // The crash hit in the middle of writing the second batch.
    let wal = newest_wal(dir.path());
    let len = std::fs::metadata(&wal).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.set_len(len - 7).unwrap();
    drop(file);

    let store = open(dir.path(), crash_options());
    assert_eq!(store.applied_offset(), 10);
    assert_eq!(stored_ids(&store), sorted_ids(&records[..10]));
    // Resuming from the applied offset restores the rest.
    insert(&store, 10, &records[10..30]);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    crash(store);
    let store = open(dir.path(), crash_options());
    assert_eq!(store.applied_offset(), 30);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_flush_interrupted_before_its_manifest_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let crashed_dir = dir.path().join("crashed");
    let records = events("e", 400);
    let store = open(&store_dir, crash_options());
    insert(&store, 0, &records[..100]);
    store.flush().unwrap();
    insert(&store, 100, &records[100..150]);
    // The state on disk just before the next flush commits...
    copy_dir(&store_dir, &crashed_dir);
    store.flush().unwrap();
    // ...plus the segment files that flush wrote, but not its manifest.
    for entry in std::fs::read_dir(&store_dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &crashed_dir.join(entry.file_name()));
        }
    }
    std::fs::write(crashed_dir.join("MANIFEST.tmp"), b"{half").unwrap();
    drop(store);

    let store = open(&crashed_dir, crash_options());
    assert_eq!(store.applied_offset(), 150);
    assert_eq!(stored_ids(&store), sorted_ids(&records[..150]));
    assert!(!crashed_dir.join("MANIFEST.tmp").exists());
    let segment_files: usize = std::fs::read_dir(&crashed_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|dir| std::fs::read_dir(dir).unwrap().count())
        .sum();
    assert_eq!(segment_files as u64, store.stats().segments as u64);
    store.flush().unwrap();
    assert_eq!(stored_ids(&store), sorted_ids(&records[..150]));
}

#[test]
fn a_corrupt_segment_is_quarantined_and_indexed_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), crash_options());
    let records = events("e", 50);
    insert(&store, 0, &records);
    store.flush().unwrap();
    drop(store);
    let partition = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.is_dir())
        .unwrap();
    let segment = std::fs::read_dir(partition)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    // The store opens without it, moves it aside, reports it and asks to be fed again.
    let store = open(dir.path(), crash_options());
    assert!(!segment.exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("quarantine"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(store.health().quarantined_segments, 1);
    assert_eq!(store.applied_offset(), 0);
    assert_eq!(
        store.take_rewind(),
        None,
        "open already says where to resume"
    );
    assert!(stored_ids(&store).is_empty());
    insert(&store, 0, &records);
    assert_eq!(store.applied_offset(), 50);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
}

#[test]
fn background_flushes_keep_every_event_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        memtable_bytes: 32 << 10,
        ..small_options()
    };
    assert!(options.background_flush);
    let records = events("e", 1_500);
    let store = open(dir.path(), options.clone());
    for (batch, chunk) in records.chunks(50).enumerate() {
        insert(&store, batch as u64 * 50, chunk);
        // Every event is visible as soon as its batch returns, frozen or not.
        let last = chunk.last().unwrap().event_id();
        let found = store
            .lookup(&request(now(), by_attribute("EventId", last)))
            .unwrap();
        assert_eq!(ids(found.events()), [last]);
    }
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    drop(store);
    let store = open(dir.path(), options);
    assert_eq!(store.applied_offset(), 1_500);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    assert!(store.stats().segments > 1);
}

#[test]
fn without_the_write_ahead_log_a_crash_keeps_what_was_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        write_ahead_log: false,
        ..crash_options()
    };
    let records = events("e", 300);
    let store = open(dir.path(), options.clone());
    insert(&store, 0, &records[..100]);
    assert_eq!((store.applied_offset(), store.durable_offset()), (100, 0));
    store.flush().unwrap();
    assert_eq!(store.durable_offset(), 100);
    insert(&store, 100, &records[100..200]);
    assert_eq!((store.applied_offset(), store.durable_offset()), (200, 100));
    crash(store);

    // The feed resumes at the flushed offset and indexes the rest again, exactly once.
    let store = open(dir.path(), options.clone());
    assert_eq!((store.applied_offset(), store.durable_offset()), (100, 100));
    assert_eq!(stored_ids(&store), sorted_ids(&records[..100]));
    insert(&store, 100, &records[100..]);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    store.flush().unwrap();
    drop(store);
    let store = open(dir.path(), options.clone());
    assert_eq!(store.durable_offset(), 300);
    assert_eq!(stored_ids(&store), sorted_ids(&records));

    // Batches that store nothing (here: all duplicates) still move the flushed offset on.
    insert(&store, 300, &records);
    assert_eq!((store.applied_offset(), store.durable_offset()), (600, 300));
    store.flush().unwrap();
    assert_eq!(store.durable_offset(), 600);
    drop(store);
    assert_eq!(open(dir.path(), options).applied_offset(), 600);
}
