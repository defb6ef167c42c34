//! Containment (issue 9): bounded descriptors, a day partition that cannot be written,
//! damaged segments met by lookups, eventID conflicts.

mod common;

use common::*;
use opentrail_history::{HistoryOptions, HistoryStore};
use opentrail_model::EventRecord;
use opentrail_operations::LookupEventsRequest;
use serde_json::json;

const DAY: i64 = 86_400;

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

fn options() -> HistoryOptions {
    HistoryOptions {
        background_flush: false,
        write_ahead_log: false,
        ..small_options()
    }
}

/// One event on each of `days` days before now.
fn one_per_day(prefix: &str, days: i64) -> Vec<EventRecord> {
    (1..=days)
        .map(|day| {
            Synthetic::new(
                &format!("{prefix}-{day:04}"),
                at(now().timestamp() - day * DAY),
            )
            .record()
        })
        .collect()
}

#[test]
fn descriptors_stay_bounded_whatever_the_number_of_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        max_open_files: 8,
        retention_days: 400,
        ..options()
    };
    let store = open(dir.path(), options.clone());
    let records = one_per_day("e", 300);
    insert(&store, 0, &records);
    store.flush().unwrap();
    assert_eq!(store.stats().partitions, 300);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    assert!(store.health().open_files <= 8);
    drop(store);
    let store = open(dir.path(), options);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    assert!(store.stats().open_files <= 8);
}

#[test]
fn a_day_that_cannot_be_written_stays_in_memory_and_holds_back_the_durable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), options());
    let records = one_per_day("e", 5);
    insert(&store, 0, &records[..2]);
    store.flush().unwrap();
    assert_eq!(store.durable_offset(), 2);
    // Something in the way of day 3's partition directory.
    let blocked = at(now().timestamp() - 3 * DAY)
        .format("p-%Y-%m-%d")
        .to_string();
    std::fs::write(dir.path().join(&blocked), b"in the way").unwrap();
    insert(&store, 2, &records[2..]);
    store.flush().unwrap();
    assert_eq!(store.health().partition_write_failures, 1);
    assert_eq!(store.durable_offset(), 2, "day 3 is only in memory");
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    // Again at every flush, and nothing is lost meanwhile.
    insert(&store, 5, &one_per_day("f", 1));
    store.flush().unwrap();
    assert_eq!(store.health().partition_write_failures, 2);
    assert_eq!(store.durable_offset(), 2);
    let mut expected = records.clone();
    expected.extend(one_per_day("f", 1));
    assert_eq!(stored_ids(&store), sorted_ids(&expected));
    // Once the obstacle is gone, the next flush writes it and the offset moves on.
    std::fs::remove_file(dir.path().join(&blocked)).unwrap();
    store.flush().unwrap();
    assert_eq!(store.durable_offset(), 6);
    drop(store);
    let store = open(dir.path(), options());
    assert_eq!(stored_ids(&store), sorted_ids(&expected));
}

#[test]
fn a_block_damaged_after_opening_is_quarantined_at_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let records = one_per_day("e", 3);
    let store = open(dir.path(), options());
    insert(&store, 0, &records);
    store.flush().unwrap();
    drop(store);
    let store = open(dir.path(), options());
    let day = at(now().timestamp() - 2 * DAY)
        .format("p-%Y-%m-%d")
        .to_string();
    let segment = std::fs::read_dir(dir.path().join(day))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&segment).unwrap();
    for byte in &mut bytes[16..80] {
        *byte ^= 0x5a;
    }
    std::fs::write(&segment, bytes).unwrap();
    // The other days answer; the damaged one is taken out and reported.
    let mut found = stored_ids(&store);
    found.sort();
    assert_eq!(found, [records[0].event_id(), records[2].event_id()]);
    assert_eq!(store.health().quarantined_segments, 1);
    assert_eq!(store.take_rewind(), Some(0));
    assert_eq!(store.take_rewind(), None);
    assert!(!segment.exists());
    // Fed again from the start, it holds everything once more.
    insert(&store, 0, &records);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    assert_eq!(store.applied_offset(), 3);
}

