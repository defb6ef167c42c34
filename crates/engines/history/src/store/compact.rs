//! Merging a crowded day partition's smallest segments into one, so lookups consult
//! fewer files when late or out-of-order arrivals fragment a day. Merging the smallest
//! (not all) keeps rewriting cheap: big segments are left alone until small ones add up.
//! Records are re-blocked in sort order; index entries are carried over with their
//! ordinals remapped, not recomputed.
//!
//! A merge has three steps, so that the long one holds no lock: it is planned under the
//! commit lock (its inputs are claimed, so no other merge takes them), built without it
//! (the merged segment written and synced beside its inputs, which lookups still read),
//! and committed under the commit lock again (the manifest names the merged segment
//! instead of its inputs). The background merger builds at the lowest CPU priority and
//! leaves the commit to the flusher, which is not held back by that priority.

use super::open::remove_file;
use super::{segment_path, Committer, Shared};
use crate::dictionary::Dictionary;
use crate::error::HistoryError;
use crate::fsutil::sync_dir;
use crate::manifest::SegmentEntry;
use crate::segment::{DecodedBlock, Segment, SegmentWriter};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Records a merge writes between checks for the store being dropped.
const RECORDS_BETWEEN_STOP_CHECKS: usize = 4096;

/// A merge chosen under the commit lock; its inputs stay claimed until it is committed
/// or released.
#[derive(Debug)]
pub(super) struct MergePlan {
    pub(super) day: i32,
    id: u64,
    pub(super) path: PathBuf,
    pub(super) inputs: Vec<Arc<Segment>>,
    dictionary: Option<Arc<Dictionary>>,
}

/// A merged segment, written and synced, waiting to replace its inputs.
pub(super) struct BuiltMerge {
    pub(super) plan: MergePlan,
    merged: Arc<Segment>,
    events: u32,
}

/// A merge that was not built: the store is being dropped (no error), or it failed. Its
/// inputs are still claimed, and its partial file is removed.
#[derive(Debug)]
pub(super) struct Unbuilt {
    plan: MergePlan,
    error: Option<HistoryError>,
}

impl Shared {
    /// Merges `day`'s smallest segments on the caller's thread, all three steps.
    pub(super) fn merge_partition(
        &self,
        committer: &mut Committer,
        day: i32,
    ) -> Result<(), HistoryError> {
        let Some(plan) = self.plan_merge(committer, day) else {
            return Ok(());
        };
        match self.build_merge(plan) {
            Ok(built) => self.commit_merge(committer, built),
            Err(Unbuilt { plan, error }) => {
                self.release_merge(committer, &plan);
                error.map_or(Ok(()), Err)
            }
        }
    }

    /// Chooses the merge of `day`'s smallest unclaimed segments that leaves half the
    /// limit, and claims them; `None` when the partition is not over the limit or fewer
    /// than two segments are free to merge.
    pub(super) fn plan_merge(&self, committer: &mut Committer, day: i32) -> Option<MergePlan> {
        let mut inputs: Vec<Arc<Segment>> = {
            let state = self.read_state();
            let segments = state.partitions.get(&day)?;
            if segments.len() <= self.options.max_segments_per_partition {
                return None;
            }
            segments
                .iter()
                .filter(|segment| !committer.merging.contains(&segment.id()))
                .cloned()
                .collect()
        };
        // Down to half the limit, merging the smallest segments.
        let keep = self.options.max_segments_per_partition / 2;
        inputs.sort_by_key(|segment| segment.events());
        inputs.truncate(inputs.len().saturating_sub(keep).max(2));
        if inputs.len() < 2 {
            return None;
        }
        committer
            .merging
            .extend(inputs.iter().map(|segment| segment.id()));
        let id = committer.manifest.next_segment_id;
        // Written to the manifest with its next commit; a segment file the manifest does not
        // name is removed when the store opens, so an id lost in a crash is never reused
        // for a live file.
        committer.manifest.next_segment_id += 1;
        let dictionary = committer
            .dictionaries
            .get(&committer.manifest.current_dictionary)
            .cloned();
        Some(MergePlan {
            day,
            id,
            path: segment_path(&self.dir, day, id),
            inputs,
            dictionary,
        })
    }

    /// Gives a merge's inputs back (after it failed, was cancelled or committed).
    pub(super) fn release_merge(&self, committer: &mut Committer, plan: &MergePlan) {
        for segment in &plan.inputs {
            committer.merging.remove(&segment.id());
        }
    }

    /// Writes and syncs the merged segment, holding no lock.
    pub(super) fn build_merge(&self, plan: MergePlan) -> Result<BuiltMerge, Unbuilt> {
        match self.write_merged(&plan) {
            Ok(Some((merged, events))) => Ok(BuiltMerge {
                plan,
                merged,
                events,
            }),
            written => {
                self.discard_merged(&plan);
                Err(Unbuilt {
                    plan,
                    error: written.err(),
                })
            }
        }
    }

