//! Input validation driven by botocore's service model, so that every operation rejects
//! wrong JSON types (`SerializationException`) and missing required members
//! (`ValidationException`) the way AWS does, before typed deserialisation.
//! Value constraints with operation-specific errors (name rules, limits) are the services' job.

use crate::ApiError;
use opentrail_operations::Operation;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// botocore's `cloudtrail/2013-11-01/service-2.json`, the wire contract.
pub const CLOUDTRAIL_MODEL_JSON: &str =
    include_str!("../../../../models/cloudtrail-2013-11-01.json");

#[derive(Debug, Deserialize)]
struct RawModel {
    operations: HashMap<String, RawOperation>,
    shapes: HashMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
struct RawOperation {
    input: Option<ShapeRef>,
}

#[derive(Debug, Deserialize)]
struct ShapeRef {
    shape: String,
}

#[derive(Debug, Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    members: HashMap<String, ShapeRef>,
    member: Option<ShapeRef>,
    value: Option<ShapeRef>,
}

pub struct ServiceModel {
    operations: HashMap<String, Option<String>>,
    shapes: HashMap<String, Shape>,
}

struct Path(Vec<String>);

impl Path {
    fn describe(&self) -> String {
        self.0.join(".")
    }
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "structure",
    }
}

impl ServiceModel {
    pub fn parse(model_json: &str) -> Result<Self, String> {
        let raw: RawModel = serde_json::from_str(model_json).map_err(|e| e.to_string())?;
        Ok(Self {
            operations: raw
                .operations
                .into_iter()
                .map(|(name, op)| (name, op.input.map(|i| i.shape)))
                .collect(),
            shapes: raw.shapes,
        })
    }

    pub fn cloudtrail() -> Self {
        Self::parse(CLOUDTRAIL_MODEL_JSON)
            .unwrap_or_else(|e| unreachable!("the embedded botocore model must parse: {e}"))
    }

    /// Parses a request body (empty means `{}`) and checks it against the operation's input shape.
    pub fn parse_input(&self, operation: Operation, body: &[u8]) -> Result<Value, ApiError> {
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ApiError::serialization(format!("request body is not valid JSON: {e}"))
            })?
        };
        if !value.is_object() {
            return Err(ApiError::serialization(format!(
                "request body must be a JSON object, found {}",
                json_kind(&value)
            )));
        }
        let Some(input_shape) = self.operations.get(operation.name()) else {
            return Err(ApiError::new(
                "UnknownOperationException",
                format!("unknown operation {operation}"),
            ));
        };
        if let Some(shape) = input_shape {
            self.check(shape, &value, &mut Path(Vec::new()))?;
        }
        Ok(value)
    }

    fn check(&self, shape_name: &str, value: &Value, path: &mut Path) -> Result<(), ApiError> {
        let Some(shape) = self.shapes.get(shape_name) else {
            return Ok(());
        };
        let type_error = |expected: &str| {
            ApiError::serialization(format!(
                "expected {expected} at '{}' but found {}",
                path.describe(),
                json_kind(value)
            ))
        };
        match shape.kind.as_str() {
            "structure" => {
                let Value::Object(fields) = value else {
                    return Err(type_error("structure"));
                };
                for required in &shape.required {
                    if fields.get(required).is_none_or(Value::is_null) {
                        path.0.push(lower_camel(required));
                        let err = ApiError::validation(format!(
                            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                            path.describe()
                        ));
                        return Err(err);
                    }
                }
                for (name, member) in &shape.members {
                    let Some(field) = fields.get(name).filter(|v| !v.is_null()) else {
                        continue;
                    };
                    path.0.push(lower_camel(name));
                    self.check(&member.shape, field, path)?;
                    path.0.pop();
                }
                Ok(())
            }
            "list" => {
                let Value::Array(items) = value else {
                    return Err(type_error("list"));
                };
                let Some(member) = &shape.member else {
                    return Ok(());
                };
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        continue;
                    }
                    path.0.push(format!("{}.member", i + 1));
                    self.check(&member.shape, item, path)?;
                    path.0.pop();
                }
                Ok(())
            }
            "map" => {
                let Value::Object(entries) = value else {
                    return Err(type_error("map"));
                };
                let Some(value_shape) = &shape.value else {
                    return Ok(());
                };
                for (key, item) in entries {
                    if item.is_null() {
                        continue;
                    }
                    path.0.push(key.clone());
                    self.check(&value_shape.shape, item, path)?;
                    path.0.pop();
                }
                Ok(())
            }
            "string" | "blob" => value
                .is_string()
                .then_some(())
                .ok_or_else(|| type_error("string")),
            "boolean" => value
                .is_boolean()
                .then_some(())
                .ok_or_else(|| type_error("boolean")),
            "integer" | "long" => (value.is_i64() || value.is_u64())
                .then_some(())
                .ok_or_else(|| type_error("integer")),
            "double" | "float" => value
                .is_number()
                .then_some(())
                .ok_or_else(|| type_error("number")),
            "timestamp" => (value.is_number() || value.is_string())
                .then_some(())
                .ok_or_else(|| type_error("timestamp")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ServiceModel {
        ServiceModel::cloudtrail()
    }

    #[test]
    fn accepts_well_typed_input() {
        let v = model()
            .parse_input(Operation::CreateTrail, br#"{"Name":"abc","S3BucketName":"b","IsMultiRegionTrail":true,"TagsList":[{"Key":"k","Value":"v"}]}"#)
            .unwrap();
        assert_eq!(v["Name"], "abc");
        assert!(model().parse_input(Operation::DescribeTrails, b"").is_ok());
    }

    #[test]
    fn wrong_type_is_a_serialization_error() {
        let e = model()
            .parse_input(
                Operation::CreateTrail,
                br#"{"Name":"abc","S3BucketName":"b","IsMultiRegionTrail":"yes"}"#,
            )
            .unwrap_err();
        assert_eq!(e.code, "SerializationException");
        assert!(e.message.contains("isMultiRegionTrail"), "{}", e.message);
        let e = model()
            .parse_input(
                Operation::AddTags,
                br#"{"ResourceId":"x","TagsList":[{"Key":5}]}"#,
            )
            .unwrap_err();
        assert_eq!(e.code, "SerializationException");
        assert!(e.message.contains("tagsList.1.member.key"), "{}", e.message);
    }

    #[test]
    fn missing_required_member_is_a_validation_error() {
        let e = model()
            .parse_input(Operation::CreateTrail, br#"{"Name":"abc"}"#)
            .unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("'s3BucketName'"), "{}", e.message);
        let e = model()
            .parse_input(
                Operation::AddTags,
                br#"{"ResourceId":"x","TagsList":[{"Value":"v"}]}"#,
            )
            .unwrap_err();
        assert!(e.message.contains("tagsList.1.member.key"), "{}", e.message);
    }

    #[test]
    fn malformed_json_and_unknown_operation() {
        assert_eq!(
            model()
                .parse_input(Operation::CreateTrail, b"{")
                .unwrap_err()
                .code,
            "SerializationException"
        );
        assert_eq!(
            model()
                .parse_input(Operation::CreateTrail, b"[]")
                .unwrap_err()
                .code,
            "SerializationException"
        );
        assert_eq!(
            model()
                .parse_input(Operation::PutAuditEvents, b"{}")
                .unwrap_err()
                .code,
            "UnknownOperationException"
        );
    }
}
