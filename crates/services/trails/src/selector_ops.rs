//! PutEventSelectors, GetEventSelectors, PutInsightSelectors, GetInsightSelectors.

use crate::record::StoredInsightSelector;
use crate::{save_in, RequestContext, TrailError, TrailService};
use opentrail_operations as wire;
use opentrail_operations::{
    GetEventSelectorsRequest, GetEventSelectorsResponse, GetInsightSelectorsRequest,
    GetInsightSelectorsResponse, PutEventSelectorsRequest, PutEventSelectorsResponse,
    PutInsightSelectorsRequest, PutInsightSelectorsResponse,
};
use opentrail_selectors::{
    validate_advanced_event_selectors, validate_event_selectors, AdvancedEventSelector,
    AdvancedFieldSelector, DataResource, EventSelector, ReadWriteType, TrailSelectors,
};

/// A generated `EventSelector` as the selectors domain type; a `ReadWriteType` the model does
/// not list is an InvalidEventSelectorsException naming the value.
fn event_selector_from_wire(selector: wire::EventSelector) -> Result<EventSelector, TrailError> {
    let read_write_type = selector
        .read_write_type
        .map(|t| t.as_str().parse::<ReadWriteType>())
        .transpose()
        .map_err(|e| TrailError::InvalidEventSelectors(e.to_string()))?;
    Ok(EventSelector {
        read_write_type,
        include_management_events: selector.include_management_events,
        data_resources: selector.data_resources.map(|resources| {
            resources
                .into_iter()
                .map(|r| DataResource {
                    r#type: r.r#type,
                    values: r.values,
                })
                .collect()
        }),
        exclude_management_event_sources: selector.exclude_management_event_sources,
    })
}

fn event_selector_to_wire(selector: &EventSelector) -> wire::EventSelector {
    wire::EventSelector {
        read_write_type: selector
            .read_write_type
            .map(|t| wire::ReadWriteType::from(t.as_str())),
        include_management_events: selector.include_management_events,
        data_resources: selector.data_resources.as_ref().map(|resources| {
            resources
                .iter()
                .map(|r| wire::DataResource {
                    r#type: r.r#type.clone(),
                    values: r.values.clone(),
                })
                .collect()
        }),
        exclude_management_event_sources: selector.exclude_management_event_sources.clone(),
    }
}

fn advanced_selector_from_wire(selector: wire::AdvancedEventSelector) -> AdvancedEventSelector {
    AdvancedEventSelector {
        name: selector.name,
        field_selectors: selector
            .field_selectors
            .into_iter()
            .map(|f| AdvancedFieldSelector {
                field: f.field,
                equals: f.equals,
                starts_with: f.starts_with,
                ends_with: f.ends_with,
                not_equals: f.not_equals,
                not_starts_with: f.not_starts_with,
                not_ends_with: f.not_ends_with,
            })
            .collect(),
    }
}

fn advanced_selector_to_wire(selector: &AdvancedEventSelector) -> wire::AdvancedEventSelector {
    wire::AdvancedEventSelector {
        name: selector.name.clone(),
        field_selectors: selector
            .field_selectors
            .iter()
            .map(|f| wire::AdvancedFieldSelector {
                field: f.field.clone(),
                equals: f.equals.clone(),
                starts_with: f.starts_with.clone(),
                ends_with: f.ends_with.clone(),
                not_equals: f.not_equals.clone(),
                not_starts_with: f.not_starts_with.clone(),
                not_ends_with: f.not_ends_with.clone(),
            })
            .collect(),
    }
}

/// The trail's selectors in botocore's shapes: exactly one of the two lists is present.
type WireSelectors = (
    Option<Vec<wire::EventSelector>>,
    Option<Vec<wire::AdvancedEventSelector>>,
);

fn selectors_to_wire(selectors: &TrailSelectors) -> WireSelectors {
    match selectors {
        TrailSelectors::Basic(basic) => (
            Some(basic.iter().map(event_selector_to_wire).collect()),
            None,
        ),
        TrailSelectors::Advanced(advanced) => (
            None,
            Some(advanced.iter().map(advanced_selector_to_wire).collect()),
        ),
    }
}

const INSIGHT_TYPES: [&str; 2] = ["ApiCallRateInsight", "ApiErrorRateInsight"];

fn validate_insight_selectors(selectors: &[StoredInsightSelector]) -> Result<(), TrailError> {
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
            if category != "Management" && category != "Data" {
                return Err(TrailError::InvalidInsightSelectors(format!(
                    "Invalid EventCategories value {category}; valid values are Management and Data"
                )));
            }
        }
    }
    Ok(())
}

