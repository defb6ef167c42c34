//! NextToken paging: a full traversal equals the unpaged answer, newest first, without
//! duplicates, across memtable and segments, with ties inside a second; tokens are bound
//! to their parameters.

mod common;

use common::*;
use opentrail_history::HistoryOptions;
use opentrail_operations::LookupEventsRequest;
use opentrail_wire::AwsError;
use std::collections::BTreeSet;

/// 3,000 events over five days, three names, five per second; the last 100 stay in
/// the memtable.
fn populate(store: &opentrail_history::HistoryStore) -> Vec<(String, i64, &'static str)> {
    let names = ["RunInstances", "DescribeInstances", "CreateTags"];
    let base = now().timestamp() - 5 * 86_400;
    let mut made = Vec::new();
    let mut records = Vec::new();
    for index in 0..3_000i64 {
        let id = format!("event-{index:05}");
        // Several events per second, and times that do not arrive in order.
        let time = base + (index * 7919 % 600) * 700;
        let name = names[(index % 3) as usize];
        records.push(
            Synthetic::new(&id, at(time))
                .name("ec2.amazonaws.com", name)
                .record(),
        );
        made.push((id, time, name));
    }
    let (older, recent) = records.split_at(2_900);
    for (batch, chunk) in older.chunks(250).enumerate() {
        insert(store, batch as u64 * 250, chunk);
    }
    store.flush().unwrap();
    insert(store, 2_900, recent);
    made
}

fn traverse(
    store: &opentrail_history::HistoryStore,
    mut input: LookupEventsRequest,
    page: i32,
) -> Vec<String> {
    input.max_results = Some(page);
    let events = all_pages(store, &request(now(), input));
    assert_newest_first(&events);
    let found = ids(&events);
    let unique: BTreeSet<&String> = found.iter().collect();
    assert_eq!(
        unique.len(),
        found.len(),
        "duplicates with page size {page}"
    );
    found
}

#[test]
fn every_page_size_gives_the_same_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        memtable_bytes: 300 << 10,
        ..small_options()
    };
    let store = open(dir.path(), options);
    let made = populate(&store);
    let stats = store.stats();
    assert!(stats.segments > 3 && stats.memtable_events > 0, "{stats:?}");

    for input in [
        LookupEventsRequest::default(),
        by_attribute("EventName", "CreateTags"),
        by_attribute("ReadOnly", "true"),
        LookupEventsRequest {
            start_time: seconds((now().timestamp() - 4 * 86_400) as f64),
            end_time: seconds((now().timestamp() - 2 * 86_400 - 17) as f64),
            ..Default::default()
        },
    ] {
        let reference = traverse(&store, input.clone(), 50);
        let expected: BTreeSet<String> = made
            .iter()
            .filter(|(_, time, name)| {
                let wanted_name = match input.lookup_attributes.as_deref() {
                    Some([attribute]) if attribute.attribute_key.as_str() == "EventName" => {
                        attribute.attribute_value == *name
                    }
                    _ => true,
                };
                let after = input
                    .start_time
                    .is_none_or(|start| *time as f64 >= start.epoch_seconds());
                let before = input
                    .end_time
                    .is_none_or(|end| *time as f64 <= end.epoch_seconds());
                wanted_name && after && before
            })
            .map(|(id, _, _)| id.clone())
            .collect();
        assert_eq!(reference.iter().cloned().collect::<BTreeSet<_>>(), expected);
        for page in [1, 7, 49] {
            if page == 1 && reference.len() > 400 {
                continue;
            }
            assert_eq!(
                traverse(&store, input.clone(), page),
                reference,
                "page size {page}"
            );
        }
    }
}

#[test]
fn paging_is_stable_while_new_events_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    let base = now().timestamp() - 1_000;
    let records: Vec<_> = (0..120)
        .map(|index| Synthetic::new(&format!("old-{index:03}"), at(base + index / 3)).record())
        .collect();
    insert(&store, 0, &records);

    let mut input = LookupEventsRequest {
        max_results: Some(25),
        ..Default::default()
    };
    let first = store.lookup(&request(now(), input.clone())).unwrap();
    // Newer events and redeliveries arrive between pages.
    let newer: Vec<_> = (0..10)
        .map(|index| Synthetic::new(&format!("new-{index}"), at(base + 500)).record())
        .collect();
    insert(&store, 120, &newer);
    insert(&store, 130, &records[..10]);
    store.flush().unwrap();

    let mut seen = ids(first.events());
    input.next_token = first.next_token;
    while input.next_token.is_some() {
        let page = store.lookup(&request(now(), input.clone())).unwrap();
        seen.extend(ids(page.events()));
        input.next_token = page.next_token;
    }
    let mut expected: Vec<String> = records
        .iter()
        .map(|record| record.event_id().to_owned())
        .collect();
    expected.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
}

#[test]
fn tokens_only_continue_their_own_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small_options());
    populate(&store);
    let mut input = by_attribute("EventName", "CreateTags");
    input.max_results = Some(5);
    let first = store.lookup(&request(now(), input.clone())).unwrap();
    let token = first.next_token.unwrap();

    let mut resumed = input.clone();
    resumed.next_token = Some(token.clone());
    resumed.max_results = Some(10);
    let second = store.lookup(&request(now(), resumed)).unwrap();
    assert_eq!(second.events().len(), 10);

    let mut other_value = by_attribute("EventName", "RunInstances");
    other_value.next_token = Some(token.clone());
    let mut other_time = input.clone();
    other_time.start_time = seconds(0.0);
    other_time.next_token = Some(token.clone());
    let mut other_category = input.clone();
    other_category.event_category = Some("insight".into());
    other_category.next_token = Some(token.clone());
    let mut tampered = input.clone();
    let mut bytes = token.into_bytes();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    tampered.next_token = Some(String::from_utf8(bytes).unwrap());
    for bad in [other_value, other_time, other_category, tampered] {
        let error = store.lookup(&request(now(), bad)).unwrap_err();
        assert_eq!(error.code(), "InvalidNextTokenException");
    }
    let mut other_region = request(now(), {
        let mut input = input.clone();
        input.next_token = first_token(&store, &input);
        input
    });
    other_region.region = "eu-west-1".into();
    assert_eq!(
        store.lookup(&other_region).unwrap_err().code(),
        "InvalidNextTokenException"
    );

    // A token survives a reopen: its secret is kept in the store directory.
    let token = first_token(&store, &input);
    drop(store);
    let store = open(dir.path(), small_options());
    let mut resumed = input;
    resumed.next_token = token;
    assert_eq!(
        store
            .lookup(&request(now(), resumed))
            .unwrap()
            .events()
            .len(),
        5
    );
}

fn first_token(
    store: &opentrail_history::HistoryStore,
    input: &LookupEventsRequest,
) -> Option<String> {
    store
        .lookup(&request(now(), input.clone()))
        .unwrap()
        .next_token
}
