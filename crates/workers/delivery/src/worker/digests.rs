//! Digests: sign every window that has ended (catching up hour by hour after downtime),
//! then write signed digests oldest first per chain, retrying with backoff.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use super::log_files::put_with_timeout;
use super::{chrono_duration, lock, on_blocking_pool, DeliveryWorker};
use crate::chain::WindowToClose;
use crate::digest::{build_digest, sign_digest, DigestInput};
use crate::directory::DeliveryOutcome;
use crate::error::{s3_error_code, DeliveryError};
use crate::log_file::gzip_single_member;

impl DeliveryWorker {
    pub(super) async fn write_digests(&mut self) -> Result<(), DeliveryError> {
        let interval = chrono_duration(self.config.digest_interval);
        loop {
            let now = self.deps.clock.now();
            let Some(window) = lock(&self.chains).next_due_window(now, interval) else {
                break;
            };
            self.sign_window(window).await?;
        }
        self.write_pending_digests().await
    }

    /// Signs `window` with its region's current key and makes it the chain's newest
    /// digest, durably, before anything is written.
    pub(super) async fn sign_window(&mut self, window: WindowToClose) -> Result<(), DeliveryError> {
        let keys = Arc::clone(&self.deps.keys);
        let now = self.deps.clock.now();
        let to_sign = window.clone();
        let signed = tokio::task::spawn_blocking(move || {
            let key = keys.signing_key(&to_sign.lane.region, now)?;
            let input = DigestInput {
                account: to_sign.account.as_str(),
                bucket: &to_sign.bucket,
                key: &to_sign.key,
                start: to_sign.start,
                end: to_sign.end,
                previous: to_sign.previous.as_ref(),
                log_files: &to_sign.log_files,
            };
            let digest = build_digest(&input, key.fingerprint());
            Ok::<_, DeliveryError>(sign_digest(&digest, &key))
        })
        .await
        .map_err(|e| DeliveryError::Task(e.to_string()))??;
        on_blocking_pool(&self.chains, move |chains| {
            chains.window_signed(&window, signed)
        })
        .await
    }

    /// Writes pending digests, oldest first per chain; a trail whose write fails is not
    /// tried again in this pass (one pass is one backoff step).
    async fn write_pending_digests(&mut self) -> Result<(), DeliveryError> {
        let mut failed = HashSet::new();
        loop {
            let now = self.deps.clock.now();
            let next = lock(&self.chains).pending().into_iter().find(|pending| {
                let trail = pending.trail.to_string();
                !failed.contains(&trail)
                    && self
                        .digest_backoff
                        .get(&trail)
                        .is_none_or(|backoff| backoff.may_attempt(now))
            });
            let Some(pending) = next else {
                return Ok(());
            };
            let digest = &pending.digest;
            let body = Bytes::from(gzip_single_member(digest.json.as_bytes()));
            let result = put_with_timeout(
                Arc::clone(&self.deps.store),
                self.config.attempt_timeout,
                (
                    digest.bucket.clone(),
                    digest.key.clone(),
                    body,
                    digest.metadata(),
                ),
            )
            .await;
            let trail_key = pending.trail.to_string();
            let attempted_at = self.deps.clock.now();
            match result {
                Ok(()) => {
                    self.stats.digests_written += 1;
                    if let Some(backoff) = self.digest_backoff.get_mut(&trail_key) {
                        backoff.record_success();
                    }
                    self.deps.directory.record_delivery(
                        &pending.trail,
                        DeliveryOutcome::DigestDelivered { at: attempted_at },
                    );
                    let (chain, key) = (pending.chain.clone(), digest.key.clone());
                    on_blocking_pool(&self.chains, move |chains| {
                        chains.digest_written(&chain, &key)
                    })
                    .await?;
                }
                Err(failure) => {
                    warn!(trail = %pending.trail, bucket = %digest.bucket, key = %digest.key, error = %failure, "failed to deliver digest file");
                    self.stats.digest_failures += 1;
                    failed.insert(trail_key.clone());
                    self.digest_backoff
                        .entry(trail_key)
                        .or_default()
                        .record_failure(&self.config.retry, attempted_at);
                    self.deps.directory.record_delivery(
                        &pending.trail,
                        DeliveryOutcome::DigestFailed {
                            attempted_at,
                            error: s3_error_code(&failure).to_owned(),
                        },
                    );
                }
            }
        }
    }
}
