//! Validation of advanced event selectors against the rules AWS applies to trails
//! (`PutEventSelectors` with `AdvancedEventSelectors`) and to event data stores
//! (`CreateEventDataStore`, `UpdateEventDataStore`).

use std::collections::HashSet;

use crate::fields::{
    field_rule, is_complete_arn, is_resource_type, join_alternatives, join_names, Category, Field,
    Target, ValueRule,
};
use crate::types::Operator;
use crate::{AdvancedEventSelector, AdvancedFieldSelector, SelectorError, TrailSelectors};

/// Values across all conditions of all advanced selectors of a trail (CloudTrail quota).
pub const MAX_ADVANCED_CONDITION_VALUES: usize = 500;
/// Longest `AdvancedEventSelector.Name` (botocore `SelectorName`).
pub const MAX_SELECTOR_NAME_CHARS: usize = 1000;
/// Longest operator value (botocore `OperatorValue`).
pub const MAX_OPERATOR_VALUE_CHARS: usize = 2048;

/// Most advanced event selectors one event data store may have.
pub const MAX_EVENT_DATA_STORE_SELECTORS: usize = 5;

/// Longest user text echoed in a message before it is shortened.
const ECHO_CHARS: usize = 200;

/// Validates advanced event selectors with AWS's rules for trails. They are
/// stored as given: AWS echoes advanced selectors back unchanged.
pub fn validate_advanced_event_selectors(
    input: Vec<AdvancedEventSelector>,
) -> Result<TrailSelectors, SelectorError> {
    if input.is_empty() {
        return Err(SelectorError::new(
            "AdvancedEventSelectors must contain at least one advanced event selector",
        ));
    }
    validate_all(Target::Trail, &input)?;
    Ok(TrailSelectors::Advanced(input))
}

/// The kind of events an event data store holds, as its selectors' `eventCategory`
/// values say: CloudTrail events (management, data and network activity events, mixed
/// freely), or one of the categories that make a store of their own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventDataStoreKind {
    CloudTrailEvents,
    Insight,
    ConfigurationItem,
    Evidence,
    ActivityAuditLog,
}

impl EventDataStoreKind {
    /// Whether live ingestion can be started and stopped (AWS: Management, Data,
    /// NetworkActivity and ConfigurationItem stores).
    pub fn controls_ingestion(self) -> bool {
        matches!(self, Self::CloudTrailEvents | Self::ConfigurationItem)
    }
}

/// Validates an event data store's advanced event selectors with AWS's rules for event
/// data stores; returns the kind of store they make. They are stored as given.
pub fn validate_event_data_store_selectors(
    input: &[AdvancedEventSelector],
) -> Result<EventDataStoreKind, SelectorError> {
    if input.is_empty() {
        return Err(SelectorError::new(
            "AdvancedEventSelectors must contain at least one advanced event selector",
        ));
    }
    if input.len() > MAX_EVENT_DATA_STORE_SELECTORS {
        return Err(SelectorError::new(format!(
            "An event data store can have at most {MAX_EVENT_DATA_STORE_SELECTORS} advanced event selectors; got {}",
            input.len()
        )));
    }
    let categories = validate_all(Target::EventDataStore, input)?;
    let first = categories[0];
    let mixed = categories
        .iter()
        .any(|c| *c != first && !(c.is_cloudtrail_event() && first.is_cloudtrail_event()));
    if mixed {
        return Err(SelectorError::new(format!(
            "Advanced event selectors of an event data store must all select CloudTrail events (Management, Data, NetworkActivity) or all the same other category; got {}",
            join_names(categories.iter().map(|c| c.as_str()))
        )));
    }
    Ok(match first {
        Category::Management | Category::Data | Category::NetworkActivity => {
            EventDataStoreKind::CloudTrailEvents
        }
        Category::Insight => EventDataStoreKind::Insight,
        Category::ConfigurationItem => EventDataStoreKind::ConfigurationItem,
        Category::Evidence => EventDataStoreKind::Evidence,
        Category::ActivityAuditLog => EventDataStoreKind::ActivityAuditLog,
    })
}

