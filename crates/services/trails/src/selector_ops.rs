//! PutEventSelectors, GetEventSelectors, PutInsightSelectors, GetInsightSelectors.

use crate::record::InsightSelector;
use crate::{RequestContext, TrailError, TrailService};
use opentrail_selectors::{
    validate_advanced_event_selectors, validate_event_selectors, AdvancedEventSelector,
    EventSelector, TrailSelectors,
};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutEventSelectorsInput {
    pub trail_name: String,
    pub event_selectors: Option<Vec<EventSelector>>,
    pub advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutInsightSelectorsInput {
    pub trail_name: Option<String>,
    pub insight_selectors: Vec<InsightSelector>,
    pub event_data_store: Option<String>,
    pub insights_destination: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetInsightSelectorsInput {
    pub trail_name: Option<String>,
    pub event_data_store: Option<String>,
}

const INSIGHT_TYPES: [&str; 2] = ["ApiCallRateInsight", "ApiErrorRateInsight"];

fn selectors_response(trail_arn: String, selectors: &TrailSelectors) -> Value {
    match selectors {
        TrailSelectors::Basic(basic) => json!({ "TrailARN": trail_arn, "EventSelectors": basic }),
        TrailSelectors::Advanced(advanced) => {
            json!({ "TrailARN": trail_arn, "AdvancedEventSelectors": advanced })
        }
    }
}

fn validate_insight_selectors(selectors: &[InsightSelector]) -> Result<(), TrailError> {
    let mut seen = Vec::new();
    for selector in selectors {
        let Some(kind) = selector.insight_type.as_deref() else {
            return Err(TrailError::InvalidInsightSelectors(
                "Each insight selector needs an InsightType (ApiCallRateInsight or ApiErrorRateInsight)".into(),
            ));
        };
        if !INSIGHT_TYPES.contains(&kind) {
            return Err(TrailError::InvalidInsightSelectors(format!(
                "Invalid InsightType {kind}; valid values are ApiCallRateInsight and ApiErrorRateInsight"
            )));
        }
        if seen.contains(&kind) {
            return Err(TrailError::InvalidInsightSelectors(format!(
                "InsightType {kind} is specified more than once"
            )));
        }
        seen.push(kind);
        for category in selector.event_categories.iter().flatten() {
            if category != "Management" {
                return Err(TrailError::InvalidInsightSelectors(format!(
                    "Invalid event category {category} for trail Insights; trails analyse Management events"
                )));
            }
        }
    }
    Ok(())
}

fn trail_name_required(
    name: Option<&str>,
    event_data_store: Option<&str>,
) -> Result<String, TrailError> {
    match (name, event_data_store) {
        (Some(_), Some(_)) => Err(TrailError::InvalidParameterCombination(
            "Specify either TrailName or EventDataStore, not both".into(),
        )),
        (Some(name), None) => Ok(name.to_owned()),
        (None, Some(store)) => Err(TrailError::InvalidParameter(format!(
            "Event data store {store} was not found; Insights on event data stores need an existing event data store"
        ))),
        (None, None) => Err(TrailError::InvalidParameterCombination(
            "You must specify TrailName or EventDataStore".into(),
        )),
    }
}

impl TrailService {
    pub async fn put_event_selectors(
        &self,
        ctx: &RequestContext,
        input: PutEventSelectorsInput,
    ) -> Result<Value, TrailError> {
        let selectors = match (input.event_selectors, input.advanced_event_selectors) {
            (Some(_), Some(_)) => {
                return Err(TrailError::InvalidEventSelectors(
                    "You can use EventSelectors or AdvancedEventSelectors in a PutEventSelectors request, but not both".into(),
                ))
            }
            (Some(basic), None) => validate_event_selectors(basic),
            (None, Some(advanced)) => validate_advanced_event_selectors(advanced),
            (None, None) => {
                return Err(TrailError::InvalidEventSelectors(
                    "Specify EventSelectors or AdvancedEventSelectors".into(),
                ))
            }
        }
        .map_err(|e| TrailError::InvalidEventSelectors(e.to_string()))?;
        let _guard = self.write_lock.lock().await;
        let mut trail = self.resolve_for_write(ctx, &input.trail_name)?;
        trail.selectors = selectors;
        self.save(&trail)?;
        Ok(selectors_response(
            trail.arn().to_string(),
            &trail.selectors,
        ))
    }

    pub async fn get_event_selectors(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Value, TrailError> {
        let trail = self.resolve(ctx, name)?;
        Ok(selectors_response(
            trail.arn().to_string(),
            &trail.selectors,
        ))
    }

    pub async fn put_insight_selectors(
        &self,
        ctx: &RequestContext,
        input: PutInsightSelectorsInput,
    ) -> Result<Value, TrailError> {
        let name = trail_name_required(
            input.trail_name.as_deref(),
            input.event_data_store.as_deref(),
        )?;
        if input.insights_destination.is_some() {
            return Err(TrailError::InvalidParameterCombination(
                "InsightsDestination applies to event data stores, not trails".into(),
            ));
        }
        validate_insight_selectors(&input.insight_selectors)?;
        let _guard = self.write_lock.lock().await;
        let mut trail = self.resolve_for_write(ctx, &name)?;
        trail.insight_selectors = input.insight_selectors;
        self.save(&trail)?;
        Ok(
            json!({ "TrailARN": trail.arn().to_string(), "InsightSelectors": trail.insight_selectors }),
        )
    }

    pub async fn get_insight_selectors(
        &self,
        ctx: &RequestContext,
        input: GetInsightSelectorsInput,
    ) -> Result<Value, TrailError> {
        let name = trail_name_required(
            input.trail_name.as_deref(),
            input.event_data_store.as_deref(),
        )?;
        let trail = self.resolve(ctx, &name)?;
        if trail.insight_selectors.is_empty() {
            return Err(TrailError::InsightNotEnabled(format!(
                "Trail {} does not have Insights enabled.",
                trail.arn()
            )));
        }
        Ok(
            json!({ "TrailARN": trail.arn().to_string(), "InsightSelectors": trail.insight_selectors }),
        )
    }
}
