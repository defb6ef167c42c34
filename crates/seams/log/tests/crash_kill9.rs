//! kill -9 under load: a child process appends from several producers and prints every
//! acknowledged batch; after SIGKILL the reopened log must hold every acknowledged record
//! exactly once, at the acknowledged offset, and each producer's records in order.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use opentrail_log::{EventLog, LogOptions};

const PRODUCERS: u32 = 6;
const SEGMENT_BYTES: u64 = 256 * 1024;

/// One acknowledged batch as printed by the child.
#[derive(Debug, Clone, Copy)]
struct Acked {
    producer: u32,
    first_seq: u64,
    first_offset: u64,
    last_offset: u64,
}

fn parse_ack(line: &str) -> Acked {
    let fields: Vec<u64> = line
        .strip_prefix("ack ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .split(' ')
        .map(|f| {
            f.parse()
                .unwrap_or_else(|_| panic!("bad number in {line:?}"))
        })
        .collect();
    let [producer, first_seq, first_offset, last_offset] = fields[..] else {
        panic!("wrong field count in {line:?}");
    };
    Acked {
        producer: producer as u32,
        first_seq,
        first_offset,
        last_offset,
    }
}

/// Parses and checks a record written by `opentrail-log-crash-writer`: `(producer, seq)`.
fn parse_record(offset: u64, record: &[u8]) -> (u32, u64) {
    let text =
        std::str::from_utf8(record).unwrap_or_else(|_| panic!("record {offset} is not utf-8"));
    let producer: u32 = text[1..4]
        .parse()
        .unwrap_or_else(|_| panic!("record {offset}: {text:?}"));
    let seq: u64 = text[6..18]
        .parse()
        .unwrap_or_else(|_| panic!("record {offset}: {text:?}"));
    let padding = &record[19..];
    assert_eq!(
        padding.len(),
        40 + (seq.wrapping_mul(7919) % 1500) as usize,
        "record {offset} length"
    );
    for (i, &b) in padding.iter().enumerate() {
        assert_eq!(
            b,
            b'a' + ((seq as usize + i) % 26) as u8,
            "record {offset} padding byte {i}"
        );
    }
    (producer, seq)
}

/// Runs the writer, kills it `kill_after` after its first acknowledgement, returns the acks.
fn run_writer_and_kill(dir: &std::path::Path, kill_after: Duration) -> Vec<Acked> {
    run_writer_and_kill_with(dir, kill_after, None).0
}

/// [`run_writer_and_kill`], with the cursors in the metadata store `meta` if given; also
/// returns the cursors the writer committed, in order.
fn run_writer_and_kill_with(
    dir: &std::path::Path,
    kill_after: Duration,
    meta: Option<&std::path::Path>,
) -> (Vec<Acked>, Vec<u64>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opentrail-log-crash-writer"))
        .arg(dir)
        .arg(PRODUCERS.to_string())
        .arg(SEGMENT_BYTES.to_string())
        .args(meta)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn crash writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (first_ack_tx, first_ack_rx) = mpsc::channel();
    let collector = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut acks = Vec::new();
        let mut cursors = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line cut by the kill was never fully printed: not counted as acknowledged.
            let Some(complete) = line.strip_suffix('\n') else {
                break;
            };
            if let Some(cursor) = complete.strip_prefix("cursor ") {
                cursors.push(cursor.parse().expect("cursor offset"));
                continue;
            }
            if acks.is_empty() {
                let _ = first_ack_tx.send(());
            }
            acks.push(parse_ack(complete));
        }
        (acks, cursors)
    });
    first_ack_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("crash writer acknowledged nothing within 60 s");
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL crash writer");
    let status = child.wait().expect("wait for crash writer");
    assert_eq!(
        status.signal(),
        Some(9),
        "writer must die by SIGKILL, got {status:?}"
    );
    collector.join().expect("stdout collector")
}

