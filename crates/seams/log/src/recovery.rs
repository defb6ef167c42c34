//! Open-time recovery: find the segments, check their headers, and cut the torn tail off the
//! last segment (the only one a crash can leave half-written, because a segment is fsynced
//! before the next one is created).
//!
//! A torn tail is damage with nothing valid after it: the end of a write that never
//! finished. Damage followed by a valid frame is something else — durable records changed
//! under the log — and recovery refuses it without touching the file (`repair` fixes it).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{IoContext, LogError, Result};
use crate::frame::find_frame;
use crate::segment::{
    check_header, initialize_segment, list_segments, scan_segment, segment_path, HeaderCheck,
    SparseIndex, SEGMENT_HEADER_LEN,
};
use crate::segment_set::{Segment, SegmentSet};
use crate::writer::ActiveSegment;

pub(crate) struct Recovered {
    pub(crate) segments: SegmentSet,
    pub(crate) active: ActiveSegment,
    pub(crate) durable_end: u64,
}

/// Recovers the segments in `segments_dir`, creating the first one if there is none.
/// Sealed segments are only checked for a valid header here; their frames are verified
/// when first read (or by `EventLog::verify_sealed_segments`), which keeps open fast.
/// `check_end` sees the recovered durable end before any file is changed; an error from it
/// (or damage that is not a torn tail) leaves every file as it was.
pub(crate) fn recover(
    segments_dir: &Path,
    check_end: &dyn Fn(u64) -> Result<()>,
) -> Result<Recovered> {
    let firsts = list_segments(segments_dir)?;
    let segments = SegmentSet::default();
    let Some((&last_first, sealed_firsts)) = firsts.split_last() else {
        check_end(0)?;
        let active = fresh_active_segment(segments_dir, 0)?;
        segments.push(Arc::clone(&active.segment));
        return Ok(Recovered {
            segments,
            active,
            durable_end: 0,
        });
    };
    for &first in sealed_firsts {
        let path = segment_path(segments_dir, first);
        if check_header(&path, first)? == HeaderCheck::Incomplete {
            return Err(LogError::Corrupt {
                path,
                position: 0,
                reason: "sealed segment is shorter than its header".into(),
            });
        }
        segments.push(Arc::new(Segment::new(first, path, None)));
    }
    let (active, record_count) = recover_last_segment(segments_dir, last_first, check_end)?;
    segments.push(Arc::clone(&active.segment));
    Ok(Recovered {
        segments,
        active,
        durable_end: last_first + record_count,
    })
}

fn fresh_active_segment(segments_dir: &Path, first_offset: u64) -> Result<ActiveSegment> {
    let file = initialize_segment(segments_dir, first_offset)?;
    Ok(ActiveSegment {
        segment: Arc::new(Segment::new(
            first_offset,
            segment_path(segments_dir, first_offset),
            Some(SparseIndex::new(first_offset)),
        )),
        file,
        len: SEGMENT_HEADER_LEN,
    })
}

/// Keeps the longest prefix of valid frames of the last segment and opens it for appending.
fn recover_last_segment(
    segments_dir: &Path,
    first_offset: u64,
    check_end: &dyn Fn(u64) -> Result<()>,
) -> Result<(ActiveSegment, u64)> {
    let path = segment_path(segments_dir, first_offset);
    if check_header(&path, first_offset)? == HeaderCheck::Incomplete {
        // Its header was never fsynced, so no record in it was ever acknowledged.
        check_end(first_offset)?;
        tracing::warn!(segment = ?path, "completing a segment whose creation was interrupted");
        return Ok((fresh_active_segment(segments_dir, first_offset)?, 0));
    }
    let scan = scan_segment(&path, first_offset)?;
    if let Some(error) = scan.stopped_by {
        refuse_damage_before_valid_frames(&path, scan.valid_len, scan.file_len, error)?;
    }
    check_end(first_offset + scan.record_count)?;
    let mut file = OpenOptions::new().write(true).open(&path).at(&path)?;
    if scan.valid_len < scan.file_len {
        tracing::warn!(
            segment = ?path,
            valid_len = scan.valid_len,
            file_len = scan.file_len,
            reason = ?scan.stopped_by,
            records = scan.record_count,
            "truncating torn tail of the log"
        );
        file.set_len(scan.valid_len).at(&path)?;
    }
    // After a process crash the surviving frames may be only in the page cache; make them
    // durable before any reader can see them, or a later power loss could take back records
    // that consumers already processed.
    file.sync_all().at(&path)?;
    file.seek(SeekFrom::Start(scan.valid_len)).at(&path)?;
    let active = ActiveSegment {
        segment: Arc::new(Segment::new(first_offset, path, Some(scan.index))),
        file,
        len: scan.valid_len,
    };
    Ok((active, scan.record_count))
}

/// Fails when a valid frame follows the first invalid one at `damage`: that is not a torn
/// tail (an unfinished write leaves nothing valid behind it) but damage to records already
/// written, which cutting would silently lose.
fn refuse_damage_before_valid_frames(
    path: &Path,
    damage: u64,
    file_len: u64,
    error: crate::frame::FrameError,
) -> Result<()> {
    let rest_len = usize::try_from(file_len - damage).map_err(|_| LogError::Corrupt {
        path: path.to_path_buf(),
        position: damage,
        reason: "segment too large to check".into(),
    })?;
    let mut rest = vec![0u8; rest_len];
    std::fs::File::open(path)
        .and_then(|file| file.read_exact_at(&mut rest, damage))
        .at(path)?;
    let Some(valid) = find_frame(&rest, 1) else {
        return Ok(());
    };
    let reason = format!(
        "{error}, yet a valid frame follows at byte {}: this is damage to records already written, not a torn tail; refusing to cut the log (nothing was changed; see \"Repairing the event log\" in the README: `opentrail log repair`)",
        damage + valid as u64
    );
    tracing::error!(segment = ?path, position = damage, %reason, "event log is damaged");
    Err(LogError::Corrupt {
        path: path.to_path_buf(),
        position: damage,
        reason,
    })
}
