//! Typed dispatch of CloudTrail operations to the services.

use opentrail_trails::{RequestContext, TrailError, TrailNameInput, TrailService};
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
    trails: &TrailService,
    ctx: &RequestContext,
    operation: &str,
    input: Value,
) -> Result<Value, ApiError> {
    let result = match operation {
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
