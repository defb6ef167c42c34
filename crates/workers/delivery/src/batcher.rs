//! Open log files: the events routed to each (trail, region) lane since its last file,
//! and when a lane is due — older than the delivery interval or over the size bound.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use opentrail_model::{EventRecord, Region, TrailArn};

/// One trail's log files for one region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lane {
    pub trail: TrailArn,
    pub region: Region,
    /// Insights events (`CloudTrail-Insight/` log files) rather than the trail's events.
    pub insight: bool,
}

/// The events of one open log file.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    pub(crate) records: Vec<EventRecord>,
    /// The uncompressed file size so far.
    pub(crate) bytes: usize,
    /// The log offset of the first record: the cursor may not pass it until delivered.
    pub(crate) first_offset: u64,
    /// The log offset of the last record.
    pub(crate) last_offset: u64,
    pub(crate) opened_at: DateTime<Utc>,
}

/// `{"Records":[` + `]}\n`.
const ENVELOPE_BYTES: usize = 15;

/// Open batches per lane, and batches closed at the size bound waiting to be written.
#[derive(Debug)]
pub(crate) struct Batcher {
    max_bytes: usize,
    open: HashMap<Lane, OpenBatch>,
    full: Vec<(Lane, OpenBatch)>,
}

impl Batcher {
    /// Files stay under `max_bytes` uncompressed unless a single record is larger.
    pub(crate) fn new(max_bytes: usize) -> Batcher {
        Batcher {
            max_bytes,
            open: HashMap::new(),
            full: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, lane: Lane, offset: u64, record: EventRecord, now: DateTime<Utc>) {
        let added = record.byte_len() + 1;
        if let Some(batch) = self.open.get(&lane) {
            if batch.bytes + added > self.max_bytes {
                let batch = self.open.remove(&lane).expect("present");
                self.full.push((lane.clone(), batch));
            }
        }
        let batch = self.open.entry(lane).or_insert_with(|| OpenBatch {
            records: Vec::new(),
            bytes: ENVELOPE_BYTES,
            first_offset: offset,
            last_offset: offset,
            opened_at: now,
        });
        batch.last_offset = batch.last_offset.max(offset);
        batch.bytes += record.byte_len() + usize::from(!batch.records.is_empty());
        batch.records.push(record);
    }

    /// Removes and returns the batches due now (full, or open for `interval`), oldest first.
    pub(crate) fn take_due(
        &mut self,
        now: DateTime<Utc>,
        interval: Duration,
    ) -> Vec<(Lane, OpenBatch)> {
        self.take_where(|_| true, |_, batch| now - batch.opened_at >= interval)
    }

    /// Removes and returns every batch.
    pub(crate) fn take_all(&mut self) -> Vec<(Lane, OpenBatch)> {
        self.take_where(|_| true, |_, _| true)
    }

    /// Removes and returns every batch of `trail`, oldest first.
    pub(crate) fn take_trail(&mut self, trail: &TrailArn) -> Vec<(Lane, OpenBatch)> {
        self.take_where(|lane| &lane.trail == trail, |lane, _| &lane.trail == trail)
    }

    /// The first log offset not yet delivered, if any batch is waiting.
    pub(crate) fn min_first_offset(&self) -> Option<u64> {
        self.open
            .values()
            .chain(self.full.iter().map(|(_, batch)| batch))
            .map(|batch| batch.first_offset)
            .min()
    }

    pub(crate) fn waiting_records(&self) -> usize {
        self.open
            .values()
            .chain(self.full.iter().map(|(_, batch)| batch))
            .map(|batch| batch.records.len())
            .sum()
    }

    fn take_where(
        &mut self,
        take_full: impl Fn(&Lane) -> bool,
        take_open: impl Fn(&Lane, &OpenBatch) -> bool,
    ) -> Vec<(Lane, OpenBatch)> {
        let (mut taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.full)
            .into_iter()
            .partition(|(lane, _)| take_full(lane));
        self.full = kept;
        let lanes: Vec<Lane> = self
            .open
            .iter()
            .filter(|(lane, batch)| take_open(lane, batch))
            .map(|(lane, _)| lane.clone())
            .collect();
        taken.extend(
            lanes
                .into_iter()
                .filter_map(|lane| self.open.remove(&lane).map(|batch| (lane, batch))),
        );
        taken.sort_by_key(|(_, batch)| batch.first_offset);
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn lane(region: &str) -> Lane {
        Lane {
            insight: false,
            trail: TrailArn::parse("arn:aws:cloudtrail:us-east-1:123456789012:trail/main").unwrap(),
            region: Region::parse(region).unwrap(),
        }
    }

    fn record() -> EventRecord {
        EventRecord::from_json(r#"{"eventVersion":"1.08","userIdentity":{"type":"Root"},"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","eventID":"e1","eventType":"AwsApiCall","recipientAccountId":"123456789012"}"#).unwrap()
    }

    #[test]
    fn due_by_age_or_size() {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut batcher = Batcher::new(1 << 20);
        batcher.add(lane("us-east-1"), 7, record(), t0);
        batcher.add(lane("us-east-1"), 9, record(), t0 + Duration::seconds(10));
        batcher.add(lane("eu-west-1"), 8, record(), t0 + Duration::seconds(30));
        assert_eq!(batcher.min_first_offset(), Some(7));
        let interval = Duration::seconds(60);
        assert!(batcher
            .take_due(t0 + Duration::seconds(59), interval)
            .is_empty());
        let due = batcher.take_due(t0 + Duration::seconds(60), interval);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.records.len(), 2);
        assert_eq!(
            due[0].1.bytes,
            opentrail_model::write_log_file(&due[0].1.records).len()
        );
        assert_eq!(batcher.min_first_offset(), Some(8));
        assert_eq!(batcher.take_all().len(), 1);
        assert_eq!(batcher.min_first_offset(), None);
    }

    #[test]
    fn closes_a_file_before_it_passes_the_size_bound() {
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let one = record().byte_len();
        // Room for exactly three records.
        let max = ENVELOPE_BYTES + 3 * one + 2;
        let mut batcher = Batcher::new(max);
        for offset in 0..7 {
            batcher.add(lane("us-east-1"), offset, record(), t0);
        }
        let due = batcher.take_due(t0, Duration::seconds(60));
        let sizes: Vec<usize> = due.iter().map(|(_, b)| b.records.len()).collect();
        assert_eq!(sizes, [3, 3]);
        for (_, batch) in &due {
            assert!(opentrail_model::write_log_file(&batch.records).len() <= max);
        }
        assert_eq!(batcher.min_first_offset(), Some(6));
        assert_eq!(batcher.waiting_records(), 1);
    }
}
