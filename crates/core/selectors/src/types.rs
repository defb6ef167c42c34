//! Wire shapes of the selectors, named exactly as botocore's model names them
//! (EventSelector, DataResource, AdvancedEventSelector, AdvancedFieldSelector).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SelectorError;

/// A basic event selector (botocore shape `EventSelector`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct EventSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_write_type: Option<ReadWriteType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_management_events: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_resources: Option<Vec<DataResource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_management_event_sources: Option<Vec<String>>,
}

/// Which events a basic selector logs by their `readOnly` flag (botocore enum `ReadWriteType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadWriteType {
    ReadOnly,
    WriteOnly,
    All,
}

impl ReadWriteType {
    pub const ALL_VALUES: [ReadWriteType; 3] = [Self::ReadOnly, Self::WriteOnly, Self::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "ReadOnly",
            Self::WriteOnly => "WriteOnly",
            Self::All => "All",
        }
    }

    /// Whether an event with this `readOnly` value is selected.
    /// An event without a `readOnly` flag is selected only by `All`.
    pub fn admits(self, read_only: Option<bool>) -> bool {
        match self {
            Self::All => true,
            Self::ReadOnly => read_only == Some(true),
            Self::WriteOnly => read_only == Some(false),
        }
    }
}

impl fmt::Display for ReadWriteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReadWriteType {
    type Err = SelectorError;

    /// Parses the exact enum spelling; anything else gets the message AWS
    /// documents for InvalidEventSelectorsException (e.g. `read-only`).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL_VALUES
            .into_iter()
            .find(|candidate| candidate.as_str() == value)
            .ok_or_else(|| {
                SelectorError::new(format!(
                    "Value {value} for ReadWriteType is invalid; valid values are ReadOnly, WriteOnly and All"
                ))
            })
    }
}

impl Serialize for ReadWriteType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReadWriteType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// A resource whose data events a basic selector logs (botocore shape `DataResource`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DataResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// An advanced event selector (botocore shape `AdvancedEventSelector`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AdvancedEventSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub field_selectors: Vec<AdvancedFieldSelector>,
}

/// One condition of an advanced event selector (botocore shape `AdvancedFieldSelector`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AdvancedFieldSelector {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ends_with: Option<Vec<String>>,
}

/// The six operators of an advanced field selector, in botocore member order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Equals,
    StartsWith,
    EndsWith,
    NotEquals,
    NotStartsWith,
    NotEndsWith,
}

impl Operator {
    pub const ALL: [Operator; 6] = [
        Self::Equals,
        Self::StartsWith,
        Self::EndsWith,
        Self::NotEquals,
        Self::NotStartsWith,
        Self::NotEndsWith,
    ];

