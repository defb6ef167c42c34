//! `opentrail import`: reads CloudTrail log and Insights files and sends their records to a
//! running server's ingest API; digest files are skipped (or checked, `--validate-digests`)
//! and other files skipped with a warning. Files already imported (per the state file) are
//! skipped, so an interrupted import resumes; event history ignores events it already holds
//! (by eventID), so re-importing adds no duplicates.

mod digests;
pub use opentrail_model::trail_layout as layout;
mod source;

use crate::args::ImportArgs;
use crate::client::ApiClient;
use anyhow::{bail, Context};
use bytes::Bytes;
use layout::FileKind;
use serde::Deserialize;
use serde_json::value::RawValue;
use source::{find_source, Source};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Semaphore;

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

/// What one file came to.
enum FileOutcome {
    /// Its records were sent: how many the server accepted and rejected, and the first
    /// reasons.
    Sent {
        accepted: u64,
        rejected: u64,
        errors: Vec<String>,
    },
    /// A file outside the layout that is not a log file: skipped, with the reason.
    NotALog(String),
    /// A log or Insights file that could not be read or is not a log file.
    Unreadable(String),
}

/// Files and records of one run.
#[derive(Default)]
struct Totals {
    log_files: u64,
    insight_files: u64,
    digests_skipped: u64,
    foreign_skipped: u64,
    unreadable: u64,
    accepted: u64,
    rejected: u64,
    first_errors: Vec<String>,
}

impl Totals {
    fn add(&mut self, kind: FileKind, name: &str, outcome: FileOutcome) {
        match outcome {
            FileOutcome::Sent {
                accepted,
                rejected,
                errors,
            } => {
                if kind == FileKind::Insight {
                    self.insight_files += 1;
                } else {
                    self.log_files += 1;
                }
                self.accepted += accepted;
                self.rejected += rejected;
                let room = 5 - self.first_errors.len().min(5);
                self.first_errors.extend(errors.into_iter().take(room));
            }
            FileOutcome::NotALog(why) => {
                self.foreign_skipped += 1;
                eprintln!("warning: skipped {name}: {why}");
            }
            FileOutcome::Unreadable(why) => {
                self.unreadable += 1;
                eprintln!("error: {name}: {why}");
            }
        }
    }
}

/// What a file is, by its name (see [`layout::classify`]); the one file named on the
/// command line is a log file unless its name says it is a digest or Insights file.
fn kinds(source: &Source, names: &[String]) -> Vec<FileKind> {
    names
        .iter()
        .map(|name| match layout::classify(name) {
            FileKind::Unknown | FileKind::Foreign if source.is_single_file() => FileKind::Log,
            kind => kind,
        })
        .collect()
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.client)?;
    let source = Arc::new(find_source(&args).await?);
    let names = source.names();
    let kinds = kinds(&source, &names);
    let state_file = args
        .state_file
        .clone()
        .unwrap_or_else(|| default_state_file(&args));
    if let Some(parent) = state_file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let done = load_done(&state_file)?;
    let mut totals = Totals::default();
    let mut digests = Vec::new();
    let mut candidates = Vec::new();
    for (index, kind) in kinds.iter().enumerate() {
        match kind {
            FileKind::Digest => {
                totals.digests_skipped += 1;
                digests.push(index);
            }
            FileKind::Foreign => {
                totals.foreign_skipped += 1;
                eprintln!(
                    "warning: skipped {}: not a CloudTrail log, Insights or digest file",
                    names[index]
                );
            }
            FileKind::Log | FileKind::Insight | FileKind::Unknown => candidates.push(index),
        }
    }
    let pending: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|i| !done.contains(&names[*i]))
        .collect();
    eprintln!(
        "importing {} files ({} already imported) from {}",
        pending.len(),
        candidates.len() - pending.len(),
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
            let kind = kinds[index];
            let limit = args.batch_bytes;
            files.spawn(async move {
                let file = FileToSend {
                    index,
                    name: &name,
                    kind,
                    limit,
                };
                let outcome = import_file(&client, &source, file, in_flight).await;
                (name, kind, outcome)
            });
        }
        let Some(joined) = files.join_next().await else {
            break;
        };
        let (name, kind, outcome) = joined?;
        let outcome = outcome?;
        if matches!(outcome, FileOutcome::Sent { .. }) {
            writeln!(state, "{name}")?;
        }
        progress.suspend(|| totals.add(kind, &name, outcome));
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
    eprintln!(
        "files: {} log files and {} Insights files imported, {} digest files skipped, {} other files skipped, {} log files unreadable",
        totals.log_files,
        totals.insight_files,
        totals.digests_skipped,
        totals.foreign_skipped,
        totals.unreadable
    );
    for error in &totals.first_errors {
        eprintln!("  rejected: {error}");
    }
    let digest_problems = if args.validate_digests {
        let check = digests::check_digests(&source, &names, &digests).await;
        for problem in &check.problems {
            eprintln!("  {problem}");
        }
        eprintln!(
            "digests: {} digest files checked, {}/{} listed log files valid",
            check.digests, check.valid, check.listed
        );
        check.problems.len()
    } else {
        0
    };
    let mut failures = Vec::new();
    if totals.rejected > 0 {
        failures.push(format!("{} records were rejected", totals.rejected));
    }
    if totals.unreadable > 0 {
        failures.push(format!(
            "{} log files could not be imported",
            totals.unreadable
        ));
    }
    if digest_problems > 0 {
        failures.push(format!(
            "digest validation found {digest_problems} problems"
        ));
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// One file to import.
struct FileToSend<'a> {
    index: usize,
    name: &'a str,
    kind: FileKind,
    /// The largest request body.
    limit: usize,
}

/// Sends the records of one file. An error is a failure to talk to the server, which ends
/// the import; problems of the file itself are outcomes.
async fn import_file(
    client: &ApiClient,
    source: &Source,
    file: FileToSend<'_>,
    in_flight: Arc<Semaphore>,
) -> anyhow::Result<FileOutcome> {
    let FileToSend {
        index,
        name,
        kind,
        limit,
    } = file;
    let raw = match source.read(index).await {
        Ok(raw) => Bytes::from(raw),
        Err(error) => return Ok(FileOutcome::Unreadable(format!("{error:#}"))),
    };
    // A gzipped log file that fits in one request goes as it is: the server inflates
    // it once, and neither side hashes or copies the inflated text for the signature.
    // One that inflates beyond what the server takes is split like any other, and one
    // the server refuses is looked at here, to say what is wrong with it. A file outside
    // the layout is looked at first: it may not be a log file.
    if kind != FileKind::Unknown && name.ends_with(".gz") && raw.len() <= limit {
        let permit = Arc::clone(&in_flight).acquire_owned().await?;
        let answer = client.ingest_gzip(raw.clone()).await;
        drop(permit);
        match answer {
            Ok(answer) => return Ok(tally(name, vec![answer])),
            Err(failure) if failure.is::<crate::client::ApiError>() => {}
            Err(failure) => return Err(failure),
        }
    }
    let owned_name = name.to_owned();
    let parsed = tokio::task::spawn_blocking(move || {
        let text = decompress(&owned_name, raw)?;
        batches(&owned_name, &text, limit)
    })
    .await?;
    let bodies = match parsed {
        Ok(bodies) => bodies,
        Err(why) if kind == FileKind::Unknown => {
            return Ok(FileOutcome::NotALog(format!("{why:#}")))
        }
        Err(why) => return Ok(FileOutcome::Unreadable(format!("{why:#}"))),
    };
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
    Ok(tally(name, answers))
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
    FileOutcome::Sent {
        accepted,
        rejected,
        errors,
    }
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
