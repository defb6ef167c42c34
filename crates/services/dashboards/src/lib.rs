//! CloudTrail Lake dashboards: CreateDashboard, GetDashboard, ListDashboards,
//! UpdateDashboard, DeleteDashboard and StartDashboardRefresh, their tags, the managed
//! dashboards OpenTrail ships and the scheduled refreshes ([`DashboardService::refresh_due`]).
//! Dashboards are metadata documents; a refresh starts each widget's query through the
//! queries service. Each operation takes the generated request of `opentrail-operations`
//! and returns its generated response, or a [`DashboardError`] (an `opentrail_wire::AwsError`).

mod error;
mod lifecycle;
mod managed;
mod parameters;
mod record;
mod refresh;
mod tagging;
mod validate;

pub use error::DashboardError;
pub use managed::is_reserved;
pub use record::{arn, DashboardRecord, WidgetRecord};
pub use validate::MAX_WIDGETS;

use chrono::{DateTime, Utc};
use opentrail_meta::{Documents, MetaStore, Transactions};
use opentrail_model::{AccountId, Clock, Region, RequestContext};
use opentrail_operations::{DashboardStatus, DashboardType};
use opentrail_queries::QueryService;
use record::DASHBOARDS;
use std::sync::Arc;

/// Tells the stores service (resource policies on dashboard ARNs) whether a dashboard
/// exists: a custom dashboard (or the Highlights dashboard) the account created, or one of
/// the managed dashboards every account has (stored on its first dashboard call).
pub struct Directory;

impl opentrail_stores::DashboardLookup for Directory {
    fn find_dashboard(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        arn: &str,
    ) -> opentrail_meta::Result<Option<String>> {
        let Ok(name) = parse_dashboard_id(ctx, arn) else {
            return Ok(None);
        };
        let stored = docs
            .get_document(DASHBOARDS, &record::key(&ctx.account, &ctx.region, &name))?
            .is_some();
        let managed = managed::all().iter().any(|m| m.name == name);
        Ok((stored || managed).then(|| record::arn(&ctx.region, &ctx.account, &name)))
    }
}

/// The most custom dashboards one account may have in a region (AWS: 100); managed
/// dashboards do not count.
pub const MAX_DASHBOARDS_PER_REGION: usize = 100;

pub struct DashboardService {
    meta: Arc<dyn MetaStore>,
    clock: Arc<dyn Clock>,
    queries: Arc<QueryService>,
}

