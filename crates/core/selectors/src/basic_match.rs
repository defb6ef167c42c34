//! Whether a trail's basic event selectors select an event: any selector may
//! select it; management events by readOnly and source, data events by resource ARN.

use crate::data_resource::BasicDataType;
use crate::event::{EventKind, EventView};
use crate::{EventSelector, ReadWriteType};

pub(crate) fn basic_selectors_match(selectors: &[EventSelector], event: &dyn EventView) -> bool {
    match EventKind::of(event) {
        EventKind::Management => selectors
            .iter()
            .any(|selector| selects_management_event(selector, event)),
        EventKind::Data => {
            let resources = event.resources();
            selectors
                .iter()
                .any(|selector| selects_data_event(selector, event, &resources))
        }
        // Basic selectors cannot log network activity; Insights events are not selected by selectors.
        EventKind::NetworkActivity | EventKind::Insight | EventKind::Unknown => false,
    }
}

fn read_write_type(selector: &EventSelector) -> ReadWriteType {
    selector.read_write_type.unwrap_or(ReadWriteType::All)
}

fn selects_management_event(selector: &EventSelector, event: &dyn EventView) -> bool {
    let excluded = selector
        .exclude_management_event_sources
        .as_deref()
        .unwrap_or_default();
    selector.include_management_events.unwrap_or(true)
        && read_write_type(selector).admits(event.read_only())
        && !excluded.iter().any(|source| source == event.event_source())
}

fn selects_data_event(
    selector: &EventSelector,
    event: &dyn EventView,
    resources: &[(String, String)],
) -> bool {
    if !read_write_type(selector).admits(event.read_only()) {
        return false;
    }
    let data_resources = selector.data_resources.as_deref().unwrap_or_default();
    data_resources.iter().any(|data_resource| {
        let Some(type_name) = data_resource.r#type.as_deref() else {
            return false;
        };
        let Some(data_type) = BasicDataType::parse(type_name) else {
            return false;
        };
        let values = data_resource.values.as_deref().unwrap_or_default();
        resources
            .iter()
            .filter(|(resource_type, _)| resource_type == type_name)
            .any(|(_, arn)| {
                values.iter().any(|value| {
                    data_type
                        .classify(value)
                        .is_some_and(|selection| selection.selects(arn))
                })
            })
    })
}
