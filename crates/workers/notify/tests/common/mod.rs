//! Helpers shared by the integration tests: a webhook receiver on loopback and a
//! notifier whose outcomes arrive on a channel.
#![allow(dead_code)]

pub mod moto;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use opentrail_model::TestClock;
use opentrail_notify::{NotificationOutcome, Notifier, NotifierConfig, RetryPolicy, TopicRegistry};
use tokio::sync::{mpsc, Notify};

/// One request the webhook server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct ServerState {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 200 once they run out.
    script: Mutex<VecDeque<u16>>,
    /// When set, requests wait for `release` before answering.
    hold: Mutex<bool>,
    release: Notify,
    arrived: Notify,
}

/// An HTTP server on 127.0.0.1 that records every POST.
pub struct WebhookServer {
    pub base_url: String,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookServer {
    pub async fn start(script: &[u16]) -> WebhookServer {
        let state = Arc::new(ServerState::default());
        state.script.lock().unwrap().extend(script);
        let app = axum::Router::new()
            .fallback(axum::routing::post(record))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        WebhookServer {
            base_url: format!("http://{address}"),
            state,
            task,
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Makes requests wait until [`WebhookServer::release`].
    pub fn hold(&self) {
        *self.state.hold.lock().unwrap() = true;
    }

    pub fn release(&self) {
        *self.state.hold.lock().unwrap() = false;
        self.state.release.notify_waiters();
    }

    /// Waits until at least `count` requests arrived.
    pub async fn wait_for_requests(&self, count: usize) {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let arrived = self.state.arrived.notified();
                if self.state.received.lock().unwrap().len() >= count {
                    return;
                }
                arrived.await;
            }
        })
        .await
        .expect("webhook requests arrive");
    }
}

async fn record(
    State(state): State<Arc<ServerState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    state.received.lock().unwrap().push(Received {
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers,
        body: body.to_vec(),
    });
    state.arrived.notify_waiters();
    loop {
        let released = state.release.notified();
        if !*state.hold.lock().unwrap() {
            break;
        }
        released.await;
    }
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 17, 9, 30, 12).unwrap() + chrono::Duration::milliseconds(345)
}

/// Short waits so retry tests run quickly.
pub fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        request_timeout: Duration::from_secs(10),
    }
}

pub struct Harness {
    pub notifier: Notifier,
    pub outcomes: mpsc::UnboundedReceiver<NotificationOutcome>,
    pub clock: TestClock,
}

impl Harness {
    pub fn start(registry: Arc<TopicRegistry>, config: NotifierConfig) -> Harness {
        let (sender, outcomes) = mpsc::unbounded_channel();
        let clock = TestClock::new(start_time());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let notifier = Notifier::with_config(
            registry,
            http,
            Arc::new(move |outcome| {
                let _ = sender.send(outcome);
            }),
            config,
            Arc::new(clock.clone()),
        );
        Harness {
            notifier,
            outcomes,
            clock,
        }
    }

    pub async fn next_outcome(&mut self) -> NotificationOutcome {
        tokio::time::timeout(Duration::from_secs(60), self.outcomes.recv())
            .await
            .expect("an outcome is reported in time")
            .expect("the notifier is alive")
    }
}

pub fn config(retry: RetryPolicy) -> NotifierConfig {
    NotifierConfig {
        retry,
        ..NotifierConfig::default()
    }
}
