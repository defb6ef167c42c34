//! Records parsed on ingest, kept for a moment so that event history, reading them back
//! from the event log's in-memory tail, does not parse them a second time.
//!
//! The log's tail hands readers clones of the very `Bytes` ingest appended, so a record is
//! found by the address and length of its bytes; its text is compared before it is used,
//! so a reused address can only cost a parse, never return another record.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use opentrail_model::EventRecord;

type Key = (usize, usize);

fn key(bytes: &[u8]) -> Key {
    (bytes.as_ptr() as usize, bytes.len())
}

/// Recently ingested records, oldest evicted first once their text passes the capacity.
pub struct ParsedRecords {
    capacity_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<Key, EventRecord>,
    order: VecDeque<Key>,
    bytes: usize,
}

impl ParsedRecords {
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether records appended now would still be here when a reader `lag` records
    /// behind the log's end reaches them (assuming records of at least 1 KiB).
    pub fn reached_in_time(&self, lag: u64) -> bool {
        lag.saturating_mul(1024) < self.capacity_bytes as u64
    }

    /// Keeps `record`, parsed from `bytes` (the buffer about to be appended to the log).
    pub fn insert_all(&self, records: impl IntoIterator<Item = (Bytes, EventRecord)>) {
        if self.capacity_bytes == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for (bytes, record) in records {
            let key = key(&bytes);
            let size = record.byte_len();
            if let Some(replaced) = inner.records.insert(key, record) {
                inner.bytes -= replaced.byte_len();
            } else {
                inner.order.push_back(key);
            }
            inner.bytes += size;
        }
        while inner.bytes > self.capacity_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.records.remove(&oldest) {
                inner.bytes -= evicted.byte_len();
            }
        }
    }

    /// The records of a batch read from the log, by offset: the ones ingest parsed when
    /// they are still here (looked up under one lock), the others parsed now. Records that
    /// do not parse are left out.
    pub fn parse_batch(&self, batch: Vec<(u64, Bytes)>) -> Vec<(u64, EventRecord)> {
        let kept: Vec<Option<EventRecord>> = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            batch
                .iter()
                .map(|(_, bytes)| inner.records.get(&key(bytes)).cloned())
                .collect()
        };
        batch
            .into_iter()
            .zip(kept)
            .filter_map(|((offset, bytes), kept)| match kept {
                Some(record) if record.as_bytes() == &bytes[..] => Some((offset, record)),
                _ => EventRecord::from_slice(&bytes)
                    .ok()
                    .map(|record| (offset, record)),
            })
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Bytes {
        Bytes::from(format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"Root"}},"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","eventID":"{id}","eventType":"AwsApiCall","recipientAccountId":"123456789012"}}"#
        ))
    }

    #[test]
    fn records_are_worth_keeping_only_for_a_reader_close_behind() {
        let cache = ParsedRecords::new(16 << 20);
        assert!(cache.reached_in_time(0));
        assert!(cache.reached_in_time(10_000));
        assert!(!cache.reached_in_time(20_000));
        assert!(!cache.reached_in_time(u64::MAX));
    }

    #[test]
    fn returns_the_kept_record_only_for_the_same_text() {
        let cache = ParsedRecords::new(1 << 20);
        let bytes = record("e1");
        let parsed = EventRecord::from_slice(&bytes).unwrap();
        cache.insert_all([(bytes.clone(), parsed.clone())]);
        // The same bytes elsewhere are parsed anew, with the same result; malformed ones
        // are left out.
        let copy = Bytes::from(bytes.to_vec());
        let found = cache.parse_batch(vec![
            (7, bytes.clone()),
            (8, copy),
            (9, Bytes::from_static(b"{not json")),
        ]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], (7, parsed));
        assert_eq!((found[1].0, found[1].1.event_id()), (8, "e1"));
    }

    #[test]
    fn evicts_the_oldest_past_the_capacity() {
        let one = record("e0").len();
        let cache = ParsedRecords::new(3 * one);
        let all: Vec<Bytes> = (0..5).map(|i| record(&format!("e{i}"))).collect();
        cache.insert_all(
            all.iter()
                .map(|b| (b.clone(), EventRecord::from_slice(b).unwrap())),
        );
        assert_eq!(cache.len(), 3);
        let batch = all
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, b)| (i as u64, b))
            .collect();
        assert_eq!(cache.parse_batch(batch).len(), 5);
    }
}
