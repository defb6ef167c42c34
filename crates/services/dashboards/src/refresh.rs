//! StartDashboardRefresh, and the scheduled refreshes of dashboards whose schedule is
//! ENABLED ([`DashboardService::refresh_due`], run by the server's background task).

use crate::parameters;
use crate::record::DashboardRecord;
use crate::{save_in, validate, DashboardError, DashboardService};
use opentrail_model::{AccountId, Principal, PrincipalKind, Region, RequestContext};
use opentrail_operations::{StartDashboardRefreshRequest, StartDashboardRefreshResponse};
use opentrail_queries::WidgetRun;
use std::collections::BTreeMap;

/// The last refresh id handed out per account and region (refresh ids only grow).
const REFRESH_IDS: &str = "lake_dashboard_refresh_ids";

impl DashboardService {
    pub async fn start_dashboard_refresh(
        &self,
        ctx: &RequestContext,
        input: StartDashboardRefreshRequest,
    ) -> Result<StartDashboardRefreshResponse, DashboardError> {
        let dashboard = self.resolve(ctx, &input.dashboard_id)?;
        let given = input.query_parameter_values.unwrap_or_default();
        let refresh_id = self.refresh(ctx, &dashboard, &given).await?;
        Ok(StartDashboardRefreshResponse {
            refresh_id: Some(refresh_id),
        })
    }

    /// Starts one query per widget under a new refresh id; records the refresh (or why it
    /// could not start) on the dashboard. Queries already started when a later one is
    /// refused keep running.
    async fn refresh(
        &self,
        ctx: &RequestContext,
        dashboard: &DashboardRecord,
        given: &BTreeMap<String, String>,
    ) -> Result<String, DashboardError> {
        let now = self.now();
        let values = parameters::resolve(given, dashboard.is_managed(), now)?;
        let refresh_id = self.next_refresh_id(ctx, now)?;
        let mut failure = None;
        for widget in &dashboard.widgets {
            let statement = parameters::substitute(
                &widget.query_statement,
                widget.query_parameters.as_deref().unwrap_or_default(),
                &values,
            );
            let run = WidgetRun {
                refresh_id: refresh_id.clone(),
                query_alias: widget.query_alias.clone(),
            };
            if let Err(e) = self.queries.start_widget_query(ctx, statement, run).await {
                failure = Some(DashboardError::from(e));
                break;
            }
        }
        let reason = failure
            .as_ref()
            .map(|e| format!("Refresh {refresh_id} could not start every widget's query: {e}"));
        self.write(|tx| {
            // The dashboard may have been deleted meanwhile: then nothing is recorded.
            let Ok(mut current) = self.resolve_in(tx, ctx, &dashboard.name) else {
                return Ok(());
            };
            current.last_refresh_id = Some(refresh_id.clone());
            current.last_refresh_failure = reason.clone();
            save_in(tx, &current)
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(refresh_id),
        }
    }

    /// A refresh id (the model: 10–20 digits) no earlier refresh of the account in the
    /// region had: the current epoch milliseconds, or one more than the last one.
    fn next_refresh_id(
        &self,
        ctx: &RequestContext,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, DashboardError> {
        let key = format!("{}/{}", ctx.account, ctx.region);
        self.write(|tx| {
            let last: u64 = tx
                .get_document(REFRESH_IDS, &key)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
            let id = millis.max(last + 1);
            tx.put_document(REFRESH_IDS, &key, &id.to_string())?;
            Ok(id.to_string())
        })
    }

    /// Refreshes every dashboard whose schedule is ENABLED and due, as its account, then
    /// moves its next run past now (missed runs are not repeated). Returns how many were
    /// refreshed. Safe across restarts: the next run time is stored with the dashboard.
    pub async fn refresh_due(&self) -> Result<usize, DashboardError> {
        let now = self.now();
        let due: Vec<DashboardRecord> = self
            .all()?
            .into_iter()
            .filter(|d| d.next_refresh_at.is_some_and(|at| at <= now))
            .collect();
        let mut refreshed = 0;
        for dashboard in due {
            let ctx = owner_context(&dashboard.account, &dashboard.region);
            let cadence = dashboard
                .refresh_schedule
                .as_ref()
                .map(validate::schedule)
                .transpose()
                .ok()
                .flatten()
                .flatten();
            // Claim the run first, so that a slow refresh is not started twice.
            let claimed = self.write(|tx| {
                let Ok(mut current) = self.resolve_in(tx, &ctx, &dashboard.name) else {
                    return Ok(false);
                };
                if current.next_refresh_at != dashboard.next_refresh_at {
                    return Ok(false);
                }
                current.next_refresh_at = cadence.map(|c| c.next_after(now));
                save_in(tx, &current)?;
                Ok(true)
            })?;
            if !claimed {
                continue;
            }
            match self.refresh(&ctx, &dashboard, &BTreeMap::new()).await {
                Ok(refresh_id) => {
                    refreshed += 1;
                    tracing::info!(dashboard = %dashboard.arn(), refresh_id, "scheduled dashboard refresh started");
                }
                Err(e) => {
                    tracing::warn!(dashboard = %dashboard.arn(), error = %e, "scheduled dashboard refresh failed");
                }
            }
        }
        Ok(refreshed)
    }
}

/// Scheduled refreshes run as the dashboard's account itself.
fn owner_context(account: &AccountId, region: &Region) -> RequestContext {
    RequestContext {
        account: account.clone(),
        region: region.clone(),
        principal: Principal {
            access_key_id: String::new(),
            kind: PrincipalKind::Root,
        },
    }
}
