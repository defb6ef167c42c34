//! `opentrail log repair`: the operator's way out when `serve` refuses a damaged event log;
//! `opentrail log print`: the records the log holds; `opentrail log remove-cursor`.

use crate::config::LogCommand;
use anyhow::Context;
use serde_json::json;

pub fn log(command: LogCommand) -> anyhow::Result<()> {
    match command {
        LogCommand::Repair { data_dir } => {
            // Never under the feet of a running server.
            let _lock = crate::datadir::DataDirLock::acquire(&data_dir)?;
            let log_dir = data_dir.join("log");
            // Event history keeps its own position in the log: the log must reach it too.
            let history_dir = data_dir.join("history");
            let history_end = if history_dir.is_dir() {
                let options = opentrail_history::HistoryOptions {
                    write_ahead_log: false,
                    ..opentrail_history::HistoryOptions::default()
                };
                opentrail_history::HistoryStore::open(&history_dir, options)
                    .with_context(|| format!("opening event history in {}", history_dir.display()))?
                    .applied_offset()
            } else {
                0
            };
            // The consumers' cursors are in the metadata store (or, before the first start
            // of this version, in `log/cursors/`).
            let report = match crate::datadir::open_existing_meta(&data_dir)? {
                Some(meta) => {
                    let cursors = crate::datadir::log_cursors(&data_dir, meta);
                    opentrail_log::repair_with_cursors(&log_dir, history_end, &cursors)
                }
                None => opentrail_log::repair(&log_dir, history_end),
            }
            .with_context(|| format!("repairing the event log in {}", log_dir.display()))?;
            let spans: Vec<_> = report
                .damaged_spans
                .iter()
                .map(|&(start, end)| json!({ "start": start, "end": end }))
                .collect();
            println!(
                "{}",
                json!({
                    "Repaired": report.segment.is_some(),
                    "Segment": report.segment,
                    "QuarantinedCopy": report.quarantined,
                    "DamagedByteRanges": spans,
                    "PlaceholderRecords": report.placeholders,
                    "EndOffset": report.durable_end,
                })
            );
            Ok(())
        }
        LogCommand::Print {
            data_dir,
            event_category,
        } => print_records(&data_dir, event_category.as_deref()),
        LogCommand::RemoveCursor { data_dir, consumer } => {
            let _lock = crate::datadir::DataDirLock::acquire(&data_dir)?;
            let meta = crate::datadir::open_existing_meta(&data_dir)?
                .with_context(|| format!("{} holds no metadata store", data_dir.display()))?;
            let cursors = crate::datadir::log_cursors(&data_dir, meta);
            let removed =
                opentrail_log::remove_cursor(data_dir.join("log"), &consumer, &cursors)
                    .with_context(|| format!("removing the cursor of consumer {consumer:?}"))?;
            println!("{}", json!({ "Consumer": consumer, "Removed": removed }));
            Ok(())
        }
    }
}

/// Writes every event record of the log (of `category`, when given) to stdout, one a line.
fn print_records(data_dir: &std::path::Path, category: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write;
    let _lock = crate::datadir::DataDirLock::acquire(data_dir)?;
    let meta = crate::datadir::open_existing_meta(data_dir)?
        .with_context(|| format!("{} holds no metadata store", data_dir.display()))?;
    let cursors = std::sync::Arc::new(crate::datadir::log_cursors(data_dir, meta));
    let log_dir = data_dir.join("log");
    let log = opentrail_log::EventLog::open_with_cursors(
        &log_dir,
        opentrail_log::LogOptions::default(),
        cursors,
    )
    .with_context(|| format!("opening the event log in {}", log_dir.display()))?;
    let mut reader = log.reader(log.start_offset());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    loop {
        let batch = reader.poll_batch(1000)?;
        if batch.is_empty() {
            break;
        }
        for (_, bytes) in batch {
            let Ok(record) = opentrail_model::EventRecord::from_slice(&bytes) else {
                continue;
            };
            if category.is_some_and(|wanted| record.event_category() != wanted) {
                continue;
            }
            out.write_all(record.json().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
