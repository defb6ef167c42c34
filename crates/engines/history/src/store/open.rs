//! Opening a store: load the manifest, open its segments, remove leftovers of
//! interrupted writes, and replay the write-ahead log into the memtable.

use super::quarantine::move_to_quarantine;
use super::{partition_dir, segment_path, Committer, Shared, State};
use crate::cache::PageCache;
use crate::dictionary::Dictionary;
use crate::error::HistoryError;
use crate::files::OpenFiles;
use crate::fsutil::{create_dir, write_durably};
use crate::lookup::TokenKey;
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::options::HistoryOptions;
use crate::segment::Segment;
use crate::staging::{split_stored, stage, Presence, Staging};
use crate::wal::Wal;
use opentrail_model::EventRecord;
use rand::RngCore;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, RwLock};

const TOKEN_KEY_FILE: &str = "token.key";

pub(super) fn open(dir: &Path, options: HistoryOptions) -> Result<Shared, HistoryError> {
    create_dir(dir)?;
    let tokens = load_or_create_token_key(dir)?;
    let mut manifest = Manifest::load(dir)?;

    let mut dictionaries = HashMap::new();
    for (id, _) in dictionary_files(dir)? {
        dictionaries.insert(id, Dictionary::load(dir, id, options.compression_level)?);
    }
    let files = Arc::new(OpenFiles::new(options.max_open_files));
    let mut partitions: BTreeMap<i32, Vec<Arc<Segment>>> = BTreeMap::new();
    let mut damaged = Vec::new();
    for entry in &manifest.segments {
        let path = segment_path(dir, entry.day, entry.id);
        let opened = Segment::open(&path, entry.id, &files, |id| dictionaries.get(&id).cloned())
            .and_then(|segment| {
                if segment.day() != entry.day {
                    return Err(HistoryError::corrupt(
                        &path,
                        "segment day does not match the manifest",
                    ));
                }
                Ok(segment)
            });
        match opened {
            Ok(segment) => partitions
                .entry(entry.day)
                .or_default()
                .push(Arc::new(segment)),
            // Damaged or gone: out of service, the rest of the store opens (see quarantine.rs).
            Err(error) if is_damage(&error) => damaged.push((entry.id, path, error)),
            Err(error) => return Err(error),
        }
    }
    let quarantined = damaged.len() as u64;
    let rewind = if damaged.is_empty() {
        None
    } else {
        let ids: HashSet<u64> = damaged.iter().map(|(id, _, _)| *id).collect();
        manifest.segments.retain(|entry| !ids.contains(&entry.id));
        manifest.applied_offset = 0;
        manifest.store(dir)?;
        for (id, path, error) in &damaged {
            let moved = move_to_quarantine(dir, path);
            tracing::error!(
                segment = id,
                %error,
                moved_to = ?moved.ok(),
                "damaged event history segment quarantined at open; indexing the event log again from its start"
            );
        }
        Some(0)
    };
    remove_leftovers(dir, &manifest, &partitions, &mut dictionaries)?;

    let wal_ids = Wal::list(dir)?;
    let next_wal = wal_ids
        .last()
        .map_or(manifest.wal_floor, |&last| last + 1)
        .max(manifest.wal_floor)
        .max(1);
    let wal = Wal::create(dir, next_wal, options.sync_writes)?;
    // Merges put off by a flush backlog when the store last ran are due now.
    let crowded: BTreeSet<i32> = partitions
        .iter()
        .filter(|(_, segments)| segments.len() > options.max_segments_per_partition)
        .map(|(&day, _)| day)
        .collect();
    let merge_wanted = AtomicBool::new(!crowded.is_empty());
    let shared = Shared {
        dir: dir.to_owned(),
        cache: PageCache::new(options.cache_bytes),
        files,
        tokens,
        state: RwLock::new(State {
            active: Memtable::default(),
            frozen: VecDeque::new(),
            partitions,
            applied_offset: manifest.applied_offset,
            expired_before_day: manifest.expired_before_day,
        }),
        log: Mutex::new(wal),
        flushed_offset: AtomicU64::new(manifest.applied_offset),
        commit: Mutex::new(Committer {
            manifest,
            dictionaries,
            crowded,
            merging: HashSet::new(),
        }),
        poisoned: Mutex::new(None),
        damaged: Mutex::new(Vec::new()),
        rewind: Mutex::new(rewind),
        quarantined: AtomicU64::new(quarantined),
        partition_write_failures: AtomicU64::new(0),
        merge_failures: AtomicU64::new(0),
        event_id_conflicts: AtomicU64::new(0),
        flush_failing: AtomicBool::new(false),
        flush_callers: AtomicUsize::new(0),
        flusher_control: Mutex::new(false),
        flusher_wake: Condvar::new(),
        flushed: Condvar::new(),
        merger_wake: Condvar::new(),
        stopping: AtomicBool::new(false),
        merge_wanted,
        built: Mutex::new(Vec::new()),
        options,
    };
    shared.replay_wal(wal_ids.into_iter().filter(|&id| id < next_wal))?;
    shared.process_quarantine();
    // Whatever was quarantined while opening, `applied_offset` (0) already says where the
    // caller resumes.
    *shared.lock(&shared.rewind) = None;
    Ok(shared)
}

