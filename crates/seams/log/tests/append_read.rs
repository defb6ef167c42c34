//! Appending and reading back: segment rolls, reopen after a clean close, readers bounded by
//! the durable end, waiting readers, argument errors.

use std::time::Duration;

use bytes::Bytes;
use opentrail_log::{EventLog, LogError, LogOptions};
use rand::{Rng, SeedableRng};

fn small_segments() -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
        ..LogOptions::default()
    }
}

fn random_batches(seed: u64, batches: usize) -> Vec<Vec<Bytes>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..batches)
        .map(|_| {
            (0..rng.gen_range(1..12))
                .map(|_| {
                    let len = rng.gen_range(1..1500);
                    Bytes::from((0..len).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>())
                })
                .collect()
        })
        .collect()
}

fn read_all_from(log: &EventLog, from: u64) -> Vec<(u64, Bytes)> {
    let mut reader = log.reader(from);
    let mut records = Vec::new();
    loop {
        let batch = reader.poll_batch(7).expect("read");
        if batch.is_empty() {
            assert_eq!(reader.position(), log.durable_end());
            return records;
        }
        records.extend(batch);
    }
}

fn segment_count(log: &EventLog) -> usize {
    std::fs::read_dir(log.dir().join("segments"))
        .expect("list segments")
        .count()
}

#[test]
fn records_round_trip_across_segment_rolls_and_reopen() {
    // Direct I/O where the filesystem has it, and through the page cache.
    for direct_io in [true, false] {
        round_trip_across_rolls_and_reopen(direct_io);
    }
}

fn round_trip_across_rolls_and_reopen(direct_io: bool) {
    let small_segments = || LogOptions {
        direct_io,
        ..small_segments()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = random_batches(1, 200);
    let expected: Vec<Bytes> = batches.iter().flatten().cloned().collect();

    // No tail cache: before the reopen, reads come from the files the writer is appending to.
    let log = EventLog::open(
        dir.path(),
        LogOptions {
            tail_cache_bytes: 0,
            ..small_segments()
        },
    )
    .expect("open");
    let mut next = 0;
    for batch in &batches {
        let ack = log.append_blocking(batch.clone()).expect("append");
        assert_eq!(ack.first_offset, next);
        assert_eq!(ack.last_offset, next + batch.len() as u64 - 1);
        next = ack.last_offset + 1;
    }
    assert_eq!(log.durable_end(), expected.len() as u64);
    assert!(
        segment_count(&log) > 20,
        "the test must cross many segment rolls"
    );

    let check = |log: &EventLog| {
        let records = read_all_from(log, 0);
        let offsets: Vec<u64> = records.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (0..expected.len() as u64).collect::<Vec<_>>());
        let payloads: Vec<Bytes> = records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(payloads, expected);
        for from in (0..expected.len() as u64).step_by(37) {
            let first = log.reader(from).poll_batch(1).expect("read at offset");
            assert_eq!(
                first,
                vec![(from, expected[from as usize].clone())],
                "reader opened at {from}"
            );
        }
    };
    check(&log);
    drop(log);

    let log = EventLog::open(dir.path(), small_segments()).expect("reopen");
    assert_eq!(log.durable_end(), expected.len() as u64);
    log.verify_sealed_segments().expect("verify");
    check(&log);
    let ack = log
        .append_blocking(vec![Bytes::from_static(b"more")])
        .expect("append after reopen");
    assert_eq!(ack.first_offset, expected.len() as u64);
}

#[test]
fn a_reader_keeps_up_with_rolls_while_appends_continue() {
    for tail_cache_bytes in [0, 100, LogOptions::default().tail_cache_bytes] {
        reader_keeps_up_with_rolls(LogOptions {
            tail_cache_bytes,
            ..small_segments()
        });
    }
}

fn reader_keeps_up_with_rolls(options: LogOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), options).expect("open");
    let mut reader = log.reader(0);
    let mut read = Vec::new();
    let batches = random_batches(2, 150);
    for batch in &batches {
        log.append_blocking(batch.clone()).expect("append");
        read.extend(
            reader
                .poll_batch(5)
                .expect("read")
                .into_iter()
                .map(|(_, r)| r),
        );
    }
    loop {
        let batch = reader.poll_batch(5).expect("read");
        if batch.is_empty() {
            break;
        }
        read.extend(batch.into_iter().map(|(_, r)| r));
    }
    assert_eq!(read, batches.into_iter().flatten().collect::<Vec<_>>());
}

#[test]
fn readers_see_bytes_on_disk_only_below_the_durable_end() {
    for tail_cache_bytes in [0, LogOptions::default().tail_cache_bytes] {
        reader_sees_only_durable_bytes(LogOptions {
            tail_cache_bytes,
            ..LogOptions::default()
        });
    }
}

