//! SNS-style notifications of delivered CloudTrail log files.
//!
//! A trail with `SnsTopicName` names a topic in the [`TopicRegistry`] (documents in the
//! metadata store, edited by admin commands). After each delivered log file the server calls
//! [`Notifier::log_file_delivered`]; the notifier sends CloudTrail's message
//! `{"s3Bucket":"...","s3ObjectKey":["..."]}` to every subscriber of the topic, retrying
//! each, and reports a [`NotificationOutcome`] for `GetTrailStatus`.
//!
//! Subscribers are HTTP(S) webhooks, which receive the SNS HTTP notification envelope
//! ([`NotificationEnvelope`]) signed with an HMAC ([`SIGNATURE_HEADER`]), and topics on
//! SNS-compatible services, published to with the SNS Query API and SigV4. The README
//! documents the wire format for receivers.

mod error;
mod message;
mod notifier;
mod registry;
mod retry;
mod sns_publish;
mod targets;
mod topic;
mod webhook;

pub use error::NotifyError;
pub use message::{
    body_signature, log_file_message, verify_body_signature, NotificationEnvelope,
    NOTIFICATION_TYPE, SIGNATURE_HEADER, SIGNATURE_VERSION,
};
pub use notifier::{NotificationOutcome, Notifier, NotifierConfig, OutcomeReport};
pub use registry::{TopicRegistry, TOPICS};
pub use retry::RetryPolicy;
pub use targets::non_public_reason;
pub use topic::{is_valid_topic_name, Endpoint, SnsTarget, Subscription, Topic};
