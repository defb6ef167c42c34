//! One Insights engine per Insights source: an account whose trails enable Insights
//! (keyed by the account id), or an event data store with Insights (keyed `eds-<id>`);
//! opened and closed as trails and stores enable and disable Insights, start and stop
//! logging, or are deleted.

use chrono::{DateTime, Duration, Utc};
use opentrail_insights::{
    InsightSelection, InsightType, InsightsConfig, InsightsEngine, InsightsError, MetricKey,
    Resolution,
};
use opentrail_model::{Clock, EventRecord};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Days of stored history a new engine is bootstrapped from (AWS trains on 28 days).
pub const BOOTSTRAP_DAYS: i64 = 28;

/// Counts per period: `(period start, count)`, oldest first.
pub type MetricPoints = Vec<(DateTime<Utc>, u64)>;

/// Which events a source counts (the trails' or the store's selectors and regions).
pub type EventFilter = Arc<dyn Fn(&EventRecord) -> bool + Send + Sync>;

/// What one Insights source analyses.
#[derive(Clone)]
pub struct InsightsSource {
    /// The account whose events are analysed.
    pub account: String,
    pub selection: InsightSelection,
    /// An event data store source's ARN: written as `insightSource` in its Insights
    /// events (which then go to its destination store only). `None` for trails.
    pub insight_source: Option<String>,
    /// The events of `account` that count; others are ignored.
    pub filter: EventFilter,
}

impl InsightsSource {
    /// A source counting every event of `account` (its selection decides the rest).
    pub fn account(account: &str, selection: InsightSelection) -> Self {
        Self {
            account: account.to_owned(),
            selection,
            insight_source: None,
            filter: Arc::new(|_| true),
        }
    }
}

/// The server's view of which sources analyse what.
pub trait InsightsDirectory: Send + Sync {
    /// Each Insights source by its key: an account with at least one logging trail that
    /// has insight selectors (keyed by the account id, with the union of their
    /// selections), and each event data store with Insights (`eds-<store id>`). `Err`
    /// when they cannot be read (nothing changes).
    fn enabled_accounts(&self) -> Result<BTreeMap<String, InsightsSource>, String>;