    /// Removes a merged segment that will not be committed (a leftover is also removed at
    /// the next open).
    fn discard_merged(&self, plan: &MergePlan) {
        self.files.forget(plan.id);
        let _ = std::fs::remove_file(&plan.path);
        let _ = std::fs::remove_file(plan.path.with_extension("tmp"));
    }

    fn write_merged(&self, plan: &MergePlan) -> Result<Option<(Arc<Segment>, u32)>, HistoryError> {
        let inputs = &plan.inputs;
        // Every input event's place in the merged order: by stream, then newest first.
        let mut stream_keys: Vec<&[u8]> = inputs
            .iter()
            .flat_map(|segment| segment.streams().iter().map(|stream| &*stream.key))
            .collect();
        stream_keys.sort_unstable();
        stream_keys.dedup();
        let mut order: Vec<(u32, std::cmp::Reverse<u64>, u32, u32)> = Vec::new();
        for (input, segment) in inputs.iter().enumerate() {
            let sort_keys = segment.all_sort_keys()?;
            for stream in segment.streams() {
                let rank = stream_keys.partition_point(|&key| key < &*stream.key) as u32;
                for ordinal in stream.start..stream.end {
                    let key = sort_keys[ordinal as usize];
                    order.push((rank, std::cmp::Reverse(key), input as u32, ordinal));
                }
            }
        }
        order.sort_unstable();
        let mut remap: Vec<Vec<u32>> = inputs
            .iter()
            .map(|segment| vec![0; segment.events() as usize])
            .collect();
        for (merged, &(_, _, input, ordinal)) in order.iter().enumerate() {
            remap[input as usize][ordinal as usize] = merged as u32;
        }

        let mut segment_writer = SegmentWriter::create(
            &plan.path,
            plan.day,
            plan.dictionary.as_deref(),
            self.write_settings(),
        )?;
        let mut open_blocks: Vec<Option<(usize, DecodedBlock)>> =
            inputs.iter().map(|_| None).collect();
        for (written, &(rank, std::cmp::Reverse(sort_key), input, ordinal)) in
            order.iter().enumerate()
        {
            if written % RECORDS_BETWEEN_STOP_CHECKS == 0 && self.stopping.load(Ordering::Acquire) {
                return Ok(None);
            }
            let segment = &inputs[input as usize];
            let Some((block_index, within)) = segment.locate(ordinal) else {
                return Err(HistoryError::corrupt(
                    segment.path(),
                    "ordinal outside every block",
                ));
            };
            let slot = &mut open_blocks[input as usize];
            if slot.as_ref().is_none_or(|(open, _)| *open != block_index) {
                *slot = Some((block_index, segment.block_uncached(block_index)?));
            }
            let record = slot
                .as_ref()
                .and_then(|(_, block)| block.record(within))
                .ok_or_else(|| HistoryError::corrupt(segment.path(), "record outside its block"))?;
            segment_writer.push(stream_keys[rank as usize], sort_key, record)?;
        }
        drop(open_blocks);

        let mut postings: BTreeMap<Vec<u8>, Vec<u32>> = BTreeMap::new();
        for (input, segment) in inputs.iter().enumerate() {
            segment.for_each_index_entry(|key, ordinals| {
                let merged = postings.entry(key.to_vec()).or_default();
                merged.extend(
                    ordinals
                        .into_iter()
                        .map(|ordinal| remap[input][ordinal as usize]),
                );
            })?;
        }
        for ordinals in postings.values_mut() {
            ordinals.sort_unstable();
        }
        let summary = segment_writer.finish(postings)?;
        let merged = Segment::open(&plan.path, plan.id, &self.files, |id| {
            plan.dictionary
                .as_ref()
                .filter(|dictionary| dictionary.id() == id)
                .cloned()
        })?;
        sync_dir(plan.path.parent().unwrap_or(&self.dir))?;
        Ok(Some((Arc::new(merged), summary.events)))
    }

    /// Replaces a built merge's inputs with it. A merge whose inputs were expired or
    /// quarantined meanwhile, or whose dictionary is gone, is dropped instead.
    pub(super) fn commit_merge(
        &self,
        committer: &mut Committer,
        built: BuiltMerge,
    ) -> Result<(), HistoryError> {
        let BuiltMerge {
            plan,
            merged,
            events,
        } = built;
        self.release_merge(committer, &plan);
        let replaced: HashSet<u64> = plan.inputs.iter().map(|segment| segment.id()).collect();
        let live = committer
            .manifest
            .segments
            .iter()
            .filter(|entry| replaced.contains(&entry.id))
            .count();
        let dictionary_kept = plan
            .dictionary
            .as_ref()
            .is_none_or(|dictionary| committer.dictionaries.contains_key(&dictionary.id()));
        if live != replaced.len() || !dictionary_kept {
            tracing::debug!(
                day = plan.day,
                "dropped a merge whose inputs changed meanwhile"
            );
            self.files.forget(plan.id);
            return remove_file(&plan.path);
        }
        let mut manifest = committer.manifest.clone();
        if plan
            .dictionary
            .as_ref()
            .is_some_and(|dictionary| dictionary.id() == manifest.current_dictionary)
        {
            manifest.current_dictionary_records += u64::from(events);
        }
        manifest
            .segments
            .retain(|entry| !replaced.contains(&entry.id));
        manifest.segments.push(SegmentEntry {
            id: plan.id,
            day: plan.day,
        });
        if let Err(error) = manifest.store(&self.dir) {
            self.discard_merged(&plan);
            return Err(error);
        }
        committer.manifest = manifest;
        {
            let mut state = self.write_state();
            let segments = state.partitions.entry(plan.day).or_default();
            segments.retain(|segment| !replaced.contains(&segment.id()));
            segments.push(merged);
        }
        for segment in &plan.inputs {
            self.cache.forget_segment(segment.id());
            self.files.forget(segment.id());
            remove_file(segment.path())?;
        }
        self.drop_unused_dictionaries(committer)?;
        tracing::debug!(
            day = plan.day,
            segments = plan.inputs.len(),
            events,
            "merged day partition"
        );
        Ok(())
    }

