//! The embedded history store: a directory of day partitions, each a set of immutable
//! segment files; a memtable of recent events backed by a write-ahead log; a manifest
//! that names the live files and the applied log offset.
//!
//! Concurrency: `log` serialises inserts (and owns the WAL being appended to); `commit`
//! serialises everything that changes the set of segments (flushes, merges, expiry) and
//! owns the manifest; `state` is read-locked by lookups and write-locked only for short
//! swaps. A full memtable is frozen — still searched — and written to segments by a
//! background flusher thread, so compression overlaps with inserting.

mod compact;
mod expire;
mod flush;
mod insert;
mod open;
mod quarantine;

use crate::cache::PageCache;
use crate::dictionary::Dictionary;
use crate::error::HistoryError;
use crate::files::OpenFiles;
use crate::lookup::{validate, LookupError, LookupRequest, TokenKey};
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::options::HistoryOptions;
use crate::query::Sources;
use crate::segment::Segment;
use crate::wal::Wal;
use flush::Merges;
use opentrail_operations::LookupEventsResponse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use insert::{InsertStats, PreparedBatch};
pub use quarantine::HistoryHealth;

/// Frozen memtables waiting for the flusher before inserts wait for it. The flusher runs
/// beside ingest and the lake writer, and a store's first flush trains the dictionary
/// (~1.5–2.7 s on 2 cores): with one, event history stopped indexing new events for that
/// long while the burst ran on. Four hold ~60,000 reference events, three 24 MiB memtables
/// more than one did (measured in `crates/testing/bench/README.md`, "the flusher's queue").
const MAX_FROZEN: usize = 4;
/// How long the flusher has had nothing to write before it merges the crowded day
/// partitions it put off: a burst's merges wait until after the burst.
const MERGE_IDLE: Duration = Duration::from_secs(1);
/// How long the flusher waits before trying again a flush that could write nothing.
const FLUSH_RETRY: Duration = Duration::from_secs(1);

/// A full memtable waiting to be written to segments.
#[derive(Clone)]
pub(crate) struct Frozen {
    pub(crate) memtable: Arc<Memtable>,
    /// The applied offset when it was frozen: what its segments cover.
    pub(crate) applied_offset: u64,
    /// The first WAL file written after it was frozen; older files hold only its events.
    pub(crate) wal_floor: u64,
}

/// What lookups read.
pub(crate) struct State {
    pub(crate) active: Memtable,
    /// Oldest first.
    pub(crate) frozen: VecDeque<Frozen>,
    /// Day (days since the epoch) → its segments.
    pub(crate) partitions: BTreeMap<i32, Vec<Arc<Segment>>>,
    pub(crate) applied_offset: u64,
    /// Days before this one were expired; their events are not stored again.
    pub(crate) expired_before_day: Option<i32>,
}

impl State {
    pub(crate) fn memtables(&self) -> impl Iterator<Item = &Memtable> {
        std::iter::once(&self.active).chain(self.frozen.iter().map(|frozen| &*frozen.memtable))
    }
}

/// What only segment commits touch.
pub(crate) struct Committer {
    pub(crate) manifest: Manifest,
    pub(crate) dictionaries: HashMap<u32, Arc<Dictionary>>,
    /// Day partitions over `max_segments_per_partition` whose merge waits until no
    /// frozen memtable waits for the flusher.
    pub(crate) crowded: BTreeSet<i32>,
}

pub(crate) struct Shared {
    dir: PathBuf,
    options: HistoryOptions,
    tokens: TokenKey,
    cache: PageCache,
    files: Arc<OpenFiles>,
    log: Mutex<Wal>,
    commit: Mutex<Committer>,
    state: RwLock<State>,
    /// The applied offset of the newest flushed memtable: what survives a crash without
    /// the write-ahead log.
    flushed_offset: AtomicU64,
    /// Set when a write failed half-way; the store must be reopened to recover.
    poisoned: Mutex<Option<String>>,
    /// Damaged segments met by lookups, inserts or merges, waiting to be quarantined.
    damaged: Mutex<Vec<(u64, HistoryError)>>,
    /// Set by a quarantine: the offset the feed must read the log again from.
    rewind: Mutex<Option<u64>>,
    quarantined: AtomicU64,
    partition_write_failures: AtomicU64,
    merge_failures: AtomicU64,
    event_id_conflicts: AtomicU64,
    /// The flusher's last attempt could write nothing.
    flush_failing: AtomicBool,
    /// Callers of [`HistoryStore::flush`] waiting or flushing: the flusher leaves its
    /// put-off merges to them (and to later) rather than hold the commit lock.
    flush_callers: AtomicUsize,
    /// Wakes the flusher (`true` = stop) and inserts waiting for it.
    flusher_control: Mutex<bool>,
    flusher_wake: Condvar,
    flushed: Condvar,
}