    /// Stored events of `account` in `[since, until)`, oldest first, to bootstrap a new
    /// engine's baselines (the hub keeps those its source's filter admits).
    fn stored_history(
        &self,
        account: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<EventRecord>;
}

struct Running {
    source: InsightsSource,
    engine: InsightsEngine,
}

/// The engines, by account.
pub struct InsightsHub {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    sync: bool,
    state: Mutex<Engines>,
}

#[derive(Default)]
struct Engines {
    running: BTreeMap<String, Running>,
    /// Engines of accounts whose Insights ended, kept until their End events are
    /// acknowledged; then their directories are removed.
    closing: BTreeMap<String, InsightsEngine>,
    /// Whether directories left by accounts no longer enabled were looked for.
    swept: bool,
}

impl InsightsHub {
    /// Engines keep their counters in `dir/<account>/`; `clock` drives their minutes.
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>, sync: bool) -> Self {
        Self {
            dir,
            clock,
            sync,
            state: Mutex::new(Engines::default()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Engines> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the engines of newly enabled accounts (bootstrapped from stored history),
    /// reopens those whose selection changed, and closes accounts no longer enabled:
    /// Insights ends with the last trail that runs it. Insights still running when their
    /// type is turned off end at that minute; their End events come out of the next
    /// [`tick`](Self::tick), and a closed account's counters are removed once they are
    /// acknowledged.
    pub fn apply(
        &self,
        wanted: &BTreeMap<String, InsightsSource>,
        directory: &dyn InsightsDirectory,
    ) -> Result<(), InsightsError> {
        let mut engines = self.lock();
        let Engines {
            running,
            closing,
            swept,
        } = &mut *engines;
        if !std::mem::replace(swept, true) {
            self.sweep_leftovers(wanted, running, closing);
        }
        let gone: Vec<String> = running
            .keys()
            .filter(|account| !wanted.contains_key(*account))
            .cloned()
            .collect();
        for account in gone {
            let Some(Running { mut engine, .. }) = running.remove(&account) else {
                continue;
            };
            let ended = engine.end_insights(|_| true)?;
            tracing::info!(account, ended = ended.len(), "insights disabled");
            closing.insert(account, engine);
        }
        for (account, source) in wanted {
            let selection = &source.selection;
            if !selection.is_enabled() {
                continue;
            }
            if let Some(running) = running.get_mut(account) {
                if running.source.selection == *selection
                    && running.source.insight_source == source.insight_source
                {
                    // Same analysis: only which events count may have changed.
                    running.source.filter = Arc::clone(&source.filter);
                    continue;
                }
            }
            // A changed selection ends the insights of the types turned off, then
            // reopens the engine on its stored counters (and its held events).
            if let Some(mut previous) = running.remove(account) {
                let ended = previous
                    .engine
                    .end_insights(|insight_type| !selection_has(selection, insight_type))?;
                tracing::info!(account, ended = ended.len(), "insight selection changed");
            }
            // An account enabled again while its End events wait starts afresh after them.
            if let Some(mut leaving) = closing.remove(account) {
                leaving.end_insights(|_| true)?;
                if !leaving.unacknowledged().is_empty() {
                    closing.insert(account.clone(), leaving);
                    continue;
                }
                drop(leaving);
                self.remove_counters(account);
            }
            let engine = self.open_engine(account, source, directory)?;
            running.insert(
                account.clone(),
                Running {
                    source: source.clone(),
                    engine,
                },
            );
            tracing::info!(account, "insights enabled");
        }
        Ok(())
    }

    /// Directories of accounts whose Insights ended while the server was down (or before
    /// their End events were appended): their running insights end now.
    fn sweep_leftovers(
        &self,
        wanted: &BTreeMap<String, InsightsSource>,
        running: &BTreeMap<String, Running>,
        closing: &mut BTreeMap<String, InsightsEngine>,
    ) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(account) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if wanted.contains_key(&account) || running.contains_key(&account) {
                continue;
            }
            let dir = entry.path();
            if !dir.join("state.json").exists() {
                self.remove_counters(&account);
                continue;
            }
            let config = self.config(&account, InsightSelection::default(), None);
            match InsightsEngine::open(&dir, config, Arc::clone(&self.clock), None) {
                Ok(mut engine) => match engine.end_insights(|_| true) {
                    Ok(ended) => {
                        tracing::info!(
                            account,
                            ended = ended.len(),
                            "insights found disabled at start"
                        );
                        closing.insert(account, engine);
                    }
                    Err(e) => {
                        tracing::warn!(account, error = %e, "failed to end the insights of a disabled account")
                    }
                },
                Err(e) => {
                    tracing::warn!(account, error = %e, "failed to open the counters of a disabled account")
                }
            }
        }
    }

    fn remove_counters(&self, account: &str) {
        let dir = self.dir.join(account);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(account, error = %e, "failed to remove the counters of an account whose Insights ended");
            }
        }
    }

    fn config(
        &self,
        key: &str,
        selection: InsightSelection,
        insight_source: Option<String>,
    ) -> InsightsConfig {
        InsightsConfig {
            source_id: key.to_owned(),
            insight_source,
            selection,
            sync: self.sync,
            hold_events: true,
            ..InsightsConfig::default()
        }
    }

    fn open_engine(
        &self,
        key: &str,
        source: &InsightsSource,
        directory: &dyn InsightsDirectory,
    ) -> Result<InsightsEngine, InsightsError> {
        let account = key;
        let dir = self.dir.join(key);
        let fresh = !dir.join("state.json").exists();
        let config = self.config(key, source.selection, source.insight_source.clone());
        let now = self.clock.now();
        let since = now - Duration::days(BOOTSTRAP_DAYS);
        let mut engine = InsightsEngine::open(
            &dir,
            config,
            Arc::clone(&self.clock),
            fresh.then_some(since),
        )?;
        if fresh {
            let history = directory.stored_history(&source.account, since, now);
            let mut count = 0;
            for record in history.iter().filter(|record| (source.filter)(record)) {
                engine.observe_record(record);
                count += 1;
            }
            engine.backfill_until(now)?;
            tracing::info!(
                account,
                events = count,
                "insights bootstrapped from stored history"
            );
        }
        Ok(engine)
    }

    /// Counts the calls of `records` in the engines of the sources that admit them.
    pub fn observe(&self, records: &[EventRecord]) {
        let mut engines = self.lock();
        if engines.running.is_empty() {
            return;
        }
        for record in records {
            let account = record.recipient_account_id();
            for running in engines.running.values_mut() {
                if running.source.account == account && (running.source.filter)(record) {
                    running.engine.observe_record(record);
                }
            }
        }
    }

    /// Closes the minutes that ended; returns every Insights event record not yet
    /// acknowledged (those just started or ended, and any a crash left unappended).
    pub fn tick(&self) -> Vec<String> {
        let mut engines = self.lock();
        let mut records = Vec::new();
        for (account, running) in engines.running.iter_mut() {
            if let Err(e) = running.engine.tick() {
                tracing::warn!(account, error = %e, "insights tick failed");
            }
            records.extend_from_slice(running.engine.unacknowledged());
        }
        for engine in engines.closing.values() {
            records.extend_from_slice(engine.unacknowledged());
        }
        records
    }

    /// The records the last [`tick`](Self::tick) returned were appended to the log.
    pub fn acknowledge(&self) {
        let mut engines = self.lock();
        for (account, running) in engines.running.iter_mut() {
            if let Err(e) = running.engine.acknowledge() {
                tracing::warn!(account, error = %e, "failed to acknowledge insights events");
            }
        }
        let closing = std::mem::take(&mut engines.closing);
        drop(engines);
        for (account, engine) in closing {
            drop(engine);
            self.remove_counters(&account);
        }
    }

    /// Whether no account has Insights running or ending: the events read meanwhile are
    /// not held anywhere, so the log's cursor may pass them at once.
    pub fn is_idle(&self) -> bool {
        let engines = self.lock();
        engines.running.is_empty() && engines.closing.is_empty()
    }

    /// Whether any engine is running, so that [`Self::observe`] counts anything.
    pub fn is_counting(&self) -> bool {
        !self.lock().running.is_empty()
    }

    /// Whether `account` has Insights running.
    pub fn is_enabled(&self, account: &str) -> bool {
        self.lock().running.contains_key(account)
    }

    /// The stored counts of `key` (see `InsightsEngine::metric_data`); `None` when the
    /// account has no Insights running.
    pub fn metric_data(
        &self,
        key: &MetricKey,
        resolution: Resolution,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        fill_with_zeros: bool,
    ) -> Option<Result<MetricPoints, InsightsError>> {
        let engines = self.lock();
        let running = engines.running.get(&*key.account)?;
        Some(
            running
                .engine
                .metric_data(key, resolution, start, end, fill_with_zeros),
        )
    }
}

