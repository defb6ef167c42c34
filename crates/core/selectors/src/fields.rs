//! Which advanced-selector fields a trail or an event data store accepts for each event
//! category, with the operators and values each allows (AdvancedFieldSelector API reference).

use crate::types::Operator;

/// A field of an advanced field selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    EventCategory,
    EventSource,
    EventName,
    EventType,
    ReadOnly,
    ResourcesType,
    ResourcesArn,
    UserIdentityArn,
    SessionCredentialFromConsole,
    ErrorCode,
    VpcEndpointId,
}

impl Field {
    pub(crate) const ALL: [Field; 11] = [
        Self::EventCategory,
        Self::EventSource,
        Self::EventName,
        Self::EventType,
        Self::ReadOnly,
        Self::ResourcesType,
        Self::ResourcesArn,
        Self::UserIdentityArn,
        Self::SessionCredentialFromConsole,
        Self::ErrorCode,
        Self::VpcEndpointId,
    ];

    /// Field names are case-sensitive, as in the event record.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|field| field.as_str() == name)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::EventCategory => "eventCategory",
            Self::EventSource => "eventSource",
            Self::EventName => "eventName",
            Self::EventType => "eventType",
            Self::ReadOnly => "readOnly",
            Self::ResourcesType => "resources.type",
            Self::ResourcesArn => "resources.ARN",
            Self::UserIdentityArn => "userIdentity.arn",
            Self::SessionCredentialFromConsole => "sessionCredentialFromConsole",
            Self::ErrorCode => "errorCode",
            Self::VpcEndpointId => "vpcEndpointId",
        }
    }
}

/// What the selectors are for: a trail, or an event data store (which accepts more
/// categories, and more fields for management events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Trail,
    EventDataStore,
}

impl Target {
    /// How messages name the target: "a trail", "an event data store".
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Self::Trail => "a trail",
            Self::EventDataStore => "an event data store",
        }
    }

    /// The `eventCategory` values this target accepts.
    pub(crate) fn categories(self) -> &'static [Category] {
        match self {
            Self::Trail => &Category::TRAIL,
            Self::EventDataStore => &Category::ALL,
        }
    }
}

/// The `eventCategory` values of advanced event selectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Management,
    Data,
    NetworkActivity,
    /// The following only in event data stores (each a store of its own kind).
    Insight,
    ConfigurationItem,
    Evidence,
    ActivityAuditLog,
}

impl Category {
    /// The categories a trail accepts.
    pub(crate) const TRAIL: [Category; 3] = [Self::Management, Self::Data, Self::NetworkActivity];
    /// Every category (an event data store accepts each).
    pub(crate) const ALL: [Category; 7] = [
        Self::Management,
        Self::Data,
        Self::NetworkActivity,
        Self::Insight,
        Self::ConfigurationItem,
        Self::Evidence,
        Self::ActivityAuditLog,
    ];

    pub(crate) fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|category| category.as_str() == value)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Management => "Management",
            Self::Data => "Data",
            Self::NetworkActivity => "NetworkActivity",
            Self::Insight => "Insight",
            Self::ConfigurationItem => "ConfigurationItem",
            Self::Evidence => "Evidence",
            Self::ActivityAuditLog => "ActivityAuditLog",
        }
    }

    /// CloudTrail events (management, data, network activity), which one event data
    /// store may mix; the other categories each make a store of their own kind.
    pub(crate) fn is_cloudtrail_event(self) -> bool {
        matches!(self, Self::Management | Self::Data | Self::NetworkActivity)
    }

    /// Fields a selector of this category must contain besides `eventCategory`.
    pub(crate) fn required_fields(self) -> &'static [Field] {
        match self {
            Self::Data => &[Field::ResourcesType],
            Self::NetworkActivity => &[Field::EventSource],
            Self::Management
            | Self::Insight
            | Self::ConfigurationItem
            | Self::Evidence
            | Self::ActivityAuditLog => &[],
        }
    }

    /// Fields `target` accepts in a selector of this category.
    pub(crate) fn supported_fields(self, target: Target) -> &'static [Field] {
        match (self, target) {
            (Self::Management, Target::Trail) => {
                &[Field::EventCategory, Field::EventSource, Field::ReadOnly]
            }
            (Self::Management, Target::EventDataStore) => &[
                Field::EventCategory,
                Field::EventSource,
                Field::ReadOnly,
                Field::EventName,
                Field::EventType,
                Field::SessionCredentialFromConsole,
                Field::UserIdentityArn,
            ],
            (Self::Data, _) => &[
                Field::EventCategory,
                Field::EventName,
                Field::EventSource,
                Field::EventType,
                Field::ResourcesType,
                Field::ReadOnly,
                Field::ResourcesArn,
                Field::SessionCredentialFromConsole,
                Field::UserIdentityArn,
            ],
            (Self::NetworkActivity, _) => &[
                Field::EventCategory,
                Field::EventSource,
                Field::EventName,
                Field::ErrorCode,
                Field::VpcEndpointId,
                Field::UserIdentityArn,
            ],
            (
                Self::Insight | Self::ConfigurationItem | Self::Evidence | Self::ActivityAuditLog,
                _,
            ) => &[Field::EventCategory],
        }
    }
}

/// What a field accepts within one category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldRule {
    pub(crate) operators: &'static [Operator],
    pub(crate) values: ValueRule,
    /// Exactly one value in total (eventCategory, resources.type, network eventSource).
    pub(crate) single_value: bool,
}

/// Which values a field accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueRule {
    Any,
    OneOf(&'static [&'static str]),
    /// `AWS::Service::Type`.
    ResourceType,
    /// Equals/NotEquals need a whole ARN; prefix and suffix operators take any text.
    ArnWhenExact,
}

