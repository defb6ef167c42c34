//! Retention of the embedded log: a sealed segment is deleted once every consumer's cursor
//! is past it and it is older than the retention age; and the disk figures for `/metrics`.
//!
//! Consumers are the cursor files in `cursors/`: those this process registered and any an
//! earlier run left. An unreadable or never-committed cursor keeps everything — retention
//! never guesses what a consumer still needs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::error::{IoContext, Result};
use crate::event_log::EventLog;

/// At most this many consumers are reported (slowest first), so metric labels stay bounded.
pub const MAX_REPORTED_CONSUMERS: usize = 32;

/// One consumer's position as seen by a retention pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    pub consumer: String,
    /// Its committed cursor; `None` when the file holds none or cannot be read (retention
    /// then keeps every segment).
    pub cursor: Option<u64>,
    /// Registered by this process; `false` for a cursor file an earlier run left.
    pub registered: bool,
    /// Lagging: the oldest segment is older than the retention age plus the policy's
    /// `lagging_after` and kept only because of this consumer (or it and others).
    pub holding_back: bool,
}

impl ConsumerLag {
    /// Records between the consumer's cursor and `durable_end` (all of `start_offset..` when
    /// it has no cursor).
    pub fn lag_records(&self, start_offset: u64, durable_end: u64) -> u64 {
        durable_end.saturating_sub(self.cursor.unwrap_or(start_offset))
    }
}

/// When segments go, and when a consumer that keeps them counts as lagging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// A sealed segment goes once every consumer passed it and its file was last written
    /// at least this long ago.
    pub min_age: Duration,
    /// A consumer keeping a segment older than `min_age + lagging_after` is reported as
    /// holding retention back (consumers that keep up hold recent segments briefly; that is
    /// not worth a warning).
    pub lagging_after: Duration,
}

/// What one retention pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Bytes of every segment file after the pass.
    pub bytes_on_disk: u64,
    pub segments: usize,
    /// The oldest offset still stored.
    pub start_offset: u64,
    pub durable_end: u64,
    /// Slowest first, at most [`MAX_REPORTED_CONSUMERS`].
    pub consumers: Vec<ConsumerLag>,
    /// Bytes of sealed segments older than the retention age kept for a consumer.
    pub held_bytes: u64,
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
}

impl LogStats {
    /// The consumers keeping segments older than the retention age.
    pub fn holding_back(&self) -> impl Iterator<Item = &ConsumerLag> {
        self.consumers.iter().filter(|c| c.holding_back)
    }
}

/// The latest [`LogStats`] and running totals, shared between the task running retention
/// passes and `/metrics`.
#[derive(Debug, Default)]
pub struct RetentionStatus {
    latest: Mutex<Option<LogStats>>,
    deleted_segments: AtomicU64,
    deleted_bytes: AtomicU64,
}

impl RetentionStatus {
    pub fn record(&self, stats: LogStats) {
        self.deleted_segments
            .fetch_add(stats.deleted_segments as u64, Ordering::Relaxed);
        self.deleted_bytes
            .fetch_add(stats.deleted_bytes, Ordering::Relaxed);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(stats);
    }

    /// The last pass's figures; `None` before the first pass.
    pub fn latest(&self) -> Option<LogStats> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Segments and bytes deleted since the server started.
    pub fn deleted_totals(&self) -> (u64, u64) {
        (
            self.deleted_segments.load(Ordering::Relaxed),
            self.deleted_bytes.load(Ordering::Relaxed),
        )
    }
}

/// Size and last-modification time of a segment file; `None` if it is gone.
fn size_and_mtime(path: &Path) -> Result<Option<(u64, SystemTime)>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.len(), meta.modified().at(path)?))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).at(path),
    }
}

impl EventLog {
    /// Registers `consumer` so that retention keeps every record it has not passed, and
    /// returns the offset it resumes from: its committed cursor, or else `resume_from`
    /// (clamped to the stored records), committed now so that retention keeps it from the
    /// first pass on. Blocking (may fsync).
    pub fn register_consumer(&self, consumer: &str, resume_from: u64) -> Result<u64> {
        let _serialized = self.retention_lock();
        self.cursors().register(consumer)?;
        if let Some(cursor) = self.cursor(consumer)? {
            return Ok(cursor);
        }
        let start = resume_from.clamp(self.start_offset(), self.durable_end());
        self.commit_cursor(consumer, start)?;
        Ok(start)
    }

