//! Validation of basic event selectors (`PutEventSelectors` with `EventSelectors`),
//! normalised to the shape AWS echoes back from Put/GetEventSelectors.

use crate::data_resource::BasicDataType;
use crate::{DataResource, EventSelector, ReadWriteType, SelectorError, TrailSelectors};

/// Event selectors per trail (CloudTrail quota; cannot be increased).
pub const MAX_EVENT_SELECTORS: usize = 5;
/// `DataResources.Values` across all event selectors of a trail (CloudTrail quota).
pub const MAX_DATA_RESOURCE_VALUES: usize = 250;
/// The only event sources `ExcludeManagementEventSources` may name.
pub const EXCLUDABLE_MANAGEMENT_EVENT_SOURCES: [&str; 2] =
    ["kms.amazonaws.com", "rdsdata.amazonaws.com"];

/// Validates basic event selectors with AWS's rules and returns them normalised:
/// `ReadWriteType` defaults to `All`, `IncludeManagementEvents` to `true`, and the
/// two lists to empty, as AWS echoes them back.
pub fn validate_event_selectors(
    input: Vec<EventSelector>,
) -> Result<TrailSelectors, SelectorError> {
    if input.is_empty() || input.len() > MAX_EVENT_SELECTORS {
        return Err(SelectorError::new(format!(
            "Specify a valid number of event selectors (1 to {MAX_EVENT_SELECTORS}) for a trail; got {}",
            input.len()
        )));
    }
    let mut value_count = 0usize;
    let mut normalised = Vec::with_capacity(input.len());
    for (index, selector) in input.into_iter().enumerate() {
        let number = index + 1;
        normalised.push(normalise_selector(number, selector, &mut value_count)?);
    }
    if value_count > MAX_DATA_RESOURCE_VALUES {
        return Err(SelectorError::new(format!(
            "Specify a valid number of DataResources.Values (0 to {MAX_DATA_RESOURCE_VALUES}) for all your selectors; the trail has {value_count}"
        )));
    }
    Ok(TrailSelectors::Basic(normalised))
}

fn normalise_selector(
    number: usize,
    selector: EventSelector,
    value_count: &mut usize,
) -> Result<EventSelector, SelectorError> {
    let fail = |detail: String| SelectorError::new(format!("Event selector {number}: {detail}"));

    let excluded = selector
        .exclude_management_event_sources
        .unwrap_or_default();
    if let Some(source) = excluded
        .iter()
        .find(|source| !EXCLUDABLE_MANAGEMENT_EVENT_SOURCES.contains(&source.as_str()))
    {
        return Err(fail(format!(
            "Value {source} for ExcludeManagementEventSources is invalid; only kms.amazonaws.com and rdsdata.amazonaws.com can be excluded"
        )));
    }

    let data_resources = selector.data_resources.unwrap_or_default();
    for resource in &data_resources {
        *value_count += validate_data_resource(resource).map_err(fail)?;
    }

    let include_management_events = selector.include_management_events.unwrap_or(true);
    if !include_management_events && data_resources.is_empty() {
        return Err(fail(
            "Invalid combination of parameters in EventSelectors. When includeManagementEvents is false, DataResources must not be empty."
                .to_string(),
        ));
    }

    Ok(EventSelector {
        read_write_type: Some(selector.read_write_type.unwrap_or(ReadWriteType::All)),
        include_management_events: Some(include_management_events),
        data_resources: Some(data_resources),
        exclude_management_event_sources: Some(excluded),
    })
}

