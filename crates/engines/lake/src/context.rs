//! Enriched events: the `eventContext` a store's PutEventConfiguration ContextKeySelectors
//! ask for. OpenTrail fills `requestContext` with the IAM global condition keys it can read
//! off the event record itself, and keeps the selected keys of an `eventContext` the record
//! already carries (tags a producer or an import brought); it looks up no resource tags.

use opentrail_model::EventRecord;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The keys of a store's ContextKeySelectors, by type; both empty: events stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextKeys {
    /// `RequestContext` keys: IAM global condition keys (`aws:SourceIp`, ...).
    pub request: Vec<String>,
    /// `TagContext` keys: resource and principal tag keys.
    pub tags: Vec<String>,
}

impl ContextKeys {
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.tags.is_empty()
    }
}

/// `event` with the `eventContext` `keys` select, or `None` when it stays as it is (no key
/// applies to it and it has no `eventContext` of its own, or it is not a JSON object).
pub(crate) fn enrich(event: &EventRecord, keys: &ContextKeys) -> Option<EventRecord> {
    if keys.is_empty() {
        return None;
    }
    let Ok(Value::Object(mut record)) = serde_json::from_str::<Value>(event.json()) else {
        return None;
    };
    let existing = record.get("eventContext").and_then(Value::as_object);
    let mut context = Map::new();
    let request = request_context(&record, existing, &keys.request);
    if !request.is_empty() {
        context.insert("requestContext".into(), Value::Object(request));
    }
    let tags = tag_context(existing, &keys.tags);
    if !tags.is_empty() {
        context.insert("tagContext".into(), Value::Object(tags));
    }
    if context.is_empty() {
        // What the record brought beyond the selected keys goes too.
        record.remove("eventContext")?;
    } else {
        record.insert("eventContext".into(), Value::Object(context));
    }
    EventRecord::from_json(&Value::Object(record).to_string()).ok()
}

/// The selected condition keys: as the record's own `eventContext.requestContext` has
/// them, else derived from its fields; spelled as the selector spells them.
fn request_context(
    record: &Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    keys: &[String],
) -> Map<String, Value> {
    let given = existing
        .and_then(|context| context.get("requestContext"))
        .and_then(Value::as_object);
    let mut out = Map::new();
    for key in keys {
        let from_record = given.and_then(|given| {
            given
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| value.clone())
        });
        if let Some(value) = from_record.or_else(|| derived_condition_key(record, key)) {
            out.insert(key.clone(), value);
        }
    }
    out
}

fn text_at<'a>(record: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut object = record;
    for name in parents {
        object = object.get(*name)?.as_object()?;
    }
    object.get(*last)?.as_str().filter(|text| !text.is_empty())
}

fn text(value: &str) -> Option<Value> {
    Some(Value::String(value.to_string()))
}

/// The IAM global condition keys an event record answers (keys are case-insensitive).
fn derived_condition_key(record: &Map<String, Value>, key: &str) -> Option<Value> {
    let identity_type = text_at(record, &["userIdentity", "type"]);
    match key.to_ascii_lowercase().as_str() {
        // Calls made by AWS services carry the service's name, not an address.
        "aws:sourceip" => text_at(record, &["sourceIPAddress"])
            .filter(|address| address.parse::<IpAddr>().is_ok())
            .and_then(text),
        "aws:useragent" => text_at(record, &["userAgent"]).and_then(text),
        "aws:requestedregion" => text_at(record, &["awsRegion"]).and_then(text),
        "aws:principalaccount" => text_at(record, &["userIdentity", "accountId"]).and_then(text),
        "aws:principalarn" => match identity_type {
            // A role session's principal ARN is the role's.
            Some("AssumedRole") => text_at(
                record,
                &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
            ),
            _ => text_at(record, &["userIdentity", "arn"]),
        }
        .and_then(text),
        "aws:principaltype" => match identity_type? {
            "Root" => text("Account"),
            "IAMUser" => text("User"),
            "AssumedRole" => text("AssumedRole"),
            "FederatedUser" => text("FederatedUser"),
            _ => None,
        },
        "aws:userid" => text_at(record, &["userIdentity", "principalId"]).and_then(text),
        "aws:username" => match identity_type {
            Some("IAMUser") => text_at(record, &["userIdentity", "userName"]).and_then(text),
            _ => None,
        },
        "aws:multifactorauthpresent" => text_at(
            record,
            &[
                "userIdentity",
                "sessionContext",
                "attributes",
                "mfaAuthenticated",
            ],
        )
        .and_then(text),
        "aws:securetransport" => record
            .get("tlsDetails")
            .filter(|details| details.is_object())
            .map(|_| Value::String("true".into())),
        "aws:viaawsservice" => text(
            if text_at(record, &["userIdentity", "invokedBy"]).is_some() {
                "true"
            } else {
                "false"
            },
        ),
        "aws:sourcevpce" => text_at(record, &["vpcEndpointId"]).and_then(text),
        _ => None,
    }
}

