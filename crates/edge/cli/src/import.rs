//! `opentrail import`: reads CloudTrail log files and sends their records to a running
//! server's ingest API. Files already imported (per the state file) are skipped, so an
//! interrupted import resumes; event history ignores events it already holds (by eventID),
//! so re-importing adds no duplicates.

use crate::args::ImportArgs;
use crate::client::ApiClient;
use crate::store::object_store;
use anyhow::{bail, Context};
use bytes::Bytes;
use opentrail_objstore::ObjectStore;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Where the log files come from.
enum Source {
    Files(Vec<PathBuf>),
    Bucket {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        keys: Vec<String>,
    },
}

impl Source {
    fn names(&self) -> Vec<String> {
        match self {
            Source::Files(files) => files.iter().map(|f| f.display().to_string()).collect(),
            Source::Bucket { bucket, keys, .. } => {
                keys.iter().map(|k| format!("s3://{bucket}/{k}")).collect()
            }
        }
    }
}

fn is_log_file(name: &str) -> bool {
    name.ends_with(".json") || name.ends_with(".json.gz")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_log_file)
        {
            out.push(path);
        }
    }
    Ok(())
}

async fn find_source(args: &ImportArgs) -> anyhow::Result<Source> {
    if let Some(rest) = args.path.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let store = object_store(&args.client.data_dir, &args.s3)?;
        let mut keys: Vec<String> = store
            .list_objects(bucket, prefix)
            .await
            .with_context(|| format!("failed to list s3://{bucket}/{prefix}"))?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| is_log_file(k))
            .collect();
        keys.sort();
        return Ok(Source::Bucket {
            store,
            bucket: bucket.to_owned(),
            keys,
        });
    }
    let path = PathBuf::from(&args.path);
    let mut files = Vec::new();
    if path.is_dir() {
        walk(&path, &mut files)?;
    } else if path.is_file() {
        files.push(path);
    } else {
        bail!(
            "{} is neither a file, a directory nor s3://bucket/prefix",
            args.path
        );
    }
    files.sort();
    Ok(Source::Files(files))
}

async fn read_file(source: &Source, index: usize) -> anyhow::Result<Vec<u8>> {
    match source {
        Source::Files(files) => {
            let path = files[index].clone();
            tokio::fs::read(&path)
                .await
                .with_context(|| format!("failed to read {}", path.display()))
        }
        Source::Bucket {
            store,
            bucket,
            keys,
        } => {
            let key = &keys[index];
            let object = store
                .get_object(bucket, key)
                .await?
                .with_context(|| format!("s3://{bucket}/{key} disappeared"))?;
            Ok(object.body.to_vec())
        }
    }
}

fn decompress(name: &str, bytes: Bytes) -> anyhow::Result<Vec<u8>> {
    if !name.ends_with(".gz") {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() * 10);
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .with_context(|| format!("{name} is not valid gzip"))?;
    Ok(out)
}

#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// Splits a log file into `{"Records":[...]}` request bodies of at most `limit` bytes.
fn batches(name: &str, text: &[u8], limit: usize) -> anyhow::Result<Vec<Bytes>> {
    let file: LogFile<'_> = serde_json::from_slice(text)
        .with_context(|| format!("{name} is not a CloudTrail log file ({{\"Records\":[...]}})"))?;
    let mut out = Vec::new();
    let mut body = Vec::with_capacity(limit);
    let mut in_body = 0;
    for record in file.records {
        let json = record.get().as_bytes();
        let full = in_body == opentrail_wire::ingest::MAX_RECORDS_PER_REQUEST;
        if !body.is_empty() && (full || body.len() + json.len() + 3 > limit) {
            in_body = 0;
            body.extend_from_slice(b"]}");
            out.push(Bytes::from(std::mem::take(&mut body)));
        }
        body.extend_from_slice(if body.is_empty() {
            b"{\"Records\":["
        } else {
            b","
        });
        body.extend_from_slice(json);
        in_body += 1;
    }
    if !body.is_empty() {
        body.extend_from_slice(b"]}");
        out.push(Bytes::from(body));
    }
    Ok(out)
}

fn default_state_file(args: &ImportArgs) -> PathBuf {
    let digest = opentrail_sigv4::sha256_hex(args.path.as_bytes());
    args.client
        .data_dir
        .join("imports")
        .join(format!("{}.done", &digest[..16]))
}

fn load_done(path: &Path) -> anyhow::Result<BTreeSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}

