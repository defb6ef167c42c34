//! The lake writer: a consumer of the durable event log that writes each enabled store's
//! matching events as zstd Parquet files, partitioned by event day.
//!
//! Exactly once with respect to its cursor: every record of a batch goes into files named by
//! the batch's offset range, and the cursor moves past the batch only once all its files are
//! stored. After a crash the writer starts from the cursor and first deletes the files of
//! any batch at or beyond it (written but never committed), so a replayed record is stored once.

use crate::context::enrich;
use crate::convert::{activity_to_batch, file_batch_of, to_file_layout};
use crate::error::{LakeError, Result};
use crate::facts::Seen;
use crate::schema::{events_file_schema, EVENT_JSON, EVENT_JSON_SKELETON};
use crate::storage::{superseded, LakeStorage, PartFile, StoredPart};
use crate::store::{StoreCatalog, StoreFilter, StoreSchema};
use bytes::Bytes;
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{
    EnabledStatistics, WriterProperties, WriterPropertiesBuilder,
};
use datafusion::parquet::schema::types::ColumnPath;
use futures_util::StreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use opentrail_log::{DurableLog, DurableLogReader, LogError, LogRecord};
use opentrail_model::{Clock, EventRecord};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The writer's cursor name in the event log.
pub const CONSUMER: &str = "lake";
/// Records read from the log per batch (one file per store and day per batch).
const BATCH_RECORDS: usize = 20_000;
/// Batches encoded at once while the writer catches up: one per core of the reference
/// 2-core machine, and one more so that both cores still encode while the oldest batch's
/// files are stored and its cursor committed (`crates/testing/bench/README.md`, "Ingest end
/// to end, 2026-12-07 (second session)": with two, the writer alone at the end of a burst
/// used ~1.7 cores).
const ENCODING_IN_FLIGHT: usize = 3;
/// How long a writer that read less than a batch gathers more records before it writes
/// what it has.
const GATHER_WAIT: Duration = Duration::from_millis(200);
/// The gathering ends sooner, at the first pause this long without a new record: the load
/// paused or ended, and what was sent is written at once rather than after the rest of
/// [`GATHER_WAIT`] (at the end of a burst, 150–200 ms sooner in the store). Records are
/// made durable every few milliseconds under load.
const GATHER_QUIET: Duration = Duration::from_millis(40);

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub records: usize,
    /// Events written, summed over stores (an event two stores admit counts twice).
    pub events_written: usize,
    pub files_written: usize,
    /// Events left out of a store because they are larger than its MaxEventSize, summed
    /// over stores.
    pub events_too_large: usize,
}

pub struct LakeWriter {
    pub(crate) log: Arc<dyn DurableLog>,
    pub(crate) catalog: Arc<dyn StoreCatalog>,
    pub(crate) storage: LakeStorage,
    /// The federated tables this writer keeps current ([`crate::federation`]).
    pub(crate) federation: tokio::sync::Mutex<crate::federation::Tables>,
}

impl LakeWriter {
    pub fn new(
        log: Arc<dyn DurableLog>,
        catalog: Arc<dyn StoreCatalog>,
        storage: LakeStorage,
    ) -> Self {
        Self {
            log,
            catalog,
            storage,
            federation: tokio::sync::Mutex::new(Default::default()),
        }
    }

