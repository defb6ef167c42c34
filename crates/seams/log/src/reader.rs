//! Sequential reading of durable records from any offset, across segment boundaries.
//! A reader never looks past the durable end, so it never sees a record before its fsync.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use crate::direct::{open_for_direct_reads, read_direct, read_full_at};
use crate::error::{IoContext, LogError, Result};
use crate::frame::{frame_len, FrameError, FrameHeader, FRAME_HEADER_LEN};
use crate::record::LogRecord;
use crate::shared::Shared;
use crate::tail_cache::ReaderPosition;

const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// Reads records in offset order starting at a given offset. Created by
/// [`crate::EventLog::reader`].
#[derive(Debug)]
pub struct LogReader {
    shared: Arc<Shared>,
    durable_rx: watch::Receiver<u64>,
    position: ReadPosition,
    /// The next offset as the tail cache sees it: records no reader still needs go first.
    registered: ReaderPosition,
}

/// Where a reader is: the next offset and, when reading from disk, the open segment.
#[derive(Debug)]
struct ReadPosition {
    next_offset: u64,
    open: Option<OpenSegment>,
}

/// The segment file the reader is positioned in.
#[derive(Debug)]
struct OpenSegment {
    first_offset: u64,
    /// First offset of the next segment; `None` while this segment was the active one.
    end_offset: Option<u64>,
    path: PathBuf,
    file: File,
    /// The same file opened for direct reads, while they work.
    direct: Option<File>,
    /// Bytes read from `position` on, not yet returned.
    read_ahead: Bytes,
    /// Offset and file position of the next frame.
    next_offset: u64,
    position: u64,
}

impl LogReader {
    pub(crate) fn new(shared: Arc<Shared>, durable_rx: watch::Receiver<u64>, from: u64) -> Self {
        let registered = shared.tail_cache.register_reader(from);
        Self {
            shared,
            durable_rx,
            registered,
            position: ReadPosition {
                next_offset: from,
                open: None,
            },
        }
    }

    /// Offset of the next record this reader returns; commit it as a consumer's cursor once
    /// everything before it is processed.
    pub fn position(&self) -> u64 {
        self.position.next_offset
    }

    /// Up to `max` durable records from the current position, without waiting; empty when the
    /// reader has caught up. Reads segment files on the calling thread when the records are
    /// no longer in the in-memory tail.
    pub fn poll_batch(&mut self, max: usize) -> Result<Vec<(u64, Bytes)>> {
        Ok(only_bytes(self.poll_records(max)?))
    }

    /// [`Self::poll_batch`] with each record's parse where the producer gave one.
    pub fn poll_records(&mut self, max: usize) -> Result<Vec<(u64, LogRecord)>> {
        let end = self.shared.durable_end();
        let batch = self.position.read_until(&self.shared, end, max);
        self.advanced(&batch);
        batch
    }

    /// Tells the tail cache where the reader is after a read that returned records.
    fn advanced(&self, batch: &Result<Vec<(u64, LogRecord)>>) {
        if batch.as_ref().is_ok_and(|records| !records.is_empty()) {
            self.registered.set(self.position.next_offset);
            self.shared.tail_cache.release_read();
        }
    }

