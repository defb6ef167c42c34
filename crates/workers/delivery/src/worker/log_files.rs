//! Writing log files: gzip due batches on the blocking pool, write them concurrently,
//! spool what fails, and drain the spool once a trail's bucket answers again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use opentrail_model::iso8601;
use opentrail_objstore::{ObjectStore, StoreError};
use tokio::task::JoinSet;
use tracing::{debug, error, warn};

use super::{lock, on_blocking_pool, DeliveryWorker};
use crate::batcher::{Lane, OpenBatch};
use crate::digest::{DigestLogFile, HASH_ALGORITHM};
use crate::directory::DeliveryOutcome;
use crate::error::{s3_error_code, DeliveryError};
use crate::intents::FileIntent;
use crate::log_file::{build_log_file_timed, LogFile};
use crate::object_keys::{insight_log_file_key, log_file_key, log_file_suffix};
use crate::spool::SealedFile;

impl DeliveryWorker {
    /// Turns batches into files and writes them, after every file already gzipping;
    /// a failed file goes to the spool.
    pub(super) async fn write_batches(
        &mut self,
        batches: Vec<(Lane, OpenBatch)>,
    ) -> Result<(), DeliveryError> {
        self.start_sealing(batches);
        let sealed = self.finish_sealing(true).await?;
        let writes = self.prepare_writes(sealed).await?;
        let requests = writes.iter().map(put_request).collect();
        let results = put_all(&self.deps.store, self.config.attempt_timeout, requests).await;
        self.finish_writes(writes, results).await
    }

    /// Starts gzipping each batch on the blocking pool.
    pub(super) fn start_sealing(&mut self, batches: Vec<(Lane, OpenBatch)>) {
        for (lane, batch) in batches {
            let (first_offset, last_offset) = (batch.first_offset, batch.last_offset);
            self.push_sealing(lane, batch.records, first_offset, last_offset, None);
        }
    }

    /// Starts gzipping the records of a file named before a crash, under that name.
    pub(super) fn start_sealing_named(
        &mut self,
        lane: Lane,
        records: Vec<opentrail_model::EventRecord>,
        named: FileIntent,
    ) {
        let (first_offset, last_offset) = (named.first_offset, named.last_offset);
        self.push_sealing(lane, records, first_offset, last_offset, Some(named));
    }

    fn push_sealing(
        &mut self,
        lane: Lane,
        records: Vec<opentrail_model::EventRecord>,
        first_offset: u64,
        last_offset: u64,
        named: Option<FileIntent>,
    ) {
        let count = records.len();
        let job = tokio::task::spawn_blocking(move || {
            let (file, gzip_time) = build_log_file_timed(&records);
            (lane, file, gzip_time)
        });
        self.sealing.push_back(super::Sealing {
            first_offset,
            last_offset,
            named,
            records: count,
            job,
        });
    }

    /// Takes the gzipped files from the front of the queue: those finished, or all of
    /// them when `wait` is set. Each gets its object key now, as it is about to be written,
    /// and the key with the file's offsets is durable before this returns.
    pub(super) async fn finish_sealing(
        &mut self,
        wait: bool,
    ) -> Result<Vec<SealedFile>, DeliveryError> {
        let mut sealed = Vec::new();
        let mut named_now = false;
        while let Some(front) = self.sealing.front() {
            if !wait && !front.job.is_finished() {
                break;
            }
            let front = self.sealing.pop_front().expect("front exists");
            let (lane, file, gzip_time) = front
                .job
                .await
                .map_err(|e| DeliveryError::Task(e.to_string()))?;
            self.stats.gzip_nanos += gzip_time.as_nanos() as u64;
            self.stats.uncompressed_bytes += file.uncompressed_len as u64;
            self.stats.compressed_bytes += file.gzip.len() as u64;
            let named = match front.named {
                Some(intent) => SealedFile {
                    lane,
                    bucket: intent.bucket,
                    key: intent.key,
                    file,
                    validation: intent.validation,
                },
                None => {
                    let named = self.name_file(lane, file, front.first_offset)?;
                    self.intents.add(
                        &named.lane,
                        FileIntent {
                            bucket: named.bucket.clone(),
                            key: named.key.clone(),
                            validation: named.validation,
                            first_offset: front.first_offset,
                            last_offset: front.last_offset,
                            records: front.records,
                            written: false,
                        },
                    );
                    named_now = true;
                    named
                }
            };
            sealed.push(named);
        }
        if named_now {
            self.persist_intents().await?;
        }
        Ok(sealed)
    }