    /// Where to resume: the committed cursor (or the log's start), after deleting every
    /// lake file of a batch that was written but not committed before a crash.
    pub async fn recover(&self) -> Result<u64> {
        let cursor = match self.log.cursor(CONSUMER).await? {
            Some(cursor) => cursor,
            None => self.log.start_offset(),
        };
        let parts = self.storage.list_parts(None).await?;
        let mut stale: Vec<_> = parts
            .iter()
            .filter(|stored| stored.part.last >= cursor)
            .map(|stored| stored.path.clone())
            .collect();
        // Inputs of a compaction interrupted after storing its output.
        stale.extend(
            superseded(&parts)
                .into_iter()
                .map(|i| parts[i].path.clone()),
        );
        for path in stale {
            tracing::info!(path = %path, cursor, "dropping lake file written beyond the committed cursor");
            match self.storage.objects.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(cursor.max(self.log.start_offset()))
    }

    /// Writes the events of one batch of consecutive records and commits the cursor past it.
    pub async fn write_batch(&self, batch: Vec<(u64, LogRecord)>) -> Result<WriteStats> {
        match self.start_encoding(batch)? {
            Some(encoding) => self.finish(encoding).await,
            None => Ok(WriteStats::default()),
        }
    }

    /// Starts encoding `batch` on a blocking thread (None for an empty batch). Encoding
    /// stores nothing: [`Self::finish`] stores the files and moves the cursor, in the order
    /// the batches were started.
    fn start_encoding(&self, batch: Vec<(u64, LogRecord)>) -> Result<Option<Encoding>> {
        let (Some(&(first, _)), Some(&(last, _))) = (batch.first(), batch.last()) else {
            return Ok(None);
        };
        let filters: Vec<StoreFilter> = self
            .catalog
            .stores()?
            .into_iter()
            .filter(|spec| spec.collects_any(first, last))
            .map(StoreFilter::new)
            .collect();
        let storage = self.storage.clone();
        Ok(Some(tokio::task::spawn_blocking(move || {
            let records = batch.len();
            let (files, events_too_large) = encode_files(&storage, &filters, batch, first, last)?;
            Ok(EncodedBatch {
                files,
                records,
                events_too_large,
                last,
            })
        })))
    }

    /// When no event data store collects any record from `position` to the log's durable
    /// end, commits the cursor at that end and returns it, so the records are not read at
    /// all: a server without stores (or whose stores all stopped ingesting) does not read
    /// its whole log a second time. The end is taken before the stores are asked: a store
    /// created or restarted after that collects from the log's end at that moment
    /// ([`StoreSpec::from_offset`]), which is at or past it, so nothing it collects is
    /// skipped.
    async fn skip_uncollected(&self, position: u64) -> Result<Option<u64>> {
        let end = self.log.durable_end();
        if end <= position {
            return Ok(None);
        }
        let collected = self
            .catalog
            .stores()?
            .iter()
            .any(|spec| spec.collects_any(position, end - 1));
        if collected {
            return Ok(None);
        }
        self.log.commit_cursor(CONSUMER, end).await?;
        Ok(Some(end))
    }

    /// Stores the files of an encoded batch and commits the cursor past it.
    async fn finish(&self, encoding: Encoding) -> Result<WriteStats> {
        let encoded = encoding
            .await
            .map_err(|e| LakeError::Encode(format!("encoding task failed: {e}")))??;
        let mut stats = WriteStats {
            records: encoded.records,
            events_too_large: encoded.events_too_large,
            ..WriteStats::default()
        };
        let mut changed = Vec::new();
        for (path, rows, bytes) in encoded.files {
            self.storage
                .objects
                .put(&path, PutPayload::from_bytes(bytes))
                .await?;
            stats.files_written += 1;
            stats.events_written += rows;
            changed.extend(self.storage.parse_part(&path).map(|part| part.store));
        }
        self.log.commit_cursor(CONSUMER, encoded.last + 1).await?;
        // Federated tables follow (at most one Iceberg commit per store per second).
        self.federate_changed(&changed).await;
        Ok(stats)
    }

    /// Recovers, then writes everything durable now; returns the offset reached. Up to
    /// [`ENCODING_IN_FLIGHT`] batches are encoded at once.
    pub async fn catch_up(&self) -> Result<u64> {
        let mut reader = self.log.reader(self.recover().await?);
        let mut in_flight = VecDeque::new();
        loop {
            let batch = reader.poll_records(BATCH_RECORDS)?;
            if batch.is_empty() {
                break;
            }
            in_flight.extend(self.start_encoding(batch)?);
            if in_flight.len() >= ENCODING_IN_FLIGHT {
                if let Some(encoding) = in_flight.pop_front() {
                    self.finish(encoding).await?;
                }
            }
        }
        while let Some(encoding) = in_flight.pop_front() {
            self.finish(encoding).await?;
        }
        self.federate(true).await?;
        Ok(reader.position())
    }

    /// Writes the log into the lake until `stop` turns true; retries after failures from
    /// the committed cursor. Every [`MAINTENANCE_PERIOD`] it merges small files and drops
    /// event days past each store's retention (today by `clock`).
    pub async fn run(&self, clock: Arc<dyn Clock>, stop: watch::Receiver<bool>) -> Result<()> {
        self.run_observed(clock, stop, &|_| {}).await
    }

    /// [`Self::run`], telling `observe` of each failure (`Some`, with what failed) and of
    /// the first batch written after one (`None`): for a health report.
    pub async fn run_observed(
        &self,
        clock: Arc<dyn Clock>,
        mut stop: watch::Receiver<bool>,
        observe: &(dyn Fn(Option<&str>) + Send + Sync),
    ) -> Result<()> {
        let mut last_maintenance = Instant::now();
        let mut failing = false;
        let fail = |failing: &mut bool, why: String| {
            observe(Some(&why));
            *failing = true;
        };
        // The cursor moved again (a batch stored, or records no store collects skipped):
        // whatever failed before is over.
        let recovered = |failing: &mut bool| {
            if std::mem::take(failing) {
                observe(None);
            }
        };
        loop {
            let start = match self.recover().await {
                Ok(start) => start,
                Err(e) => {
                    tracing::error!(error = %e, "failed to recover the lake writer");
                    fail(
                        &mut failing,
                        format!("failed to recover the lake writer: {e}"),
                    );
                    if pause(&mut stop).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            let mut reader = self.log.reader(start);
            let mut in_flight: VecDeque<Encoding> = VecDeque::new();
            loop {
                if in_flight.is_empty() {
                    match self.skip_uncollected(reader.position()).await {
                        Ok(Some(end)) => {
                            reader = self.log.reader(end);
                            recovered(&mut failing);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "failed to skip the records no event data store collects");
                            fail(
                                &mut failing,
                                format!(
                                    "failed to skip the records no event data store collects: {e}"
                                ),
                            );
                            break;
                        }
                    }
                }
                let batch = tokio::select! {
                    batch = reader.next_records(BATCH_RECORDS) => Some(batch),
                    _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
                    // Idle: federation changes (EnableFederation …) and imported files.
                    _ = tokio::time::sleep(crate::federation::TICK) => None,
                };
                let Some(batch) = batch else {
                    self.federate_logged(false).await;
                    continue;
                };
                let mut batch = match batch {
                    Ok(batch) => batch,
                    Err(LogError::Closed) => return Ok(()),
                    Err(e) => {
                        tracing::error!(error = %e, "failed to read the event log for the lake");
                        fail(&mut failing, format!("failed to read the event log: {e}"));
                        break;
                    }
                };
                gather(reader.as_mut(), &mut batch).await;
                // While the log holds more than a batch, the next batch is encoded while
                // this one is; once caught up, everything read is stored at once.
                let caught_up = batch.len() < BATCH_RECORDS;
                let written = async {
                    in_flight.extend(self.start_encoding(batch)?);
                    while in_flight.len() >= ENCODING_IN_FLIGHT
                        || (caught_up && !in_flight.is_empty())
                    {
                        if let Some(encoding) = in_flight.pop_front() {
                            self.finish(encoding).await?;
                        }
                    }
                    Ok::<_, LakeError>(())
                }
                .await;
                if let Err(e) = written {
                    in_flight.clear();
                    tracing::error!(error = %e, "failed to write events into the lake");
                    fail(
                        &mut failing,
                        format!("failed to write events into the lake: {e}"),
                    );
                    break;
                }
                recovered(&mut failing);
                if last_maintenance.elapsed() >= MAINTENANCE_PERIOD {
                    last_maintenance = Instant::now();
                    self.maintain(clock.as_ref()).await;
                }
            }
            if pause(&mut stop).await {
                return Ok(());
            }
        }
    }

    /// Deletes whole event days older than each store's retention; returns files deleted.
    pub async fn expire(&self, today: NaiveDate) -> Result<usize> {
        let mut deleted = 0;
        for spec in self.catalog.stores()? {
            let oldest_kept = today - chrono::Days::new(u64::from(spec.retention_days));
            let mut listing = self
                .storage
                .objects
                .list(Some(&self.storage.store_prefix(&spec.id)));
            let mut expired = Vec::new();
            while let Some(object) = listing.next().await {
                let object = object?;
                let day = match self.storage.parse_part(&object.location) {
                    Some(part) => Some(part.day),
                    None => self
                        .storage
                        .imported_day(&object.location)
                        .map(|(_, day)| day),
                };
                if day.is_some_and(|day| day < oldest_kept) {
                    expired.push(object.location);
                }
            }
            for path in expired {
                match self.storage.objects.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(deleted)
    }
}

/// Adds to a batch smaller than [`BATCH_RECORDS`] the records that arrive within
/// [`GATHER_WAIT`], until it is full or no record came for [`GATHER_QUIET`].
async fn gather(reader: &mut dyn DurableLogReader, batch: &mut Vec<(u64, LogRecord)>) {
    let deadline = tokio::time::Instant::now() + GATHER_WAIT;
    while batch.len() < BATCH_RECORDS {
        let quiet = (tokio::time::Instant::now() + GATHER_QUIET).min(deadline);
        tokio::select! {
            more = reader.next_records(BATCH_RECORDS - batch.len()) => match more {
                Ok(more) => batch.extend(more),
                // Closed or failing: the next read says so; write what was read.
                Err(e) => {
                    tracing::debug!(error = %e, "stopped gathering records for the lake");
                    return;
                }
            },
            _ = tokio::time::sleep_until(quiet) => return,
        }
    }
}

/// How often the writer merges small files and applies retention.
pub const MAINTENANCE_PERIOD: Duration = Duration::from_secs(600);

impl LakeWriter {
    async fn maintain(&self, clock: &dyn Clock) {
        match self.compact().await {
            Ok(0) => {}
            Ok(files) => tracing::info!(files, "merged small lake files"),
            Err(e) => tracing::warn!(error = %e, "failed to merge small lake files"),
        }
        match self.expire(clock.now().date_naive()).await {
            Ok(0) => {}
            Ok(files) => tracing::info!(files, "dropped lake files past retention"),
            Err(e) => tracing::warn!(error = %e, "failed to drop lake files past retention"),
        }
        // Merged and expired files leave the federated tables now.
        self.federate_logged(true).await;
    }
}

/// Files at most this large are small enough to merge.
const SMALL_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// A merge of small files reads at most this much.
const MAX_MERGE_BYTES: u64 = 256 * 1024 * 1024;
/// Fewer small files than this in a row are left alone.
const MIN_MERGE_FILES: usize = 8;

impl LakeWriter {
    /// Merges runs of small committed files of one store and day (consecutive by offset)
    /// into one file named by the run's whole offset range, then deletes the inputs; a
    /// crash in between leaves inputs that [`Self::recover`] deletes and queries skip.
    /// Returns how many files were merged away. Run it from the writer's task, between
    /// batches.
    pub async fn compact(&self) -> Result<usize> {
        let Some(cursor) = self.log.cursor(CONSUMER).await? else {
            return Ok(0);
        };
        let mut parts = self.storage.list_parts(None).await?;
        let dropped = superseded(&parts);
        parts = parts
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !dropped.contains(i))
            .map(|(_, stored)| stored)
            .collect();
        parts.sort_by(|a, b| {
            (&a.part.store, a.part.day, a.part.first).cmp(&(
                &b.part.store,
                b.part.day,
                b.part.first,
            ))
        });
        let mut merged = 0;
        let mut run: Vec<StoredPart> = Vec::new();
        for stored in parts {
            let continues = run.last().is_some_and(|last: &StoredPart| {
                last.part.store == stored.part.store && last.part.day == stored.part.day
            }) && run.iter().map(|p| p.size).sum::<u64>() + stored.size
                <= MAX_MERGE_BYTES;
            let mergeable = stored.size <= SMALL_FILE_BYTES && stored.part.last < cursor;
            if !(continues && mergeable) {
                merged += self.merge_run(std::mem::take(&mut run)).await?;
            }
            if mergeable {
                run.push(stored);
            }
        }
        merged += self.merge_run(run).await?;
        Ok(merged)
    }

    async fn merge_run(&self, run: Vec<StoredPart>) -> Result<usize> {
        if run.len() < MIN_MERGE_FILES {
            return Ok(0);
        }
        let mut files = Vec::with_capacity(run.len());
        for stored in &run {
            files.push(
                self.storage
                    .objects
                    .get(&stored.path)
                    .await?
                    .bytes()
                    .await?,
            );
        }
        let (first, last) = (&run[0].part, &run[run.len() - 1].part);
        let output = PartFile {
            first: first.first,
            last: last.last,
            ..first.clone()
        };
        let bytes = tokio::task::spawn_blocking(move || merge_parquet(files))
            .await
            .map_err(|e| LakeError::Encode(format!("merging task failed: {e}")))??;
        self.storage
            .objects
            .put(
                &self.storage.part_path(&output),
                PutPayload::from_bytes(bytes),
            )
            .await?;
        for stored in &run {
            match self.storage.objects.delete(&stored.path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::debug!(store = %output.store, day = %output.day, files = run.len(), "merged small lake files");
        Ok(run.len())
    }
}

/// Merges files of one store (so of one schema: the first file's). Files of a
/// CloudTrail-events store written before the skeleton layout are rewritten in it.
fn merge_parquet(files: Vec<Bytes>) -> Result<Bytes> {
    let encode = |e: &dyn std::fmt::Display| LakeError::Encode(e.to_string());
    let mut writer: Option<ArrowWriter<Vec<u8>>> = None;
    let mut first_schema = None;
    for file in files {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| encode(&e))?;
        let schema = if builder.schema().field_with_name(EVENT_JSON).is_ok() {
            events_file_schema()
        } else {
            Arc::clone(builder.schema())
        };
        let schema = first_schema.get_or_insert(schema);
        let reader = builder.build().map_err(|e| encode(&e))?;
        for batch in reader {
            let batch = to_file_layout(batch.map_err(|e| encode(&e))?).map_err(|e| encode(&e))?;
            let writer = match &mut writer {
                Some(writer) => writer,
                None => writer.insert(
                    ArrowWriter::try_new(
                        Vec::new(),
                        Arc::clone(schema),
                        Some(writer_properties_for(&batch)),
                    )
                    .map_err(|e| encode(&e))?,
                ),
            };
            writer.write(&batch).map_err(|e| encode(&e))?;
        }
    }
    let writer = match (writer, first_schema) {
        (Some(writer), _) => writer,
        // Files without rows: one file without rows.
        (None, Some(schema)) => ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties()))
            .map_err(|e| encode(&e))?,
        (None, None) => return Ok(Bytes::new()),
    };
    Ok(Bytes::from(writer.into_inner().map_err(|e| encode(&e))?))
}

/// Rows are stored grouped by who did what (then in time order): neighbouring records are
/// alike, which is what zstd folds (the lake-bench README has the measurement).
///
/// The order is a stable sort by (`userIdentity.arn`, `eventSource`, `eventName`,
/// `eventTime`). Who-did-what keys are far fewer than rows, so each distinct one is ranked
/// once and the rows are sorted by (rank, time, position): no strings are compared per pair
/// of rows (comparing them had been ~5 % of an import's CPU).
fn sort_for_compression(rows: &mut Vec<Row<'_>>) {
    let order = {
        let mut ids: hashbrown::HashMap<(&str, &str, &str), u32> = hashbrown::HashMap::new();
        let mut distinct: Vec<(&str, &str, &str)> = Vec::new();
        let mut order: Vec<(u32, Option<chrono::DateTime<chrono::Utc>>, u32)> = rows
            .iter()
            .enumerate()
            .map(|(position, row)| {
                let (key, time) = row.sort_key();
                let id = *ids.entry(key).or_insert_with(|| {
                    distinct.push(key);
                    (distinct.len() - 1) as u32
                });
                (id, time, position as u32)
            })
            .collect();
        let mut by_key: Vec<u32> = (0..distinct.len() as u32).collect();
        by_key.sort_unstable_by(|&a, &b| distinct[a as usize].cmp(&distinct[b as usize]));
        let mut rank = vec![0u32; distinct.len()];
        for (position, id) in by_key.into_iter().enumerate() {
            rank[id as usize] = position as u32;
        }
        for row in &mut order {
            row.0 = rank[row.0 as usize];
        }
        order.sort_unstable();
        order
    };
    let mut slots: Vec<Option<Row<'_>>> = std::mem::take(rows).into_iter().map(Some).collect();
    rows.extend(
        order
            .into_iter()
            .filter_map(|(_, _, position)| slots[position as usize].take()),
    );
}

/// zstd level 1 (the level fast enough for the writer's throughput target). Columns whose
/// values are all different skip the dictionary the writer would build and drop. Columns
/// no query can prune by (the record text, random identifiers, the keys and values of the
/// free-form maps) carry no min/max statistics: computing them compares every value, and
/// nothing reads them.
fn writer_properties() -> WriterProperties {
    writer_properties_builder().build()
}

/// [`writer_properties`] for a file whose rows `sample` stands for: the columns the sample
/// leaves empty are stored uncompressed. zstd makes such a column chunk larger (a chunk of
/// nulls, 42 bytes, takes 60 compressed), and each compressed column costs the writer a
/// zstd compressor and decompressor per file; in the reference set a third of the columns
/// are empty in nearly every file. A column empty in the sample but not in the file is
/// still written correctly, only without compression.
fn writer_properties_for(sample: &RecordBatch) -> WriterProperties {
    let mut leaves = Vec::new();
    for (field, array) in sample.schema().fields().iter().zip(sample.columns()) {
        empty_leaves(field, array.as_ref(), &mut Vec::new(), &mut leaves);
    }
    leaves
        .into_iter()
        .fold(writer_properties_builder(), |builder, path| {
            builder.set_column_compression(path, Compression::UNCOMPRESSED)
        })
        .build()
}

/// The Parquet leaf columns under `field` (whose values are `array`) that hold no value.
fn empty_leaves(
    field: &Field,
    array: &dyn Array,
    path: &mut Vec<String>,
    out: &mut Vec<ColumnPath>,
) {
    if array.null_count() == array.len() {
        leaf_paths(field, path, out);
        return;
    }
    if let (DataType::Struct(children), Some(array)) = (field.data_type(), array.as_struct_opt()) {
        path.push(field.name().clone());
        for (child, values) in children.iter().zip(array.columns()) {
            empty_leaves(child, values.as_ref(), path, out);
        }
        path.pop();
    }
}

/// Every Parquet leaf column under `field`, as the Arrow writer names them (a list's
/// values under `list`, a map's keys and values under its entries' name).
fn leaf_paths(field: &Field, path: &mut Vec<String>, out: &mut Vec<ColumnPath>) {
    path.push(field.name().clone());
    match field.data_type() {
        DataType::Struct(children) => {
            for child in children {
                leaf_paths(child, path, out);
            }
        }
        DataType::List(item) => {
            path.push("list".into());
            leaf_paths(item, path, out);
            path.pop();
        }
        DataType::Map(entries, _) => leaf_paths(entries, path, out),
        _ => out.push(ColumnPath::new(path.clone())),
    }
    path.pop();
}

fn writer_properties_builder() -> WriterPropertiesBuilder {
    // Skeletons repeat (a few hundred distinct of ~10,000 rows): their dictionary holds
    // them once; min/max of them would help no query.
    let builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_column_statistics_enabled(
            ColumnPath::from(EVENT_JSON_SKELETON),
            EnabledStatistics::None,
        );
    let builder = UNIQUE_COLUMNS.into_iter().fold(builder, |builder, column| {
        builder
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None)
    });
    let builder = MOSTLY_DISTINCT_COLUMNS
        .into_iter()
        .fold(builder, |builder, path| {
            let path = ColumnPath::new(path.iter().map(|part| part.to_string()).collect());
            builder.set_column_dictionary_enabled(path, false)
        });
    unpruned_map_leaves()
        .into_iter()
        .fold(builder, |builder, path| {
            builder.set_column_statistics_enabled(path, EnabledStatistics::None)
        })
}

/// Columns whose values are mostly different (their dictionary outgrows its page and the
/// writer falls back to plain values after hashing every value until then): no dictionary.
/// `eventtime` keeps its dictionary: in a day's compacted file its seconds repeat (10M
/// reference events: 129.3 B/event with it, 129.8 without; lake-bench README).
const MOSTLY_DISTINCT_COLUMNS: [&[&str]; 4] = [
    &["requestparameters", "entries", "value"],
    &["responseelements", "entries", "value"],
    &["additionaleventdata", "entries", "value"],
    &["resources", "list", "item", "arn"],
];

/// Columns whose values are all different: no dictionary, no statistics.
const UNIQUE_COLUMNS: [&str; 2] = ["eventid", "requestid"];

/// The key and value leaves of every `map<string,string>` column of the files' schema.
fn unpruned_map_leaves() -> Vec<ColumnPath> {
    fn walk(field: &Field, path: &mut Vec<String>, leaves: &mut Vec<ColumnPath>) {
        match field.data_type() {
            DataType::Map(_, _) => leaf_paths(field, path, leaves),
            DataType::Struct(children) => {
                path.push(field.name().clone());
                for child in children {
                    walk(child, path, leaves);
                }
                path.pop();
            }
            DataType::List(item) => {
                path.extend([field.name().clone(), "list".into()]);
                walk(item, path, leaves);
                path.truncate(path.len() - 2);
            }
            _ => {}
        }
    }
    let mut leaves = Vec::new();
    for field in events_file_schema().fields() {
        walk(field, &mut Vec::new(), &mut leaves);
    }
    leaves
}

/// Waits a second before retrying; true when asked to stop meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        _ = stop.wait_for(|stopped| *stopped) => true,
    }
}

