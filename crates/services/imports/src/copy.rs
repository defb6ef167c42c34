//! The background copy of one import: finds the day prefixes within its time range, reads
//! each log and Insights file record by record and writes the events in range into every
//! destination store's lake folder, in bounded chunks with names derived from the import
//! and the source file, so a re-run overwrites instead of duplicating. A file counts once
//! its completion is recorded (with the statistics, in one metadata transaction); a file
//! that fails part-way has its chunks removed and is tried again when the import is.

use crate::record::{FailureRecord, ImportRecord, Status, FAILURES, FILES_DONE, IMPORTS};
use crate::source::{day_prefixes, DayRange, Location};
use crate::{ImportError, Shared};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use opentrail_lake::ImportedFile;
use opentrail_meta::Documents;
use opentrail_model::trail_layout::{classify, FileKind};
use opentrail_model::EventRecord;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Events gathered before they are written as one chunk (per destination and day).
pub const CHUNK_EVENTS: usize = 20_000;
/// Most files read at once (one blocking thread each; fewer on fewer cores).
const MAX_FILES_AT_ONCE: usize = 4;
/// Bad records of one file recorded as failures; more are counted in the last one's message.
const MAX_RECORD_FAILURES_PER_FILE: usize = 100;

pub(crate) const ERROR_UNREADABLE_FILE: &str = "UnreadableFile";
pub(crate) const ERROR_INVALID_RECORD: &str = "InvalidRecord";
pub(crate) const ERROR_SOURCE: &str = "InvalidImportSource";

/// What one file gave.
struct FileCopy {
    events: i64,
    bad_records: Vec<(usize, String)>,
    bad_record_count: usize,
}

enum FileOutcome {
    Copied(FileCopy),
    Failed(String),
    Stopped,
}

/// Runs an import until it completes, fails or `stop` is set.
pub(crate) async fn run(shared: Arc<Shared>, id: String, stop: Arc<AtomicBool>) {
    if let Err(e) = copy(&shared, &id, &stop).await {
        tracing::error!(import = %id, error = %e, "import failed");
        let _ = finish(&shared, &id, Status::Failed);
    }
}

