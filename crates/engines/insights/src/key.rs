//! What is counted: a metric key (account, region, eventSource, eventName, insight type
//! and, for error-rate insights, errorCode), and the view of one event the counters read.

use crate::config::{InsightSelection, InsightType};
use chrono::{DateTime, Utc};
use opentrail_model::event::EventRecord;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One counted series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricKey {
    pub account: Arc<str>,
    pub region: Arc<str>,
    pub event_source: Arc<str>,
    pub event_name: Arc<str>,
    pub insight_type: InsightType,
    /// Set exactly for `ApiErrorRateInsight`.
    pub error_code: Option<Arc<str>>,
}

/// The fields of one event that Insights reads.
#[derive(Debug, Clone, Copy)]
pub struct ApiCall<'a> {
    pub event_time: DateTime<Utc>,
    pub account: &'a str,
    pub region: &'a str,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub error_code: Option<&'a str>,
    /// `readOnly`; an event without it counts as a write.
    pub read_only: Option<bool>,
    /// Management (true) or data (false) event.
    pub management: bool,
    pub user_identity_arn: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl<'a> ApiCall<'a> {
    /// The call of a management or data event record; `None` for other categories
    /// (Insight, NetworkActivity) and records without a usable eventTime.
    pub fn from_record(record: &'a EventRecord) -> Option<Self> {
        let management = match record.event_category() {
            "Management" => true,
            "Data" => false,
            _ => return None,
        };
        Some(Self {
            event_time: record.event_time()?,
            account: record.recipient_account_id(),
            region: record.aws_region(),
            event_source: record.event_source(),
            event_name: record.event_name(),
            error_code: record.error_code().filter(|code| !code.is_empty()),
            read_only: record.read_only(),
            management,
            user_identity_arn: record.user_identity().arn,
            user_agent: record.user_agent(),
        })
    }

    /// Whether `ApiCallRateInsight` counts this call under `selection`: write management
    /// calls, and data calls when the selector includes `Data`.
    pub(crate) fn counts_for_call_rate(&self, selection: &InsightSelection) -> bool {
        let Some(categories) = selection.call_rate else {
            return false;
        };
        if self.management {
            categories.management && self.read_only != Some(true)
        } else {
            categories.data
        }
    }

    /// The error code `ApiErrorRateInsight` counts this call under, if any.
    pub(crate) fn error_for_error_rate(&self, selection: &InsightSelection) -> Option<&'a str> {
        let categories = selection.error_rate?;
        let code = self.error_code?;
        let analysed = if self.management {
            categories.management
        } else {
            categories.data
        };
        analysed.then_some(code)
    }
}