/// The selected tag keys of the record's own `eventContext.tagContext`: each resource's
/// `tags` and `principalTags` cut down to the selected keys; resources left without tags go.
fn tag_context(existing: Option<&Map<String, Value>>, keys: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    if keys.is_empty() {
        return out;
    }
    let Some(given) = existing
        .and_then(|context| context.get("tagContext"))
        .and_then(Value::as_object)
    else {
        return out;
    };
    let select = |tags: &Map<String, Value>| -> Map<String, Value> {
        tags.iter()
            .filter(|(name, _)| keys.iter().any(|key| key == *name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    };
    let resources: Vec<Value> = given
        .get("resourceTags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|resource| {
            let mut resource = resource.as_object()?.clone();
            let tags = select(resource.get("tags")?.as_object()?);
            if tags.is_empty() {
                return None;
            }
            resource.insert("tags".into(), Value::Object(tags));
            Some(Value::Object(resource))
        })
        .collect();
    if !resources.is_empty() {
        out.insert("resourceTags".into(), Value::Array(resources));
    }
    if let Some(principal) = given.get("principalTags").and_then(Value::as_object) {
        let tags = select(principal);
        if !tags.is_empty() {
            out.insert("principalTags".into(), Value::Object(tags));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"eventVersion":"1.11","userIdentity":{"type":"AssumedRole","principalId":"AROA1:bob","arn":"arn:aws:sts::123456789012:assumed-role/Admin/bob","accountId":"123456789012","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123456789012:role/Admin"},"attributes":{"mfaAuthenticated":"true"}}},"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"CreateBucket","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2","eventID":"e1","eventType":"AwsApiCall","recipientAccountId":"123456789012","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.3"},"eventContext":{"tagContext":{"resourceTags":[{"arn":"arn:aws:s3:::b","tags":{"team":"red","cost":"7"}},{"arn":"arn:aws:s3:::c","tags":{"cost":"9"}}],"principalTags":{"team":"blue","level":"3"}}}}"#;

    fn context(keys: &ContextKeys) -> Option<Value> {
        let event = EventRecord::from_json(RECORD).unwrap();
        let enriched = enrich(&event, keys)?;
        let record: Value = serde_json::from_str(enriched.json()).unwrap();
        Some(record["eventContext"].clone())
    }

    #[test]
    fn request_context_comes_from_the_record() {
        let keys = ContextKeys {
            request: [
                "aws:SourceIp",
                "aws:PrincipalArn",
                "aws:principaltype",
                "aws:MultiFactorAuthPresent",
                "aws:SecureTransport",
                "aws:ViaAWSService",
                "aws:SourceVpce",
            ]
            .map(String::from)
            .to_vec(),
            tags: vec![],
        };
        let context = context(&keys).unwrap();
        assert_eq!(
            context,
            serde_json::json!({"requestContext": {
                "aws:SourceIp": "203.0.113.7",
                "aws:PrincipalArn": "arn:aws:iam::123456789012:role/Admin",
                "aws:principaltype": "AssumedRole",
                "aws:MultiFactorAuthPresent": "true",
                "aws:SecureTransport": "true",
                "aws:ViaAWSService": "false",
            }})
        );
    }

    #[test]
    fn tag_context_keeps_only_the_selected_tags() {
        let keys = ContextKeys {
            request: vec![],
            tags: vec!["team".into()],
        };
        assert_eq!(
            context(&keys).unwrap(),
            serde_json::json!({"tagContext": {
                "resourceTags": [{"arn": "arn:aws:s3:::b", "tags": {"team": "red"}}],
                "principalTags": {"team": "blue"},
            }})
        );
    }

    #[test]
    fn no_context_when_nothing_applies() {
        let none = ContextKeys {
            request: vec!["aws:SourceVpc".into()],
            tags: vec!["absent".into()],
        };
        // The record's own eventContext goes with the keys it was not selected for.
        assert_eq!(context(&none), Some(Value::Null));
        assert_eq!(context(&ContextKeys::default()), None);
    }
}