/// The 90-day event history of management and Insights events, per account and region.
pub struct HistoryStore {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// Sizes of what the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStats {
    pub partitions: usize,
    pub segments: usize,
    pub segment_events: u64,
    pub segment_bytes: u64,
    /// Of `segment_bytes`, the compressed record blocks.
    pub segment_record_bytes: u64,
    pub memtable_events: usize,
    /// Segment files open now.
    pub open_files: usize,
}

impl HistoryStore {
    /// Opens (or creates) the store in `dir`, replaying its write-ahead log.
    pub fn open(dir: &Path, options: HistoryOptions) -> Result<Self, HistoryError> {
        let shared = Arc::new(open::open(dir, options)?);
        let flusher = if shared.options.background_flush {
            let worker = shared.clone();
            let handle = std::thread::Builder::new()
                .name("history-flusher".to_owned())
                .spawn(move || worker.run_flusher())
                .map_err(|error| HistoryError::io(dir, error))?;
            Some(handle)
        } else {
            None
        };
        let store = Self { shared, flusher };
        let needs_flush =
            store.shared.read_state().active.bytes() >= store.shared.options.memtable_bytes;
        if needs_flush {
            store.flush()?;
        }
        Ok(store)
    }

    /// Offset after the last applied batch — the log offset the consumer resumes from.
    /// It is durable together with the events it covers (see [`HistoryOptions::sync_writes`]).
    pub fn applied_offset(&self) -> u64 {
        self.shared.read_state().applied_offset
    }

    /// Offset below which every applied event survives a crash: the applied offset with
    /// the write-ahead log on, else the applied offset of the last flush. A feed without
    /// the write-ahead log keeps its source's events from here on.
    pub fn durable_offset(&self) -> u64 {
        if self.shared.options.write_ahead_log {
            return self.applied_offset();
        }
        self.shared.flushed_offset.load(Ordering::Acquire)
    }

    /// Answers LookupEvents for the request's account and region. `Events` is always
    /// present (possibly empty); `NextToken` only when more events remain.
    pub fn lookup(&self, request: &LookupRequest) -> Result<LookupEventsResponse, LookupError> {
        let shared = &self.shared;
        let query = validate(request, shared.options.retention_days, &shared.tokens)?;
        let state = shared.read_state();
        let mut damaged = Vec::new();
        let sources = Sources {
            memtables: state.memtables().collect(),
            partitions: &state.partitions,
        };
        let page = crate::query::run(&query, &sources, &shared.cache, &mut damaged);
        drop(sources);
        drop(state);
        if !damaged.is_empty() {
            shared.note_damaged(damaged);
            shared.process_quarantine();
        }
        let page = page.map_err(|error| LookupError::Internal(error.to_string()))?;
        Ok(LookupEventsResponse {
            events: Some(page.events),
            next_token: page
                .next_below
                .map(|position| shared.tokens.encode(position, &query.binding)),
        })
    }

    /// Writes every buffered event to segment files now and waits for it (they are
    /// otherwise written once [`HistoryOptions::memtable_bytes`] accumulate), which
    /// shortens the next open's log replay.
    pub fn flush(&self) -> Result<(), HistoryError> {
        self.shared.check_poisoned()?;
        self.shared.flush_callers.fetch_add(1, Ordering::AcqRel);
        let flushed = (|| {
            {
                let mut wal = self.shared.lock(&self.shared.log);
                self.shared.freeze(&mut wal)?;
            }
            self.shared.flush_frozen(Merges::Later)?;
            self.shared.guarded(|| self.shared.commit_applied_offset())
        })();
        self.shared.flush_callers.fetch_sub(1, Ordering::AcqRel);
        flushed
    }

