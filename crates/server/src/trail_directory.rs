//! The delivery worker's view of the trails: which trails log where, and where delivery
//! outcomes go (GetTrailStatus).

use opentrail_delivery::{DeliveryOutcome, TrailDirectory, TrailTarget};
use opentrail_model::TrailArn;
use opentrail_trails::{TrailRecord, TrailService, TrailStatus};
use std::sync::{Arc, Mutex};

pub struct TrailsDirectory {
    trails: Arc<TrailService>,
    /// The last list read successfully: a failed metadata read must not look like
    /// "every trail stopped logging", which would close their digest chains.
    last_good: Mutex<Vec<TrailTarget>>,
}

impl TrailsDirectory {
    pub fn new(trails: Arc<TrailService>) -> Self {
        Self {
            trails,
            last_good: Mutex::new(Vec::new()),
        }
    }
}

fn target(trail: TrailRecord) -> TrailTarget {
    TrailTarget {
        account: trail.account,
        name: trail.name,
        home_region: trail.home_region,
        is_multi_region: trail.is_multi_region_trail,
        include_global_service_events: trail.include_global_service_events,
        s3_bucket: trail.s3_bucket_name,
        s3_key_prefix: trail.s3_key_prefix,
        selectors: trail.selectors,
        log_file_validation: trail.log_file_validation_enabled,
        is_logging: trail.status.is_logging,
        logging_since: trail.status.start_logging_time,
    }
}

fn apply(status: &mut TrailStatus, outcome: &DeliveryOutcome) {
    match outcome {
        DeliveryOutcome::LogFileDelivered { at } => {
            status.latest_delivery_time = Some(*at);
            status.latest_delivery_attempt_time = Some(*at);
            status.latest_delivery_attempt_succeeded = Some(*at);
            status.latest_delivery_error = None;
        }
        DeliveryOutcome::LogFileFailed {
            attempted_at,
            error,
        } => {
            status.latest_delivery_attempt_time = Some(*attempted_at);
            status.latest_delivery_error = Some(error.clone());
        }
        DeliveryOutcome::DigestDelivered { at } => {
            status.latest_digest_delivery_time = Some(*at);
            status.latest_digest_delivery_error = None;
        }
        DeliveryOutcome::DigestFailed { error, .. } => {
            status.latest_digest_delivery_error = Some(error.clone());
        }
    }
}

impl TrailDirectory for TrailsDirectory {
    fn logging_trails(&self) -> Vec<TrailTarget> {
        let mut last_good = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        match self.trails.all_trails() {
            Ok(trails) => *last_good = trails.into_iter().map(target).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "failed to read trails for delivery; using the last list")
            }
        }
        last_good.clone()
    }

    fn record_delivery(&self, trail: &TrailArn, outcome: DeliveryOutcome) {
        let (trails, arn) = (Arc::clone(&self.trails), trail.clone());
        tokio::spawn(async move {
            let updated = trails
                .update_status(&arn, |status| apply(status, &outcome))
                .await;
            if let Err(e) = updated {
                tracing::warn!(trail = %arn, error = %e, "failed to record delivery status");
            }
        });
    }
}
