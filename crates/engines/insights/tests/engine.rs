//! The engine end to end with a test clock: AWS's documented examples fire, events have
//! AWS's shape, output is deterministic, counters survive a restart and memory is bounded.

use chrono::{DateTime, Duration, TimeZone, Utc};
use opentrail_insights::{
    ApiCall, InsightEvent, InsightState, InsightType, InsightsConfig, InsightsEngine, MetricKey,
    Resolution,
};
use opentrail_model::event::EventRecord;
use opentrail_model::TestClock;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

fn config() -> InsightsConfig {
    InsightsConfig {
        source_id: "arn:aws:cloudtrail:us-east-1:111122223333:trail/insights".into(),
        close_delay_seconds: 0,
        ..InsightsConfig::default()
    }
}

fn start_of_history() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap()
}

fn call<'a>(
    time: DateTime<Utc>,
    source: &'a str,
    name: &'a str,
    error: Option<&'a str>,
    arn: &'a str,
) -> ApiCall<'a> {
    ApiCall {
        event_time: time,
        account: ACCOUNT,
        region: REGION,
        event_source: source,
        event_name: name,
        error_code: error,
        read_only: Some(false),
        management: true,
        user_identity_arn: Some(arn),
        user_agent: Some("aws-cli/2.13.0"),
    }
}

/// Calls at `rate` a minute spread evenly over `days` days from `start`, replayed into a
/// new engine; returns the engine, its clock (at the end of the history) and the end.
fn engine_with_history(
    dir: &Path,
    source: &str,
    name: &str,
    error: Option<&str>,
    rate: f64,
    days: i64,
) -> (InsightsEngine, TestClock, DateTime<Utc>) {
    let start = start_of_history();
    let end = start + Duration::days(days);
    let clock = TestClock::new(end);
    let mut engine =
        InsightsEngine::open(dir, config(), Arc::new(clock.clone()), Some(start)).unwrap();
    let minutes = days * 1440;
    for minute in 0..minutes {
        let calls = ((minute + 1) as f64 * rate).floor() - (minute as f64 * rate).floor();
        let time = start + Duration::minutes(minute);
        if calls > 0.0 {
            let normal = call(
                time,
                source,
                name,
                error,
                "arn:aws:iam::111122223333:user/ops",
            );
            engine.observe(&normal, calls as u64);
        }
        if minute % 30 == 29 {
            engine.backfill_until(time + Duration::minutes(1)).unwrap();
        }
    }
    assert!(engine.tick().unwrap().is_empty());
    (engine, clock, end)
}

/// Feeds `per_minute[i]` calls in minute i after `from` and ticks after each minute.
fn run(
    engine: &mut InsightsEngine,
    clock: &TestClock,
    from: DateTime<Utc>,
    per_minute: &[u64],
    source: &str,
    name: &str,
    error: Option<&str>,
) -> Vec<(DateTime<Utc>, InsightEvent)> {
    let mut events = Vec::new();
    for (index, calls) in per_minute.iter().enumerate() {
        let time = from + Duration::minutes(index as i64);
        if *calls > 0 {
            let burst = call(
                time,
                source,
                name,
                error,
                "arn:aws:iam::111122223333:user/intruder",
            );
            engine.observe(&burst, *calls);
        }
        clock.set(time + Duration::minutes(1));
        for event in engine.tick().unwrap() {
            events.push((clock_now(clock), event));
        }
    }
    events
}

fn clock_now(clock: &TestClock) -> DateTime<Utc> {
    opentrail_model::Clock::now(clock)
}

