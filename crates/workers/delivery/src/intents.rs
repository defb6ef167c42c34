//! Log files named before they are written: which records of a lane each file holds, so
//! that after a crash the same records become the same file again (same key, same bytes)
//! or, once the file is known written, are skipped.
//!
//! A file's intent is durable before the file is written or spooled, and is marked written
//! once the write (or the spooling) is recorded. An intent is forgotten once the log cursor
//! has passed its last record: those records are never read again.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::batcher::Lane;
use crate::durable_file::write_atomically;
use crate::error::DeliveryError;

/// One log file: its destination and the log offsets of its first and last record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileIntent {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) validation: bool,
    pub(crate) first_offset: u64,
    pub(crate) last_offset: u64,
    pub(crate) records: usize,
    /// In the bucket or in the spool.
    pub(crate) written: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct LaneIntents {
    trail: String,
    region: opentrail_model::Region,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    insight: bool,
    files: Vec<FileIntent>,
}

/// Every lane's files that the cursor has not passed yet, oldest first per lane.
#[derive(Debug)]
pub(crate) struct Intents {
    path: PathBuf,
    lanes: BTreeMap<String, (Lane, Vec<FileIntent>)>,
    /// The highest last offset of any intent: records after it need no lookup.
    max_last_offset: Option<u64>,
}

fn lane_key(lane: &Lane) -> String {
    match lane.insight {
        false => format!("{}|{}", lane.trail, lane.region),
        true => format!("{}|{}|insight", lane.trail, lane.region),
    }
}

impl Intents {
    /// Loads `path` (none when missing). Blocking.
    pub(crate) fn open(path: PathBuf) -> Result<Intents, DeliveryError> {
        let stored: Vec<LaneIntents> = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| DeliveryError::state(&path, e))?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(DeliveryError::state(&path, error)),
        };
        let mut lanes = BTreeMap::new();
        for entry in stored {
            let trail = opentrail_model::TrailArn::parse(&entry.trail)
                .map_err(|e| DeliveryError::state(&path, e))?;
            let lane = Lane {
                trail,
                region: entry.region,
                insight: entry.insight,
            };
            lanes.insert(lane_key(&lane), (lane, entry.files));
        }
        let mut intents = Intents {
            path,
            lanes,
            max_last_offset: None,
        };
        intents.refresh_max();
        Ok(intents)
    }

    fn refresh_max(&mut self) {
        self.max_last_offset = self
            .lanes
            .values()
            .flat_map(|(_, files)| files.iter().map(|f| f.last_offset))
            .max();
    }

    /// The file of `lane` that holds the record at `offset`, if one was named.
    pub(crate) fn covering(&self, lane: &Lane, offset: u64) -> Option<&FileIntent> {
        if self.max_last_offset.is_none_or(|max| offset > max) {
            return None;
        }
        let (_, files) = self.lanes.get(&lane_key(lane))?;
        files
            .iter()
            .find(|f| f.first_offset <= offset && offset <= f.last_offset)
    }

    /// Every intent, with its lane.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&Lane, &FileIntent)> {
        self.lanes
            .values()
            .flat_map(|(lane, files)| files.iter().map(move |f| (lane, f)))
    }

    pub(crate) fn add(&mut self, lane: &Lane, intent: FileIntent) {
        let (_, files) = self
            .lanes
            .entry(lane_key(lane))
            .or_insert_with(|| (lane.clone(), Vec::new()));
        files.retain(|f| f.key != intent.key);
        files.push(intent);
        files.sort_by_key(|f| f.first_offset);
        self.refresh_max();
    }

    /// Marks the file `key` of `lane` written; whether it was known and not yet marked.
    pub(crate) fn mark_written(&mut self, lane: &Lane, key: &str) -> bool {
        let Some((_, files)) = self.lanes.get_mut(&lane_key(lane)) else {
            return false;
        };
        match files.iter_mut().find(|f| f.key == key) {
            Some(file) if !file.written => {
                file.written = true;
                true
            }
            _ => false,
        }
    }

    /// Forgets the files whose records are all below `cursor`; whether any were.
    pub(crate) fn forget_below(&mut self, cursor: u64) -> bool {
        let before: usize = self.lanes.values().map(|(_, f)| f.len()).sum();
        for (_, files) in self.lanes.values_mut() {
            files.retain(|f| f.last_offset >= cursor);
        }
        self.lanes.retain(|_, (_, files)| !files.is_empty());
        let after: usize = self.lanes.values().map(|(_, f)| f.len()).sum();
        self.refresh_max();
        after != before
    }

    /// The state file's bytes, to be written with [`Intents::persist_bytes`].
    pub(crate) fn snapshot(&self) -> (PathBuf, Vec<u8>) {
        let stored: Vec<LaneIntents> = self
            .lanes
            .values()
            .map(|(lane, files)| LaneIntents {
                trail: lane.trail.to_string(),
                region: lane.region.clone(),
                insight: lane.insight,
                files: files.clone(),
            })
            .collect();
        (
            self.path.clone(),
            serde_json::to_vec(&stored).expect("intents serialise"),
        )
    }

    /// Writes a snapshot durably. Blocking.
    pub(crate) fn persist_bytes((path, bytes): (PathBuf, Vec<u8>)) -> Result<(), DeliveryError> {
        write_atomically(&path, &bytes).map_err(|e| DeliveryError::state(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_model::{Region, TrailArn};

    fn lane(region: &str) -> Lane {
        Lane {
            insight: false,
            trail: TrailArn::parse("arn:aws:cloudtrail:us-east-1:123456789012:trail/main").unwrap(),
            region: Region::parse(region).unwrap(),
        }
    }

    fn intent(key: &str, first: u64, last: u64) -> FileIntent {
        FileIntent {
            bucket: "b".into(),
            key: key.into(),
            validation: true,
            first_offset: first,
            last_offset: last,
            records: 2,
            written: false,
        }
    }

    #[test]
    fn covers_marks_forgets_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("files.json");
        let mut intents = Intents::open(path.clone()).unwrap();
        assert_eq!(intents.all().count(), 0);
        intents.add(&lane("us-east-1"), intent("a", 10, 20));
        intents.add(&lane("us-east-1"), intent("b", 30, 40));
        intents.add(&lane("eu-west-1"), intent("c", 15, 50));
        assert_eq!(intents.covering(&lane("us-east-1"), 20).unwrap().key, "a");
        assert!(intents.covering(&lane("us-east-1"), 25).is_none());
        assert!(intents.covering(&lane("us-east-1"), 51).is_none());
        assert_eq!(intents.covering(&lane("eu-west-1"), 50).unwrap().key, "c");
        assert!(intents.mark_written(&lane("us-east-1"), "a"));
        assert!(!intents.mark_written(&lane("us-east-1"), "a"));
        Intents::persist_bytes(intents.snapshot()).unwrap();

        let mut reopened = Intents::open(path).unwrap();
        assert!(reopened.covering(&lane("us-east-1"), 12).unwrap().written);
        assert!(!reopened.covering(&lane("us-east-1"), 35).unwrap().written);
        assert!(reopened.forget_below(21));
        assert!(!reopened.forget_below(21));
        assert!(reopened.covering(&lane("us-east-1"), 12).is_none());
        assert_eq!(reopened.all().count(), 2);
        assert!(reopened.forget_below(51));
        assert_eq!(reopened.all().count(), 0);
    }
}
