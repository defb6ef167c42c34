//! Offline repair of a log that `EventLog::open` refuses: damage in the last segment that
//! valid frames follow, or consumer cursors beyond the log's end. Every valid frame is kept
//! where it is in offset order; each damaged span is replaced by empty frames, one per 8
//! bytes of damage (the most records the span can have held, since a frame is at least 8
//! bytes), so that no record after it moves to an offset below its old one. If a consumer
//! cursor is still beyond the end, empty frames extend the log up to it. Readers skip empty
//! frames, so the offsets they fill are never handed to a new record: nothing a consumer
//! has passed is reused. The damaged segment is first copied to `quarantine/`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cursor::FileCursorStore;
use crate::cursor_store::CursorStore;
use crate::error::{IoContext, LogError, Result};
use crate::event_log::{CURSORS_DIR, SEGMENTS_DIR};
use crate::frame::{decode_frame, encode_frame, find_frame, FRAME_HEADER_LEN};
use crate::segment::{
    check_header, encode_header, list_segments, segment_path, sync_dir, HeaderCheck,
    SEGMENT_HEADER_LEN,
};

const QUARANTINE_DIR: &str = "quarantine";

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The segment that was rewritten, if any.
    pub segment: Option<PathBuf>,
    /// Where its original bytes were copied first (only when it held damage).
    pub quarantined: Option<PathBuf>,
    /// Damaged byte ranges `[start, end)` of the original segment.
    pub damaged_spans: Vec<(u64, u64)>,
    /// Empty frames written in place of lost records or up to a consumer's cursor.
    pub placeholders: u64,
    /// The log's end offset after the repair.
    pub durable_end: u64,
}

/// Repairs the log in `dir` whose cursors are files (opened with [`crate::EventLog::open`])
/// so that it opens; a healthy log is left as it is. The log is also extended with empty
/// frames up to `min_end`, for consumers that keep their position outside the log's
/// cursors. Run it only while no process has the log open.
pub fn repair(dir: impl AsRef<Path>, min_end: u64) -> Result<RepairReport> {
    let dir = dir.as_ref();
    let files = FileCursorStore::new(dir.join(CURSORS_DIR));
    repair_up_to(dir, furthest_cursor(&files)?.max(min_end))
}

/// [`repair`] of a log opened with [`crate::EventLog::open_with_cursors`]: the log is
/// extended up to the furthest cursor in `cursors`, or in cursor files of an earlier
/// version not moved into it yet.
pub fn repair_with_cursors(
    dir: impl AsRef<Path>,
    min_end: u64,
    cursors: &dyn CursorStore,
) -> Result<RepairReport> {
    let dir = dir.as_ref();
    let files = FileCursorStore::new(dir.join(CURSORS_DIR));
    let furthest = furthest_cursor(cursors)?.max(furthest_cursor(&files)?);
    repair_up_to(dir, furthest.max(min_end))
}

/// The furthest readable committed cursor (0 when there is none).
fn furthest_cursor(cursors: &dyn CursorStore) -> Result<u64> {
    Ok(cursors
        .load_all()?
        .into_iter()
        .filter_map(|stored| stored.offset.ok().flatten())
        .max()
        .unwrap_or(0))
}

/// Rebuilds the last segment with placeholders for damage, extended up to `furthest`.
fn repair_up_to(dir: &Path, furthest: u64) -> Result<RepairReport> {
    let segments_dir = dir.join(SEGMENTS_DIR);
    let mut report = RepairReport::default();
    // No segment at all (a deleted log) is an empty segment 0 that may need extending.
    let firsts = match segments_dir.is_dir() {
        true => list_segments(&segments_dir)?,
        false => Vec::new(),
    };
    let last_first = firsts.last().copied().unwrap_or(0);
    let path = segment_path(&segments_dir, last_first);
    let original = match check_header(&path, last_first) {
        Ok(HeaderCheck::Valid) => std::fs::read(&path).at(&path)?,
        // An interrupted creation: its header was never durable, so it held no record.
        Ok(HeaderCheck::Incomplete) => encode_header(last_first).to_vec(),
        Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            encode_header(last_first).to_vec()
        }
        Err(error) => return Err(error),
    };
    let mut rebuilt = original[..SEGMENT_HEADER_LEN as usize].to_vec();
    let mut records = 0u64;
    let mut position = SEGMENT_HEADER_LEN as usize;
    while position < original.len() {
        if let Ok((_, used)) = decode_frame(&original[position..]) {
            rebuilt.extend_from_slice(&original[position..position + used]);
            records += 1;
            position += used;
            continue;
        }
        let next = find_frame(&original, position + 1).unwrap_or(original.len());
        let lost = (next - position).div_ceil(FRAME_HEADER_LEN) as u64;
        for _ in 0..lost {
            encode_frame(b"", &mut rebuilt);
        }
        records += lost;
        report.placeholders += lost;
        report.damaged_spans.push((position as u64, next as u64));
        position = next;
    }
    let end = last_first + records;
    if furthest > end {
        for _ in end..furthest {
            encode_frame(b"", &mut rebuilt);
        }
        report.placeholders += furthest - end;
        records += furthest - end;
    }
    report.durable_end = last_first + records;
    if rebuilt == original {
        return Ok(report);
    }
    if !report.damaged_spans.is_empty() {
        report.quarantined = Some(quarantine(dir, &path, &original)?);
    }
    std::fs::create_dir_all(&segments_dir).at(&segments_dir)?;
    let staged = path.with_extension("repair");
    write_durably(&staged, &rebuilt)?;
    std::fs::rename(&staged, &path).at(&path)?;
    sync_dir(&segments_dir)?;
    tracing::warn!(
        segment = ?path,
        damaged = ?report.damaged_spans,
        placeholders = report.placeholders,
        quarantined = ?report.quarantined,
        "event log repaired"
    );
    report.segment = Some(path);
    Ok(report)
}

/// Copies the damaged segment's bytes to `DIR/quarantine/<name>.<unix seconds>`.
fn quarantine(dir: &Path, path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let quarantine_dir = dir.join(QUARANTINE_DIR);
    std::fs::create_dir_all(&quarantine_dir).at(&quarantine_dir)?;
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let name = path.file_name().ok_or_else(|| LogError::Corrupt {
        path: path.to_path_buf(),
        position: 0,
        reason: "segment path has no file name".into(),
    })?;
    let target = quarantine_dir.join(format!("{}.{seconds}", name.to_string_lossy()));
    write_durably(&target, bytes)?;
    sync_dir(&quarantine_dir)?;
    sync_dir(dir)?;
    Ok(target)
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).at(path)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .at(path)
}

/// Deletes the cursor of `consumer` from `cursors`, and its file if an earlier version left
/// one in `dir/cursors/`, so that a consumer no longer run stops holding segments back;
/// returns whether there was one. Run it only while no process has the log open.
pub fn remove_cursor(
    dir: impl AsRef<Path>,
    consumer: &str,
    cursors: &dyn CursorStore,
) -> Result<bool> {
    crate::cursor::validate_consumer_name(consumer)?;
    let files = FileCursorStore::new(dir.as_ref().join(CURSORS_DIR));
    let in_store = cursors.remove(consumer)?;
    let file = files.remove(consumer)?;
    Ok(in_store || file)
}
