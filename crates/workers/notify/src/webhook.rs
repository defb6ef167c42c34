//! One POST of a notification envelope to an HTTP(S) webhook, with the SNS headers and
//! the body's HMAC signature.

use std::time::Duration;

use crate::message::{body_signature, NOTIFICATION_TYPE, SIGNATURE_HEADER};
use crate::retry::{describe_transport_error, status_is_retryable, AttemptError};
use crate::topic::redact_url;

/// SNS sends its notifications as `text/plain; charset=UTF-8` unless told otherwise.
pub(crate) const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
pub(crate) const USER_AGENT: &str = "OpenTrail Notification Agent";

/// A request ready to send, and to send again unchanged on retry (same `MessageId`,
/// timestamp and signature, as SNS resends).
pub(crate) struct WebhookRequest {
    pub(crate) url: String,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl WebhookRequest {
    pub(crate) fn new(
        url: &str,
        secret: &str,
        message_id: &str,
        topic_arn: &str,
        subscription_arn: &str,
        body: String,
    ) -> Result<WebhookRequest, AttemptError> {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let signature = body_signature(secret.as_bytes(), body.as_bytes());
        let pairs = [
            (reqwest::header::CONTENT_TYPE.as_str(), CONTENT_TYPE),
            (reqwest::header::USER_AGENT.as_str(), USER_AGENT),
            ("x-amz-sns-message-type", NOTIFICATION_TYPE),
            ("x-amz-sns-message-id", message_id),
            ("x-amz-sns-topic-arn", topic_arn),
            ("x-amz-sns-subscription-arn", subscription_arn),
            (SIGNATURE_HEADER, &signature),
        ];
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let value = HeaderValue::from_str(value)
                .map_err(|_| AttemptError::permanent(format!("invalid value for header {name}")))?;
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(WebhookRequest {
            url: url.to_owned(),
            headers,
            body: bytes::Bytes::from(body),
        })
    }

    pub(crate) async fn send(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<(), AttemptError> {
        let response = http
            .post(&self.url)
            .headers(self.headers.clone())
            .body(self.body.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| AttemptError::retryable(describe_transport_error(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("HTTP {status} from {}", redact_url(&self.url));
        if status_is_retryable(status) {
            return Err(AttemptError::retryable(message));
        }
        Err(AttemptError::permanent(message))
    }
}
