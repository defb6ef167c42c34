//! What we persist for a dashboard (one metadata document each), and the wire shapes
//! derived from it.

use chrono::{DateTime, Utc};
use opentrail_model::{AccountId, Region};
use opentrail_operations::{
    DashboardDetail, DashboardStatus, DashboardType, GetDashboardResponse, RefreshSchedule, Tag,
    Timestamp, Widget,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Dashboard documents, keyed by [`DashboardRecord::storage_key`].
pub(crate) const DASHBOARDS: &str = "lake_dashboards";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardRecord {
    pub name: String,
    pub account: AccountId,
    pub region: Region,
    pub kind: DashboardType,
    /// CREATED after CreateDashboard, UPDATED after UpdateDashboard.
    pub status: DashboardStatus,
    pub widgets: Vec<WidgetRecord>,
    /// The schedule as the caller gave it (absent members stay absent).
    pub refresh_schedule: Option<RefreshSchedule>,
    /// When the scheduler refreshes it next; set while the schedule is ENABLED.
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub termination_protection: bool,
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_refresh_id: Option<String>,
    /// Why the last refresh (manual or scheduled) could not start every widget's query.
    pub last_refresh_failure: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidgetRecord {
    /// `widget-<n>`, n its 1-based position: how DescribeQuery names its query of a refresh.
    pub query_alias: String,
    pub query_statement: String,
    pub query_parameters: Option<Vec<String>>,
    pub view_properties: BTreeMap<String, String>,
}

impl WidgetRecord {
    pub fn to_widget(&self) -> Widget {
        Widget {
            query_alias: Some(self.query_alias.clone()),
            query_statement: Some(self.query_statement.clone()),
            query_parameters: self.query_parameters.clone(),
            view_properties: Some(self.view_properties.clone()),
        }
    }
}

impl DashboardRecord {
    pub fn storage_key(&self) -> String {
        key(&self.account, &self.region, &self.name)
    }

    pub fn arn(&self) -> String {
        arn(&self.region, &self.account, &self.name)
    }

    pub fn is_managed(&self) -> bool {
        self.kind == DashboardType::Managed
    }

    pub fn widgets(&self) -> Vec<Widget> {
        self.widgets.iter().map(WidgetRecord::to_widget).collect()
    }

    pub fn to_detail(&self) -> DashboardDetail {
        DashboardDetail {
            dashboard_arn: Some(self.arn()),
            r#type: Some(self.kind.clone()),
        }
    }

    pub fn to_get_response(&self) -> GetDashboardResponse {
        GetDashboardResponse {
            dashboard_arn: Some(self.arn()),
            r#type: Some(self.kind.clone()),
            status: Some(self.status.clone()),
            widgets: Some(self.widgets()),
            refresh_schedule: self.refresh_schedule.clone(),
            created_timestamp: Some(Timestamp(self.created_at)),
            updated_timestamp: Some(Timestamp(self.updated_at)),
            last_refresh_id: self.last_refresh_id.clone(),
            last_refresh_failure_reason: self.last_refresh_failure.clone(),
            termination_protection_enabled: Some(self.termination_protection),
        }
    }
}

pub(crate) fn key(account: &AccountId, region: &Region, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

/// `arn:aws:cloudtrail:<region>:<account>:dashboard/<name>`.
pub fn arn(region: &Region, account: &AccountId, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:dashboard/{name}")
}
