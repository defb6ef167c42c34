//! The counters' per-event CPU cost and memory with many keys.

use chrono::{Duration, TimeZone, Utc};
use opentrail_insights::{ApiCall, InsightsConfig, InsightsEngine};
use opentrail_model::event::EventRecord;
use opentrail_model::TestClock;
use std::sync::Arc;
use std::time::Instant;

fn record_json(i: usize, keys: usize, minute: &str) -> String {
    let key = i % keys;
    let error = if i.is_multiple_of(5) {
        r#","errorCode":"AccessDenied","errorMessage":"denied""#
    } else {
        ""
    };
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:s{user}","arn":"arn:aws:sts::111122223333:assumed-role/app/s{user}","accountId":"111122223333"}},"eventTime":"{minute}:{second:02}Z","eventSource":"svc{source}.amazonaws.com","eventName":"Api{key}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-sdk-go-v2/1.{agent}","requestParameters":{{"name":"x{i}"}},"responseElements":null{error},"requestID":"req-{i}","eventID":"00000000-0000-4000-8000-{i:012}","readOnly":{read_only},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}}"#,
        user = i % 100,
        second = i % 60,
        source = key % 50,
        agent = i % 20,
        read_only = i.is_multiple_of(2),
    )
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

pub fn counters(events: usize, keys: usize, rounds: usize) -> anyhow::Result<()> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let dir = tempfile::tempdir()?;
    let clock = TestClock::new(start);
    let config = InsightsConfig {
        close_delay_seconds: 0,
        ..InsightsConfig::default()
    };
    let mut engine =
        InsightsEngine::open(dir.path(), config, Arc::new(clock.clone()), Some(start))?;
    let mut parse_seconds = 0.0;
    let mut observe_seconds = 0.0;
    let mut close_seconds = 0.0;
    let mut observe_cpu = 0.0;
    for round in 0..rounds {
        let minute = start + Duration::minutes(round as i64);
        let prefix = minute.format("%Y-%m-%dT%H:%M").to_string();
        let texts: Vec<String> = (0..events).map(|i| record_json(i, keys, &prefix)).collect();
        let began = Instant::now();
        let records: Vec<EventRecord> = texts
            .iter()
            .map(|text| EventRecord::from_json(text))
            .collect::<Result<_, _>>()?;
        parse_seconds += began.elapsed().as_secs_f64();
        let cpu = cpu_seconds();
        let began = Instant::now();
        for record in &records {
            engine.observe_record(record);
        }
        observe_seconds += began.elapsed().as_secs_f64();
        observe_cpu += cpu_seconds() - cpu;
        clock.set(minute + Duration::minutes(1));
        let began = Instant::now();
        engine.tick()?;
        close_seconds += began.elapsed().as_secs_f64();
    }
    let total = (events * rounds) as f64;
    let per_event = observe_seconds / total * 1e9;
    let parse = parse_seconds / total * 1e9;
    let per_close = close_seconds / rounds as f64 * 1e3;
    println!(
        "{events} events x {rounds} minutes over {keys} API keys (+ error keys): {} keys tracked",
        engine.stats().keys
    );
    println!("count one event (ApiCall from the parsed record + counters): {per_event:.0} ns (process CPU {:.0} ns)", observe_cpu / total * 1e9);
    println!("parse one record (EventRecord::from_json), for comparison: {parse:.0} ns");
    println!("close one minute (write counters + rollups, judge every key): {per_close:.1} ms");
    let share = per_event * 100_000.0 / 1e9 + per_close / 1e3 / 60.0;
    println!(
        "at 100,000 events/s: {:.1} % of one core, {:.1} % of 2 cores ({:.0} % of the parse cost)",
        share * 100.0,
        share * 50.0,
        per_event / parse * 100.0
    );
    Ok(())
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

pub fn memory(keys: usize) -> anyhow::Result<()> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let dir = tempfile::tempdir()?;
    let clock = TestClock::new(start);
    let config = InsightsConfig {
        close_delay_seconds: 0,
        ..InsightsConfig::default()
    };
    let names: Vec<(String, String, String)> = (0..keys)
        .map(|i| {
            (
                format!("svc{}.amazonaws.com", i % 200),
                format!("Api{}", i / 200 % 5000),
                format!("Error{}", i / 1_000_000),
            )
        })
        .collect();
    let before = resident_bytes();
    let mut engine =
        InsightsEngine::open(dir.path(), config, Arc::new(clock.clone()), Some(start))?;
    for minute in 0..10i64 {
        let time = start + Duration::minutes(minute);
        for (i, (source, name, error)) in names.iter().enumerate() {
            let arn = format!("arn:aws:iam::111122223333:user/u{}", i % 1000);
            let call = ApiCall {
                event_time: time,
                account: "111122223333",
                region: "us-east-1",
                event_source: source,
                event_name: name,
                error_code: Some(error),
                read_only: Some(true),
                management: true,
                user_identity_arn: Some(&arn),
                user_agent: Some("aws-cli/2.15"),
            };
            engine.observe(&call, 1);
        }
        clock.set(time + Duration::minutes(1));
        engine.tick()?;
    }
    let after = resident_bytes();
    let tracked = engine.stats().keys;
    println!(
        "{tracked} keys tracked after 10 minutes of one call per key: resident +{:.1} MiB ({:.0} bytes/key), engine's estimate {:.1} MiB ({:.0} bytes/key)",
        (after.saturating_sub(before)) as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / tracked.max(1) as f64,
        engine.memory_bytes() as f64 / 1048576.0,
        engine.memory_bytes() as f64 / tracked.max(1) as f64,
    );
    println!(
        "counter files: {:.1} MiB",
        engine.disk_bytes() as f64 / 1048576.0
    );
    Ok(())
}
