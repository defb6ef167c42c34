//! The delivery worker: reads the event log from its own cursor, routes each event to
//! the logging trails' open log files, writes files when due, keeps digest chains, and
//! commits the cursor only once everything before it is in a bucket or the local spool.

mod digests;
mod log_files;
mod trails;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentrail_log::{DurableLog, DurableLogReader, LogRecord};
use opentrail_meta::MetaStore;
use opentrail_model::{Clock, EventRecord, KnownRegions, TrailArn};
use opentrail_objstore::ObjectStore;
use tracing::{error, warn};

use crate::backoff::{Backoff, BackoffPolicy};
use crate::batcher::{Batcher, Lane};
use crate::chain::Chains;
use crate::directory::TrailDirectory;
use crate::error::DeliveryError;
use crate::intents::{FileIntent, Intents};
use crate::keys::KeyStore;
use crate::log_file::LogFile;
use crate::routing::INSIGHT_CATEGORY;
use crate::routing::{routes, TrailTarget};
use crate::spool::Spool;

/// The shortest delivery interval a trail may use.
pub const MIN_DELIVERY_INTERVAL: Duration = Duration::from_secs(1);

/// Where a worker without a committed cursor starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record still in the log.
    Oldest,
    /// Only records appended from now on.
    Newest,
}

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The worker's cursor name in the event log.
    pub consumer: String,
    /// Spool of undelivered files (`spool/`) and named files (`files.json`); digest chains
    /// live in the metadata store (older versions kept them in `chains/`).
    pub state_dir: PathBuf,
    /// A log file per trail and region at least this often when it has events
    /// (default 5 minutes, at least [`MIN_DELIVERY_INTERVAL`]).
    pub delivery_interval: Duration,
    /// A log file is written early once it would pass this many uncompressed bytes.
    pub max_file_bytes: usize,
    /// Digest window length (one hour in CloudTrail).
    pub digest_interval: Duration,
    /// The regions a multi-region trail covers (those of its home region's partition):
    /// each gets a digest chain, and a digest per window, from the moment the trail logs
    /// with validation on, also when it has no log file.
    pub regions: KnownRegions,
    /// Records read per step.
    pub read_batch_records: usize,
    /// Wait between attempts at a failing bucket.
    pub retry: BackoffPolicy,
    /// One write that takes longer counts as failed.
    pub attempt_timeout: Duration,
    pub start_position: StartPosition,
    /// How long `run` waits for new records when idle.
    pub idle_wait: Duration,
    /// A step commits the log cursor at most this often (default 1 s): each commit is a
    /// durable metadata transaction (an fsync), and a step can read as few as one batch.
    /// `flush_all` and the end of `run` commit regardless. Zero commits every step.
    pub cursor_commit_interval: Duration,
}

impl DeliveryConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> DeliveryConfig {
        DeliveryConfig {
            consumer: "trail-delivery".to_owned(),
            state_dir: state_dir.into(),
            delivery_interval: Duration::from_secs(300),
            max_file_bytes: 8 * 1024 * 1024,
            digest_interval: Duration::from_secs(3600),
            regions: KnownRegions::default(),
            read_batch_records: 4096,
            retry: BackoffPolicy::default(),
            attempt_timeout: Duration::from_secs(60),
            start_position: StartPosition::Oldest,
            idle_wait: Duration::from_millis(250),
            cursor_commit_interval: Duration::from_secs(1),
        }
    }
}

/// Counters since the worker started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub records_read: u64,
    /// Events added to a log file (an event delivered to two trails counts twice).
    pub events_routed: u64,
    pub log_files_written: u64,
    pub log_files_spooled: u64,
    pub log_file_failures: u64,
    pub digests_written: u64,
    pub digest_failures: u64,
    /// Log files named before a restart and made again from their re-read records.
    pub log_files_replayed: u64,
    /// Records re-read after a restart that a written log file already holds (skipped).
    pub records_already_delivered: u64,
    /// Spooled log files dropped because their trail was deleted.
    pub spooled_files_dropped: u64,
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
    /// CPU time spent gzipping, summed over threads.
    pub gzip_nanos: u64,
    /// Wall time of each part of the steps: reading the log, parsing and routing,
    /// writing files (gzip included) and digests, committing the cursor.
    pub read_nanos: u64,
    pub route_nanos: u64,
    pub write_nanos: u64,
    pub commit_nanos: u64,
}

