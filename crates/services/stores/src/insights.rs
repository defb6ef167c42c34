//! PutInsightSelectors and GetInsightSelectors on event data stores: Insights computed
//! over a source store's management events and written into a destination store of
//! Insights events. The settings live beside the source store (`event_data_store_insights`,
//! keyed like the store) and go with it when it is purged.

use crate::{Direct, StoreError, StoreRecord, StoreService};
use opentrail_meta::Documents;
use opentrail_model::RequestContext;
use opentrail_operations::{
    GetInsightSelectorsRequest, GetInsightSelectorsResponse, InsightSelector, InsightType,
    PutInsightSelectorsRequest, PutInsightSelectorsResponse, SourceEventCategory,
};
use opentrail_selectors::{EventDataStoreKind, TrailSelectors};
use serde::{Deserialize, Serialize};

/// Insights settings documents, keyed by the source store's `storage_key`.
pub(crate) const STORE_INSIGHTS: &str = "event_data_store_insights";

/// The Insights a source store runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInsights {
    /// `ApiCallRateInsight` / `ApiErrorRateInsight`, each at most once.
    pub insight_types: Vec<String>,
    /// The destination store's id and ARN.
    pub destination_id: String,
    pub destination_arn: String,
}

/// A source store with Insights, as the Insights worker sees it.
#[derive(Debug, Clone)]
pub struct InsightsSource {
    pub source: StoreRecord,
    pub insights: StoreInsights,
}

fn invalid_selectors(message: String) -> StoreError {
    StoreError::InvalidInsightSelectors(message)
}

/// The insight types of the request's selectors; `Data` is refused (AWS: Insights on data
/// events are not supported on event data stores).
fn insight_types(selectors: &[InsightSelector]) -> Result<Vec<String>, StoreError> {
    let mut types: Vec<String> = Vec::new();
    for selector in selectors {
        let Some(kind) = selector.insight_type.as_ref().map(InsightType::as_str) else {
            return Err(invalid_selectors(
                "Each insight selector needs an InsightType (ApiCallRateInsight or ApiErrorRateInsight)".into(),
            ));
        };
        if kind != "ApiCallRateInsight" && kind != "ApiErrorRateInsight" {
            return Err(invalid_selectors(format!(
                "Invalid InsightType {kind}; valid values are ApiCallRateInsight and ApiErrorRateInsight"
            )));
        }
        if types.iter().any(|seen| seen == kind) {
            return Err(invalid_selectors(format!(
                "InsightType {kind} is specified more than once"
            )));
        }
        for category in selector.event_categories.iter().flatten() {
            match category.as_str() {
                "Management" => {}
                "Data" => {
                    return Err(invalid_selectors(
                        "Insights on data events are not supported on event data stores; use EventCategories Management".into(),
                    ))
                }
                other => {
                    return Err(invalid_selectors(format!(
                        "Invalid EventCategories value {other}; valid values are Management and Data"
                    )))
                }
            }
        }
        types.push(kind.to_owned());
    }
    Ok(types)
}

fn selectors_of(insights: &StoreInsights) -> Vec<InsightSelector> {
    insights
        .insight_types
        .iter()
        .map(|kind| InsightSelector {
            insight_type: Some(InsightType::from(kind.clone())),
            event_categories: Some(vec![SourceEventCategory::from("Management".to_owned())]),
        })
        .collect()
}

/// A store named by a PutInsightSelectors parameter: unknown or malformed names are
/// `InvalidParameterException` (the operation's model has no store-not-found error).
fn named(
    service: &StoreService,
    docs: &dyn Documents,
    ctx: &RequestContext,
    parameter: &str,
    value: &str,
) -> Result<StoreRecord, StoreError> {
    service
        .resolve_in(docs, ctx, value)
        .map_err(|e| StoreError::InvalidParameter(format!("{parameter} {value}: {e}")))
}

/// AWS's rule for the source: ApiCallRateInsight needs write management events logged,
/// ApiErrorRateInsight read or write ones.
fn check_source(source: &StoreRecord, types: &[String]) -> Result<(), StoreError> {
    let selectors = TrailSelectors::Advanced(source.selectors.clone());
    let management = source.kind() == EventDataStoreKind::CloudTrailEvents;
    for kind in types {
        let write = kind == "ApiCallRateInsight";
        if !management || !selectors.logs_management_events(write) {
            let which = if write {
                "write management events"
            } else {
                "management events"
            };
            return Err(invalid_selectors(format!(
                "The source event data store {} does not log {which}; {kind} requires it",
                source.arn()
            )));
        }
    }
    Ok(())
}

fn decode(key: &str, value: &str) -> Result<StoreInsights, StoreError> {
    serde_json::from_str(value).map_err(|e| {
        StoreError::Internal(format!(
            "stored Insights settings {key} are unreadable: {e}"
        ))
    })
}

