//! Sends the notification for each delivered log file to every subscriber of the trail's
//! topic, on background tasks, retrying each subscriber; reports one outcome per log file.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opentrail_model::{Clock, SystemClock};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::message::{log_file_message, NotificationEnvelope};
use crate::retry::{AttemptError, RetryPolicy};
use crate::sns_publish::publish;
use crate::topic::SnsTarget;
use crate::webhook::WebhookRequest;
use crate::{Endpoint, Subscription, TopicRegistry};

/// What became of the notification for one log file, for `GetTrailStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// Every subscriber took it (a topic without subscribers counts, as an SNS publish
    /// does): `LatestNotificationTime` = `LatestNotificationAttemptTime` =
    /// `LatestNotificationAttemptSucceeded` = `at`; `LatestNotificationError` clears.
    Delivered {
        trail_arn: String,
        topic_arn: String,
        at: DateTime<Utc>,
    },
    /// The topic is gone, the queue was full, or a subscriber still failed after its
    /// retries: `LatestNotificationAttemptTime` = `attempted_at`,
    /// `LatestNotificationError` = `error` (one line, no secrets).
    Failed {
        trail_arn: String,
        topic_arn: String,
        attempted_at: DateTime<Utc>,
        error: String,
    },
}

/// Receives every outcome, on a notifier task: keep it quick.
pub type OutcomeReport = Arc<dyn Fn(NotificationOutcome) + Send + Sync>;

/// How much the notifier holds and sends at once, and how it retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifierConfig {
    pub retry: RetryPolicy,
    /// Notifications waiting to be sent; beyond this they fail at once (delivery never waits).
    pub queue_capacity: usize,
    /// Log files whose notifications are in flight at the same time.
    pub max_concurrent: usize,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            retry: RetryPolicy::default(),
            queue_capacity: 10_000,
            max_concurrent: 16,
        }
    }
}

struct LogFileDelivered {
    trail_arn: String,
    topic_arn: String,
    bucket: String,
    key: String,
}

struct Shared {
    registry: Arc<TopicRegistry>,
    http: reqwest::Client,
    report: OutcomeReport,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

/// Sends notifications with retries on background tasks and reports their outcomes.
/// Create it inside a Tokio runtime. Give it an HTTP client that does not follow
/// redirects (`reqwest::redirect::Policy::none()`): a redirected POST becomes a GET.
pub struct Notifier {
    queue: mpsc::Sender<LogFileDelivered>,
    shared: Arc<Shared>,
    dispatcher: JoinHandle<()>,
}

impl Notifier {
    pub fn new(registry: Arc<TopicRegistry>, http: reqwest::Client, report: OutcomeReport) -> Self {
        Notifier::with_config(
            registry,
            http,
            report,
            NotifierConfig::default(),
            Arc::new(SystemClock),
        )
    }

    pub fn with_config(
        registry: Arc<TopicRegistry>,
        http: reqwest::Client,
        report: OutcomeReport,
        config: NotifierConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let shared = Arc::new(Shared {
            registry,
            http,
            report,
            retry: config.retry,
            clock,
        });
        let (queue, received) = mpsc::channel(config.queue_capacity.max(1));
        let dispatcher = tokio::spawn(dispatch(
            received,
            Arc::clone(&shared),
            config.max_concurrent.max(1),
        ));
        Notifier {
            queue,
            shared,
            dispatcher,
        }
    }

    /// Queues the notification for one delivered log file; never blocks delivery. When
    /// the queue is full the notification is dropped and reported as failed.
    pub fn log_file_delivered(&self, trail_arn: &str, topic_arn: &str, bucket: &str, key: &str) {
        let job = LogFileDelivered {
            trail_arn: trail_arn.to_owned(),
            topic_arn: topic_arn.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        let Err(error) = self.queue.try_send(job) else {
            return;
        };
        let reason = match error {
            mpsc::error::TrySendError::Full(_) => "notification queue is full",
            mpsc::error::TrySendError::Closed(_) => "notifier has stopped",
        };
        tracing::warn!(trail = %trail_arn, topic = %topic_arn, bucket, key, reason, "dropped log file notification");
        (self.shared.report)(NotificationOutcome::Failed {
            trail_arn: trail_arn.to_owned(),
            topic_arn: topic_arn.to_owned(),
            attempted_at: self.shared.clock.now(),
            error: format!("{reason}: notification for s3://{bucket}/{key} dropped"),
        });
    }

    /// Stops taking notifications and waits until every queued one has been sent (retries
    /// included) and reported. Dropping the notifier instead lets them finish unobserved.
    pub async fn shutdown(self) {
        drop(self.queue);
        if let Err(error) = self.dispatcher.await {
            tracing::error!(%error, "notification dispatcher failed");
        }
    }
}

async fn dispatch(
    mut received: mpsc::Receiver<LogFileDelivered>,
    shared: Arc<Shared>,
    max_concurrent: usize,
) {
    let limit = Arc::new(Semaphore::new(max_concurrent));
    let mut running = JoinSet::new();
    while let Some(job) = received.recv().await {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            break;
        };
        let shared = Arc::clone(&shared);
        running.spawn(async move {
            let outcome = shared.notify(&job).await;
            (shared.report)(outcome);
            drop(permit);
        });
        while let Some(finished) = running.try_join_next() {
            log_panic(finished);
        }
    }
    while let Some(finished) = running.join_next().await {
        log_panic(finished);
    }
}

fn log_panic(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        tracing::error!(%error, "notification task failed");
    }
}