fn read_everything(log: &EventLog) -> Vec<(u64, Bytes)> {
    let mut reader = log.reader(log.start_offset());
    let mut all = Vec::new();
    loop {
        let batch = reader.poll_batch(10_000).expect("read recovered log");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

fn check_recovered_log(dir: &std::path::Path, acks: &[Acked]) {
    let log = EventLog::open(
        dir,
        LogOptions {
            segment_bytes: SEGMENT_BYTES,
            ..LogOptions::default()
        },
    )
    .expect("reopen after SIGKILL");
    log.verify_sealed_segments()
        .expect("sealed segments verify");
    let records = read_everything(&log);
    assert_eq!(
        records.len() as u64,
        log.durable_end(),
        "every offset below the durable end is readable"
    );

    let mut by_offset = HashMap::new();
    let mut seen = HashSet::new();
    let mut next_seq_of: HashMap<u32, u64> = HashMap::new();
    for (offset, record) in &records {
        let (producer, seq) = parse_record(*offset, record);
        assert!(
            seen.insert((producer, seq)),
            "record p{producer} s{seq} appears twice"
        );
        // A producer appends its batches one after another, so its records must appear in
        // sequence order without gaps.
        let expected = next_seq_of.entry(producer).or_insert(0);
        assert_eq!(
            seq, *expected,
            "producer {producer} out of order at offset {offset}"
        );
        *expected += 1;
        by_offset.insert(*offset, (producer, seq));
    }

    let mut acked_records = 0u64;
    for ack in acks {
        for (i, offset) in (ack.first_offset..=ack.last_offset).enumerate() {
            let found = by_offset.get(&offset);
            assert_eq!(
                found,
                Some(&(ack.producer, ack.first_seq + i as u64)),
                "acknowledged record at offset {offset} ({ack:?}) lost or misplaced"
            );
            acked_records += 1;
        }
    }
    assert!(
        acked_records >= 100,
        "only {acked_records} records acknowledged: not under load"
    );

    // The recovered log takes new appends after the surviving records and reopens cleanly.
    let end = log.durable_end();
    let ack = log
        .append_blocking(vec![Bytes::from_static(b"after the crash")])
        .expect("append after recovery");
    assert_eq!(ack.first_offset, end);
    drop(log);
    let log = EventLog::open(dir, LogOptions::default()).expect("second reopen");
    assert_eq!(log.durable_end(), end + 1);
    let tail = log
        .reader(end)
        .poll_batch(10)
        .expect("read appended record");
    assert_eq!(tail, vec![(end, Bytes::from_static(b"after the crash"))]);
    eprintln!(
        "kill -9 check: {} acknowledged batches, {acked_records} acknowledged records, {} records recovered",
        acks.len(),
        records.len()
    );
}

#[test]
fn kill_9_under_load_loses_and_duplicates_no_acknowledged_record() {
    for kill_after_ms in [700, 1000, 1300] {
        let dir = tempfile::tempdir().expect("tempdir");
        let acks = run_writer_and_kill(dir.path(), Duration::from_millis(kill_after_ms));
        check_recovered_log(dir.path(), &acks);
    }
}

#[test]
fn kill_9_keeps_every_cursor_committed_to_the_metadata_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta_path = dir.path().join("meta.db");
    let log_dir = dir.path().join("log");
    let (acks, cursors) =
        run_writer_and_kill_with(&log_dir, Duration::from_millis(1000), Some(&meta_path));
    let last = *cursors.last().expect("the writer committed no cursor");
    assert!(cursors.len() >= 5, "only {} cursor commits", cursors.len());
    let meta = opentrail_meta::SqliteMetaStore::open(&meta_path).expect("open meta");
    let store = std::sync::Arc::new(opentrail_log::MetaCursorStore::new(
        std::sync::Arc::new(meta),
        meta_path.display().to_string(),
    ));
    let log = EventLog::open_with_cursors(&log_dir, LogOptions::default(), store)
        .expect("reopen: no cursor lies beyond the recovered end");
    let cursor = log
        .cursor("crash-consumer")
        .expect("read cursor")
        .expect("a committed cursor");
    // A commit that returned survived; a later one may have too.
    assert!(cursor >= last, "cursor {cursor} < last committed {last}");
    assert!(cursor <= log.durable_end());
    assert!(!acks.is_empty());
}