/// A batch being encoded on a blocking thread.
type Encoding = tokio::task::JoinHandle<Result<EncodedBatch>>;

/// The files of a batch, ready to store.
struct EncodedBatch {
    files: Vec<EncodedFile>,
    records: usize,
    events_too_large: usize,
    /// The offset of the batch's last record.
    last: u64,
}

/// A file to store: its path, how many events it holds, its bytes.
type EncodedFile = (object_store::path::Path, usize, Bytes);

/// The files of one batch: per store and event day, the admitted events as zstd Parquet
/// in the store's schema (enriched with the `eventContext` its configuration asks for);
/// and how many events were left out of a store for being larger than its MaxEventSize.
fn encode_files(
    storage: &LakeStorage,
    filters: &[StoreFilter],
    batch: Vec<(u64, LogRecord)>,
    first: u64,
    last: u64,
) -> Result<(Vec<EncodedFile>, usize)> {
    // Without a store that collects the batch, no record needs reading.
    if filters.is_empty() {
        return Ok((Vec::new(), 0));
    }
    // What each record is: its facts, or the model's parse ([`Seen::of`]). Records that
    // are not events (provenance markers) belong to no store. Sized for the whole batch
    // up front: a filtered iterator gives no length, and growing the list by doubling
    // copied its 208-byte entries again and again (0.5 % of the server's CPU in ingest).
    let mut seen: Vec<(u64, Seen<'_>)> = Vec::with_capacity(batch.len());
    seen.extend(batch.iter().filter_map(|(offset, record)| {
        Seen::of(record.bytes(), record.event()).map(|seen| (*offset, seen))
    }));
    let mut groups: BTreeMap<(usize, NaiveDate), Vec<Row<'_>>> = BTreeMap::new();
    let mut too_large = 0;
    for (offset, event) in &seen {
        let offset = *offset;
        let Some(time) = event.event_time() else {
            tracing::warn!(
                offset,
                "event without a valid eventTime left out of the lake"
            );
            continue;
        };
        let day = time.date_naive();
        for (index, filter) in filters.iter().enumerate() {
            if !filter.admits(offset, event) {
                continue;
            }
            let bytes = event.text().len();
            if bytes > filter.spec.max_event_bytes {
                too_large += 1;
                tracing::warn!(
                    store = %filter.spec.id,
                    offset,
                    event_id = event.event_id(),
                    bytes,
                    max_event_bytes = filter.spec.max_event_bytes,
                    "event larger than the store's MaxEventSize left out of it"
                );
                continue;
            }
            let keys = &filter.spec.context_keys;
            let enriched = if keys.is_empty() {
                None
            } else {
                event.to_event().and_then(|record| enrich(&record, keys))
            };
            let row = match enriched {
                Some(record) => Row::Enriched(record),
                None => Row::Seen(event),
            };
            groups.entry((index, day)).or_default().push(row);
        }
    }
    let files = groups
        .into_iter()
        .map(|((index, day), rows)| {
            let spec = &filters[index].spec;
            let part = PartFile {
                store: spec.id.clone(),
                day,
                first,
                last,
            };
            let count = rows.len();
            let bytes = encode_parquet_as(spec.schema, rows)?;
            Ok((storage.part_path(&part), count, bytes))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((files, too_large))
}

/// Records converted to Arrow at once while encoding a file (see [`encode_parquet_as`]).
/// Measured on the 1M reference set (`opentrail-lake-bench load`, lake-bench README): the
/// writer's peak memory fell from ~446 to ~287 MB against converting a whole
/// 20,000-record batch at once, at the same throughput. At 256 rather than 2,048 a slice's
/// record texts and parsed values stay in the core's cache between the parse and the
/// passes over their keys and values: −8 % writer CPU, −12 % StartImport wall time
/// (2026-12-05); 128 is no faster and 64 slower.
const CONVERT_ROWS: usize = 256;
/// What a stored event takes in a file, about (the lake-bench README: ~139 B): the first
/// guess of a file's size, so its buffer rarely grows.
const ESTIMATED_FILE_BYTES_PER_EVENT: usize = 160;

pub(crate) fn encode_parquet(events: Vec<EventRecord>) -> Result<Bytes> {
    let rows = events.into_iter().map(Row::Enriched).collect();
    encode_parquet_as(StoreSchema::CloudTrailEvents, rows)
}

/// One event as a store's file holds it: the record as the writer saw it, or the record
/// the store's `eventContext` made of it.
enum Row<'a> {
    Seen(&'a Seen<'a>),
    Enriched(EventRecord),
}

impl Row<'_> {
    fn text(&self) -> &str {
        match self {
            Self::Seen(seen) => seen.text(),
            Self::Enriched(event) => event.json(),
        }
    }

    /// Who did what, and when: the order rows are stored in ([`sort_for_compression`]).
    fn sort_key(&self) -> ((&str, &str, &str), Option<chrono::DateTime<chrono::Utc>>) {
        fn of_event(
            event: &EventRecord,
        ) -> ((&str, &str, &str), Option<chrono::DateTime<chrono::Utc>>) {
            let arn = event.user_identity().arn.unwrap_or_default();
            (
                (arn, event.event_source(), event.event_name()),
                event.event_time(),
            )
        }
        match self {
            Self::Seen(Seen::Plain(facts)) => (
                (
                    facts.user_identity_arn.unwrap_or_default(),
                    facts.event_source,
                    facts.event_name,
                ),
                Some(facts.event_time),
            ),
            Self::Seen(Seen::Parsed(event)) | Self::Enriched(event) => of_event(event),
        }
    }

    fn to_event(&self) -> Option<EventRecord> {
        match self {
            Self::Seen(seen) => seen.to_event(),
            Self::Enriched(event) => Some(event.clone()),
        }
    }
}

fn encode_parquet_as(schema: StoreSchema, mut rows: Vec<Row<'_>>) -> Result<Bytes> {
    let encode = |e: &dyn std::fmt::Display| LakeError::Encode(e.to_string());
    if schema == StoreSchema::CloudTrailEvents {
        sort_for_compression(&mut rows);
    }
    // Which columns the file leaves empty, judged from rows spread over all of it (sorted,
    // its first rows are one principal's and leave empty what others fill). A file of one
    // slice is its own sample.
    let step = rows.len().div_ceil(CONVERT_ROWS).max(1);
    let sample = convert(schema, rows.iter().step_by(step)).map_err(|e| encode(&e))?;
    let mut writer = ArrowWriter::try_new(
        Vec::with_capacity(rows.len() * ESTIMATED_FILE_BYTES_PER_EVENT),
        schema.file_schema(),
        Some(writer_properties_for(&sample)),
    )
    .map_err(|e| encode(&e))?;
    if step == 1 {
        if !rows.is_empty() {
            writer.write(&sample).map_err(|e| encode(&e))?;
        }
    } else {
        // Converted a slice at a time into the same row group: the Arrow columns of one
        // slice are what is held at once, and their memory is reused slice after slice.
        // The file holds the same rows in one row group (pages may be cut at other rows).
        for slice in rows.chunks(CONVERT_ROWS) {
            let batch = convert(schema, slice).map_err(|e| encode(&e))?;
            writer.write(&batch).map_err(|e| encode(&e))?;
        }
    }
    Ok(Bytes::from(writer.into_inner().map_err(|e| encode(&e))?))
}

/// `rows` as a batch of `schema`'s file layout.
fn convert<'r, 'a: 'r>(
    schema: StoreSchema,
    rows: impl IntoIterator<Item = &'r Row<'a>>,
) -> std::result::Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    match schema {
        StoreSchema::CloudTrailEvents => {
            let texts: Vec<&str> = rows.into_iter().map(Row::text).collect();
            file_batch_of(&texts)
        }
        StoreSchema::ActivityAuditLog => {
            let events: Vec<EventRecord> = rows.into_iter().filter_map(Row::to_event).collect();
            activity_to_batch(&events)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log reader fed by a channel: `next_records` waits for what is sent (cancel-safe,
    /// as `mpsc::Receiver::recv` is).
    struct ChannelReader {
        records: tokio::sync::mpsc::UnboundedReceiver<u64>,
        position: u64,
    }

    #[async_trait::async_trait]
    impl DurableLogReader for ChannelReader {
        async fn next_records(
            &mut self,
            max: usize,
        ) -> opentrail_log::Result<Vec<(u64, LogRecord)>> {
            let mut batch = Vec::new();
            match self.records.recv().await {
                Some(offset) => batch.push((offset, LogRecord::from_bytes(Bytes::new()))),
                None => return Err(LogError::Closed),
            }
            while batch.len() < max {
                match self.records.try_recv() {
                    Ok(offset) => batch.push((offset, LogRecord::from_bytes(Bytes::new()))),
                    Err(_) => break,
                }
            }
            self.position = batch.last().map_or(self.position, |(offset, _)| offset + 1);
            Ok(batch)
        }

        fn poll_records(&mut self, _max: usize) -> opentrail_log::Result<Vec<(u64, LogRecord)>> {
            Ok(Vec::new())
        }

        fn position(&self) -> u64 {
            self.position
        }
    }

    fn channel_reader() -> (tokio::sync::mpsc::UnboundedSender<u64>, ChannelReader) {
        let (send, records) = tokio::sync::mpsc::unbounded_channel();
        (
            send,
            ChannelReader {
                records,
                position: 0,
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn gathering_ends_at_the_first_quiet_moment() {
        let (send, mut reader) = channel_reader();
        let mut batch = vec![(0, LogRecord::from_bytes(Bytes::new()))];
        let started = tokio::time::Instant::now();
        gather(&mut reader, &mut batch).await;
        assert_eq!(started.elapsed(), GATHER_QUIET);
        assert_eq!(batch.len(), 1);
        drop(send);
    }

    #[tokio::test(start_paused = true)]
    async fn gathering_takes_what_keeps_arriving_until_its_time_is_up() {
        let (send, mut reader) = channel_reader();
        // A record every 10 ms (closer than GATHER_QUIET), for a second.
        let sender = tokio::spawn(async move {
            for offset in 1..=100 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if send.send(offset).is_err() {
                    return;
                }
            }
        });
        let mut batch = vec![(0, LogRecord::from_bytes(Bytes::new()))];
        let started = tokio::time::Instant::now();
        gather(&mut reader, &mut batch).await;
        assert_eq!(started.elapsed(), GATHER_WAIT);
        // Records 1..=20 arrived by then (the 20th exactly at the deadline may or may not
        // be taken); none was lost by a cancelled read: the rest are still there.
        let gathered = batch.len() as u64 - 1;
        assert!((19..=20).contains(&gathered), "{gathered}");
        let offsets: Vec<u64> = batch.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(offsets, (0..=gathered).collect::<Vec<_>>());
        sender.await.unwrap();
        let rest = reader.next_records(1000).await.unwrap();
        assert_eq!(rest.first().map(|(offset, _)| *offset), Some(gathered + 1));
    }

    #[tokio::test(start_paused = true)]
    async fn gathering_stops_once_the_batch_is_full() {
        let (send, mut reader) = channel_reader();
        for offset in 1..BATCH_RECORDS as u64 + 50 {
            send.send(offset).unwrap();
        }
        let mut batch = vec![(0, LogRecord::from_bytes(Bytes::new()))];
        let started = tokio::time::Instant::now();
        gather(&mut reader, &mut batch).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(batch.len(), BATCH_RECORDS);
    }

    const RECORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/bob","accountId":"123456789012"},"eventTime":"2024-03-10T11:45:03Z","eventSource":"s3.amazonaws.com","eventName":"CreateBucket","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","requestParameters":{"bucketName":"b"},"responseElements":null,"requestID":"r1","eventID":"e1","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}"#;

    #[test]
    fn only_columns_queries_prune_by_carry_statistics() {
        let event = EventRecord::from_json(RECORD).unwrap();
        let bytes = encode_parquet(vec![event]).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let group = reader.metadata().row_group(0);
        let path_of = |index: usize| group.column(index).column_path().clone();
        let paths: Vec<ColumnPath> = (0..group.num_columns()).map(path_of).collect();
        let unpruned = unpruned_map_leaves();
        assert!(unpruned.len() >= 8, "{unpruned:?}");
        for path in &unpruned {
            assert!(paths.contains(path), "{path} is not a column of the files");
        }
        for (index, path) in paths.iter().enumerate() {
            let has_statistics = group.column(index).statistics().is_some();
            let name = path.string();
            let expected = !unpruned.contains(path)
                && !UNIQUE_COLUMNS.contains(&name.as_str())
                && name != EVENT_JSON_SKELETON;
            assert_eq!(has_statistics, expected, "statistics of {name}");
        }
    }

    #[test]
    fn columns_empty_in_the_rows_sampled_are_stored_uncompressed_and_read_back() {
        // More rows than one conversion slice; only the last (the newest, so last in the
        // file's order) has an errorCode, and it is not among the rows sampled (every
        // second one) to choose the file's properties.
        let rows = CONVERT_ROWS + 10;
        let events: Vec<EventRecord> = (0..rows)
            .map(|row| {
                let time = format!("2024-03-10T11:{:02}:{:02}Z", row / 60, row % 60);
                let mut record = RECORD
                    .replace("2024-03-10T11:45:03Z", &time)
                    .replace(r#""eventID":"e1""#, &format!(r#""eventID":"e{row}""#));
                if row == rows - 1 {
                    record = record.replace(
                        r#""readOnly":false"#,
                        r#""readOnly":false,"errorCode":"AccessDenied""#,
                    );
                }
                EventRecord::from_json(&record).unwrap()
            })
            .collect();
        let bytes = encode_parquet(events).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let group = reader.metadata().row_group(0);
        let compression = |name: &str| {
            group
                .columns()
                .iter()
                .find(|column| column.column_path().string() == name)
                .map(|column| column.compression())
                .unwrap_or_else(|| panic!("no column {name}"))
        };
        for empty in [
            "errorcode",
            "addendum.reason",
            "useridentity.inscopeof.sourcearn",
        ] {
            assert_eq!(compression(empty), Compression::UNCOMPRESSED, "{empty}");
        }
        for filled in ["eventname", "useridentity.arn", EVENT_JSON_SKELETON] {
            assert!(
                matches!(compression(filled), Compression::ZSTD(_)),
                "{filled}"
            );
        }
        let batches: Vec<RecordBatch> = reader
            .build()
            .unwrap()
            .map(|batch| batch.unwrap())
            .collect();
        let codes: Vec<String> = batches
            .iter()
            .flat_map(|batch| {
                let codes = batch
                    .column_by_name("errorcode")
                    .unwrap()
                    .as_string::<i32>();
                codes
                    .iter()
                    .flatten()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(codes, ["AccessDenied"]);
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            rows
        );
    }

    #[test]
    fn mostly_distinct_columns_have_no_dictionary() {
        let event = EventRecord::from_json(RECORD).unwrap();
        let bytes = encode_parquet(vec![event]).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let group = reader.metadata().row_group(0);
        let mut checked = 0;
        for column in group.columns() {
            let path: Vec<&str> = column
                .column_path()
                .parts()
                .iter()
                .map(String::as_str)
                .collect();
            let dictionary = column.dictionary_page_offset().is_some();
            let distinct = MOSTLY_DISTINCT_COLUMNS.contains(&path.as_slice())
                || UNIQUE_COLUMNS.contains(&path.join(".").as_str());
            if distinct {
                assert!(!dictionary, "dictionary of {path:?}");
            }
            if path == ["eventsource"] || path == [EVENT_JSON_SKELETON] {
                assert!(dictionary, "no dictionary for {path:?}");
            }
            checked += usize::from(distinct);
        }
        assert_eq!(
            checked,
            MOSTLY_DISTINCT_COLUMNS.len() + UNIQUE_COLUMNS.len()
        );
    }

    fn record(arn: Option<&str>, source: &str, name: &str, second: u32, id: usize) -> EventRecord {
        let identity = match arn {
            Some(arn) => format!(r#"{{"type":"IAMUser","arn":"{arn}"}}"#),
            None => r#"{"type":"AWSService"}"#.to_string(),
        };
        EventRecord::from_json(&format!(
            r#"{{"eventVersion":"1.08","userIdentity":{identity},"eventTime":"2024-03-10T11:45:{second:02}Z","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","eventID":"e{id}","eventType":"AwsApiCall","recipientAccountId":"123456789012"}}"#
        ))
        .unwrap()
    }

    proptest::proptest! {
        /// Ranking the keys gives the order of a stable sort by (arn, source, name, time).
        #[test]
        fn sorting_for_compression_is_a_stable_sort_by_who_did_what_then_time(
            rows in proptest::collection::vec(
                (proptest::option::of(0..3usize), 0..3usize, 0..3usize, 0..4u32),
                0..60,
            )
        ) {
            let arns = ["arn:aws:iam::1:user/a", "arn:aws:iam::1:user/b", "arn:aws:iam::1:user/ab"];
            let sources = ["s3.amazonaws.com", "ec2.amazonaws.com", "iam.amazonaws.com"];
            let names = ["GetObject", "PutObject", "CreateUser"];
            let events: Vec<EventRecord> = rows
                .iter()
                .enumerate()
                .map(|(id, &(arn, source, name, second))| {
                    record(arn.map(|a| arns[a]), sources[source], names[name], second, id)
                })
                .collect();
            let mut expected = events.clone();
            expected.sort_by(|a, b| {
                let key = |e: &EventRecord| {
                    (
                        e.user_identity().arn.unwrap_or_default().to_string(),
                        e.event_source().to_string(),
                        e.event_name().to_string(),
                        e.event_time(),
                    )
                };
                key(a).cmp(&key(b))
            });
            // Every other record through its facts, the others as the model parsed them.
            let seen: Vec<Seen> = events
                .iter()
                .enumerate()
                .map(|(at, event)| match at % 2 {
                    0 => Seen::of(event.as_bytes(), None).unwrap(),
                    _ => Seen::Parsed(event.clone()),
                })
                .collect();
            let mut sorted: Vec<Row> = seen.iter().map(Row::Seen).collect();
            sort_for_compression(&mut sorted);
            let sorted: Vec<EventRecord> =
                sorted.iter().map(|row| row.to_event().unwrap()).collect();
            let ids = |events: &[EventRecord]| -> Vec<String> {
                events.iter().map(|e| e.event_id().to_string()).collect()
            };
            proptest::prop_assert_eq!(ids(&sorted), ids(&expected));
        }
    }
}
