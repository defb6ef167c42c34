//! The Insights engine of one trail or event data store: fed API calls and driven by a
//! clock, it counts them per minute, keeps the counts durably with rollups, retrains
//! each key's baseline daily, and returns Insights Start/End events as minutes close.

use crate::config::{DetectorConfig, InsightType, InsightsConfig};
use crate::detector::{Decision, DetectorState};
use crate::error::InsightsError;
use crate::hash::{hash_parts, FxHashMap};
use crate::key::{ApiCall, MetricKey};
use crate::model::{hour_of_week, KeyModel, Thresholds, TrainingData, DISPERSION_DAYS};
use crate::record::{
    attribution_lists, averages, derived_id, AttributionValue, InsightEvent, InsightState,
};
use crate::store::{
    CountRecord, CounterStore, Resolution, Saved, SavedInsight, SavedTop, MINUTES_PER_DAY,
};
use crate::topk::Attributions;
use chrono::{DateTime, Duration, Utc};
use opentrail_model::event::EventRecord;
use opentrail_model::Clock;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

/// Entries kept per attribute sketch of a minute or a day.
const SKETCH_CAPACITY: usize = 8;
/// Entries kept per attribute sketch of a running insight.
const INSIGHT_SKETCH_CAPACITY: usize = 16;
/// Values reported per attribute (AWS: top 5).
const TOP_VALUES: usize = 5;
/// Events more than this many minutes ahead of the closing point are not counted.
const MAX_OPEN_MINUTES: u32 = 60;
/// Days of daily totals kept for `baseline.average` (the 7 days before the start's day).
const BASELINE_DAYS: usize = 7;
/// Keys whose models are trained together (bounds the training's transient memory).
const TRAINING_SHARD: u32 = 16_384;

/// Counters of what the engine did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Keys tracked now.
    pub keys: usize,
    /// Events whose minute was already closed when they arrived (not counted).
    pub late_events: u64,
    /// Events more than an hour ahead of the closing point (not counted).
    pub future_events: u64,
    /// Events of new keys refused because `max_keys` keys are tracked.
    pub dropped_key_events: u64,
    pub insights_started: u64,
    pub insights_ended: u64,
    /// Keys evicted after 90 days without a call.
    pub evicted_keys: u64,
}

struct OpenMinute {
    minute: u32,
    count: u64,
    attributions: Attributions,
}

/// A running insight.
struct Active {
    start: u32,
    event_id_seed: u32,
    baseline_sum: u64,
    baseline_minutes: u32,
    baseline_attributions: [Vec<AttributionValue>; 3],
    /// Calls of the minutes up to the last loud one.
    count: u64,
    attributions: Attributions,
    /// Calls of the quiet minutes since the last loud one (dropped if the insight ends).
    pending_count: u64,
    pending_attributions: Attributions,
}

struct KeyState {
    key: MetricKey,
    first_minute: u32,
    last_seen_minute: u32,
    open: Vec<OpenMinute>,
    /// Attributions of the last closed minute, for an insight starting at it.
    last_closed: Option<Box<Attributions>>,
    previous_count: u64,
    /// Rollup accumulators of the current 5-minute and hour buckets.
    five_minutes: u64,
    hour: u64,
    /// Calls of the current UTC day so far, and of the 7 days before (yesterday first).
    today: u64,
    days: [u64; BASELINE_DAYS],
    today_attributions: Box<Attributions>,
    day_attributions: VecDeque<Attributions>,
    /// `(baseline sum, baseline minutes)` for an insight starting at the last closed minute.
    previous_baseline: (u64, u32),
    model: Option<KeyModel>,
    /// Exponentially decayed sums of the calls and of the model's expected calls over
    /// the last ~2 hours outside insights: their ratio is the recent level.
    level_calls: f32,
    level_expected: f32,
    /// Thresholds cached for (hour of the week, level in tenths).
    thresholds: Option<(usize, u32, Thresholds)>,
    detector: DetectorState,
    active: Option<Box<Active>>,
}

impl KeyState {
    fn new(key: MetricKey, first_minute: u32) -> Self {
        Self {
            key,
            first_minute,
            last_seen_minute: first_minute,
            open: Vec::new(),
            last_closed: None,
            previous_count: 0,
            five_minutes: 0,
            hour: 0,
            today: 0,
            days: [0; BASELINE_DAYS],
            today_attributions: Box::default(),
            day_attributions: VecDeque::new(),
            previous_baseline: (0, 0),
            model: None,
            level_calls: 0.0,
            level_expected: 0.0,
            thresholds: None,
            detector: DetectorState::default(),
            active: None,
        }
    }

