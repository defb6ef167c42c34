//! Day partitions fragmented by out-of-order arrivals are merged into one segment
//! without changing any answer.

mod common;

use common::*;
use opentrail_history::{HistoryOptions, LookupEventsInput};

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
        let stats = store.stats();
        assert!(stats.segments <= stats.partitions * 4, "{stats:?}");
    }
    store.flush().unwrap();
    let answers = |store: &opentrail_history::HistoryStore| {
        let mut answers = Vec::new();
        for input in [
            LookupEventsInput::default(),
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
