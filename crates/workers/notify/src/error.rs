//! Failures of topic and subscription management. Failures to deliver a notification are
//! not errors of the caller: they are retried and reported as
//! [`crate::NotificationOutcome::Failed`].

/// One variant per thing an admin command or the control plane can get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Not 1-256 of `[A-Za-z0-9_-]`; CloudTrail answers `InvalidSnsTopicNameException`.
    #[error("invalid topic name {0:?}: use 1-256 ASCII letters, digits, hyphens and underscores")]
    InvalidTopicName(String),
    /// A malformed account id, region, ARN, URL or secret.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("topic {0} does not exist")]
    TopicNotFound(String),
    #[error("subscription {0} does not exist")]
    SubscriptionNotFound(String),
    /// The topic registry file could not be read or written.
    #[error("topic registry {path}: {reason}")]
    Storage { path: String, reason: String },
}
