//! CreateDashboard, GetDashboard, ListDashboards, UpdateDashboard and DeleteDashboard.

use crate::parameters;
use crate::record::{key, DashboardRecord, WidgetRecord, DASHBOARDS};
use crate::validate::{self, Cadence};
use crate::{
    managed, not_found, save_in, DashboardError, DashboardService, Direct,
    MAX_DASHBOARDS_PER_REGION,
};
use base64::Engine;
use opentrail_model::{resource_rules, RequestContext};
use opentrail_operations::{
    CreateDashboardRequest, CreateDashboardResponse, DashboardStatus, DashboardType,
    DeleteDashboardRequest, DeleteDashboardResponse, GetDashboardRequest, GetDashboardResponse,
    ListDashboardsRequest, ListDashboardsResponse, Timestamp, UpdateDashboardRequest,
    UpdateDashboardResponse,
};

/// Dashboards per ListDashboards page, and its most (the model's limit).
const MAX_LIST_RESULTS: i32 = 1000;
/// The Highlights dashboard's reserved name.
const HIGHLIGHTS: &str = "AWSCloudTrail-Highlights";

impl DashboardService {
    /// Checks each widget's query as StartQuery would, its placeholders filled with the
    /// default refresh values.
    async fn check_widget_queries(
        &self,
        ctx: &RequestContext,
        widgets: &[WidgetRecord],
    ) -> Result<(), DashboardError> {
        let values = parameters::resolve(&Default::default(), false, self.now())?;
        for widget in widgets {
            let statement = parameters::substitute(
                &widget.query_statement,
                widget.query_parameters.as_deref().unwrap_or_default(),
                &values,
            );
            self.queries
                .check_statement(ctx, &statement)
                .await
                .map_err(|e| match DashboardError::from(e) {
                    DashboardError::InvalidQueryStatement(m) => {
                        DashboardError::InvalidQueryStatement(format!(
                            "Widget {}: {m}",
                            widget.query_alias
                        ))
                    }
                    other => other,
                })?;
        }
        Ok(())
    }

    pub async fn create_dashboard(
        &self,
        ctx: &RequestContext,
        input: CreateDashboardRequest,
    ) -> Result<CreateDashboardResponse, DashboardError> {
        validate::name(&input.name, "Name")?;
        if input.name == HIGHLIGHTS {
            return Err(DashboardError::UnsupportedOperation(format!(
                "The {HIGHLIGHTS} dashboard is not available on this OpenTrail server; its managed dashboards (AWSCloudTrail-Overview and others) are listed by ListDashboards"
            )));
        }
        if managed::is_reserved(&input.name) {
            return Err(DashboardError::Validation(format!(
                "Name {} is not valid: names starting with AWSCloudTrail- are reserved for managed dashboards",
                input.name
            )));
        }
        let tags = input.tags_list.clone().unwrap_or_default();
        tags_valid(&tags)?;
        let widgets = validate::widgets(input.widgets.as_deref().unwrap_or_default())?;
        let cadence = input
            .refresh_schedule
            .as_ref()
            .map(validate::schedule)
            .transpose()?
            .flatten();
        self.seed_managed(ctx)?;
        self.check_widget_queries(ctx, &widgets).await?;
        let now = self.now();
        let dashboard = DashboardRecord {
            name: input.name.clone(),
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            kind: DashboardType::Custom,
            status: DashboardStatus::Created,
            widgets,
            refresh_schedule: input.refresh_schedule.clone(),
            next_refresh_at: cadence.map(|c| c.next_after(now)),
            termination_protection: input.termination_protection_enabled.unwrap_or(false),
            tags,
            created_at: now,
            updated_at: now,
            last_refresh_id: None,
            last_refresh_failure: None,
        };
        self.write(|tx| {
            let existing = self.dashboards_in(tx, &ctx.account, &ctx.region)?;
            if existing.iter().any(|d| d.name == dashboard.name) {
                return Err(DashboardError::Conflict(format!(
                    "A dashboard named {} already exists in account {} and region {}",
                    dashboard.name, ctx.account, ctx.region
                )));
            }
            let custom = existing.iter().filter(|d| !d.is_managed()).count();
            if custom >= MAX_DASHBOARDS_PER_REGION {
                return Err(DashboardError::ServiceQuotaExceeded(format!(
                    "Account {} already has {MAX_DASHBOARDS_PER_REGION} dashboards in {}, the most allowed",
                    ctx.account, ctx.region
                )));
            }
            save_in(tx, &dashboard)
        })?;
        Ok(CreateDashboardResponse {
            dashboard_arn: Some(dashboard.arn()),
            name: Some(dashboard.name.clone()),
            r#type: Some(dashboard.kind.clone()),
            widgets: Some(dashboard.widgets()),
            tags_list: Some(dashboard.tags.clone()),
            refresh_schedule: dashboard.refresh_schedule.clone(),
            termination_protection_enabled: Some(dashboard.termination_protection),
        })
    }

    pub async fn get_dashboard(
        &self,
        ctx: &RequestContext,
        input: GetDashboardRequest,
    ) -> Result<GetDashboardResponse, DashboardError> {
        let dashboard = self.resolve(ctx, &input.dashboard_id)?;
        Ok(dashboard.to_get_response())
    }

