//! Merging a crowded day partition's smallest segments into one, so lookups consult
//! fewer files when late or out-of-order arrivals fragment a day. Merging the smallest
//! (not all) keeps rewriting cheap: big segments are left alone until small ones add up.
//! Records are re-blocked in sort order; index entries are carried over with their
//! ordinals remapped, not recomputed.

use super::open::remove_file;
use super::{segment_path, Committer, Shared};
use crate::error::HistoryError;
use crate::fsutil::sync_dir;
use crate::manifest::SegmentEntry;
use crate::segment::{DecodedBlock, Segment, SegmentWriter};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

impl Shared {
    pub(super) fn merge_partition(
        &self,
        committer: &mut Committer,
        day: i32,
    ) -> Result<(), HistoryError> {
        let mut inputs: Vec<Arc<Segment>> = match self.read_state().partitions.get(&day) {
            Some(segments) if segments.len() > 1 => segments.clone(),
            _ => return Ok(()),
        };
        // Down to half the limit, merging the smallest segments.
        let keep = self.options.max_segments_per_partition / 2;
        inputs.sort_by_key(|segment| segment.events());
        inputs.truncate((inputs.len() - keep).max(2));
        let mut manifest = committer.manifest.clone();
        let id = manifest.next_segment_id;
        manifest.next_segment_id += 1;
        let path = segment_path(&self.dir, day, id);
        let dictionary = committer
            .dictionaries
            .get(&manifest.current_dictionary)
            .cloned();

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

        let mut segment_writer =
            SegmentWriter::create(&path, day, dictionary.as_deref(), self.write_settings())?;
        let mut open_blocks: Vec<Option<(usize, DecodedBlock)>> =
            inputs.iter().map(|_| None).collect();
        for &(rank, std::cmp::Reverse(sort_key), input, ordinal) in &order {
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
        manifest.current_dictionary_records += u64::from(summary.events);
        let merged = Arc::new(Segment::open(&path, id, &self.files, |id| {
            committer.dictionaries.get(&id).cloned()
        })?);
        sync_dir(path.parent().unwrap_or(&self.dir))?;

        let replaced: HashSet<u64> = inputs.iter().map(|segment| segment.id()).collect();
        manifest
            .segments
            .retain(|entry| !replaced.contains(&entry.id));
        manifest.segments.push(SegmentEntry { id, day });
        manifest.store(&self.dir)?;
        committer.manifest = manifest;
        {
            let mut state = self.write_state();
            let segments = state.partitions.entry(day).or_default();
            segments.retain(|segment| !replaced.contains(&segment.id()));
            segments.push(merged);
        }
        for segment in &inputs {
            self.cache.forget_segment(segment.id());
            self.files.forget(segment.id());
            remove_file(segment.path())?;
        }
        self.drop_unused_dictionaries(committer)?;
        tracing::debug!(
            day,
            segments = inputs.len(),
            events = summary.events,
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
