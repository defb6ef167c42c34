//! Day partitions fragmented by out-of-order arrivals are merged into one segment
//! without changing any answer.

mod common;

use common::*;
use opentrail_history::HistoryOptions;
use opentrail_operations::LookupEventsRequest;

#[test]
fn merged_partitions_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        memtable_bytes: 64 << 10,
        max_segments_per_partition: 3,
        ..small_options()
    };
    let store = open(dir.path(), options.clone());
    let base = now().timestamp() - 2 * 86_400;
    let names = ["A", "B", "C", "D"];
    let records: Vec<_> = (0..2_000i64)
        .map(|index| {
            let time = base + (index * 104_729) % 150_000;
            Synthetic::new(&format!("e-{index:04}"), at(time))
                .name("ec2.amazonaws.com", names[(index % 4) as usize])
                .record()
        })
        .collect();
    for (batch, chunk) in records.chunks(37).enumerate() {
        insert(&store, batch as u64 * 37, chunk);
        // Over the limit of 3 a partition is queued for the background merger, which
        // runs on CPU time nothing else wants; past four times as many the flusher merges
        // it at once.
        let stats = store.stats();
        assert!(stats.segments <= stats.partitions * 13, "{stats:?}");
    }
    store.flush().unwrap();
    let answers = |store: &opentrail_history::HistoryStore| {
        let mut answers = Vec::new();
        for input in [
            LookupEventsRequest::default(),
            by_attribute("EventName", "C"),
            by_attribute("EventId", "e-1234"),
        ] {
            let mut input = input;
            input.max_results = Some(17);
            answers.push(ids(&all_pages(store, &request(now(), input))));
        }
        answers
    };
    let before = answers(&store);
    assert_eq!(before[0].len(), 2_000);
    assert_eq!(before[1].len(), 500);
    assert_eq!(before[2], ["e-1234"]);
    drop(store);
    // Without a background merger, so that no merge writes files while they are counted.
    let options = HistoryOptions {
        background_flush: false,
        ..options
    };
    let store = open(dir.path(), options);
    assert_eq!(answers(&store), before);
    let files: usize = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|dir| std::fs::read_dir(dir).unwrap().count())
        .sum();
    assert_eq!(files, store.stats().segments);
}

/// Segments order records by stream (account, region), then newest first; lookups,
/// paging and merges must keep every stream exactly and apart.
#[test]
fn interleaved_streams_stay_exact_through_flushes_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistoryOptions {
        memtable_bytes: 48 << 10,
        max_segments_per_partition: 4,
        ..small_options()
    };
    let store = open(dir.path(), options.clone());
    let streams = [
        ("123456789012", "us-east-1"),
        ("123456789012", "eu-west-1"),
        ("210987654321", "us-east-1"),
        ("210987654321", "ap-southeast-2"),
    ];
    let base = now().timestamp() - 3 * 86_400;
    let mut made: Vec<(usize, String, i64, bool)> = Vec::new();
    let records: Vec<_> = (0..2_400i64)
        .map(|index| {
            let stream = (index * 7 % 4) as usize;
            let (account, region) = streams[stream];
            let time = base + (index * 7_919) % 200_000 / 3;
            let id = format!("e-{index:04}");
            let read_only = index % 3 == 0;
            made.push((stream, id.clone(), time, read_only));
            Synthetic::new(&id, at(time))
                .account(account)
                .region(region)
                .read_only(read_only)
                .record()
        })
        .collect();
    for (batch, chunk) in records.chunks(90).enumerate() {
        insert(&store, batch as u64 * 90, chunk);
    }
    let check = |store: &opentrail_history::HistoryStore| {
        for (stream, (account, region)) in streams.iter().enumerate() {
            for (input, read_only) in [
                (LookupEventsRequest::default(), None),
                (by_attribute("ReadOnly", "true"), Some(true)),
            ] {
                let mut input = input;
                input.max_results = Some(13);
                let mut request = request(now(), input);
                request.account = (*account).into();
                request.region = (*region).into();
                let events = all_pages(store, &request);
                assert_newest_first(&events);
                let mut found = ids(&events);
                found.sort();
                let mut expected: Vec<String> = made
                    .iter()
                    .filter(|(made_stream, _, _, made_read_only)| {
                        *made_stream == stream
                            && read_only.is_none_or(|wanted| wanted == *made_read_only)
                    })
                    .map(|(_, id, _, _)| id.clone())
                    .collect();
                expected.sort();
                assert_eq!(found, expected, "stream {stream}, read only {read_only:?}");
            }
        }
    };
    check(&store);
    store.flush().unwrap();
    check(&store);
    drop(store);
    let store = open(dir.path(), options);
    check(&store);
}
