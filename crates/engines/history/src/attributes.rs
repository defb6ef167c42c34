//! What LookupEvents knows about one record: its history category, the eight lookup
//! attributes, and the `Username`/`Resources` values AWS derives for the Event shape.

use crate::resources::{resources_of, ResourceSummary};
use opentrail_model::event::{UserIdentity, UserIdentityType};
use opentrail_model::EventRecord;
use serde::Deserialize;
use std::borrow::Cow;

/// botocore's `LookupAttributeKey`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LookupAttributeKey {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl LookupAttributeKey {
    pub const ALL: [Self; 8] = [
        Self::EventId,
        Self::EventName,
        Self::ReadOnly,
        Self::Username,
        Self::ResourceType,
        Self::ResourceName,
        Self::EventSource,
        Self::AccessKeyId,
    ];

    /// Parses the wire name, e.g. `"EventName"`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.as_str() == name)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventId => "EventId",
            Self::EventName => "EventName",
            Self::ReadOnly => "ReadOnly",
            Self::Username => "Username",
            Self::ResourceType => "ResourceType",
            Self::ResourceName => "ResourceName",
            Self::EventSource => "EventSource",
            Self::AccessKeyId => "AccessKeyId",
        }
    }

    /// Whether Insights events can be looked up by this attribute (AWS allows only these).
    pub fn applies_to_insights(self) -> bool {
        matches!(self, Self::EventId | Self::EventName | Self::EventSource)
    }
}

/// The two kinds of events the history keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HistoryCategory {
    Management,
    Insight,
}

impl HistoryCategory {
    /// Which history category `record` belongs to; `None` for data and network activity
    /// events, which event history does not keep.
    pub fn of(record: &EventRecord) -> Option<Self> {
        match record.event_category() {
            "Insight" => Some(Self::Insight),
            "Management" if record.management_event() => Some(Self::Management),
            _ => None,
        }
    }

    pub(crate) fn byte(self) -> u8 {
        match self {
            Self::Management => b'm',
            Self::Insight => b'i',
        }
    }
}

/// The lookup-relevant view of one record, with values borrowed from it where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary<'a> {
    pub event_id: &'a str,
    pub event_name: Cow<'a, str>,
    pub event_source: Cow<'a, str>,
    pub read_only: Option<bool>,
    pub username: Option<Cow<'a, str>>,
    pub access_key_id: Option<&'a str>,
    pub resources: Vec<ResourceSummary<'a>>,
}

impl<'a> EventSummary<'a> {
    pub fn of(record: &'a EventRecord) -> Self {
        let identity = record.user_identity();
        let (event_name, event_source) = names(record);
        Self {
            event_id: record.event_id(),
            event_name,
            event_source,
            read_only: record.read_only(),
            username: username(&identity),
            access_key_id: identity.access_key_id.filter(|key| !key.is_empty()),
            resources: resources_of(record),
        }
    }

    /// The values this event is found under for `key` (several for resources).
    pub fn values(&self, key: LookupAttributeKey) -> Vec<&str> {
        let mut values = Vec::new();
        self.for_each_value(key, |value| values.push(value));
        values
    }

    /// Calls `visit` with each value this event is found under for `key`, without
    /// allocating (the indexing hot path).
    pub fn for_each_value<'s>(&'s self, key: LookupAttributeKey, mut visit: impl FnMut(&'s str)) {
        let single = match key {
            LookupAttributeKey::EventId => Some(self.event_id),
            LookupAttributeKey::EventName => Some(self.event_name.as_ref()),
            LookupAttributeKey::EventSource => Some(self.event_source.as_ref()),
            LookupAttributeKey::ReadOnly => self.read_only.map(read_only_text),
            LookupAttributeKey::Username => self.username.as_deref(),
            LookupAttributeKey::AccessKeyId => self.access_key_id,
            LookupAttributeKey::ResourceType => {
                self.resources
                    .iter()
                    .filter_map(|resource| resource.resource_type)
                    .for_each(visit);
                return;
            }
            LookupAttributeKey::ResourceName => {
                self.resources
                    .iter()
                    .flat_map(ResourceSummary::lookup_names)
                    .for_each(visit);
                return;
            }
        };
        if let Some(value) = single.filter(|value| !value.is_empty()) {
            visit(value);
        }
    }
}

