//! Whether a trail's advanced event selectors select an event: any selector may
//! select it; within a selector every field selector must hold.

use crate::event::{EventKind, EventView};
use crate::types::Operator;
use crate::{AdvancedEventSelector, AdvancedFieldSelector};

const RESOURCES_TYPE: &str = "resources.type";
const RESOURCES_ARN: &str = "resources.ARN";

pub(crate) fn advanced_selectors_match(
    selectors: &[AdvancedEventSelector],
    event: &dyn EventView,
) -> bool {
    let kind = EventKind::of(event);
    if kind == EventKind::Insight {
        return false;
    }
    let resources = event.resources();
    selectors
        .iter()
        .any(|selector| selector_matches(selector, event, kind, &resources))
}

fn selector_matches(
    selector: &AdvancedEventSelector,
    event: &dyn EventView,
    kind: EventKind,
    resources: &[(String, String)],
) -> bool {
    let mut type_conditions = Vec::new();
    let mut arn_conditions = Vec::new();
    for condition in &selector.field_selectors {
        match condition.field.as_str() {
            RESOURCES_TYPE => type_conditions.push(condition),
            RESOURCES_ARN => arn_conditions.push(condition),
            field => {
                let holds = match scalar_value(field, event, kind) {
                    Some(value) => condition_holds(condition, value.as_deref()),
                    None => false, // a field this crate does not know never matches
                };
                if !holds {
                    return false;
                }
            }
        }
    }
    resources_match(&type_conditions, &arn_conditions, resources)
}

/// `resources.type` and `resources.ARN` hold when one resource satisfies both:
/// the ARN conditions look only at resources of the selected type, so that
/// "NotStartsWith arn:aws:s3:::logs/" is not met by the event's bucket resource.
fn resources_match(
    type_conditions: &[&AdvancedFieldSelector],
    arn_conditions: &[&AdvancedFieldSelector],
    resources: &[(String, String)],
) -> bool {
    if type_conditions.is_empty() && arn_conditions.is_empty() {
        return true;
    }
    if resources.is_empty() {
        return type_conditions
            .iter()
            .chain(arn_conditions)
            .all(|condition| condition_holds(condition, None));
    }
    resources.iter().any(|(resource_type, arn)| {
        type_conditions
            .iter()
            .all(|condition| condition_holds(condition, Some(resource_type)))
            && arn_conditions
                .iter()
                .all(|condition| condition_holds(condition, Some(arn)))
    })
}

/// The event's value for a single-valued field: `Some(None)` when the event
/// lacks the field, `None` when the field is unknown.
fn scalar_value(field: &str, event: &dyn EventView, kind: EventKind) -> Option<Option<String>> {
    let text = |value: Option<&str>| value.map(str::to_string);
    let flag = |value: Option<bool>| value.map(|b| b.to_string());
    let value = match field {
        "eventCategory" => Some(category_name(event, kind).to_string()),
        "eventSource" => Some(event.event_source().to_string()),
        "eventName" => Some(event.event_name().to_string()),
        "eventType" => Some(event.event_type().to_string()),
        "readOnly" => flag(event.read_only()),
        "userIdentity.arn" => text(event.user_identity_arn()),
        "sessionCredentialFromConsole" => flag(event.session_credential_from_console()),
        "errorCode" => text(event.error_code()),
        "vpcEndpointId" => text(event.vpc_endpoint_id()),
        _ => return None,
    };
    Some(value)
}

/// Records older than eventVersion 1.07 lack `eventCategory`; use the derived kind.
fn category_name(event: &dyn EventView, kind: EventKind) -> &str {
    match kind {
        EventKind::Management => "Management",
        EventKind::Data => "Data",
        EventKind::NetworkActivity => "NetworkActivity",
        EventKind::Insight => "Insight",
        EventKind::Unknown => event.event_category(),
    }
}

/// One field selector against one value: some positive operator value must
/// match (when any positive operator is given) and no negative operator value
/// may match. A missing value meets only purely negative conditions.
pub(crate) fn condition_holds(condition: &AdvancedFieldSelector, value: Option<&str>) -> bool {
    let mut has_positive = false;
    let mut positive_hit = false;
    for (operator, patterns) in condition.operators() {
        let hit = value.is_some_and(|value| any_compares(operator, value, patterns));
        if operator.is_negative() {
            if hit {
                return false;
            }
            continue;
        }
        has_positive = true;
        positive_hit |= hit;
    }
    !has_positive || positive_hit
}

fn any_compares(operator: Operator, value: &str, patterns: &[String]) -> bool {
    patterns
        .iter()
        .any(|pattern| operator.compares(value, pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition() -> AdvancedFieldSelector {
        AdvancedFieldSelector::new("eventName")
    }

    #[test]
    fn positive_values_are_ored() {
        let c = condition().with(Operator::Equals, ["PutObject", "GetObject"]);
        assert!(condition_holds(&c, Some("PutObject")));
        assert!(condition_holds(&c, Some("GetObject")));
        assert!(!condition_holds(&c, Some("DeleteObject")));
    }

    #[test]
    fn positive_operators_are_ored() {
        let c = condition()
            .with(Operator::StartsWith, ["Get"])
            .with(Operator::EndsWith, ["Object"]);
        assert!(condition_holds(&c, Some("GetBucketAcl")));
        assert!(condition_holds(&c, Some("PutObject")));
        assert!(!condition_holds(&c, Some("ListBuckets")));
    }

    #[test]
    fn negative_values_are_anded() {
        let c = condition().with(Operator::NotEquals, ["PutObject", "GetObject"]);
        assert!(!condition_holds(&c, Some("PutObject")));
        assert!(!condition_holds(&c, Some("GetObject")));
        assert!(condition_holds(&c, Some("DeleteObject")));
        let c = condition()
            .with(Operator::NotStartsWith, ["Get"])
            .with(Operator::NotEndsWith, ["Acl"]);
        assert!(!condition_holds(&c, Some("GetObject")));
        assert!(!condition_holds(&c, Some("PutBucketAcl")));
        assert!(condition_holds(&c, Some("PutObject")));
    }

    #[test]
    fn positive_and_negative_are_both_required() {
        let c = condition()
            .with(Operator::StartsWith, ["Get"])
            .with(Operator::NotEquals, ["GetObjectAcl"]);
        assert!(condition_holds(&c, Some("GetObject")));
        assert!(!condition_holds(&c, Some("GetObjectAcl")));
        assert!(!condition_holds(&c, Some("PutObject")));
    }

    #[test]
    fn missing_value_meets_only_negative_conditions() {
        assert!(!condition_holds(
            &condition().with(Operator::Equals, ["x"]),
            None
        ));
        assert!(condition_holds(
            &condition().with(Operator::NotEquals, ["x"]),
            None
        ));
        assert!(!condition_holds(
            &condition()
                .with(Operator::NotEquals, ["x"])
                .with(Operator::StartsWith, ["y"]),
            None
        ));
    }

    #[test]
    fn comparison_is_case_sensitive() {
        let c = condition().with(Operator::Equals, ["PutObject"]);
        assert!(!condition_holds(&c, Some("putobject")));
    }
}
