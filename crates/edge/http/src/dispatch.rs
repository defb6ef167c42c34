//! Typed dispatch of CloudTrail operations to the services.

use crate::app::App;
use opentrail_dashboards::DashboardService;
use opentrail_delivery::list_public_keys;
use opentrail_operations::Operation;
use opentrail_stores::StoreService;
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
    let stores = &app.stores;
    let queries = &app.queries;
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
        CreateChannel => output(stores.create_channel(ctx, typed(input)?).await?),
        GetChannel => output(stores.get_channel(ctx, typed(input)?).await?),
        ListChannels => output(stores.list_channels(ctx, typed(input)?).await?),
        UpdateChannel => output(stores.update_channel(ctx, typed(input)?).await?),
        DeleteChannel => output(stores.delete_channel(ctx, typed(input)?).await?),
        // Served on its own route (`POST /PutAuditEvents`, service cloudtrail-data).
        PutAuditEvents => Err(ApiError::new(
            "UnknownOperationException",
            "PutAuditEvents is a cloudtrail-data operation: send it as POST /PutAuditEvents?channelArn=...",
        )),
        AddTags => {
            let input: opentrail_operations::AddTagsRequest = typed(input)?;
            if DashboardService::is_dashboard_arn(&input.resource_id) {
                output(app.dashboards.add_tags(ctx, input).await?)
            } else if StoreService::is_channel_arn(&input.resource_id) {
                output(stores.add_channel_tags(ctx, input).await?)
            } else if is_event_data_store(&input.resource_id) {
                output(stores.add_tags(ctx, input).await?)
            } else {
                output(trails.add_tags(ctx, input).await?)
            }
        }
        RemoveTags => {
            let input: opentrail_operations::RemoveTagsRequest = typed(input)?;
            if DashboardService::is_dashboard_arn(&input.resource_id) {
                output(app.dashboards.remove_tags(ctx, input).await?)
            } else if StoreService::is_channel_arn(&input.resource_id) {
                output(stores.remove_channel_tags(ctx, input).await?)
            } else if is_event_data_store(&input.resource_id) {
                output(stores.remove_tags(ctx, input).await?)
            } else {
                output(trails.remove_tags(ctx, input).await?)
            }
        }
        ListTags => list_tags(app, ctx, typed(input)?).await,
        CreateEventDataStore => output(stores.create_event_data_store(ctx, typed(input)?).await?),
        GetEventDataStore => output(stores.get_event_data_store(ctx, typed(input)?).await?),
        ListEventDataStores => output(stores.list_event_data_stores(ctx, typed(input)?).await?),
        UpdateEventDataStore => output(stores.update_event_data_store(ctx, typed(input)?).await?),
        DeleteEventDataStore => output(stores.delete_event_data_store(ctx, typed(input)?).await?),
        RestoreEventDataStore => output(stores.restore_event_data_store(ctx, typed(input)?).await?),
        EnableFederation => output(stores.enable_federation(ctx, typed(input)?).await?),
        DisableFederation => output(stores.disable_federation(ctx, typed(input)?).await?),
        StartEventDataStoreIngestion => output(
            stores
                .start_event_data_store_ingestion(ctx, typed(input)?)
                .await?,
        ),
        StopEventDataStoreIngestion => output(
            stores
                .stop_event_data_store_ingestion(ctx, typed(input)?)
                .await?,
        ),
        PutEventSelectors => {
            // A selector that cannot be read is an invalid selector, not a serialisation
            // fault (unknown enum values are checked by the service and answer the same).
            let input = serde_json::from_value(input)
                .map_err(|e| ApiError::new("InvalidEventSelectorsException", e.to_string()))?;
            output(trails.put_event_selectors(ctx, input).await?)
        }
        GetEventSelectors => output(trails.get_event_selectors(ctx, typed(input)?).await?),
        PutInsightSelectors => {
            let input: opentrail_operations::PutInsightSelectorsRequest = typed(input)?;
            // Insights of an event data store (source + destination) live with the stores.
            if input.event_data_store.is_some() || input.insights_destination.is_some() {
                output(stores.put_insight_selectors(ctx, input).await?)
            } else {
                output(trails.put_insight_selectors(ctx, input).await?)
            }
        }
        GetInsightSelectors => {
            let input: opentrail_operations::GetInsightSelectorsRequest = typed(input)?;
            if input.event_data_store.is_some() && input.trail_name.is_none() {
                output(stores.get_insight_selectors(ctx, input).await?)
            } else {
                output(trails.get_insight_selectors(ctx, input).await?)
            }
        }
        ListInsightsMetricData => {
            crate::insights_ops::list_insights_metric_data(app, ctx, typed(input)?).await
        }
        ListInsightsData => crate::insights_ops::list_insights_data(app, ctx, typed(input)?).await,
        StartQuery => output(queries.start_query(ctx, typed(input)?).await?),
        DescribeQuery => output(queries.describe_query(ctx, typed(input)?).await?),
        GetQueryResults => output(queries.get_query_results(ctx, typed(input)?).await?),
        ListQueries => output(queries.list_queries(ctx, typed(input)?).await?),
        CancelQuery => output(queries.cancel_query(ctx, typed(input)?).await?),
        SearchSampleQueries => output(app.samples.search_sample_queries(typed(input)?).await?),
        GenerateQuery => output(app.samples.generate_query(ctx, typed(input)?).await?),
        PutResourcePolicy => output(stores.put_resource_policy(ctx, typed(input)?).await?),
        GetResourcePolicy => output(stores.get_resource_policy(ctx, typed(input)?).await?),
        DeleteResourcePolicy => output(stores.delete_resource_policy(ctx, typed(input)?).await?),
        PutEventConfiguration => output(stores.put_event_configuration(ctx, typed(input)?).await?),
        GetEventConfiguration => output(stores.get_event_configuration(ctx, typed(input)?).await?),
        StartImport => output(app.imports.start_import(ctx, typed(input)?).await?),
        GetImport => output(app.imports.get_import(ctx, typed(input)?).await?),
        ListImports => output(app.imports.list_imports(ctx, typed(input)?).await?),
        StopImport => output(app.imports.stop_import(ctx, typed(input)?).await?),
        ListImportFailures => output(app.imports.list_import_failures(ctx, typed(input)?).await?),
        CreateDashboard => output(app.dashboards.create_dashboard(ctx, typed(input)?).await?),
        GetDashboard => output(app.dashboards.get_dashboard(ctx, typed(input)?).await?),
        ListDashboards => output(app.dashboards.list_dashboards(ctx, typed(input)?).await?),
        UpdateDashboard => output(app.dashboards.update_dashboard(ctx, typed(input)?).await?),
        DeleteDashboard => output(app.dashboards.delete_dashboard(ctx, typed(input)?).await?),
        StartDashboardRefresh => output(
            app.dashboards
                .start_dashboard_refresh(ctx, typed(input)?)
                .await?,
        ),
        // Not built yet: each answers UnsupportedOperationException until its issue lands.
        DeregisterOrganizationDelegatedAdmin | RegisterOrganizationDelegatedAdmin => {
            Err(unsupported(operation))
        }
    }
}