impl StoreService {
    pub async fn put_insight_selectors(
        &self,
        ctx: &RequestContext,
        input: PutInsightSelectorsRequest,
    ) -> Result<PutInsightSelectorsResponse, StoreError> {
        if input.trail_name.is_some() {
            return Err(StoreError::InvalidParameterCombination(
                "TrailName cannot be combined with EventDataStore or InsightsDestination".into(),
            ));
        }
        let Some(source_name) = input.event_data_store.as_deref() else {
            return Err(StoreError::InvalidParameterCombination(
                "InsightsDestination requires EventDataStore (the source event data store)".into(),
            ));
        };
        let types = insight_types(&input.insight_selectors)?;
        if !types.is_empty() && input.insights_destination.is_none() {
            return Err(StoreError::InvalidParameterCombination(
                "To enable Insights on an event data store, specify both EventDataStore and InsightsDestination".into(),
            ));
        }
        let (source, insights) = self.write(|tx| {
            let source = named(self, tx, ctx, "EventDataStore", source_name)?;
            let destination = input
                .insights_destination
                .as_deref()
                .map(|name| named(self, tx, ctx, "InsightsDestination", name))
                .transpose()?;
            if let Some(destination) = &destination {
                if destination.kind() != EventDataStoreKind::Insight {
                    return Err(invalid_selectors(format!(
                        "The destination event data store {} does not log Insights events (its selectors must select eventCategory Insight)",
                        destination.arn()
                    )));
                }
            }
            check_source(&source, &types)?;
            if types.is_empty() {
                tx.delete_document(STORE_INSIGHTS, &source.storage_key())?;
                let destination_arn = destination.as_ref().map(StoreRecord::arn);
                return Ok((source, destination_arn.map(|arn| StoreInsights {
                    insight_types: Vec::new(),
                    destination_id: String::new(),
                    destination_arn: arn,
                })));
            }
            let Some(destination) = destination else {
                return Err(StoreError::InvalidParameterCombination(
                    "InsightsDestination is required".into(),
                ));
            };
            let insights = StoreInsights {
                insight_types: types.clone(),
                destination_id: destination.id.clone(),
                destination_arn: destination.arn(),
            };
            let value = serde_json::to_string(&insights).map_err(|e| {
                StoreError::Internal(format!("failed to encode Insights settings: {e}"))
            })?;
            tx.put_document(STORE_INSIGHTS, &source.storage_key(), &value)?;
            Ok((source, Some(insights)))
        })?;
        tracing::info!(store = %source.arn(), types = ?types, "put insight selectors");
        Ok(PutInsightSelectorsResponse {
            trail_arn: None,
            event_data_store_arn: Some(source.arn()),
            insights_destination: insights
                .as_ref()
                .map(|insights| insights.destination_arn.clone()),
            insight_selectors: Some(insights.as_ref().map(selectors_of).unwrap_or_default()),
        })
    }

    pub async fn get_insight_selectors(
        &self,
        ctx: &RequestContext,
        input: GetInsightSelectorsRequest,
    ) -> Result<GetInsightSelectorsResponse, StoreError> {
        if input.trail_name.is_some() {
            return Err(StoreError::InvalidParameterCombination(
                "Specify either TrailName or EventDataStore, not both".into(),
            ));
        }
        let name = input.event_data_store.as_deref().unwrap_or_default();
        let direct = Direct(self.meta.as_ref());
        let source = self.resolve_in(&direct, ctx, name)?;
        let insights = direct
            .get_document(STORE_INSIGHTS, &source.storage_key())?
            .map(|value| decode(&source.storage_key(), &value))
            .transpose()?
            .ok_or_else(|| {
                StoreError::InsightNotEnabled(format!(
                    "Event data store {} does not have Insights enabled.",
                    source.arn()
                ))
            })?;
        Ok(GetInsightSelectorsResponse {
            trail_arn: None,
            event_data_store_arn: Some(source.arn()),
            insights_destination: Some(insights.destination_arn.clone()),
            insight_selectors: Some(selectors_of(&insights)),
        })
    }

    /// Every source store with Insights (purged stores and those whose destination is
    /// gone excluded): for the Insights worker.
    pub fn insights_sources(&self) -> Result<Vec<InsightsSource>, StoreError> {
        let stores = self.all_stores()?;
        let direct = Direct(self.meta.as_ref());
        let documents = direct.list_documents(STORE_INSIGHTS)?;
        let mut sources = Vec::new();
        for (key, value) in documents {
            let insights = decode(&key, &value)?;
            let Some(source) = stores.iter().find(|store| store.storage_key() == key) else {
                continue;
            };
            if !stores
                .iter()
                .any(|store| store.id == insights.destination_id)
            {
                continue;
            }
            sources.push(InsightsSource {
                source: source.clone(),
                insights,
            });
        }
        Ok(sources)
    }
}
