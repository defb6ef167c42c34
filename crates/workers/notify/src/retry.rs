//! How often and how patiently one subscriber is tried: capped exponential backoff over
//! a fixed number of attempts, and which failures are worth another attempt.

use std::time::Duration;

/// Attempts per subscriber and the waits between them: `initial_delay`, doubling, at
/// most `max_delay`. The defaults (5 attempts, 1 s to 20 s, ~35 s in all) follow the
/// spirit of SNS's HTTP delivery policy without holding a notification for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// Limit for one HTTP request, connecting included.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// Why one attempt failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttemptError {
    pub(crate) retryable: bool,
    pub(crate) message: String,
}

impl AttemptError {
    pub(crate) fn retryable(message: String) -> Self {
        AttemptError {
            retryable: true,
            message,
        }
    }

    pub(crate) fn permanent(message: String) -> Self {
        AttemptError {
            retryable: false,
            message,
        }
    }
}

/// Timeouts, throttling and server errors pass; other client errors (a wrong URL, a
/// rejected signature) will fail the same way again.
pub(crate) fn status_is_retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

/// A transport failure without the URL (its query may hold a token), with its causes.
pub(crate) fn describe_transport_error(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let error = error.without_url();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Text from a remote server, cut to a length that fits in a status field.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let secs: Vec<u64> = (1..=7).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 20, 20]);
        assert_eq!(policy.delay(u32::MAX), policy.max_delay);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for (status, retry) in [
            (500, true),
            (503, true),
            (429, true),
            (408, true),
            (404, false),
            (403, false),
            (400, false),
        ] {
            let status = reqwest::StatusCode::from_u16(status).unwrap();
            assert_eq!(status_is_retryable(status), retry, "{status}");
        }
    }

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate(" short ", 10), "short");
        assert_eq!(truncate("ééééé", 3), "ééé...");
    }
}