fn reader_sees_only_durable_bytes(options: LogOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), options).expect("open");
    log.append_blocking(vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")])
        .expect("append");
    // A well-formed frame that the writer never acknowledged, as if written but not yet
    // fsynced, must stay invisible.
    let segment = dir.path().join("segments").join(format!("{:020}.log", 0));
    let payload = b"not durable";
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(payload.len() as u32).to_le_bytes());
    hasher.update(payload);
    frame.extend_from_slice(&hasher.finalize().to_le_bytes());
    frame.extend_from_slice(payload);
    let mut bytes = std::fs::read(&segment).expect("read segment");
    bytes.extend_from_slice(&frame);
    std::fs::write(&segment, bytes).expect("write segment");

    let mut reader = log.reader(0);
    let records = reader.poll_batch(100).expect("read");
    assert_eq!(
        records,
        vec![
            (0, Bytes::from_static(b"one")),
            (1, Bytes::from_static(b"two"))
        ]
    );
    assert!(reader.poll_batch(100).expect("read").is_empty());
    assert!(matches!(
        log.reader(3).poll_batch(1),
        Err(LogError::OffsetBeyondEnd {
            requested: 3,
            durable_end: 2
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailing_readers_wait_for_appends_and_never_pass_the_durable_end() {
    // From memory, from disk only, and mixed (a cache smaller than one group's records).
    for tail_cache_bytes in [LogOptions::default().tail_cache_bytes, 0, 100] {
        let options = LogOptions {
            tail_cache_bytes,
            ..small_segments()
        };
        tail_while_appending(options, 3).await;
    }
}

async fn tail_while_appending(options: LogOptions, tailing_readers: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), options).expect("open");
    let total = 3000u64;
    let mut readers = Vec::new();
    for _ in 0..tailing_readers {
        let log = log.clone();
        readers.push(tokio::spawn(async move {
            let mut reader = log.reader(0);
            let mut next = 0u64;
            while next < total {
                let batch = reader.next_batch(64).await.expect("next batch");
                assert!(!batch.is_empty());
                // durable_end only grows, so anything returned must be below its value now.
                let durable_end = log.durable_end();
                for (offset, record) in batch {
                    assert_eq!(offset, next);
                    assert!(
                        offset < durable_end,
                        "reader returned {offset}, durable end {durable_end}"
                    );
                    assert_eq!(record, Bytes::from(offset.to_string()));
                    next += 1;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut offset = 0u64;
    while offset < total {
        let batch: Vec<Bytes> = (offset..(offset + 25).min(total))
            .map(|o| Bytes::from(o.to_string()))
            .collect();
        let ack = log.append(batch).await.expect("append");
        offset = ack.last_offset + 1;
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("tail reader finished")
            .expect("tail reader task");
    }
}

#[tokio::test]
async fn a_waiting_reader_ends_when_the_log_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
    log.append(vec![Bytes::from_static(b"last")])
        .await
        .expect("append");
    let mut reader = log.reader(0);
    assert_eq!(reader.next_batch(10).await.expect("read").len(), 1);
    let waiting = tokio::spawn(async move { reader.next_batch(10).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::task::spawn_blocking(move || drop(log))
        .await
        .expect("close log");
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("reader woke up")
        .expect("reader task");
    assert!(matches!(outcome, Err(LogError::Closed)), "{outcome:?}");
}

#[test]
fn bad_appends_are_refused_before_reaching_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        max_record_bytes: 10,
        ..LogOptions::default()
    };
    let log = EventLog::open(dir.path(), options).expect("open");
    assert!(matches!(
        log.append_blocking(Vec::new()),
        Err(LogError::EmptyBatch)
    ));
    let too_big = vec![Bytes::from_static(b"ok"), Bytes::from(vec![0u8; 11])];
    assert!(matches!(
        log.append_blocking(too_big),
        Err(LogError::RecordTooLarge { len: 11, limit: 10 })
    ));
    assert_eq!(log.durable_end(), 0);
    let ack = log
        .append_blocking(vec![Bytes::from(vec![0u8; 10])])
        .expect("append at the limit");
    assert_eq!((ack.first_offset, ack.last_offset), (0, 0));
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    for options in [
        LogOptions {
            segment_bytes: 0,
            ..LogOptions::default()
        },
        LogOptions {
            max_group_bytes: 0,
            ..LogOptions::default()
        },
        LogOptions {
            max_queued_appends: 0,
            ..LogOptions::default()
        },
        LogOptions {
            max_record_bytes: usize::MAX,
            ..LogOptions::default()
        },
    ] {
        assert!(matches!(
            EventLog::open(dir.path(), options),
            Err(LogError::InvalidOptions(_))
        ));
    }
}