    pub async fn list_dashboards(
        &self,
        ctx: &RequestContext,
        input: ListDashboardsRequest,
    ) -> Result<ListDashboardsResponse, DashboardError> {
        let max = input.max_results.unwrap_or(MAX_LIST_RESULTS);
        if !(1..=MAX_LIST_RESULTS).contains(&max) {
            return Err(DashboardError::Validation(format!(
                "MaxResults must be 1 to {MAX_LIST_RESULTS}, got {max}"
            )));
        }
        if let Some(prefix) = &input.name_prefix {
            validate::name(prefix, "NamePrefix")?;
        }
        if let Some(DashboardType::Unknown(kind)) = &input.r#type {
            return Err(DashboardError::Validation(format!(
                "Type {kind} is not one of MANAGED, CUSTOM"
            )));
        }
        let after = input.next_token.as_deref().map(decode_token).transpose()?;
        self.seed_managed(ctx)?;
        let mut dashboards: Vec<DashboardRecord> = self
            .dashboards_in(&Direct(self.meta.as_ref()), &ctx.account, &ctx.region)?
            .into_iter()
            .filter(|d| {
                input
                    .name_prefix
                    .as_ref()
                    .is_none_or(|p| d.name.starts_with(p.as_str()))
                    && input.r#type.as_ref().is_none_or(|t| &d.kind == t)
            })
            .collect();
        if let Some(after) = &after {
            let position = dashboards
                .iter()
                .position(|d| &d.name == after)
                .map_or(0, |at| at + 1);
            dashboards.drain(..position);
        }
        let more = dashboards.len() > max as usize;
        dashboards.truncate(max as usize);
        let next_token = more
            .then(|| dashboards.last())
            .flatten()
            .map(|last| encode_token(&last.name));
        Ok(ListDashboardsResponse {
            dashboards: Some(dashboards.iter().map(DashboardRecord::to_detail).collect()),
            next_token,
        })
    }

    pub async fn update_dashboard(
        &self,
        ctx: &RequestContext,
        input: UpdateDashboardRequest,
    ) -> Result<UpdateDashboardResponse, DashboardError> {
        let current = self.resolve(ctx, &input.dashboard_id)?;
        if current.is_managed() {
            return Err(DashboardError::UnsupportedOperation(format!(
                "Dashboard {} is managed by CloudTrail and cannot be updated",
                current.name
            )));
        }
        let widgets = input
            .widgets
            .as_deref()
            .map(validate::widgets)
            .transpose()?;
        let cadence: Option<Option<Cadence>> = input
            .refresh_schedule
            .as_ref()
            .map(validate::schedule)
            .transpose()?;
        if let Some(widgets) = &widgets {
            self.check_widget_queries(ctx, widgets).await?;
        }
        let now = self.now();
        let updated = self.write(|tx| {
            let mut dashboard = self.resolve_in(tx, ctx, &input.dashboard_id)?;
            if let Some(widgets) = &widgets {
                dashboard.widgets = widgets.clone();
            }
            if let Some(cadence) = cadence {
                dashboard.refresh_schedule = input.refresh_schedule.clone();
                dashboard.next_refresh_at = cadence.map(|c| c.next_after(now));
            }
            if let Some(protected) = input.termination_protection_enabled {
                dashboard.termination_protection = protected;
            }
            dashboard.status = DashboardStatus::Updated;
            dashboard.updated_at = now;
            save_in(tx, &dashboard)?;
            Ok(dashboard)
        })?;
        Ok(UpdateDashboardResponse {
            dashboard_arn: Some(updated.arn()),
            name: Some(updated.name.clone()),
            r#type: Some(updated.kind.clone()),
            widgets: Some(updated.widgets()),
            refresh_schedule: updated.refresh_schedule.clone(),
            termination_protection_enabled: Some(updated.termination_protection),
            created_timestamp: Some(Timestamp(updated.created_at)),
            updated_timestamp: Some(Timestamp(updated.updated_at)),
        })
    }

    pub async fn delete_dashboard(
        &self,
        ctx: &RequestContext,
        input: DeleteDashboardRequest,
    ) -> Result<DeleteDashboardResponse, DashboardError> {
        self.seed_managed(ctx)?;
        self.write(|tx| {
            let dashboard = self.resolve_in(tx, ctx, &input.dashboard_id)?;
            if dashboard.is_managed() {
                return Err(DashboardError::UnsupportedOperation(format!(
                    "Dashboard {} is managed by CloudTrail and cannot be deleted",
                    dashboard.name
                )));
            }
            if dashboard.termination_protection {
                return Err(DashboardError::Conflict(format!(
                    "Dashboard {} has termination protection enabled; disable it with UpdateDashboard before deleting the dashboard",
                    dashboard.name
                )));
            }
            if !tx.delete_document(DASHBOARDS, &key(&ctx.account, &ctx.region, &dashboard.name))? {
                return Err(not_found(&input.dashboard_id));
            }
            // Its resource-based policy goes with it.
            opentrail_stores::remove_resource_policy(tx, &dashboard.arn())?;
            Ok(())
        })?;
        Ok(DeleteDashboardResponse {})
    }
}

pub(crate) fn tags_valid(tags: &[opentrail_operations::Tag]) -> Result<(), DashboardError> {
    resource_rules::check_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_deref())))
        .map_err(DashboardError::InvalidTagParameter)?;
    if tags.len() > resource_rules::MAX_TAGS_PER_RESOURCE {
        return Err(DashboardError::TagsLimitExceeded(format!(
            "A dashboard can have at most {} tags, got {}",
            resource_rules::MAX_TAGS_PER_RESOURCE,
            tags.len()
        )));
    }
    Ok(())
}

fn encode_token(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("dashboards:{name}"))
}

fn decode_token(token: &str) -> Result<String, DashboardError> {
    let invalid = || DashboardError::InvalidNextToken(format!("NextToken {token} is not valid"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix("dashboards:")
        .map(str::to_owned)
        .ok_or_else(invalid)
}
