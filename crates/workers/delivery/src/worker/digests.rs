//! Digests: sign every window that has ended (catching up window by window after
//! downtime), then write signed digests oldest first per chain, retrying with backoff.
//! A multi-region trail has a chain in every region it covers, so a window's end makes
//! dozens of digests at once: they are signed and recorded in batches (one metadata
//! transaction each), written a few at a time concurrently, and a trail's delivery status
//! is updated once per batch; a step signs a bounded number, so a long catch-up never
//! holds up log files.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use opentrail_model::TrailArn;
use tracing::warn;

use super::log_files::put_with_timeout;
use super::{chrono_duration, lock, on_blocking_pool, DeliveryWorker};
use crate::chain::{PendingDigest, WindowToClose};
use crate::digest::{build_digest, sign_digest, DigestInput};
use crate::directory::DeliveryOutcome;
use crate::error::{s3_error_code, DeliveryError};
use crate::log_file::gzip_single_member;

/// Windows signed per step at most; the rest wait for the next step.
const MAX_WINDOWS_SIGNED_PER_STEP: usize = 256;
/// Windows signed and recorded together (one metadata transaction).
const SIGNING_BATCH: usize = 64;
/// Digests written to the object store at once.
const CONCURRENT_DIGEST_WRITES: usize = 8;

/// What one pass of digest writes did for a trail: reported once, not per region.
struct TrailDigestOutcome {
    trail: TrailArn,
    /// When the last of its digests was written in the pass.
    delivered: Option<DateTime<Utc>>,
    /// The error of its failed write.
    error: Option<String>,
}

impl DeliveryWorker {
    pub(super) async fn write_digests(&mut self) -> Result<(), DeliveryError> {
        let interval = chrono_duration(self.config.digest_interval);
        let mut signed = 0;
        while signed < MAX_WINDOWS_SIGNED_PER_STEP {
            let now = self.deps.clock.now();
            let limit = SIGNING_BATCH.min(MAX_WINDOWS_SIGNED_PER_STEP - signed);
            let windows = lock(&self.chains).due_windows(now, interval, limit);
            if windows.is_empty() {
                break;
            }
            signed += windows.len();
            self.sign_windows(windows).await?;
        }
        self.write_pending_digests().await
    }

    /// Signs each window with its region's current key and makes it its chain's newest
    /// digest, durably (one transaction), before anything is written.
    pub(super) async fn sign_windows(
        &mut self,
        windows: Vec<WindowToClose>,
    ) -> Result<(), DeliveryError> {
        if windows.is_empty() {
            return Ok(());
        }
        let keys = Arc::clone(&self.deps.keys);
        let now = self.deps.clock.now();
        let signed = tokio::task::spawn_blocking(move || {
            windows
                .into_iter()
                .map(|window| {
                    let key = keys.signing_key(&window.lane.region, now)?;
                    let input = DigestInput {
                        account: window.account.as_str(),
                        bucket: &window.bucket,
                        key: &window.key,
                        start: window.start,
                        end: window.end,
                        previous: window.previous.as_ref(),
                        log_files: &window.log_files,
                    };
                    let digest = build_digest(&input, key.fingerprint());
                    let signed = sign_digest(&digest, &key);
                    Ok::<_, DeliveryError>((window, signed))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| DeliveryError::Task(e.to_string()))??;
        on_blocking_pool(&self.chains, move |chains| chains.windows_signed(signed)).await
    }

    /// Writes pending digests, oldest first per chain, a few at once; a trail whose write
    /// fails is not tried again in this pass (one pass is one backoff step).
    async fn write_pending_digests(&mut self) -> Result<(), DeliveryError> {
        let mut failed = HashSet::new();
        loop {
            let now = self.deps.clock.now();
            let batch: Vec<PendingDigest> = lock(&self.chains)
                .pending()
                .into_iter()
                .filter(|pending| {
                    let trail = pending.trail.to_string();
                    !failed.contains(&trail)
                        && self
                            .digest_backoff
                            .get(&trail)
                            .is_none_or(|backoff| backoff.may_attempt(now))
                })
                .take(CONCURRENT_DIGEST_WRITES)
                .collect();
            if batch.is_empty() {
                return Ok(());
            }
            let puts = batch.iter().map(|pending| {
                let digest = &pending.digest;
                let body = Bytes::from(gzip_single_member(digest.json.as_bytes()));
                put_with_timeout(
                    Arc::clone(&self.deps.store),
                    self.config.attempt_timeout,
                    (
                        digest.bucket.clone(),
                        digest.key.clone(),
                        body,
                        digest.metadata(),
                    ),
                )
            });
            let results = futures_util::future::join_all(puts).await;
            let attempted_at = self.deps.clock.now();
            let mut written = Vec::new();
            let mut outcomes: BTreeMap<String, TrailDigestOutcome> = BTreeMap::new();
            for (pending, result) in batch.into_iter().zip(results) {
                let trail_key = pending.trail.to_string();
                let outcome =
                    outcomes
                        .entry(trail_key.clone())
                        .or_insert_with(|| TrailDigestOutcome {
                            trail: pending.trail.clone(),
                            delivered: None,
                            error: None,
                        });
                match result {
                    Ok(()) => {
                        self.stats.digests_written += 1;
                        if let Some(backoff) = self.digest_backoff.get_mut(&trail_key) {
                            backoff.record_success();
                        }
                        outcome.delivered = Some(attempted_at);
                        written.push((pending.chain, pending.digest.key));
                    }
                    Err(failure) => {
                        let digest = &pending.digest;
                        warn!(trail = %pending.trail, bucket = %digest.bucket, key = %digest.key, error = %failure, "failed to deliver digest file");
                        self.stats.digest_failures += 1;
                        if failed.insert(trail_key.clone()) {
                            self.digest_backoff
                                .entry(trail_key)
                                .or_default()
                                .record_failure(&self.config.retry, attempted_at);
                        }
                        outcome.error = Some(s3_error_code(&failure).to_owned());
                    }
                }
            }
            // One status update per trail and outcome, not one per region's digest.
            for TrailDigestOutcome {
                trail,
                delivered,
                error,
            } in outcomes.into_values()
            {
                if let Some(at) = delivered {
                    self.deps
                        .directory
                        .record_delivery(&trail, DeliveryOutcome::DigestDelivered { at });
                }
                if let Some(error) = error {
                    self.deps.directory.record_delivery(
                        &trail,
                        DeliveryOutcome::DigestFailed {
                            attempted_at,
                            error,
                        },
                    );
                }
            }
            on_blocking_pool(&self.chains, move |chains| chains.digests_written(&written)).await?;
        }
    }
}