    fn matches(&self, call: &ApiCall<'_>, insight_type: InsightType, error: Option<&str>) -> bool {
        let key = &self.key;
        key.insight_type == insight_type
            && *key.event_name == *call.event_name
            && *key.event_source == *call.event_source
            && *key.account == *call.account
            && *key.region == *call.region
            && key.error_code.as_deref() == error
    }

    fn open_minute(&mut self, minute: u32) -> &mut OpenMinute {
        let position = match self.open.iter().rposition(|open| open.minute <= minute) {
            Some(index) if self.open[index].minute == minute => index,
            Some(index) => index + 1,
            None => 0,
        };
        if self.open.get(position).map(|open| open.minute) != Some(minute) {
            self.open.insert(
                position,
                OpenMinute {
                    minute,
                    count: 0,
                    attributions: Attributions::default(),
                },
            );
        }
        &mut self.open[position]
    }

    /// The recent level in tenths: how much above its model the key has run lately
    /// (1.0 to `max_level`), so that traffic growing faster than the daily retraining
    /// follows is not taken for an anomaly. Pseudo-counts keep rare keys near 1.
    fn level_tenths(&self, config: &DetectorConfig) -> u32 {
        const PSEUDO_CALLS: f32 = 10.0;
        let level = (self.level_calls + PSEUDO_CALLS) / (self.level_expected + PSEUDO_CALLS);
        let level = f64::from(level).clamp(1.0, config.max_level);
        (level * 10.0).round() as u32
    }

    /// Adds a closed minute outside any insight to the recent level. A minute counts
    /// at most up to its quiet threshold: growth is followed a little at a time, while
    /// the first minutes of a burst (before it is detected) barely move the level.
    fn update_level(&mut self, slot: usize, count: u64) {
        const DECAY: f32 = 1.0 - 1.0 / 120.0;
        let Some(model) = self.model.as_ref() else {
            return;
        };
        let cap = self.thresholds.map_or(count, |(_, _, thresholds)| {
            u64::from(thresholds.quiet_below)
        });
        self.level_calls = self.level_calls * DECAY + count.min(cap) as f32;
        self.level_expected = self.level_expected * DECAY + model.rate(slot) as f32;
    }

    fn baseline_attributions(&self, minutes: u32) -> [Vec<AttributionValue>; 3] {
        let mut merged = (*self.today_attributions).clone();
        for day in &self.day_attributions {
            merged.merge(day, INSIGHT_SKETCH_CAPACITY);
        }
        merged
            .by_attribute
            .each_ref()
            .map(|top| averages(&top.top(TOP_VALUES), minutes))
    }

    fn heap_bytes(&self) -> usize {
        let open: usize = self
            .open
            .iter()
            .map(|open| std::mem::size_of::<OpenMinute>() + open.attributions.heap_bytes())
            .sum();
        let days: usize = self
            .day_attributions
            .iter()
            .map(|day| std::mem::size_of::<Attributions>() + day.heap_bytes())
            .sum();
        let active = self.active.as_ref().map_or(0, |active| {
            std::mem::size_of::<Active>()
                + active.attributions.heap_bytes()
                + active.pending_attributions.heap_bytes()
                + active
                    .baseline_attributions
                    .iter()
                    .map(|values| values.len() * (std::mem::size_of::<AttributionValue>() + 64))
                    .sum::<usize>()
        });
        open + days
            + std::mem::size_of::<Attributions>()
            + self.today_attributions.heap_bytes()
            + self.last_closed.as_ref().map_or(0, |last| {
                std::mem::size_of::<Attributions>() + last.heap_bytes()
            })
            + self.model.as_ref().map_or(0, KeyModel::heap_bytes)
            + active
    }
}

/// The Insights engine of one trail (or event data store).
pub struct InsightsEngine {
    config: InsightsConfig,
    clock: Arc<dyn Clock>,
    store: CounterStore,
    /// Key states by key id; `None` once evicted (boxed: a free slot costs 8 bytes).
    keys: Vec<Option<Box<KeyState>>>,
    live_keys: usize,
    index: FxHashMap<u64, u32>,
    /// Keys whose hash another key holds in `index` (practically never).
    colliding: Vec<u32>,
    /// The strings of keys, shared (accounts, regions and sources repeat across keys).
    strings: std::collections::HashSet<Arc<str>, crate::hash::FxBuild>,
    /// Keys created since the last tick, to append to the key log.
    new_keys: Vec<u32>,
    /// Every minute before this one is closed.
    closed_before: u32,
    current_day: u32,
    models_day: Option<u32>,
    stats: EngineStats,
    /// Event records returned but not acknowledged yet (with `hold_events`).
    unacknowledged: Vec<String>,
}

fn minute_of(time: DateTime<Utc>) -> Option<u32> {
    u32::try_from(time.timestamp().div_euclid(60)).ok()
}

