//! Which trail gets which event, and in which region's log file: region scope, the
//! global-service rule, the logging window and the trail's selectors.

use chrono::Timelike;
use chrono::{DateTime, Utc};
use opentrail_model::{AccountId, EventRecord, Region, TrailArn, TrailName};
use opentrail_selectors::TrailSelectors;

/// Where global service events are recorded.
pub const GLOBAL_EVENTS_REGION: &str = "us-east-1";

/// Services whose events are global: recorded in us-east-1 and delivered only to trails
/// that include global service events.
const GLOBAL_EVENT_SOURCES: &[&str] = &[
    "iam.amazonaws.com",
    "cloudfront.amazonaws.com",
    "route53.amazonaws.com",
    "route53domains.amazonaws.com",
    "signin.amazonaws.com",
];

/// `eventCategory` of events sent through channels (PutAuditEvents).
pub const ACTIVITY_AUDIT_LOG: &str = "ActivityAuditLog";

/// `eventCategory` of Insights events.
pub const INSIGHT_CATEGORY: &str = "Insight";

/// What delivery needs to know about a trail.
#[derive(Debug, Clone, PartialEq)]
pub struct TrailTarget {
    pub account: AccountId,
    pub name: TrailName,
    pub home_region: Region,
    pub is_multi_region: bool,
    pub include_global_service_events: bool,
    pub s3_bucket: String,
    /// `None` or empty: keys start at `AWSLogs/`.
    pub s3_key_prefix: Option<String>,
    pub selectors: TrailSelectors,
    pub log_file_validation: bool,
    /// The insight types its insight selectors enable (`ApiCallRateInsight`,
    /// `ApiErrorRateInsight`): it receives exactly those Insights events.
    pub insight_types: Vec<String>,
    pub is_logging: bool,
    /// When logging last started; events older than this are not delivered.
    /// `None` delivers regardless of event time.
    pub logging_since: Option<DateTime<Utc>>,
    /// The event log's end when logging last started: only records appended at or after
    /// this offset are delivered (exact, unlike event times). `None`: no offset bound.
    pub logging_since_offset: Option<u64>,
}

impl TrailTarget {
    pub fn arn(&self) -> TrailArn {
        TrailArn::new(
            self.home_region.clone(),
            self.account.clone(),
            self.name.clone(),
        )
    }

    /// The key prefix, `None` when empty.
    pub fn prefix(&self) -> Option<&str> {
        self.s3_key_prefix.as_deref().filter(|p| !p.is_empty())
    }
}

/// The region whose log file `event` goes into for `trail`, or `None` when the trail
/// does not deliver it.
///
/// Since November 2021 CloudTrail records global service events only in us-east-1, so
/// they reach multi-region trails and us-east-1 single-region trails, and only those that
/// include global service events.
pub fn routes(event: &EventRecord, trail: &TrailTarget) -> Option<Region> {
    if !trail.is_logging {
        return None;
    }
    // Events sent through channels (PutAuditEvents) go to event data stores only: trails
    // never deliver them, as on AWS.
    if event.event_category() == ACTIVITY_AUDIT_LOG {
        return None;
    }
    if event.recipient_account_id() != trail.account.as_str() {
        return None;
    }
    if let Some(since) = trail.logging_since {
        // Event times have whole seconds; an event of the second logging started in counts.
        let since = since.with_nanosecond(0).unwrap_or(since);
        if event.event_time().is_none_or(|time| time < since) {
            return None;
        }
    }
    let region = Region::parse(event.aws_region()).ok()?;
    if !trail.is_multi_region && region != trail.home_region {
        return None;
    }
    if !trail.include_global_service_events && is_global_service_event(event) {
        return None;
    }
    if event.event_category() == INSIGHT_CATEGORY {
        // An event data store's Insights events go to its destination store only.
        if event.insight_source().is_some() {
            return None;
        }
        let insight_type = insight_type(event)?;
        return trail
            .insight_types
            .contains(&insight_type)
            .then_some(region);
    }
    if !trail.selectors.matches(event) {
        return None;
    }
    Some(region)
}

/// Whether `event` is a global service event: IAM, CloudFront, Route 53, console sign-in,
/// and STS called on its global endpoint (`sts.amazonaws.com`), all recorded in us-east-1.
pub fn is_global_service_event(event: &EventRecord) -> bool {
    if event.aws_region() != GLOBAL_EVENTS_REGION {
        return false;
    }
    let source = event.event_source();
    if GLOBAL_EVENT_SOURCES.contains(&source) {
        return true;
    }
    source == "sts.amazonaws.com" && !called_regional_sts_endpoint(event)
}

/// The regional endpoint in us-east-1 (`sts.us-east-1.amazonaws.com`) shows in the host
/// header the client sent; records without TLS details count as global.
fn called_regional_sts_endpoint(event: &EventRecord) -> bool {
    event
        .tls_details_json()
        .is_some_and(|tls| tls.contains("sts.us-east-1.amazonaws.com"))
}

/// `insightDetails.insightType` of an Insights event.
fn insight_type(event: &EventRecord) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Details {
        #[serde(rename = "insightType")]
        insight_type: String,
    }
    let details: Details = serde_json::from_str(event.insight_details_json()?).ok()?;
    Some(details.insight_type)
}
