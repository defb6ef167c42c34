//! One Insights engine per account with Insights enabled, opened and closed as trails
//! enable and disable Insights, start and stop logging, or are deleted.

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
        wanted: &BTreeMap<String, InsightSelection>,
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
        for (account, selection) in wanted {
            if !selection.is_enabled() {
                continue;
            }
            if running
                .get(account)
                .is_some_and(|running| running.selection == *selection)
            {
                continue;
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
            let engine = self.open_engine(account, *selection, directory)?;
            running.insert(
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

    /// Directories of accounts whose Insights ended while the server was down (or before
    /// their End events were appended): their running insights end now.
    fn sweep_leftovers(
        &self,
        wanted: &BTreeMap<String, InsightSelection>,
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
            let config = self.config(&account, InsightSelection::default());
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

    fn config(&self, account: &str, selection: InsightSelection) -> InsightsConfig {
        InsightsConfig {
            source_id: account.to_owned(),
            selection,
            sync: self.sync,
            hold_events: true,
            ..InsightsConfig::default()
        }
    }

    fn open_engine(
        &self,
        account: &str,
        selection: InsightSelection,
        directory: &dyn InsightsDirectory,
    ) -> Result<InsightsEngine, InsightsError> {
        let dir = self.dir.join(account);
        let fresh = !dir.join("state.json").exists();
        let config = self.config(account, selection);
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
        if engines.running.is_empty() {
            return;
        }
        for record in records {
            if let Some(running) = engines.running.get_mut(record.recipient_account_id()) {
                running.engine.observe_record(record);
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