/// Checks every selector for `target` and the quota on condition values; returns each
/// selector's category.
fn validate_all(
    target: Target,
    input: &[AdvancedEventSelector],
) -> Result<Vec<Category>, SelectorError> {
    let mut value_count = 0usize;
    let mut categories = Vec::with_capacity(input.len());
    for (index, selector) in input.iter().enumerate() {
        let (category, values) = validate_selector(target, index + 1, selector)?;
        value_count += values;
        categories.push(category);
    }
    if value_count > MAX_ADVANCED_CONDITION_VALUES {
        return Err(SelectorError::new(format!(
            "Advanced event selectors can have at most {MAX_ADVANCED_CONDITION_VALUES} values for all conditions in all selectors of {}; got {value_count}",
            target.noun()
        )));
    }
    Ok(categories)
}

/// Checks one selector; returns its category and how many condition values it holds.
fn validate_selector(
    target: Target,
    number: usize,
    selector: &AdvancedEventSelector,
) -> Result<(Category, usize), SelectorError> {
    let name_chars = selector
        .name
        .as_deref()
        .map_or(0, |name| name.chars().count());
    if name_chars > MAX_SELECTOR_NAME_CHARS {
        return Err(SelectorError::new(format!(
            "Advanced event selector {number}: Name is {name_chars} characters long; names can be at most {MAX_SELECTOR_NAME_CHARS} characters"
        )));
    }
    let label = selector_label(number, selector.name.as_deref());
    let fail =
        |detail: String| SelectorError::new(format!("Advanced event selector {label}: {detail}"));

    if selector.field_selectors.is_empty() {
        return Err(fail(
            "FieldSelectors must contain at least one field selector".to_string(),
        ));
    }

    let mut seen = HashSet::new();
    let mut fields = Vec::with_capacity(selector.field_selectors.len());
    let mut value_count = 0usize;
    for field_selector in &selector.field_selectors {
        let field = check_shape(field_selector).map_err(&fail)?;
        if !seen.insert(field) {
            return Err(fail(format!(
                "field '{}' appears more than once; use each field at most once per selector",
                field.as_str()
            )));
        }
        value_count += field_selector
            .operators()
            .map(|(_, values)| values.len())
            .sum::<usize>();
        fields.push((field, field_selector));
    }

    let category = category_of(target, &fields).map_err(&fail)?;
    for (field, field_selector) in &fields {
        check_field(target, category, *field, field_selector).map_err(&fail)?;
    }
    if let Some(missing) = category
        .required_fields()
        .iter()
        .find(|required| !seen.contains(*required))
    {
        return Err(fail(format!(
            "field '{}' is required for {} events",
            missing.as_str(),
            category.as_str()
        )));
    }
    Ok((category, value_count))
}

/// How messages name a selector: its quoted name, or its 1-based position.
fn selector_label(number: usize, name: Option<&str>) -> String {
    match name {
        Some(name) if !name.is_empty() => format!("'{}'", echo(name)),
        _ => number.to_string(),
    }
}

/// Checks what holds for every field: a known name, at least one operator,
/// non-empty operator lists, values of 1 to 2048 characters.
fn check_shape(field_selector: &AdvancedFieldSelector) -> Result<Field, String> {
    let name = field_selector.field.as_str();
    let Some(field) = Field::parse(name) else {
        return Err(format!(
            "field '{}' is not supported; supported fields are {}",
            echo(name),
            join_names(Field::ALL.map(Field::as_str))
        ));
    };
    if field_selector.operators().next().is_none() {
        return Err(format!(
            "field '{name}' has no operator; specify at least one of {}",
            join_alternatives(Operator::ALL.map(Operator::as_str))
        ));
    }
    for (operator, values) in field_selector.operators() {
        if values.is_empty() {
            return Err(format!(
                "operator {operator} of field '{name}' has no values"
            ));
        }
        for value in values {
            let chars = value.chars().count();
            if !(1..=MAX_OPERATOR_VALUE_CHARS).contains(&chars) {
                return Err(format!(
                    "a value of operator {operator} of field '{name}' is {chars} characters long; values must be 1 to {MAX_OPERATOR_VALUE_CHARS} characters"
                ));
            }
        }
    }
    Ok(field)
}

