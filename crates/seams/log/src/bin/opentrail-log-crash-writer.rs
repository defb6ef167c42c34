//! Helper for the kill -9 test (`tests/crash_kill9.rs`): appends numbered records from
//! several threads as fast as it can and prints every acknowledged batch, one flushed line
//! each: `ack <producer> <first seq> <first offset> <last offset>`.
//!
//! Usage: `opentrail-log-crash-writer <dir> <producers> <segment bytes> [<meta.db>]`. Even
//! producers use `append_blocking`, odd ones the async `append`. Runs until killed. With a
//! metadata store path the log keeps its cursors there, and one more thread commits the
//! cursor of consumer `crash-consumer` to the durable end over and over, printing
//! `cursor <offset>` after each commit returned.

use std::io::Write;
use std::process::ExitCode;

use bytes::Bytes;
use opentrail_log::{EventLog, LogOptions, MetaCursorStore};
use opentrail_meta::SqliteMetaStore;

/// The consumer whose cursor the committer thread moves.
const CONSUMER: &str = "crash-consumer";

fn run_committer(log: EventLog) -> Result<(), String> {
    let mut committed = 0;
    loop {
        let end = log.durable_end();
        if end == committed {
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        log.commit_cursor(CONSUMER, end)
            .map_err(|e| format!("cursor commit failed: {e}"))?;
        committed = end;
        let mut out = std::io::stdout().lock();
        writeln!(out, "cursor {end}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("failed to write cursor: {e}"))?;
    }
}

/// Record `seq` of `producer`: `p<producer>:s<seq>:` then a padding whose bytes depend on
/// `seq`, 40 to ~1.5 KB in all. `tests/crash_kill9.rs` checks the same layout.
fn numbered_record(producer: u32, seq: u64) -> Bytes {
    let mut record = format!("p{producer:03}:s{seq:012}:").into_bytes();
    let padding = 40 + (seq.wrapping_mul(7919) % 1500) as usize;
    record.extend((0..padding).map(|i| b'a' + ((seq as usize + i) % 26) as u8));
    Bytes::from(record)
}

fn batch_len(producer: u32, batch_number: u64) -> u64 {
    1 + (batch_number.wrapping_mul(31) + u64::from(producer)) % 40
}

fn run_producer(log: EventLog, producer: u32) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("failed to build runtime: {e}"))?;
    let mut next_seq = 0u64;
    for batch_number in 0u64.. {
        let first_seq = next_seq;
        let records: Vec<Bytes> = (0..batch_len(producer, batch_number))
            .map(|i| numbered_record(producer, first_seq + i))
            .collect();
        next_seq += records.len() as u64;
        let ack = if producer.is_multiple_of(2) {
            log.append_blocking(records)
        } else {
            runtime.block_on(log.append(records))
        }
        .map_err(|e| format!("append failed: {e}"))?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "ack {producer} {first_seq} {} {}",
            ack.first_offset, ack.last_offset
        )
        .and_then(|()| out.flush())
        .map_err(|e| format!("failed to write ack: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, producers, segment_bytes, meta) = match &args[..] {
        [dir, producers, segment_bytes] => (dir, producers, segment_bytes, None),
        [dir, producers, segment_bytes, meta] => (dir, producers, segment_bytes, Some(meta)),
        _ => {
            eprintln!(
                "usage: opentrail-log-crash-writer <dir> <producers> <segment bytes> [<meta.db>]"
            );
            return ExitCode::FAILURE;
        }
    };
    let (Ok(producers), Ok(segment_bytes)) =
        (producers.parse::<u32>(), segment_bytes.parse::<u64>())
    else {
        eprintln!("producers and segment bytes must be numbers");
        return ExitCode::FAILURE;
    };
    let options = LogOptions {
        segment_bytes,
        ..LogOptions::default()
    };
    let opened = match meta {
        None => EventLog::open(dir, options),
        Some(meta) => match SqliteMetaStore::open(std::path::Path::new(meta)) {
            Ok(store) => EventLog::open_with_cursors(
                dir,
                options,
                std::sync::Arc::new(MetaCursorStore::new(std::sync::Arc::new(store), meta)),
            ),
            Err(e) => {
                eprintln!("failed to open metadata store {meta}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let log = match opened {
        Ok(log) => log,
        Err(e) => {
            eprintln!("failed to open log in {dir}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let committer = meta.is_some().then(|| {
        let log = log.clone();
        std::thread::spawn(move || run_committer(log))
    });
    let handles: Vec<_> = (0..producers)
        .map(|producer| {
            let log = log.clone();
            std::thread::spawn(move || run_producer(log, producer))
        })
        .collect();
    for handle in handles.into_iter().chain(committer) {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                eprintln!("{message}");
                return ExitCode::FAILURE;
            }
            Err(_) => return ExitCode::FAILURE,
        }
    }
    ExitCode::SUCCESS
}