fn selection_has(selection: &InsightSelection, insight_type: InsightType) -> bool {
    match insight_type {
        InsightType::ApiCallRateInsight => selection.call_rate.is_some(),
        InsightType::ApiErrorRateInsight => selection.error_rate.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentrail_insights::EventCategories;
    use opentrail_model::TestClock;

    struct Fixed(BTreeMap<String, InsightsSource>);

    impl InsightsDirectory for Fixed {
        fn enabled_accounts(&self) -> Result<BTreeMap<String, InsightsSource>, String> {
            Ok(self.0.clone())
        }

        fn stored_history(&self, _: &str, _: DateTime<Utc>, _: DateTime<Utc>) -> Vec<EventRecord> {
            Vec::new()
        }
    }

    fn call(time: DateTime<Utc>, category: &str) -> EventRecord {
        let (source, name, read_only) = match category {
            "Data" => ("s3.amazonaws.com", "GetObject", true),
            _ => ("ssm.amazonaws.com", "SendCommand", false),
        };
        EventRecord::from_json(&format!(
            r#"{{"eventVersion":"1.08","eventTime":"{}","eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1","eventID":"e","eventType":"AwsApiCall","readOnly":{read_only},"recipientAccountId":"111122223333","eventCategory":"{category}","managementEvent":{}}}"#,
            time.format("%Y-%m-%dT%H:%M:%SZ"),
            category == "Management"
        ))
        .unwrap()
    }

    /// Two sources of one account: its trails (data events only) and an event data store
    /// (management events); each counts its own events and names itself in its records.
    #[test]
    fn each_source_counts_what_it_admits_and_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-01-05T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = TestClock::new(t0);
        let hub = InsightsHub::new(dir.path().to_path_buf(), Arc::new(clock.clone()), false);
        let data_only = InsightSelection {
            call_rate: Some(EventCategories {
                management: false,
                data: true,
            }),
            error_rate: None,
        };
        let source_arn = "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/src";
        let mut sources = BTreeMap::new();
        sources.insert(
            "111122223333".to_owned(),
            InsightsSource::account("111122223333", data_only),
        );
        sources.insert(
            "eds-src".to_owned(),
            InsightsSource {
                account: "111122223333".into(),
                selection: InsightSelection {
                    call_rate: Some(EventCategories::MANAGEMENT),
                    error_rate: None,
                },
                insight_source: Some(source_arn.into()),
                filter: Arc::new(|event: &EventRecord| event.event_category() == "Management"),
            },
        );
        let directory = Fixed(sources.clone());
        hub.apply(&sources, &directory).unwrap();
        let mut burst = Vec::new();
        for second in 0..60 {
            for category in ["Management", "Data"] {
                burst.push(call(t0 + Duration::seconds(second), category));
            }
        }
        hub.observe(&burst);
        let mut records = Vec::new();
        for minute in 1..=9 {
            clock.set(t0 + Duration::minutes(minute) + Duration::seconds(65));
            records.extend(hub.tick());
            hub.acknowledge();
        }
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|text| serde_json::from_str(text).unwrap())
            .collect();
        let of = |name: &str| -> Vec<&serde_json::Value> {
            records
                .iter()
                .filter(|record| record["insightDetails"]["eventName"] == name)
                .collect()
        };
        let data = of("GetObject");
        let management = of("SendCommand");
        assert_eq!(data.len(), 2, "{records:?}");
        assert_eq!(management.len(), 2, "{records:?}");
        assert!(data
            .iter()
            .all(|record| record.get("insightSource").is_none()));
        assert!(management
            .iter()
            .all(|record| record["insightSource"] == source_arn));
        // The account's trails did not count the management calls.
        let key = MetricKey {
            account: Arc::from("111122223333"),
            region: Arc::from("us-east-1"),
            event_source: Arc::from("ssm.amazonaws.com"),
            event_name: Arc::from("SendCommand"),
            insight_type: InsightType::ApiCallRateInsight,
            error_code: None,
        };
        let points = hub
            .metric_data(
                &key,
                Resolution::OneMinute,
                t0,
                t0 + Duration::minutes(5),
                false,
            )
            .unwrap()
            .unwrap();
        assert!(points.is_empty(), "{points:?}");
    }
}
