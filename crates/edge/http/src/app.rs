//! The server's state every request handler shares.

use crate::audit::AuditSink;
use crate::auth::Authenticator;
use crate::metrics::Metrics;
use opentrail_model::Clock;
use opentrail_trails::TrailService;
use opentrail_wire::ServiceModel;
use std::sync::Arc;

pub struct App {
    pub model: ServiceModel,
    /// The durable event log (the embedded segment log by default).
    pub log: Arc<dyn opentrail_log::DurableLog>,
    /// The event log's disk use and consumers as of the last retention pass, for `/metrics`.
    pub log_retention: Arc<opentrail_log::RetentionStatus>,
    pub auth: Authenticator,
    pub trails: Arc<TrailService>,
    /// CloudTrail Lake event data stores (control plane).
    pub stores: Arc<opentrail_stores::StoreService>,
    /// CloudTrail Lake queries (StartQuery ... CancelQuery).
    pub queries: Arc<opentrail_queries::QueryService>,
    /// CreateDashboard ... StartDashboardRefresh, and tags on dashboards.
    pub dashboards: Arc<opentrail_dashboards::DashboardService>,
    /// SearchSampleQueries and GenerateQuery.
    pub samples: Arc<opentrail_samples::SampleService>,
    /// StartImport ... ListImportFailures: trail buckets copied into event data stores.
    pub imports: Arc<opentrail_imports::ImportService>,
    /// The 90-day event history behind LookupEvents.
    pub history: Arc<dyn opentrail_history::EventIndex>,
    /// The Insights engines (ListInsightsMetricData), fed by the server's Insights consumer.
    pub insights: Arc<opentrail_insights_worker::InsightsHub>,
    /// Digest signing keys, for ListPublicKeys.
    pub keys: Arc<opentrail_delivery::KeyStore>,
    pub metrics: Metrics,
    /// What `/health` reports.
    pub health: Arc<crate::health::Health>,
    pub audit: Box<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
    pub max_request_bytes: usize,
    /// The data dir's account, and every account this server hosts: ingest refuses
    /// records claiming to be their audit events unless the key may forward them, and
    /// registers the accounts of records it has not seen yet.
    pub account: opentrail_model::AccountId,
    pub accounts: Arc<crate::accounts::AccountRegistry>,
    /// Days of event history kept, to tell ingest producers which records LookupEvents
    /// will never show.
    pub history_retention_days: u32,
    /// The regions requests may be signed for and ingested records may name.
    pub regions: opentrail_model::KnownRegions,
    /// How long an authenticated request's body may take to arrive.
    pub body_read_timeout: std::time::Duration,
    /// Per-account limit on LookupEvents calls, when configured.
    pub lookup_rate_limit: Option<crate::rate_limit::RateLimiter>,
}

impl App {
    /// Reports event history's files in `/health`; returns their counters for `/metrics`.
    pub(crate) fn history_store_state(&self) -> opentrail_history::HistoryHealth {
        let history = self.history.health();
        if history.flush_failing {
            self.health.set_failed(
                crate::health::Component::HistoryStore,
                "event history cannot write its segments (is the disk full?); new events stay in memory and are written once it can",
            );
        } else {
            self.health.set_ok(crate::health::Component::HistoryStore);
        }
        history
    }

    /// Why the event log cannot take appends now (`None` when it can), as the log itself
    /// reports it; `/health` shows the same.
    pub fn event_log_failure(&self) -> Option<String> {
        let log = self.log.health();
        if log.writable {
            self.health.set_ok(crate::health::Component::EventLog);
            None
        } else {
            let why = log
                .last_error
                .unwrap_or_else(|| "the event log cannot be written".to_owned());
            self.health
                .set_failed(crate::health::Component::EventLog, why.clone());
            Some(why)
        }
    }
}