#[derive(Default)]
struct Totals {
    accepted: u64,
    rejected: u64,
    first_errors: Vec<String>,
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let source = Arc::new(find_source(&args).await?);
    let names = source.names();
    let state_file = args
        .state_file
        .clone()
        .unwrap_or_else(|| default_state_file(&args));
    if let Some(parent) = state_file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let done = load_done(&state_file)?;
    let pending: Vec<usize> = (0..names.len())
        .filter(|i| !done.contains(&names[*i]))
        .collect();
    eprintln!(
        "importing {} files ({} already imported) from {}",
        pending.len(),
        names.len() - pending.len(),
        args.path
    );
    let progress = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(pending.len() as u64)
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} files {msg} [{elapsed_precise}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut state = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&state_file)
        .with_context(|| format!("failed to open {}", state_file.display()))?;
    let started = std::time::Instant::now();
    let in_flight = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut totals = Totals::default();
    let mut files = tokio::task::JoinSet::new();
    let mut next = pending.into_iter();
    // Read ahead a few files while their batches are in flight.
    let read_ahead = args.concurrency.max(1) * 2;
    loop {
        while files.len() < read_ahead {
            let Some(index) = next.next() else { break };
            let (client, source, in_flight) =
                (client.clone(), Arc::clone(&source), Arc::clone(&in_flight));
            let name = names[index].clone();
            let limit = args.batch_bytes;
            files.spawn(async move {
                let outcome = import_file(&client, &source, index, &name, limit, in_flight).await;
                (name, outcome)
            });
        }
        let Some(joined) = files.join_next().await else {
            break;
        };
        let (name, outcome) = joined?;
        let (accepted, rejected, errors) = outcome?;
        totals.accepted += accepted;
        totals.rejected += rejected;
        totals.first_errors.extend(
            errors
                .into_iter()
                .take(5 - totals.first_errors.len().min(5)),
        );
        writeln!(state, "{name}")?;
        progress.inc(1);
        progress.set_message(format!("{} events", totals.accepted));
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {} events in {elapsed:.2}s ({:.0} events/s); {} rejected",
        totals.accepted,
        totals.accepted as f64 / elapsed.max(1e-9),
        totals.rejected
    );
    for error in &totals.first_errors {
        eprintln!("  rejected: {error}");
    }
    if totals.rejected > 0 {
        bail!("{} records were rejected", totals.rejected);
    }
    Ok(())
}

type FileOutcome = anyhow::Result<(u64, u64, Vec<String>)>;

async fn import_file(
    client: &ApiClient,
    source: &Source,
    index: usize,
    name: &str,
    limit: usize,
    in_flight: Arc<Semaphore>,
) -> FileOutcome {
    let raw = Bytes::from(read_file(source, index).await?);
    // A gzipped log file that fits in one request goes as it is: the server inflates
    // it once, and neither side hashes or copies the inflated text for the signature.
    // One that inflates beyond what the server takes is split like any other.
    if name.ends_with(".gz") && raw.len() <= limit {
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let answer = client.ingest_gzip(raw.clone()).await;
        drop(permit);
        match answer {
            Ok(answer) => return tally(name, vec![answer]),
            Err(failure) if is_too_large(&failure) => {}
            Err(failure) => return Err(failure),
        }
    }
    let owned_name = name.to_owned();
    let bodies = tokio::task::spawn_blocking(move || {
        let text = decompress(&owned_name, raw)?;
        batches(&owned_name, &text, limit)
    })
    .await??;
    let mut sends = tokio::task::JoinSet::new();
    for body in bodies {
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let client = client.clone();
        sends.spawn(async move {
            let answer = client.ingest(body).await;
            drop(permit);
            answer
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = sends.join_next().await {
        answers.push(answer??);
    }
    tally(name, answers)
}

fn is_too_large(failure: &anyhow::Error) -> bool {
    failure
        .downcast_ref::<crate::client::ApiError>()
        .is_some_and(|e| {
            e.code == "RequestEntityTooLargeException"
                || (e.code == "ValidationException" && e.message.contains("records per request"))
        })
}

/// Events accepted and rejected by the answers for file `name`, and the first reasons.
fn tally(name: &str, answers: Vec<serde_json::Value>) -> FileOutcome {
    let (mut accepted, mut rejected, mut errors) = (0, 0, Vec::new());
    for answer in answers {
        accepted += answer["successful"].as_array().map_or(0, Vec::len) as u64;
        for failure in answer["failed"].as_array().into_iter().flatten() {
            rejected += 1;
            if errors.len() < 5 {
                errors.push(format!(
                    "{name}: {} {}",
                    failure["errorCode"].as_str().unwrap_or(""),
                    failure["errorMessage"].as_str().unwrap_or("")
                ));
            }
        }
    }
    Ok((accepted, rejected, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_limit_and_keep_records_exact() {
        let records: Vec<String> = (0..50)
            .map(|i| format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(100)))
            .collect();
        let file = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let bodies = batches("f.json", file.as_bytes(), 1000).unwrap();
        assert!(bodies.len() > 1);
        let mut seen = Vec::new();
        for body in &bodies {
            assert!(body.len() <= 1000);
            let parsed: LogFile<'_> = serde_json::from_slice(body).unwrap();
            seen.extend(parsed.records.iter().map(|r| r.get().to_owned()));
        }
        assert_eq!(seen, records);
    }
}
