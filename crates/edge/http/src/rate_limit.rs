//! Per-key rate limits (token buckets): LookupEvents calls per account (answered with
//! ThrottlingException) and self-audit records of unauthenticated requests per source
//! address. The table of buckets is bounded: when it is full, buckets that have refilled
//! are forgotten, and keys that still find no room share one overflow bucket.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// The default bound on the number of keys a limiter tracks.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// The bucket shared by keys that find the table full.
const OVERFLOW_KEY: &str = "";

impl RateLimiter {
    /// `per_second` requests a second on average, with bursts up to `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self::with_max_keys(per_second, burst, DEFAULT_MAX_KEYS)
    }

    /// A limiter that tracks at most `max_keys` keys (plus the overflow bucket).
    pub fn with_max_keys(per_second: f64, burst: f64, max_keys: usize) -> Self {
        Self {
            per_second,
            burst: burst.max(1.0),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `account`; false when the account is over its rate.
    pub fn try_acquire(&self, account: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = account;
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            // A bucket that has refilled is the same as no bucket: forget those.
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|name, (tokens, last)| {
                let refill = now.saturating_duration_since(*last).as_secs_f64() * per_second;
                name == OVERFLOW_KEY || *tokens + refill < burst
            });
            if buckets.len() >= self.max_keys {
                key = OVERFLOW_KEY;
            }
        }
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
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

    #[test]
    fn the_table_is_bounded_and_refilled_buckets_are_forgotten() {
        let limiter = RateLimiter::with_max_keys(1.0, 1.0, 2);
        let t0 = Instant::now();
        assert!(limiter.try_acquire("a", t0));
        assert!(limiter.try_acquire("b", t0));
        // Full: "c" and "d" share the overflow bucket.
        assert!(limiter.try_acquire("c", t0));
        assert!(!limiter.try_acquire("d", t0));
        assert!(limiter.buckets.lock().unwrap().len() <= 3);
        // Once a and b have refilled they are forgotten and new keys get their own bucket.
        let later = t0 + Duration::from_secs(5);
        assert!(limiter.try_acquire("e", later));
        assert!(limiter.try_acquire("f", later));
        assert!(limiter.buckets.lock().unwrap().len() <= 3);
    }
}