    /// Up to `max` durable records from the current position, waiting until at least one is
    /// durable. Records still in the in-memory tail are returned directly; reading segment
    /// files runs on tokio's blocking pool. Fails with [`LogError::Closed`] once the log is
    /// closed and fully read. Cancel-safe: a dropped call does not advance the reader.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<(u64, Bytes)>> {
        Ok(only_bytes(self.next_records(max).await?))
    }

    /// [`Self::next_batch`] with each record's parse where the producer gave one (records
    /// still in the in-memory tail that were appended as events).
    pub async fn next_records(&mut self, max: usize) -> Result<Vec<(u64, LogRecord)>> {
        loop {
            let end = *self.durable_rx.borrow_and_update();
            let batch = self.read_off_runtime(end, max).await;
            self.advanced(&batch);
            let batch = batch?;
            if !batch.is_empty() || max == 0 {
                return Ok(batch);
            }
            if self.durable_rx.changed().await.is_err() {
                let end = self.shared.durable_end();
                let batch = self.read_off_runtime(end, max).await;
                self.advanced(&batch);
                let batch = batch?;
                if batch.is_empty() {
                    return Err(LogError::Closed);
                }
                return Ok(batch);
            }
        }
    }

    async fn read_off_runtime(&mut self, end: u64, max: usize) -> Result<Vec<(u64, LogRecord)>> {
        let next = self.position.next_offset;
        let in_memory = self
            .shared
            .tail_cache
            .first_offset()
            .is_some_and(|first| first <= next);
        if in_memory || next >= end {
            return self.position.read_until(&self.shared, end, max);
        }
        // Only `open` moves to the blocking task; if this future is dropped meanwhile, the
        // reader keeps its offset and simply reopens the segment next time.
        let mut position = ReadPosition {
            next_offset: next,
            open: self.position.open.take(),
        };
        let shared = Arc::clone(&self.shared);
        let (position, batch) = tokio::task::spawn_blocking(move || {
            let batch = position.read_until(&shared, end, max);
            (position, batch)
        })
        .await
        .map_err(|error| match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => LogError::Closed,
        })?;
        self.position = position;
        batch
    }
}

/// Drops the parses of records for readers that want bytes only.
pub(crate) fn only_bytes(records: Vec<(u64, LogRecord)>) -> Vec<(u64, Bytes)> {
    records
        .into_iter()
        .map(|(offset, record)| (offset, record.into_bytes()))
        .collect()
}

impl ReadPosition {
    fn read_until(
        &mut self,
        shared: &Shared,
        end: u64,
        max: usize,
    ) -> Result<Vec<(u64, LogRecord)>> {
        if self.next_offset > end {
            return Err(LogError::OffsetBeyondEnd {
                requested: self.next_offset,
                durable_end: end,
            });
        }
        let start = shared.segments.start_offset();
        if self.next_offset < start {
            // Checked here, not only when opening a segment: the tail cache may still hold
            // records that retention has removed from disk.
            return Err(LogError::OffsetTruncated {
                requested: self.next_offset,
                start,
            });
        }
        let wanted = usize::try_from(end - self.next_offset)
            .unwrap_or(usize::MAX)
            .min(max);
        let mut batch = Vec::with_capacity(wanted);
        let batch_start = self.next_offset;
        while batch.len() < max && self.next_offset < end {
            let cached = shared
                .tail_cache
                .read(self.next_offset, end, max, &mut batch);
            if cached > 0 {
                self.next_offset += cached;
                self.open = None;
                continue;
            }
            // Read from disk up to where the cache takes over.
            let disk_end = match shared.tail_cache.first_offset() {
                Some(cached_from) if cached_from > self.next_offset => cached_from.min(end),
                _ => end,
            };
            let read = self.segment_for_next_offset(shared).and_then(|mut open| {
                let limit = open
                    .end_offset
                    .map_or(disk_end, |segment_end| segment_end.min(disk_end));
                let read = open.read_records(limit, max, &mut batch);
                self.next_offset = open.next_offset;
                self.open = Some(open);
                read
            });
            if let Err(error) = read {
                // Nothing of a failed batch is returned, so the next call starts over.
                self.next_offset = batch_start;
                self.open = None;
                return Err(error);
            }
        }
        Ok(batch)
    }

    /// The open segment if it holds `next_offset`, else the segment that does, positioned.
    fn segment_for_next_offset(&mut self, shared: &Shared) -> Result<OpenSegment> {
        let next = self.next_offset;
        if let Some(mut open) = self.open.take() {
            debug_assert_eq!(open.next_offset, next);
            match open.end_offset {
                Some(end) if next < end => return Ok(open),
                Some(_) => {}
                None => {
                    // The segment was active when opened; learn whether it has been sealed.
                    let located = shared.segments.locate(next);
                    if let Some(located) =
                        located.filter(|l| l.segment.first_offset == open.first_offset)
                    {
                        open.end_offset = located.end_offset;
                        // Bytes read ahead past the durable end then may be incomplete.
                        open.discard_read_ahead();
                        return Ok(open);
                    }
                }
            }
        }
        open_segment_at(shared, next).map_err(|error| {
            let start = shared.segments.start_offset();
            if next < start {
                LogError::OffsetTruncated {
                    requested: next,
                    start,
                }
            } else {
                error
            }
        })
    }
}

