//! The event-log seam: what ingest and the consumers need from a log, so that a NATS
//! JetStream or Kafka backend can stand beside the embedded [`EventLog`].

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{LogError, Result};
use crate::event_log::{AppendAck, EventLog};
use crate::reader::{only_bytes, LogReader};
use crate::record::LogRecord;
use crate::shared::LogHealth;

/// A totally ordered, durable log of opaque records with named consumer cursors.
///
/// Contract every backend keeps: `append` resolves only once its records are durable; a
/// batch gets consecutive offsets; offsets only grow; readers see only durable records, in
/// offset order; a committed cursor survives a crash; consumers are at-least-once. A record
/// appended with its parsed event may be read back with it ([`LogRecord::event`]) or as
/// bytes only; never with another record's event.
#[async_trait]
pub trait DurableLog: Send + Sync + 'static {
    /// Appends one batch; resolves with its offsets once durable.
    async fn append_records(&self, records: Vec<LogRecord>) -> Result<AppendAck>;

    /// [`Self::append_records`] of records known only as bytes.
    async fn append(&self, records: Vec<Bytes>) -> Result<AppendAck> {
        self.append_records(records.into_iter().map(LogRecord::from_bytes).collect())
            .await
    }

    /// Whether appends can succeed now, and the last failure, for `/health` and metrics.
    fn health(&self) -> LogHealth;

    /// About how many bytes of the newest records readers get with the events their
    /// producers parsed (0: never, e.g. a remote log); a producer further ahead of its
    /// readers need not hand parsed events over.
    fn parsed_tail_bytes(&self) -> usize {
        0
    }

    /// About the memory the backend holds for readers now (the in-memory tail; 0 if none).
    fn tail_held_bytes(&self) -> usize {
        0
    }

    /// The offset after the last durable record.
    fn durable_end(&self) -> u64;

    /// The first offset still stored.
    fn start_offset(&self) -> u64;

    /// A reader of durable records from `from` on.
    fn reader(&self, from: u64) -> Box<dyn DurableLogReader>;

    /// The offset `consumer` resumes from, or `None` if it never committed one.
    async fn cursor(&self, consumer: &str) -> Result<Option<u64>>;

    /// Durably records that `consumer` processed every record below `offset`.
    async fn commit_cursor(&self, consumer: &str, offset: u64) -> Result<()>;

    /// Drops stored records below `offset` where the backend can (whole segments here);
    /// returns the new start offset.
    async fn truncate_before(&self, offset: u64) -> Result<u64>;
}

/// Reads records of a [`DurableLog`] in offset order.
#[async_trait]
pub trait DurableLogReader: Send {
    /// Up to `max` records, waiting until at least one is durable. Cancel-safe: a call
    /// dropped before it returns does not advance the reader (readers wait on it in
    /// `select!` beside timers).
    async fn next_records(&mut self, max: usize) -> Result<Vec<(u64, LogRecord)>>;

    /// Up to `max` records that are durable now; empty when caught up.
    fn poll_records(&mut self, max: usize) -> Result<Vec<(u64, LogRecord)>>;

    /// [`Self::next_records`] as bytes only.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<(u64, Bytes)>> {
        Ok(only_bytes(self.next_records(max).await?))
    }

    /// [`Self::poll_records`] as bytes only.
    fn poll_batch(&mut self, max: usize) -> Result<Vec<(u64, Bytes)>> {
        Ok(only_bytes(self.poll_records(max)?))
    }

    /// The offset of the next record to be returned.
    fn position(&self) -> u64;
}

#[async_trait]
impl DurableLog for EventLog {
    async fn append_records(&self, records: Vec<LogRecord>) -> Result<AppendAck> {
        EventLog::append_records(self, records).await
    }

    async fn append(&self, records: Vec<Bytes>) -> Result<AppendAck> {
        EventLog::append(self, records).await
    }

    fn health(&self) -> LogHealth {
        EventLog::health(self)
    }

    fn parsed_tail_bytes(&self) -> usize {
        self.tail_unread_bytes()
    }

    fn tail_held_bytes(&self) -> usize {
        EventLog::tail_held_bytes(self)
    }

    fn durable_end(&self) -> u64 {
        EventLog::durable_end(self)
    }

    fn start_offset(&self) -> u64 {
        EventLog::start_offset(self)
    }

    fn reader(&self, from: u64) -> Box<dyn DurableLogReader> {
        Box::new(EventLog::reader(self, from))
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<u64>> {
        let log = self.clone();
        let consumer = consumer.to_string();
        run_blocking(move || log.cursor(&consumer)).await
    }

    async fn commit_cursor(&self, consumer: &str, offset: u64) -> Result<()> {
        let log = self.clone();
        let consumer = consumer.to_string();
        run_blocking(move || log.commit_cursor(&consumer, offset)).await
    }

    async fn truncate_before(&self, offset: u64) -> Result<u64> {
        let log = self.clone();
        run_blocking(move || log.truncate_before(offset)).await
    }
}

/// Runs file I/O with fsyncs off the async workers.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| LogError::Closed)?
}

#[async_trait]
impl DurableLogReader for LogReader {
    async fn next_records(&mut self, max: usize) -> Result<Vec<(u64, LogRecord)>> {
        LogReader::next_records(self, max).await
    }

    fn poll_records(&mut self, max: usize) -> Result<Vec<(u64, LogRecord)>> {
        LogReader::poll_records(self, max)
    }

    fn position(&self) -> u64 {
        LogReader::position(self)
    }
}
