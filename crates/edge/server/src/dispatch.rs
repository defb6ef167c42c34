//! Typed dispatch of CloudTrail operations to the services.

use crate::api::App;
use chrono::{DateTime, Utc};
use opentrail_model::epoch_seconds;
use opentrail_trails::{RequestContext, TrailError, TrailNameInput};
use opentrail_wire::ApiError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

fn typed<T: DeserializeOwned>(input: Value) -> Result<T, ApiError> {
    serde_json::from_value(input)
        .map_err(|e| ApiError::serialization(format!("failed to read request: {e}")))
}

fn trail_error(e: TrailError) -> ApiError {
    match e {
        TrailError::Internal(message) => ApiError::internal(message),
        other => ApiError::new(other.code(), other.message().to_owned()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrailNameMember {
    trail_name: String,
}

/// Runs one CloudTrail operation whose input already passed model validation.
pub async fn dispatch(
    app: &App,
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, ApiError> {
    let trails = &app.trails;
    let result = match operation {
        "ListPublicKeys" => return list_public_keys(app, ctx, typed(input)?),
        "LookupEvents" => return lookup_events(app, ctx, typed(input)?).await,
        "CreateTrail" => trails.create_trail(ctx, typed(input)?).await,
        "UpdateTrail" => trails.update_trail(ctx, typed(input)?).await,
        "DeleteTrail" => {
            trails
                .delete_trail(ctx, &typed::<TrailNameInput>(input)?.name)
                .await
        }
        "GetTrail" => {
            trails
                .get_trail(ctx, &typed::<TrailNameInput>(input)?.name)
                .await
        }
        "DescribeTrails" => trails.describe_trails(ctx, typed(input)?).await,
        "ListTrails" => trails.list_trails(ctx, typed(input)?).await,
        "GetTrailStatus" => {
            trails
                .get_trail_status(ctx, &typed::<TrailNameInput>(input)?.name)
                .await
        }
        "StartLogging" => {
            trails
                .start_logging(ctx, &typed::<TrailNameInput>(input)?.name)
                .await
        }
        "StopLogging" => {
            trails
                .stop_logging(ctx, &typed::<TrailNameInput>(input)?.name)
                .await
        }
        "AddTags" => trails.add_tags(ctx, typed(input)?).await,
        "RemoveTags" => trails.remove_tags(ctx, typed(input)?).await,
        "ListTags" => trails.list_tags(ctx, typed(input)?).await,
        "PutEventSelectors" => {
            // An unknown ReadWriteType fails while reading the selectors; AWS reports it
            // as an invalid selector, not as a serialisation fault.
            let input = serde_json::from_value(input)
                .map_err(|e| ApiError::new("InvalidEventSelectorsException", e.to_string()))?;
            trails.put_event_selectors(ctx, input).await
        }
        "GetEventSelectors" => {
            trails
                .get_event_selectors(ctx, &typed::<TrailNameMember>(input)?.trail_name)
                .await
        }
        "PutInsightSelectors" => trails.put_insight_selectors(ctx, typed(input)?).await,
        "GetInsightSelectors" => trails.get_insight_selectors(ctx, typed(input)?).await,
        other => {
            return Err(ApiError::new(
                "UnsupportedOperationException",
                format!("{other} is not available on this OpenTrail server"),
            ))
        }
    };
    result.map_err(trail_error)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPublicKeysInput {
    start_time: Option<Value>,
    end_time: Option<Value>,
    next_token: Option<String>,
}

/// JSON 1.1 timestamps are epoch seconds; accept ISO 8601 strings as well.
fn timestamp(value: &Value, member: &str) -> Result<DateTime<Utc>, ApiError> {
    let parsed = match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0).round() as i64)),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64))
            }),
        _ => None,
    };
    parsed.ok_or_else(|| ApiError::serialization(format!("{member} is not a valid timestamp")))
}

/// The digest signing keys of the request's region valid in [StartTime, EndTime].
fn list_public_keys(
    app: &App,
    ctx: &RequestContext,
    input: ListPublicKeysInput,
) -> Result<Value, ApiError> {
    if input.next_token.is_some() {
        return Err(ApiError::new(
            "InvalidTokenException",
            "NextToken is not valid: ListPublicKeys returned every key in one page",
        ));
    }
    let now = app.clock.now();
    let start = input
        .start_time
        .as_ref()
        .map(|v| timestamp(v, "StartTime"))
        .transpose()?
        .unwrap_or(now);
    let end = input
        .end_time
        .as_ref()
        .map(|v| timestamp(v, "EndTime"))
        .transpose()?
        .unwrap_or(now);
    if start > end {
        return Err(ApiError::new(
            "InvalidTimeRangeException",
            "StartTime must be earlier than or equal to EndTime",
        ));
    }
    let keys: Vec<Value> = app
        .keys
        .public_keys(&ctx.region, start, end)
        .into_iter()
        .map(|key| {
            serde_json::json!({
                "Value": key.value_wire(),
                "ValidityStartTime": epoch_seconds(key.validity_start),
                "ValidityEndTime": epoch_seconds(key.validity_end),
                "Fingerprint": key.fingerprint,
            })
        })
        .collect();
    Ok(serde_json::json!({ "PublicKeyList": keys }))
}

/// LookupEvents over the event history of the caller's account and region.
async fn lookup_events(
    app: &App,
    ctx: &RequestContext,
    input: opentrail_operations::LookupEventsRequest,
) -> Result<Value, ApiError> {
    let request = opentrail_history::LookupRequest {
        account: ctx.account.to_string(),
        region: ctx.region.to_string(),
        now: app.clock.now(),
        input,
    };
    let history = std::sync::Arc::clone(&app.history);
    let response = tokio::task::spawn_blocking(move || history.lookup(&request))
        .await
        .map_err(|e| ApiError::internal(format!("event history lookup failed: {e}")))??;
    serde_json::to_value(response)
        .map_err(|e| ApiError::internal(format!("failed to encode LookupEvents response: {e}")))
}