/// Finds and checks `eventCategory`, which every selector needs.
fn category_of(
    target: Target,
    fields: &[(Field, &AdvancedFieldSelector)],
) -> Result<Category, String> {
    let Some((_, selector)) = fields
        .iter()
        .find(|(field, _)| *field == Field::EventCategory)
    else {
        return Err("field 'eventCategory' is required".to_string());
    };
    check_operators(Field::EventCategory, selector, &[Operator::Equals], None)?;
    let values = selector.values(Operator::Equals).unwrap_or_default();
    let [value] = values else {
        return Err(format!(
            "field 'eventCategory' takes exactly one value; got {}",
            values.len()
        ));
    };
    let accepted = target.categories();
    let valid = join_names(accepted.iter().map(|c| c.as_str()));
    match Category::parse(value) {
        Some(category) if accepted.contains(&category) => return Ok(category),
        Some(_) => {
            return Err(format!(
                "value '{value}' for field 'eventCategory' is valid only for event data stores; trails accept {valid}"
            ))
        }
        None => {}
    }
    Err(format!(
        "value '{}' is not valid for field 'eventCategory'; valid values are {valid}",
        echo(value)
    ))
}

/// Checks a field against its rule for the selector's category.
fn check_field(
    target: Target,
    category: Category,
    field: Field,
    selector: &AdvancedFieldSelector,
) -> Result<(), String> {
    if field == Field::EventCategory {
        return Ok(());
    }
    let Some(rule) = field_rule(target, category, field) else {
        return Err(format!(
            "field '{}' is not supported for {} events on {}; supported fields are {}",
            field.as_str(),
            category.as_str(),
            target.noun(),
            join_names(category.supported_fields(target).iter().map(|f| f.as_str()))
        ));
    };
    let qualifier = category_specific(field).then_some(category);
    check_operators(field, selector, rule.operators, qualifier)?;

    let total: usize = selector.operators().map(|(_, values)| values.len()).sum();
    if rule.single_value && total != 1 {
        return Err(format!(
            "field '{}' takes exactly one value; got {total}; add another selector for each further value",
            field.as_str()
        ));
    }
    for (operator, values) in selector.operators() {
        for value in values {
            check_value(field, rule.values, operator, value)?;
        }
    }
    Ok(())
}

/// Fields whose operator rule differs between categories get the category in messages.
fn category_specific(field: Field) -> bool {
    field == Field::EventSource
}

fn check_operators(
    field: Field,
    selector: &AdvancedFieldSelector,
    allowed: &[Operator],
    category: Option<Category>,
) -> Result<(), String> {
    let Some((operator, _)) = selector
        .operators()
        .find(|(operator, _)| !allowed.contains(operator))
    else {
        return Ok(());
    };
    let noun = if allowed.len() == 1 {
        "operator"
    } else {
        "operators"
    };
    let context = category.map_or(String::new(), |c| format!(" for {} events", c.as_str()));
    Err(format!(
        "field '{}' supports only the {} {noun}{context}; got {operator}",
        field.as_str(),
        join_names(allowed.iter().map(|op| op.as_str()))
    ))
}

fn check_value(
    field: Field,
    rule: ValueRule,
    operator: Operator,
    value: &str,
) -> Result<(), String> {
    let name = field.as_str();
    match rule {
        ValueRule::Any => Ok(()),
        ValueRule::OneOf(valid) if valid.contains(&value) => Ok(()),
        ValueRule::OneOf(valid) => Err(format!(
            "value '{}' is not valid for field '{name}'; valid values are {}",
            echo(value),
            join_names(valid.iter().copied())
        )),
        ValueRule::ResourceType if is_resource_type(value) => Ok(()),
        ValueRule::ResourceType => Err(format!(
            "value '{}' is not valid for field '{name}'; resource types look like AWS::S3::Object",
            echo(value)
        )),
        ValueRule::ArnWhenExact => {
            let exact = matches!(operator, Operator::Equals | Operator::NotEquals);
            if !exact || is_complete_arn(value) {
                return Ok(());
            }
            Err(format!(
                "value '{}' is not valid for field '{name}' with {operator}; Equals and NotEquals need a complete ARN (use StartsWith for a prefix)",
                echo(value)
            ))
        }
    }
}

/// User text as echoed in messages, shortened when very long.
fn echo(text: &str) -> String {
    if text.chars().count() <= ECHO_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(ECHO_CHARS).collect();
    format!("{head}...")
}

#[cfg(test)]
#[path = "advanced_tests.rs"]
mod tests;