/// An operation's typed answer as the JSON its response body carries.
pub(crate) fn output(answer: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(answer)
        .map_err(|e| ApiError::internal(format!("failed to encode the response: {e}")))
}

fn unsupported(operation: Operation) -> ApiError {
    ApiError::new(
        "UnsupportedOperationException",
        format!("{operation} is not available on this OpenTrail server"),
    )
}

/// Tagging requests name their resource by ARN: event data store ARNs go to the stores
/// service, everything else (trails, and the errors for other resources) to trails.
fn is_event_data_store(resource_id: &str) -> bool {
    opentrail_model::Arn::parse(resource_id).is_ok_and(|arn| {
        arn.service == "cloudtrail"
            && opentrail_operations::ResourceType::of_arn(resource_id)
                == Some(opentrail_operations::ResourceType::EventDataStore)
    })
}

/// ListTags over trails, event data stores, channels and dashboards at once: each resource asked of its
/// service, the answers in the request's order (the first failure is the answer).
async fn list_tags(
    app: &App,
    ctx: &RequestContext,
    input: opentrail_operations::ListTagsRequest,
) -> Result<Value, ApiError> {
    let mut resources = Vec::with_capacity(input.resource_id_list.len());
    for resource_id in input.resource_id_list {
        let one = opentrail_operations::ListTagsRequest {
            resource_id_list: vec![resource_id.clone()],
            next_token: None,
        };
        let answer = if DashboardService::is_dashboard_arn(&resource_id) {
            app.dashboards.list_tags(ctx, one).await?
        } else if StoreService::is_channel_arn(&resource_id) {
            app.stores.list_channel_tags(ctx, one).await?
        } else if is_event_data_store(&resource_id) {
            app.stores.list_tags(ctx, one).await?
        } else {
            app.trails.list_tags(ctx, one).await?
        };
        resources.extend(answer.resource_tag_list.unwrap_or_default());
    }
    output(opentrail_operations::ListTagsResponse {
        resource_tag_list: Some(resources),
        next_token: None,
    })
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
