//! ListInsightsMetricData (the per-period counts of one Insights key) and ListInsightsData
//! (a trail's Insights events, from event history).

use crate::app::App;
use chrono::{DateTime, Duration, Utc};
use opentrail_insights_worker::{InsightType, MetricKey, Resolution};
use opentrail_operations::{
    InsightsMetricDataType, ListInsightsDataRequest, ListInsightsDataType,
    ListInsightsMetricDataRequest, ListInsightsMetricDataResponse, LookupAttribute,
    LookupAttributeKey, LookupEventsRequest, Timestamp,
};
use opentrail_trails::RequestContext;
use opentrail_wire::ApiError;
use serde_json::Value;
use std::sync::Arc;

const DEFAULT_MAX_RESULTS: usize = 21_600;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterException", message)
}

/// Days each period's data points are kept (AWS: 15, 63 and 90 days).
fn retention_days(resolution: Resolution) -> i64 {
    match resolution {
        Resolution::OneMinute => 15,
        Resolution::FiveMinutes => 63,
        Resolution::OneHour => 90,
    }
}

pub async fn list_insights_metric_data(
    app: &App,
    ctx: &RequestContext,
    input: ListInsightsMetricDataRequest,
) -> Result<Value, ApiError> {
    let insight_type = InsightType::parse(input.insight_type.as_str()).ok_or_else(|| {
        invalid(format!(
            "Invalid InsightType {}; valid values are ApiCallRateInsight and ApiErrorRateInsight",
            input.insight_type.as_str()
        ))
    })?;
    let error_code = match (insight_type, input.error_code.as_deref()) {
        (InsightType::ApiErrorRateInsight, None) => {
            return Err(invalid(
                "ErrorCode is required when InsightType is ApiErrorRateInsight",
            ))
        }
        (InsightType::ApiCallRateInsight, Some(_)) => {
            return Err(invalid(
                "ErrorCode applies only when InsightType is ApiErrorRateInsight",
            ))
        }
        (_, code) => code.map(str::to_owned),
    };
    // TrailName selects the metrics of a trail's Insights on data events (AWS): the trail
    // must exist and analyse data events. The counts are the account's (see the README).
    let trail_arn = match input.trail_name.as_deref() {
        None => None,
        Some(name) => {
            let trail = app.trails.find_trail(ctx, name)?;
            let analyses_data = trail.insight_selectors.iter().any(|selector| {
                selector
                    .event_categories
                    .iter()
                    .flatten()
                    .any(|category| category == "Data")
            });
            if !analyses_data {
                return Err(invalid(format!(
                    "Trail {} does not have Insights enabled on data events; TrailName applies only to data events Insights (omit it for management events)",
                    trail.arn()
                )));
            }
            Some(trail.arn().to_string())
        }
    };
    let period = input.period.unwrap_or(3600);
    let resolution = u32::try_from(period)
        .ok()
        .and_then(Resolution::from_period_seconds)
        .ok_or_else(|| {
            invalid(format!(
                "Invalid Period {period}; valid values are 60, 300 and 3600"
            ))
        })?;
    let fill_with_zeros = match &input.data_type {
        None | Some(InsightsMetricDataType::NonZeroData) => false,
        Some(InsightsMetricDataType::FillWithZeros) => true,
        Some(other) => {
            return Err(invalid(format!(
                "Invalid DataType {}; valid values are FillWithZeros and NonZeroData",
                other.as_str()
            )))
        }
    };
    let max_results = input
        .max_results
        .and_then(|max| usize::try_from(max).ok())
        .unwrap_or(DEFAULT_MAX_RESULTS);
    let now = app.insights.now();
    let start = input
        .start_time
        .map_or(now - Duration::days(90), |time| time.0);
    let end = input.end_time.map_or(now, |time| time.0);
    if start >= end {
        return Err(invalid("StartTime must be before EndTime"));
    }
    // Data points older than the period's retention are gone.
    let start = start.max(now - Duration::days(retention_days(resolution)));
    let start = match input.next_token.as_deref() {
        None => start,
        Some(token) => parse_token(token)
            .filter(|resume| *resume >= start && *resume < end)
            .ok_or_else(|| invalid(format!("Invalid NextToken {token}")))?,
    };
    let key = MetricKey {
        account: Arc::from(ctx.account.as_str()),
        region: Arc::from(ctx.region.as_str()),
        event_source: Arc::from(input.event_source.as_str()),
        event_name: Arc::from(input.event_name.as_str()),
        insight_type,
        error_code: error_code.as_deref().map(Arc::from),
    };
    let hub = Arc::clone(&app.insights);
    let points = if start < end {
        tokio::task::spawn_blocking(move || {
            hub.metric_data(&key, resolution, start, end, fill_with_zeros)
        })
        .await
        .map_err(|e| ApiError::internal(format!("insights metric data task failed: {e}")))?
        .transpose()
        .map_err(|e| ApiError::internal(format!("failed to read insights counters: {e}")))?
        .unwrap_or_default()
    } else {
        Vec::new()
    };
    let next_token = points.get(max_results).map(|(time, _)| format_token(*time));
    let points = &points[..points.len().min(max_results)];
    crate::dispatch::output(ListInsightsMetricDataResponse {
        event_source: Some(input.event_source),
        event_name: Some(input.event_name),
        insight_type: Some(input.insight_type),
        error_code,
        timestamps: Some(points.iter().map(|(time, _)| Timestamp(*time)).collect()),
        values: Some(points.iter().map(|(_, count)| *count as f64).collect()),
        next_token,
        trail_arn,
    })
}

