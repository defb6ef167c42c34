//! Recovery on open: a torn tail of the last segment is cut off silently, keeping exactly the
//! whole frames before the tear; damage inside a sealed segment is reported, never hidden.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use opentrail_log::{EventLog, LogError, LogOptions};
use proptest::prelude::*;

const SEGMENT_HEADER_LEN: u64 = 16;
const FRAME_HEADER_LEN: u64 = 8;

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .expect("list segments")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

fn record(i: usize) -> Bytes {
    Bytes::from(format!("record-{i}-{}", "x".repeat(i % 50)))
}

/// Writes `count` single-record batches into a fresh log and closes it.
fn write_log(dir: &Path, options: LogOptions, count: usize) -> Vec<Bytes> {
    let log = EventLog::open(dir, options).expect("open");
    let records: Vec<Bytes> = (0..count).map(record).collect();
    for r in &records {
        log.append_blocking(vec![r.clone()]).expect("append");
    }
    records
}

fn read_all(log: &EventLog) -> Vec<Bytes> {
    let mut reader = log.reader(log.start_offset());
    let mut all = Vec::new();
    loop {
        let batch = reader.poll_batch(1000).expect("read");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch.into_iter().map(|(_, r)| r));
    }
}

/// Records that fit entirely in the first `len` bytes of a single-segment log.
fn whole_records_within(records: &[Bytes], len: u64) -> usize {
    let mut end = SEGMENT_HEADER_LEN;
    records
        .iter()
        .take_while(|r| {
            end += FRAME_HEADER_LEN + r.len() as u64;
            end <= len
        })
        .count()
}

fn truncate_file(path: &Path, len: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    file.set_len(len).expect("truncate segment");
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut contents = std::fs::read(path).expect("read segment");
    contents.extend_from_slice(bytes);
    std::fs::write(path, contents).expect("write segment");
}

/// Reopens, checks the recovered records are `expected`, and that appending continues.
fn assert_recovers_to(dir: &Path, expected: &[Bytes]) {
    let log =
        EventLog::open(dir, LogOptions::default()).expect("reopen must not fail on a torn tail");
    assert_eq!(read_all(&log), expected);
    assert_eq!(log.durable_end(), expected.len() as u64);
    let ack = log
        .append_blocking(vec![Bytes::from_static(b"next")])
        .expect("append after recovery");
    assert_eq!(ack.first_offset, expected.len() as u64);
    drop(log);
    let log = EventLog::open(dir, LogOptions::default()).expect("reopen after recovery");
    let mut with_next = expected.to_vec();
    with_next.push(Bytes::from_static(b"next"));
    assert_eq!(read_all(&log), with_next);
}

#[test]
fn every_cut_point_keeps_exactly_the_whole_frames_before_it() {
    let template = tempfile::tempdir().expect("tempdir");
    let records = write_log(template.path(), LogOptions::default(), 12);
    let [segment] = &segment_files(template.path())[..] else {
        panic!("expected one segment");
    };
    let bytes = std::fs::read(segment).expect("read segment");
    for cut in SEGMENT_HEADER_LEN..=bytes.len() as u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("segments")).expect("mkdir");
        std::fs::write(
            dir.path()
                .join("segments")
                .join(segment.file_name().expect("name")),
            &bytes[..cut as usize],
        )
        .expect("write cut segment");
        let kept = whole_records_within(&records, cut);
        assert_recovers_to(dir.path(), &records[..kept]);
    }
}

#[test]
fn garbage_after_the_last_frame_is_cut_off() {
    for garbage in [
        vec![0u8; 4096],
        vec![0xff; 3],
        b"\x05\x00\x00\x00\x00\x00\x00\x00abc".to_vec(),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = write_log(dir.path(), LogOptions::default(), 30);
        let segment = segment_files(dir.path()).pop().expect("a segment");
        append_bytes(&segment, &garbage);
        assert_recovers_to(dir.path(), &records);
    }
}