/// `ReadOnly` as the Event shape and the lookup attribute spell it.
pub fn read_only_text(read_only: bool) -> &'static str {
    if read_only {
        "true"
    } else {
        "false"
    }
}

/// The user name event history shows: the IAM user name; `root` for the root user; the
/// session name for an assumed role (the last part of
/// `arn:aws:sts::<account>:assumed-role/<role>/<session>`); the federated user's name;
/// the invoking service (`invokedBy`, e.g. `cloudtrail.amazonaws.com`) for an
/// `AWSService` identity and for an identity that records only `accountId` and
/// `invokedBy`; otherwise `userIdentity.userName` when recorded.
pub fn username<'a>(identity: &UserIdentity<'a>) -> Option<Cow<'a, str>> {
    let recorded = identity.user_name.filter(|name| !name.is_empty());
    let derived = match identity.kind() {
        Some(UserIdentityType::Root) => Some("root"),
        Some(UserIdentityType::AssumedRole) => identity
            .arn
            .and_then(|arn| arn_suffix(arn, "assumed-role/"))
            .and_then(|role_and_session| role_and_session.split_once('/'))
            .map(|(_, session)| session)
            .or_else(|| principal_session(identity)),
        Some(UserIdentityType::FederatedUser) => identity
            .arn
            .and_then(|arn| arn_suffix(arn, "federated-user/"))
            .or_else(|| principal_session(identity)),
        Some(UserIdentityType::AwsService) => identity.invoked_by,
        None if only_invoked_by(identity) => identity.invoked_by,
        _ => None,
    };
    derived
        .filter(|name| !name.is_empty())
        .or(recorded)
        .map(Cow::Borrowed)
}

/// An identity without a type that names no principal, only the service that acted
/// (`{"accountId": ..., "invokedBy": "secretsmanager.amazonaws.com"}`).
fn only_invoked_by(identity: &UserIdentity<'_>) -> bool {
    identity.arn.is_none()
        && identity.principal_id.is_none()
        && identity.user_name.is_none()
        && identity.invoked_by.is_some()
}

fn arn_suffix<'a>(arn: &'a str, marker: &str) -> Option<&'a str> {
    arn.find(marker).map(|at| &arn[at + marker.len()..])
}

/// `principalId` of a session is `<unique id>:<session name>`.
fn principal_session<'a>(identity: &UserIdentity<'a>) -> Option<&'a str> {
    identity
        .principal_id
        .and_then(|id| id.split_once(':'))
        .map(|(_, session)| session)
}

#[derive(Deserialize)]
struct InsightDetailsNames<'a> {
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<Cow<'a, str>>,
}