    /// One retention pass: deletes, oldest first, the sealed segments that every consumer's
    /// cursor has passed and whose file was last written at least `policy.min_age` before
    /// `now` (the active segment never), and reports the log's disk use and consumers.
    /// Blocking (lists the cursors, stats and deletes files).
    pub fn apply_retention(&self, policy: RetentionPolicy, now: SystemTime) -> Result<LogStats> {
        let min_age = policy.min_age;
        let _serialized = self.retention_lock();
        let start_offset = self.start_offset();
        let mut consumers: Vec<ConsumerLag> = self
            .cursors()
            .list()?
            .into_iter()
            .map(|stored| ConsumerLag {
                registered: self.cursors().is_registered(&stored.consumer),
                cursor: stored.offset.ok().flatten(),
                consumer: stored.consumer,
                holding_back: false,
            })
            .collect();
        let durable_end = self.durable_end();
        // No consumer at all: nothing needs the records, age alone decides.
        let floor = consumers
            .iter()
            .map(|c| c.cursor.unwrap_or(start_offset))
            .min()
            .unwrap_or(durable_end)
            .min(durable_end);

        let mut delete_below = start_offset;
        let mut deleted_bytes = 0;
        let mut held_bytes = 0;
        // End offset of the oldest segment kept although old enough, if it is old enough
        // that whoever has not passed it is lagging.
        let mut first_held: Option<Option<u64>> = None;
        let mut deleting = true;
        for sealed in self.shared().segments.sealed() {
            let Some(end) = sealed.end_offset else {
                continue;
            };
            let Some((size, modified)) = size_and_mtime(&sealed.segment.path)? else {
                continue;
            };
            let age = now.duration_since(modified).unwrap_or_default();
            let old_enough = age >= min_age;
            if !old_enough {
                // Deletion stays contiguous from the oldest segment.
                break;
            }
            if deleting && end <= floor {
                delete_below = end;
                deleted_bytes += size;
                continue;
            }
            deleting = false;
            first_held.get_or_insert((age >= min_age + policy.lagging_after).then_some(end));
            held_bytes += size;
        }
        let deleted_segments = if delete_below > start_offset {
            self.delete_segments_below(delete_below)?
        } else {
            0
        };
        if let Some(Some(held_end)) = first_held {
            for consumer in &mut consumers {
                consumer.holding_back = consumer.cursor.unwrap_or(start_offset) < held_end;
            }
        }
        consumers.sort_by_key(|c| (c.cursor.unwrap_or(start_offset), c.consumer.clone()));
        consumers.truncate(MAX_REPORTED_CONSUMERS);

        let paths = self.shared().segments.paths();
        let mut bytes_on_disk = 0;
        for path in &paths {
            bytes_on_disk += size_and_mtime(path)?.map_or(0, |(size, _)| size);
        }
        Ok(LogStats {
            bytes_on_disk,
            segments: paths.len(),
            start_offset: self.start_offset(),
            durable_end,
            consumers,
            held_bytes,
            deleted_segments,
            deleted_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::LogOptions;
    use bytes::Bytes;

    const HOUR: Duration = Duration::from_secs(3600);

    fn older_than(min_age: Duration) -> RetentionPolicy {
        RetentionPolicy {
            min_age,
            lagging_after: Duration::ZERO,
        }
    }

    fn record(i: u64) -> Bytes {
        Bytes::from(format!("event-{i:06}-{}", "p".repeat(200)))
    }

    /// A log of 4 KiB segments holding `records` records (each ~220 bytes: ~18 a segment).
    fn small_segments(dir: &Path, records: u64) -> EventLog {
        let log = EventLog::open(
            dir,
            LogOptions {
                segment_bytes: 4096,
                direct_io: false,
                ..LogOptions::default()
            },
        )
        .expect("open");
        for i in 0..records {
            log.append_blocking(vec![record(i)]).expect("append");
        }
        log
    }

    fn segment_files(log: &EventLog) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(log.dir().join("segments"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read_from(log: &EventLog, from: u64) -> Vec<u64> {
        let mut reader = log.reader(from);
        let mut offsets = Vec::new();
        loop {
            let batch = reader.poll_batch(1000).expect("read");
            if batch.is_empty() {
                return offsets;
            }
            offsets.extend(batch.iter().map(|(offset, _)| *offset));
        }
    }

    #[test]
    fn deletes_only_segments_every_consumer_passed_and_never_the_active_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = small_segments(dir.path(), 200);
        let segments = segment_files(&log).len();
        assert!(segments > 5, "{segments} segments");
        log.register_consumer("history", 0).expect("register");
        log.register_consumer("delivery", 0).expect("register");
        log.commit_cursor("history", 200).expect("commit");
        log.commit_cursor("delivery", 90).expect("commit");
        let later = SystemTime::now() + HOUR;

        let stats = log
            .apply_retention(older_than(HOUR / 2), later)
            .expect("retention");
        assert!(stats.deleted_segments > 0);
        assert!(log.start_offset() <= 90, "delivery's records are kept");
        assert_eq!(read_from(&log, 90).first(), Some(&90));
        let delivery = stats.consumers.first().expect("slowest first");
        assert_eq!(
            (delivery.consumer.as_str(), delivery.holding_back),
            ("delivery", true)
        );
        assert!(stats.held_bytes > 0);
        assert_eq!(stats.holding_back().count(), 1);

        // Kept but not for long enough to count as lagging.
        let patient = RetentionPolicy {
            min_age: HOUR / 2,
            lagging_after: HOUR,
        };
        let stats = log.apply_retention(patient, later).expect("retention");
        assert_eq!(
            (stats.deleted_segments, stats.holding_back().count()),
            (0, 0)
        );
        assert!(stats.held_bytes > 0);

        // Everyone caught up: every sealed segment goes, the active one stays.
        log.commit_cursor("delivery", 200).expect("commit");
        let stats = log
            .apply_retention(older_than(HOUR / 2), later)
            .expect("retention");
        assert_eq!(segment_files(&log).len(), 1);
        assert_eq!(stats.segments, 1);
        assert_eq!(stats.holding_back().count(), 0);
        assert_eq!(stats.held_bytes, 0);
        assert_eq!(read_from(&log, log.start_offset()).last(), Some(&199));
    }

    #[test]
    fn young_segments_are_kept_even_when_every_consumer_passed_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = small_segments(dir.path(), 100);
        log.register_consumer("history", 100).expect("register");
        let before = segment_files(&log);
        let stats = log
            .apply_retention(older_than(HOUR), SystemTime::now())
            .expect("retention");
        assert_eq!(stats.deleted_segments, 0);
        assert_eq!(segment_files(&log), before);
        assert_eq!(
            stats.holding_back().count(),
            0,
            "nobody holds young segments"
        );
        assert_eq!(stats.start_offset, 0);
        assert_eq!(
            stats.bytes_on_disk,
            before
                .iter()
                .map(
                    |name| std::fs::metadata(log.dir().join("segments").join(name))
                        .expect("stat")
                        .len()
                )
                .sum::<u64>()
        );
    }

    #[test]
    fn a_registered_consumer_without_a_cursor_keeps_from_where_it_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = small_segments(dir.path(), 100);
        assert_eq!(log.register_consumer("history", 40).expect("register"), 40);
        // A second registration resumes from the committed cursor, not the new hint.
        assert_eq!(log.register_consumer("history", 99).expect("register"), 40);
        log.apply_retention(older_than(Duration::ZERO), SystemTime::now() + HOUR)
            .expect("retention");
        assert!(log.start_offset() <= 40 && log.start_offset() > 0);
        assert_eq!(read_from(&log, 40).len(), 60);
    }

    #[test]
    fn an_unreadable_cursor_or_one_left_by_an_earlier_run_keeps_everything_it_needs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = small_segments(dir.path(), 100);
        log.register_consumer("history", 100).expect("register");
        log.commit_cursor("old-consumer", 40).expect("commit");
        // A cursor file created but never committed (a crash right after creating it).
        std::fs::write(log.dir().join("cursors/never.cursor"), b"").expect("write");
        let later = SystemTime::now() + HOUR;
        let stats = log
            .apply_retention(older_than(Duration::ZERO), later)
            .expect("retention");
        assert_eq!(stats.deleted_segments, 0);
        let never = stats
            .consumers
            .iter()
            .find(|c| c.consumer == "never")
            .expect("reported");
        assert!(never.holding_back && never.cursor.is_none() && !never.registered);
        std::fs::remove_file(log.dir().join("cursors/never.cursor")).expect("remove");
        let stats = log
            .apply_retention(older_than(Duration::ZERO), later)
            .expect("retention");
        assert!(stats.deleted_segments > 0);
        assert!(log.start_offset() <= 40);
        let old = &stats.consumers[0];
        assert_eq!(
            (old.consumer.as_str(), old.registered),
            ("old-consumer", false)
        );
    }

    #[test]
    fn a_crash_part_way_through_deletion_leaves_a_log_that_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = small_segments(dir.path(), 200);
        log.register_consumer("history", 150).expect("register");
        let names = segment_files(&log);
        drop(log);
        // Retention deletes oldest first, each unlink made durable before the next: a crash
        // part way leaves the newer segments, contiguous. Simulate it by deleting two.
        for name in &names[..2] {
            std::fs::remove_file(dir.path().join("segments").join(name)).expect("remove");
        }
        let log = EventLog::open(dir.path(), LogOptions::default()).expect("reopen");
        let start = log.start_offset();
        assert!(start > 0 && start <= 150);
        assert_eq!(read_from(&log, start).last(), Some(&199));
        // The next pass finishes the job from there.
        let stats = log
            .apply_retention(older_than(Duration::ZERO), SystemTime::now() + HOUR)
            .expect("retention");
        assert!(stats.deleted_segments > 0);
        assert!(log.start_offset() <= 150);
        assert_eq!(read_from(&log, 150).len(), 50);
        // And appends go on after the retained tail.
        assert_eq!(
            log.append_blocking(vec![record(200)])
                .expect("append")
                .first_offset,
            200
        );
    }
}