#[test]
fn aws_send_command_example_fires_within_two_minutes_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut engine, clock, now) = engine_with_history(
        dir.path(),
        "ssm.amazonaws.com",
        "SendCommand",
        None,
        0.0442,
        28,
    );
    // Up to 15 calls in 5 minutes, then back to none.
    let mut burst = vec![3u64; 5];
    burst.extend([0; 15]);
    let events = run(
        &mut engine,
        &clock,
        now,
        &burst,
        "ssm.amazonaws.com",
        "SendCommand",
        None,
    );
    assert_eq!(events.len(), 2, "{events:#?}");
    let (emitted, start) = &events[0];
    assert_eq!(start.state, InsightState::Start);
    assert_eq!(start.event_time, now);
    assert!(
        *emitted <= now + Duration::minutes(2),
        "started late: {emitted}"
    );
    assert!(
        (start.baseline_average - 0.0442).abs() < 0.002,
        "{}",
        start.baseline_average
    );
    assert_eq!(start.insight_average, 3.0);
    let (_, end) = &events[1];
    assert_eq!(end.state, InsightState::End);
    assert_eq!(end.event_time, now + Duration::minutes(5));
    assert_eq!(end.insight_duration, Some(5));
    assert_eq!(end.insight_average, 3.0);
    assert_eq!(end.shared_event_id, start.shared_event_id);
    assert_ne!(end.event_id, start.event_id);

    let json: Value = serde_json::from_str(&start.to_json()).unwrap();
    assert_eq!(json["eventType"], "AwsCloudTrailInsight");
    assert_eq!(json["eventCategory"], "Insight");
    assert_eq!(json["eventTime"], "2023-01-29T00:00:00Z");
    assert_eq!(json["recipientAccountId"], ACCOUNT);
    let details = &json["insightDetails"];
    assert_eq!(details["state"], "Start");
    assert_eq!(details["eventSource"], "ssm.amazonaws.com");
    assert_eq!(details["eventName"], "SendCommand");
    assert_eq!(details["insightType"], "ApiCallRateInsight");
    assert!(details.get("errorCode").is_none());
    let statistics = &details["insightContext"]["statistics"];
    assert_eq!(statistics["insight"]["average"], 3.0);
    assert_eq!(statistics["baselineDuration"], 10080);
    assert!(statistics.get("insightDuration").is_none());
    let attributions = details["insightContext"]["attributions"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = attributions
        .iter()
        .map(|a| a["attribute"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["userIdentityArn", "userAgent", "errorCode"]);
    assert_eq!(
        attributions[0]["insight"][0]["value"],
        "arn:aws:iam::111122223333:user/intruder"
    );
    assert_eq!(attributions[0]["insight"][0]["average"], 3.0);
    assert_eq!(
        attributions[0]["baseline"][0]["value"],
        "arn:aws:iam::111122223333:user/ops"
    );
    assert_eq!(attributions[2]["insight"][0]["value"], "null");

    let end_json: Value = serde_json::from_str(&end.to_json()).unwrap();
    assert_eq!(end_json["insightDetails"]["state"], "End");
    assert_eq!(
        end_json["insightDetails"]["insightContext"]["statistics"]["insightDuration"],
        5
    );
    assert_eq!(end_json["sharedEventID"], json["sharedEventID"]);
    // The record reads back as an Insight event.
    let record = EventRecord::from_json(&start.to_json()).unwrap();
    assert_eq!(record.event_category(), "Insight");
    assert_eq!(record.event_type(), "AwsCloudTrailInsight");
}

#[test]
fn aws_get_role_policy_error_example_fires() {
    let dir = tempfile::tempdir().unwrap();
    let error = Some("NoSuchEntityException");
    let (mut engine, clock, now) = engine_with_history(
        dir.path(),
        "iam.amazonaws.com",
        "GetRolePolicy",
        error,
        0.0017,
        28,
    );
    let mut burst = vec![18u64; 10];
    burst.extend([0; 10]);
    let events = run(
        &mut engine,
        &clock,
        now,
        &burst,
        "iam.amazonaws.com",
        "GetRolePolicy",
        error,
    );
    let starts: Vec<&InsightEvent> = events
        .iter()
        .map(|(_, event)| event)
        .filter(|event| event.key.insight_type == InsightType::ApiErrorRateInsight)
        .collect();
    assert_eq!(starts.len(), 2, "{events:#?}");
    assert_eq!(starts[0].state, InsightState::Start);
    assert_eq!(starts[0].insight_average, 18.0);
    assert!(events[0].0 <= now + Duration::minutes(1));
    let json: Value = serde_json::from_str(&starts[0].to_json()).unwrap();
    assert_eq!(json["insightDetails"]["insightType"], "ApiErrorRateInsight");
    assert_eq!(json["insightDetails"]["errorCode"], "NoSuchEntityException");
    let baseline = json["insightDetails"]["insightContext"]["statistics"]["baseline"]["average"]
        .as_f64()
        .unwrap();
    assert!((baseline - 0.0017).abs() < 0.0005, "{baseline}");
    assert_eq!(starts[1].state, InsightState::End);
    assert_eq!(starts[1].insight_duration, Some(10));
}

#[test]
fn steady_traffic_raises_no_insight() {
    let dir = tempfile::tempdir().unwrap();
    let (mut engine, clock, now) = engine_with_history(
        dir.path(),
        "ec2.amazonaws.com",
        "RunInstances",
        None,
        2.0,
        28,
    );
    let steady = vec![2u64; 600];
    let events = run(
        &mut engine,
        &clock,
        now,
        &steady,
        "ec2.amazonaws.com",
        "RunInstances",
        None,
    );
    assert!(events.is_empty(), "{events:#?}");
}

fn insight_bytes(dir: &Path) -> Vec<String> {
    let (mut engine, clock, now) =
        engine_with_history(dir, "ssm.amazonaws.com", "SendCommand", None, 0.3, 15);
    let mut burst = vec![40u64; 30];
    burst.extend([0; 20]);
    burst.extend([25; 10]);
    burst.extend([0; 20]);
    run(
        &mut engine,
        &clock,
        now,
        &burst,
        "ssm.amazonaws.com",
        "SendCommand",
        None,
    )
    .into_iter()
    .map(|(_, event)| event.to_json())
    .collect()
}

#[test]
fn the_same_input_gives_byte_identical_insights_events() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let a = insight_bytes(first.path());
    let b = insight_bytes(second.path());
    assert_eq!(a.len(), 4, "{a:#?}");
    assert_eq!(a, b);
}

