//! `opentrail-bench audit-events`: PutAuditEvents throughput and ack latency. Creates an
//! ActivityAuditLog event data store and a channel with aws-sdk-cloudtrail, then sends
//! calls of `--events-per-call` synthetic events (pre-signed, SigV4 service
//! `cloudtrail-data`) from `--concurrency` connections; every call is answered only once
//! its events are fsynced in the event log.

use crate::events::{load_average, percentile, Ack};
use crate::server::BenchServer;
use anyhow::{bail, Context};
use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, Destination, DestinationType,
};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use opentrail_sigv4::{sign, PayloadHash, SigningParams};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct AuditEventsArgs {
    #[arg(long, default_value = "target/fast/opentrail")]
    opentrail_bin: PathBuf,
    /// Calls to send.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Events per call (AWS allows 1 to 100).
    #[arg(long, default_value_t = 100)]
    events_per_call: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

const REGION: &str = "us-east-1";

struct SignedCall {
    body: Bytes,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A producer event of about 450 bytes, like an application's login record.
fn event_data(account: &str, call: usize, index: usize) -> String {
    serde_json::json!({
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": format!("user-{}", index % 97),
            "details": {"department": "payments", "mfa": true}},
        "userAgent": "bench-app/1.0 (linux)",
        "eventSource": "bench-app.example.com",
        "eventName": if index.is_multiple_of(3) { "Login" } else { "UpdateRecord" },
        "eventTime": "2024-05-01T10:00:00Z",
        "UID": format!("{call}-{index}"),
        "requestParameters": {"recordId": format!("rec-{call}-{index}"), "fields": ["email", "phone"]},
        "responseElements": {"status": "ok"},
        "sourceIPAddress": "192.0.2.10",
        "recipientAccountId": account,
    })
    .to_string()
}

async fn create_channel(server: &BenchServer) -> anyhow::Result<(String, String)> {
    let client = server.cloudtrail_client(REGION);
    let store = client
        .create_event_data_store()
        .name("bench-audit")
        .advanced_event_selectors(
            AdvancedEventSelector::builder()
                .name("channel events")
                .field_selectors(
                    AdvancedFieldSelector::builder()
                        .field("eventCategory")
                        .equals("ActivityAuditLog")
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await
        .context("CreateEventDataStore")?;
    let store_arn = store
        .event_data_store_arn()
        .context("no event data store ARN")?;
    let channel = client
        .create_channel()
        .name("bench-channel")
        .source("Custom")
        .destinations(
            Destination::builder()
                .r#type(DestinationType::EventDataStore)
                .location(store_arn)
                .build()?,
        )
        .send()
        .await
        .context("CreateChannel")?;
    let arn = channel.channel_arn().context("no channel ARN")?.to_owned();
    let account = arn.split(':').nth(4).unwrap_or_default().to_owned();
    Ok((arn, account))
}

fn sign_call(server: &BenchServer, uri: &http::Uri, body: Bytes) -> anyhow::Result<SignedCall> {
    let params = SigningParams {
        access_key_id: &server.access_key_id,
        secret_access_key: &server.secret_access_key,
        region: REGION,
        service: "cloudtrail-data",
        time: chrono::Utc::now(),
        session_token: None,
        uri_double_encode: true,
        payload: PayloadHash::Body(&body),
        set_content_sha256_header: false,
    };
    let headers = sign(&http::Method::POST, uri, &http::HeaderMap::new(), &params)
        .map_err(|e| anyhow::anyhow!("signing failed: {}", e.message()))?;
    Ok(SignedCall { body, headers })
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    call: SignedCall,
    expected: usize,
) -> anyhow::Result<Ack> {
    let mut builder = http
        .post(url)
        .header("content-type", "application/json")
        .body(call.body);
    for (name, value) in call.headers {
        builder = builder.header(name, value);
    }
    let sent = Instant::now();
    let response = builder.send().await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    let acked = Instant::now();
    if !status.is_success() {
        bail!("PutAuditEvents failed with HTTP {status}: {answer}");
    }
    let ok = answer["successful"].as_array().map_or(0, Vec::len);
    if ok != expected {
        bail!(
            "{} of {expected} events refused: {}",
            expected - ok,
            answer["failed"]
        );
    }
    Ok(Ack { sent, acked })
}

pub async fn run(args: AuditEventsArgs) -> anyhow::Result<()> {
    if !(1..=100).contains(&args.events_per_call) {
        bail!("--events-per-call must be 1 to 100");
    }
    let server = BenchServer::start(&args.opentrail_bin)?;
    let (channel, account) = create_channel(&server).await?;
    let encoded: String = channel
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("{}/PutAuditEvents?channelArn={encoded}", server.endpoint());
    let uri: http::Uri = url.parse()?;
    eprintln!("signing {} calls", args.calls);
    let mut calls = Vec::with_capacity(args.calls);
    let mut bytes = 0usize;
    for call in 0..args.calls {
        let events: Vec<serde_json::Value> = (0..args.events_per_call)
            .map(|i| serde_json::json!({ "id": format!("e{i}"), "eventData": event_data(&account, call, i) }))
            .collect();
        let body = Bytes::from(serde_json::json!({ "auditEvents": events }).to_string());
        bytes += body.len();
        calls.push(sign_call(&server, &uri, body)?);
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let queue = Arc::new(Mutex::new(calls));
    let load = load_average();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (queue, http, url) = (Arc::clone(&queue), http.clone(), url.clone());
        let expected = args.events_per_call;
        workers.spawn(async move {
            let mut acks = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow::anyhow!("queue poisoned"))?
                    .pop();
                let Some(call) = next else { break };
                acks.push(send(&http, &url, call, expected).await?);
            }
            Ok::<_, anyhow::Error>(acks)
        });
    }
    let mut acks = Vec::new();
    while let Some(worker) = workers.join_next().await {
        acks.extend(worker??);
    }
    let elapsed = started.elapsed();
    server.stop()?;
    let mut latencies: Vec<Duration> = acks.iter().map(Ack::latency).collect();
    latencies.sort();
    let events = args.calls * args.events_per_call;
    let rate = events as f64 / elapsed.as_secs_f64();
    let mb_s = bytes as f64 / 1e6 / elapsed.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p99, max) = (
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "events": events, "calls": args.calls, "events_per_call": args.events_per_call,
                "concurrency": args.concurrency, "seconds": elapsed.as_secs_f64(), "events_per_second": rate,
                "mb_per_second": mb_s, "ack_ms": { "p50": p50, "p99": p99, "max": max }, "load_average": load })
        );
    } else {
        println!(
            "audit-events: {events} events in {} calls of {}, {:.2}s: {rate:.0} events/s, {mb_s:.1} MB/s; ack latency p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (load average before: {load})",
            args.calls,
            args.events_per_call,
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