    /// The botocore member name, used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equals => "Equals",
            Self::StartsWith => "StartsWith",
            Self::EndsWith => "EndsWith",
            Self::NotEquals => "NotEquals",
            Self::NotStartsWith => "NotStartsWith",
            Self::NotEndsWith => "NotEndsWith",
        }
    }

    /// Negative operators exclude events; positive ones include them.
    pub fn is_negative(self) -> bool {
        matches!(
            self,
            Self::NotEquals | Self::NotStartsWith | Self::NotEndsWith
        )
    }

    /// Whether `candidate` satisfies `pattern` under this operator's comparison,
    /// ignoring negation (NotEquals compares like Equals).
    pub fn compares(self, candidate: &str, pattern: &str) -> bool {
        match self {
            Self::Equals | Self::NotEquals => candidate == pattern,
            Self::StartsWith | Self::NotStartsWith => candidate.starts_with(pattern),
            Self::EndsWith | Self::NotEndsWith => candidate.ends_with(pattern),
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AdvancedFieldSelector {
    /// A field selector with no operators; chain [`with`](Self::with) to add them.
    pub fn new(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            ..Self::default()
        }
    }

    /// Sets one operator's values (replacing any already set).
    pub fn with<I, S>(mut self, operator: Operator, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        *self.operator_slot(operator) = Some(values.into_iter().map(Into::into).collect());
        self
    }

    /// The values given for `operator`, if that member is present.
    pub fn values(&self, operator: Operator) -> Option<&[String]> {
        match operator {
            Operator::Equals => self.equals.as_deref(),
            Operator::StartsWith => self.starts_with.as_deref(),
            Operator::EndsWith => self.ends_with.as_deref(),
            Operator::NotEquals => self.not_equals.as_deref(),
            Operator::NotStartsWith => self.not_starts_with.as_deref(),
            Operator::NotEndsWith => self.not_ends_with.as_deref(),
        }
    }

    /// Every present operator with its values, in botocore member order.
    pub fn operators(&self) -> impl Iterator<Item = (Operator, &[String])> {
        Operator::ALL
            .into_iter()
            .filter_map(|operator| self.values(operator).map(|values| (operator, values)))
    }

    fn operator_slot(&mut self, operator: Operator) -> &mut Option<Vec<String>> {
        match operator {
            Operator::Equals => &mut self.equals,
            Operator::StartsWith => &mut self.starts_with,
            Operator::EndsWith => &mut self.ends_with,
            Operator::NotEquals => &mut self.not_equals,
            Operator::NotStartsWith => &mut self.not_starts_with,
            Operator::NotEndsWith => &mut self.not_ends_with,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_selector_uses_botocore_member_names_and_skips_absent_members() {
        let selector = EventSelector {
            read_write_type: Some(ReadWriteType::WriteOnly),
            include_management_events: Some(false),
            data_resources: Some(vec![DataResource {
                r#type: Some("AWS::S3::Object".into()),
                values: Some(vec!["arn:aws:s3:::bucket/".into()]),
            }]),
            exclude_management_event_sources: None,
        };
        let value = serde_json::to_value(&selector).unwrap();
        assert_eq!(
            value,
            json!({
                "ReadWriteType": "WriteOnly",
                "IncludeManagementEvents": false,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket/"]}]
            })
        );
        let back: EventSelector = serde_json::from_value(value).unwrap();
        assert_eq!(back, selector);
    }

    #[test]
    fn empty_event_selector_serialises_to_empty_object() {
        assert_eq!(
            serde_json::to_value(EventSelector::default()).unwrap(),
            json!({})
        );
        let parsed: EventSelector = serde_json::from_value(json!({})).unwrap();
        assert_eq!(parsed, EventSelector::default());
    }

    #[test]
    fn read_write_type_round_trips_its_three_spellings() {
        for rw in ReadWriteType::ALL_VALUES {
            let text = serde_json::to_string(&rw).unwrap();
            assert_eq!(text, format!("\"{}\"", rw.as_str()));
            assert_eq!(serde_json::from_str::<ReadWriteType>(&text).unwrap(), rw);
        }
    }

    #[test]
    fn read_write_type_rejects_other_spellings_with_aws_style_message() {
        let err = "read-only".parse::<ReadWriteType>().unwrap_err();
        assert_eq!(
            err.message,
            "Value read-only for ReadWriteType is invalid; valid values are ReadOnly, WriteOnly and All"
        );
        let json_err = serde_json::from_str::<EventSelector>(r#"{"ReadWriteType":"readonly"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            json_err.contains("Value readonly for ReadWriteType is invalid"),
            "{json_err}"
        );
    }

    #[test]
    fn advanced_field_selector_uses_botocore_member_names() {
        let selector = AdvancedEventSelector {
            name: Some("Log S3".into()),
            field_selectors: vec![
                AdvancedFieldSelector::new("eventCategory").with(Operator::Equals, ["Data"]),
                AdvancedFieldSelector::new("resources.ARN")
                    .with(Operator::StartsWith, ["arn:aws:s3:::a/"])
                    .with(Operator::NotEndsWith, [".tmp"]),
            ],
        };
        let value = serde_json::to_value(&selector).unwrap();
        assert_eq!(
            value,
            json!({
                "Name": "Log S3",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Data"]},
                    {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::a/"], "NotEndsWith": [".tmp"]}
                ]
            })
        );
        let back: AdvancedEventSelector = serde_json::from_value(value).unwrap();
        assert_eq!(back, selector);
    }

    #[test]
    fn all_six_operator_members_deserialise() {
        let parsed: AdvancedFieldSelector = serde_json::from_value(json!({
            "Field": "eventName",
            "Equals": ["a"], "StartsWith": ["b"], "EndsWith": ["c"],
            "NotEquals": ["d"], "NotStartsWith": ["e"], "NotEndsWith": ["f"]
        }))
        .unwrap();
        let seen: Vec<(Operator, Vec<String>)> = parsed
            .operators()
            .map(|(op, values)| (op, values.to_vec()))
            .collect();
        let expected: Vec<(Operator, Vec<String>)> = Operator::ALL
            .into_iter()
            .zip(["a", "b", "c", "d", "e", "f"])
            .map(|(op, v)| (op, vec![v.to_string()]))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn operator_comparisons() {
        assert!(Operator::Equals.compares("abc", "abc"));
        assert!(!Operator::Equals.compares("abcd", "abc"));
        assert!(Operator::StartsWith.compares("abcd", "ab"));
        assert!(Operator::EndsWith.compares("abcd", "cd"));
        assert!(Operator::NotEquals.compares("abc", "abc"));
        assert!(Operator::NotEquals.is_negative());
        assert!(!Operator::StartsWith.is_negative());
    }
}