#[test]
fn counters_are_durable_rolled_up_and_train_the_baseline_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock, now) = engine_with_history(
        dir.path(),
        "ssm.amazonaws.com",
        "SendCommand",
        None,
        0.5,
        20,
    );
    let key = engine.keys().next().unwrap().clone();
    drop(engine);
    let mut engine =
        InsightsEngine::open(dir.path(), config(), Arc::new(clock.clone()), None).unwrap();
    assert_eq!(
        engine.keys().cloned().collect::<Vec<MetricKey>>(),
        vec![key.clone()]
    );
    let day = now - Duration::days(1);
    let hourly = engine
        .metric_data(&key, Resolution::OneHour, day, now, false)
        .unwrap();
    assert_eq!(hourly.len(), 24);
    assert!(hourly.iter().all(|(_, count)| *count == 30), "{hourly:?}");
    let five = engine
        .metric_data(
            &key,
            Resolution::FiveMinutes,
            now - Duration::minutes(60),
            now,
            true,
        )
        .unwrap();
    assert_eq!(five.len(), 12);
    assert_eq!(five.iter().map(|(_, count)| count).sum::<u64>(), 30);
    let minutes = engine
        .metric_data(
            &key,
            Resolution::OneMinute,
            now - Duration::minutes(10),
            now,
            false,
        )
        .unwrap();
    assert_eq!(minutes.len(), 5, "{minutes:?}");
    // The baseline trained on the stored history right away: a burst fires.
    let burst = [30u64, 30, 0, 0, 0, 0, 0];
    let events = run(
        &mut engine,
        &clock,
        now,
        &burst,
        "ssm.amazonaws.com",
        "SendCommand",
        None,
    );
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!((events[0].1.baseline_average - 0.5).abs() < 0.01);
}

