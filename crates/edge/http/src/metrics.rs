//! Prometheus text metrics: requests by operation and outcome, and a latency histogram.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BUCKETS_SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_SECONDS.len()],
    count: u64,
    sum: f64,
}

/// Self-audit records not written, by reason; shared with the audit sink.
#[derive(Default)]
pub struct AuditDrops(Mutex<BTreeMap<&'static str, u64>>);

impl AuditDrops {
    pub fn count(&self, reason: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }
}

#[derive(Default)]
pub struct Metrics {
    /// Keyed by static names only (the known calls, `unknown`, AWS error codes), so
    /// no request can add a label value.
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    audit_drops: Arc<AuditDrops>,
}

impl Metrics {
    /// `outcome` is `success` or the error code.
    pub fn observe(&self, operation: &'static str, outcome: &'static str, elapsed: Duration) {
        {
            let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            *requests.entry((operation, outcome)).or_default() += 1;
        }
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = latency.entry(operation).or_default();
        for (slot, bound) in histogram.counts.iter_mut().zip(BUCKETS_SECONDS) {
            if seconds <= bound {
                *slot += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The counter of `opentrail_audit_records_dropped_total`, for the audit sink.
    pub fn audit_drops(&self) -> Arc<AuditDrops> {
        Arc::clone(&self.audit_drops)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP opentrail_audit_records_dropped_total Self-audit records not written, by reason.\n");
        out.push_str("# TYPE opentrail_audit_records_dropped_total counter\n");
        for (reason, count) in self
            .audit_drops
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "opentrail_audit_records_dropped_total{{reason=\"{reason}\"}} {count}"
            );
        }
        out.push_str("# HELP opentrail_requests_total API requests by operation and outcome.\n");
        out.push_str("# TYPE opentrail_requests_total counter\n");
        for ((operation, outcome), count) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "opentrail_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP opentrail_request_duration_seconds API request latency.\n");
        out.push_str("# TYPE opentrail_request_duration_seconds histogram\n");
        for (operation, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (bound, count) in BUCKETS_SECONDS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "opentrail_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "opentrail_request_duration_seconds_bucket{{operation=\"{operation}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "opentrail_request_duration_seconds_sum{{operation=\"{operation}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "opentrail_request_duration_seconds_count{{operation=\"{operation}\"}} {}",
                h.count
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("CreateTrail", "success", Duration::from_millis(3));
        m.observe(
            "CreateTrail",
            "TrailAlreadyExistsException",
            Duration::from_millis(30),
        );
        let text = m.render();
        assert!(text
            .contains("opentrail_requests_total{operation=\"CreateTrail\",outcome=\"success\"} 1"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(
            text.contains("opentrail_request_duration_seconds_count{operation=\"CreateTrail\"} 2")
        );
    }
}
