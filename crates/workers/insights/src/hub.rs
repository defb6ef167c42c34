//! One Insights engine per account with Insights enabled, opened and closed as trails
//! enable and disable Insights, start and stop logging, or are deleted.

use chrono::{DateTime, Duration, Utc};
use opentrail_insights::{
    InsightEvent, InsightSelection, InsightsConfig, InsightsEngine, InsightsError, MetricKey,
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

/// The server's view of which accounts analyse what.
pub trait InsightsDirectory: Send + Sync {
    /// Each account with at least one logging trail that has insight selectors, with the
    /// union of their selections. `Err` when the trails cannot be read (nothing changes).
    fn enabled_accounts(&self) -> Result<BTreeMap<String, InsightSelection>, String>;

    /// Stored events of `account` in `[since, until)`, oldest first, to bootstrap a new
    /// engine's baselines.
    fn stored_history(
        &self,
        account: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<EventRecord>;
}

struct Running {
    selection: InsightSelection,
    engine: InsightsEngine,
}

/// The engines, by account.
pub struct InsightsHub {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    sync: bool,
    engines: Mutex<BTreeMap<String, Running>>,
}

impl InsightsHub {
    /// Engines keep their counters in `dir/<account>/`; `clock` drives their minutes.
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>, sync: bool) -> Self {
        Self {
            dir,
            clock,
            sync,
            engines: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.engines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the engines of newly enabled accounts (bootstrapped from stored history),
    /// reopens those whose selection changed, and closes (and forgets the counters of)
    /// accounts no longer enabled: Insights ends with the last trail that runs it.
    pub fn apply(
        &self,
        wanted: &BTreeMap<String, InsightSelection>,
        directory: &dyn InsightsDirectory,
    ) -> Result<(), InsightsError> {
        let mut engines = self.lock();
        let gone: Vec<String> = engines
            .keys()
            .filter(|account| !wanted.contains_key(*account))
            .cloned()
            .collect();
        for account in gone {
            engines.remove(&account);
            let dir = self.dir.join(&account);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(account, error = %e, "failed to remove the counters of an account whose Insights ended");
                }
            }
            tracing::info!(account, "insights disabled");
        }
        for (account, selection) in wanted {
            if !selection.is_enabled() {
                continue;
            }
            if engines
                .get(account)
                .is_some_and(|running| running.selection == *selection)
            {
                continue;
            }
            // A changed selection reopens the engine on its stored counters.
            engines.remove(account);
            let engine = self.open_engine(account, *selection, directory)?;
            engines.insert(
                account.clone(),
                Running {
                    selection: *selection,
                    engine,
                },
            );
            tracing::info!(account, "insights enabled");
        }
        Ok(())
    }

    fn open_engine(
        &self,
        account: &str,
        selection: InsightSelection,
        directory: &dyn InsightsDirectory,
    ) -> Result<InsightsEngine, InsightsError> {
        let dir = self.dir.join(account);
        let fresh = !dir.join("state.json").exists();
        let config = InsightsConfig {
            source_id: account.to_owned(),
            selection,
            sync: self.sync,
            ..InsightsConfig::default()
        };
        let now = self.clock.now();
        let since = now - Duration::days(BOOTSTRAP_DAYS);
        let mut engine = InsightsEngine::open(
            &dir,
            config,
            Arc::clone(&self.clock),
            fresh.then_some(since),
        )?;
        if fresh {
            let history = directory.stored_history(account, since, now);
            let count = history.len();
            for record in &history {
                engine.observe_record(record);
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

    /// Counts the calls of `records` in their accounts' engines.
    pub fn observe(&self, records: &[EventRecord]) {
        let mut engines = self.lock();
        if engines.is_empty() {
            return;
        }
        for record in records {
            if let Some(running) = engines.get_mut(record.recipient_account_id()) {
                running.engine.observe_record(record);
            }
        }
    }

    /// Closes the minutes that ended; returns the Insights events they started or ended.
    pub fn tick(&self) -> Vec<InsightEvent> {
        let mut events = Vec::new();
        for (account, running) in self.lock().iter_mut() {
            match running.engine.tick() {
                Ok(mut more) => events.append(&mut more),
                Err(e) => tracing::warn!(account, error = %e, "insights tick failed"),
            }
        }
        events
    }

    /// Whether `account` has Insights running.
    pub fn is_enabled(&self, account: &str) -> bool {
        self.lock().contains_key(account)
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
        let running = engines.get(&*key.account)?;
        Some(
            running
                .engine
                .metric_data(key, resolution, start, end, fill_with_zeros),
        )
    }
}
