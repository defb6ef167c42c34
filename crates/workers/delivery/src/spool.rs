//! Log files whose write failed wait here, on local disk, for their bucket to come back:
//! once spooled a file is durable, so the log cursor may move past its events and one
//! broken bucket holds neither memory nor the other trails.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use opentrail_model::{Region, TrailArn};
use serde::{Deserialize, Serialize};

use crate::batcher::Lane;
use crate::durable_file::{files_with_extension, remove_durably, write_atomically};
use crate::error::DeliveryError;
use crate::log_file::LogFile;
use crate::object_keys::INSIGHT_KEY_PART;

/// A log file with its destination, ready to be written.
#[derive(Debug, Clone)]
pub(crate) struct SealedFile {
    pub(crate) lane: Lane,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) file: LogFile,
    /// Whether the file goes into the trail's digests once written.
    pub(crate) validation: bool,
}

/// What a spool file says about its log file (the first line of the spool file).
#[derive(Debug, Serialize, Deserialize)]
struct SpoolHeader {
    trail: String,
    region: Region,
    bucket: String,
    key: String,
    sha256_hex: String,
    uncompressed_len: usize,
    record_count: usize,
    oldest_event_time: Option<DateTime<Utc>>,
    newest_event_time: Option<DateTime<Utc>>,
    validation: bool,
}

const EXTENSION: &str = ".spool";

/// Spooled files per trail, oldest first. Bodies stay on disk until retried.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    next_sequence: u64,
    waiting: BTreeMap<String, VecDeque<PathBuf>>,
}

impl Spool {
    pub(crate) fn open(dir: PathBuf) -> Result<Spool, DeliveryError> {
        let paths =
            files_with_extension(&dir, EXTENSION).map_err(|e| DeliveryError::state(&dir, e))?;
        let mut spool = Spool {
            dir,
            next_sequence: 0,
            waiting: BTreeMap::new(),
        };
        for path in paths {
            let sequence = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.parse::<u64>().ok())
                .ok_or_else(|| DeliveryError::state(&path, "unexpected spool file name"))?;
            let sealed = read_spool_file(&path)?;
            spool.next_sequence = spool.next_sequence.max(sequence + 1);
            spool
                .waiting
                .entry(sealed.lane.trail.to_string())
                .or_default()
                .push_back(path);
        }
        Ok(spool)
    }

    /// Durably keeps `sealed` until [`Spool::remove_front`].
    pub(crate) fn push(&mut self, sealed: &SealedFile) -> Result<(), DeliveryError> {
        let path = self
            .dir
            .join(format!("{:020}{EXTENSION}", self.next_sequence));
        let header = SpoolHeader {
            trail: sealed.lane.trail.to_string(),
            region: sealed.lane.region.clone(),
            bucket: sealed.bucket.clone(),
            key: sealed.key.clone(),
            sha256_hex: sealed.file.sha256_hex.clone(),
            uncompressed_len: sealed.file.uncompressed_len,
            record_count: sealed.file.record_count,
            oldest_event_time: sealed.file.oldest_event_time,
            newest_event_time: sealed.file.newest_event_time,
            validation: sealed.validation,
        };
        let mut contents = serde_json::to_vec(&header).expect("header serialises");
        contents.push(b'\n');
        contents.extend_from_slice(&sealed.file.gzip);
        write_atomically(&path, &contents).map_err(|e| DeliveryError::state(&path, e))?;
        self.next_sequence += 1;
        self.waiting
            .entry(sealed.lane.trail.to_string())
            .or_default()
            .push_back(path);
        Ok(())
    }

    /// Bucket and key of every spooled file (reads every spool file).
    pub(crate) fn all_keys(&self) -> Result<Vec<(String, String)>, DeliveryError> {
        let mut keys = Vec::new();
        for path in self.waiting.values().flatten() {
            let sealed = read_spool_file(path)?;
            keys.push((sealed.bucket, sealed.key));
        }
        Ok(keys)
    }

    /// Trails with spooled files.
    pub(crate) fn trails(&self) -> Vec<String> {
        self.waiting.keys().cloned().collect()
    }

    pub(crate) fn has_files(&self, trail: &TrailArn) -> bool {
        self.waiting.contains_key(&trail.to_string())
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    /// The oldest spooled file of `trail`, read from disk.
    pub(crate) fn front(&self, trail: &str) -> Result<Option<SealedFile>, DeliveryError> {
        match self.waiting.get(trail).and_then(VecDeque::front) {
            Some(path) => read_spool_file(path).map(Some),
            None => Ok(None),
        }
    }

    /// Forgets every spooled file of `trail` (a deleted trail); how many there were.
    pub(crate) fn remove_trail(&mut self, trail: &str) -> Result<usize, DeliveryError> {
        let Some(queue) = self.waiting.remove(trail) else {
            return Ok(0);
        };
        let count = queue.len();
        for path in queue {
            remove_durably(&path).map_err(|e| DeliveryError::state(&path, e))?;
        }
        Ok(count)
    }

    /// Forgets the oldest spooled file of `trail`, once written to its bucket.
    pub(crate) fn remove_front(&mut self, trail: &str) -> Result<(), DeliveryError> {
        let Some(queue) = self.waiting.get_mut(trail) else {
            return Ok(());
        };
        if let Some(path) = queue.pop_front() {
            remove_durably(&path).map_err(|e| DeliveryError::state(&path, e))?;
        }
        if queue.is_empty() {
            self.waiting.remove(trail);
        }
        Ok(())
    }
}