#[test]
fn late_events_are_not_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let start = start_of_history();
    let clock = TestClock::new(start + Duration::minutes(10));
    let mut engine =
        InsightsEngine::open(dir.path(), config(), Arc::new(clock.clone()), Some(start)).unwrap();
    let early = call(
        start,
        "s3.amazonaws.com",
        "PutBucketPolicy",
        None,
        "arn:aws:iam::1:user/a",
    );
    engine.observe(&early, 2);
    engine.tick().unwrap();
    engine.observe(&early, 5);
    assert_eq!(engine.stats().late_events, 5);
    let key = engine.keys().next().unwrap().clone();
    let counts = engine
        .metric_data(
            &key,
            Resolution::OneMinute,
            start,
            start + Duration::minutes(10),
            false,
        )
        .unwrap();
    assert_eq!(counts, vec![(start, 2)]);
}

#[test]
fn read_only_calls_count_only_for_error_rate() {
    let dir = tempfile::tempdir().unwrap();
    let start = start_of_history();
    let clock = TestClock::new(start + Duration::minutes(2));
    let mut engine =
        InsightsEngine::open(dir.path(), config(), Arc::new(clock), Some(start)).unwrap();
    let mut read = call(
        start,
        "iam.amazonaws.com",
        "GetRole",
        None,
        "arn:aws:iam::1:user/a",
    );
    read.read_only = Some(true);
    engine.observe(&read, 1);
    assert_eq!(engine.keys().count(), 0);
    read.error_code = Some("AccessDenied");
    engine.observe(&read, 1);
    let keys: Vec<MetricKey> = engine.keys().cloned().collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].insight_type, InsightType::ApiErrorRateInsight);
    assert_eq!(keys[0].error_code.as_deref(), Some("AccessDenied"));
}

#[test]
fn memory_stays_bounded_with_100000_distinct_keys() {
    let dir = tempfile::tempdir().unwrap();
    let start = start_of_history();
    let clock = TestClock::new(start + Duration::minutes(2));
    let mut engine =
        InsightsEngine::open(dir.path(), config(), Arc::new(clock.clone()), Some(start)).unwrap();
    let mut names = Vec::new();
    for i in 0..100_000u32 {
        names.push((
            format!("svc{}.amazonaws.com", i % 100),
            format!("Api{}", i / 100),
            format!("Error{}", i % 7),
        ));
    }
    for (source, name, error) in &names {
        let failed = call(
            start,
            source,
            name,
            Some(error),
            "arn:aws:iam::111122223333:user/a",
        );
        engine.observe(&failed, 1);
    }
    engine.tick().unwrap();
    // Every event counted both as a write call and as an error: 200,000 keys.
    assert_eq!(engine.stats().keys, 200_000);
    let bytes = engine.memory_bytes();
    assert!(bytes < 200_000 * 1_000, "{bytes} bytes for 200,000 keys");
    // Beyond max_keys new keys are refused, so memory no longer grows.
    drop(engine);
    let limited = InsightsConfig {
        max_keys: 200_000,
        ..config()
    };
    let mut engine =
        InsightsEngine::open(dir.path(), limited, Arc::new(clock.clone()), None).unwrap();
    let before = engine.memory_bytes();
    let later = start + Duration::minutes(2);
    for i in 0..50_000u32 {
        let name = format!("New{i}");
        engine.observe(
            &call(
                later,
                "new.amazonaws.com",
                &name,
                None,
                "arn:aws:iam::1:user/b",
            ),
            1,
        );
    }
    assert_eq!(engine.stats().dropped_key_events, 50_000);
    assert_eq!(engine.stats().keys, 200_000);
    assert!(
        engine.memory_bytes() <= before + 1_000_000,
        "{} > {before}",
        engine.memory_bytes()
    );
}

fn holding_config() -> InsightsConfig {
    InsightsConfig {
        hold_events: true,
        ..config()
    }
}

