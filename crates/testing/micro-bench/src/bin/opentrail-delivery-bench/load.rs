//! Appends every record of the input log files to the event log, file by file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use opentrail_log::EventLog;
use opentrail_model::parse_log_file;

pub struct Loaded {
    pub events: usize,
    pub files: usize,
    pub uncompressed_bytes: u64,
    pub accounts: BTreeSet<String>,
}

pub async fn append_input(log: &EventLog, input: &Path) -> anyhow::Result<Loaded> {
    let mut files = Vec::new();
    collect_files(input, &mut files)?;
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no .json.gz files under {}",
        input.display()
    );
    let mut loaded = Loaded {
        events: 0,
        files: files.len(),
        uncompressed_bytes: 0,
        accounts: BTreeSet::new(),
    };
    for path in files {
        let (records, accounts, bytes) =
            tokio::task::spawn_blocking(move || read_records(&path)).await??;
        loaded.events += records.len();
        loaded.uncompressed_bytes += bytes;
        loaded.accounts.extend(accounts);
        for chunk in records.chunks(2048) {
            log.append(chunk.to_vec()).await?;
        }
    }
    Ok(loaded)
}

type FileRecords = (Vec<Bytes>, BTreeSet<String>, u64);

fn read_records(path: &Path) -> anyhow::Result<FileRecords> {
    let compressed = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let inflated = opentrail_delivery::log_file::gunzip_single_member(&compressed)
        .with_context(|| format!("inflate {}", path.display()))?;
    let records = parse_log_file(&inflated).with_context(|| format!("parse {}", path.display()))?;
    let accounts = records
        .iter()
        .map(|r| r.recipient_account_id().to_owned())
        .collect();
    let bytes = records
        .iter()
        .map(|r| Bytes::copy_from_slice(r.as_bytes()))
        .collect();
    Ok((bytes, accounts, inflated.len() as u64))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path.to_string_lossy().ends_with(".json.gz") {
            out.push(path);
        }
    }
    Ok(())
}
