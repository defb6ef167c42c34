//! The embedded history store: a directory of day partitions, each a set of immutable
//! segment files; a memtable of recent events backed by a write-ahead log; a manifest
//! that names the live files and the applied log offset.
//!
//! Concurrency: `log` serialises inserts (and owns the WAL being appended to); `commit`
//! serialises everything that changes the set of segments (flushes, merges, expiry) and
//! owns the manifest; `state` is read-locked by lookups and write-locked only for short
//! swaps. A full memtable is frozen — still searched — and written to segments by a
//! background flusher thread, so compression overlaps with inserting. Crowded day
//! partitions are merged by a background merger thread at the lowest CPU priority, so
//! merges use the time ingest leaves (see `compact`).

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
use compact::BuiltMerge;
use flush::Merges;
use opentrail_operations::LookupEventsResponse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
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
/// How long the flusher and the merger wait for work before looking again (they are
/// woken when there is some; this only bounds a missed wake-up).
const IDLE_POLL: Duration = Duration::from_secs(1);
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
    /// Day partitions over `max_segments_per_partition` waiting to be merged: by the
    /// background merger, or (without one) once no frozen memtable waits.
    pub(crate) crowded: BTreeSet<i32>,
    /// Segments claimed by a merge being built: no other merge takes them.
    pub(crate) merging: HashSet<u64>,
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
    /// Callers of [`HistoryStore::flush`] waiting or flushing: a store without a merger
    /// leaves its put-off merges to them (and to later) rather than hold the commit lock.
    flush_callers: AtomicUsize,
    /// Wakes the flusher and the merger (`true` = stop), and inserts waiting for the flusher.
    flusher_control: Mutex<bool>,
    flusher_wake: Condvar,
    flushed: Condvar,
    merger_wake: Condvar,
    /// Set when the store is being dropped: a merge being built stops.
    stopping: AtomicBool,
    /// Set when a day partition was queued for the merger.
    merge_wanted: AtomicBool,
    /// Merges the merger built, waiting for the flusher to commit them.
    built: Mutex<Vec<BuiltMerge>>,
}