#[test]
fn damage_followed_by_valid_frames_is_refused_and_repair_keeps_every_valid_record() {
    // A torn tail leaves nothing valid behind it; valid frames after the damage mean records
    // already written were changed. Open refuses without changing anything; `repair` keeps
    // every valid frame and never gives a lost record's offset to a new one.
    let dir = tempfile::tempdir().expect("tempdir");
    let same_size: Vec<Bytes> = (0..4).map(|i| Bytes::from(format!("record-{i}"))).collect();
    {
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
        for r in &same_size {
            log.append_blocking(vec![r.clone()]).expect("append");
        }
        log.commit_cursor("consumer", 4).expect("commit");
    }
    let segment = segment_files(dir.path()).pop().expect("segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    let frame_len = (FRAME_HEADER_LEN as usize) + same_size[1].len();
    let damage = SEGMENT_HEADER_LEN as usize + frame_len + 9; // payload of record 1
    bytes[damage] ^= 0xff;
    std::fs::write(&segment, &bytes).expect("write");

    let refused = EventLog::open(dir.path(), LogOptions::default()).expect_err("must refuse");
    assert!(
        matches!(&refused, LogError::Corrupt { position, reason, .. }
            if *position == SEGMENT_HEADER_LEN + frame_len as u64 && reason.contains("not a torn tail")),
        "{refused}"
    );
    assert_eq!(
        std::fs::read(&segment).expect("read"),
        bytes,
        "nothing changed"
    );

    let report = opentrail_log::repair(dir.path(), 0).expect("repair");
    assert_eq!(report.damaged_spans.len(), 1);
    let quarantined = report.quarantined.expect("a quarantined copy");
    assert_eq!(std::fs::read(quarantined).expect("read copy"), bytes);
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
    let kept = [&same_size[0], &same_size[2], &same_size[3]].map(|r| (*r).clone());
    assert_eq!(read_all(&log), kept);
    assert!(log.durable_end() >= 4, "no offset goes back");
    let end = log.durable_end();
    let ack = log
        .append_blocking(vec![Bytes::from_static(b"new")])
        .expect("append");
    assert_eq!(ack.first_offset, end);
    let mut offsets = log.reader(0);
    let read: Vec<u64> = offsets
        .poll_batch(100)
        .expect("read")
        .into_iter()
        .map(|(offset, _)| offset)
        .collect();
    assert_eq!(read[0], 0);
    assert!(
        read[1] >= 2 && read[2] >= 3,
        "records after the damage keep or raise their offsets: {read:?}"
    );
    drop(log);
    let again = opentrail_log::repair(dir.path(), 0).expect("repair again");
    assert_eq!(again.segment, None, "{again:?}");
}

#[test]
fn a_cursor_beyond_the_recovered_end_refuses_open_without_changing_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = write_log(dir.path(), LogOptions::default(), 20);
    {
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
        log.commit_cursor("history", 20).expect("commit");
    }
    let segment = segment_files(dir.path()).pop().expect("segment");
    let len = std::fs::metadata(&segment).expect("stat").len();
    truncate_file(&segment, len - 3);
    let refused = EventLog::open(dir.path(), LogOptions::default()).expect_err("must refuse");
    assert!(
        matches!(&refused, LogError::CursorBeyondEnd { consumer, cursor: 20, durable_end: 19, .. } if consumer == "history"),
        "{refused}"
    );
    assert_eq!(std::fs::metadata(&segment).expect("stat").len(), len - 3);

    let report = opentrail_log::repair(dir.path(), 0).expect("repair");
    assert!(report.durable_end >= 20, "{report:?}");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
    assert_eq!(read_all(&log), records[..19]);
    let ack = log
        .append_blocking(vec![Bytes::from_static(b"new")])
        .expect("append");
    assert!(
        ack.first_offset >= 20,
        "offset 19 was passed by a consumer: never reused"
    );
}

#[test]
fn empty_records_are_reserved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
    assert!(matches!(
        log.append_blocking(vec![Bytes::from_static(b"a"), Bytes::new()]),
        Err(LogError::EmptyRecord)
    ));
}

#[test]
fn a_torn_tail_in_the_last_of_many_segments_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        segment_bytes: 2048,
        ..LogOptions::default()
    };
    let records = write_log(dir.path(), options, 300);
    let files = segment_files(dir.path());
    assert!(files.len() > 5);
    let last = files.last().expect("last segment");
    let last_first: usize = last
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("offset name");
    let len = std::fs::metadata(last).expect("stat").len();
    assert!(
        len > SEGMENT_HEADER_LEN + 20,
        "last segment must hold records"
    );
    truncate_file(last, len - 3);
    let kept = last_first + whole_records_within(&records[last_first..], len - 3);
    assert_eq!(kept, records.len() - 1);
    assert_recovers_to(dir.path(), &records[..kept]);
}

