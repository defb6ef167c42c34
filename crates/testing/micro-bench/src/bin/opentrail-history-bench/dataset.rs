//! The reference dataset: CloudTrail log files (`*.json.gz`) read in delivery order —
//! by the time stamp in the file name, as the durable log would receive them — and cut
//! into batches with consecutive log offsets, on a reader thread.

use anyhow::{Context, Result};
use flate2::read::GzDecoder;
use opentrail_model::EventRecord;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

pub struct Batch {
    pub events: Vec<(u64, EventRecord)>,
    /// Compressed bytes of the files read for this batch.
    pub file_bytes: u64,
}

/// Log files under `dir`, ordered by their `YYYYMMDDTHHMMZ` stamp, then name.
pub fn log_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                files.push(path);
            }
        }
    }
    let stamp = |path: &PathBuf| {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stamp = name.split('_').nth(3).unwrap_or("").to_owned();
        (stamp, name)
    };
    files.sort_by_cached_key(stamp);
    Ok(files)
}

/// Reads, gunzips and parses `files` on a thread, sending batches of about `batch_size`
/// events (at most `in_flight` batches wait in the channel).
pub fn read_batches(
    files: Vec<PathBuf>,
    batch_size: usize,
    in_flight: usize,
) -> (Receiver<Result<Batch>>, JoinHandle<()>) {
    let (sender, receiver) = sync_channel(in_flight);
    let handle = std::thread::spawn(move || {
        let mut offset = 0u64;
        let mut batch = Batch {
            events: Vec::with_capacity(batch_size),
            file_bytes: 0,
        };
        for path in files {
            let records = match read_log_file(&path) {
                Ok(records) => records,
                Err(error) => {
                    let _ = sender.send(Err(error));
                    return;
                }
            };
            batch.file_bytes += std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
            for record in records {
                batch.events.push((offset, record));
                offset += 1;
                if batch.events.len() >= batch_size {
                    let full = std::mem::replace(
                        &mut batch,
                        Batch {
                            events: Vec::with_capacity(batch_size),
                            file_bytes: 0,
                        },
                    );
                    if sender.send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
        }
        if !batch.events.is_empty() {
            let _ = sender.send(Ok(batch));
        }
    });
    (receiver, handle)
}

fn read_log_file(path: &Path) -> Result<Vec<EventRecord>> {
    let mut json = Vec::new();
    GzDecoder::new(std::fs::File::open(path)?)
        .read_to_end(&mut json)
        .with_context(|| format!("gunzipping {}", path.display()))?;
    opentrail_model::parse_log_file(&json).with_context(|| format!("parsing {}", path.display()))
}