async fn copy(shared: &Arc<Shared>, id: &str, stop: &AtomicBool) -> Result<(), ImportError> {
    let Some(import) = shared.load(id)? else {
        return Ok(());
    };
    let Some(location) = Location::parse(&import.location_uri) else {
        record_failure(
            shared,
            id,
            &import.location_uri,
            ERROR_SOURCE,
            "the S3LocationUri is not s3://bucket[/prefix]",
        )?;
        return finish(shared, id, Status::Failed);
    };
    let objects = match shared.buckets.bucket_store(&location.bucket) {
        Ok(objects) => objects,
        Err(e) => {
            record_failure(
                shared,
                id,
                &import.location_uri,
                ERROR_SOURCE,
                &format!("failed to open bucket {}: {e}", location.bucket),
            )?;
            return finish(shared, id, Status::Failed);
        }
    };
    let range = DayRange::new(import.start_event_time, import.end_event_time);
    let prefixes = match day_prefixes(objects.as_ref(), &location, range).await {
        Ok(prefixes) => prefixes,
        Err(e) => {
            record_failure(
                shared,
                id,
                &import.location_uri,
                ERROR_SOURCE,
                &format!("failed to list bucket {}: {e}", location.bucket),
            )?;
            return finish(shared, id, Status::Failed);
        }
    };
    update(shared, id, |record| {
        if record.status == Status::Initializing {
            record.status = Status::InProgress;
        }
        record.statistics.prefixes_found = prefixes.len() as i64;
    })?;
    // Every file still to read, with its prefix; listing is cheap next to reading.
    let mut failed_files = 0;
    let mut pending_files = Vec::new();
    let mut remaining = vec![0usize; prefixes.len()];
    let mut prefix_failed = vec![false; prefixes.len()];
    for (at, prefix) in prefixes.iter().enumerate() {
        let files = objects
            .list(Some(&Path::from(prefix.as_str())))
            .collect_keys()
            .await;
        let files = match files {
            Ok(files) => files,
            Err(e) => {
                record_failure(
                    shared,
                    id,
                    &location.uri_of(prefix),
                    ERROR_UNREADABLE_FILE,
                    &format!("failed to list the prefix: {e}"),
                )?;
                failed_files += 1;
                prefix_failed[at] = true;
                continue;
            }
        };
        for key in files {
            if !matches!(classify(&key), FileKind::Log | FileKind::Insight) {
                continue;
            }
            if shared.meta_get(FILES_DONE, &done_key(id, &key))?.is_some() {
                continue;
            }
            remaining[at] += 1;
            pending_files.push((at, key));
        }
    }
    for (at, prefix) in prefixes.iter().enumerate() {
        if remaining[at] == 0 && !prefix_failed[at] {
            prefix_done(shared, id, prefix)?;
        }
    }
    // Files are read (inflated, parsed, encoded) several at a time, one blocking thread
    // each; each counts once its own completion is recorded, in whatever order they end.
    let parallel = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, MAX_FILES_AT_ONCE);
    let mut copies = futures_util::stream::iter(pending_files.into_iter().map(|(at, key)| {
        let import = &import;
        let objects = &objects;
        async move {
            let outcome = copy_file(shared, import, objects, &key, stop).await;
            (at, key, outcome)
        }
    }))
    .buffer_unordered(parallel);
    let mut stopped = false;
    while let Some((at, key, outcome)) = copies.next().await {
        let uri = location.uri_of(&key);
        match outcome {
            // The others finish (or stop) on their own; none is recorded as done.
            FileOutcome::Stopped => stopped = true,
            FileOutcome::Failed(why) => {
                tracing::warn!(import = %id, file = %uri, error = %why, "failed to import a log file");
                record_failure(shared, id, &uri, ERROR_UNREADABLE_FILE, &why)?;
                failed_files += 1;
                prefix_failed[at] = true;
            }
            FileOutcome::Copied(copied) => {
                file_done(shared, id, &key, &uri, copied)?;
                remaining[at] -= 1;
                if remaining[at] == 0 && !prefix_failed[at] {
                    prefix_done(shared, id, &prefixes[at])?;
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            stopped = true;
        }
    }
    if stopped || stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    finish(
        shared,
        id,
        if failed_files > 0 {
            Status::Failed
        } else {
            Status::Completed
        },
    )
}

trait CollectKeys {
    async fn collect_keys(self) -> object_store::Result<Vec<String>>;
}

impl CollectKeys
    for futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
{
    async fn collect_keys(mut self) -> object_store::Result<Vec<String>> {
        let mut keys = Vec::new();
        while let Some(meta) = self.next().await {
            keys.push(meta?.location.to_string());
        }
        keys.sort();
        Ok(keys)
    }
}

fn done_key(id: &str, key: &str) -> String {
    format!("{id}/{key}")
}

/// Reads one file and writes its events in range into every destination.
async fn copy_file(
    shared: &Arc<Shared>,
    import: &ImportRecord,
    objects: &Arc<dyn object_store::ObjectStore>,
    key: &str,
    stop: &AtomicBool,
) -> FileOutcome {
    let stream = match objects.get(&Path::from(key)).await {
        Ok(result) => result.into_stream(),
        Err(e) => return FileOutcome::Failed(format!("failed to read the file: {e}")),
    };
    let handle = tokio::runtime::Handle::current();
    let source = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes())[..8]);
    let gzipped = key.ends_with(".gz");
    let lake = shared.lake.clone();
    let import = import.clone();
    let stopping = Arc::new(AtomicBool::new(stop.load(Ordering::Relaxed)));
    // The blocking reader polls this copy; the caller's flag is mirrored into it.
    let mirror = Arc::clone(&stopping);
    let outcome = tokio::task::spawn_blocking(move || {
        let reader = crate::stream::StreamReader::new(handle.clone(), stream);
        let mut writer = ChunkWriter {
            handle,
            lake,
            import: &import,
            source,
            chunk: 0,
            pending: Vec::new(),
            written: Vec::new(),
            events: 0,
            error: None,
        };
        let mut bad_records = Vec::new();
        let mut bad_record_count = 0;
        let mut index = 0usize;
        let read = crate::stream::for_each_record(reader, gzipped, &mut |raw| {
            index += 1;
            if mirror.load(Ordering::Relaxed) {
                return crate::stream::Next::Stop;
            }
            let event = match EventRecord::from_raw_value(raw) {
                Ok(event) => event,
                Err(e) => {
                    bad_record_count += 1;
                    if bad_records.len() < MAX_RECORD_FAILURES_PER_FILE {
                        bad_records
                            .push((index, format!("record {index} is not a valid event: {e}")));
                    }
                    return crate::stream::Next::Continue;
                }
            };
            let Some(time) = event.event_time() else {
                bad_record_count += 1;
                if bad_records.len() < MAX_RECORD_FAILURES_PER_FILE {
                    bad_records.push((index, format!("record {index} has no valid eventTime")));
                }
                return crate::stream::Next::Continue;
            };
            if !in_range(time, import.start_event_time, import.end_event_time) {
                return crate::stream::Next::Continue;
            }
            writer.pending.push((time.date_naive(), event));
            if writer.pending.len() >= CHUNK_EVENTS && !writer.flush() {
                return crate::stream::Next::Stop;
            }
            crate::stream::Next::Continue
        });
        let outcome = match read {
            Ok(()) if writer.flush() => FileOutcome::Copied(FileCopy {
                events: writer.events,
                bad_records,
                bad_record_count,
            }),
            Ok(()) => FileOutcome::Failed(writer.error.take().unwrap_or_default()),
            Err(crate::stream::ReadError::Stopped) => match writer.error.take() {
                Some(why) => FileOutcome::Failed(why),
                None => FileOutcome::Stopped,
            },
            Err(crate::stream::ReadError::Unreadable(why)) => FileOutcome::Failed(why),
        };
        if !matches!(outcome, FileOutcome::Copied(_)) {
            writer.remove_written();
        }
        outcome
    });
    // Mirror the stop flag while the file is read.
    let mut outcome = std::pin::pin!(outcome);
    loop {
        tokio::select! {
            result = &mut outcome => {
                return result.unwrap_or_else(|e| FileOutcome::Failed(format!("import task failed: {e}")));
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                if stop.load(Ordering::Relaxed) {
                    stopping.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

fn in_range(time: DateTime<Utc>, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> bool {
    start.is_none_or(|start| time >= start) && end.is_none_or(|end| time <= end)
}

/// Writes gathered events as chunk files, one per destination and day.
struct ChunkWriter<'a> {
    handle: tokio::runtime::Handle,
    lake: opentrail_lake::LakeStorage,
    import: &'a ImportRecord,
    source: String,
    chunk: u32,
    pending: Vec<(NaiveDate, EventRecord)>,
    written: Vec<Path>,
    events: i64,
    error: Option<String>,
}

impl ChunkWriter<'_> {
    /// Writes what is pending; false (with `error` set) when a write failed.
    fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let mut by_day: BTreeMap<NaiveDate, Vec<EventRecord>> = BTreeMap::new();
        let count = self.pending.len() as i64;
        for (day, event) in self.pending.drain(..) {
            by_day.entry(day).or_default().push(event);
        }
        for store in &self.import.destination_ids {
            for (day, events) in &by_day {
                let file = ImportedFile {
                    store: store.clone(),
                    day: *day,
                    import_id: self.import.id.clone(),
                    source: self.source.clone(),
                    chunk: self.chunk,
                };
                match self
                    .handle
                    .block_on(self.lake.put_imported(&file, events.clone()))
                {
                    Ok(path) => self.written.push(path),
                    Err(e) => {
                        self.error = Some(format!(
                            "failed to write the events into event data store {store}: {e}"
                        ));
                        return false;
                    }
                }
            }
        }
        self.chunk += 1;
        self.events += count;
        true
    }

    fn remove_written(&mut self) {
        for path in self.written.drain(..) {
            if let Err(e) = self.handle.block_on(self.lake.objects.delete(&path)) {
                tracing::warn!(path = %path, error = %e, "failed to remove a partly imported file");
            }
        }
    }
}

/// Records a finished file with its events and bad records, once.
fn file_done(
    shared: &Shared,
    id: &str,
    key: &str,
    uri: &str,
    copied: FileCopy,
) -> Result<(), ImportError> {
    let now = shared.clock.now();
    shared.transaction(|tx| {
        let done = done_key(id, key);
        if tx.get_document(FILES_DONE, &done)?.is_some() {
            return Ok(());
        }
        tx.put_document(FILES_DONE, &done, &copied.events.to_string())?;
        for (n, (index, message)) in copied.bad_records.iter().enumerate() {
            let message = if n + 1 == copied.bad_records.len()
                && copied.bad_record_count > copied.bad_records.len()
            {
                format!(
                    "{message} ({} more bad records in this file are not listed)",
                    copied.bad_record_count - copied.bad_records.len()
                )
            } else {
                message.clone()
            };
            put_failure(
                tx,
                id,
                &format!("{uri}#{index}"),
                FailureRecord {
                    location: uri.to_owned(),
                    status: "FAILED".into(),
                    error_type: ERROR_INVALID_RECORD.into(),
                    error_message: message,
                    updated_at: now,
                },
            )?;
        }
        // A file that failed in an earlier run and has now been read.
        let earlier = failure_key(id, uri);
        if let Some(text) = tx.get_document(FAILURES, &earlier)? {
            let mut failure: FailureRecord = decode(&earlier, &text)?;
            failure.status = "SUCCEEDED".into();
            failure.updated_at = now;
            put_failure(tx, id, uri, failure)?;
        }
        let mut record = load_in(tx, id)?;
        record.statistics.files_completed += 1;
        record.statistics.events_completed += copied.events;
        record.updated_at = now;
        save_in(tx, &record)
    })
}

fn prefix_done(shared: &Shared, id: &str, prefix: &str) -> Result<(), ImportError> {
    shared.transaction(|tx| {
        let done = format!("{id}/{prefix}/");
        if tx.get_document(FILES_DONE, &done)?.is_some() {
            return Ok(());
        }
        tx.put_document(FILES_DONE, &done, "prefix")?;
        let mut record = load_in(tx, id)?;
        record.statistics.prefixes_completed += 1;
        save_in(tx, &record)
    })
}

fn failure_key(id: &str, location: &str) -> String {
    format!("{id}/{location}")
}

fn put_failure(
    tx: &dyn Documents,
    id: &str,
    location_key: &str,
    failure: FailureRecord,
) -> Result<(), ImportError> {
    let text = serde_json::to_string(&failure)
        .map_err(|e| ImportError::Internal(format!("failed to encode an import failure: {e}")))?;
    tx.put_document(FAILURES, &failure_key(id, location_key), &text)?;
    Ok(())
}

fn record_failure(
    shared: &Shared,
    id: &str,
    location: &str,
    error_type: &str,
    message: &str,
) -> Result<(), ImportError> {
    let now = shared.clock.now();
    shared.transaction(|tx| {
        put_failure(
            tx,
            id,
            location,
            FailureRecord {
                location: location.to_owned(),
                status: "FAILED".into(),
                error_type: error_type.to_owned(),
                error_message: message.to_owned(),
                updated_at: now,
            },
        )
    })
}

/// Moves an ongoing import to `status` (a stopped one stays stopped).
fn finish(shared: &Shared, id: &str, status: Status) -> Result<(), ImportError> {
    update(shared, id, |record| {
        if record.status.is_ongoing() {
            record.status = status;
        }
    })
}

fn update(
    shared: &Shared,
    id: &str,
    change: impl Fn(&mut ImportRecord),
) -> Result<(), ImportError> {
    let now = shared.clock.now();
    shared.transaction(|tx| {
        let mut record = load_in(tx, id)?;
        change(&mut record);
        record.updated_at = now;
        save_in(tx, &record)
    })
}

pub(crate) fn load_in(tx: &dyn Documents, id: &str) -> Result<ImportRecord, ImportError> {
    let text = tx
        .get_document(IMPORTS, id)?
        .ok_or_else(|| ImportError::ImportNotFound(format!("Import {id} not found")))?;
    decode(id, &text)
}

pub(crate) fn save_in(tx: &dyn Documents, record: &ImportRecord) -> Result<(), ImportError> {
    let text = serde_json::to_string(record)
        .map_err(|e| ImportError::Internal(format!("failed to encode import: {e}")))?;
    tx.put_document(IMPORTS, &record.id, &text)?;
    Ok(())
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    text: &str,
) -> Result<T, ImportError> {
    serde_json::from_str(text).map_err(|e| {
        ImportError::Internal(format!("stored import document {key} is unreadable: {e}"))
    })
}