    pub fn stats(&self) -> HistoryStats {
        let state = self.shared.read_state();
        let segments = state.partitions.values().flatten();
        HistoryStats {
            partitions: state.partitions.len(),
            segments: state.partitions.values().map(Vec::len).sum(),
            segment_events: segments
                .clone()
                .map(|segment| u64::from(segment.events()))
                .sum(),
            segment_bytes: segments.clone().map(|segment| segment.file_bytes()).sum(),
            segment_record_bytes: segments.map(|segment| segment.record_bytes()).sum(),
            memtable_events: state.memtables().map(Memtable::len).sum(),
            open_files: self.shared.files.open_count(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Drop for HistoryStore {
    /// Lets the flusher finish the memtables already frozen, then stops it. The active
    /// memtable is not flushed: the write-ahead log already holds it.
    fn drop(&mut self) {
        *self.shared.lock(&self.shared.flusher_control) = true;
        self.shared.flusher_wake.notify_all();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        // State is only changed by assignments that cannot panic half-way.
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock<'m, T>(&self, mutex: &'m Mutex<T>) -> MutexGuard<'m, T> {
        // A panic in a holder is caught by `poisoned` bookkeeping; keep going.
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_poisoned(&self) -> Result<(), HistoryError> {
        match &*self.lock(&self.poisoned) {
            Some(reason) => Err(HistoryError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Runs a write step; a failure poisons the store, since the files may no longer
    /// match the in-memory state.
    fn guarded<T>(
        &self,
        step: impl FnOnce() -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        let result = step();
        if let Err(error) = &result {
            tracing::error!(%error, "history store write failed; reopen the store to recover");
            *self.lock(&self.poisoned) = Some(error.to_string());
            self.flushed.notify_all();
        }
        result
    }

    /// The background flusher: writes frozen memtables until told to stop, and merges
    /// crowded day partitions once it has had nothing to write for [`MERGE_IDLE`].
    fn run_flusher(&self) {
        loop {
            let idle = {
                let mut stop = self.lock(&self.flusher_control);
                let mut idle = false;
                while !*stop && self.read_state().frozen.is_empty() && !idle {
                    let (guard, waited) = self
                        .flusher_wake
                        .wait_timeout(stop, MERGE_IDLE)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    stop = guard;
                    idle = waited.timed_out();
                }
                if *stop && self.read_state().frozen.is_empty() {
                    return;
                }
                idle && self.read_state().frozen.is_empty()
            };
            if idle {
                self.merge_put_off();
                continue;
            }
            let flushed = self.flush_frozen(Merges::Later);
            self.process_quarantine();
            if self.check_poisoned().is_err() {
                return;
            }
            self.flush_failing
                .store(flushed.is_err(), Ordering::Release);
            if flushed.is_err() {
                // Reported where it failed; try again in a while (space may come back).
                let stop = self.lock(&self.flusher_control);
                if *stop {
                    return;
                }
                let _ = self.flusher_wake.wait_timeout(stop, FLUSH_RETRY);
            }
        }
    }

    /// Refuses inserts (the caller feeds them again later) while flushes fail and the
    /// flusher is behind, so that memory stays bounded; otherwise like `check_poisoned`.
    fn check_backlog(&self) -> Result<(), HistoryError> {
        self.check_poisoned()?;
        if self.flush_failing.load(Ordering::Acquire) && self.read_state().frozen.len() > MAX_FROZEN
        {
            return Err(HistoryError::io(
                &self.dir,
                std::io::Error::other("event history cannot write segments now; try again later"),
            ));
        }
        Ok(())
    }

    /// Whether put-off merges should wait: the store is being dropped (the flusher then
    /// finishes what is frozen and leaves merges for the next run), or a caller of
    /// [`HistoryStore::flush`] waits for the commit lock.
    fn merges_yield(&self) -> bool {
        self.flush_callers.load(Ordering::Acquire) > 0 || *self.lock(&self.flusher_control)
    }

    /// Blocks an insert while the flusher is more than [`MAX_FROZEN`] memtables behind.
    fn wait_for_flusher(&self) -> Result<(), HistoryError> {
        loop {
            self.check_backlog()?;
            if self.read_state().frozen.len() <= MAX_FROZEN {
                return Ok(());
            }
            let guard = self.lock(&self.flusher_control);
            let _ = self.flushed.wait_timeout(guard, Duration::from_millis(50));
        }
    }
}

/// The directory of day partition `day`.
pub(crate) fn partition_dir(dir: &Path, day: i32) -> PathBuf {
    let date =
        chrono::DateTime::from_timestamp(i64::from(day) * crate::staging::SECONDS_PER_DAY, 0)
            .map(|time| time.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| format!("day{day}"));
    dir.join(format!("p-{date}"))
}

pub(crate) fn segment_path(dir: &Path, day: i32, id: u64) -> PathBuf {
    partition_dir(dir, day).join(format!("seg-{id:08}.seg"))
}

#[cfg(test)]
mod tests {
    use super::{HistoryOptions, HistoryStore, Merges, Ordering};
    use opentrail_model::EventRecord;

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::HistoryStore>();
    }

    fn options(max_segments_per_partition: usize) -> HistoryOptions {
        HistoryOptions {
            max_segments_per_partition,
            dictionary_bytes: 0,
            sync_writes: false,
            background_flush: false,
            ..Default::default()
        }
    }

    /// Inserts one event of yesterday and freezes it as a memtable of its own, left for
    /// the flusher: each becomes one segment of the same day partition.
    fn insert_frozen(store: &HistoryStore, offset: u64) {
        let time = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT12:00:00Z");
        let json = format!(
            r#"{{"eventVersion":"1.09","eventTime":"{time}","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","eventID":"e-{offset}","eventType":"AwsApiCall","recipientAccountId":"123456789012","eventCategory":"Management","managementEvent":true,"readOnly":false,"userIdentity":{{"type":"Root","accountId":"123456789012"}}}}"#
        );
        let record = EventRecord::from_json(&json).unwrap();
        store.insert_batch(&[(offset, record)]).unwrap();
        let mut wal = store.shared.lock(&store.shared.log);
        store.shared.freeze(&mut wal).unwrap();
    }

    fn segment_ids_used(store: &HistoryStore) -> u64 {
        store
            .shared
            .lock(&store.shared.commit)
            .manifest
            .next_segment_id
    }

    #[test]
    fn merges_wait_while_memtables_wait_up_to_twice_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::open(dir.path(), options(2)).unwrap();
        let first = segment_ids_used(&store);
        for offset in 0..7 {
            insert_frozen(&store, offset);
        }
        store.shared.flush_frozen(Merges::Due).unwrap();
        // Seven segments, one per memtable. Merging at every third segment would have
        // taken five merges; with memtables waiting, the partition grew to four, was
        // merged at the fifth (over twice the limit), grew again, and was merged once
        // the queue was empty: two merges.
        assert_eq!(segment_ids_used(&store) - first, 7 + 2);
        let stats = store.stats();
        assert_eq!((stats.segments, stats.segment_events), (2, 7));
        assert!(store.shared.lock(&store.shared.commit).crowded.is_empty());
    }

    /// Polls `stats` until `done` holds (at most 10 s).
    fn wait_for(store: &HistoryStore, done: impl Fn(super::HistoryStats) -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if done(store.stats()) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn the_background_flusher_merges_once_it_has_been_idle() {
        let dir = tempfile::tempdir().unwrap();
        let options = HistoryOptions {
            background_flush: true,
            ..options(2)
        };
        let store = HistoryStore::open(dir.path(), options).unwrap();
        for offset in 0..4 {
            insert_frozen(&store, offset);
        }
        // The flusher writes the four memtables (four segments, twice the limit) and puts
        // the merge off; after MERGE_IDLE without anything to write, it merges.
        let started = std::time::Instant::now();
        assert!(wait_for(&store, |stats| stats.segments == 4));
        assert!(wait_for(&store, |stats| stats.segments == 2));
        assert!(started.elapsed() >= super::MERGE_IDLE);
        assert_eq!(store.stats().segment_events, 4);
    }

    #[test]
    fn a_partition_left_crowded_is_merged_at_the_first_flush_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::open(dir.path(), options(12)).unwrap();
        for offset in 0..4 {
            insert_frozen(&store, offset);
        }
        store.shared.flush_frozen(Merges::Due).unwrap();
        assert_eq!(store.stats().segments, 4);
        drop(store);

        let store = HistoryStore::open(dir.path(), options(2)).unwrap();
        assert_eq!(store.stats().segments, 4);
        // A flush the caller asks for (the server's at shutdown) leaves merges for later.
        store.flush().unwrap();
        assert_eq!(store.stats().segments, 4);
        // So does the flusher while such a flush waits for it.
        store.shared.flush_callers.fetch_add(1, Ordering::AcqRel);
        store.shared.flush_frozen(Merges::Due).unwrap();
        assert_eq!(store.stats().segments, 4);
        store.shared.flush_callers.fetch_sub(1, Ordering::AcqRel);
        store.shared.flush_frozen(Merges::Due).unwrap();
        let stats = store.stats();
        assert_eq!((stats.segments, stats.segment_events), (2, 4));
    }
}
