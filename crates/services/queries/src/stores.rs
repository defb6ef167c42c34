//! The event data stores a caller may query, from the stores service: the caller's
//! account's stores whose home region is the request's (a store, multi-region or not, is
//! managed and queried from its home region only, as the stores service shows them).

use crate::{QueryError, QueryService};
use opentrail_model::{Arn, RequestContext};
use opentrail_operations::EventDataStoreStatus;
use opentrail_stores::StoreRecord;

/// The caller's stores, split into those that can be queried and those pending deletion.
pub(crate) struct CallerStores {
    pub(crate) active: Vec<String>,
    pub(crate) pending_deletion: Vec<String>,
}

pub(crate) fn store_arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:cloudtrail:{}:{}:eventdatastore/{id}",
        ctx.region, ctx.account
    )
}

pub(crate) fn not_found(ctx: &RequestContext, arn: &str) -> QueryError {
    QueryError::EventDataStoreNotFound(format!(
        "Event data store {arn} does not exist in account {} and region {}",
        ctx.account, ctx.region
    ))
}

pub(crate) fn inactive(arn: &str) -> QueryError {
    QueryError::InactiveEventDataStore(format!(
        "Event data store {arn} is pending deletion; restore it to query it"
    ))
}

impl QueryService {
    fn stores_of(&self, ctx: &RequestContext) -> Result<Vec<StoreRecord>, QueryError> {
        // all_stores reads off the async workers itself.
        let stores = self.inner.stores.all_stores()?;
        Ok(stores
            .into_iter()
            .filter(|s| s.account == ctx.account && s.home_region == ctx.region)
            .collect())
    }

    pub(crate) fn caller_stores(&self, ctx: &RequestContext) -> Result<CallerStores, QueryError> {
        let (pending, active): (Vec<_>, Vec<_>) = self
            .stores_of(ctx)?
            .into_iter()
            .partition(|s| s.status == EventDataStoreStatus::PendingDeletion);
        Ok(CallerStores {
            active: active.into_iter().map(|s| s.id).collect(),
            pending_deletion: pending.into_iter().map(|s| s.id).collect(),
        })
    }

    /// The id of the store an `EventDataStore` parameter (ARN or id) names: one of the
    /// caller's in the request's region, not pending deletion.
    pub(crate) fn resolve_store(
        &self,
        ctx: &RequestContext,
        value: &str,
    ) -> Result<String, QueryError> {
        let invalid = || {
            QueryError::EventDataStoreArnInvalid(format!(
                "Invalid event data store ARN or id: {value}"
            ))
        };
        let is_id =
            |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let (id, arn) = if value.starts_with("arn:") {
            let parsed = Arn::parse(value).map_err(|_| invalid())?;
            let id = parsed
                .resource
                .strip_prefix("eventdatastore/")
                .unwrap_or_default()
                .to_owned();
            if parsed.service != "cloudtrail" || !is_id(&id) {
                return Err(invalid());
            }
            if parsed.account != ctx.account.as_str() || parsed.region != ctx.region.as_str() {
                return Err(not_found(ctx, value));
            }
            (id, value.to_owned())
        } else {
            if !is_id(value) {
                return Err(invalid());
            }
            (value.to_owned(), store_arn(ctx, value))
        };
        let store = self
            .stores_of(ctx)?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| not_found(ctx, &arn))?;
        if store.status == EventDataStoreStatus::PendingDeletion {
            return Err(inactive(&arn));
        }
        Ok(id)
    }
}
