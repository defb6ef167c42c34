//! What an Insights engine analyses (from PutInsightSelectors) and the detector's
//! tunable thresholds; the defaults were chosen on the synthetic traffic of
//! `opentrail-insights-bench` (see the crate README).

use serde::{Deserialize, Serialize};

/// `InsightType` of PutInsightSelectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InsightType {
    ApiCallRateInsight,
    ApiErrorRateInsight,
}

impl InsightType {
    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::ApiCallRateInsight => "ApiCallRateInsight",
            InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ApiCallRateInsight" => Some(InsightType::ApiCallRateInsight),
            "ApiErrorRateInsight" => Some(InsightType::ApiErrorRateInsight),
            _ => None,
        }
    }
}

/// `EventCategories` of one insight selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventCategories {
    pub management: bool,
    pub data: bool,
}

impl EventCategories {
    /// A selector without `EventCategories` analyses management events.
    pub const MANAGEMENT: EventCategories = EventCategories {
        management: true,
        data: false,
    };
    pub const ALL: EventCategories = EventCategories {
        management: true,
        data: true,
    };
}

/// The insight selectors of one trail or event data store: which insight types are on
/// and over which event categories. Both `None`: Insights is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InsightSelection {
    pub call_rate: Option<EventCategories>,
    pub error_rate: Option<EventCategories>,
}

impl InsightSelection {
    pub fn both_on_management() -> Self {
        Self {
            call_rate: Some(EventCategories::MANAGEMENT),
            error_rate: Some(EventCategories::MANAGEMENT),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.call_rate.is_some() || self.error_rate.is_some()
    }
}

/// The thresholds of one insight type's detector. A minute is judged against the key's
/// expected rate `λ` for its hour of the week and the key's overdispersion `a`
/// (a negative binomial with variance `λ + aλ²`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Start when one minute's count has an upper-tail probability at most this.
    pub start_tail: f64,
    /// ... or when the last two minutes' sum has an upper-tail probability at most this.
    pub start_tail_two_minutes: f64,
    /// A starting minute needs at least this many calls ...
    pub min_count: u32,
    /// ... two starting minutes at least this many together ...
    pub min_count_two_minutes: u32,
    /// ... and the count must be at least this multiple of the expected count.
    pub min_multiple: f64,
    /// During an insight, a minute is quiet when its count's upper-tail probability is
    /// above this (the lower, hysteresis threshold) ...
    pub end_tail: f64,
    /// ... and its count is under this multiple of the expected count.
    pub end_multiple: f64,
    /// The insight ends after this many quiet minutes in a row (it ends at the first).
    pub end_quiet_minutes: u32,
    /// A key without a baseline (no full day of history yet) starts an insight only when
    /// one minute reaches this count (or two minutes reach twice as many).
    pub new_key_min_count: u32,
    /// The recent-level correction (see the README) is capped at this multiple.
    pub max_level: f64,
    /// The overdispersion estimate is capped at this (a geometric distribution is 1).
    pub max_overdispersion: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            start_tail: 1e-8,
            start_tail_two_minutes: 1e-8,
            min_count: 4,
            min_count_two_minutes: 5,
            min_multiple: 3.0,
            end_tail: 1e-3,
            end_multiple: 1.5,
            end_quiet_minutes: 5,
            new_key_min_count: 30,
            max_level: 4.0,
            max_overdispersion: 2.0,
        }
    }
}

/// Everything an [`InsightsEngine`](crate::InsightsEngine) needs besides its directory and clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightsConfig {
    /// Names the analysed source (a trail ARN) in the derived event IDs, so two trails'
    /// insights never share an ID.
    pub source_id: String,
    /// For an event data store's Insights: the source store's ARN, written as
    /// `insightSource` in each Insights event (AWS's field of Lake Insights events); the
    /// lake writer routes the events to the destination store by it.
    #[serde(default)]
    pub insight_source: Option<String>,
    pub selection: InsightSelection,
    pub call_rate: DetectorConfig,
    pub error_rate: DetectorConfig,
    /// A minute is closed (counted, rolled up, evaluated) this many seconds after it ends,
    /// so that events arriving a little late are still counted. Later events are dropped.
    pub close_delay_seconds: u32,
    /// At most this many keys are tracked; events of further keys are counted in
    /// [`EngineStats::dropped_key_events`](crate::EngineStats) until idle keys are evicted.
    pub max_keys: usize,
    /// Rollup retentions in days: 1-minute, 5-minute and 1-hour counts (AWS: 15, 63, 90).
    pub retention_days: [u32; 3],
    /// Days of history the baseline is trained on (AWS: 28).
    pub training_days: u32,
    /// fsync the counter files at each flush (else they are written to the page cache).
    pub sync: bool,
    /// Keep the events `tick` returns in the state file until
    /// [`acknowledge`](crate::InsightsEngine::acknowledge): a consumer that crashes before
    /// appending them gets them again from [`unacknowledged`](crate::InsightsEngine::unacknowledged).
    pub hold_events: bool,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        Self {
            source_id: String::new(),
            insight_source: None,
            selection: InsightSelection::both_on_management(),
            call_rate: DetectorConfig::default(),
            error_rate: DetectorConfig::default(),
            close_delay_seconds: 60,
            max_keys: 200_000,
            retention_days: [15, 63, 90],
            training_days: 28,
            sync: false,
            hold_events: false,
        }
    }
}