/// Checks one data resource; returns how many values it holds.
fn validate_data_resource(resource: &DataResource) -> Result<usize, String> {
    let Some(type_name) = resource.r#type.as_deref() else {
        return Err(
            "DataResources.Type is required; specify AWS::S3::Object, AWS::Lambda::Function or AWS::DynamoDB::Table"
                .to_string(),
        );
    };
    let Some(data_type) = BasicDataType::parse(type_name) else {
        return Err(format!(
            "Value {type_name} for DataResources.Type is invalid; basic event selectors support AWS::S3::Object, AWS::Lambda::Function and AWS::DynamoDB::Table (use advanced event selectors for other resource types)"
        ));
    };
    let values = resource.values.as_deref().unwrap_or_default();
    if values.is_empty() {
        return Err(format!(
            "DataResources.Values for {type_name} must contain at least one value; use {}",
            data_type.value_forms()
        ));
    }
    if let Some(value) = values
        .iter()
        .find(|value| data_type.classify(value).is_none())
    {
        return Err(format!(
            "Value {value} for DataResources.Values is invalid; for {type_name} use {}",
            data_type.value_forms()
        ));
    }
    Ok(values.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(values: &[&str]) -> DataResource {
        DataResource {
            r#type: Some("AWS::S3::Object".into()),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn with_data(resources: Vec<DataResource>) -> EventSelector {
        EventSelector {
            data_resources: Some(resources),
            ..EventSelector::default()
        }
    }

    fn message(input: Vec<EventSelector>) -> String {
        validate_event_selectors(input).unwrap_err().message
    }

    #[test]
    fn empty_selector_normalises_to_what_aws_echoes() {
        let validated = validate_event_selectors(vec![EventSelector::default()]).unwrap();
        assert_eq!(validated, TrailSelectors::default_for_new_trail());
    }

    #[test]
    fn given_values_are_kept() {
        let input = EventSelector {
            read_write_type: Some(ReadWriteType::ReadOnly),
            include_management_events: Some(false),
            data_resources: Some(vec![s3(&["arn:aws:s3:::bucket/"])]),
            exclude_management_event_sources: Some(vec!["kms.amazonaws.com".into()]),
        };
        let validated = validate_event_selectors(vec![input.clone()]).unwrap();
        assert_eq!(validated, TrailSelectors::Basic(vec![input]));
    }

    #[test]
    fn at_least_one_selector() {
        assert_eq!(
            message(vec![]),
            "Specify a valid number of event selectors (1 to 5) for a trail; got 0"
        );
    }

    #[test]
    fn at_most_five_selectors() {
        assert!(validate_event_selectors(vec![EventSelector::default(); 5]).is_ok());
        assert_eq!(
            message(vec![EventSelector::default(); 6]),
            "Specify a valid number of event selectors (1 to 5) for a trail; got 6"
        );
    }

    #[test]
    fn exclude_management_event_sources_only_kms_and_rdsdata() {
        let ok = EventSelector {
            exclude_management_event_sources: Some(vec![
                "kms.amazonaws.com".into(),
                "rdsdata.amazonaws.com".into(),
            ]),
            ..EventSelector::default()
        };
        assert!(validate_event_selectors(vec![ok]).is_ok());
        let bad = EventSelector {
            exclude_management_event_sources: Some(vec!["s3.amazonaws.com".into()]),
            ..EventSelector::default()
        };
        assert_eq!(
            message(vec![EventSelector::default(), bad]),
            "Event selector 2: Value s3.amazonaws.com for ExcludeManagementEventSources is invalid; only kms.amazonaws.com and rdsdata.amazonaws.com can be excluded"
        );
    }

    #[test]
    fn data_resource_needs_a_type() {
        let untyped = DataResource {
            r#type: None,
            values: Some(vec!["arn:aws:s3".into()]),
        };
        assert_eq!(
            message(vec![with_data(vec![untyped])]),
            "Event selector 1: DataResources.Type is required; specify AWS::S3::Object, AWS::Lambda::Function or AWS::DynamoDB::Table"
        );
    }

    #[test]
    fn data_resource_type_must_be_a_basic_type() {
        let sns = DataResource {
            r#type: Some("AWS::SNS::Topic".into()),
            values: Some(vec!["arn:aws:sns".into()]),
        };
        assert_eq!(
            message(vec![with_data(vec![sns])]),
            "Event selector 1: Value AWS::SNS::Topic for DataResources.Type is invalid; basic event selectors support AWS::S3::Object, AWS::Lambda::Function and AWS::DynamoDB::Table (use advanced event selectors for other resource types)"
        );
    }

    #[test]
    fn all_three_basic_types_are_accepted() {
        let resources = vec![
            s3(&["arn:aws:s3"]),
            DataResource {
                r#type: Some("AWS::Lambda::Function".into()),
                values: Some(vec![
                    "arn:aws:lambda:us-east-1:111122223333:function:helloworld".into(),
                ]),
            },
            DataResource {
                r#type: Some("AWS::DynamoDB::Table".into()),
                values: Some(vec!["arn:aws:dynamodb".into()]),
            },
        ];
        assert!(validate_event_selectors(vec![with_data(resources)]).is_ok());
    }

    #[test]
    fn values_are_required_and_non_empty() {
        let absent = DataResource {
            r#type: Some("AWS::S3::Object".into()),
            values: None,
        };
        assert_eq!(
            message(vec![with_data(vec![absent])]),
            "Event selector 1: DataResources.Values for AWS::S3::Object must contain at least one value; use arn:aws:s3 (all objects), arn:aws:s3:::bucket/ (one bucket) or arn:aws:s3:::bucket/prefix"
        );
        assert!(message(vec![with_data(vec![s3(&[])])]).contains("must contain at least one value"));
    }

    #[test]
    fn values_must_be_valid_for_the_type() {
        assert_eq!(
            message(vec![with_data(vec![s3(&["arn:aws:s3:::*"])])]),
            "Event selector 1: Value arn:aws:s3:::* for DataResources.Values is invalid; for AWS::S3::Object use arn:aws:s3 (all objects), arn:aws:s3:::bucket/ (one bucket) or arn:aws:s3:::bucket/prefix"
        );
        let lambda = DataResource {
            r#type: Some("AWS::Lambda::Function".into()),
            values: Some(vec!["arn:aws:lambda:*".into()]),
        };
        assert!(message(vec![with_data(vec![lambda])]).starts_with(
            "Event selector 1: Value arn:aws:lambda:* for DataResources.Values is invalid"
        ));
        let table = DataResource {
            r#type: Some("AWS::DynamoDB::Table".into()),
            values: Some(vec!["arn:aws:s3".into()]),
        };
        assert!(message(vec![with_data(vec![table])])
            .starts_with("Event selector 1: Value arn:aws:s3 for DataResources.Values is invalid; for AWS::DynamoDB::Table"));
    }

    #[test]
    fn data_resource_values_total_at_most_250_across_the_trail() {
        let values: Vec<String> = (0..125)
            .map(|i| format!("arn:aws:s3:::bucket-{i:03}/"))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let two = vec![with_data(vec![s3(&refs)]), with_data(vec![s3(&refs)])];
        assert!(validate_event_selectors(two.clone()).is_ok());
        let mut three = two;
        three.push(with_data(vec![s3(&["arn:aws:s3:::one-more/"])]));
        assert_eq!(
            message(three),
            "Specify a valid number of DataResources.Values (0 to 250) for all your selectors; the trail has 251"
        );
    }

    #[test]
    fn excluding_management_events_requires_data_resources() {
        let selector = EventSelector {
            include_management_events: Some(false),
            ..EventSelector::default()
        };
        assert_eq!(
            message(vec![selector]),
            "Event selector 1: Invalid combination of parameters in EventSelectors. When includeManagementEvents is false, DataResources must not be empty."
        );
    }

    #[test]
    fn first_invalid_selector_is_named() {
        let good = EventSelector::default();
        let bad = with_data(vec![s3(&["arn:aws:s3:::bucket"])]);
        assert!(message(vec![good.clone(), good, bad]).starts_with("Event selector 3: "));
    }
}
