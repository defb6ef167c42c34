//! The durable counters: append-only segment files of (period start, key id, count)
//! records, one file per UTC day and resolution (1 minute, 5 minutes, 1 hour), deleted
//! whole when older than their resolution's retention; and the key log naming key ids.
//!
//! A record is 16 bytes little endian: period start in minutes since the Unix epoch
//! (u32), key id (u32), count (u64). Only non-zero counts are written. A torn record at
//! the end of a file (a crash mid-write) is ignored when read.

use crate::error::InsightsError;
use crate::key::MetricKey;
use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub const MINUTES_PER_DAY: u32 = 1440;
const RECORD_BYTES: usize = 16;

/// A counter resolution and its `ListInsightsMetricData` `Period` in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    OneMinute,
    FiveMinutes,
    OneHour,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [
        Resolution::OneMinute,
        Resolution::FiveMinutes,
        Resolution::OneHour,
    ];

    pub fn minutes(self) -> u32 {
        match self {
            Resolution::OneMinute => 1,
            Resolution::FiveMinutes => 5,
            Resolution::OneHour => 60,
        }
    }

    /// The resolution of a `Period` of 60, 300 or 3600 seconds.
    pub fn from_period_seconds(period: u32) -> Option<Self> {
        match period {
            60 => Some(Resolution::OneMinute),
            300 => Some(Resolution::FiveMinutes),
            3600 => Some(Resolution::OneHour),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Resolution::OneMinute => 0,
            Resolution::FiveMinutes => 1,
            Resolution::OneHour => 2,
        }
    }

    fn dir_name(self) -> &'static str {
        match self {
            Resolution::OneMinute => "m1",
            Resolution::FiveMinutes => "m5",
            Resolution::OneHour => "h1",
        }
    }
}

/// One stored count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountRecord {
    pub(crate) period_start: u32,
    pub(crate) key: u32,
    pub(crate) count: u64,
}

#[derive(Serialize, Deserialize)]
struct KeyLine {
    id: u32,
    #[serde(rename = "firstMinute")]
    first_minute: u32,
    key: MetricKey,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    /// Every minute before this one is closed: counted, written and evaluated.
    #[serde(rename = "closedBefore")]
    closed_before: u32,
    #[serde(flatten)]
    saved: Saved,
}

/// What the engine keeps beside its counters, written with `closedBefore` in one file so
/// the two always agree: the insights running and the events not yet acknowledged.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Saved {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) insights: Vec<SavedInsight>,
    /// Insights event records returned but not acknowledged (appended) yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) unacknowledged: Vec<String>,
}

/// Top values of the three attributes with their counts (or per-minute averages).
pub(crate) type SavedTop<T> = [Vec<(String, T)>; 3];

/// A running insight and its key's detector state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SavedInsight {
    pub(crate) key: u32,
    pub(crate) start: u32,
    pub(crate) event_id_seed: u32,
    pub(crate) baseline_sum: u64,
    pub(crate) baseline_minutes: u32,
    pub(crate) baseline_attributions: SavedTop<f64>,
    pub(crate) count: u64,
    pub(crate) attributions: SavedTop<u64>,
    pub(crate) pending_count: u64,
    pub(crate) pending_attributions: SavedTop<u64>,
    pub(crate) previous_count: u64,
    pub(crate) previous_elevated: bool,
    pub(crate) quiet_run: u32,
}

pub(crate) struct CounterStore {
    dir: PathBuf,
    writers: [Option<(u32, BufWriter<File>)>; 3],
    keys: Option<BufWriter<File>>,
    sync: bool,
}

fn day_name(day: u32) -> String {
    let date = DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|time| time.date_naive())
        .unwrap_or(NaiveDate::MIN);
    date.format("%Y%m%d").to_string()
}

fn parse_day_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".seg")?;
    let date = NaiveDate::parse_from_str(stem, "%Y%m%d").ok()?;
    let seconds = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    u32::try_from(seconds / 86_400).ok()
}