#[test]
fn an_interrupted_segment_creation_is_completed() {
    for leftover in [0usize, 7] {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = write_log(dir.path(), LogOptions::default(), 5);
        // A roll that crashed before its header was fsynced.
        std::fs::write(
            dir.path().join("segments").join(format!("{:020}.log", 5)),
            vec![b'O'; leftover],
        )
        .expect("write partial segment");
        assert_recovers_to(dir.path(), &records);
    }
}

#[test]
fn damage_inside_a_sealed_segment_is_an_error_not_a_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        segment_bytes: 2048,
        ..LogOptions::default()
    };
    write_log(dir.path(), options, 200);
    let first = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&first).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&first, bytes).expect("write");

    let log = EventLog::open(dir.path(), LogOptions::default())
        .expect("open checks only headers of sealed segments");
    assert_eq!(
        log.durable_end(),
        200,
        "nothing may be dropped for damage in a sealed segment"
    );
    assert!(matches!(
        log.verify_sealed_segments(),
        Err(LogError::Corrupt { .. })
    ));
    let mut reader = log.reader(0);
    let mut outcome = Ok(Vec::new());
    for _ in 0..200 {
        outcome = reader.poll_batch(1);
        if outcome.is_err() {
            break;
        }
    }
    assert!(
        matches!(outcome, Err(LogError::Corrupt { .. })),
        "{outcome:?}"
    );
    assert!(
        read_tail_count(&log) > 0,
        "records of later segments stay readable"
    );
}

/// Records readable from the start of the second segment on.
fn read_tail_count(log: &EventLog) -> u64 {
    let files = segment_files(log.dir());
    let second: u64 = files[1]
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("name");
    let mut reader = log.reader(second);
    let mut count = 0;
    loop {
        let batch = reader.poll_batch(1000).expect("later segments are intact");
        if batch.is_empty() {
            return count;
        }
        count += batch.len() as u64;
    }
}

#[test]
fn a_shortened_sealed_segment_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        segment_bytes: 2048,
        ..LogOptions::default()
    };
    write_log(dir.path(), options, 200);
    let first = segment_files(dir.path()).remove(0);
    let len = std::fs::metadata(&first).expect("stat").len();
    truncate_file(&first, len - 5);
    let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
    assert!(matches!(
        log.verify_sealed_segments(),
        Err(LogError::Corrupt { .. })
    ));
    assert!(matches!(
        log.reader(1).poll_batch(10),
        Err(LogError::Corrupt { .. })
    ));
}

#[test]
fn a_damaged_sealed_segment_header_fails_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LogOptions {
        segment_bytes: 2048,
        ..LogOptions::default()
    };
    write_log(dir.path(), options, 200);
    let first = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&first).expect("read");
    bytes[9] ^= 1;
    std::fs::write(&first, bytes).expect("write");
    assert!(matches!(
        EventLog::open(dir.path(), LogOptions::default()),
        Err(LogError::Corrupt { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn recovery_keeps_the_longest_valid_prefix(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..400), 1..25),
        cut_seed in any::<prop::sample::Index>(),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let records: Vec<Bytes> = records.into_iter().map(Bytes::from).collect();
        {
            let log = EventLog::open(dir.path(), LogOptions::default()).expect("open");
            for chunk in records.chunks(3) {
                log.append_blocking(chunk.to_vec()).expect("append");
            }
        }
        let segment = segment_files(dir.path()).pop().expect("segment");
        let len = std::fs::metadata(&segment).expect("stat").len();
        let cut = SEGMENT_HEADER_LEN + cut_seed.index((len - SEGMENT_HEADER_LEN + 1) as usize) as u64;
        truncate_file(&segment, cut);
        append_bytes(&segment, &garbage);
        let kept = whole_records_within(&records, cut);

        let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
        prop_assert_eq!(read_all(&log), records[..kept].to_vec());
        prop_assert_eq!(log.durable_end(), kept as u64);
    }
}
