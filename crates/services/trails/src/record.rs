//! What we persist for a trail, and the generated wire shapes derived from it.

use chrono::{DateTime, Utc};
use opentrail_model::{AccountId, Region, TrailArn, TrailName};
use opentrail_operations::{
    CreateTrailResponse, InsightSelector, InsightType, SourceEventCategory, Tag, Trail, TrailInfo,
    UpdateTrailResponse,
};
use opentrail_selectors::TrailSelectors;
use serde::{Deserialize, Serialize};

/// An insight selector as stored: the enum values as text, exactly as the request named them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoredInsightSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_categories: Option<Vec<String>>,
}

impl From<InsightSelector> for StoredInsightSelector {
    fn from(selector: InsightSelector) -> Self {
        Self {
            insight_type: selector.insight_type.map(|t| t.as_str().to_owned()),
            event_categories: selector
                .event_categories
                .map(|c| c.iter().map(|c| c.as_str().to_owned()).collect()),
        }
    }
}

impl From<&StoredInsightSelector> for InsightSelector {
    fn from(stored: &StoredInsightSelector) -> Self {
        Self {
            insight_type: stored.insight_type.clone().map(InsightType::from),
            event_categories: stored
                .event_categories
                .as_ref()
                .map(|c| c.iter().cloned().map(SourceEventCategory::from).collect()),
        }
    }
}

/// Logging and delivery state, as `GetTrailStatus` reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrailStatus {
    pub is_logging: bool,
    /// The event log's end when logging last started (delivery starts there).
    #[serde(default)]
    pub logging_since_offset: Option<u64>,
    pub start_logging_time: Option<DateTime<Utc>>,
    pub stop_logging_time: Option<DateTime<Utc>>,
    pub latest_delivery_time: Option<DateTime<Utc>>,
    pub latest_delivery_attempt_time: Option<DateTime<Utc>>,
    pub latest_delivery_attempt_succeeded: Option<DateTime<Utc>>,
    pub latest_delivery_error: Option<String>,
    pub latest_digest_delivery_time: Option<DateTime<Utc>>,
    pub latest_digest_delivery_error: Option<String>,
    pub latest_notification_time: Option<DateTime<Utc>>,
    pub latest_notification_attempt_time: Option<DateTime<Utc>>,
    pub latest_notification_attempt_succeeded: Option<DateTime<Utc>>,
    pub latest_notification_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrailRecord {
    pub name: TrailName,
    pub account: AccountId,
    pub home_region: Region,
    pub s3_bucket_name: String,
    pub s3_key_prefix: Option<String>,
    /// The topic's ARN (the request may name it by name or ARN).
    pub sns_topic_arn: Option<String>,
    pub include_global_service_events: bool,
    pub is_multi_region_trail: bool,
    pub log_file_validation_enabled: bool,
    pub cloud_watch_logs_log_group_arn: Option<String>,
    pub cloud_watch_logs_role_arn: Option<String>,
    /// Always a full KMS key or alias ARN.
    pub kms_key_id: Option<String>,
    pub selectors: TrailSelectors,
    pub insight_selectors: Vec<StoredInsightSelector>,
    pub tags: Vec<Tag>,
    /// Runtime state, stored in its own record keyed by `incarnation` and filled in when
    /// read (`TrailService::all_trails`); never written into the trail's document. Older
    /// versions wrote it there: such a document (without incarnation) is read with it.
    #[serde(default, skip_serializing)]
    pub status: TrailStatus,
    pub created_at: DateTime<Utc>,
    /// Unique to this trail's life: a trail deleted and created again under the same name
    /// gets a new one. Empty in documents written by older versions, until next written.
    #[serde(default)]
    pub incarnation: String,
}

impl TrailRecord {
    pub fn arn(&self) -> TrailArn {
        TrailArn::new(
            self.home_region.clone(),
            self.account.clone(),
            self.name.clone(),
        )
    }

    /// The metadata-store key: unique per account, home region and name.
    pub fn storage_key(&self) -> String {
        storage_key(&self.account, &self.home_region, &self.name)
    }

    /// Whether the trail can be seen from `region`: its home, or anywhere if multi-region.
    pub fn visible_in(&self, region: &Region) -> bool {
        self.is_multi_region_trail || &self.home_region == region
    }

    pub fn sns_topic_name(&self) -> Option<String> {
        self.sns_topic_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(':').next())
            .map(str::to_owned)
    }

    /// botocore's `Trail`, as GetTrail and DescribeTrails return it.
    pub fn to_trail(&self) -> Trail {
        Trail {
            name: Some(self.name.to_string()),
            s3_bucket_name: Some(self.s3_bucket_name.clone()),
            s3_key_prefix: self.s3_key_prefix.clone(),
            sns_topic_name: self.sns_topic_name(),
            sns_topic_arn: self.sns_topic_arn.clone(),
            include_global_service_events: Some(self.include_global_service_events),
            is_multi_region_trail: Some(self.is_multi_region_trail),
            home_region: Some(self.home_region.to_string()),
            trail_arn: Some(self.arn().to_string()),
            log_file_validation_enabled: Some(self.log_file_validation_enabled),
            cloud_watch_logs_log_group_arn: self.cloud_watch_logs_log_group_arn.clone(),
            cloud_watch_logs_role_arn: self.cloud_watch_logs_role_arn.clone(),
            kms_key_id: self.kms_key_id.clone(),
            has_custom_event_selectors: Some(self.selectors.has_custom_event_selectors()),
            has_insight_selectors: Some(!self.insight_selectors.is_empty()),
            is_organization_trail: Some(false),
            ..Trail::default()
        }
    }

    /// botocore's `TrailInfo`, as ListTrails returns it.
    pub fn to_trail_info(&self) -> TrailInfo {
        TrailInfo {
            trail_arn: Some(self.arn().to_string()),
            name: Some(self.name.to_string()),
            home_region: Some(self.home_region.to_string()),
        }
    }

    /// The insight selectors in botocore's shape.
    pub fn insight_selectors(&self) -> Vec<InsightSelector> {
        self.insight_selectors
            .iter()
            .map(InsightSelector::from)
            .collect()
    }
}

/// `CreateTrailResponse` and `UpdateTrailResponse` have the same members.
macro_rules! write_response {
    ($name:ident, $response:ident) => {
        impl TrailRecord {
            pub fn $name(&self) -> $response {
                $response {
                    name: Some(self.name.to_string()),
                    s3_bucket_name: Some(self.s3_bucket_name.clone()),
                    s3_key_prefix: self.s3_key_prefix.clone(),
                    sns_topic_name: self.sns_topic_name(),
                    sns_topic_arn: self.sns_topic_arn.clone(),
                    include_global_service_events: Some(self.include_global_service_events),
                    is_multi_region_trail: Some(self.is_multi_region_trail),
                    trail_arn: Some(self.arn().to_string()),
                    log_file_validation_enabled: Some(self.log_file_validation_enabled),
                    cloud_watch_logs_log_group_arn: self.cloud_watch_logs_log_group_arn.clone(),
                    cloud_watch_logs_role_arn: self.cloud_watch_logs_role_arn.clone(),
                    kms_key_id: self.kms_key_id.clone(),
                    is_organization_trail: Some(false),
                    ..$response::default()
                }
            }
        }
    };
}

write_response!(to_create_response, CreateTrailResponse);
write_response!(to_update_response, UpdateTrailResponse);

pub fn storage_key(account: &AccountId, home_region: &Region, name: &TrailName) -> String {
    format!("{account}/{home_region}/{name}")
}