    fn name_file(
        &self,
        lane: Lane,
        file: LogFile,
        first_offset: u64,
    ) -> Result<SealedFile, DeliveryError> {
        let key = lane.trail.to_string();
        let target = match self.trails.get(&key) {
            Some((_, target)) => target,
            None => self
                .retired
                .get(&key)
                .ok_or_else(|| DeliveryError::Task(format!("no target for trail {key}")))?,
        };
        let name = match lane.insight {
            false => log_file_key,
            true => insight_log_file_key,
        };
        Ok(SealedFile {
            key: name(
                target.prefix(),
                &target.account,
                &lane.region,
                self.deps.clock.now(),
                &log_file_suffix(&key, &lane.region, first_offset),
            ),
            bucket: target.s3_bucket.clone(),
            validation: target.log_file_validation,
            lane,
            file,
        })
    }

    /// Spools the files of trails that may not be written to now (backing off, or older
    /// files waiting) and returns the others, to be written.
    pub(super) async fn prepare_writes(
        &mut self,
        sealed: Vec<SealedFile>,
    ) -> Result<Vec<SealedFile>, DeliveryError> {
        let now = self.deps.clock.now();
        let mut attempt = Vec::with_capacity(sealed.len());
        let mut spooled = false;
        for file in sealed {
            if self.may_attempt_log_file(&file.lane, now) {
                attempt.push(file);
            } else {
                let (lane, key) = (file.lane.clone(), file.key.clone());
                self.spool_file(file).await?;
                spooled |= self.intents.mark_written(&lane, &key);
            }
        }
        if spooled {
            self.persist_intents().await?;
        }
        Ok(attempt)
    }

    /// Records the outcome of writing `files`; a failed file goes to the spool.
    pub(super) async fn finish_writes(
        &mut self,
        files: Vec<SealedFile>,
        results: Vec<Result<(), StoreError>>,
    ) -> Result<(), DeliveryError> {
        let mut failed_trails = BTreeSet::new();
        let mut marked = false;
        for (file, result) in files.into_iter().zip(results) {
            // Marked once written or spooled (and recorded); made durable once for all
            // files of the round.
            let (lane, key) = (file.lane.clone(), file.key.clone());
            match result {
                Ok(()) => {
                    if self.abort_after_write {
                        error!(key = %file.key, "test hook: aborting after a log file write");
                        std::process::abort();
                    }
                    self.log_file_written(&file).await?
                }
                Err(failure) => {
                    self.log_file_failed(
                        &file,
                        &failure,
                        !failed_trails.contains(&file.lane.trail.to_string()),
                    );
                    failed_trails.insert(file.lane.trail.to_string());
                    self.spool_file(file).await?;
                }
            }
            marked |= self.intents.mark_written(&lane, &key);
        }
        if marked {
            self.persist_intents().await?;
        }
        Ok(())
    }