/// A NextToken names the period to resume at.
fn format_token(time: DateTime<Utc>) -> String {
    format!("insights-metrics-{}", time.timestamp())
}

fn parse_token(token: &str) -> Option<DateTime<Utc>> {
    let seconds = token.strip_prefix("insights-metrics-")?.parse().ok()?;
    DateTime::from_timestamp(seconds, 0)
}

pub async fn list_insights_data(
    app: &App,
    ctx: &RequestContext,
    input: ListInsightsDataRequest,
) -> Result<Value, ApiError> {
    if input.data_type != ListInsightsDataType::InsightsEvents {
        return Err(invalid(format!(
            "Invalid DataType {}; the valid value is InsightsEvents",
            input.data_type.as_str()
        )));
    }
    let arn = opentrail_model::TrailArn::parse(&input.insight_source).map_err(|_| {
        invalid(format!(
            "InsightSource {} is not a trail ARN",
            input.insight_source
        ))
    })?;
    if arn.account != ctx.account {
        return Err(invalid(format!(
            "InsightSource {} belongs to another account",
            input.insight_source
        )));
    }
    let mut attributes = Vec::new();
    for (key, value) in input.dimensions.unwrap_or_default() {
        let attribute_key = match key.as_str() {
            "EventId" => LookupAttributeKey::EventId,
            "EventName" => LookupAttributeKey::EventName,
            "EventSource" => LookupAttributeKey::EventSource,
            other => {
                return Err(invalid(format!(
                    "Invalid dimension {other}; valid dimensions are EventId, EventName and EventSource"
                )))
            }
        };
        attributes.push(LookupAttribute {
            attribute_key,
            attribute_value: value,
        });
    }
    if attributes.len() > 1 {
        return Err(invalid("Dimensions may contain only one item"));
    }
    let request = opentrail_history::LookupRequest {
        account: ctx.account.to_string(),
        region: arn.region.to_string(),
        now: app.clock.now(),
        input: LookupEventsRequest {
            lookup_attributes: (!attributes.is_empty()).then_some(attributes),
            start_time: input.start_time,
            end_time: input.end_time,
            event_category: Some(opentrail_operations::EventCategory::Insight),
            max_results: input.max_results,
            next_token: input.next_token,
        },
    };
    let history = Arc::clone(&app.history);
    let response = tokio::task::spawn_blocking(move || history.lookup(&request))
        .await
        .map_err(|e| ApiError::internal(format!("event history lookup failed: {e}")))??;
    crate::dispatch::output(opentrail_operations::ListInsightsDataResponse {
        events: response.events,
        next_token: response.next_token,
    })
}
