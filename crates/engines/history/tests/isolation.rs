//! Lookups see only the caller's account and the request's region; data events are not
//! kept at all.

mod common;

use common::*;
use opentrail_operations::LookupEventsRequest;

#[test]
fn accounts_and_regions_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let time = at(now().timestamp() - 600);
    let records = vec![
        Synthetic::new("same-id", time).record(),
        Synthetic::new("same-id", time).region("eu-west-1").record(),
        Synthetic::new("same-id", time)
            .account("210987654321")
            .record(),
        Synthetic::new("other-region-only", time)
            .region("eu-west-1")
            .record(),
        Synthetic::new("other-account-only", time)
            .account("210987654321")
            .record(),
    ];
    insert(&store, 0, &records);

    for flushed in [false, true] {
        if flushed {
            store.flush().unwrap();
        }
        let mine = store
            .lookup(&request(now(), LookupEventsRequest::default()))
            .unwrap();
        assert_eq!(ids(mine.events()), ["same-id"]);
        assert_eq!(
            mine.events()[0].cloud_trail_event.as_deref(),
            Some(records[0].json())
        );

        let mut europe = request(now(), LookupEventsRequest::default());
        europe.region = "eu-west-1".into();
        let mut found = ids(store.lookup(&europe).unwrap().events());
        found.sort();
        assert_eq!(found, ["other-region-only", "same-id"]);

        let mut other = request(now(), by_attribute("EventId", "same-id"));
        other.account = "210987654321".into();
        let page = store.lookup(&other).unwrap();
        assert_eq!(page.events().len(), 1);
        assert_eq!(
            page.events()[0].cloud_trail_event.as_deref(),
            Some(records[2].json())
        );

        let mut stranger = request(now(), by_attribute("EventId", "other-account-only"));
        stranger.account = "999999999999".into();
        assert!(store.lookup(&stranger).unwrap().events().is_empty());
        assert!(store
            .lookup(&request(
                now(),
                by_attribute("EventId", "other-account-only")
            ))
            .unwrap()
            .events()
            .is_empty());
    }
}

#[test]
fn data_events_and_invalid_records_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let time = at(now().timestamp() - 600);
    let batch = vec![
        (0, Synthetic::new("data", time).data_event().record()),
        (1, Synthetic::new("management", time).record()),
        (
            2,
            Synthetic::new("no-time", time)
                .set("eventTime", serde_json::json!("yesterday"))
                .record(),
        ),
        (3, Synthetic::new("", time).record()),
    ];
    let stats = store.insert_batch(&batch).unwrap();
    assert_eq!(
        (stats.inserted, stats.not_history, stats.invalid),
        (1, 1, 2)
    );
    assert_eq!(store.applied_offset(), 4);
    assert!(store
        .lookup(&request(now(), by_attribute("EventId", "data")))
        .unwrap()
        .events()
        .is_empty());
}
