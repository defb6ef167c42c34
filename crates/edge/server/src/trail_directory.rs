//! The delivery worker's view of the trails: which trails log where, and where delivery
//! outcomes go (GetTrailStatus).

use opentrail_delivery::{DeliveryOutcome, TrailDirectory, TrailTarget};
use opentrail_model::TrailArn;
use opentrail_notify::{NotificationOutcome, Notifier};
use opentrail_trails::{TrailRecord, TrailService, TrailStatus};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Each trail's incarnation (`TrailRecord::incarnation`) as of the last read of the trails,
/// by ARN: an outcome is recorded on the incarnation current when it was reported, so a
/// late outcome of a deleted trail never lands on a new trail of the same name.
#[derive(Default)]
pub struct Incarnations(Mutex<HashMap<String, String>>);

impl Incarnations {
    fn get(&self, arn: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .cloned()
    }

    /// Kept for trails that disappear: their last files are still delivered and reported.
    fn update(&self, trails: &[TrailRecord]) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for trail in trails {
            known.insert(trail.arn().to_string(), trail.incarnation.clone());
        }
    }
}

pub struct TrailsDirectory {
    trails: Arc<TrailService>,
    notifier: Arc<Notifier>,
    incarnations: Arc<Incarnations>,
    /// Each trail's SNS topic, as of the last read of the trails.
    topics: Mutex<HashMap<String, String>>,
    /// The last list read successfully: a failed metadata read must not look like
    /// "every trail stopped logging", which would close their digest chains.
    last_good: Mutex<Vec<TrailTarget>>,
}

impl TrailsDirectory {
    pub fn new(
        trails: Arc<TrailService>,
        notifier: Arc<Notifier>,
        incarnations: Arc<Incarnations>,
    ) -> Self {
        Self {
            trails,
            notifier,
            incarnations,
            topics: Mutex::new(HashMap::new()),
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
        insight_types: trail
            .insight_selectors
            .iter()
            .filter_map(|s| s.insight_type.clone())
            .collect(),
        is_logging: trail.status.is_logging,
        // Logging starts at a log position, which is exact where event times (whole
        // seconds, set by producers) are not.
        logging_since: None,
        logging_since_offset: trail.status.logging_since_offset,
    }
}

fn apply(status: &mut TrailStatus, outcome: &DeliveryOutcome) {
    match outcome {
        DeliveryOutcome::LogFileDelivered { at, .. } => {
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
            Ok(trails) => {
                let topics = trails
                    .iter()
                    .filter_map(|t| Some((t.arn().to_string(), t.sns_topic_arn.clone()?)))
                    .collect();
                *self.topics.lock().unwrap_or_else(|e| e.into_inner()) = topics;
                self.incarnations.update(&trails);
                *last_good = trails.into_iter().map(target).collect();
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to read trails for delivery; using the last list")
            }
        }
        last_good.clone()
    }

    fn record_delivery(&self, trail: &TrailArn, outcome: DeliveryOutcome) {
        if let DeliveryOutcome::LogFileDelivered { bucket, key, .. } = &outcome {
            let arn = trail.to_string();
            let topic = self
                .topics
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&arn)
                .cloned();
            if let Some(topic) = topic {
                self.notifier.log_file_delivered(&arn, &topic, bucket, key);
            }
        }
        let Some(incarnation) = self.incarnations.get(&trail.to_string()) else {
            return;
        };
        let (trails, arn) = (Arc::clone(&self.trails), trail.clone());
        tokio::spawn(async move {
            let updated = trails
                .update_status(&arn, &incarnation, |status| apply(status, &outcome))
                .await;
            if let Err(e) = updated {
                tracing::warn!(trail = %arn, error = %e, "failed to record delivery status");
            }
        });
    }
}

fn apply_notification(status: &mut TrailStatus, outcome: &NotificationOutcome) {
    match outcome {
        NotificationOutcome::Delivered { at, .. } => {
            status.latest_notification_time = Some(*at);
            status.latest_notification_attempt_time = Some(*at);
            status.latest_notification_attempt_succeeded = Some(*at);
            status.latest_notification_error = None;
        }
        NotificationOutcome::Failed {
            attempted_at,
            error,
            ..
        } => {
            status.latest_notification_attempt_time = Some(*attempted_at);
            status.latest_notification_error = Some(error.clone());
        }
    }
}

/// Records a notification outcome in the trail's status (GetTrailStatus).
pub fn record_notification(
    trails: &Arc<TrailService>,
    incarnations: &Incarnations,
    outcome: NotificationOutcome,
) {
    let (NotificationOutcome::Delivered { trail_arn, .. }
    | NotificationOutcome::Failed { trail_arn, .. }) = &outcome;
    let Ok(arn) = TrailArn::parse(trail_arn) else {
        return;
    };
    let Some(incarnation) = incarnations.get(trail_arn) else {
        return;
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let trails = Arc::clone(trails);
    handle.spawn(async move {
        let updated = trails
            .update_status(&arn, &incarnation, |status| {
                apply_notification(status, &outcome)
            })
            .await;
        if let Err(e) = updated {
            tracing::warn!(trail = %arn, error = %e, "failed to record notification status");
        }
    });
}
