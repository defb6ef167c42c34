//! What a trail stores: either basic or advanced selectors, never both
//! (putting one kind replaces the other), and whether they select an event.

use serde::{Deserialize, Serialize};

use crate::advanced_match::advanced_selectors_match;
use crate::basic_match::basic_selectors_match;
use crate::event::EventView;
use crate::{AdvancedEventSelector, EventSelector, ReadWriteType};

/// A trail's selectors: exactly one kind at a time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TrailSelectors {
    Basic(Vec<EventSelector>),
    Advanced(Vec<AdvancedEventSelector>),
}

impl TrailSelectors {
    /// What GetEventSelectors returns for a trail nobody has put selectors on:
    /// all read and write management events, no data events.
    pub fn default_for_new_trail() -> Self {
        Self::Basic(vec![EventSelector {
            read_write_type: Some(ReadWriteType::All),
            include_management_events: Some(true),
            data_resources: Some(Vec::new()),
            exclude_management_event_sources: Some(Vec::new()),
        }])
    }

    /// `Trail.HasCustomEventSelectors`: true when the trail selects anything
    /// other than the default (any advanced selectors count as custom).
    pub fn has_custom_event_selectors(&self) -> bool {
        *self != Self::default_for_new_trail()
    }

    /// Whether the trail logs `event`: some selector selects it.
    /// Insights events are never selected (Insights selectors govern them).
    pub fn matches(&self, event: &dyn EventView) -> bool {
        match self {
            Self::Basic(selectors) => basic_selectors_match(selectors, event),
            Self::Advanced(selectors) => advanced_selectors_match(selectors, event),
        }
    }

    /// Whether the selectors log management events: write ones when `write`, else any
    /// (read or write). Insights requires this of a trail it analyses (AWS: ApiCallRate
    /// needs write management events, ApiErrorRate read or write ones).
    pub fn logs_management_events(&self, write: bool) -> bool {
        match self {
            Self::Basic(selectors) => selectors.iter().any(|selector| {
                selector.include_management_events != Some(false)
                    && match selector.read_write_type.unwrap_or(ReadWriteType::All) {
                        ReadWriteType::All | ReadWriteType::WriteOnly => true,
                        ReadWriteType::ReadOnly => !write,
                    }
            }),
            Self::Advanced(selectors) => selectors.iter().any(|selector| {
                category_is(selector, "Management")
                    && (!write
                        || !selector.field_selectors.iter().any(|field| {
                            field.field == "readOnly"
                                && field
                                    .values(crate::Operator::Equals)
                                    .is_some_and(|values| values.iter().all(|v| v == "true"))
                        }))
            }),
        }
    }

    /// Whether the selectors log some data events (Insights on data events requires it).
    pub fn logs_data_events(&self) -> bool {
        match self {
            Self::Basic(selectors) => selectors.iter().any(|selector| {
                selector
                    .data_resources
                    .as_ref()
                    .is_some_and(|resources| !resources.is_empty())
            }),
            Self::Advanced(selectors) => selectors
                .iter()
                .any(|selector| category_is(selector, "Data")),
        }
    }

    /// The `EventSelectors` member of a GetEventSelectors response, if basic.
    pub fn event_selectors(&self) -> Option<&[EventSelector]> {
        match self {
            Self::Basic(selectors) => Some(selectors),
            Self::Advanced(_) => None,
        }
    }

    /// The `AdvancedEventSelectors` member of a GetEventSelectors response, if advanced.
    pub fn advanced_event_selectors(&self) -> Option<&[AdvancedEventSelector]> {
        match self {
            Self::Basic(_) => None,
            Self::Advanced(selectors) => Some(selectors),
        }
    }
}

impl Default for TrailSelectors {
    fn default() -> Self {
        Self::default_for_new_trail()
    }
}

/// Whether an advanced selector's `eventCategory` condition selects `category`.
fn category_is(selector: &AdvancedEventSelector, category: &str) -> bool {
    selector.field_selectors.iter().any(|field| {
        field.field == "eventCategory"
            && field
                .values(crate::Operator::Equals)
                .is_some_and(|values| values.iter().any(|value| value == category))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        validate_advanced_event_selectors, validate_event_selectors, AdvancedFieldSelector,
        Operator,
    };
    use serde_json::json;

    #[test]
    fn default_serialises_as_aws_returns_it_for_a_new_trail() {
        let TrailSelectors::Basic(selectors) = TrailSelectors::default_for_new_trail() else {
            panic!("default is basic");
        };
        assert_eq!(
            serde_json::to_value(selectors).unwrap(),
            json!([{
                "ReadWriteType": "All",
                "IncludeManagementEvents": true,
                "DataResources": [],
                "ExcludeManagementEventSources": []
            }])
        );
    }

    #[test]
    fn default_has_no_custom_event_selectors() {
        assert!(!TrailSelectors::default_for_new_trail().has_custom_event_selectors());
        assert!(!TrailSelectors::default().has_custom_event_selectors());
        let echoed_default = validate_event_selectors(vec![EventSelector::default()]).unwrap();
        assert!(!echoed_default.has_custom_event_selectors());
    }

    #[test]
    fn anything_else_is_custom() {
        let write_only = validate_event_selectors(vec![EventSelector {
            read_write_type: Some(ReadWriteType::WriteOnly),
            ..EventSelector::default()
        }])
        .unwrap();
        assert!(write_only.has_custom_event_selectors());
        let two_defaults =
            validate_event_selectors(vec![EventSelector::default(), EventSelector::default()])
                .unwrap();
        assert!(two_defaults.has_custom_event_selectors());
        let management_only = validate_advanced_event_selectors(vec![AdvancedEventSelector {
            name: None,
            field_selectors: vec![
                AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, ["Management"])
            ],
        }])
        .unwrap();
        assert!(management_only.has_custom_event_selectors());
    }

    #[test]
    fn exactly_one_kind_is_exposed() {
        let basic = TrailSelectors::default_for_new_trail();
        assert!(basic.event_selectors().is_some());
        assert!(basic.advanced_event_selectors().is_none());
        let advanced = TrailSelectors::Advanced(Vec::new());
        assert!(advanced.event_selectors().is_none());
        assert_eq!(advanced.advanced_event_selectors(), Some(&[][..]));
    }

    #[test]
    fn storage_form_round_trips() {
        let stored = serde_json::to_string(&TrailSelectors::default_for_new_trail()).unwrap();
        assert_eq!(
            serde_json::from_str::<TrailSelectors>(&stored).unwrap(),
            TrailSelectors::default_for_new_trail()
        );
    }

    #[test]
    fn which_categories_the_selectors_log() {
        let default = TrailSelectors::default_for_new_trail();
        assert!(default.logs_management_events(true));
        assert!(!default.logs_data_events());
        let read_only = TrailSelectors::Basic(vec![EventSelector {
            read_write_type: Some(ReadWriteType::ReadOnly),
            include_management_events: Some(true),
            data_resources: None,
            exclude_management_event_sources: None,
        }]);
        assert!(!read_only.logs_management_events(true));
        assert!(read_only.logs_management_events(false));
        let data = TrailSelectors::Advanced(vec![AdvancedEventSelector {
            name: None,
            field_selectors: vec![
                crate::AdvancedFieldSelector::new("eventCategory")
                    .with(crate::Operator::Equals, ["Data"]),
                crate::AdvancedFieldSelector::new("resources.type")
                    .with(crate::Operator::Equals, ["AWS::S3::Object"]),
            ],
        }]);
        assert!(data.logs_data_events());
        assert!(!data.logs_management_events(false));
    }
}
