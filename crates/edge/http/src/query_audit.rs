//! The resources of a Lake query call's audit event: the event data stores the query
//! reads. StartQuery's request names them only inside its SQL, and DescribeQuery,
//! GetQueryResults and CancelQuery need not name one (`EventDataStore` is deprecated), so
//! they are taken from the query's record.

use crate::app::App;
use crate::exchange::Exchange;
use opentrail_model::RequestContext;
use opentrail_operations::{Operation, ResourceType};
use opentrail_wire::ApiError;
use serde_json::Value;

/// The stores of the query the call concerns, as (type, ARN); `None` for other calls and
/// for queries not found (then the usual rule applies: the `EventDataStore` parameter).
pub(crate) fn query_resources(
    app: &App,
    ctx: &RequestContext,
    operation: Operation,
    exchange: &Exchange,
    result: &Result<Value, ApiError>,
) -> Option<Vec<(&'static str, String)>> {
    let query_id = match operation {
        Operation::StartQuery => result.as_ref().ok()?.get("QueryId")?.as_str()?.to_owned(),
        Operation::DescribeQuery | Operation::GetQueryResults | Operation::CancelQuery => exchange
            .request_parameters
            .as_ref()?
            .get("QueryId")?
            .as_str()?
            .to_owned(),
        _ => return None,
    };
    let arns = app.queries.store_arns_of(ctx, &query_id);
    if arns.is_empty() {
        return None;
    }
    let kind = ResourceType::EventDataStore.type_name();
    Some(arns.into_iter().map(|arn| (kind, arn)).collect())
}