fn time_of(minute: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(minute) * 60, 0).unwrap_or_default()
}

impl InsightsEngine {
    /// Opens (or creates) the engine's counters in `dir`. Counts stored there are the
    /// history the baselines are trained on at the first tick. A new directory starts
    /// counting at `backfill_from` when given (feed past events in time order with
    /// [`backfill_until`](Self::backfill_until)), else at the clock's current minute.
    pub fn open(
        dir: &Path,
        config: InsightsConfig,
        clock: Arc<dyn Clock>,
        backfill_from: Option<DateTime<Utc>>,
    ) -> Result<Self, InsightsError> {
        let store = CounterStore::open(dir, config.sync)?;
        let now_minute =
            minute_of(clock.now() - Duration::seconds(i64::from(config.close_delay_seconds)))
                .unwrap_or(0);
        let (closed_before, saved) = match store.load_state()? {
            Some((minute, saved)) => (minute, saved),
            None => (
                backfill_from.and_then(minute_of).unwrap_or(now_minute),
                Saved::default(),
            ),
        };
        let mut engine = Self {
            config,
            clock,
            store,
            keys: Vec::new(),
            live_keys: 0,
            index: FxHashMap::default(),
            colliding: Vec::new(),
            strings: Default::default(),
            new_keys: Vec::new(),
            closed_before,
            current_day: closed_before / MINUTES_PER_DAY,
            models_day: None,
            stats: EngineStats::default(),
            unacknowledged: saved.unacknowledged,
        };
        for (id, first_minute, key) in engine.store.load_keys()? {
            engine.insert_key(id, KeyState::new(key, first_minute));
        }
        engine.restore_daily_totals()?;
        for insight in saved.insights {
            engine.resume_insight(insight);
        }
        Ok(engine)
    }

    /// Puts back an insight that was running when the engine was last flushed, so that
    /// it ends once (and does not start again) after a restart.
    fn resume_insight(&mut self, saved: SavedInsight) {
        let Some(Some(state)) = self.keys.get_mut(saved.key as usize) else {
            return;
        };
        let baseline_attributions = saved.baseline_attributions.map(|values| {
            values
                .into_iter()
                .map(|(value, average)| AttributionValue {
                    value: Arc::from(value),
                    average,
                })
                .collect()
        });
        state.detector = DetectorState::resumed(
            saved.previous_count,
            saved.previous_elevated,
            saved.quiet_run,
        );
        state.previous_count = saved.previous_count;
        state.active = Some(Box::new(Active {
            start: saved.start,
            event_id_seed: saved.event_id_seed,
            baseline_sum: saved.baseline_sum,
            baseline_minutes: saved.baseline_minutes,
            baseline_attributions,
            count: saved.count,
            attributions: Attributions::from_lists(&saved.attributions, INSIGHT_SKETCH_CAPACITY),
            pending_count: saved.pending_count,
            pending_attributions: Attributions::from_lists(
                &saved.pending_attributions,
                INSIGHT_SKETCH_CAPACITY,
            ),
        }));
    }

    /// What is written with `closedBefore`: the running insights and the events not
    /// acknowledged yet.
    fn saved(&self) -> Saved {
        let insights = self
            .keys
            .iter()
            .enumerate()
            .filter_map(|(id, entry)| {
                let state = entry.as_ref()?;
                let active = state.active.as_ref()?;
                let (previous_count, previous_elevated, quiet_run) = state.detector.running_parts();
                let baseline_attributions: SavedTop<f64> =
                    active.baseline_attributions.each_ref().map(|values| {
                        values
                            .iter()
                            .map(|value| (value.value.to_string(), value.average))
                            .collect()
                    });
                Some(SavedInsight {
                    key: id as u32,
                    start: active.start,
                    event_id_seed: active.event_id_seed,
                    baseline_sum: active.baseline_sum,
                    baseline_minutes: active.baseline_minutes,
                    baseline_attributions,
                    count: active.count,
                    attributions: active.attributions.to_lists(),
                    pending_count: active.pending_count,
                    pending_attributions: active.pending_attributions.to_lists(),
                    previous_count,
                    previous_elevated,
                    quiet_run,
                })
            })
            .collect();
        Saved {
            insights,
            unacknowledged: self.unacknowledged.clone(),
        }
    }

    fn flush(&mut self) -> Result<(), InsightsError> {
        let saved = self.saved();
        self.store.flush(self.closed_before, &saved)
    }

    /// The event records returned and not acknowledged yet, oldest first (with
    /// `hold_events`; they survive a restart).
    pub fn unacknowledged(&self) -> &[String] {
        &self.unacknowledged
    }

    /// The records of [`unacknowledged`](Self::unacknowledged) were appended: forget them.
    pub fn acknowledge(&mut self) -> Result<(), InsightsError> {
        if self.unacknowledged.is_empty() {
            return Ok(());
        }
        self.unacknowledged.clear();
        self.flush()
    }