/// What one [`DeliveryWorker::step`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    pub records_read: usize,
    pub log_files_written: usize,
    pub log_files_spooled: usize,
    pub digests_written: usize,
    pub committed_offset: u64,
}

/// Everything the worker is given.
pub struct DeliveryDeps {
    pub log: Arc<dyn DurableLog>,
    pub store: Arc<dyn ObjectStore>,
    pub directory: Arc<dyn TrailDirectory>,
    pub keys: Arc<KeyStore>,
    /// Where digest chains are kept (collection `digest_chains`).
    pub meta: Arc<dyn MetaStore>,
    pub clock: Arc<dyn Clock>,
}

pub struct DeliveryWorker {
    config: DeliveryConfig,
    deps: DeliveryDeps,
    reader: Box<dyn DurableLogReader>,
    batcher: Batcher,
    /// Behind mutexes so their file writes run on the blocking pool.
    spool: Arc<Mutex<Spool>>,
    chains: Arc<Mutex<Chains>>,
    /// Logging trails as last listed, by ARN.
    trails: BTreeMap<String, (TrailArn, TrailTarget)>,
    /// The last listing of trails that stopped logging: where their last files go.
    retired: BTreeMap<String, TrailTarget>,
    /// Whether the trails have been listed once: trails that appear later may have
    /// started logging at an offset the worker already read past.
    trails_listed: bool,
    /// Every trail listed since the worker started.
    seen_trails: std::collections::BTreeSet<String>,
    /// The validating trails whose chains were last made sure of, as they were then:
    /// only new or changed trails are looked at again.
    chains_ensured: BTreeMap<String, TrailTarget>,
    log_backoff: HashMap<String, Backoff>,
    digest_backoff: HashMap<String, Backoff>,
    /// Log files being gzipped on the blocking pool while the worker reads and routes
    /// on, oldest first; they are written in this order.
    sealing: VecDeque<Sealing>,
    committed: u64,
    /// When the cursor was last committed (`None`: not yet by this worker).
    last_commit: Option<Instant>,
    stats: DeliveryStats,
    /// Files named before their write: after a crash their records make the same file
    /// again, or are skipped once it is known written.
    intents: Intents,
    /// Files named before a crash being filled again from the records re-read, by key.
    replaying: BTreeMap<String, Replay>,
    /// Test-only crash hook (see [`ABORT_AFTER_WRITE_ENV`]); off unless the variable is set.
    abort_after_write: bool,
}

/// Test-only: when this environment variable is `1` at start, the process aborts right
/// after the first log file is written to its bucket, before anything records the write
/// (a kill -9 in the worst place for duplicates). Inert otherwise.
pub const ABORT_AFTER_WRITE_ENV: &str = "OPENTRAIL_TEST_ABORT_AFTER_LOG_FILE_WRITE";

/// A file named before a crash, filled again with its records as they are re-read.
struct Replay {
    lane: Lane,
    intent: FileIntent,
    records: Vec<EventRecord>,
}

/// A due batch being turned into a log file.
struct Sealing {
    /// The log offset of the batch's first record: the cursor may not pass it yet.
    first_offset: u64,
    last_offset: u64,
    /// The file's name when it was named before a crash.
    named: Option<FileIntent>,
    records: usize,
    job: tokio::task::JoinHandle<(Lane, LogFile, Duration)>,
}

