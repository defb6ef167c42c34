//! Capped exponential backoff between delivery attempts, measured on the worker's clock.

use chrono::{DateTime, Duration, Utc};

/// How long to wait after consecutive failures: `initial`, doubling, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: std::time::Duration,
    pub max: std::time::Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: std::time::Duration::from_secs(1),
            max: std::time::Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// The wait after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> std::time::Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// Consecutive failures of one destination and when it may be tried again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Backoff {
    failures: u32,
    retry_at: Option<DateTime<Utc>>,
}

impl Backoff {
    pub(crate) fn may_attempt(&self, now: DateTime<Utc>) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    pub(crate) fn record_failure(&mut self, policy: &BackoffPolicy, now: DateTime<Utc>) {
        self.failures = self.failures.saturating_add(1);
        let delay = Duration::from_std(policy.delay(self.failures)).unwrap_or(Duration::MAX);
        self.retry_at = Some(now + delay);
    }

    pub(crate) fn record_success(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn doubles_up_to_the_cap() {
        let policy = BackoffPolicy::default();
        let secs: Vec<u64> = (1..=12).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(policy.delay(u32::MAX).as_secs(), 300);
    }

    #[test]
    fn waits_after_failures_and_resets_on_success() {
        let policy = BackoffPolicy::default();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut backoff = Backoff::default();
        assert!(backoff.may_attempt(t0));
        backoff.record_failure(&policy, t0);
        backoff.record_failure(&policy, t0);
        assert!(!backoff.may_attempt(t0 + Duration::seconds(1)));
        assert!(backoff.may_attempt(t0 + Duration::seconds(2)));
        backoff.record_success();
        assert!(backoff.may_attempt(t0));
    }
}