    /// Ends the running insights of the insight types for which `turned_off` is true, at
    /// the first open minute (Insights was turned off for them): the End's
    /// `insight.average` covers every judged minute since the start.
    pub fn end_insights(
        &mut self,
        turned_off: impl Fn(InsightType) -> bool,
    ) -> Result<Vec<InsightEvent>, InsightsError> {
        let end = self.closed_before;
        let mut events = Vec::new();
        for state in self.keys.iter_mut().flatten() {
            if !turned_off(state.key.insight_type) {
                continue;
            }
            let Some(mut active) = state.active.take() else {
                continue;
            };
            state.detector.stop();
            active.count += std::mem::take(&mut active.pending_count);
            let pending = std::mem::take(&mut active.pending_attributions);
            active.attributions.merge(&pending, INSIGHT_SKETCH_CAPACITY);
            events.push(end_event(&self.config.source_id, &state.key, &active, end));
            self.stats.insights_ended += 1;
        }
        if events.is_empty() {
            return Ok(events);
        }
        self.hold(&events);
        self.flush()?;
        Ok(events)
    }

    fn hold(&mut self, events: &[InsightEvent]) {
        if self.config.hold_events {
            let source = self.config.insight_source.as_deref();
            self.unacknowledged
                .extend(events.iter().map(|event| event.to_json_from(source)));
        }
    }