impl std::fmt::Debug for DeliveryWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryWorker")
            .field("consumer", &self.config.consumer)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl DeliveryWorker {
    /// Opens the worker's state and positions it at its cursor.
    pub async fn start(
        mut config: DeliveryConfig,
        deps: DeliveryDeps,
    ) -> Result<DeliveryWorker, DeliveryError> {
        config.delivery_interval = config.delivery_interval.max(MIN_DELIVERY_INTERVAL);
        let state_dir = config.state_dir.clone();
        let meta = Arc::clone(&deps.meta);
        let (spool, chains, intents) = tokio::task::spawn_blocking(move || {
            let spool = Spool::open(state_dir.join("spool"))?;
            let chains = Chains::open(meta, &state_dir.join("chains"))?;
            let mut intents = Intents::open(state_dir.join("files.json"))?;
            // A file whose write was recorded (in a digest chain or the spool) but not
            // yet marked written when the process stopped.
            let unmarked: Vec<(Lane, String, String)> = intents
                .all()
                .filter(|(_, intent)| !intent.written)
                .map(|(lane, intent)| (lane.clone(), intent.bucket.clone(), intent.key.clone()))
                .collect();
            if !unmarked.is_empty() {
                let spooled = spool.all_keys()?;
                let mut marked = false;
                for (lane, bucket, key) in unmarked {
                    let recorded = chains.lists_log_file(&bucket, &key)
                        || spooled.iter().any(|(b, k)| *b == bucket && *k == key);
                    if recorded {
                        marked |= intents.mark_written(&lane, &key);
                    }
                }
                if marked {
                    Intents::persist_bytes(intents.snapshot())?;
                }
            }
            Ok::<_, DeliveryError>((spool, chains, intents))
        })
        .await
        .map_err(|e| DeliveryError::Task(e.to_string()))??;
        let committed = match deps.log.cursor(&config.consumer).await? {
            Some(offset) => offset,
            None => match config.start_position {
                StartPosition::Oldest => deps.log.start_offset(),
                StartPosition::Newest => deps.log.durable_end(),
            },
        };
        let reader = deps.log.reader(committed);
        Ok(DeliveryWorker {
            batcher: Batcher::new(config.max_file_bytes),
            config,
            deps,
            reader,
            spool: Arc::new(Mutex::new(spool)),
            chains: Arc::new(Mutex::new(chains)),
            trails: BTreeMap::new(),
            retired: BTreeMap::new(),
            trails_listed: false,
            seen_trails: std::collections::BTreeSet::new(),
            chains_ensured: BTreeMap::new(),
            log_backoff: HashMap::new(),
            digest_backoff: HashMap::new(),
            sealing: VecDeque::new(),
            committed,
            last_commit: None,
            stats: DeliveryStats::default(),
            intents,
            replaying: BTreeMap::new(),
            abort_after_write: std::env::var(ABORT_AFTER_WRITE_ENV).is_ok_and(|v| v == "1"),
        })
    }

    /// One round: refresh the trails; write the log files whose gzip finished while
    /// reading up to a batch of records (waiting up to `wait` for the first) and routing
    /// them; start gzipping the files now due, and when the log has nothing more to read,
    /// wait for them and write them; retry what failed; write digests; commit the cursor.
    pub async fn step(&mut self, wait: Option<Duration>) -> Result<StepReport, DeliveryError> {
        let before = self.stats.clone();
        let now = self.deps.clock.now();
        // Read before the trails: a trail that starts logging after the refresh below
        // logs only events from a later offset.
        let durable_end = self.deps.log.durable_end();
        self.refresh_trails(now).await?;
        if self.trails.is_empty() && self.reader.position() < durable_end {
            // No trail is logging: the records up to here go nowhere, skip reading them.
            self.reader = self.deps.log.reader(durable_end);
        }
        let started = Instant::now();
        let has_records = self.reader.position() < self.deps.log.durable_end();
        // Wait for the files being gzipped when there is nothing to read, or too many
        // are in flight.
        let block = !has_records || self.sealing.len() >= max_sealing();
        let ready = self.finish_sealing(block).await?;
        let wait = if ready.is_empty() && self.sealing.is_empty() {
            wait
        } else {
            None
        };
        let writes = self.prepare_writes(ready).await?;
        let trails: Arc<Vec<(TrailArn, TrailTarget)>> =
            Arc::new(self.trails.values().cloned().collect());
        let requests = writes.iter().map(log_files::put_request).collect();
        let store = Arc::clone(&self.deps.store);
        let (put_results, routed) = tokio::join!(
            log_files::put_all(&store, self.config.attempt_timeout, requests),
            read_and_route(
                self.reader.as_mut(),
                self.deps.log.as_ref(),
                self.config.read_batch_records,
                wait,
                trails,
            )
        );
        // The writes' outcomes are recorded (or the files spooled) even when the read
        // failed: the files are no longer anywhere else the cursor would wait for.
        self.finish_writes(writes, put_results).await?;
        let (records_read, routed, read) = routed?;
        self.stats.records_read += records_read as u64;
        let routed_at = started.elapsed();
        self.add_routed(routed);
        self.seal_passed_replays();
        let due = self
            .batcher
            .take_due(now, chrono_duration(self.config.delivery_interval));
        self.start_sealing(due);
        if self.reader.position() >= self.deps.log.durable_end() {
            // Caught up: nothing to overlap the gzip with, so write the files now.
            self.write_batches(Vec::new()).await?;
        }
        self.retry_spooled().await?;
        self.write_digests().await?;
        let written = started.elapsed();
        let commit_due = self
            .last_commit
            .is_none_or(|last| last.elapsed() >= self.config.cursor_commit_interval);
        if commit_due {
            self.commit().await?;
        }
        let committed = started.elapsed();
        self.stats.read_nanos += read.as_nanos() as u64;
        self.stats.route_nanos += routed_at.saturating_sub(read).as_nanos() as u64;
        self.stats.write_nanos += (written - routed_at).as_nanos() as u64;
        self.stats.commit_nanos += (committed - written).as_nanos() as u64;
        Ok(StepReport {
            records_read,
            log_files_written: (self.stats.log_files_written - before.log_files_written) as usize,
            log_files_spooled: (self.stats.log_files_spooled - before.log_files_spooled) as usize,
            digests_written: (self.stats.digests_written - before.digests_written) as usize,
            committed_offset: self.committed,
        })
    }

    /// Writes every open log file now, whatever its age, and commits.
    pub async fn flush_all(&mut self) -> Result<(), DeliveryError> {
        let all = self.batcher.take_all();
        self.write_batches(all).await?;
        self.commit().await
    }

    /// Whether log files are still being gzipped.
    pub fn is_sealing(&self) -> bool {
        !self.sealing.is_empty()
    }

    /// Steps until `shutdown` turns true. Failures of a step are logged and retried
    /// after a pause; records already read but not delivered are read again after a
    /// restart, since the cursor never passes them.
    pub async fn run(
        mut self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), DeliveryError> {
        let mut idle = false;
        while !*shutdown.borrow_and_update() {
            let wait = idle.then_some(self.config.idle_wait);
            match self.step(wait).await {
                Ok(report) => idle = report.records_read == 0 && self.sealing.is_empty(),
                Err(DeliveryError::Log(opentrail_log::LogError::Closed)) => return Ok(()),
                Err(failure) => {
                    error!(consumer = %self.config.consumer, error = %failure, "delivery step failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        // What the last steps delivered but did not commit (commits are throttled); if
        // this fails, the next start reads those records again (and skips what it wrote).
        if let Err(failure) = self.commit().await {
            warn!(consumer = %self.config.consumer, error = %failure, "failed to commit the delivery cursor at shutdown");
        }
        Ok(())
    }

    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    /// The cursor as last committed: every record below it is delivered or spooled.
    pub fn committed_offset(&self) -> u64 {
        self.committed
    }

    /// The next log offset the worker reads.
    pub fn read_position(&self) -> u64 {
        self.reader.position()
    }

    /// Events read but not yet in a written or spooled file.
    pub fn waiting_events(&self) -> usize {
        self.batcher.waiting_records()
            + self.sealing.iter().map(|s| s.records).sum::<usize>()
            + self
                .replaying
                .values()
                .map(|r| r.records.len())
                .sum::<usize>()
    }

    /// Log files waiting in the spool for their bucket.
    pub fn spooled_files(&self) -> usize {
        lock(&self.spool).len()
    }

    /// Adds routed records to their lanes' open files, in log order. A record that a
    /// file named before a crash holds goes to that file again (or nowhere, when the file
    /// is known written).
    fn add_routed(&mut self, routed: Vec<Vec<(u64, EventRecord, Vec<Lane>)>>) {
        let now = self.deps.clock.now();
        for (offset, record, mut lanes) in routed.into_iter().flatten() {
            self.stats.events_routed += lanes.len() as u64;
            let Some(last) = lanes.pop() else {
                continue;
            };
            for lane in lanes {
                self.add_to_lane(lane, offset, record.clone(), now);
            }
            self.add_to_lane(last, offset, record, now);
        }
    }

    fn add_to_lane(
        &mut self,
        lane: Lane,
        offset: u64,
        record: EventRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let Some(intent) = self.intents.covering(&lane, offset) else {
            self.batcher.add(lane, offset, record, now);
            return;
        };
        if intent.written {
            self.stats.records_already_delivered += 1;
            return;
        }
        let (key, last_offset) = (intent.key.clone(), intent.last_offset);
        let intent = intent.clone();
        let replay = self.replaying.entry(key.clone()).or_insert_with(|| Replay {
            lane,
            intent,
            records: Vec::new(),
        });
        replay.records.push(record);
        if offset >= last_offset {
            if let Some(replay) = self.replaying.remove(&key) {
                self.start_replay(replay);
            }
        }
    }

    /// Seals the files named before a crash whose last record the reader has passed
    /// (a record no longer routed to the lane leaves the file short).
    fn seal_passed_replays(&mut self) {
        let position = self.reader.position();
        let passed: Vec<String> = self
            .replaying
            .iter()
            .filter(|(_, replay)| replay.intent.last_offset < position)
            .map(|(key, _)| key.clone())
            .collect();
        for key in passed {
            if let Some(replay) = self.replaying.remove(&key) {
                self.start_replay(replay);
            }
        }
    }

    fn start_replay(&mut self, replay: Replay) {
        if replay.records.len() != replay.intent.records {
            warn!(key = %replay.intent.key, expected = replay.intent.records, found = replay.records.len(),
                "a log file named before a restart gets different records");
        }
        self.stats.log_files_replayed += 1;
        self.start_sealing_named(replay.lane, replay.records, replay.intent);
    }

    /// Writes the file intents durably.
    fn persist_intents(
        &self,
    ) -> impl std::future::Future<Output = Result<(), DeliveryError>> + Send + 'static {
        let snapshot = self.intents.snapshot();
        async move {
            tokio::task::spawn_blocking(move || Intents::persist_bytes(snapshot))
                .await
                .map_err(|e| DeliveryError::Task(e.to_string()))?
        }
    }

    async fn commit(&mut self) -> Result<(), DeliveryError> {
        let low = self
            .sealing
            .iter()
            .map(|s| s.first_offset)
            .chain(self.batcher.min_first_offset())
            .chain(self.replaying.values().map(|r| r.intent.first_offset))
            .min()
            .unwrap_or_else(|| self.reader.position());
        if low <= self.committed {
            return Ok(());
        }
        self.deps
            .log
            .commit_cursor(&self.config.consumer, low)
            .await?;
        self.committed = low;
        self.last_commit = Some(Instant::now());
        if self.intents.forget_below(low) {
            self.persist_intents().await?;
        }
        Ok(())
    }
}

/// Runs `work` on the state behind `state` on the blocking pool (it writes files).
async fn on_blocking_pool<S, T>(
    state: &Arc<Mutex<S>>,
    work: impl FnOnce(&mut S) -> Result<T, DeliveryError> + Send + 'static,
) -> Result<T, DeliveryError>
where
    S: Send + 'static,
    T: Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&mut lock(&state)))
        .await
        .map_err(|e| DeliveryError::Task(e.to_string()))?
}

