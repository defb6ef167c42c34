//! Retention: whole day partitions older than the window are dropped — the manifest
//! first, then their directories — never individual events.

use super::open::remove_dir;
use super::{partition_dir, HistoryStore};
use crate::error::HistoryError;
use crate::staging::{day_of, SECONDS_PER_DAY};
use chrono::{DateTime, Utc};

impl HistoryStore {
    /// Drops the day partitions that lie entirely before `now - retention_days`;
    /// returns how many were dropped. Events for those days are not stored again.
    pub fn expire(&self, now: DateTime<Utc>) -> Result<usize, HistoryError> {
        let shared = &self.shared;
        shared.check_poisoned()?;
        let mut committer = shared.lock(&shared.commit);
        let cutoff = now.timestamp() - i64::from(shared.options.retention_days) * SECONDS_PER_DAY;
        let first_kept_day = day_of(cutoff);
        let doomed: Vec<i32> = shared
            .read_state()
            .partitions
            .range(..first_kept_day)
            .map(|(&day, _)| day)
            .collect();
        let horizon = committer
            .manifest
            .expired_before_day
            .map_or(first_kept_day, |day| day.max(first_kept_day));
        if doomed.is_empty() && committer.manifest.expired_before_day == Some(horizon) {
            return Ok(0);
        }
        shared.guarded(|| {
            let mut manifest = committer.manifest.clone();
            manifest
                .segments
                .retain(|entry| entry.day >= first_kept_day);
            manifest.expired_before_day = Some(horizon);
            manifest.store(&shared.dir)?;
            committer.manifest = manifest;
            let removed: Vec<_> = {
                let mut state = shared.write_state();
                state.expired_before_day = Some(horizon);
                doomed
                    .iter()
                    .filter_map(|day| state.partitions.remove(day))
                    .flatten()
                    .collect()
            };
            for segment in &removed {
                shared.cache.forget_segment(segment.id());
                shared.files.forget(segment.id());
            }
            for &day in &doomed {
                // Out of the manifest already: a directory left behind is removed at
                // the next open and must not stop the store.
                let partition = partition_dir(&shared.dir, day);
                if let Err(error) = remove_dir(&partition) {
                    tracing::warn!(%error, "could not remove an expired event history partition");
                }
            }
            shared.drop_unused_dictionaries(&mut committer)
        })?;
        tracing::info!(
            partitions = doomed.len(),
            before_day = first_kept_day,
            "expired event history partitions"
        );
        Ok(doomed.len())
    }
}
