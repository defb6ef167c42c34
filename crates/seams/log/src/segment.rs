//! Segment files: `segments/<first offset, 20 digits>.log`, a 16-byte header (magic and first
//! offset) followed by frames. Naming, listing, creating and scanning them.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError, Result};
use crate::frame::{frame_len, read_frame, FrameError};

/// Bytes of the segment header: magic, then the first offset (u64 little-endian).
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
const SEGMENT_MAGIC: [u8; 8] = *b"OTLOG\0v1";
const SEGMENT_SUFFIX: &str = ".log";

/// The sparse index keeps one entry per this many bytes of frames.
const INDEX_INTERVAL_BYTES: u64 = 1024 * 1024;
const SCAN_BUFFER_BYTES: usize = 1024 * 1024;

pub(crate) fn segment_path(segments_dir: &Path, first_offset: u64) -> PathBuf {
    segments_dir.join(format!("{first_offset:020}{SEGMENT_SUFFIX}"))
}

/// First offsets of the segment files in `segments_dir`, ascending. Other files are ignored.
pub(crate) fn list_segments(segments_dir: &Path) -> Result<Vec<u64>> {
    let mut firsts = Vec::new();
    for entry in std::fs::read_dir(segments_dir).at(segments_dir)? {
        let entry = entry.at(segments_dir)?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|name| name.strip_suffix(SEGMENT_SUFFIX))
            .filter(|digits| digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
        else {
            tracing::warn!(file = ?entry.path(), "ignoring unexpected file in the segments directory");
            continue;
        };
        firsts.push(first);
    }
    firsts.sort_unstable();
    Ok(firsts)
}

pub(crate) fn encode_header(first_offset: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..].copy_from_slice(&first_offset.to_le_bytes());
    header
}

/// What the first bytes of a segment file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    Valid,
    /// Shorter than a header: a creation that did not finish; it cannot hold a record.
    Incomplete,
}

/// Checks the header of the segment at `path`, which must start at `first_offset`.
pub(crate) fn check_header(path: &Path, first_offset: u64) -> Result<HeaderCheck> {
    let mut file = File::open(path).at(path)?;
    let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    (&mut file)
        .take(SEGMENT_HEADER_LEN)
        .read_to_end(&mut header)
        .at(path)?;
    if header.len() < SEGMENT_HEADER_LEN as usize {
        return Ok(HeaderCheck::Incomplete);
    }
    if header[..] != encode_header(first_offset) {
        return Err(LogError::Corrupt {
            path: path.to_path_buf(),
            position: 0,
            reason: format!("segment header does not name first offset {first_offset}"),
        });
    }
    Ok(HeaderCheck::Valid)
}

/// Writes the header of a new (or never completed) segment and makes the file durable,
/// including its directory entry. Returns the file positioned after the header.
pub(crate) fn initialize_segment(segments_dir: &Path, first_offset: u64) -> Result<File> {
    let path = segment_path(segments_dir, first_offset);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .at(&path)?;
    file.write_all(&encode_header(first_offset)).at(&path)?;
    file.sync_all().at(&path)?;
    sync_dir(segments_dir)?;
    Ok(file)
}

/// Makes renames, creations and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Maps offsets in one segment to file positions, one entry per ~1 MiB of frames.
#[derive(Debug, Clone)]
pub(crate) struct SparseIndex {
    /// `(offset, position)` pairs, ascending; the first is the segment's first frame.
    entries: Vec<(u64, u64)>,
}

impl SparseIndex {
    pub(crate) fn new(first_offset: u64) -> Self {
        Self {
            entries: vec![(first_offset, SEGMENT_HEADER_LEN)],
        }
    }

    /// Notes that the frame of `offset` starts at `position`; kept if far enough from the last.
    pub(crate) fn note(&mut self, offset: u64, position: u64) {
        let Some(&(last_offset, last_position)) = self.entries.last() else {
            self.entries.push((offset, position));
            return;
        };
        if offset > last_offset && position >= last_position + INDEX_INTERVAL_BYTES {
            self.entries.push((offset, position));
        }
    }

    /// Forgets entries for offsets at or above `end` (frames cut off after a failure).
    pub(crate) fn truncate(&mut self, end: u64) {
        let keep = self.entries.partition_point(|&(o, _)| o < end).max(1);
        self.entries.truncate(keep);
    }

    /// The indexed frame nearest at or before `offset`: `(offset, position)`.
    pub(crate) fn floor(&self, offset: u64) -> (u64, u64) {
        let after = self.entries.partition_point(|&(o, _)| o <= offset);
        self.entries[after.saturating_sub(1)]
    }
}

/// Result of reading a segment's frames from the header onwards.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    pub(crate) record_count: u64,
    /// Bytes from the start of the file to the end of the last valid frame.
    pub(crate) valid_len: u64,
    pub(crate) file_len: u64,
    pub(crate) index: SparseIndex,
    /// Why scanning stopped before `file_len`, if it did.
    pub(crate) stopped_by: Option<FrameError>,
}

/// Reads and verifies every frame up to the first invalid one or the end of the file.
/// The header must already have been checked.
pub(crate) fn scan_segment(path: &Path, first_offset: u64) -> Result<SegmentScan> {
    let file = File::open(path).at(path)?;
    let file_len = file.metadata().at(path)?.len();
    let mut src = BufReader::with_capacity(SCAN_BUFFER_BYTES, file);
    std::io::copy(
        &mut (&mut src).take(SEGMENT_HEADER_LEN),
        &mut std::io::sink(),
    )
    .at(path)?;
    let mut index = SparseIndex::new(first_offset);
    let mut position = SEGMENT_HEADER_LEN.min(file_len);
    let mut record_count = 0u64;
    let mut payload = Vec::new();
    let mut stopped_by = None;
    while position < file_len {
        if let Err(error) = read_frame(&mut src, file_len - position, &mut payload).at(path)? {
            stopped_by = Some(error);
            break;
        }
        index.note(first_offset + record_count, position);
        position += frame_len(payload.len()) as u64;
        record_count += 1;
    }
    Ok(SegmentScan {
        record_count,
        valid_len: position,
        file_len,
        index,
        stopped_by,
    })
}

/// Scans a sealed segment, which must hold exactly `expected_records` valid frames and
/// nothing after them; anything else is corruption (sealed segments never have torn tails).
pub(crate) fn scan_sealed_segment(
    path: &Path,
    first_offset: u64,
    expected_records: u64,
) -> Result<SparseIndex> {
    let scan = scan_segment(path, first_offset)?;
    if let Some(error) = scan.stopped_by {
        return Err(LogError::Corrupt {
            path: path.to_path_buf(),
            position: scan.valid_len,
            reason: format!("{error} inside a sealed segment"),
        });
    }
    if scan.record_count != expected_records {
        return Err(LogError::Corrupt {
            path: path.to_path_buf(),
            position: scan.valid_len,
            reason: format!(
                "sealed segment holds {} records, the next segment implies {expected_records}",
                scan.record_count
            ),
        });
    }
    Ok(scan.index)
}