impl CounterStore {
    pub(crate) fn open(dir: &Path, sync: bool) -> Result<Self, InsightsError> {
        for resolution in Resolution::ALL {
            let sub = dir.join(resolution.dir_name());
            fs::create_dir_all(&sub).map_err(InsightsError::io("create", &sub))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            writers: [None, None, None],
            keys: None,
            sync,
        })
    }

    fn segment_path(&self, resolution: Resolution, day: u32) -> PathBuf {
        self.dir
            .join(resolution.dir_name())
            .join(format!("{}.seg", day_name(day)))
    }

    fn keys_path(&self) -> PathBuf {
        self.dir.join("keys.log")
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The keys of the key log: (id, first minute seen, key).
    pub(crate) fn load_keys(&self) -> Result<Vec<(u32, u32, MetricKey)>, InsightsError> {
        let path = self.keys_path();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(InsightsError::io("open", &path)(error)),
        };
        let mut keys = Vec::new();
        let mut lines = BufReader::new(file).lines().enumerate().peekable();
        while let Some((number, line)) = lines.next() {
            let line = line.map_err(InsightsError::io("read", &path))?;
            match serde_json::from_str::<KeyLine>(&line) {
                Ok(entry) => keys.push((entry.id, entry.first_minute, entry.key)),
                // A torn last line (a crash mid-append): its key is written again when seen.
                Err(_) if lines.peek().is_none() => break,
                Err(error) => {
                    return Err(InsightsError::CorruptKeyLog {
                        path,
                        line: number + 1,
                        reason: error.to_string(),
                    })
                }
            }
        }
        Ok(keys)
    }

    pub(crate) fn append_key(
        &mut self,
        id: u32,
        first_minute: u32,
        key: &MetricKey,
    ) -> Result<(), InsightsError> {
        let path = self.keys_path();
        if self.keys.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(InsightsError::io("open", &path))?;
            self.keys = Some(BufWriter::new(file));
        }
        let line = KeyLine {
            id,
            first_minute,
            key: key.clone(),
        };
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        if let Some(writer) = self.keys.as_mut() {
            writer
                .write_all(text.as_bytes())
                .map_err(InsightsError::io("append to", &path))?;
        }
        Ok(())
    }

    /// Rewrites the key log with only `keys` (after idle keys were evicted).
    pub(crate) fn rewrite_keys(
        &mut self,
        keys: &[(u32, u32, &MetricKey)],
    ) -> Result<(), InsightsError> {
        self.flush_keys()?;
        self.keys = None;
        let path = self.keys_path();
        let temp = self.dir.join("keys.log.tmp");
        let mut writer =
            BufWriter::new(File::create(&temp).map_err(InsightsError::io("create", &temp))?);
        for (id, first_minute, key) in keys {
            let line = KeyLine {
                id: *id,
                first_minute: *first_minute,
                key: (*key).clone(),
            };
            let mut text = serde_json::to_string(&line).unwrap_or_default();
            text.push('\n');
            writer
                .write_all(text.as_bytes())
                .map_err(InsightsError::io("write", &temp))?;
        }
        let file = writer
            .into_inner()
            .map_err(|error| InsightsError::io("write", &temp)(error.into_error()))?;
        file.sync_all().map_err(InsightsError::io("sync", &temp))?;
        fs::rename(&temp, &path).map_err(InsightsError::io("rename", &path))?;
        Ok(())
    }

    pub(crate) fn append(
        &mut self,
        resolution: Resolution,
        record: CountRecord,
    ) -> Result<(), InsightsError> {
        let day = record.period_start / MINUTES_PER_DAY;
        let slot = resolution.index();
        let current = self.writers[slot].as_ref().map(|(open_day, _)| *open_day);
        if current != Some(day) {
            if let Some((_, mut writer)) = self.writers[slot].take() {
                writer.flush().map_err(InsightsError::io(
                    "write",
                    self.segment_path(resolution, day),
                ))?;
            }
            let path = self.segment_path(resolution, day);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(InsightsError::io("open", &path))?;
            // Drop a torn record a crash left, so that later records stay aligned.
            let length = file
                .metadata()
                .map_err(InsightsError::io("stat", &path))?
                .len();
            let aligned = length - length % RECORD_BYTES as u64;
            if aligned != length {
                file.set_len(aligned)
                    .map_err(InsightsError::io("truncate", &path))?;
            }
            self.writers[slot] = Some((day, BufWriter::with_capacity(64 * 1024, file)));
        }
        let mut bytes = [0u8; RECORD_BYTES];
        bytes[0..4].copy_from_slice(&record.period_start.to_le_bytes());
        bytes[4..8].copy_from_slice(&record.key.to_le_bytes());
        bytes[8..16].copy_from_slice(&record.count.to_le_bytes());
        if let Some((_, writer)) = self.writers[slot].as_mut() {
            writer.write_all(&bytes).map_err(InsightsError::io(
                "append to",
                self.dir.join(resolution.dir_name()),
            ))?;
        }
        Ok(())
    }

    fn flush_keys(&mut self) -> Result<(), InsightsError> {
        let path = self.keys_path();
        if let Some(writer) = self.keys.as_mut() {
            writer.flush().map_err(InsightsError::io("write", &path))?;
            if self.sync {
                writer
                    .get_ref()
                    .sync_data()
                    .map_err(InsightsError::io("sync", &path))?;
            }
        }
        Ok(())
    }

    /// Makes everything appended durable (keys first, so no record names an unknown key),
    /// then records that minutes before `closed_before` are closed, with `saved`.
    pub(crate) fn flush(&mut self, closed_before: u32, saved: &Saved) -> Result<(), InsightsError> {
        self.flush_keys()?;
        for resolution in Resolution::ALL {
            let path = self.dir.join(resolution.dir_name());
            if let Some((_, writer)) = self.writers[resolution.index()].as_mut() {
                writer.flush().map_err(InsightsError::io("write", &path))?;
                if self.sync {
                    writer
                        .get_ref()
                        .sync_data()
                        .map_err(InsightsError::io("sync", &path))?;
                }
            }
        }
        let path = self.state_path();
        let temp = self.dir.join("state.json.tmp");
        #[derive(Serialize)]
        struct StateRef<'a> {
            #[serde(rename = "closedBefore")]
            closed_before: u32,
            #[serde(flatten)]
            saved: &'a Saved,
        }
        let text = serde_json::to_vec(&StateRef {
            closed_before,
            saved,
        })
        .unwrap_or_default();
        fs::write(&temp, text).map_err(InsightsError::io("write", &temp))?;
        fs::rename(&temp, &path).map_err(InsightsError::io("rename", &path))?;
        Ok(())
    }

    /// The minute before which every minute was closed when the store was last flushed.
    #[cfg(test)]
    pub(crate) fn closed_before(&self) -> Result<Option<u32>, InsightsError> {
        Ok(self.load_state()?.map(|(closed_before, _)| closed_before))
    }

    /// The first open minute and what was saved with it at the last flush.
    pub(crate) fn load_state(&self) -> Result<Option<(u32, Saved)>, InsightsError> {
        let path = self.state_path();
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice::<StateFile>(&bytes)
                .ok()
                .map(|state| (state.closed_before, state.saved))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(InsightsError::io("read", &path)(error)),
        }
    }

    /// Every record of one day's segment at `resolution` (none when it does not exist).
    pub(crate) fn read_day(
        &self,
        resolution: Resolution,
        day: u32,
    ) -> Result<Vec<CountRecord>, InsightsError> {
        let path = self.segment_path(resolution, day);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)
                    .map_err(InsightsError::io("read", &path))?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(InsightsError::io("open", &path)(error)),
        }
        Ok(bytes
            .chunks_exact(RECORD_BYTES)
            .map(|chunk| CountRecord {
                period_start: u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                key: u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
                count: u64::from_le_bytes([
                    chunk[8], chunk[9], chunk[10], chunk[11], chunk[12], chunk[13], chunk[14],
                    chunk[15],
                ]),
            })
            .collect())
    }

    /// Deletes the segments of days that ended more than each resolution's retention ago.
    pub(crate) fn expire(
        &mut self,
        today: u32,
        retention_days: [u32; 3],
    ) -> Result<(), InsightsError> {
        for resolution in Resolution::ALL {
            let keep_from = today.saturating_sub(retention_days[resolution.index()]);
            let sub = self.dir.join(resolution.dir_name());
            let entries = fs::read_dir(&sub).map_err(InsightsError::io("list", &sub))?;
            for entry in entries {
                let entry = entry.map_err(InsightsError::io("list", &sub))?;
                let name = entry.file_name();
                let Some(day) = name.to_str().and_then(parse_day_name) else {
                    continue;
                };
                if day >= keep_from {
                    continue;
                }
                if self.writers[resolution.index()]
                    .as_ref()
                    .is_some_and(|(open_day, _)| *open_day == day)
                {
                    self.writers[resolution.index()] = None;
                }
                let path = entry.path();
                fs::remove_file(&path).map_err(InsightsError::io("remove", &path))?;
            }
        }
        Ok(())
    }

    /// Bytes of all segment files (for stats).
    pub(crate) fn disk_bytes(&self) -> u64 {
        Resolution::ALL
            .iter()
            .filter_map(|resolution| fs::read_dir(self.dir.join(resolution.dir_name())).ok())
            .flat_map(|entries| entries.filter_map(Result::ok))
            .filter_map(|entry| entry.metadata().ok())
            .map(|metadata| metadata.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_round_trip() {
        for day in [0u32, 19_000, 20_500] {
            assert_eq!(parse_day_name(&format!("{}.seg", day_name(day))), Some(day));
        }
    }

    #[test]
    fn records_survive_reopen_and_torn_tails_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CounterStore::open(dir.path(), false).unwrap();
        let day = 19_000;
        let record = CountRecord {
            period_start: day * MINUTES_PER_DAY + 7,
            key: 3,
            count: 42,
        };
        store.append(Resolution::OneMinute, record).unwrap();
        store
            .flush(day * MINUTES_PER_DAY + 8, &Saved::default())
            .unwrap();
        drop(store);
        let path = dir.path().join("m1").join(format!("{}.seg", day_name(day)));
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[1, 2, 3]).unwrap();
        let mut store = CounterStore::open(dir.path(), false).unwrap();
        assert_eq!(
            store.read_day(Resolution::OneMinute, day).unwrap(),
            vec![record]
        );
        assert_eq!(
            store.closed_before().unwrap(),
            Some(day * MINUTES_PER_DAY + 8)
        );
        let second = CountRecord { count: 1, ..record };
        store.append(Resolution::OneMinute, second).unwrap();
        store.flush(0, &Saved::default()).unwrap();
        assert_eq!(
            store.read_day(Resolution::OneMinute, day).unwrap(),
            vec![record, second]
        );
    }

    #[test]
    fn expire_removes_only_days_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CounterStore::open(dir.path(), false).unwrap();
        for day in [100u32, 110, 120] {
            let record = CountRecord {
                period_start: day * MINUTES_PER_DAY,
                key: 0,
                count: 1,
            };
            for resolution in Resolution::ALL {
                store.append(resolution, record).unwrap();
            }
        }
        store.flush(0, &Saved::default()).unwrap();
        store.expire(126, [15, 20, 90]).unwrap();
        assert!(store
            .read_day(Resolution::OneMinute, 110)
            .unwrap()
            .is_empty());
        assert_eq!(store.read_day(Resolution::OneMinute, 120).unwrap().len(), 1);
        assert!(store
            .read_day(Resolution::FiveMinutes, 100)
            .unwrap()
            .is_empty());
        assert_eq!(
            store.read_day(Resolution::FiveMinutes, 110).unwrap().len(),
            1
        );
        assert_eq!(store.read_day(Resolution::OneHour, 100).unwrap().len(), 1);
    }
}