impl DashboardService {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        clock: Arc<dyn Clock>,
        queries: Arc<QueryService>,
    ) -> Self {
        Self {
            meta,
            clock,
            queries,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `body` in one metadata transaction (name uniqueness and the region's limit
    /// hold when it writes), off the async workers.
    fn write<T>(
        &self,
        body: impl FnMut(&dyn Documents) -> Result<T, DashboardError>,
    ) -> Result<T, DashboardError> {
        blocking(|| self.meta.transaction(body))
    }

    /// The account's dashboards in `region`, managed ones first, then custom ones by name.
    fn dashboards_in(
        &self,
        docs: &dyn Documents,
        account: &AccountId,
        region: &Region,
    ) -> Result<Vec<DashboardRecord>, DashboardError> {
        let prefix = format!("{account}/{region}/");
        let mut dashboards: Vec<DashboardRecord> = docs
            .list_documents(DASHBOARDS)?
            .into_iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .map(|(key, value)| decode(&key, &value))
            .collect::<Result<_, _>>()?;
        dashboards.sort_by(|a, b| (!a.is_managed(), &a.name).cmp(&(!b.is_managed(), &b.name)));
        Ok(dashboards)
    }

    /// Stores the managed dashboards the caller's account lacks in its region (the first
    /// dashboard call there seeds them).
    fn seed_managed(&self, ctx: &RequestContext) -> Result<(), DashboardError> {
        let missing = |docs: &dyn Documents| -> Result<Vec<managed::Managed>, DashboardError> {
            let mut missing = Vec::new();
            for dashboard in managed::all() {
                let key = record::key(&ctx.account, &ctx.region, dashboard.name);
                if docs.get_document(DASHBOARDS, &key)?.is_none() {
                    missing.push(dashboard);
                }
            }
            Ok(missing)
        };
        if missing(&Direct(self.meta.as_ref()))?.is_empty() {
            return Ok(());
        }
        let now = self.now();
        self.write(|tx| {
            for dashboard in missing(tx)? {
                let seeded = DashboardRecord {
                    name: dashboard.name.to_owned(),
                    account: ctx.account.clone(),
                    region: ctx.region.clone(),
                    kind: DashboardType::Managed,
                    status: DashboardStatus::Created,
                    widgets: dashboard.widgets,
                    refresh_schedule: None,
                    next_refresh_at: None,
                    termination_protection: false,
                    tags: Vec::new(),
                    created_at: now,
                    updated_at: now,
                    last_refresh_id: None,
                    last_refresh_failure: None,
                };
                save_in(tx, &seeded)?;
            }
            Ok(())
        })
    }

    /// The caller's dashboard a `DashboardId` (name or ARN) names.
    fn resolve_in(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        dashboard_id: &str,
    ) -> Result<DashboardRecord, DashboardError> {
        let name = parse_dashboard_id(ctx, dashboard_id)?;
        let key = record::key(&ctx.account, &ctx.region, &name);
        docs.get_document(DASHBOARDS, &key)?
            .map(|value| decode(&key, &value))
            .transpose()?
            .ok_or_else(|| not_found(dashboard_id))
    }

    fn resolve(
        &self,
        ctx: &RequestContext,
        dashboard_id: &str,
    ) -> Result<DashboardRecord, DashboardError> {
        self.seed_managed(ctx)?;
        self.resolve_in(&Direct(self.meta.as_ref()), ctx, dashboard_id)
    }

    /// Every dashboard of every account (for the scheduler).
    fn all(&self) -> Result<Vec<DashboardRecord>, DashboardError> {
        blocking(|| self.meta.list_documents(DASHBOARDS))?
            .iter()
            .map(|(key, value)| decode(key, value))
            .collect()
    }

    /// Whether `value` is a dashboard ARN (tagging routes it here).
    pub fn is_dashboard_arn(value: &str) -> bool {
        opentrail_model::Arn::parse(value)
            .is_ok_and(|arn| arn.service == "cloudtrail" && arn.resource.starts_with("dashboard/"))
    }
}

fn not_found(dashboard_id: &str) -> DashboardError {
    DashboardError::ResourceNotFound(format!("Dashboard {dashboard_id} does not exist"))
}

/// A `DashboardId`'s name: the name itself, or the end of the caller's dashboard ARN (an
/// ARN of another account or region names nothing of the caller's).
fn parse_dashboard_id(ctx: &RequestContext, value: &str) -> Result<String, DashboardError> {
    if !value.starts_with("arn:") {
        validate::name(value, "DashboardId")?;
        return Ok(value.to_owned());
    }
    let arn = opentrail_model::Arn::parse(value).map_err(|_| {
        DashboardError::Validation(format!(
            "DashboardId {value} is not a dashboard name or ARN"
        ))
    })?;
    let Some(name) = arn.resource.strip_prefix("dashboard/") else {
        return Err(DashboardError::Validation(format!(
            "DashboardId {value} is not a dashboard ARN"
        )));
    };
    if arn.service != "cloudtrail" {
        return Err(DashboardError::Validation(format!(
            "DashboardId {value} is not a CloudTrail dashboard ARN"
        )));
    }
    validate::name(name, "DashboardId")?;
    if arn.account != ctx.account.as_str() || arn.region != ctx.region.as_str() {
        return Err(not_found(value));
    }
    Ok(name.to_owned())
}

/// Documents read outside a transaction.
struct Direct<'a>(&'a dyn MetaStore);

impl Documents for Direct<'_> {
    fn get_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<Option<String>> {
        blocking(|| self.0.get_document(collection, key))
    }

    fn list_documents(&self, collection: &str) -> opentrail_meta::Result<Vec<(String, String)>> {
        blocking(|| self.0.list_documents(collection))
    }

    fn put_document(&self, collection: &str, key: &str, value: &str) -> opentrail_meta::Result<()> {
        blocking(|| self.0.put_document(collection, key, value))
    }

    fn delete_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<bool> {
        blocking(|| self.0.delete_document(collection, key))
    }
}

/// Runs blocking metadata work: on a multi-threaded runtime without holding up its other
/// tasks, elsewhere (tests) directly.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

fn decode(key: &str, value: &str) -> Result<DashboardRecord, DashboardError> {
    serde_json::from_str(value)
        .map_err(|e| DashboardError::Internal(format!("stored dashboard {key} is unreadable: {e}")))
}

fn save_in(docs: &dyn Documents, dashboard: &DashboardRecord) -> Result<(), DashboardError> {
    let value = serde_json::to_string(dashboard)
        .map_err(|e| DashboardError::Internal(format!("failed to encode dashboard: {e}")))?;
    docs.put_document(DASHBOARDS, &dashboard.storage_key(), &value)?;
    Ok(())
}
