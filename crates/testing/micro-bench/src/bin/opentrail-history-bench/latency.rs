//! Timing lookups: per-kind latency percentiles, sequential and concurrent throughput,
//! and paging throughput.

use crate::workload::QuerySpec;
use chrono::{DateTime, Utc};
use opentrail_history::{HistoryStore, LookupRequest};
use opentrail_operations::LookupEventsRequest;
use opentrail_wire::AwsError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub events: usize,
}

pub fn summarize(mut millis: Vec<f64>, events: usize) -> Summary {
    if millis.is_empty() {
        return Summary::default();
    }
    millis.sort_by(f64::total_cmp);
    let at = |quantile: f64| millis[((millis.len() - 1) as f64 * quantile).round() as usize];
    Summary {
        count: millis.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        mean_ms: millis.iter().sum::<f64>() / millis.len() as f64,
        events,
    }
}

fn request(spec: &QuerySpec, now: DateTime<Utc>, input: LookupEventsRequest) -> LookupRequest {
    LookupRequest {
        account: spec.account.clone(),
        region: spec.region.clone(),
        now,
        input,
    }
}

/// Runs one lookup and serialises the response as the server would; returns the
/// number of events and the elapsed time.
fn timed_lookup(
    store: &HistoryStore,
    request: &LookupRequest,
) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let response = store
        .lookup(request)
        .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
    let body = serde_json::to_vec(&response)?;
    let elapsed = started.elapsed();
    std::hint::black_box(body);
    Ok((response.events.as_ref().map_or(0, Vec::len), elapsed))
}

/// Latency per query kind, queries run one after another.
pub fn per_kind(
    store: &HistoryStore,
    specs: &[QuerySpec],
    now: DateTime<Utc>,
) -> anyhow::Result<BTreeMap<String, Summary>> {
    let mut samples: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for spec in specs {
        let (events, elapsed) = timed_lookup(store, &request(spec, now, spec.input()))?;
        let entry = samples.entry(spec.kind.clone()).or_default();
        entry.0.push(elapsed.as_secs_f64() * 1000.0);
        entry.1 += events;
    }
    Ok(samples
        .into_iter()
        .map(|(kind, (millis, events))| (kind, summarize(millis, events)))
        .collect())
}

/// Requests per second with `threads` clients sharing the store.
pub fn throughput(
    store: &HistoryStore,
    specs: &[QuerySpec],
    now: DateTime<Utc>,
    threads: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let per_thread = specs.len().div_ceil(threads.max(1));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = specs
            .chunks(per_thread.max(1))
            .map(|chunk| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for spec in chunk {
                        timed_lookup(store, &request(spec, now, spec.input()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("lookup thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(specs.len() as f64 / started.elapsed().as_secs_f64())
}

/// Follows NextToken from `spec` until `limit` events or the end; returns
/// (events, pages, seconds).
pub fn page_through(
    store: &HistoryStore,
    spec: &QuerySpec,
    now: DateTime<Utc>,
    limit: usize,
) -> anyhow::Result<(usize, usize, f64)> {
    let mut input = spec.input();
    input.max_results = Some(50);
    let started = Instant::now();
    let (mut events, mut pages) = (0, 0);
    loop {
        let response = store
            .lookup(&request(spec, now, input.clone()))
            .map_err(|error| anyhow::anyhow!("{}: {error}", error.code()))?;
        std::hint::black_box(serde_json::to_vec(&response)?);
        events += response.events.as_ref().map_or(0, Vec::len);
        pages += 1;
        match response.next_token {
            Some(token) if events < limit => input.next_token = Some(token),
            _ => break,
        }
    }
    Ok((events, pages, started.elapsed().as_secs_f64()))
}