impl Shared {
    async fn notify(self: &Arc<Self>, job: &LogFileDelivered) -> NotificationOutcome {
        let registry = Arc::clone(&self.registry);
        let topic_arn = job.topic_arn.clone();
        // The registry stats (and may re-read) its file: off the async workers.
        let topic = tokio::task::spawn_blocking(move || registry.topic(&topic_arn))
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "topic lookup task failed");
                None
            });
        let Some(topic) = topic else {
            return self.failed(job, format!("topic {} does not exist", job.topic_arn));
        };

        let message = Arc::new(log_file_message(&job.bucket, &[&job.key]));
        let message_id = Arc::new(uuid::Uuid::new_v4().to_string());
        let published_at = self.clock.now();
        let mut sends = JoinSet::new();
        for subscription in topic.subscriptions {
            let shared = Arc::clone(self);
            let message = Arc::clone(&message);
            let message_id = Arc::clone(&message_id);
            sends.spawn(async move {
                shared
                    .send_with_retries(&subscription, &message, &message_id, published_at)
                    .await
            });
        }
        let mut errors = Vec::new();
        while let Some(sent) = sends.join_next().await {
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(error)) => errors.push(error),
                Err(error) => errors.push(format!("notification task failed: {error}")),
            }
        }
        if !errors.is_empty() {
            errors.sort();
            return self.failed(job, errors.join("; "));
        }
        tracing::debug!(trail = %job.trail_arn, topic = %job.topic_arn, key = %job.key, "log file notification sent");
        NotificationOutcome::Delivered {
            trail_arn: job.trail_arn.clone(),
            topic_arn: job.topic_arn.clone(),
            at: self.clock.now(),
        }
    }

    fn failed(&self, job: &LogFileDelivered, error: String) -> NotificationOutcome {
        tracing::warn!(trail = %job.trail_arn, topic = %job.topic_arn, key = %job.key, %error, "log file notification failed");
        NotificationOutcome::Failed {
            trail_arn: job.trail_arn.clone(),
            topic_arn: job.topic_arn.clone(),
            attempted_at: self.clock.now(),
            error,
        }
    }

    /// Sends to one subscriber until it succeeds, fails permanently or runs out of
    /// attempts; the error names the subscriber and the last failure.
    async fn send_with_retries(
        &self,
        subscription: &Subscription,
        message: &str,
        message_id: &str,
        published_at: DateTime<Utc>,
    ) -> Result<(), String> {
        let sender = match &subscription.endpoint {
            Endpoint::Webhook {
                url,
                secret,
                allow_private_targets,
            } => {
                let envelope = NotificationEnvelope::new(
                    secret.as_bytes(),
                    message_id,
                    &subscription.topic_arn,
                    message,
                    published_at,
                );
                let request = WebhookRequest::new(
                    url,
                    secret,
                    message_id,
                    &subscription.topic_arn,
                    &subscription.arn,
                    envelope.to_json(),
                )
                .map_err(|e| describe_failure(subscription, &e, 1))?;
                // Checked again now (DNS may have changed), and sent to exactly the
                // addresses checked.
                let pinned = if *allow_private_targets {
                    None
                } else {
                    pinned_client(url)
                        .await
                        .map_err(|e| describe_failure(subscription, &e, 1))?
                };
                Sender::Webhook(request, pinned)
            }
            Endpoint::Sns(target) => Sender::Sns(target),
        };
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let timeout = self.retry.request_timeout;
            let result = match &sender {
                Sender::Webhook(request, pinned) => {
                    request.send(pinned.as_ref().unwrap_or(&self.http), timeout).await
                }
                // SigV4 needs the real time (servers reject skew), not the domain clock.
                Sender::Sns(target) => {
                    publish(&self.http, timeout, target, message, Utc::now())
                        .await
                        .map(|message_id| {
                            tracing::debug!(subscription = %subscription.arn, %message_id, "published to SNS");
                        })
                }
            };
            let Err(error) = result else {
                return Ok(());
            };
            if !error.retryable || attempt >= max_attempts {
                return Err(describe_failure(subscription, &error, attempt));
            }
            let delay = self.retry.delay(attempt);
            tracing::info!(subscription = %subscription.arn, attempt, error = %error.message, retry_in_ms = delay.as_millis() as u64, "notification attempt failed");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// How one subscriber is sent to; a webhook request is built once and resent unchanged.
enum Sender<'a> {
    /// With its own client when the host name's checked addresses are pinned.
    Webhook(WebhookRequest, Option<reqwest::Client>),
    Sns(&'a SnsTarget),
}

/// A client that connects `url`'s host name only to the public addresses it resolves to
/// now; `None` for an IP literal (checked, nothing to pin). A non-public address is a
/// permanent failure.
async fn pinned_client(url: &str) -> Result<Option<reqwest::Client>, AttemptError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| AttemptError::permanent(e.to_string()))?;
    let resolved = crate::targets::resolve_public(&parsed)
        .await
        .map_err(AttemptError::permanent)?;
    let Some((host, addresses)) = resolved else {
        return Ok(None);
    };
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&host, &addresses)
        .build()
        .map(Some)
        .map_err(|e| AttemptError::permanent(format!("webhook client: {e}")))
}

fn describe_failure(subscription: &Subscription, error: &AttemptError, attempt: u32) -> String {
    let tries = if error.retryable {
        format!("gave up after {attempt} attempts")
    } else {
        format!("not retryable, attempt {attempt}")
    };
    format!(
        "{} ({}): {} ({tries})",
        subscription.endpoint.describe(),
        subscription.arn,
        error.message
    )
}
