//! Runs a validated LookupEvents query: gathers the newest candidates from the memtables
//! and, day partition by day partition from the newest, from each segment; keeps the
//! best `limit + 1` by sort key; then reads and checks only the records it returns.
//!
//! It reads plain data the store hands it (its memtables and day partitions), and does
//! not know the store: `store` depends on `query`, never the other way round.

use crate::attributes::HistoryCategory;
use crate::cache::PageCache;
use crate::error::HistoryError;
use crate::index_key::{index_key, KeyKind};
use crate::lookup::{Filter, Query};
use crate::memtable::{Memtable, Selector};
use crate::segment::{sort_key, Segment};
use crate::staging::{day_of, SECONDS_PER_DAY};
use opentrail_model::EventRecord;
use opentrail_operations::Event;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a query reads: a snapshot of the store's searchable data.
pub(crate) struct Sources<'s> {
    /// The memtables still searched (active and frozen), in any order.
    pub(crate) memtables: Vec<&'s Memtable>,
    /// Day (days since the epoch) → its segments.
    pub(crate) partitions: &'s BTreeMap<i32, Vec<Arc<Segment>>>,
}

/// One page of results and, when more remain, the sort key to continue below.
pub(crate) struct Page {
    pub(crate) events: Vec<Event>,
    pub(crate) next_below: Option<u64>,
}

#[derive(Clone, Copy)]
enum Source<'s> {
    Memtable(&'s Memtable, u32),
    Segment(&'s Arc<Segment>, u32),
}

#[derive(Clone, Copy)]
struct Candidate<'s> {
    key: u64,
    source: Source<'s>,
}

/// The inclusive sort-key range of a query, `None` when it selects nothing.
fn key_range(query: &Query) -> Option<(u64, u64)> {
    let start = u32::try_from(query.start.max(0)).ok()?;
    let end = u32::try_from(query.end.min(i64::from(u32::MAX))).ok()?;
    let low = sort_key(start, 0);
    let mut high = sort_key(end, u32::MAX);
    if let Some(below) = query.below {
        high = high.min(below.checked_sub(1)?);
    }
    (low <= high).then_some((low, high))
}

fn keep_best(candidates: &mut Vec<Candidate<'_>>, want: usize) {
    candidates.sort_unstable_by_key(|candidate| std::cmp::Reverse(candidate.key));
    candidates.truncate(want);
}

/// Runs `query`. A segment that turns out damaged (a page failing its checksum) is
/// skipped — the answer comes from everything readable — and listed in `damaged`.
pub(crate) fn run(
    query: &Query,
    sources: &Sources<'_>,
    cache: &PageCache,
    damaged: &mut Vec<(u64, HistoryError)>,
) -> Result<Page, HistoryError> {
    let empty = Page {
        events: Vec::new(),
        next_below: None,
    };
    let Some((low, high)) = key_range(query) else {
        return Ok(empty);
    };
    let Some(stream) = index_key(
        KeyKind::Stream,
        query.category,
        &query.account,
        &query.region,
        "",
    ) else {
        return Ok(empty);
    };
    let attribute_key;
    let selector = match &query.filter {
        Filter::Stream => Selector::Stream,
        Filter::EventId(event_id) => Selector::Fingerprint(crate::hash::event_fingerprint(
            &query.account,
            &query.region,
            event_id,
        )),
        Filter::Attribute(key, value) => {
            let Some(bytes) = index_key(
                KeyKind::Attribute(*key),
                query.category,
                &query.account,
                &query.region,
                value,
            ) else {
                return Ok(empty);
            };
            attribute_key = bytes;
            Selector::Key(&attribute_key)
        }
    };
    let want = query.limit + 1;

    let mut found: Vec<Candidate<'_>> = Vec::new();
    for &memtable in &sources.memtables {
        found.extend(
            memtable
                .candidates(&stream, selector, low, high, want)
                .into_iter()
                .map(|(key, index)| Candidate {
                    key,
                    source: Source::Memtable(memtable, index),
                }),
        );
    }
    keep_best(&mut found, want);

    let first_day = day_of(i64::from(crate::segment::key_time(low)));
    let last_day = day_of(i64::from(crate::segment::key_time(high)));
    for (&day, segments) in sources.partitions.range(first_day..=last_day).rev() {
        let day_end = sort_key(
            u32::try_from((i64::from(day) + 1) * SECONDS_PER_DAY).unwrap_or(u32::MAX),
            0,
        );
        if found.len() >= want && found[want - 1].key >= day_end {
            break;
        }
        for segment in segments {
            let candidates =
                match segment_candidates(segment, &stream, selector, low, high, want, cache) {
                    Err(error @ HistoryError::Corrupt { .. }) => {
                        damaged.push((segment.id(), error));
                        continue;
                    }
                    result => result?,
                };
            for (key, ordinal) in candidates {
                found.push(Candidate {
                    key,
                    source: Source::Segment(segment, ordinal),
                });
            }
        }
        keep_best(&mut found, want);
    }

    let next_below = (found.len() > query.limit).then(|| found[query.limit - 1].key);
    found.truncate(query.limit);
    let mut events = Vec::with_capacity(found.len());
    for candidate in found {
        match materialize(candidate, query, cache) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            // A record in a damaged block cannot be returned; the rest of the page can.
            Err(error @ HistoryError::Corrupt { .. }) => match candidate.source {
                Source::Segment(segment, _) => damaged.push((segment.id(), error)),
                Source::Memtable(..) => return Err(error),
            },
            Err(error) => return Err(error),
        }
    }
    Ok(Page { events, next_below })
}