/// `eventName`/`eventSource`; Insights records carry them in `insightDetails` instead.
fn names(record: &EventRecord) -> (Cow<'_, str>, Cow<'_, str>) {
    let name = record.event_name();
    let source = record.event_source();
    if !name.is_empty() && !source.is_empty() {
        return (Cow::Borrowed(name), Cow::Borrowed(source));
    }
    let details = record
        .insight_details_json()
        .and_then(|json| serde_json::from_str::<InsightDetailsNames<'_>>(json).ok());
    let Some(details) = details else {
        return (Cow::Borrowed(name), Cow::Borrowed(source));
    };
    let name = match details.event_name {
        Some(detail) if name.is_empty() => detail,
        _ => Cow::Borrowed(name),
    };
    let source = match details.event_source {
        Some(detail) if source.is_empty() => detail,
        _ => Cow::Borrowed(source),
    };
    (name, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> EventRecord {
        EventRecord::from_json(json).expect("test record parses")
    }

    fn username_of(identity: &str) -> Option<String> {
        let record = record(&format!(r#"{{"userIdentity":{identity}}}"#));
        username(&record.user_identity()).map(Cow::into_owned)
    }

    #[test]
    fn derives_usernames_like_event_history() {
        assert_eq!(
            username_of(
                r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice","userName":"alice"}"#
            ),
            Some("alice".into())
        );
        assert_eq!(
            username_of(r#"{"type":"Root","arn":"arn:aws:iam::1:root","principalId":"1"}"#),
            Some("root".into())
        );
        assert_eq!(
            username_of(
                r#"{"type":"AssumedRole","principalId":"AROA:sess","arn":"arn:aws:sts::1:assumed-role/Admin/my-session","sessionContext":{"sessionIssuer":{"userName":"Admin"}}}"#
            ),
            Some("my-session".into())
        );
        assert_eq!(
            username_of(r#"{"type":"AssumedRole","principalId":"AROAX:from-principal"}"#),
            Some("from-principal".into())
        );
        assert_eq!(
            username_of(
                r#"{"type":"FederatedUser","arn":"arn:aws:sts::1:federated-user/bob","principalId":"1:bob"}"#
            ),
            Some("bob".into())
        );
        assert_eq!(
            username_of(r#"{"type":"WebIdentityUser","userName":"system:serviceaccount:a:b"}"#),
            Some("system:serviceaccount:a:b".into())
        );
        assert_eq!(
            username_of(r#"{"type":"AWSService","invokedBy":"s3.amazonaws.com"}"#),
            Some("s3.amazonaws.com".into())
        );
        assert_eq!(
            username_of(r#"{"accountId":"1","invokedBy":"secretsmanager.amazonaws.com"}"#),
            Some("secretsmanager.amazonaws.com".into())
        );
        assert_eq!(username_of(r#"{"type":"AWSService"}"#), None);
        assert_eq!(
            username_of(
                r#"{"type":"AWSAccount","principalId":"AIDAX","accountId":"2","invokedBy":"x.amazonaws.com"}"#
            ),
            None
        );
        assert_eq!(
            username_of(r#"{"principalId":"AIDAX","invokedBy":"x.amazonaws.com"}"#),
            None
        );
    }

    #[test]
    fn categories_follow_event_history() {
        let management = record(r#"{"eventCategory":"Management","managementEvent":true}"#);
        let data = record(r#"{"eventCategory":"Data","managementEvent":false}"#);
        let legacy_data = record(r#"{"managementEvent":false}"#);
        let insight = record(r#"{"eventType":"AwsCloudTrailInsight"}"#);
        assert_eq!(
            HistoryCategory::of(&management),
            Some(HistoryCategory::Management)
        );
        assert_eq!(HistoryCategory::of(&data), None);
        assert_eq!(HistoryCategory::of(&legacy_data), None);
        assert_eq!(
            HistoryCategory::of(&insight),
            Some(HistoryCategory::Insight)
        );
    }

    #[test]
    fn insight_names_come_from_insight_details() {
        let insight = record(
            r#"{"eventType":"AwsCloudTrailInsight","eventCategory":"Insight","insightDetails":{"eventName":"PutObject","eventSource":"s3.amazonaws.com"}}"#,
        );
        let summary = EventSummary::of(&insight);
        assert_eq!(summary.event_name, "PutObject");
        assert_eq!(summary.event_source, "s3.amazonaws.com");
    }

    #[test]
    fn resources_and_attribute_values() {
        let event = record(
            r#"{"eventID":"e1","eventName":"AssumeRole","eventSource":"sts.amazonaws.com","readOnly":false,
               "userIdentity":{"type":"IAMUser","userName":"alice","accessKeyId":"AKIA1"},
               "resources":[{"type":"AWS::IAM::Role","ARN":"arn:aws:iam::1:role/r"},{"ARN":"arn:x"},7]}"#,
        );
        let summary = EventSummary::of(&event);
        assert_eq!(summary.values(LookupAttributeKey::ReadOnly), vec!["false"]);
        assert_eq!(
            summary.values(LookupAttributeKey::AccessKeyId),
            vec!["AKIA1"]
        );
        assert_eq!(
            summary.values(LookupAttributeKey::ResourceType),
            vec!["AWS::IAM::Role"]
        );
        assert_eq!(
            summary.values(LookupAttributeKey::ResourceName),
            vec!["arn:aws:iam::1:role/r", "r", "arn:x"]
        );
        for key in LookupAttributeKey::ALL {
            assert_eq!(LookupAttributeKey::parse(key.as_str()), Some(key));
        }
        assert_eq!(LookupAttributeKey::parse("eventname"), None);
    }
}
