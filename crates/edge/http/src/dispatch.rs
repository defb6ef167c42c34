//! Typed dispatch of CloudTrail operations to the services.

use crate::app::App;
use opentrail_delivery::list_public_keys;
use opentrail_operations::Operation;
use opentrail_trails::RequestContext;
use opentrail_wire::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn typed<T: DeserializeOwned>(input: Value) -> Result<T, ApiError> {
    serde_json::from_value(input)
        .map_err(|e| ApiError::serialization(format!("failed to read request: {e}")))
}

/// Runs one CloudTrail operation whose input already passed model validation: one arm
/// per operation of the model.
pub async fn dispatch(
    app: &App,
    ctx: &RequestContext,
    operation: Operation,
    input: Value,
) -> Result<Value, ApiError> {
    use Operation::*;
    let trails = &app.trails;
    match operation {
        ListPublicKeys => {
            let keys = &app.keys;
            output(list_public_keys(
                keys,
                &ctx.region,
                app.clock.now(),
                typed(input)?,
            )?)
        }
        LookupEvents => lookup_events(app, ctx, typed(input)?).await,
        CreateTrail => output(trails.create_trail(ctx, typed(input)?).await?),
        UpdateTrail => output(trails.update_trail(ctx, typed(input)?).await?),
        DeleteTrail => output(trails.delete_trail(ctx, typed(input)?).await?),
        GetTrail => output(trails.get_trail(ctx, typed(input)?).await?),
        DescribeTrails => output(trails.describe_trails(ctx, typed(input)?).await?),
        ListTrails => output(trails.list_trails(ctx, typed(input)?).await?),
        GetTrailStatus => output(trails.get_trail_status(ctx, typed(input)?).await?),
        StartLogging => output(trails.start_logging(ctx, typed(input)?).await?),
        StopLogging => output(trails.stop_logging(ctx, typed(input)?).await?),
        AddTags => output(trails.add_tags(ctx, typed(input)?).await?),
        RemoveTags => output(trails.remove_tags(ctx, typed(input)?).await?),
        ListTags => output(trails.list_tags(ctx, typed(input)?).await?),
        PutEventSelectors => {
            // A selector that cannot be read is an invalid selector, not a serialisation
            // fault (unknown enum values are checked by the service and answer the same).
            let input = serde_json::from_value(input)
                .map_err(|e| ApiError::new("InvalidEventSelectorsException", e.to_string()))?;
            output(trails.put_event_selectors(ctx, input).await?)
        }
        GetEventSelectors => output(trails.get_event_selectors(ctx, typed(input)?).await?),
        PutInsightSelectors => output(trails.put_insight_selectors(ctx, typed(input)?).await?),
        GetInsightSelectors => output(trails.get_insight_selectors(ctx, typed(input)?).await?),
        // Not built yet: each answers UnsupportedOperationException until its issue lands.
        CancelQuery
        | CreateChannel
        | CreateDashboard
        | CreateEventDataStore
        | DeleteChannel
        | DeleteDashboard
        | DeleteEventDataStore
        | DeleteResourcePolicy
        | DeregisterOrganizationDelegatedAdmin
        | DescribeQuery
        | DisableFederation
        | EnableFederation
        | GenerateQuery
        | GetChannel
        | GetDashboard
        | GetEventConfiguration
        | GetEventDataStore
        | GetImport
        | GetQueryResults
        | GetResourcePolicy
        | ListChannels
        | ListDashboards
        | ListEventDataStores
        | ListImportFailures
        | ListImports
        | ListInsightsData
        | ListInsightsMetricData
        | ListQueries
        | PutAuditEvents
        | PutEventConfiguration
        | PutResourcePolicy
        | RegisterOrganizationDelegatedAdmin
        | RestoreEventDataStore
        | SearchSampleQueries
        | StartDashboardRefresh
        | StartEventDataStoreIngestion
        | StartImport
        | StartQuery
        | StopEventDataStoreIngestion
        | StopImport
        | UpdateChannel
        | UpdateDashboard
        | UpdateEventDataStore => Err(unsupported(operation)),
    }
}

/// An operation's typed answer as the JSON its response body carries.
fn output(answer: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(answer)
        .map_err(|e| ApiError::internal(format!("failed to encode the response: {e}")))
}

fn unsupported(operation: Operation) -> ApiError {
    ApiError::new(
        "UnsupportedOperationException",
        format!("{operation} is not available on this OpenTrail server"),
    )
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
    output(response)
}