    /// Retries the spool: the oldest file of each trail whose backoff has passed, all at
    /// once; then the rest of the spool of every trail that answered.
    pub(super) async fn retry_spooled(&mut self) -> Result<(), DeliveryError> {
        let now = self.deps.clock.now();
        let trails: Vec<String> = lock(&self.spool)
            .trails()
            .into_iter()
            .filter(|trail| {
                self.log_backoff
                    .get(trail)
                    .is_none_or(|b| b.may_attempt(now))
            })
            .collect();
        if trails.is_empty() {
            return Ok(());
        }
        let mut fronts = Vec::new();
        for trail in &trails {
            let trail = trail.clone();
            if let Some(file) =
                on_blocking_pool(&self.spool, move |spool| spool.front(&trail)).await?
            {
                fronts.push(file);
            }
        }
        let results = put_all(
            &self.deps.store,
            self.config.attempt_timeout,
            fronts.iter().map(put_request).collect(),
        )
        .await;
        let mut answering = Vec::new();
        for (file, result) in fronts.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    self.spooled_file_written(&file).await?;
                    answering.push(file.lane.trail.to_string());
                }
                Err(failure) => self.log_file_failed(&file, &failure, true),
            }
        }
        for trail in answering {
            self.drain_spool(&trail).await?;
        }
        Ok(())
    }

    async fn drain_spool(&mut self, trail: &str) -> Result<(), DeliveryError> {
        loop {
            let key = trail.to_owned();
            let Some(file) = on_blocking_pool(&self.spool, move |spool| spool.front(&key)).await?
            else {
                return Ok(());
            };
            let result = put_with_timeout(
                Arc::clone(&self.deps.store),
                self.config.attempt_timeout,
                put_request(&file),
            )
            .await;
            if let Err(failure) = result {
                self.log_file_failed(&file, &failure, true);
                return Ok(());
            }
            self.spooled_file_written(&file).await?;
        }
    }

    async fn spooled_file_written(&mut self, file: &SealedFile) -> Result<(), DeliveryError> {
        self.log_file_written(file).await?;
        let trail = file.lane.trail.to_string();
        on_blocking_pool(&self.spool, move |spool| spool.remove_front(&trail)).await
    }

    /// Whether a new file of `lane` may be written now: not while its trail backs off
    /// or has older files waiting in the spool (they go first).
    fn may_attempt_log_file(&self, lane: &Lane, now: DateTime<Utc>) -> bool {
        let trail = lane.trail.to_string();
        let backing_off = self
            .log_backoff
            .get(&trail)
            .is_some_and(|b| !b.may_attempt(now));
        !backing_off && !lock(&self.spool).has_files(&lane.trail)
    }

    async fn spool_file(&mut self, file: SealedFile) -> Result<(), DeliveryError> {
        debug!(trail = %file.lane.trail, key = %file.key, "spooling log file");
        on_blocking_pool(&self.spool, move |spool| spool.push(&file)).await?;
        self.stats.log_files_spooled += 1;
        Ok(())
    }

    async fn log_file_written(&mut self, file: &SealedFile) -> Result<(), DeliveryError> {
        let now = self.deps.clock.now();
        let trail = file.lane.trail.to_string();
        self.stats.log_files_written += 1;
        if let Some(backoff) = self.log_backoff.get_mut(&trail) {
            backoff.record_success();
        }
        self.deps.directory.record_delivery(
            &file.lane.trail,
            DeliveryOutcome::LogFileDelivered {
                at: now,
                bucket: file.bucket.clone(),
                key: file.key.clone(),
            },
        );
        // A file of a trail that stopped logging, or stopped validating, is in no digest.
        let Some((_, target)) = self.trails.get(&trail) else {
            return Ok(());
        };
        if !(file.validation && target.log_file_validation) {
            return Ok(());
        }
        let entry = DigestLogFile {
            s3_bucket: file.bucket.clone(),
            s3_object: file.key.clone(),
            hash_value: file.file.sha256_hex.clone(),
            hash_algorithm: HASH_ALGORITHM.to_owned(),
            newest_event_time: file.file.newest_event_time.map(iso8601),
            oldest_event_time: file.file.oldest_event_time.map(iso8601),
        };
        let lane = file.lane.clone();
        let target = target.clone();
        on_blocking_pool(&self.chains, move |chains| {
            chains.add_log_file(&lane, &target, now, entry)
        })
        .await
    }

    /// Reports a failed write; `count_failure` is false for further files of a trail
    /// that already failed in this round (one round is one backoff step).
    fn log_file_failed(&mut self, file: &SealedFile, failure: &StoreError, count_failure: bool) {
        let now = self.deps.clock.now();
        let trail = file.lane.trail.to_string();
        warn!(trail = %file.lane.trail, bucket = %file.bucket, key = %file.key, error = %failure, "failed to deliver log file");
        self.stats.log_file_failures += 1;
        if count_failure {
            self.log_backoff
                .entry(trail)
                .or_default()
                .record_failure(&self.config.retry, now);
        }
        self.deps.directory.record_delivery(
            &file.lane.trail,
            DeliveryOutcome::LogFileFailed {
                attempted_at: now,
                error: s3_error_code(failure).to_owned(),
            },
        );
    }
}

/// One object to write: bucket, key, body, metadata.
pub(super) type PutRequest = (String, String, Bytes, Vec<(String, String)>);

/// The write of a log file.
pub(super) fn put_request(file: &SealedFile) -> PutRequest {
    (
        file.bucket.clone(),
        file.key.clone(),
        file.file.gzip.clone(),
        Vec::new(),
    )
}

/// Writes every object concurrently; results in request order.
pub(super) async fn put_all(
    store: &Arc<dyn ObjectStore>,
    timeout: Duration,
    requests: Vec<PutRequest>,
) -> Vec<Result<(), StoreError>> {
    let mut writes = JoinSet::new();
    let count = requests.len();
    for (index, request) in requests.into_iter().enumerate() {
        let store = Arc::clone(store);
        writes.spawn(async move { (index, put_with_timeout(store, timeout, request).await) });
    }
    let mut results: Vec<Result<(), StoreError>> = (0..count)
        .map(|_| Err(StoreError::Other("write task did not finish".to_owned())))
        .collect();
    while let Some(done) = writes.join_next().await {
        if let Ok((index, result)) = done {
            results[index] = result;
        }
    }
    results
}

pub(super) async fn put_with_timeout(
    store: Arc<dyn ObjectStore>,
    timeout: Duration,
    (bucket, key, body, metadata): PutRequest,
) -> Result<(), StoreError> {
    match tokio::time::timeout(timeout, store.put_object(&bucket, &key, body, &metadata)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(StoreError::Unavailable(format!(
            "no answer within {} s",
            timeout.as_secs_f64()
        ))),
    }
}
