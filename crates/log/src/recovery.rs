//! Open-time recovery: find the segments, check their headers, and cut the torn tail off the
//! last segment (the only one a crash can leave half-written, because a segment is fsynced
//! before the next one is created).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use crate::error::{IoContext, LogError, Result};
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
pub(crate) fn recover(segments_dir: &Path) -> Result<Recovered> {
    let firsts = list_segments(segments_dir)?;
    let segments = SegmentSet::default();
    let Some((&last_first, sealed_firsts)) = firsts.split_last() else {
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
    let (active, record_count) = recover_last_segment(segments_dir, last_first)?;
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
fn recover_last_segment(segments_dir: &Path, first_offset: u64) -> Result<(ActiveSegment, u64)> {
    let path = segment_path(segments_dir, first_offset);
    if check_header(&path, first_offset)? == HeaderCheck::Incomplete {
        // Its header was never fsynced, so no record in it was ever acknowledged.
        tracing::warn!(segment = ?path, "completing a segment whose creation was interrupted");
        return Ok((fresh_active_segment(segments_dir, first_offset)?, 0));
    }
    let scan = scan_segment(&path, first_offset)?;
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