fn read_spool_file(path: &Path) -> Result<SealedFile, DeliveryError> {
    let contents = fs::read(path).map_err(|e| DeliveryError::state(path, e))?;
    let newline = contents
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| DeliveryError::state(path, "spool file without header"))?;
    let header: SpoolHeader =
        serde_json::from_slice(&contents[..newline]).map_err(|e| DeliveryError::state(path, e))?;
    let trail = TrailArn::parse(&header.trail).map_err(|e| DeliveryError::state(path, e))?;
    let gzip = Bytes::copy_from_slice(&contents[newline + 1..]);
    Ok(SealedFile {
        lane: Lane {
            trail,
            region: header.region,
            insight: header.key.contains(INSIGHT_KEY_PART),
        },
        bucket: header.bucket,
        key: header.key,
        file: LogFile {
            gzip,
            uncompressed_len: header.uncompressed_len,
            sha256_hex: header.sha256_hex,
            record_count: header.record_count,
            oldest_event_time: header.oldest_event_time,
            newest_event_time: header.newest_event_time,
        },
        validation: header.validation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_file::build_log_file;

    fn sealed(trail: &str, key: &str) -> SealedFile {
        SealedFile {
            lane: Lane {
                insight: false,
                trail: TrailArn::parse(trail).unwrap(),
                region: Region::parse("eu-west-1").unwrap(),
            },
            bucket: "logs".into(),
            key: key.into(),
            file: build_log_file(&[]),
            validation: true,
        }
    }

    #[test]
    fn survives_reopen_in_order_per_trail() {
        let dir = tempfile::tempdir().unwrap();
        let a = "arn:aws:cloudtrail:us-east-1:123456789012:trail/aaa";
        let b = "arn:aws:cloudtrail:us-east-1:123456789012:trail/bbb";
        let mut spool = Spool::open(dir.path().to_path_buf()).unwrap();
        spool.push(&sealed(a, "k1")).unwrap();
        spool.push(&sealed(b, "k2")).unwrap();
        spool.push(&sealed(a, "k3")).unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path().to_path_buf()).unwrap();
        assert_eq!(spool.len(), 3);
        assert_eq!(spool.trails(), vec![a.to_string(), b.to_string()]);
        let first = spool.front(a).unwrap().unwrap();
        assert_eq!(first.key, "k1");
        assert_eq!(first.file.gzip, build_log_file(&[]).gzip);
        spool.remove_front(a).unwrap();
        assert_eq!(spool.front(a).unwrap().unwrap().key, "k3");
        spool.push(&sealed(a, "k4")).unwrap();
        spool.remove_front(a).unwrap();
        assert_eq!(spool.front(a).unwrap().unwrap().key, "k4");
        spool.remove_front(a).unwrap();
        assert!(!spool.has_files(&TrailArn::parse(a).unwrap()));
        drop(spool);
        assert_eq!(Spool::open(dir.path().to_path_buf()).unwrap().len(), 1);
    }
}
