//! Insights' view of the trails (which accounts run Insights, over which insight types and
//! event categories) and of event history (to bootstrap a new engine), plus the file
//! clock tests drive Insights with.

use chrono::{DateTime, Utc};
use opentrail_history::{EventIndex, LookupRequest};
use opentrail_insights_worker::{
    EventCategories, InsightSelection, InsightType, InsightsDirectory, InsightsSource,
};
use opentrail_model::{Clock, EventRecord, KnownRegions, Region};
use opentrail_selectors::TrailSelectors;
use opentrail_stores::StoreService;
use opentrail_trails::{TrailRecord, TrailService};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Most events read from history to bootstrap one account (bounds the bootstrap's memory).
const BOOTSTRAP_LIMIT: usize = 1_000_000;

pub struct TrailsInsights {
    pub trails: Arc<TrailService>,
    pub stores: Arc<StoreService>,
    pub history: Arc<dyn EventIndex>,
    pub regions: KnownRegions,
    pub clock: Arc<dyn Clock>,
}

/// The selection a trail's insight selectors make; off unless the trail logs.
pub fn trail_selection(trail: &TrailRecord) -> InsightSelection {
    let mut selection = InsightSelection::default();
    if !trail.status.is_logging {
        return selection;
    }
    for selector in &trail.insight_selectors {
        let categories = match &selector.event_categories {
            None => EventCategories::MANAGEMENT,
            Some(list) if list.is_empty() => EventCategories::MANAGEMENT,
            Some(list) => EventCategories {
                management: list.iter().any(|c| c == "Management"),
                data: list.iter().any(|c| c == "Data"),
            },
        };
        let slot = match selector
            .insight_type
            .as_deref()
            .and_then(InsightType::parse)
        {
            Some(InsightType::ApiCallRateInsight) => &mut selection.call_rate,
            Some(InsightType::ApiErrorRateInsight) => &mut selection.error_rate,
            None => continue,
        };
        let merged = slot.get_or_insert_with(EventCategories::default);
        merged.management |= categories.management;
        merged.data |= categories.data;
    }
    selection
}

fn merge(into: &mut InsightSelection, more: InsightSelection) {
    for (slot, add) in [
        (&mut into.call_rate, more.call_rate),
        (&mut into.error_rate, more.error_rate),
    ] {
        if let Some(add) = add {
            let merged = slot.get_or_insert_with(EventCategories::default);
            merged.management |= add.management;
            merged.data |= add.data;
        }
    }
}

/// What one trail logs, as Insights reads it: its regions and selectors.
struct Logged {
    home_region: String,
    multi_region: bool,
    selectors: TrailSelectors,
}

impl Logged {
    fn logs(&self, event: &EventRecord) -> bool {
        (self.multi_region || event.aws_region() == self.home_region)
            && self.selectors.matches(event)
    }
}

/// The key of an event data store's Insights source (an account's trails use the account).
pub fn store_source_key(store_id: &str) -> String {
    format!("eds-{store_id}")
}

impl InsightsDirectory for TrailsInsights {
    fn enabled_accounts(&self) -> Result<BTreeMap<String, InsightsSource>, String> {
        let trails = self.trails.all_trails().map_err(|e| e.to_string())?;
        let mut accounts: BTreeMap<String, (InsightSelection, Vec<Logged>)> = BTreeMap::new();
        for trail in &trails {
            let selection = trail_selection(trail);
            if selection.is_enabled() {
                let (merged, logged) = accounts.entry(trail.account.to_string()).or_default();
                merge(merged, selection);
                logged.push(Logged {
                    home_region: trail.home_region.to_string(),
                    multi_region: trail.is_multi_region_trail,
                    selectors: trail.selectors.clone(),
                });
            }
        }
        // A trail analyses the events it logs (AWS: Insights reads the trail's events).
        let mut sources: BTreeMap<String, InsightsSource> = accounts
            .into_iter()
            .map(|(account, (selection, logged))| {
                let source = InsightsSource {
                    filter: Arc::new(move |event: &EventRecord| {
                        logged.iter().any(|trail| trail.logs(event))
                    }),
                    ..InsightsSource::account(&account, selection)
                };
                (account, source)
            })
            .collect();
        let stores = self.stores.insights_sources().map_err(|e| e.to_string())?;
        for store in stores {
            let source = &store.source;
            if !source.ingesting() {
                continue;
            }
            let mut selection = InsightSelection::default();
            for kind in &store.insights.insight_types {
                match InsightType::parse(kind) {
                    Some(InsightType::ApiCallRateInsight) => {
                        selection.call_rate = Some(EventCategories::MANAGEMENT)
                    }
                    Some(InsightType::ApiErrorRateInsight) => {
                        selection.error_rate = Some(EventCategories::MANAGEMENT)
                    }
                    None => {}
                }
            }
            let logged = Logged {
                home_region: source.home_region.to_string(),
                multi_region: source.multi_region_enabled,
                selectors: TrailSelectors::Advanced(source.selectors.clone()),
            };
            sources.insert(
                store_source_key(&source.id),
                InsightsSource {
                    account: source.account.to_string(),
                    selection,
                    insight_source: Some(source.arn()),
                    filter: Arc::new(move |event: &EventRecord| logged.logs(event)),
                },
            );
        }
        Ok(sources)
    }

    fn stored_history(
        &self,
        account: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<EventRecord> {
        let mut events = Vec::new();
        let Ok(home) = Region::parse("us-east-1") else {
            return events;
        };
        for region in self.regions.multi_region_trail_regions(&home) {
            let mut next_token = None;
            loop {
                let request = LookupRequest {
                    account: account.to_owned(),
                    region: region.to_string(),
                    now: self.clock.now(),
                    input: opentrail_operations::LookupEventsRequest {
                        start_time: Some(opentrail_operations::Timestamp(since)),
                        end_time: Some(opentrail_operations::Timestamp(until)),
                        max_results: Some(50),
                        next_token: next_token.take(),
                        ..Default::default()
                    },
                };
                let page = match self.history.lookup(&request) {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(account, region = %region, error = %e, "failed to read event history to bootstrap insights");
                        break;
                    }
                };
                for event in page.events.unwrap_or_default() {
                    if let Some(record) = event
                        .cloud_trail_event
                        .as_deref()
                        .and_then(|json| EventRecord::from_json(json).ok())
                    {
                        events.push(record);
                    }
                }
                if events.len() >= BOOTSTRAP_LIMIT {
                    break;
                }
                match page.next_token {
                    Some(token) => next_token = Some(token),
                    None => break,
                }
            }
        }
        events.sort_by_key(|record| record.event_time());
        events
    }
}

/// Time read from a file (RFC 3339), for tests: the last good reading stays when the file
/// is missing or being rewritten; before any, the system time.
pub struct FileClock {
    path: PathBuf,
    last: Mutex<Option<DateTime<Utc>>>,
}

impl FileClock {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            last: Mutex::new(None),
        }
    }
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(time) = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
        {
            *last = Some(time.with_timezone(&Utc));
        }
        last.unwrap_or_else(Utc::now)
    }
}
