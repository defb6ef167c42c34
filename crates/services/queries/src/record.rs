//! What we persist for a query (one metadata document each), and the wire shapes derived
//! from it.

use chrono::{DateTime, Utc};
use opentrail_model::{AccountId, Region};
use opentrail_operations::{
    DeliveryStatus, DescribeQueryResponse, Query, QueryStatisticsForDescribeQuery, QueryStatus,
    Timestamp,
};
use serde::{Deserialize, Serialize};

/// Query documents, keyed by [`QueryRecord::storage_key`].
pub(crate) const QUERIES: &str = "lake_queries";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// A lowercase UUID, as AWS's.
    pub id: String,
    pub account: AccountId,
    pub region: Region,
    pub statement: String,
    /// The ids of the event data stores the statement names, in order of appearance.
    pub stores: Vec<String>,
    pub status: QueryStatus,
    pub created_at: DateTime<Utc>,
    /// When it went RUNNING.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached FINISHED, FAILED, CANCELLED or TIMED_OUT.
    pub ended_at: Option<DateTime<Utc>>,
    pub events_matched: u64,
    pub events_scanned: u64,
    pub bytes_scanned: u64,
    /// Rows of a FINISHED query's result (its result file holds them).
    pub results_count: u64,
    pub error_message: Option<String>,
    /// `DeliveryS3Uri` as given, when the results go to S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_s3_uri: Option<String>,
    /// Where the results go (parsed from `delivery_s3_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<crate::Destination>,
    /// How the delivery to S3 went; `None` without a `DeliveryS3Uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<DeliveryStatus>,
    /// The GenerateQuery prompt of a query started by its `QueryAlias`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Set when a dashboard refresh started it: DescribeQuery finds it by QueryAlias and
    /// RefreshId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget: Option<WidgetRun>,
}

/// The dashboard widget a query ran for: its alias and the refresh that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetRun {
    pub refresh_id: String,
    pub query_alias: String,
}

impl QueryRecord {
    pub fn storage_key(&self) -> String {
        key(&self.account, &self.region, &self.id)
    }

    /// QUEUED or RUNNING: counted against the concurrency limit, cancellable.
    pub fn is_active(&self) -> bool {
        matches!(self.status, QueryStatus::Queued | QueryStatus::Running)
    }

    /// RUNNING → terminal; for a RUNNING query, the time so far (as of `now`).
    pub fn execution_time_in_millis(&self, now: DateTime<Utc>) -> i32 {
        let Some(started) = self.started_at else {
            return 0;
        };
        let end = self.ended_at.unwrap_or(now);
        let millis = (end - started).num_milliseconds().max(0);
        i32::try_from(millis).unwrap_or(i32::MAX)
    }

    pub fn to_list_item(&self) -> Query {
        Query {
            query_id: Some(self.id.clone()),
            query_status: Some(self.status.clone()),
            creation_time: Some(Timestamp(self.created_at)),
        }
    }

    pub fn to_describe_response(&self, now: DateTime<Utc>) -> DescribeQueryResponse {
        DescribeQueryResponse {
            query_id: Some(self.id.clone()),
            query_string: Some(self.statement.clone()),
            query_status: Some(self.status.clone()),
            query_statistics: Some(QueryStatisticsForDescribeQuery {
                events_matched: Some(saturating_i64(self.events_matched)),
                events_scanned: Some(saturating_i64(self.events_scanned)),
                bytes_scanned: Some(saturating_i64(self.bytes_scanned)),
                execution_time_in_millis: Some(self.execution_time_in_millis(now)),
                creation_time: Some(Timestamp(self.created_at)),
            }),
            error_message: self.error_message.clone(),
            delivery_s3_uri: self.delivery_s3_uri.clone(),
            delivery_status: self.delivery_status.clone(),
            prompt: self.prompt.clone(),
            ..DescribeQueryResponse::default()
        }
    }
}

pub(crate) fn key(account: &AccountId, region: &Region, id: &str) -> String {
    format!("{account}/{region}/{id}")
}

pub(crate) fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn saturating_i32(value: u64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
