//! Runs the Insights engine and a naive fixed-threshold detector over a generated
//! scenario minute by minute (a 1-minute evaluation cadence) and scores both against the
//! injected anomalies.

use crate::generator::{Anomaly, Background, Scenario, Target, MINUTES_PER_DAY};
use chrono::{DateTime, Duration, TimeZone, Utc};
use opentrail_insights::{ApiCall, InsightState, InsightType, InsightsConfig, InsightsEngine};
use opentrail_model::TestClock;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// One detected insight: its series, first minute, and the minutes its Start and End
/// events were emitted (all relative to the scenario's start).
#[derive(Debug, Clone, Copy)]
pub struct Detection {
    pub target: Target,
    pub start: u32,
    pub started_at: u32,
    pub ended_at: Option<u32>,
}

#[derive(Debug, Default, Serialize)]
pub struct Score {
    pub anomalies: usize,
    pub detected: usize,
    pub recall: f64,
    pub insights: usize,
    pub true_insights: usize,
    pub false_insights: usize,
    pub precision: f64,
    /// Minutes from the anomaly's start to its first Start event being emitted.
    pub start_latency_p50: f64,
    pub start_latency_p99: f64,
    pub start_latency_max: f64,
    /// Minutes from the anomaly's end to the End event of the insight covering it.
    pub end_latency_p50: f64,
    pub end_latency_p99: f64,
    pub end_latency_max: f64,
    /// Anomalies that got more than one insight.
    pub fragmented: usize,
    /// False insights by the background of their series.
    pub false_by_background: HashMap<String, usize>,
    pub missed: Vec<String>,
    /// The false insights: series, background and first minute.
    pub false_details: Vec<String>,
}

/// Nearest-rank percentile.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

fn background_name(background: Background) -> &'static str {
    match background {
        Background::Steady => "steady",
        Background::Noisy { .. } => "noisy",
        Background::Ramp { .. } => "ramp",
        Background::New { .. } => "new",
    }
}

pub fn score(scenario: &Scenario, detections: &[Detection]) -> Score {
    let scored_from = scenario.scored_from();
    let scored: Vec<&Anomaly> = scenario
        .anomalies
        .iter()
        .filter(|a| a.start >= scored_from)
        .collect();
    let matches = |detection: &Detection, anomaly: &Anomaly| {
        detection.target == anomaly.target
            && detection.start + 2 >= anomaly.start
            && detection.start <= anomaly.end() + 2
    };
    let mut score = Score {
        anomalies: scored.len(),
        ..Score::default()
    };
    let mut start_latencies = Vec::new();
    let mut end_latencies = Vec::new();
    for anomaly in &scored {
        let found: Vec<&Detection> = detections.iter().filter(|d| matches(d, anomaly)).collect();
        if found.is_empty() {
            score.missed.push(format!("{anomaly:?}"));
            continue;
        }
        score.detected += 1;
        if found.len() > 1 {
            score.fragmented += 1;
        }
        let first = found.iter().map(|d| d.started_at).min().unwrap_or(0);
        start_latencies.push(f64::from(first) - f64::from(anomaly.start));
        if let Some(last_end) = found.iter().filter_map(|d| d.ended_at).max() {
            end_latencies.push(f64::from(last_end) - f64::from(anomaly.end()));
        }
    }
    for detection in detections.iter().filter(|d| d.start >= scored_from) {
        score.insights += 1;
        if scored.iter().any(|anomaly| matches(detection, anomaly)) {
            score.true_insights += 1;
        } else {
            score.false_insights += 1;
            let api = match detection.target {
                Target::CallRate { api } | Target::ErrorRate { api, .. } => api,
            };
            let kind = match detection.target {
                Target::CallRate { .. } => {
                    background_name(scenario.apis[api].background).to_string()
                }
                Target::ErrorRate { .. } => {
                    format!("{}-errors", background_name(scenario.apis[api].background))
                }
            };
            *score.false_by_background.entry(kind).or_default() += 1;
            let api = &scenario.apis[api];
            score.false_details.push(format!(
                "{:?} at minute {} (day {:.2}): rate {:.3}/min, {:?}",
                detection.target,
                detection.start,
                f64::from(detection.start) / f64::from(MINUTES_PER_DAY),
                api.rate,
                api.background
            ));
        }
    }
    score.recall = score.detected as f64 / score.anomalies.max(1) as f64;
    score.precision = score.true_insights as f64 / score.insights.max(1) as f64;
    score.start_latency_p50 = percentile(&mut start_latencies, 50.0);
    score.start_latency_p99 = percentile(&mut start_latencies, 99.0);
    score.start_latency_max = percentile(&mut start_latencies, 100.0);
    score.end_latency_p50 = percentile(&mut end_latencies, 50.0);
    score.end_latency_p99 = percentile(&mut end_latencies, 99.0);
    score.end_latency_max = percentile(&mut end_latencies, 100.0);
    score
}