fn open_segment_at(shared: &Shared, offset: u64) -> Result<OpenSegment> {
    let Some(located) = shared.segments.locate(offset) else {
        return Err(LogError::OffsetTruncated {
            requested: offset,
            start: shared.segments.start_offset(),
        });
    };
    let segment = &located.segment;
    let (indexed_offset, position) = segment.index_floor(offset, located.end_offset)?;
    let file = File::open(&segment.path).at(&segment.path)?;
    let direct = match shared.direct_io {
        true => open_for_direct_reads(&segment.path).at(&segment.path)?,
        false => None,
    };
    let mut open = OpenSegment {
        first_offset: segment.first_offset,
        end_offset: located.end_offset,
        path: segment.path.clone(),
        file,
        direct,
        read_ahead: Bytes::new(),
        next_offset: indexed_offset,
        position,
    };
    while open.next_offset < offset {
        open.read_record()?;
    }
    Ok(open)
}

impl OpenSegment {
    /// Appends records below `limit` to `batch` until it holds `max`.
    fn read_records(
        &mut self,
        limit: u64,
        max: usize,
        batch: &mut Vec<(u64, LogRecord)>,
    ) -> Result<()> {
        while batch.len() < max && self.next_offset < limit {
            let offset = self.next_offset;
            let payload = self.read_record()?;
            // An empty frame holds the place of a record lost to damage (`repair`).
            if !payload.is_empty() {
                batch.push((offset, LogRecord::from_bytes(payload)));
            }
        }
        Ok(())
    }

    /// Reads the frame at the current position; every frame a reader reaches is durable, so
    /// any defect is corruption. The payload is a slice of the chunk read, not a copy.
    fn read_record(&mut self) -> Result<Bytes> {
        self.fill(FRAME_HEADER_LEN)?;
        let header = self.read_ahead[..FRAME_HEADER_LEN]
            .try_into()
            .map_err(|_| FrameError::Truncated)
            .and_then(FrameHeader::parse)
            .map_err(|error| self.corrupt(error))?;
        let frame_len = frame_len(header.payload_len as usize);
        self.fill(frame_len)?;
        let frame = self.read_ahead.split_to(frame_len);
        let payload = frame.slice(FRAME_HEADER_LEN..);
        header
            .verify(&payload)
            .map_err(|error| self.corrupt(error))?;
        self.next_offset += 1;
        self.position += frame_len as u64;
        Ok(payload)
    }

    /// Makes `read_ahead` hold at least `needed` bytes, reading a chunk of the file at
    /// `position + read_ahead.len()`.
    fn fill(&mut self, needed: usize) -> Result<()> {
        if self.read_ahead.len() >= needed {
            return Ok(());
        }
        let want = needed.max(READ_CHUNK_BYTES);
        let from = self.position + self.read_ahead.len() as u64;
        let more = want - self.read_ahead.len();
        let direct = match &self.direct {
            Some(file) => read_direct(file, &self.read_ahead, from, more).at(&self.path)?,
            None => None,
        };
        self.read_ahead = match direct {
            Some(chunk) => chunk,
            None => {
                self.direct = None;
                let mut chunk = Vec::with_capacity(want);
                chunk.extend_from_slice(&self.read_ahead);
                chunk.resize(want, 0);
                let read =
                    read_full_at(&self.file, &mut chunk[want - more..], from).at(&self.path)?;
                chunk.truncate(want - more + read);
                Bytes::from(chunk)
            }
        };
        if self.read_ahead.len() < needed {
            return Err(self.corrupt(FrameError::Truncated));
        }
        Ok(())
    }

    /// Forgets bytes read past the current frame.
    fn discard_read_ahead(&mut self) {
        self.read_ahead = Bytes::new();
    }

    fn corrupt(&self, error: FrameError) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            position: self.position,
            reason: format!(
                "{error} at offset {}, below the durable end",
                self.next_offset
            ),
        }
    }
}
