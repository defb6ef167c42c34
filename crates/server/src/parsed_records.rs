//! Records parsed on ingest, kept for a moment so that event history, reading them back
//! from the event log's in-memory tail, does not parse them a second time.
//!
//! The log's tail hands readers clones of the very `Bytes` ingest appended, so a record is
//! found by the address and length of its bytes; its text is compared before it is used,
//! so a reused address can only cost a parse, never return another record.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use opentrail_model::{EventError, EventRecord};

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

    /// The record of `bytes`: the one ingest parsed when it is still here, else parsed now.
    pub fn parse(&self, bytes: &[u8]) -> Result<EventRecord, EventError> {
        let kept = {
            let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.records.get(&key(bytes)).cloned()
        };
        match kept {
            Some(record) if record.as_bytes() == bytes => Ok(record),
            _ => EventRecord::from_slice(bytes),
        }
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
    fn returns_the_kept_record_only_for_the_same_text() {
        let cache = ParsedRecords::new(1 << 20);
        let bytes = record("e1");
        let parsed = EventRecord::from_slice(&bytes).unwrap();
        cache.insert_all([(bytes.clone(), parsed.clone())]);
        assert_eq!(cache.parse(&bytes).unwrap(), parsed);
        // Same bytes elsewhere: parsed anew, same result.
        let copy = bytes.to_vec();
        assert_eq!(cache.parse(&copy).unwrap().event_id(), "e1");
        assert!(cache.parse(b"{not json").is_err());
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
        for bytes in &all {
            assert!(cache.parse(bytes).is_ok());
        }
    }
}