/// The categories a selector analyses: `Management` when it names none (AWS's default).
fn analysed_categories(selector: &StoredInsightSelector) -> (bool, bool) {
    match selector.event_categories.as_deref() {
        None | Some([]) => (true, false),
        Some(list) => (
            list.iter().any(|c| c == "Management"),
            list.iter().any(|c| c == "Data"),
        ),
    }
}

/// AWS's rule: the trail must log the events its Insights analyse. `ApiCallRateInsight`
/// on management events needs write management events, `ApiErrorRateInsight` read or
/// write ones; Insights on data events needs the trail to log data events.
fn check_trail_logs_analysed_events(
    trail: &crate::TrailRecord,
    selectors: &[StoredInsightSelector],
) -> Result<(), TrailError> {
    for selector in selectors {
        let kind = selector.insight_type.as_deref().unwrap_or_default();
        let (management, data) = analysed_categories(selector);
        let write = kind == "ApiCallRateInsight";
        if management && !trail.selectors.logs_management_events(write) {
            let which = if write {
                "write management events"
            } else {
                "management events"
            };
            return Err(TrailError::InvalidInsightSelectors(format!(
                "Trail {} does not log {which}; {kind} on management events requires the trail to log {which}",
                trail.arn()
            )));
        }
        if data && !trail.selectors.logs_data_events() {
            return Err(TrailError::InvalidInsightSelectors(format!(
                "Trail {} does not log data events; {kind} on data events requires the trail to log read or write data events",
                trail.arn()
            )));
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
        input: PutEventSelectorsRequest,
    ) -> Result<PutEventSelectorsResponse, TrailError> {
        // Unknown enum values first: they used to fail while reading the request.
        let basic = input
            .event_selectors
            .map(|selectors| {
                selectors
                    .into_iter()
                    .map(event_selector_from_wire)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let advanced = input.advanced_event_selectors.map(|selectors| {
            selectors
                .into_iter()
                .map(advanced_selector_from_wire)
                .collect::<Vec<_>>()
        });
        let selectors = match (basic, advanced) {
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
        let trail = self.write(|tx| {
            let mut trail = self.resolve_for_write_in(tx, ctx, &input.trail_name)?;
            trail.selectors = selectors.clone();
            save_in(tx, &trail)?;
            Ok(trail)
        })?;
        let (event_selectors, advanced_event_selectors) = selectors_to_wire(&trail.selectors);
        Ok(PutEventSelectorsResponse {
            trail_arn: Some(trail.arn().to_string()),
            event_selectors,
            advanced_event_selectors,
        })
    }

    pub async fn get_event_selectors(
        &self,
        ctx: &RequestContext,
        input: GetEventSelectorsRequest,
    ) -> Result<GetEventSelectorsResponse, TrailError> {
        let trail = self.resolve(ctx, &input.trail_name)?;
        let (event_selectors, advanced_event_selectors) = selectors_to_wire(&trail.selectors);
        Ok(GetEventSelectorsResponse {
            trail_arn: Some(trail.arn().to_string()),
            event_selectors,
            advanced_event_selectors,
        })
    }

    pub async fn put_insight_selectors(
        &self,
        ctx: &RequestContext,
        input: PutInsightSelectorsRequest,
    ) -> Result<PutInsightSelectorsResponse, TrailError> {
        let name = trail_name_required(
            input.trail_name.as_deref(),
            input.event_data_store.as_deref(),
        )?;
        if input.insights_destination.is_some() {
            return Err(TrailError::InvalidParameterCombination(
                "InsightsDestination applies to event data stores, not trails".into(),
            ));
        }
        let selectors: Vec<StoredInsightSelector> = input
            .insight_selectors
            .into_iter()
            .map(StoredInsightSelector::from)
            .collect();
        validate_insight_selectors(&selectors)?;
        let trail = self.write(|tx| {
            let mut trail = self.resolve_for_write_in(tx, ctx, &name)?;
            check_trail_logs_analysed_events(&trail, &selectors)?;
            trail.insight_selectors = selectors.clone();
            save_in(tx, &trail)?;
            Ok(trail)
        })?;
        Ok(PutInsightSelectorsResponse {
            trail_arn: Some(trail.arn().to_string()),
            insight_selectors: Some(trail.insight_selectors()),
            ..PutInsightSelectorsResponse::default()
        })
    }

    pub async fn get_insight_selectors(
        &self,
        ctx: &RequestContext,
        input: GetInsightSelectorsRequest,
    ) -> Result<GetInsightSelectorsResponse, TrailError> {
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
        Ok(GetInsightSelectorsResponse {
            trail_arn: Some(trail.arn().to_string()),
            insight_selectors: Some(trail.insight_selectors()),
            ..GetInsightSelectorsResponse::default()
        })
    }
}