/// Up to `want` (sort key, ordinal) pairs of `segment`, newest first: events of `stream`
/// selected by `selector` within `[low, high]`.
fn segment_candidates(
    segment: &Segment,
    stream: &[u8],
    selector: Selector<'_>,
    low: u64,
    high: u64,
    want: usize,
    cache: &PageCache,
) -> Result<Vec<(u64, u32)>, HistoryError> {
    let Some(range) = segment.stream(stream) else {
        return Ok(Vec::new());
    };
    if range.first_key < low || range.last_key > high {
        return Ok(Vec::new());
    }
    let ordinals = match selector {
        Selector::Stream => None,
        Selector::Key(key) => Some(segment.postings(key, cache)?),
        Selector::Fingerprint(fingerprint) => {
            let mut ordinals = segment.fingerprint_ordinals(fingerprint, cache)?;
            ordinals.sort_unstable();
            Some(ordinals)
        }
    };
    if ordinals.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let begin = segment.first_at_or_below(range, high, cache)?;
    let end = match low.checked_sub(1) {
        Some(below_low) => segment.first_at_or_below(range, below_low, cache)?,
        None => range.end,
    };
    let selected: Vec<u32> = match &ordinals {
        None => (begin..end).take(want).collect(),
        Some(ordinals) => {
            let from = ordinals.partition_point(|&ordinal| ordinal < begin);
            ordinals[from..]
                .iter()
                .take_while(|&&ordinal| ordinal < end)
                .take(want)
                .copied()
                .collect()
        }
    };
    selected
        .into_iter()
        .map(|ordinal| Ok((segment.sort_key(ordinal, cache)?, ordinal)))
        .collect()
}

/// Reads a candidate's record and turns it into an Event, after checking it really is
/// the caller's (fingerprints can collide; keys cannot, but checking costs nothing).
fn materialize(
    candidate: Candidate<'_>,
    query: &Query,
    cache: &PageCache,
) -> Result<Option<Event>, HistoryError> {
    let block;
    let json = match candidate.source {
        Source::Memtable(memtable, index) => memtable.json(index),
        Source::Segment(segment, ordinal) => {
            let Some((block_index, within)) = segment.locate(ordinal) else {
                return Err(HistoryError::corrupt(
                    segment.path(),
                    "ordinal outside every block",
                ));
            };
            block = segment.block(block_index, cache)?;
            block.record(within)
        }
    };
    let Some(json) = json else {
        return Ok(None);
    };
    let (json, provenance) = crate::staging::split_stored(json);
    let Ok(record) = EventRecord::from_slice(json) else {
        return Ok(None);
    };
    let category_matches = HistoryCategory::of(&record) == Some(query.category);
    let id_matches = match &query.filter {
        Filter::EventId(event_id) => record.event_id() == event_id,
        _ => true,
    };
    let owner_matches =
        record.recipient_account_id() == query.account && record.aws_region() == query.region;
    Ok((category_matches && id_matches && owner_matches)
        .then(|| crate::lookup::event(&record, provenance)))
}
