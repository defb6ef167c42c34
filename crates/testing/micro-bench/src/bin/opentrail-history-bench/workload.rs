//! The lookups to measure: for each of the eight attributes, values drawn from random
//! stored records (so common values are asked for as often as they occur), and random
//! one-hour time windows; each in the record's own account and region.

use opentrail_history::{EventSummary, HistoryCategory, LookupAttributeKey};
use opentrail_model::EventRecord;
use opentrail_operations::{LookupAttribute, LookupEventsRequest, Timestamp};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One lookup, in a form the DuckDB script can replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuerySpec {
    /// An attribute name, or `TimeRange`.
    pub kind: String,
    pub account: String,
    pub region: String,
    pub value: Option<String>,
    /// Inclusive epoch seconds.
    pub start: i64,
    pub end: i64,
}

impl QuerySpec {
    pub fn input(&self) -> LookupEventsRequest {
        LookupEventsRequest {
            lookup_attributes: self.value.as_ref().map(|value| {
                vec![LookupAttribute {
                    attribute_key: self.kind.as_str().into(),
                    attribute_value: value.clone(),
                }]
            }),
            start_time: chrono::DateTime::from_timestamp(self.start, 0).map(Timestamp),
            end_time: chrono::DateTime::from_timestamp(self.end, 0).map(Timestamp),
            ..Default::default()
        }
    }
}

/// A uniform sample of stored (management) records, kept while ingesting.
pub struct Reservoir {
    records: Vec<EventRecord>,
    seen: u64,
    capacity: usize,
    rng: StdRng,
    pub min_time: i64,
    pub max_time: i64,
}

impl Reservoir {
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self {
            records: Vec::with_capacity(capacity),
            seen: 0,
            capacity,
            rng: StdRng::seed_from_u64(seed),
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }

    pub fn offer(&mut self, record: &EventRecord) {
        if HistoryCategory::of(record) != Some(HistoryCategory::Management) {
            return;
        }
        if let Some(time) = record.event_time() {
            self.min_time = self.min_time.min(time.timestamp());
            self.max_time = self.max_time.max(time.timestamp());
        }
        self.seen += 1;
        if self.records.len() < self.capacity {
            self.records.push(record.clone());
            return;
        }
        let slot = self.rng.gen_range(0..self.seen);
        if let Some(kept) = self.records.get_mut(slot as usize) {
            *kept = record.clone();
        }
    }

    /// `per_kind` lookups for each attribute and for time windows, over the whole
    /// stored time range.
    pub fn queries(&self, per_kind: usize, seed: u64) -> Vec<QuerySpec> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut specs = Vec::new();
        for key in LookupAttributeKey::ALL {
            let mut made = 0;
            for _ in 0..per_kind * 50 {
                if made == per_kind {
                    break;
                }
                let Some(record) = self.records.choose(&mut rng) else {
                    break;
                };
                let summary = EventSummary::of(record);
                let Some(value) = summary
                    .values(key)
                    .choose(&mut rng)
                    .map(|value| value.to_string())
                else {
                    continue;
                };
                specs.push(QuerySpec {
                    kind: key.as_str().to_owned(),
                    account: record.recipient_account_id().to_owned(),
                    region: record.aws_region().to_owned(),
                    value: Some(value),
                    start: self.min_time,
                    end: self.max_time,
                });
                made += 1;
            }
        }
        for _ in 0..per_kind {
            let Some(record) = self.records.choose(&mut rng) else {
                break;
            };
            let start = rng.gen_range(self.min_time..=(self.max_time - 3_600).max(self.min_time));
            specs.push(QuerySpec {
                kind: "TimeRange".to_owned(),
                account: record.recipient_account_id().to_owned(),
                region: record.aws_region().to_owned(),
                value: None,
                start,
                end: start + 3_599,
            });
        }
        specs
    }
}