/// The naive comparison: a minute at or above `multiple ×` the series' mean rate of the
/// 7 days before (and at least `min_count`) starts an insight; 5 minutes under end it.
pub struct NaiveDetector {
    pub multiple: f64,
    pub min_count: u64,
    series: HashMap<Target, NaiveSeries>,
}

#[derive(Default)]
struct NaiveSeries {
    today: u64,
    days: [u64; 7],
    active: Option<(u32, u32)>, // (start, quiet run)
    count: u64,
}

impl NaiveDetector {
    pub fn new(multiple: f64, min_count: u64) -> Self {
        Self {
            multiple,
            min_count,
            series: HashMap::new(),
        }
    }

    pub fn add(&mut self, target: Target, count: u64) {
        self.series.entry(target).or_default().count += count;
    }

    /// Closes `minute`; `judge` false during the warmup.
    pub fn close(&mut self, minute: u32, judge: bool, detections: &mut Vec<Detection>) {
        for (target, series) in &mut self.series {
            let count = std::mem::take(&mut series.count);
            let mean = series.days.iter().sum::<u64>() as f64 / (7.0 * f64::from(MINUTES_PER_DAY));
            let threshold = (self.multiple * mean).ceil().max(self.min_count as f64) as u64;
            if judge {
                match series.active {
                    None if count >= threshold => {
                        series.active = Some((minute, 0));
                        detections.push(Detection {
                            target: *target,
                            start: minute,
                            started_at: minute + 1,
                            ended_at: None,
                        });
                    }
                    Some((start, quiet)) => {
                        let quiet = if count < threshold { quiet + 1 } else { 0 };
                        if quiet >= 5 {
                            series.active = None;
                            if let Some(d) = detections
                                .iter_mut()
                                .rev()
                                .find(|d| d.target == *target && d.start == start)
                            {
                                d.ended_at = Some(minute + 1);
                            }
                        } else {
                            series.active = Some((start, quiet));
                        }
                    }
                    None => {}
                }
            }
            series.today += count;
            if (minute + 1).is_multiple_of(MINUTES_PER_DAY) {
                series.days.rotate_right(1);
                series.days[0] = std::mem::take(&mut series.today);
            }
        }
    }
}

pub struct RunResult {
    pub engine: Vec<Detection>,
    pub naive: Vec<Detection>,
    pub events: u64,
    pub seconds: f64,
}