    fn insert_key(&mut self, id: u32, state: KeyState) {
        let key = &state.key;
        let hash = key_hash(
            &key.account,
            &key.region,
            &key.event_source,
            &key.event_name,
            key.insight_type,
            key.error_code.as_deref(),
        );
        let index = id as usize;
        if self.keys.len() <= index {
            self.keys.resize_with(index + 1, || None);
        }
        if self.keys[index].is_none() {
            self.live_keys += 1;
        }
        self.keys[index] = Some(Box::new(state));
        match self.index.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => self.colliding.push(id),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(id);
            }
        }
    }

    /// The day totals (last 7 days) and today's count from the stored counters.
    fn restore_daily_totals(&mut self) -> Result<(), InsightsError> {
        let today = self.current_day;
        for back in 1..=BASELINE_DAYS as u32 {
            let Some(day) = today.checked_sub(back) else {
                break;
            };
            for record in self.store.read_day(Resolution::OneHour, day)? {
                if let Some(Some(state)) = self.keys.get_mut(record.key as usize) {
                    state.days[back as usize - 1] += record.count;
                }
            }
        }
        for record in self.store.read_day(Resolution::OneMinute, today)? {
            if record.period_start >= self.closed_before {
                continue;
            }
            if let Some(Some(state)) = self.keys.get_mut(record.key as usize) {
                state.today += record.count;
                // Rebuild the open rollup buckets too, so they are not written short.
                if record.period_start / 5 == self.closed_before / 5 {
                    state.five_minutes += record.count;
                }
                if record.period_start / 60 == self.closed_before / 60 {
                    state.hour += record.count;
                }
            }
        }
        Ok(())
    }

    /// Counts one call (`times` identical calls, e.g. from a pre-aggregated feed).
    pub fn observe(&mut self, call: &ApiCall<'_>, times: u64) {
        let Some(minute) = minute_of(call.event_time) else {
            self.stats.late_events += times;
            return;
        };
        if minute < self.closed_before {
            self.stats.late_events += times;
            return;
        }
        if minute >= self.closed_before + MAX_OPEN_MINUTES {
            self.stats.future_events += times;
            return;
        }
        let selection = self.config.selection;
        if call.counts_for_call_rate(&selection) {
            self.count(call, minute, InsightType::ApiCallRateInsight, None, times);
        }
        if let Some(code) = call.error_for_error_rate(&selection) {
            self.count(
                call,
                minute,
                InsightType::ApiErrorRateInsight,
                Some(code),
                times,
            );
        }
    }

    /// Counts the call of an event record (management and data events; others are ignored).
    pub fn observe_record(&mut self, record: &EventRecord) {
        if let Some(call) = ApiCall::from_record(record) {
            self.observe(&call, 1);
        }
    }

    fn count(
        &mut self,
        call: &ApiCall<'_>,
        minute: u32,
        insight_type: InsightType,
        error: Option<&str>,
        times: u64,
    ) {
        let Some(id) = self.key_id(call, insight_type, error, minute) else {
            self.stats.dropped_key_events += times;
            return;
        };
        let Some(Some(state)) = self.keys.get_mut(id as usize) else {
            return;
        };
        state.last_seen_minute = state.last_seen_minute.max(minute);
        let open = state.open_minute(minute);
        open.count += times;
        let [arns, agents, errors] = &mut open.attributions.by_attribute;
        if let Some(arn) = call.user_identity_arn {
            arns.add(arn, times, SKETCH_CAPACITY);
        }
        if let Some(agent) = call.user_agent {
            agents.add(agent, times, SKETCH_CAPACITY);
        }
        errors.add(call.error_code.unwrap_or("null"), times, SKETCH_CAPACITY);
    }

    fn key_id(
        &mut self,
        call: &ApiCall<'_>,
        insight_type: InsightType,
        error: Option<&str>,
        minute: u32,
    ) -> Option<u32> {
        let hash = key_hash(
            call.account,
            call.region,
            call.event_source,
            call.event_name,
            insight_type,
            error,
        );
        if let Some(&id) = self.index.get(&hash) {
            if self.is_key(id, call, insight_type, error) {
                return Some(id);
            }
            if let Some(&id) = self
                .colliding
                .iter()
                .find(|id| self.is_key(**id, call, insight_type, error))
            {
                return Some(id);
            }
        }
        if self.live_keys >= self.config.max_keys {
            return None;
        }
        let id = u32::try_from(self.keys.len()).ok()?;
        let key = MetricKey {
            account: self.intern(call.account),
            region: self.intern(call.region),
            event_source: self.intern(call.event_source),
            event_name: self.intern(call.event_name),
            insight_type,
            error_code: error.map(|code| self.intern(code)),
        };
        self.insert_key(id, KeyState::new(key, minute));
        self.new_keys.push(id);
        Some(id)
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.strings.insert(shared.clone());
        shared
    }

    fn is_key(
        &self,
        id: u32,
        call: &ApiCall<'_>,
        insight_type: InsightType,
        error: Option<&str>,
    ) -> bool {
        matches!(self.keys.get(id as usize), Some(Some(state)) if state.matches(call, insight_type, error))
    }

    /// Closes every minute that ended at least `close_delay_seconds` ago: writes its
    /// counts and rollups, judges it, and returns the Insights events it started or ended.
    pub fn tick(&mut self) -> Result<Vec<InsightEvent>, InsightsError> {
        let target = minute_of(self.now_minus_delay()).unwrap_or(0);
        self.close_until(target, true)
    }

    /// Closes the minutes before `time` (at most up to what [`tick`](Self::tick) would)
    /// without judging them: for replaying history into a new engine. Baselines are
    /// trained at the next tick.
    pub fn backfill_until(&mut self, time: DateTime<Utc>) -> Result<(), InsightsError> {
        let limit = minute_of(self.now_minus_delay()).unwrap_or(0);
        let target = minute_of(time).unwrap_or(0).min(limit);
        self.close_until(target, false).map(|_| ())
    }

    fn now_minus_delay(&self) -> DateTime<Utc> {
        self.clock.now() - Duration::seconds(i64::from(self.config.close_delay_seconds))
    }

    fn close_until(
        &mut self,
        target: u32,
        judge: bool,
    ) -> Result<Vec<InsightEvent>, InsightsError> {
        let mut events = Vec::new();
        for id in std::mem::take(&mut self.new_keys) {
            if let Some(Some(state)) = self.keys.get(id as usize) {
                self.store.append_key(id, state.first_minute, &state.key)?;
            }
        }
        if self.closed_before >= target {
            return Ok(events);
        }
        while self.closed_before < target {
            let minute = self.closed_before;
            let day = minute / MINUTES_PER_DAY;
            if day != self.current_day {
                self.roll_day(day)?;
            }
            if judge && self.models_day != Some(day) {
                self.train_models(day)?;
            }
            self.close_minute(minute, judge, &mut events)?;
            self.closed_before = minute + 1;
        }
        self.hold(&events);
        self.flush()?;
        Ok(events)
    }

    fn close_minute(
        &mut self,
        minute: u32,
        judge: bool,
        events: &mut Vec<InsightEvent>,
    ) -> Result<(), InsightsError> {
        let slot = hour_of_week(minute);
        let minute_of_day = minute % MINUTES_PER_DAY;
        let Self {
            config,
            store,
            keys,
            stats,
            ..
        } = self;
        for (id, entry) in keys.iter_mut().enumerate() {
            let Some(state) = entry.as_mut() else {
                continue;
            };
            let opened = if state.open.first().is_some_and(|open| open.minute == minute) {
                Some(state.open.remove(0))
            } else {
                None
            };
            let count = opened.as_ref().map_or(0, |open| open.count);
            let baseline = (
                state.days.iter().sum::<u64>() + state.today,
                BASELINE_DAYS as u32 * MINUTES_PER_DAY + minute_of_day,
            );
            let idle = count == 0 && state.previous_count == 0 && state.active.is_none();
            if judge && !idle {
                let detector_config = match state.key.insight_type {
                    InsightType::ApiCallRateInsight => &config.call_rate,
                    InsightType::ApiErrorRateInsight => &config.error_rate,
                };
                judge_minute(
                    &config.source_id,
                    detector_config,
                    state,
                    minute,
                    slot,
                    count,
                    opened.as_ref().map(|open| &open.attributions),
                    baseline,
                    stats,
                    events,
                );
            }
            if judge && state.active.is_none() {
                state.update_level(slot, count);
            }
            // Rollups.
            let id = id as u32;
            if count > 0 {
                store.append(
                    Resolution::OneMinute,
                    CountRecord {
                        period_start: minute,
                        key: id,
                        count,
                    },
                )?;
            }
            state.five_minutes += count;
            state.hour += count;
            if (minute + 1).is_multiple_of(5) {
                if state.five_minutes > 0 {
                    let record = CountRecord {
                        period_start: minute - 4,
                        key: id,
                        count: state.five_minutes,
                    };
                    store.append(Resolution::FiveMinutes, record)?;
                }
                state.five_minutes = 0;
            }
            if (minute + 1).is_multiple_of(60) {
                if state.hour > 0 {
                    let record = CountRecord {
                        period_start: minute - 59,
                        key: id,
                        count: state.hour,
                    };
                    store.append(Resolution::OneHour, record)?;
                }
                state.hour = 0;
            }
            state.today += count;
            state.previous_count = count;
            state.previous_baseline = baseline;
            // An insight can start at this minute next time only if it was elevated.
            let elevated = judge
                && state
                    .thresholds
                    .is_some_and(|(_, _, thresholds)| count >= u64::from(thresholds.quiet_below));
            state.last_closed = match opened {
                Some(open) => {
                    state
                        .today_attributions
                        .merge(&open.attributions, SKETCH_CAPACITY);
                    elevated.then(|| Box::new(open.attributions))
                }
                None => None,
            };
        }
        Ok(())
    }

    fn roll_day(&mut self, day: u32) -> Result<(), InsightsError> {
        let elapsed = day.saturating_sub(self.current_day) as usize;
        for state in self.keys.iter_mut().flatten() {
            for _ in 0..elapsed.min(BASELINE_DAYS + 1) {
                state.days.rotate_right(1);
                state.days[0] = std::mem::take(&mut state.today);
                let today = std::mem::take(&mut *state.today_attributions);
                state.day_attributions.push_front(today);
                state.day_attributions.truncate(BASELINE_DAYS);
            }
        }
        self.current_day = day;
        self.flush()?;
        self.store.expire(day, self.config.retention_days)?;
        self.evict_idle_keys(day)
    }

    /// Forgets keys without a call for as long as the hourly counts are kept.
    fn evict_idle_keys(&mut self, day: u32) -> Result<(), InsightsError> {
        let horizon = day.saturating_sub(self.config.retention_days[2]) * MINUTES_PER_DAY;
        let mut evicted = Vec::new();
        for (id, entry) in self.keys.iter_mut().enumerate() {
            let idle = entry.as_ref().is_some_and(|state| {
                state.last_seen_minute < horizon && state.active.is_none() && state.open.is_empty()
            });
            if idle {
                if let Some(state) = entry.take() {
                    evicted.push((id as u32, state.key));
                }
            }
        }
        if evicted.is_empty() {
            return Ok(());
        }
        for (id, key) in &evicted {
            let hash = key_hash(
                &key.account,
                &key.region,
                &key.event_source,
                &key.event_name,
                key.insight_type,
                key.error_code.as_deref(),
            );
            if self.index.get(&hash) == Some(id) {
                self.index.remove(&hash);
            }
            self.colliding.retain(|other| other != id);
        }
        let count = evicted.len();
        drop(evicted);
        // Strings only the interner still holds belonged to evicted keys alone.
        self.strings.retain(|text| Arc::strong_count(text) > 1);
        self.live_keys -= count;
        self.stats.evicted_keys += count as u64;
        let live: Vec<(u32, u32, &MetricKey)> = self
            .keys
            .iter()
            .enumerate()
            .filter_map(|(id, entry)| {
                entry
                    .as_ref()
                    .map(|state| (id as u32, state.first_minute, &state.key))
            })
            .collect();
        self.store.rewrite_keys(&live)
    }

    /// Trains every key's baseline for `day` on the stored counts of the days before.
    fn train_models(&mut self, day: u32) -> Result<(), InsightsError> {
        self.flush()?;
        let training_days = self.config.training_days.max(1);
        let window_start = day.saturating_sub(training_days);
        let key_count = self.keys.len() as u32;
        let mut shard_start = 0u32;
        while shard_start < key_count {
            let shard_end = (shard_start + TRAINING_SHARD).min(key_count);
            let shard = |key: u32| key >= shard_start && key < shard_end;
            let mut hourly: Vec<Vec<(u32, u64)>> =
                vec![Vec::new(); (shard_end - shard_start) as usize];
            for training_day in window_start..day {
                for record in self.store.read_day(Resolution::OneHour, training_day)? {
                    if shard(record.key) {
                        let index = (record.period_start / 60).saturating_sub(window_start * 24);
                        hourly[(record.key - shard_start) as usize].push((index, record.count));
                    }
                }
            }
            let mut minutes: Vec<Vec<(u32, u64)>> =
                vec![Vec::new(); (shard_end - shard_start) as usize];
            for training_day in day.saturating_sub(DISPERSION_DAYS)..day {
                for record in self.store.read_day(Resolution::OneMinute, training_day)? {
                    if shard(record.key) {
                        minutes[(record.key - shard_start) as usize]
                            .push((record.period_start, record.count));
                    }
                }
            }
            let mut dense = vec![0u64; training_days as usize * 24];
            for key in shard_start..shard_end {
                let Some(Some(state)) = self.keys.get_mut(key as usize) else {
                    continue;
                };
                dense.iter_mut().for_each(|value| *value = 0);
                for (index, count) in &hourly[(key - shard_start) as usize] {
                    if let Some(value) = dense.get_mut(*index as usize) {
                        *value += count;
                    }
                }
                let detector_config = match state.key.insight_type {
                    InsightType::ApiCallRateInsight => &self.config.call_rate,
                    InsightType::ApiErrorRateInsight => &self.config.error_rate,
                };
                state.model = KeyModel::train(
                    &TrainingData {
                        today: day,
                        window_start,
                        first_day: state.first_minute / MINUTES_PER_DAY,
                        hourly: &dense,
                        minutes: &minutes[(key - shard_start) as usize],
                    },
                    detector_config,
                );
                state.thresholds = None;
            }
            shard_start = shard_end;
        }
        self.models_day = Some(day);
        Ok(())
    }

    /// The stored counts of `key` at `resolution` for periods starting in `[start, end)`,
    /// oldest first; only non-zero periods, or every period when `fill_with_zeros`.
    /// The minute still open is not included.
    pub fn metric_data(
        &self,
        key: &MetricKey,
        resolution: Resolution,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        fill_with_zeros: bool,
    ) -> Result<Vec<(DateTime<Utc>, u64)>, InsightsError> {
        let period = resolution.minutes();
        let start_minute = minute_of(start).unwrap_or(0).div_ceil(period) * period;
        let end_minute = minute_of(end).unwrap_or(0).min(self.closed_before);
        let mut counts: std::collections::BTreeMap<u32, u64> = Default::default();
        if start_minute < end_minute {
            let id = self
                .keys
                .iter()
                .position(|entry| entry.as_ref().is_some_and(|state| state.key == *key));
            if let Some(id) = id {
                for day in start_minute / MINUTES_PER_DAY..=(end_minute - 1) / MINUTES_PER_DAY {
                    for record in self.store.read_day(resolution, day)? {
                        if record.key as usize == id
                            && record.period_start >= start_minute
                            && record.period_start < end_minute
                        {
                            *counts.entry(record.period_start).or_default() += record.count;
                        }
                    }
                }
            }
            if fill_with_zeros {
                let mut minute = start_minute;
                while minute < end_minute {
                    counts.entry(minute).or_default();
                    minute += period;
                }
            }
        }
        Ok(counts
            .into_iter()
            .map(|(minute, count)| (time_of(minute), count))
            .collect())
    }

    /// The keys tracked now (every key that has counters).
    pub fn keys(&self) -> impl Iterator<Item = &MetricKey> {
        self.keys.iter().flatten().map(|state| &state.key)
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            keys: self.live_keys,
            ..self.stats
        }
    }

    /// An estimate of the engine's heap use in bytes (key states, sketches, models, index).
    pub fn memory_bytes(&self) -> usize {
        let states: usize = self
            .keys
            .iter()
            .flatten()
            .map(|state| std::mem::size_of::<KeyState>() + state.heap_bytes())
            .sum::<usize>()
            + self.keys.capacity() * std::mem::size_of::<Option<Box<KeyState>>>();
        let strings: usize = self.strings.iter().map(|text| text.len() + 16 + 8).sum();
        states + strings + self.index.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
    }

    /// Bytes of the counter files on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.store.disk_bytes()
    }
}