/// The 90-day event history of management and Insights events, per account and region.
pub struct HistoryStore {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    merger: Option<JoinHandle<()>>,
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
        let spawn = |name: &str, run: fn(&Shared)| {
            let worker = shared.clone();
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || run(&worker))
                .map_err(|error| HistoryError::io(dir, error))
        };
        let (flusher, merger) = if shared.options.background_flush {
            let flusher = spawn("history-flusher", Shared::run_flusher)?;
            match spawn("history-merger", Shared::run_merger) {
                Ok(merger) => (Some(flusher), Some(merger)),
                Err(error) => {
                    // Dropping the store stops the flusher.
                    drop(Self {
                        shared,
                        flusher: Some(flusher),
                        merger: None,
                    });
                    return Err(error);
                }
            }
        } else {
            (None, None)
        };
        let store = Self {
            shared,
            flusher,
            merger,
        };
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

    /// Merges every day partition over `max_segments_per_partition` now, on the caller's
    /// thread, for a caller that wants the store settled (a benchmark before it times
    /// lookups). The background merger otherwise does this as CPU time allows.
    pub fn merge_crowded(&self) -> Result<(), HistoryError> {
        let shared = &self.shared;
        shared.check_poisoned()?;
        let mut committer = shared.lock(&shared.commit);
        shared.commit_built(&mut committer);
        let limit = shared.options.max_segments_per_partition;
        let crowded: Vec<i32> = shared
            .read_state()
            .partitions
            .iter()
            .filter(|(_, segments)| segments.len() > limit)
            .map(|(&day, _)| day)
            .collect();
        for day in crowded {
            committer.crowded.remove(&day);
            shared.merge_partition(&mut committer, day)?;
        }
        Ok(())
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
    /// Lets the flusher finish the memtables already frozen, then stops it and the merger
    /// (a merge being built is abandoned: its partition is crowded at the next open and
    /// merged then). The active memtable is not flushed: the write-ahead log holds it.
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        *self.shared.lock(&self.shared.flusher_control) = true;
        self.shared.flusher_wake.notify_all();
        self.shared.merger_wake.notify_all();
        for handle in [self.flusher.take(), self.merger.take()]
            .into_iter()
            .flatten()
        {
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

    /// The background flusher: writes frozen memtables, and commits the merges the
    /// merger built, until told to stop.
    fn run_flusher(&self) {
        loop {
            {
                let mut stop = self.lock(&self.flusher_control);
                while !*stop && self.read_state().frozen.is_empty() && !self.merges_built() {
                    stop = self
                        .flusher_wake
                        .wait_timeout(stop, IDLE_POLL)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
                if *stop && self.read_state().frozen.is_empty() {
                    return;
                }
            }
            if self.read_state().frozen.is_empty() {
                self.commit_built(&mut self.lock(&self.commit));
                self.process_quarantine();
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

    /// Wakes the flusher. Taking its mutex first means a flusher about to wait has either
    /// seen the new work or is already waiting.
    fn wake_flusher(&self) {
        drop(self.lock(&self.flusher_control));
        self.flusher_wake.notify_all();
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

    /// Whether merges put off in a store without a merger should wait: the store is being
    /// dropped, or a caller of [`HistoryStore::flush`] waits for the commit lock.
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

    /// A store with a background flusher and merger, and limit `limit`.
    fn background_store(limit: usize) -> (tempfile::TempDir, HistoryStore) {
        let dir = tempfile::tempdir().unwrap();
        let options = HistoryOptions {
            background_flush: true,
            ..options(limit)
        };
        let store = HistoryStore::open(dir.path(), options).unwrap();
        (dir, store)
    }

    #[test]
    fn the_background_merger_merges_crowded_partitions_beside_the_flusher() {
        let (_dir, store) = background_store(2);
        for offset in 0..9 {
            insert_frozen(&store, offset);
            store.shared.wake_flusher();
        }
        // Nine one-event segments of one day, limit 2: the merger merges the partition
        // down (the flusher commits its merges) without waiting for the flusher to idle.
        assert!(wait_for(&store, |stats| stats.memtable_events == 0
            && stats.segments <= 2));
        let stats = store.stats();
        assert_eq!(stats.segment_events, 9);
        let committer = store.shared.lock(&store.shared.commit);
        assert!(committer.merging.is_empty());
        assert_eq!(committer.manifest.segments.len(), stats.segments);
    }

    /// The nice value in a `/proc/.../stat` file (Linux).
    #[cfg(target_os = "linux")]
    fn nice_in(stat: &std::path::Path) -> Option<i64> {
        let stat = std::fs::read_to_string(stat).ok()?;
        // Fields after the parenthesised command: state is field 3, nice field 19.
        let after = &stat[stat.rfind(')')? + 2..];
        after.split(' ').nth(19 - 3)?.parse().ok()
    }

    /// The nice value of this process's thread named `name` (Linux).
    #[cfg(target_os = "linux")]
    fn nice_of_thread(name: &str) -> Option<i64> {
        std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
            let task = task.ok()?.path();
            let comm = std::fs::read_to_string(task.join("comm")).ok()?;
            (comm.trim_end() == name)
                .then(|| nice_in(&task.join("stat")))
                .flatten()
        })
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_merger_runs_at_the_lowest_priority_and_the_flusher_does_not() {
        let (_dir, store) = background_store(2);
        let merger = (0..200).find_map(|_| {
            let nice = nice_of_thread("history-merger").filter(|&nice| nice == 19);
            if nice.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            nice
        });
        assert_eq!(merger, Some(19));
        // The flusher keeps the priority of the thread that opened the store.
        let own = nice_in(std::path::Path::new("/proc/thread-self/stat"));
        assert!(own.is_some_and(|nice| nice < 19));
        assert_eq!(nice_of_thread("history-flusher"), own);
        drop(store);
    }

    /// Plans and builds a merge of the store's (first) day partition, as the merger does.
    fn build(store: &HistoryStore) -> Option<super::BuiltMerge> {
        let shared = &store.shared;
        let day = *shared.read_state().partitions.keys().next()?;
        let plan = shared.plan_merge(&mut shared.lock(&shared.commit), day)?;
        Some(shared.build_merge(plan).expect("the merge is built"))
    }

    /// A store with limit `limit` whose one day partition holds `segments` one-event
    /// segments, left unmerged.
    fn crowded_store(limit: usize, segments: u64) -> (tempfile::TempDir, HistoryStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = HistoryStore::open(dir.path(), options(limit)).unwrap();
        for offset in 0..segments {
            insert_frozen(&store, offset);
        }
        store.shared.flush_frozen(Merges::Later).unwrap();
        assert_eq!(store.stats().segments as u64, segments);
        (dir, store)
    }

    #[test]
    fn merges_built_side_by_side_take_disjoint_segments() {
        let (dir, store) = crowded_store(4, 8);
        let shared = &store.shared;
        // Six of eight (down to half the limit), then the two left, then none.
        let first = build(&store).unwrap();
        let second = build(&store).unwrap();
        assert_eq!((first.plan.inputs.len(), second.plan.inputs.len()), (6, 2));
        assert!(build(&store).is_none());
        let mut committer = shared.lock(&shared.commit);
        shared.commit_merge(&mut committer, second).unwrap();
        shared.commit_merge(&mut committer, first).unwrap();
        assert!(committer.merging.is_empty());
        drop(committer);
        let stats = store.stats();
        assert_eq!((stats.segments, stats.segment_events), (2, 8));
        // Both merges survive a reopen.
        drop(store);
        let store = HistoryStore::open(dir.path(), options(4)).unwrap();
        let stats = store.stats();
        assert_eq!((stats.segments, stats.segment_events), (2, 8));
    }

    #[test]
    fn merge_crowded_settles_every_crowded_partition_now() {
        let (_dir, store) = crowded_store(2, 4);
        store.merge_crowded().unwrap();
        let stats = store.stats();
        assert_eq!((stats.segments, stats.segment_events), (2, 4));
        assert!(store.shared.lock(&store.shared.commit).crowded.is_empty());
    }

    #[test]
    fn a_merge_whose_inputs_expired_while_it_was_built_is_dropped() {
        let (_dir, store) = crowded_store(2, 4);
        let shared = &store.shared;
        let built = build(&store).unwrap();
        let path = built.plan.path.clone();
        assert!(path.exists());
        let later = chrono::Utc::now() + chrono::Duration::days(100);
        assert_eq!(store.expire(later).unwrap(), 1);
        let mut committer = shared.lock(&shared.commit);
        shared.commit_merge(&mut committer, built).unwrap();
        assert!(committer.merging.is_empty());
        assert!(committer.manifest.segments.is_empty());
        drop(committer);
        assert!(!path.exists());
        assert_eq!(store.stats().segments, 0);
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