pub fn start_time() -> DateTime<Utc> {
    // A Monday.
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

pub fn run(
    scenario: &Scenario,
    config: InsightsConfig,
    naive: &mut NaiveDetector,
) -> anyhow::Result<RunResult> {
    let began = std::time::Instant::now();
    let start = start_time();
    let start_minute = (start.timestamp() / 60) as u32;
    let dir = tempfile::tempdir()?;
    let clock = TestClock::new(start);
    let mut engine =
        InsightsEngine::open(dir.path(), config, Arc::new(clock.clone()), Some(start))?;
    let mut rng = StdRng::seed_from_u64(scenario.config.seed ^ 0x5eed_5eed);
    let scored_from = scenario.scored_from();
    let by_api: Vec<Vec<&Anomaly>> = (0..scenario.apis.len())
        .map(|api| {
            scenario
                .anomalies
                .iter()
                .filter(|a| matches!(a.target, Target::CallRate { api: x } | Target::ErrorRate { api: x, .. } if x == api))
                .collect()
        })
        .collect();
    let mut targets: HashMap<(String, Option<String>), Target> = HashMap::new();
    for (index, api) in scenario.apis.iter().enumerate() {
        targets.insert((api.name.clone(), None), Target::CallRate { api: index });
        for (error, series) in api.errors.iter().enumerate() {
            targets.insert(
                (api.name.clone(), Some(series.code.clone())),
                Target::ErrorRate { api: index, error },
            );
        }
    }
    let mut engine_detections: Vec<Detection> = Vec::new();
    let mut open_insights: HashMap<String, usize> = HashMap::new();
    let mut naive_detections = Vec::new();
    let mut events = 0u64;
    let users: Vec<String> = (0..4)
        .map(|i| format!("arn:aws:iam::111122223333:role/app-{i}"))
        .collect();
    for minute in 0..scenario.total_minutes() {
        let epoch_minute = start_minute + minute;
        let time = start + Duration::minutes(i64::from(minute));
        for (index, api) in scenario.apis.iter().enumerate() {
            let shape = scenario.shape(api, epoch_minute, minute);
            if shape <= 0.0 {
                continue;
            }
            let base = ApiCall {
                event_time: time,
                account: "111122223333",
                region: "us-east-1",
                event_source: &api.source,
                event_name: &api.name,
                error_code: None,
                read_only: Some(!api.write),
                management: true,
                user_identity_arn: Some(&users[index % users.len()]),
                user_agent: Some("aws-sdk-go-v2/1.30"),
            };
            let mut calls = scenario.draw(&mut rng, api, api.rate * shape);
            let mut errors: Vec<u64> = api
                .errors
                .iter()
                .map(|e| crate::sample::poisson(&mut rng, e.rate * shape))
                .collect();
            let mut anomaly_calls = Vec::new();
            for anomaly in &by_api[index] {
                if minute < anomaly.start || minute >= anomaly.end() {
                    continue;
                }
                let background = match anomaly.target {
                    Target::CallRate { .. } => api.rate * shape,
                    Target::ErrorRate { error, .. } => api.errors[error].rate * shape,
                };
                let extra = crate::sample::poisson(
                    &mut rng,
                    background * (anomaly.multiple - 1.0) + anomaly.extra,
                );
                anomaly_calls.push((anomaly.target, extra));
            }
            if calls > 0 {
                engine.observe(&base, calls);
            }
            for (error, count) in errors.iter().enumerate() {
                if *count > 0 {
                    let failed = ApiCall {
                        error_code: Some(&api.errors[error].code),
                        ..base
                    };
                    engine.observe(&failed, *count);
                    naive.add(Target::ErrorRate { api: index, error }, *count);
                }
            }
            for (target, extra) in &anomaly_calls {
                if *extra == 0 {
                    continue;
                }
                let arn = "arn:aws:iam::111122223333:user/intruder";
                let mut call = ApiCall {
                    user_identity_arn: Some(arn),
                    user_agent: Some("curl/8.4.0"),
                    ..base
                };
                match target {
                    Target::CallRate { .. } => calls += extra,
                    Target::ErrorRate { error, .. } => {
                        call.error_code = Some(&api.errors[*error].code);
                        errors[*error] += extra;
                        naive.add(*target, *extra);
                    }
                }
                engine.observe(&call, *extra);
            }
            if api.write {
                naive.add(
                    Target::CallRate { api: index },
                    calls + errors.iter().sum::<u64>(),
                );
            }
            events += calls + errors.iter().sum::<u64>();
        }
        let judge = minute >= scored_from;
        clock.set(time + Duration::minutes(1));
        if judge {
            for event in engine.tick()? {
                let key = &event.key;
                let error = match key.insight_type {
                    InsightType::ApiCallRateInsight => None,
                    InsightType::ApiErrorRateInsight => {
                        key.error_code.as_deref().map(str::to_string)
                    }
                };
                let Some(target) = targets.get(&(key.event_name.to_string(), error)) else {
                    continue;
                };
                let event_minute =
                    ((event.event_time.timestamp() / 60) as u32).saturating_sub(start_minute);
                match event.state {
                    InsightState::Start => {
                        open_insights
                            .insert(event.shared_event_id.clone(), engine_detections.len());
                        engine_detections.push(Detection {
                            target: *target,
                            start: event_minute,
                            started_at: minute + 1,
                            ended_at: None,
                        });
                    }
                    InsightState::End => {
                        if let Some(index) = open_insights.remove(&event.shared_event_id) {
                            engine_detections[index].ended_at = Some(minute + 1);
                        }
                    }
                }
            }
        } else if minute % 30 == 29 {
            engine.backfill_until(time + Duration::minutes(1))?;
        }
        naive.close(minute, judge, &mut naive_detections);
    }
    Ok(RunResult {
        engine: engine_detections,
        naive: naive_detections,
        events,
        seconds: began.elapsed().as_secs_f64(),
    })
}