    /// Deletes dictionary files no live segment uses and that are not current.
    pub(super) fn drop_unused_dictionaries(
        &self,
        committer: &mut Committer,
    ) -> Result<(), HistoryError> {
        let live = {
            let state = self.read_state();
            committer.manifest.live_dictionaries(
                state
                    .partitions
                    .values()
                    .flatten()
                    .map(|segment| segment.dictionary_id()),
            )
        };
        let unused: Vec<u32> = committer
            .dictionaries
            .keys()
            .copied()
            .filter(|id| !live.contains(id))
            .collect();
        for id in unused {
            committer.dictionaries.remove(&id);
            remove_file(&crate::dictionary::Dictionary::path(&self.dir, id))?;
        }
        Ok(())
    }
}

impl Shared {
    /// The background merger: merges the queued day partitions, one at a time, until told
    /// to stop. It runs at the lowest CPU priority, so a merge takes only the time ingest,
    /// lookups and the flusher leave; under a sustained load partitions may then grow to
    /// [`MERGE_AT_ONCE_FACTOR`](super::flush::MERGE_AT_ONCE_FACTOR) times the limit, where
    /// the flusher merges them itself. It builds merges and leaves their commits to the
    /// flusher, so that no lock waits on a thread at that priority for long.
    pub(super) fn run_merger(&self) {
        lower_priority();
        loop {
            {
                let mut stop = self.lock(&self.flusher_control);
                while !*stop && !self.merge_wanted.swap(false, Ordering::AcqRel) {
                    stop = self
                        .merger_wake
                        .wait_timeout(stop, super::IDLE_POLL)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
                if *stop {
                    return;
                }
            }
            while !self.stopping.load(Ordering::Acquire) {
                let plan = {
                    let mut committer = self.lock(&self.commit);
                    let mut plan = None;
                    while let Some(day) = committer.crowded.pop_first() {
                        plan = self.plan_merge(&mut committer, day);
                        if plan.is_some() {
                            break;
                        }
                    }
                    plan
                };
                let Some(plan) = plan else {
                    break;
                };
                match self.build_merge(plan) {
                    Ok(built) => {
                        self.lock(&self.built).push(built);
                        self.wake_flusher();
                    }
                    Err(Unbuilt { plan, error }) => {
                        self.release_merge(&mut self.lock(&self.commit), &plan);
                        if let Some(error) = error {
                            self.report_merge_failure(plan.day, &error);
                        }
                    }
                }
            }
        }
    }

    /// Queues `days` for the merger and wakes it.
    pub(super) fn queue_merges(&self, committer: &mut Committer, days: &[i32]) {
        if days.is_empty() {
            return;
        }
        committer.crowded.extend(days);
        self.merge_wanted.store(true, Ordering::Release);
        drop(self.lock(&self.flusher_control));
        self.merger_wake.notify_all();
    }

    pub(super) fn merges_built(&self) -> bool {
        !self.lock(&self.built).is_empty()
    }

    /// Commits the merges the merger built (the flusher's job).
    pub(super) fn commit_built(&self, committer: &mut Committer) {
        let built = std::mem::take(&mut *self.lock(&self.built));
        for merge in built {
            let day = merge.plan.day;
            if let Err(error) = self.commit_merge(committer, merge) {
                self.report_merge_failure(day, &error);
            }
        }
    }

    /// A failed merge leaves the partition as it was: report it and go on.
    pub(super) fn report_merge_failure(&self, day: i32, error: &HistoryError) {
        self.merge_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(day, %error, "failed to merge an event history day partition");
        if let HistoryError::Corrupt { path, .. } = error {
            self.note_damaged_path(path, error.to_string());
        }
    }
}

/// Lowers the calling thread to the lowest CPU priority (nice 19), which the threads it
/// starts inherit. Linux applies a thread id's priority to that thread alone.
#[cfg(target_os = "linux")]
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), LOWEST_PRIORITY) {
        tracing::warn!(%error, "could not lower the event history merger's CPU priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// The nice value of the merger thread.
#[cfg(target_os = "linux")]
const LOWEST_PRIORITY: i32 = 19;