fn key_hash(
    account: &str,
    region: &str,
    source: &str,
    name: &str,
    insight_type: InsightType,
    error: Option<&str>,
) -> u64 {
    let kind = match (insight_type, error) {
        (InsightType::ApiCallRateInsight, _) => "c",
        (InsightType::ApiErrorRateInsight, _) => "e",
    };
    hash_parts(&[account, region, source, name, kind, error.unwrap_or("")])
}

/// Judges one closed minute of one key and turns the decision into events.
#[allow(clippy::too_many_arguments)]
fn judge_minute(
    source_id: &str,
    config: &DetectorConfig,
    state: &mut KeyState,
    minute: u32,
    slot: usize,
    count: u64,
    attributions: Option<&Attributions>,
    baseline: (u64, u32),
    stats: &mut EngineStats,
    events: &mut Vec<InsightEvent>,
) {
    let level = state.level_tenths(config);
    let thresholds = match state.thresholds {
        Some((cached_slot, cached_level, thresholds))
            if cached_slot == slot && cached_level == level =>
        {
            thresholds
        }
        _ => {
            let thresholds =
                Thresholds::for_model(state.model.as_ref(), slot, f64::from(level) / 10.0, config);
            state.thresholds = Some((slot, level, thresholds));
            thresholds
        }
    };
    let empty = Attributions::default();
    let current = attributions.unwrap_or(&empty);
    match state
        .detector
        .step(minute, count, thresholds, config.end_quiet_minutes)
    {
        Decision::Idle => {}
        Decision::Start { start } => {
            let at_previous = start != minute;
            let (baseline_sum, baseline_minutes) = if at_previous {
                state.previous_baseline
            } else {
                baseline
            };
            let (start_count, start_attributions) = if at_previous {
                (
                    state.previous_count,
                    state.last_closed.as_deref().unwrap_or(&empty),
                )
            } else {
                (count, current)
            };
            let mut window = Attributions::default();
            window.merge(start_attributions, INSIGHT_SKETCH_CAPACITY);
            let mut total = start_count;
            if at_previous {
                window.merge(current, INSIGHT_SKETCH_CAPACITY);
                total += count;
            }
            let baseline_attributions = state.baseline_attributions(baseline_minutes);
            let insight_top = start_attributions
                .by_attribute
                .each_ref()
                .map(|top| top.top(TOP_VALUES));
            let shared_event_id = derived_id(source_id, &state.key, start, "shared");
            events.push(InsightEvent {
                key: state.key.clone(),
                state: InsightState::Start,
                event_time: time_of(start),
                event_id: derived_id(source_id, &state.key, start, "Start"),
                shared_event_id,
                baseline_average: baseline_sum as f64 / f64::from(baseline_minutes.max(1)),
                insight_average: start_count as f64,
                baseline_duration: baseline_minutes,
                insight_duration: None,
                attributions: attribution_lists(&insight_top, 1, &baseline_attributions),
            });
            stats.insights_started += 1;
            state.active = Some(Box::new(Active {
                start,
                event_id_seed: start,
                baseline_sum,
                baseline_minutes,
                baseline_attributions,
                count: total,
                attributions: window,
                pending_count: 0,
                pending_attributions: Attributions::default(),
            }));
        }
        Decision::Continue { quiet } => {
            let Some(active) = state.active.as_mut() else {
                return;
            };
            if quiet {
                active.pending_count += count;
                active
                    .pending_attributions
                    .merge(current, INSIGHT_SKETCH_CAPACITY);
            } else {
                active.count += active.pending_count + count;
                let pending = std::mem::take(&mut active.pending_attributions);
                active.attributions.merge(&pending, INSIGHT_SKETCH_CAPACITY);
                active.attributions.merge(current, INSIGHT_SKETCH_CAPACITY);
                active.pending_count = 0;
            }
        }
        Decision::End { end } => {
            let Some(active) = state.active.take() else {
                return;
            };
            events.push(end_event(source_id, &state.key, &active, end));
            stats.insights_ended += 1;
        }
    }
}

/// The End event of `active`, ending at `end`.
fn end_event(source_id: &str, key: &MetricKey, active: &Active, end: u32) -> InsightEvent {
    let duration = end.saturating_sub(active.start).max(1);
    let insight_top = active
        .attributions
        .by_attribute
        .each_ref()
        .map(|top| top.top(TOP_VALUES));
    InsightEvent {
        key: key.clone(),
        state: InsightState::End,
        event_time: time_of(end),
        event_id: derived_id(source_id, key, active.event_id_seed, "End"),
        shared_event_id: derived_id(source_id, key, active.event_id_seed, "shared"),
        baseline_average: active.baseline_sum as f64 / f64::from(active.baseline_minutes.max(1)),
        insight_average: active.count as f64 / f64::from(duration),
        baseline_duration: active.baseline_minutes,
        insight_duration: Some(duration),
        attributions: attribution_lists(&insight_top, duration, &active.baseline_attributions),
    }
}
