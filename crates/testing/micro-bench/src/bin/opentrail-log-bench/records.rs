//! The records the benchmark appends: synthetic CloudTrail-like JSON of a fixed size, or the
//! events of a directory of CloudTrail `.json.gz` log files.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bytes::Bytes;

/// `count` synthetic records of about `size` bytes, each distinct.
pub fn synthetic(count: usize, size: usize) -> Vec<Bytes> {
    let alphabet: Vec<u8> = (0..size + 26).map(|j| b'a' + (j % 26) as u8).collect();
    (0..count)
        .map(|i| {
            let mut record = format!(
                r#"{{"eventVersion":"1.09","eventID":"{i:08x}-bench","eventTime":"2024-03-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","requestParameters":{{"pad":""#
            )
            .into_bytes();
            let tail = br#""}}"#;
            let pad = size.saturating_sub(record.len() + tail.len());
            record.extend_from_slice(&alphabet[i % 26..i % 26 + pad]);
            record.extend_from_slice(tail);
            Bytes::from(record)
        })
        .collect()
}

/// Up to `count` events from the `.json.gz` files under `dir` (each `{"Records":[...]}`),
/// repeated if the files hold fewer.
pub fn from_cloudtrail_files(dir: &Path, count: usize) -> anyhow::Result<Vec<Bytes>> {
    let mut files = Vec::new();
    collect_gz_files(dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("no .json.gz files under {}", dir.display());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads);
    let per_thread: Vec<anyhow::Result<Vec<Bytes>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|chunk| scope.spawn(move || events_of_files(chunk, count)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("loader thread panicked")))
            })
            .collect()
    });
    let mut events = Vec::with_capacity(count);
    for part in per_thread {
        events.extend(part?);
    }
    events.truncate(count);
    if events.is_empty() {
        bail!("the files under {} hold no events", dir.display());
    }
    let distinct = events.len();
    while events.len() < count {
        let next = events[events.len() % distinct].clone();
        events.push(next);
    }
    Ok(events)
}

fn events_of_files(files: &[PathBuf], limit: usize) -> anyhow::Result<Vec<Bytes>> {
    let mut events = Vec::new();
    let mut json = Vec::new();
    for file in files {
        if events.len() >= limit {
            break;
        }
        json.clear();
        let compressed = std::fs::File::open(file)
            .with_context(|| format!("failed to open {}", file.display()))?;
        flate2::read::GzDecoder::new(compressed)
            .read_to_end(&mut json)
            .with_context(|| format!("failed to gunzip {}", file.display()))?;
        let mut log_file: serde_json::Value = serde_json::from_slice(&json)
            .with_context(|| format!("failed to parse {}", file.display()))?;
        let Some(serde_json::Value::Array(records)) =
            log_file.get_mut("Records").map(serde_json::Value::take)
        else {
            bail!("{} has no Records array", file.display());
        };
        for record in records {
            events.push(Bytes::from(serde_json::to_vec(&record)?));
        }
    }
    Ok(events)
}

fn collect_gz_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            collect_gz_files(&path, out)?;
        } else if path.to_string_lossy().ends_with(".json.gz") {
            out.push(path);
        }
    }
    Ok(())
}