#[test]
fn a_different_record_under_a_stored_event_id_is_kept_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let time = at(now().timestamp() - 100);
    let genuine = Synthetic::new("shared-id", time).record();
    let squatter = Synthetic::new("shared-id", at(now().timestamp() - 200))
        .set("eventName", json!("DeleteTrail"))
        .record();
    let store = open(dir.path(), options());
    insert(&store, 0, std::slice::from_ref(&squatter));
    store.flush().unwrap();
    insert(&store, 1, std::slice::from_ref(&genuine));
    // Again, in memory and in a segment, and within one batch: duplicates.
    insert(&store, 2, &[genuine.clone(), squatter.clone()]);
    store.flush().unwrap();
    insert(&store, 4, &[genuine.clone(), squatter.clone()]);
    let found = store
        .lookup(&request(now(), by_attribute("EventId", "shared-id")))
        .unwrap();
    assert_eq!(found.events().len(), 2);
    assert_eq!(store.health().event_id_conflicts, 1);
    // Reordered members are the same record.
    let value: serde_json::Value = serde_json::from_slice(genuine.as_bytes()).unwrap();
    let mut reordered = serde_json::Map::new();
    for (key, field) in value.as_object().unwrap().iter().rev() {
        reordered.insert(key.clone(), field.clone());
    }
    let reordered =
        EventRecord::from_json(&serde_json::Value::Object(reordered).to_string()).unwrap();
    assert_ne!(reordered.as_bytes(), genuine.as_bytes());
    insert(&store, 6, &[reordered]);
    assert_eq!(store.health().event_id_conflicts, 1);
    let found = store
        .lookup(&request(now(), by_attribute("EventId", "shared-id")))
        .unwrap();
    assert_eq!(found.events().len(), 2);
}

#[test]
fn a_day_that_cannot_be_written_survives_background_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        background_flush: true,
        write_ahead_log: false,
        memtable_bytes: 64 << 10,
        ..small_options()
    };
    let store = open(dir.path(), options.clone());
    let blocked = at(now().timestamp() - 3 * DAY)
        .format("p-%Y-%m-%d")
        .to_string();
    std::fs::write(dir.path().join(&blocked), b"in the way").unwrap();
    let records: Vec<EventRecord> = (0..400)
        .map(|index| {
            Synthetic::new(
                &format!("e-{index:04}"),
                at(now().timestamp() - (index % 7) * DAY - index),
            )
            .set("requestParameters", json!({ "padding": "x".repeat(600) }))
            .record()
        })
        .collect();
    for (batch, chunk) in records.chunks(20).enumerate() {
        insert(&store, batch as u64 * 20, chunk);
    }
    // Fails when what is left is only the blocked day's events.
    let _ = store.flush();
    assert!(store.health().partition_write_failures >= 2);
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    drop(store);
    let store = open(dir.path(), options);
    assert_eq!(store.durable_offset(), 0);
}

#[test]
fn a_flush_that_can_write_nothing_is_retried_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), options());
    let records = one_per_day("e", 1);
    let blocked = at(now().timestamp() - DAY).format("p-%Y-%m-%d").to_string();
    std::fs::write(dir.path().join(&blocked), b"in the way").unwrap();
    insert(&store, 0, &records);
    assert!(store.flush().is_err());
    assert!(store.flush().is_err());
    // Still searchable, not poisoned: inserts go on, and once the obstacle is gone the
    // same memtable is written.
    assert_eq!(stored_ids(&store), sorted_ids(&records));
    insert(&store, 1, &one_per_day("f", 2)[1..]);
    std::fs::remove_file(dir.path().join(&blocked)).unwrap();
    store.flush().unwrap();
    assert_eq!(store.durable_offset(), 2);
    assert_eq!(store.stats().memtable_events, 0);
    assert_eq!(store.stats().segments, 2);
}
