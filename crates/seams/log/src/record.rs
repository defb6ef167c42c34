//! One record as producers append it and readers receive it: its exact bytes and, when the
//! producer parsed it as a CloudTrail event and the record is still in the in-memory tail,
//! that parse, so that consumers close behind the writer do not parse it again.

use bytes::Bytes;
use opentrail_model::{EventError, EventRecord};

/// A log record: opaque bytes, with the event they hold when the producer parsed it.
///
/// A record made from an event ([`LogRecord::from_event`]) takes its bytes from the event's
/// own text (shared, not copied), so the parse always describes exactly these bytes.
#[derive(Debug, Clone)]
pub struct LogRecord {
    bytes: Bytes,
    event: Option<EventRecord>,
}

impl LogRecord {
    /// A record the log knows only as bytes.
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self { bytes, event: None }
    }

    /// A record holding `event`, whose exact text becomes the record's bytes.
    pub fn from_event(event: EventRecord) -> Self {
        Self {
            bytes: event.text_bytes(),
            event: Some(event),
        }
    }

    /// The record's exact bytes, as stored.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The producer's parse, when it travelled with the record (embedded log, record still
    /// in the in-memory tail); `None` for records read from files or appended as bytes.
    pub fn event(&self) -> Option<&EventRecord> {
        self.event.as_ref()
    }

    /// The record as an event: the producer's parse when present, else parsed now.
    pub fn to_event(&self) -> Result<EventRecord, EventError> {
        match &self.event {
            Some(event) => Ok(event.clone()),
            None => EventRecord::from_slice(&self.bytes),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// About the memory the record holds: its bytes and, when it carries its parse, the
    /// parse's index.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.len() + self.event.as_ref().map_or(0, EventRecord::index_bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<Bytes> for LogRecord {
    fn from(bytes: Bytes) -> Self {
        Self::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"Root"},"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","eventID":"e1","eventType":"AwsApiCall","recipientAccountId":"123456789012"}"#;

    #[test]
    fn an_event_record_shares_its_text_as_the_bytes() {
        let event = EventRecord::from_json(RECORD).unwrap();
        let record = LogRecord::from_event(event.clone());
        assert_eq!(&record.bytes()[..], RECORD.as_bytes());
        assert_eq!(
            record.bytes().as_ptr(),
            event.as_bytes().as_ptr(),
            "not copied"
        );
        assert_eq!(record.to_event().unwrap(), event);
    }

    #[test]
    fn a_bytes_record_is_parsed_when_asked() {
        let record = LogRecord::from_bytes(Bytes::from_static(RECORD.as_bytes()));
        assert!(record.event().is_none());
        assert_eq!(record.to_event().unwrap().event_id(), "e1");
        let garbage = LogRecord::from_bytes(Bytes::from_static(b"{not json"));
        assert!(garbage.to_event().is_err());
    }
}