fn lock<S>(state: &Mutex<S>) -> MutexGuard<'_, S> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many log files may be gzipping at once.
fn max_sealing() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads up to `max` records (waiting up to `wait` for the first; without a wait only
/// when records are durable) and routes them; returns how many were read, the routed
/// ones in log order and the time spent reading.
async fn read_and_route(
    reader: &mut dyn DurableLogReader,
    log: &dyn DurableLog,
    max: usize,
    wait: Option<Duration>,
    trails: Arc<Vec<(TrailArn, TrailTarget)>>,
) -> Result<(usize, Vec<Vec<(u64, EventRecord, Vec<Lane>)>>, Duration), DeliveryError> {
    let started = Instant::now();
    let records = match wait {
        // `next_records` reads segment files off the runtime; it returns at once when
        // records are durable, so only call it then.
        None if reader.position() < log.durable_end() => reader.next_records(max).await?,
        None => Vec::new(),
        Some(wait) => match tokio::time::timeout(wait, reader.next_records(max)).await {
            Ok(records) => records?,
            Err(_elapsed) => Vec::new(),
        },
    };
    let read = started.elapsed();
    let count = records.len();
    Ok((count, route_parallel(records, trails).await?, read))
}

/// Parses and routes `records` on the blocking pool, in parallel chunks.
async fn route_parallel(
    records: Vec<(u64, LogRecord)>,
    trails: Arc<Vec<(TrailArn, TrailTarget)>>,
) -> Result<Vec<Vec<(u64, EventRecord, Vec<Lane>)>>, DeliveryError> {
    if records.is_empty() || trails.is_empty() {
        return Ok(Vec::new());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk_len = records.len().div_ceil(threads).max(256);
    let records = Arc::new(records);
    let mut chunks = Vec::new();
    for start in (0..records.len()).step_by(chunk_len) {
        let (records, trails) = (Arc::clone(&records), Arc::clone(&trails));
        let end = (start + chunk_len).min(records.len());
        chunks.push(tokio::task::spawn_blocking(move || {
            route_records(&records[start..end], &trails)
        }));
    }
    let mut routed = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        routed.push(
            chunk
                .await
                .map_err(|e| DeliveryError::Task(e.to_string()))?,
        );
    }
    Ok(routed)
}

/// Parses each record (unless ingest's parse came with it) and finds the lanes it goes
/// to; records routed nowhere are left out.
fn route_records(
    records: &[(u64, LogRecord)],
    trails: &[(TrailArn, TrailTarget)],
) -> Vec<(u64, EventRecord, Vec<Lane>)> {
    let mut routed = Vec::with_capacity(records.len());
    for (offset, logged) in records {
        if opentrail_model::is_provenance_marker(logged.bytes()) {
            // Who sent the records after it: for event history, never delivered.
            continue;
        }
        let record = match logged.to_event() {
            Ok(record) => record,
            Err(failure) => {
                warn!(offset, error = %failure, "skipping an event log record that is not an event");
                continue;
            }
        };
        let lanes: Vec<Lane> = trails
            .iter()
            .filter(|(_, target)| {
                target
                    .logging_since_offset
                    .is_none_or(|since| *offset >= since)
            })
            .filter_map(|(arn, target)| {
                routes(&record, target).map(|region| Lane {
                    trail: arn.clone(),
                    region,
                    insight: record.event_category() == INSIGHT_CATEGORY,
                })
            })
            .collect();
        if !lanes.is_empty() {
            routed.push((*offset, record, lanes));
        }
    }
    routed
}

pub(crate) fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