const ANY_OPERATOR: &[Operator] = &Operator::ALL;
const EQUALS: &[Operator] = &[Operator::Equals];
const NOT_EQUALS: &[Operator] = &[Operator::NotEquals];
const EQUALS_OR_NOT_EQUALS: &[Operator] = &[Operator::Equals, Operator::NotEquals];
const BOOLEAN: &[&str] = &["true", "false"];

const fn rule(operators: &'static [Operator], values: ValueRule) -> FieldRule {
    FieldRule {
        operators,
        values,
        single_value: false,
    }
}

const fn single(operators: &'static [Operator], values: ValueRule) -> FieldRule {
    FieldRule {
        operators,
        values,
        single_value: true,
    }
}

/// The rule for `field` in a selector of `category` for `target`, or `None` if the
/// target does not accept the field for that category.
pub(crate) fn field_rule(target: Target, category: Category, field: Field) -> Option<FieldRule> {
    use Category::{Data, Management, NetworkActivity};
    use Field::*;
    if !category.supported_fields(target).contains(&field) {
        return None;
    }
    let found = match (category, field) {
        (_, EventCategory) => single(EQUALS, ValueRule::Any),
        (Management | Data, ReadOnly) => rule(EQUALS, ValueRule::OneOf(BOOLEAN)),
        (Management, EventSource) => rule(
            NOT_EQUALS,
            ValueRule::OneOf(&["kms.amazonaws.com", "rdsdata.amazonaws.com"]),
        ),
        (Management | Data, EventName | EventType | UserIdentityArn) => {
            rule(ANY_OPERATOR, ValueRule::Any)
        }
        (Data, EventSource) => rule(ANY_OPERATOR, ValueRule::Any),
        (Data, ResourcesType) => single(EQUALS, ValueRule::ResourceType),
        (Data, ResourcesArn) => rule(ANY_OPERATOR, ValueRule::ArnWhenExact),
        (Management | Data, SessionCredentialFromConsole) => {
            rule(EQUALS_OR_NOT_EQUALS, ValueRule::OneOf(BOOLEAN))
        }
        (NetworkActivity, EventSource) => single(EQUALS, ValueRule::Any),
        (NetworkActivity, EventName | UserIdentityArn | VpcEndpointId) => {
            rule(ANY_OPERATOR, ValueRule::Any)
        }
        (NetworkActivity, ErrorCode) => rule(EQUALS, ValueRule::OneOf(&["VpceAccessDenied"])),
        _ => return None,
    };
    Some(found)
}

/// `AWS::Service::Type`, each part alphanumeric.
pub(crate) fn is_resource_type(value: &str) -> bool {
    let mut parts = value.split("::");
    let (Some("AWS"), Some(service), Some(kind), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    [service, kind]
        .iter()
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A whole ARN: `arn:partition:service:region:account:resource` with a
/// non-empty partition, service and resource.
pub(crate) fn is_complete_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, _region, _account, resource] = parts.as_slice() else {
        return false;
    };
    *arn == "arn" && !partition.is_empty() && !service.is_empty() && !resource.is_empty()
}

/// Joins names as "a, b and c" for messages.
pub(crate) fn join_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    join_with(names, "and")
}

/// Joins names as "a, b or c" for messages.
pub(crate) fn join_alternatives<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    join_with(names, "or")
}

fn join_with<'a>(names: impl IntoIterator<Item = &'a str>, conjunction: &str) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    match names.as_slice() {
        [] => String::new(),
        [only] => (*only).to_string(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip_and_are_case_sensitive() {
        for field in Field::ALL {
            assert_eq!(Field::parse(field.as_str()), Some(field));
        }
        assert_eq!(Field::parse("resources.arn"), None);
        assert_eq!(Field::parse("ReadOnly"), None);
    }

    #[test]
    fn supported_fields_are_exactly_those_with_rules() {
        for target in [Target::Trail, Target::EventDataStore] {
            for category in Category::ALL {
                for field in Field::ALL {
                    assert_eq!(
                        field_rule(target, category, field).is_some(),
                        category.supported_fields(target).contains(&field),
                        "{target:?} {category:?} {field:?}"
                    );
                }
                for required in category.required_fields() {
                    assert!(category.supported_fields(target).contains(required));
                }
            }
        }
    }

    #[test]
    fn resource_type_format() {
        assert!(is_resource_type("AWS::S3::Object"));
        assert!(is_resource_type("AWS::BedrockAgentCore::CodeInterpreter"));
        assert!(!is_resource_type("AWS::S3"));
        assert!(!is_resource_type("AWS::S3::Object::Extra"));
        assert!(!is_resource_type("Custom::S3::Object"));
        assert!(!is_resource_type("AWS::S3::*"));
        assert!(!is_resource_type("AWS::::Object"));
    }

    #[test]
    fn complete_arn_format() {
        assert!(is_complete_arn("arn:aws:s3:::bucket/key"));
        assert!(is_complete_arn(
            "arn:aws:lambda:us-east-1:111122223333:function:f"
        ));
        assert!(!is_complete_arn("arn:aws:s3"));
        assert!(!is_complete_arn("arn:aws:s3:::"));
        assert!(!is_complete_arn("bucket/key"));
    }

    #[test]
    fn joins_names_for_messages() {
        assert_eq!(join_names([]), "");
        assert_eq!(join_names(["a"]), "a");
        assert_eq!(join_names(["a", "b"]), "a and b");
        assert_eq!(join_names(["a", "b", "c"]), "a, b and c");
        assert_eq!(join_alternatives(["a", "b", "c"]), "a, b or c");
    }
}
