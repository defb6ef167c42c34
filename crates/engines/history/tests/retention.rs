//! Retention drops whole day partitions, driven by a controllable `now`.

mod common;

use chrono::Duration;
use common::*;
use opentrail_history::HistoryOptions;
use opentrail_operations::LookupEventsRequest;

fn partition_dirs(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("p-"))
        .collect();
    names.sort();
    names
}

#[test]
fn expiry_drops_whole_partitions_older_than_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        retention_days: 30,
        ..small_options()
    };
    let store = open(dir.path(), options.clone());
    // One event at noon on each of the 40 days before now (2024-03-31T00:00Z).
    let records: Vec<_> = (1..=40)
        .map(|days_ago| {
            let time = now() - Duration::days(days_ago) + Duration::hours(12);
            Synthetic::new(&format!("day-{days_ago:02}"), time).record()
        })
        .collect();
    insert(&store, 0, &records);
    store.flush().unwrap();
    assert_eq!(partition_dirs(dir.path()).len(), 40);

    // Lookups never reach past the window, expired or not.
    let visible = all_pages(&store, &request(now(), LookupEventsRequest::default()));
    assert_eq!(visible.len(), 30);
    assert_eq!(visible.last().unwrap().event_id.as_deref(), Some("day-30"));

    // Before expiry, an old lookup (with its own "now") still finds day 35.
    let old_now = now() - Duration::days(34);
    let old = |store: &opentrail_history::HistoryStore| {
        ids(store
            .lookup(&request(old_now, by_attribute("EventId", "day-35")))
            .unwrap()
            .events())
    };
    assert_eq!(old(&store), ["day-35"]);

    // Cut-off 2024-03-01T00:00Z: the 10 days before it go, 03-01 (day 30) stays.
    assert_eq!(store.expire(now()).unwrap(), 10);
    let remaining = partition_dirs(dir.path());
    assert_eq!(remaining.len(), 30);
    assert_eq!(remaining.first().map(String::as_str), Some("p-2024-03-01"));
    assert!(old(&store).is_empty());
    assert_eq!(store.expire(now()).unwrap(), 0);

    // Late events for expired days are not stored again, also after reopening.
    let late = Synthetic::new("late", now() - Duration::days(35)).record();
    assert_eq!(
        store.insert_batch(&[(100, late.clone())]).unwrap().expired,
        1
    );
    drop(store);
    let store = open(dir.path(), options);
    assert_eq!(store.insert_batch(&[(101, late)]).unwrap().expired, 1);
    assert!(old(&store).is_empty());
    assert_eq!(
        all_pages(&store, &request(now(), LookupEventsRequest::default())).len(),
        30
    );

    // A day later the next partition goes.
    assert_eq!(store.expire(now() + Duration::days(1)).unwrap(), 1);
    assert_eq!(
        partition_dirs(dir.path()).first().map(String::as_str),
        Some("p-2024-03-02")
    );
}

#[test]
fn events_still_in_memory_for_expired_days_are_dropped_at_flush() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        retention_days: 30,
        ..small_options()
    };
    let store = open(dir.path(), options);
    let old = Synthetic::new("old", now() - Duration::days(35)).record();
    let new = Synthetic::new("new", now() - Duration::days(1)).record();
    insert(&store, 0, &[old, new]);
    assert_eq!(store.expire(now()).unwrap(), 0);
    store.flush().unwrap();
    assert_eq!(partition_dirs(dir.path()), ["p-2024-03-30"]);
}
