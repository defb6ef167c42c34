//! Per-account request-rate limits (token buckets), answered with ThrottlingException.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` requests a second on average, with bursts up to `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `account`; false when the account is over its rate.
    pub fn try_acquire(&self, account: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets
            .entry(account.to_owned())
            .or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_each_account_separately() {
        let limiter = RateLimiter::new(2.0, 2.0);
        let t0 = Instant::now();
        assert!(limiter.try_acquire("a", t0));
        assert!(limiter.try_acquire("a", t0));
        assert!(!limiter.try_acquire("a", t0));
        assert!(limiter.try_acquire("b", t0));
        assert!(limiter.try_acquire("a", t0 + Duration::from_millis(500)));
        assert!(!limiter.try_acquire("a", t0 + Duration::from_millis(500)));
    }
}