#[test]
fn a_running_insight_survives_a_restart_and_ends_once() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock, now) = engine_with_history(
        dir.path(),
        "ssm.amazonaws.com",
        "SendCommand",
        None,
        0.0442,
        28,
    );
    drop(engine);
    let reopen = || {
        InsightsEngine::open(dir.path(), holding_config(), Arc::new(clock.clone()), None).unwrap()
    };
    let mut engine = reopen();
    let (source, name) = ("ssm.amazonaws.com", "SendCommand");
    let before = run(&mut engine, &clock, now, &[3, 3, 3], source, name, None);
    assert_eq!(before.len(), 1, "{before:#?}");
    let start = &before[0].1;
    assert_eq!(start.state, InsightState::Start);
    // The Start is held until acknowledged, across a restart too.
    assert_eq!(engine.unacknowledged(), [start.to_json()]);
    drop(engine);
    let mut engine = reopen();
    assert_eq!(engine.unacknowledged(), [start.to_json()]);
    engine.acknowledge().unwrap();
    drop(engine);
    let mut engine = reopen();
    assert!(engine.unacknowledged().is_empty());

    // The same insight goes on after the restart: no second Start, one End, and the
    // statistics of an uninterrupted run (the SendCommand example: 5 minutes at 3/min).
    let mut rest = vec![3u64, 3];
    rest.extend([0; 15]);
    let after = run(
        &mut engine,
        &clock,
        now + Duration::minutes(3),
        &rest,
        source,
        name,
        None,
    );
    assert_eq!(after.len(), 1, "{after:#?}");
    let end = &after[0].1;
    assert_eq!(end.state, InsightState::End);
    assert_eq!(end.shared_event_id, start.shared_event_id);
    assert_eq!(end.event_time, now + Duration::minutes(5));
    assert_eq!(end.insight_duration, Some(5));
    assert_eq!(end.insight_average, 3.0);
    let json: Value = serde_json::from_str(&end.to_json()).unwrap();
    let attributions = &json["insightDetails"]["insightContext"]["attributions"];
    assert_eq!(
        attributions[0]["insight"][0]["value"],
        "arn:aws:iam::111122223333:user/intruder"
    );
    assert_eq!(attributions[0]["insight"][0]["average"], 3.0);
}

#[test]
fn turning_insights_off_ends_the_running_insights_of_that_type() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, clock, now) = engine_with_history(
        dir.path(),
        "ssm.amazonaws.com",
        "SendCommand",
        None,
        0.0442,
        28,
    );
    drop(engine);
    let mut engine =
        InsightsEngine::open(dir.path(), holding_config(), Arc::new(clock.clone()), None).unwrap();
    let (source, name) = ("ssm.amazonaws.com", "SendCommand");
    let started = run(&mut engine, &clock, now, &[3, 3, 4], source, name, None);
    assert_eq!(started.len(), 1, "{started:#?}");
    engine.acknowledge().unwrap();
    // Error-rate Insights turned off: the call-rate insight goes on.
    assert!(engine
        .end_insights(|t| t == InsightType::ApiErrorRateInsight)
        .unwrap()
        .is_empty());
    let ended = engine.end_insights(|_| true).unwrap();
    assert_eq!(ended.len(), 1);
    let end = &ended[0];
    assert_eq!(end.state, InsightState::End);
    assert_eq!(end.shared_event_id, started[0].1.shared_event_id);
    assert_eq!(end.event_time, now + Duration::minutes(3));
    assert_eq!(end.insight_duration, Some(3));
    assert!((end.insight_average - 10.0 / 3.0).abs() < 1e-9);
    assert_eq!(engine.unacknowledged(), [end.to_json()]);
    assert!(engine.end_insights(|_| true).unwrap().is_empty());
    // Nothing runs any more: quiet minutes end nothing, a restart resumes nothing.
    assert!(run(
        &mut engine,
        &clock,
        now + Duration::minutes(3),
        &[0; 8],
        source,
        name,
        None
    )
    .is_empty());
    drop(engine);
    let mut engine =
        InsightsEngine::open(dir.path(), holding_config(), Arc::new(clock.clone()), None).unwrap();
    assert!(engine.end_insights(|_| true).unwrap().is_empty());
}
