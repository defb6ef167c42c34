//! Following the trail directory: trails that start logging get a digest chain in their
//! home region; trails that stop (or turn validation off) get their open files written
//! and their chains closed with a final digest.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use opentrail_model::{Region, TrailArn};
use tracing::warn;

use super::{lock, on_blocking_pool, DeliveryWorker};
use crate::error::DeliveryError;
use crate::routing::TrailTarget;

impl DeliveryWorker {
    /// Routes to trails that just appeared the records they log that the worker already
    /// read: StartLogging fixes a trail's first offset before the trail is saved, and the
    /// worker may have read (and routed without the trail) records after it meanwhile.
    async fn catch_up_started_trails(
        &mut self,
        started: Vec<(TrailArn, TrailTarget)>,
    ) -> Result<(), DeliveryError> {
        let end = self.reader.position();
        let Some(from) = started
            .iter()
            .filter_map(|(_, target)| target.logging_since_offset)
            .filter(|&since| since < end)
            .min()
        else {
            return Ok(());
        };
        let from = from.max(self.deps.log.start_offset());
        let trails = Arc::new(started);
        let mut reader = self.deps.log.reader(from);
        while reader.position() < end {
            let mut records = reader.next_records(self.config.read_batch_records).await?;
            records.retain(|(offset, _)| *offset < end);
            if records.is_empty() {
                break;
            }
            let routed = super::route_parallel(records, Arc::clone(&trails)).await?;
            self.add_routed(routed);
        }
        Ok(())
    }

    /// Closes `trail`'s digest chains (but the one in `keep`) with final digests.
    async fn close_chains(
        &mut self,
        trail: &TrailArn,
        keep: Option<&Region>,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let (trail, keep) = (trail.clone(), keep.cloned());
        self.chains_ensured.remove(&trail.to_string());
        let finals = on_blocking_pool(&self.chains, move |chains| {
            chains.close_chains(&trail, keep.as_ref(), now)
        })
        .await?;
        self.sign_windows(finals).await
    }

    /// Forgets the spooled files of trails that no longer exist (DeleteTrail): they would
    /// wait forever for a bucket nobody delivers to. A trail counts as deleted when it is
    /// missing from a listing that names other trails, or was listed before in this
    /// process (an empty listing alone, as after a failed first read, deletes nothing).
    async fn drop_spool_of_deleted_trails(
        &mut self,
        listed: BTreeSet<String>,
    ) -> Result<(), DeliveryError> {
        let deleted: Vec<String> = lock(&self.spool)
            .trails()
            .into_iter()
            .filter(|trail| !listed.contains(trail))
            .filter(|trail| !listed.is_empty() || self.seen_trails.contains(trail))
            .collect();
        for trail in deleted {
            let key = trail.clone();
            let dropped =
                on_blocking_pool(&self.spool, move |spool| spool.remove_trail(&key)).await?;
            warn!(trail = %trail, files = dropped, "dropped the spooled log files of a deleted trail");
            self.stats.spooled_files_dropped += dropped as u64;
            self.log_backoff.remove(&trail);
        }
        self.seen_trails.extend(listed);
        Ok(())
    }

    pub(super) async fn refresh_trails(&mut self, now: DateTime<Utc>) -> Result<(), DeliveryError> {
        let mut logging = BTreeMap::new();
        let mut listed = BTreeSet::new();
        for target in self.deps.directory.logging_trails() {
            let arn = target.arn();
            listed.insert(arn.to_string());
            if !target.is_logging {
                continue;
            }
            logging.insert(arn.to_string(), (arn, target));
        }

        let mut stopped: Vec<TrailArn> = self
            .trails
            .iter()
            .filter(|(key, _)| !logging.contains_key(*key))
            .map(|(_, (arn, _))| arn.clone())
            .collect();
        let open_chain_trails = lock(&self.chains).open_trails();
        for arn in open_chain_trails {
            let validating = logging
                .get(&arn.to_string())
                .is_some_and(|(_, target)| target.log_file_validation);
            if !validating && !stopped.contains(&arn) {
                stopped.push(arn);
            }
        }
        for arn in &stopped {
            // Validation off on a trail that keeps logging closes its chains only.
            if !logging.contains_key(&arn.to_string()) {
                let batches = self.batcher.take_trail(arn);
                self.write_batches(batches).await?;
            }
            self.close_chains(arn, None, now).await?;
        }
        // A trail that became single-region keeps only its home region's chain.
        for (arn, target) in logging.values() {
            let outside_home = target.log_file_validation
                && !target.is_multi_region
                && lock(&self.chains).has_open_chain_outside(arn, &target.home_region);
            if outside_home {
                self.close_chains(arn, Some(&target.home_region), now)
                    .await?;
            }
        }
        for (key, (_, target)) in &self.trails {
            if !logging.contains_key(key) {
                self.retired.insert(key.clone(), target.clone());
            }
        }
        let started: Vec<(TrailArn, TrailTarget)> = logging
            .iter()
            .filter(|(key, _)| self.trails_listed && !self.trails.contains_key(*key))
            .map(|(_, trail)| trail.clone())
            .collect();
        self.trails = logging;
        self.trails_listed = true;
        self.drop_spool_of_deleted_trails(listed).await?;
        self.catch_up_started_trails(started).await?;
        self.ensure_chains(now).await
    }

    /// Every validating trail has an open chain in each region it covers, from the moment
    /// it logs with validation on (a region without events gets digests with no log
    /// files, as in CloudTrail), pointed at its current bucket and prefix. Only trails
    /// that are new or changed since the last call are looked at.
    async fn ensure_chains(&mut self, now: DateTime<Utc>) -> Result<(), DeliveryError> {
        self.chains_ensured.retain(|key, _| {
            self.trails
                .get(key)
                .is_some_and(|(_, t)| t.log_file_validation)
        });
        let changed: Vec<(TrailArn, TrailTarget, Vec<Region>)> = self
            .trails
            .iter()
            .filter(|(_, (_, target))| target.log_file_validation)
            .filter(|(key, (_, target))| self.chains_ensured.get(*key) != Some(target))
            .map(|(_, (arn, target))| {
                let regions = if target.is_multi_region {
                    self.config
                        .regions
                        .multi_region_trail_regions(&target.home_region)
                } else {
                    vec![target.home_region.clone()]
                };
                (arn.clone(), target.clone(), regions)
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let ensured: Vec<(String, TrailTarget)> = changed
            .iter()
            .map(|(arn, target, _)| (arn.to_string(), target.clone()))
            .collect();
        on_blocking_pool(&self.chains, move |chains| {
            for (arn, target, regions) in changed {
                chains.ensure_trail(&arn, &target, &regions, now)?;
            }
            Ok(())
        })
        .await?;
        self.chains_ensured.extend(ensured);
        Ok(())
    }
}
