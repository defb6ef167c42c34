//! What `/health` reports: each component's state, set by the supervisors of background
//! tasks and by the paths that write to the event log. A component that failed or whose
//! task died makes the server `degraded` (HTTP 503) until it recovers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::watch;

/// The components `/health` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// Appends to the durable event log (ingest and self-audit), as the log reports them.
    EventLog,
    /// The task that indexes the event log into event history.
    History,
    /// Event history's own files (segments written at each flush).
    HistoryStore,
    /// The task that delivers trails' log files and digests.
    Delivery,
    /// The task that feeds Insights from the event log and appends Insights events.
    Insights,
    /// The task that writes events into event data stores (CloudTrail Lake).
    Lake,
}

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Self::EventLog => "eventLog",
            Self::History => "eventHistory",
            Self::HistoryStore => "eventHistoryStore",
            Self::Delivery => "delivery",
            Self::Insights => "insights",
            Self::Lake => "lake",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct State {
    /// Why the component is not working now; `None` when it is.
    failure: Option<String>,
    /// How often its task was restarted after it died.
    restarts: u64,
    /// The last failure, kept after recovery so an operator can see what happened.
    last_failure: Option<String>,
}

#[derive(Default)]
pub struct Health {
    components: Mutex<BTreeMap<Component, State>>,
}

impl Health {
    fn update(&self, component: Component, change: impl FnOnce(&mut State)) {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        change(components.entry(component).or_default());
    }

    pub fn set_ok(&self, component: Component) {
        self.update(component, |state| state.failure = None);
    }

    pub fn set_failed(&self, component: Component, why: impl Into<String>) {
        let why = why.into();
        self.update(component, |state| {
            state.last_failure = Some(why.clone());
            state.failure = Some(why);
        });
    }

    fn note_restart(&self, component: Component) {
        self.update(component, |state| state.restarts += 1);
    }

    /// Whether every component works, and the `/health` document.
    pub fn report(&self) -> (bool, Value) {
        let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let healthy = components.values().all(|state| state.failure.is_none());
        let mut listed = Map::new();
        for (component, state) in components.iter() {
            let mut entry = Map::new();
            entry.insert(
                "status".into(),
                json!(if state.failure.is_none() {
                    "ok"
                } else {
                    "degraded"
                }),
            );
            if let Some(failure) = &state.failure {
                entry.insert("error".into(), json!(failure));
            }
            if state.restarts > 0 {
                entry.insert("restarts".into(), json!(state.restarts));
            }
            if let Some(last) = &state.last_failure {
                entry.insert("lastError".into(), json!(last));
            }
            listed.insert(component.name().into(), Value::Object(entry));
        }
        let status = if healthy { "ok" } else { "degraded" };
        (
            healthy,
            json!({ "status": status, "components": Value::Object(listed) }),
        )
    }

    /// `opentrail_component_up` and `opentrail_task_restarts_total`, in Prometheus text.
    pub fn render_metrics(&self) -> String {
        let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::from(
            "# HELP opentrail_component_up Whether a component works (1) or is degraded (0).\n\
             # TYPE opentrail_component_up gauge\n",
        );
        for (component, state) in components.iter() {
            out.push_str(&format!(
                "opentrail_component_up{{component=\"{}\"}} {}\n",
                component.name(),
                u8::from(state.failure.is_none())
            ));
        }
        out.push_str(
            "# HELP opentrail_task_restarts_total Background tasks restarted after they died.\n\
             # TYPE opentrail_task_restarts_total counter\n",
        );
        for (component, state) in components.iter() {
            out.push_str(&format!(
                "opentrail_task_restarts_total{{component=\"{}\"}} {}\n",
                component.name(),
                state.restarts
            ));
        }
        out
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A task that ran this long before it died starts again without waiting.
const STABLE_RUN: Duration = Duration::from_secs(60);

/// Runs a background task until `stop` turns true, starting it again (with backoff) when
/// it panics, fails or ends on its own; every death shows in `/health` and the metrics.
pub fn supervise<F, Fut>(
    component: Component,
    health: std::sync::Arc<Health>,
    mut stop: watch::Receiver<bool>,
    mut start: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    health.set_ok(component);
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = std::time::Instant::now();
            let outcome = tokio::spawn(start()).await;
            if *stop.borrow() {
                if let Ok(Err(e)) = &outcome {
                    tracing::error!(component = component.name(), error = %format!("{e:#}"), "task failed while stopping");
                }
                return;
            }
            let why = match outcome {
                Ok(Ok(())) => "the task ended unexpectedly".to_owned(),
                Ok(Err(e)) => format!("the task failed: {e:#}"),
                Err(e) if e.is_panic() => format!("the task panicked: {}", panic_message(e)),
                Err(e) => format!("the task was cancelled: {e}"),
            };
            tracing::error!(
                component = component.name(),
                error = %why,
                "background task died; restarting it"
            );
            health.set_failed(component, why);
            if started.elapsed() >= STABLE_RUN {
                backoff = FIRST_BACKOFF;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            health.note_restart(component);
            health.set_ok(component);
        }
    })
}

fn panic_message(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_task_that_panics_is_restarted_and_reported() {
        let health = Arc::new(Health::default());
        let (stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let task = supervise(Component::Delivery, Arc::clone(&health), stop, move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    panic!("first run dies");
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (healthy, report) = health.report();
        assert!(healthy, "{report}");
        assert_eq!(report["components"]["delivery"]["restarts"], 1);
        assert!(report["components"]["delivery"]["lastError"]
            .as_str()
            .unwrap()
            .contains("first run dies"));
        stop_tx.send(true).unwrap();
        // The second run never ends by itself; stopping ends the supervisor.
        task.abort();
    }

    #[test]
    fn a_failed_component_degrades_the_report() {
        let health = Health::default();
        health.set_ok(Component::History);
        health.set_failed(Component::EventLog, "No space left on device");
        let (healthy, report) = health.report();
        assert!(!healthy);
        assert_eq!(report["status"], "degraded");
        assert_eq!(report["components"]["eventLog"]["status"], "degraded");
        assert_eq!(report["components"]["eventHistory"]["status"], "ok");
        health.set_ok(Component::EventLog);
        assert!(health.report().0);
        assert!(health
            .render_metrics()
            .contains("opentrail_component_up{component=\"eventLog\"} 1"));
    }
}
