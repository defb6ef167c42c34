//! CloudTrail event selectors, with no I/O: the basic and advanced selector wire
//! types, their validation with AWS's rules and messages, and matching events.
//!
//! Event data stores' selectors go through [`validate_event_data_store_selectors`].
//! `PutEventSelectors` input goes through [`validate_event_selectors`] or
//! [`validate_advanced_event_selectors`]; the resulting [`TrailSelectors`] is what
//! a trail stores, answers GetEventSelectors with, and asks [`TrailSelectors::matches`]
//! for every event (seen through [`EventView`]).

mod advanced;
mod advanced_match;
mod basic;
mod basic_match;
mod data_resource;
mod error;
mod event;
mod fields;
mod record_view;
mod trail;
mod types;

#[cfg(test)]
mod match_table;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_event;

pub use advanced::{
    validate_advanced_event_selectors, validate_event_data_store_selectors, EventDataStoreKind,
    MAX_ADVANCED_CONDITION_VALUES, MAX_EVENT_DATA_STORE_SELECTORS, MAX_OPERATOR_VALUE_CHARS,
    MAX_SELECTOR_NAME_CHARS,
};
pub use basic::{
    validate_event_selectors, EXCLUDABLE_MANAGEMENT_EVENT_SOURCES, MAX_DATA_RESOURCE_VALUES,
    MAX_EVENT_SELECTORS,
};
pub use error::SelectorError;
pub use event::EventView;
pub use trail::TrailSelectors;
pub use types::{
    AdvancedEventSelector, AdvancedFieldSelector, DataResource, EventSelector, Operator,
    ReadWriteType,
};
