//! The background copy of one import: finds the day prefixes within its time range, reads
//! each log and Insights file record by record and writes the events in range into every
//! destination store's lake folder, in bounded chunks named by the import and their source
//! (a large file alone, or a group of one day's small files: [`Unit`]). A source's files
//! count once their completion is recorded (with the statistics, in one metadata
//! transaction); a file that fails part-way has its chunks removed and is tried again when
//! the import is, and a run first removes the chunks of sources an interrupted run did not
//! record, so nothing is stored twice.

use crate::record::{
    FailureRecord, ImportRecord, Status, FAILURES, FILES_DONE, IMPORTS, SOURCES_DONE,
};
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
/// Files at most this large (compressed) are read whole and their events written together
/// with those of other small files of the same day ([`Unit`]); larger files are streamed
/// into chunks of their own.
const SMALL_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// A group of small files holds at most this many compressed bytes (~40,000 reference
/// events): what one crash makes the import read again, and how often its progress moves.
const GROUP_BYTES: u64 = 8 * 1024 * 1024;
/// A group's file with more events than this (a small file that inflates far more than
/// usual) is not held whole: it is read again alone and streamed into chunks of its own.
const GROUP_FILE_EVENTS: i64 = CHUNK_EVENTS as i64;
/// Chunks of one unit encoded and written at once while its reading goes on.
const CHUNKS_IN_FLIGHT: usize = 2;
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
    // What an interrupted run wrote for files it never recorded as done goes first.
    if let Err(e) = remove_unfinished_chunks(shared, &import).await {
        record_failure(
            shared,
            id,
            &import.location_uri,
            ERROR_SOURCE,
            &format!("failed to remove what an interrupted run of the import wrote: {e}"),
        )?;
        return finish(shared, id, Status::Failed);
    }
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
        for (key, size) in files {
            if !matches!(classify(&key), FileKind::Log | FileKind::Insight) {
                continue;
            }
            if shared.meta_get(FILES_DONE, &done_key(id, &key))?.is_some() {
                continue;
            }
            remaining[at] += 1;
            pending_files.push(PendingFile { at, key, size });
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
    let units = units_of(pending_files, &prefixes);
    let mut copies = futures_util::stream::iter(units.into_iter().map(|unit| {
        let import = &import;
        let objects = &objects;
        async move {
            let outcomes = copy_unit(shared, import, objects, &unit, stop).await;
            (unit, outcomes)
        }
    }))
    .buffer_unordered(parallel);
    let mut stopped = false;
    while let Some((unit, outcomes)) = copies.next().await {
        let mut copied = Vec::new();
        for (file, outcome) in unit.files.iter().zip(outcomes) {
            let uri = location.uri_of(&file.key);
            match outcome {
                // The others finish (or stop) on their own; none is recorded as done.
                FileOutcome::Stopped => stopped = true,
                FileOutcome::Failed(why) => {
                    tracing::warn!(import = %id, file = %uri, error = %why, "failed to import a log file");
                    record_failure(shared, id, &uri, ERROR_UNREADABLE_FILE, &why)?;
                    failed_files += 1;
                    prefix_failed[file.at] = true;
                }
                FileOutcome::Copied(file_copy) => copied.push((file, uri, file_copy)),
            }
        }
        if copied.is_empty() {
            continue;
        }
        let counted: Vec<usize> = copied.iter().map(|(file, ..)| file.at).collect();
        unit_done(shared, id, &unit, copied)?;
        for at in counted {
            remaining[at] -= 1;
            if remaining[at] == 0 && !prefix_failed[at] {
                prefix_done(shared, id, &prefixes[at])?;
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
    /// The listed objects' keys with their sizes, sorted by key.
    async fn collect_keys(self) -> object_store::Result<Vec<(String, u64)>>;
}

impl CollectKeys
    for futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
{
    async fn collect_keys(mut self) -> object_store::Result<Vec<(String, u64)>> {
        let mut keys = Vec::new();
        while let Some(meta) = self.next().await {
            let meta = meta?;
            keys.push((meta.location.to_string(), meta.size));
        }
        keys.sort();
        Ok(keys)
    }
}

/// A file still to read: its prefix (an index into the import's day prefixes), key and
/// compressed size.
struct PendingFile {
    at: usize,
    key: String,
    size: u64,
}

/// Files read by one task and written as one source's chunks: a large file alone, or
/// small files of one day together, so that each day's events of many small files (one a
/// region, every few minutes, as trails deliver them) make a few large Parquet files
/// instead of one small file each. The reference set's StartImport took 7 % less time when
/// its files were merged by day (the bench README). A unit's chunks count once every file
/// of it that was read is recorded as done, in one transaction ([`unit_done`]).
struct Unit {
    files: Vec<PendingFile>,
    /// Names the unit's chunks ([`opentrail_lake::ImportedFile::source`]): a file read
    /// alone keeps the name its key gives, a group is named by all its keys.
    source: String,
}

impl Unit {
    /// The unit of `files`, named by their keys ([`source_name`]: one file alone keeps
    /// the name its key gives).
    fn of(files: Vec<PendingFile>) -> Self {
        let keys: Vec<&str> = files.iter().map(|file| file.key.as_str()).collect();
        Self {
            source: source_name(&keys),
            files,
        }
    }

    /// Whether the unit's files are read whole before their events join its chunks (so a
    /// file that fails leaves nothing in them), rather than streamed into them.
    fn is_group(&self) -> bool {
        self.files.len() > 1
    }
}

/// The name of the chunks written for `keys` (hex, `[0-9a-f]` only as chunk names need):
/// a file alone is named by its key, as before groups existed, so an import interrupted
/// before them resumes over its own chunks.
fn source_name(keys: &[&str]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    match keys {
        [key] => digest.update(key.as_bytes()),
        keys => {
            digest.update(b"group");
            for key in keys {
                digest.update(b"\n");
                digest.update(key.as_bytes());
            }
        }
    }
    hex::encode(&digest.finalize()[..8])
}

/// Large files alone; small files grouped by the day of their prefix (`…/YYYY/MM/DD`) in
/// key order, up to [`GROUP_BYTES`] a group.
fn units_of(files: Vec<PendingFile>, prefixes: &[String]) -> Vec<Unit> {
    let day_of = |at: usize| {
        let prefix = prefixes[at].trim_end_matches('/');
        let mut segments = prefix.rsplit('/');
        let (day, month, year) = (segments.next(), segments.next(), segments.next());
        (year, month, day)
    };
    let (large, mut small): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|file| file.size > SMALL_FILE_BYTES);
    small.sort_by(|a, b| (day_of(a.at), &a.key).cmp(&(day_of(b.at), &b.key)));
    let mut units: Vec<Unit> = large.into_iter().map(|file| Unit::of(vec![file])).collect();
    let mut group: Vec<PendingFile> = Vec::new();
    let mut group_bytes = 0;
    for file in small {
        let same_day = group
            .last()
            .is_some_and(|last| day_of(last.at) == day_of(file.at));
        if !group.is_empty() && (!same_day || group_bytes + file.size > GROUP_BYTES) {
            units.push(Unit::of(std::mem::take(&mut group)));
            group_bytes = 0;
        }
        group_bytes += file.size;
        group.push(file);
    }
    if !group.is_empty() {
        units.push(Unit::of(group));
    }
    units
}

/// Deletes the chunks an earlier run of `import` wrote for sources it did not record as
/// done (it was stopped by a crash before): their files are read again, maybe grouped
/// otherwise, and must not be stored twice.
async fn remove_unfinished_chunks(
    shared: &Shared,
    import: &ImportRecord,
) -> Result<(), ImportError> {
    let id = &import.id;
    let mine = format!("{id}/");
    let listed = |collection: &str| -> Result<Vec<String>, ImportError> {
        Ok(
            tokio::task::block_in_place(|| shared.meta.list_documents(collection))?
                .into_iter()
                .filter_map(|(key, _)| key.strip_prefix(&mine).map(str::to_owned))
                .collect(),
        )
    };
    let mut finished: std::collections::HashSet<String> =
        listed(SOURCES_DONE)?.into_iter().collect();
    finished.extend(listed(FILES_DONE)?.iter().map(|key| source_name(&[key])));
    for store in &import.destination_ids {
        let chunks = shared
            .lake
            .imported_chunks(store, id)
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?;
        for (path, source) in chunks {
            if finished.contains(&source) {
                continue;
            }
            tracing::info!(import = %id, path = %path, "removing a chunk of an interrupted import run");
            match shared.lake.objects.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(ImportError::Internal(e.to_string())),
            }
        }
    }
    Ok(())
}

fn done_key(id: &str, key: &str) -> String {
    format!("{id}/{key}")
}

/// Reads the files of `unit` and writes their events in range into every destination, as
/// the unit's chunks; one outcome a file, in the unit's order. A file read alone is
/// streamed into the chunks; the files of a group are read whole first, so one that fails
/// leaves nothing in them, and one that holds more than [`GROUP_FILE_EVENTS`] events is
/// streamed alone afterwards, into chunks named by its key. When a chunk cannot be
/// written, or reading stops, the files of the chunks concerned fail (or stop) and those
/// chunks are removed.
async fn copy_unit(
    shared: &Arc<Shared>,
    import: &ImportRecord,
    objects: &Arc<dyn object_store::ObjectStore>,
    unit: &Unit,
    stop: &AtomicBool,
) -> Vec<FileOutcome> {
    let handle = tokio::runtime::Handle::current();
    let keys: Vec<String> = unit.files.iter().map(|file| file.key.clone()).collect();
    let whole = unit.is_group();
    let lake = shared.lake.clone();
    let import = import.clone();
    let objects = Arc::clone(objects);
    let source = unit.source.clone();
    let stopping = Arc::new(AtomicBool::new(stop.load(Ordering::Relaxed)));
    // The blocking reader polls this copy; the caller's flag is mirrored into it.
    let mirror = Arc::clone(&stopping);
    let files = keys.len();
    let outcomes = tokio::task::spawn_blocking(move || {
        let read = |key: &str, writer: &mut ChunkWriter<'_>, whole: bool| {
            read_file(&handle, &objects, key, &import, &mirror, writer, whole)
        };
        let mut writer = ChunkWriter::new(handle.clone(), lake.clone(), &import, source, !whole);
        let mut outcomes: Vec<Option<FileOutcome>> = keys.iter().map(|_| None).collect();
        let mut too_large = Vec::new();
        // Whether the unit's chunks must go: a file read alone failed, a chunk could not
        // be written, or reading stopped.
        let mut abandoned = false;
        for (index, key) in keys.iter().enumerate() {
            let kept = writer.pending.len();
            let Some(outcome) = read(key, &mut writer, whole) else {
                writer.pending.truncate(kept);
                too_large.push(index);
                continue;
            };
            match &outcome {
                FileOutcome::Copied(_) => {}
                // A group's file that fails leaves nothing behind.
                FileOutcome::Failed(_) if whole && writer.error.is_none() => {
                    writer.pending.truncate(kept)
                }
                FileOutcome::Failed(_) | FileOutcome::Stopped => abandoned = true,
            }
            outcomes[index] = Some(outcome);
            if abandoned || (writer.pending.len() >= CHUNK_EVENTS && !writer.flush()) {
                abandoned = true;
                break;
            }
        }
        if abandoned || !writer.finish() {
            writer.remove_written();
            let unwritten = writer.error.take();
            return outcomes
                .into_iter()
                .map(|outcome| match (&unwritten, outcome) {
                    (Some(why), _) => FileOutcome::Failed(why.clone()),
                    (None, Some(FileOutcome::Failed(own))) => FileOutcome::Failed(own),
                    (None, _) => FileOutcome::Stopped,
                })
                .collect();
        }
        for index in too_large {
            let key = &keys[index];
            let mut alone = ChunkWriter::new(
                handle.clone(),
                lake.clone(),
                &import,
                source_name(&[key]),
                true,
            );
            let outcome = match read(key, &mut alone, false) {
                Some(FileOutcome::Copied(copied)) if alone.finish() => FileOutcome::Copied(copied),
                Some(FileOutcome::Copied(_)) => {
                    FileOutcome::Failed(alone.error.take().unwrap_or_default())
                }
                Some(outcome) => outcome,
                None => FileOutcome::Failed("the file was refused as too large twice".into()),
            };
            if !matches!(outcome, FileOutcome::Copied(_)) {
                alone.remove_written();
            }
            outcomes[index] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(FileOutcome::Stopped))
            .collect()
    });
    // Mirror the stop flag while the files are read.
    let mut outcomes = std::pin::pin!(outcomes);
    loop {
        tokio::select! {
            result = &mut outcomes => {
                return result.unwrap_or_else(|e| {
                    (0..files).map(|_| FileOutcome::Failed(format!("import task failed: {e}"))).collect()
                });
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                if stop.load(Ordering::Relaxed) {
                    stopping.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Reads one file's events in range into `writer.pending`: `whole` (a group's file), the
/// file's events stay there, and None says it holds more than [`GROUP_FILE_EVENTS`]; else
/// chunks are flushed as they fill.
fn read_file(
    handle: &tokio::runtime::Handle,
    objects: &Arc<dyn object_store::ObjectStore>,
    key: &str,
    import: &ImportRecord,
    stop: &AtomicBool,
    writer: &mut ChunkWriter<'_>,
    whole: bool,
) -> Option<FileOutcome> {
    let result = match handle.block_on(objects.get(&Path::from(key))) {
        Ok(result) => result,
        Err(e) => return Some(FileOutcome::Failed(format!("failed to read the file: {e}"))),
    };
    let mut too_large = false;
    // A file of the embedded store is read here, on this blocking thread: its stream
    // would read 8 KiB at a time, each on a blocking task of its own.
    let range = result.range.clone();
    let reader: Box<dyn std::io::Read> = match result.payload {
        object_store::GetResultPayload::File(mut file, _) => {
            use std::io::{Read, Seek, SeekFrom};
            if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
                return Some(FileOutcome::Failed(format!("failed to read the file: {e}")));
            }
            Box::new(file.take(range.end - range.start))
        }
        object_store::GetResultPayload::Stream(stream) => {
            Box::new(crate::stream::StreamReader::new(handle.clone(), stream))
        }
    };
    let gzipped = key.ends_with(".gz");
    let mut bad_records = Vec::new();
    let mut bad_record_count = 0;
    let mut index = 0usize;
    let mut events = 0i64;
    let read = crate::stream::for_each_record(reader, gzipped, &mut |text| {
        index += 1;
        if stop.load(Ordering::Relaxed) {
            return crate::stream::Next::Stop;
        }
        let event = match EventRecord::from_slice(text) {
            Ok(event) => event,
            Err(e) => {
                if let Some(why) = crate::stream::json_error(text) {
                    return crate::stream::Next::NotJson(why);
                }
                bad_record_count += 1;
                if bad_records.len() < MAX_RECORD_FAILURES_PER_FILE {
                    bad_records.push((index, format!("record {index} is not a valid event: {e}")));
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
        events += 1;
        writer.pending.push((time.date_naive(), event));
        if whole && events > GROUP_FILE_EVENTS {
            too_large = true;
            return crate::stream::Next::Stop;
        }
        if !whole && writer.pending.len() >= CHUNK_EVENTS && !writer.flush() {
            return crate::stream::Next::Stop;
        }
        crate::stream::Next::Continue
    });
    Some(match read {
        Ok(()) => FileOutcome::Copied(FileCopy {
            events,
            bad_records,
            bad_record_count,
        }),
        Err(crate::stream::ReadError::Stopped) if too_large => return None,
        Err(crate::stream::ReadError::Stopped) => match &writer.error {
            Some(why) => FileOutcome::Failed(why.clone()),
            None => FileOutcome::Stopped,
        },
        Err(crate::stream::ReadError::Unreadable(why)) => FileOutcome::Failed(why),
    })
}

fn in_range(time: DateTime<Utc>, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> bool {
    start.is_none_or(|start| time >= start) && end.is_none_or(|end| time <= end)
}

/// Writes gathered events as chunk files, one per destination and day. For a file streamed
/// alone, chunks are encoded and written while the next one is read (up to
/// [`CHUNKS_IN_FLIGHT`] at once), so one large file keeps more than one core busy; a
/// group's chunks are written before reading goes on (with units already read one per
/// core, overlapping cost more CPU than it saved: the bench README, 2026-12-05).
struct ChunkWriter<'a> {
    handle: tokio::runtime::Handle,
    lake: opentrail_lake::LakeStorage,
    import: &'a ImportRecord,
    source: String,
    chunk: u32,
    pending: Vec<(NaiveDate, EventRecord)>,
    written: Vec<Path>,
    /// Whether chunks are written while reading goes on (a file streamed alone).
    streamed: bool,
    /// The chunks being written, oldest first: each gives the files it wrote, and why it
    /// stopped short if it did.
    in_flight: std::collections::VecDeque<tokio::task::JoinHandle<(Vec<Path>, Option<String>)>>,
    error: Option<String>,
}

impl<'a> ChunkWriter<'a> {
    fn new(
        handle: tokio::runtime::Handle,
        lake: opentrail_lake::LakeStorage,
        import: &'a ImportRecord,
        source: String,
        streamed: bool,
    ) -> Self {
        Self {
            handle,
            lake,
            import,
            source,
            chunk: 0,
            pending: Vec::new(),
            written: Vec::new(),
            streamed,
            in_flight: std::collections::VecDeque::new(),
            error: None,
        }
    }

    /// Starts writing what is pending, once fewer than [`CHUNKS_IN_FLIGHT`] chunks are
    /// being written; false (with `error` set) when a write failed. [`Self::finish`] waits
    /// for every chunk too.
    fn flush(&mut self) -> bool {
        while self.in_flight.len() >= CHUNKS_IN_FLIGHT {
            if !self.settle_oldest() {
                return false;
            }
        }
        if self.pending.is_empty() {
            return true;
        }
        let mut by_day: BTreeMap<NaiveDate, Vec<EventRecord>> = BTreeMap::new();
        for (day, event) in self.pending.drain(..) {
            by_day.entry(day).or_default().push(event);
        }
        let mut files = Vec::new();
        for store in &self.import.destination_ids {
            for (day, events) in &by_day {
                let file = ImportedFile {
                    store: store.clone(),
                    day: *day,
                    import_id: self.import.id.clone(),
                    source: self.source.clone(),
                    chunk: self.chunk,
                };
                files.push((file, events.clone()));
            }
        }
        let lake = self.lake.clone();
        self.in_flight.push_back(self.handle.spawn(async move {
            let mut written = Vec::new();
            for (file, events) in files {
                match lake.put_imported(&file, events).await {
                    Ok(path) => written.push(path),
                    Err(e) => {
                        let why = format!(
                            "failed to write the events into event data store {}: {e}",
                            file.store
                        );
                        return (written, Some(why));
                    }
                }
            }
            (written, None)
        }));
        self.chunk += 1;
        if !self.streamed {
            return self.settle();
        }
        true
    }

    /// Waits for every chunk being written; false (with `error` set) when one failed.
    fn settle(&mut self) -> bool {
        let mut settled = true;
        while !self.in_flight.is_empty() {
            settled &= self.settle_oldest();
        }
        settled
    }

    /// Waits for the oldest chunk being written; false (with `error` set) when it failed.
    fn settle_oldest(&mut self) -> bool {
        let Some(task) = self.in_flight.pop_front() else {
            return true;
        };
        let (written, failed) = self.handle.block_on(task).unwrap_or_else(|e| {
            (
                Vec::new(),
                Some(format!("the import's write task failed: {e}")),
            )
        });
        self.written.extend(written);
        match failed {
            None => true,
            Some(why) => {
                self.error = Some(why);
                false
            }
        }
    }

    /// Writes what is pending and waits until every chunk is written; false (with `error`
    /// set) when a write failed.
    fn finish(&mut self) -> bool {
        self.flush() && self.settle()
    }

    fn remove_written(&mut self) {
        self.settle();
        for path in self.written.drain(..) {
            if let Err(e) = self.handle.block_on(self.lake.objects.delete(&path)) {
                tracing::warn!(path = %path, error = %e, "failed to remove a partly imported file");
            }
        }
    }
}

/// Records the files of a unit that were copied, with their events and bad records, and
/// the unit's source as done, in one transaction: its chunks count all at once (a crash
/// before leaves them to [`remove_unfinished_chunks`]).
fn unit_done(
    shared: &Shared,
    id: &str,
    unit: &Unit,
    copied: Vec<(&PendingFile, String, FileCopy)>,
) -> Result<(), ImportError> {
    let now = shared.clock.now();
    shared.transaction(|tx| {
        let source_done = format!("{id}/{}", unit.source);
        if tx.get_document(SOURCES_DONE, &source_done)?.is_some() {
            return Ok(());
        }
        tx.put_document(SOURCES_DONE, &source_done, &unit.files.len().to_string())?;
        let mut record = load_in(tx, id)?;
        for (file, uri, copy) in &copied {
            let done = done_key(id, &file.key);
            if tx.get_document(FILES_DONE, &done)?.is_some() {
                continue;
            }
            tx.put_document(FILES_DONE, &done, &copy.events.to_string())?;
            file_failures(tx, id, uri, copy, now)?;
            record.statistics.files_completed += 1;
            record.statistics.events_completed += copy.events;
        }
        record.updated_at = now;
        save_in(tx, &record)
    })
}

/// A copied file's bad records as failures; a failure of the file itself from an earlier
/// run turns `SUCCEEDED`.
fn file_failures(
    tx: &dyn Documents,
    id: &str,
    uri: &str,
    copied: &FileCopy,
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
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
    let earlier = failure_key(id, uri);
    if let Some(text) = tx.get_document(FAILURES, &earlier)? {
        let mut failure: FailureRecord = decode(&earlier, &text)?;
        failure.status = "SUCCEEDED".into();
        failure.updated_at = now;
        put_failure(tx, id, uri, failure)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(at: usize, key: &str, size: u64) -> PendingFile {
        PendingFile {
            at,
            key: key.into(),
            size,
        }
    }

    #[test]
    fn small_files_are_grouped_by_day_and_large_ones_read_alone() {
        let prefixes: Vec<String> = [
            "AWSLogs/1/CloudTrail/eu-west-1/2024/03/01",
            "AWSLogs/1/CloudTrail/us-east-1/2024/03/01",
            "AWSLogs/1/CloudTrail/us-east-1/2024/03/02",
            "AWSLogs/1/CloudTrail-Insight/us-east-1/2024/03/01",
        ]
        .map(String::from)
        .to_vec();
        let mib = 1024 * 1024;
        let units = units_of(
            vec![
                file(0, "a/eu-1", mib),
                file(1, "b/us-1", mib),
                file(1, "b/us-1-large", 3 * mib),
                file(2, "c/us-2", mib),
                file(3, "d/insight-1", mib),
            ],
            &prefixes,
        );
        let keys: Vec<Vec<&str>> = units
            .iter()
            .map(|unit| unit.files.iter().map(|f| f.key.as_str()).collect())
            .collect();
        assert_eq!(
            keys,
            vec![
                vec!["b/us-1-large"],
                vec!["a/eu-1", "b/us-1", "d/insight-1"],
                vec!["c/us-2"],
            ]
        );
        // A file read alone keeps the chunk names its key gave before groups existed.
        assert_eq!(units[0].source, source_name(&["b/us-1-large"]));
        assert_eq!(units[2].source, source_name(&["c/us-2"]));
        assert!(!units[2].is_group() && units[1].is_group());
        assert_ne!(units[1].source, source_name(&["a/eu-1"]));
        assert_eq!(units[0].source.len(), 16);
    }

    #[test]
    fn a_group_holds_at_most_its_bytes() {
        let prefixes = vec!["AWSLogs/1/CloudTrail/us-east-1/2024/03/01".to_string()];
        let files = (0..20)
            .map(|n| file(0, &format!("k{n:02}"), SMALL_FILE_BYTES))
            .collect();
        let units = units_of(files, &prefixes);
        let per_group = (GROUP_BYTES / SMALL_FILE_BYTES) as usize;
        assert_eq!(units.len(), 20_usize.div_ceil(per_group));
        assert!(units.iter().all(|unit| unit.files.len() <= per_group));
        let sources: std::collections::HashSet<&str> =
            units.iter().map(|unit| unit.source.as_str()).collect();
        assert_eq!(sources.len(), units.len());
    }
}
