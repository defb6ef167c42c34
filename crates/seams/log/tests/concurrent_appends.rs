//! Many concurrent appenders (async tasks and blocking threads) get one total order: disjoint
//! consecutive offset ranges covering every offset once, each holding exactly its batch.

use std::collections::BTreeMap;

use bytes::Bytes;
use opentrail_log::{AppendAck, EventLog, LogOptions};

const TASKS: u64 = 32;
const THREADS: u64 = 4;
const BATCHES_PER_PRODUCER: u64 = 40;

fn batch(producer: u64, batch_number: u64) -> Vec<Bytes> {
    let len = 1 + (producer * 7 + batch_number * 3) % 20;
    (0..len)
        .map(|i| {
            Bytes::from(format!(
                "p{producer}-b{batch_number}-r{i}-{}",
                "z".repeat((i * 13 % 300) as usize)
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_a_total_order_without_loss_or_duplication() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(
        dir.path(),
        LogOptions {
            segment_bytes: 64 * 1024,
            ..LogOptions::default()
        },
    )
    .expect("open");

    let mut tasks = Vec::new();
    for producer in 0..TASKS {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for b in 0..BATCHES_PER_PRODUCER {
                acks.push((
                    (producer, b),
                    log.append(batch(producer, b)).await.expect("append"),
                ));
            }
            acks
        }));
    }
    let mut threads = Vec::new();
    for producer in TASKS..TASKS + THREADS {
        let log = log.clone();
        threads.push(std::thread::spawn(move || {
            (0..BATCHES_PER_PRODUCER)
                .map(|b| {
                    (
                        (producer, b),
                        log.append_blocking(batch(producer, b)).expect("append"),
                    )
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut acks: Vec<((u64, u64), AppendAck)> = Vec::new();
    for task in tasks {
        acks.extend(task.await.expect("producer task"));
    }
    for thread in threads {
        acks.extend(
            tokio::task::spawn_blocking(move || thread.join().expect("producer thread"))
                .await
                .expect("join"),
        );
    }

    // Ack ranges tile 0..durable_end exactly.
    let by_first: BTreeMap<u64, ((u64, u64), AppendAck)> = acks
        .iter()
        .map(|&(id, ack)| (ack.first_offset, (id, ack)))
        .collect();
    assert_eq!(
        by_first.len(),
        acks.len(),
        "two batches share a first offset"
    );
    let mut next = 0;
    for (&first, &((producer, b), ack)) in &by_first {
        assert_eq!(first, next, "gap or overlap before batch p{producer} b{b}");
        assert_eq!(
            ack.last_offset - ack.first_offset + 1,
            batch(producer, b).len() as u64
        );
        next = ack.last_offset + 1;
    }
    assert_eq!(next, log.durable_end());

    // Each range holds exactly its batch, and per producer batches are in submission order.
    let mut reader = log.reader(0);
    let mut records = Vec::new();
    loop {
        let read = reader.poll_batch(4096).expect("read");
        if read.is_empty() {
            break;
        }
        records.extend(read);
    }
    assert_eq!(records.len() as u64, next);
    for ((producer, b), ack) in &acks {
        let stored: Vec<Bytes> = records[ack.first_offset as usize..=ack.last_offset as usize]
            .iter()
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(stored, batch(*producer, *b), "batch p{producer} b{b}");
    }
    for producer in 0..TASKS + THREADS {
        let firsts: Vec<u64> = (0..BATCHES_PER_PRODUCER)
            .map(|b| {
                acks.iter()
                    .find(|(id, _)| *id == (producer, b))
                    .expect("ack")
                    .1
                    .first_offset
            })
            .collect();
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "producer {producer} batches out of order"
        );
    }
}