impl Shared {
    /// Replays WAL files at or above the manifest's floor, in order, stopping at the
    /// first torn frame (later files cannot hold acknowledged batches).
    fn replay_wal(&self, ids: impl Iterator<Item = u64>) -> Result<(), HistoryError> {
        let floor = self.lock(&self.commit).manifest.wal_floor;
        let mut intact = true;
        for id in ids.filter(|&id| id >= floor) {
            if !intact {
                Wal::remove(&self.dir, id)?;
                continue;
            }
            intact = Wal::replay(&self.dir, id, |batch| {
                let mut accepted = Vec::new();
                let mut damaged = Vec::new();
                {
                    let state = self.read_state();
                    for stored in &batch.records {
                        let (json, provenance) = split_stored(stored);
                        let Ok(record) = EventRecord::from_slice(json) else {
                            continue;
                        };
                        let Staging::Staged(event) = stage(&record) else {
                            continue;
                        };
                        let event = event.with_provenance(provenance);
                        if state.expired_before_day.is_some_and(|day| event.day < day) {
                            continue;
                        }
                        let presence = self.presence(&state, &event, &record, &mut damaged)?;
                        if presence != Presence::Stored {
                            accepted.push(event);
                        }
                    }
                }
                self.note_damaged(damaged);
                let mut state = self.write_state();
                for event in accepted {
                    state.active.insert(event);
                }
                if self.lock(&self.rewind).is_none() {
                    state.applied_offset = state.applied_offset.max(batch.end_offset);
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// Whether a segment that failed to open is damaged (or gone) rather than unreadable
/// for the moment (out of descriptors, permissions, ...), which must fail the open.
fn is_damage(error: &HistoryError) -> bool {
    match error {
        HistoryError::Corrupt { .. } => true,
        HistoryError::Io { source, .. } => {
            source.kind() == std::io::ErrorKind::NotFound
                || source.kind() == std::io::ErrorKind::UnexpectedEof
        }
        HistoryError::Poisoned(_) => false,
    }
}

fn load_or_create_token_key(dir: &Path) -> Result<TokenKey, HistoryError> {
    let path = dir.join(TOKEN_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let secret: [u8; 32] = bytes
                .try_into()
                .map_err(|_| HistoryError::corrupt(&path, "token key must be 32 bytes"))?;
            Ok(TokenKey::new(secret))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            write_durably(&path, &secret)?;
            Ok(TokenKey::new(secret))
        }
        Err(error) => Err(HistoryError::io(&path, error)),
    }
}

fn dictionary_files(dir: &Path) -> Result<Vec<(u32, PathBuf)>, HistoryError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|error| HistoryError::io(dir, error))? {
        let entry = entry.map_err(|error| HistoryError::io(dir, error))?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_prefix("dict-"))
            .and_then(|name| name.strip_suffix(".zdict"))
            .and_then(|id| id.parse().ok());
        if let Some(id) = id {
            found.push((id, entry.path()));
        }
    }
    Ok(found)
}

fn remove_leftover_segments(
    partition: &Path,
    live_files: &HashSet<PathBuf>,
) -> Result<(), HistoryError> {
    for file in std::fs::read_dir(partition).map_err(|error| HistoryError::io(partition, error))? {
        let file = file
            .map_err(|error| HistoryError::io(partition, error))?
            .path();
        if !live_files.contains(&file) {
            remove_file(&file)?;
        }
    }
    Ok(())
}

/// Removes what an interrupted flush, merge or expiry left behind: segment files and
/// partition directories the manifest does not name, temporary files, WAL files below
/// the floor, and dictionaries nothing uses.
fn remove_leftovers(
    dir: &Path,
    manifest: &Manifest,
    partitions: &BTreeMap<i32, Vec<Arc<Segment>>>,
    dictionaries: &mut HashMap<u32, Arc<Dictionary>>,
) -> Result<(), HistoryError> {
    let live_dirs: HashSet<PathBuf> = partitions
        .keys()
        .map(|&day| partition_dir(dir, day))
        .collect();
    let live_files: HashSet<PathBuf> = partitions
        .values()
        .flatten()
        .map(|segment| segment.path().to_owned())
        .collect();
    for entry in std::fs::read_dir(dir).map_err(|error| HistoryError::io(dir, error))? {
        let entry = entry.map_err(|error| HistoryError::io(dir, error))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // A leftover that cannot be removed is harmless (nothing names it, and a later
        // write of the same name replaces it): it must not keep the store from opening.
        let removed = if name.starts_with("p-") && path.is_dir() {
            if !live_dirs.contains(&path) {
                remove_dir(&path)
            } else {
                remove_leftover_segments(&path, &live_files)
            }
        } else if name.ends_with(".tmp") {
            remove_file(&path)
        } else {
            Ok(())
        };
        if let Err(error) = removed {
            tracing::warn!(%error, "could not remove a leftover event history file");
        }
    }
    for id in Wal::list(dir)? {
        if id < manifest.wal_floor {
            Wal::remove(dir, id)?;
        }
    }
    let live = manifest.live_dictionaries(
        partitions
            .values()
            .flatten()
            .map(|segment| segment.dictionary_id()),
    );
    let unused: Vec<u32> = dictionaries
        .keys()
        .copied()
        .filter(|id| !live.contains(id))
        .collect();
    for id in unused {
        dictionaries.remove(&id);
        remove_file(&Dictionary::path(dir, id))?;
    }
    Ok(())
}

pub(super) fn remove_file(path: &Path) -> Result<(), HistoryError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(HistoryError::io(path, error)),
    }
}

pub(super) fn remove_dir(path: &Path) -> Result<(), HistoryError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(HistoryError::io(path, error)),
    }
}
