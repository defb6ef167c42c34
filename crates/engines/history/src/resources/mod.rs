//! The `Resources` event history shows for a record — resource type and name or ID — and
//! the `ResourceName` values a lookup finds it under.
//!
//! Resources come from two places, in this order: the request parameters and response
//! elements the table in `table.rs` names for the record's `eventSource` (a value as the
//! record writes it: a name, an ID, or an ARN where the API takes one), then the record's
//! own `resources[]` (`type`, `ARN`), unless a resource from the table already names the
//! same thing, in which case the ARN is kept as one more lookup value of that resource.

mod arn;
mod json;
mod table;

use json::Json;
use opentrail_model::EventRecord;
use std::borrow::Cow;
use table::{Section, TypeOf};

/// At most this many resources are taken from request parameters and response elements
/// per event (a Describe call can name thousands of IDs); `resources[]` is always taken
/// whole.
pub const MAX_DERIVED_RESOURCES: usize = 64;

/// One element of the Event shape's `Resources`, and the values a `ResourceName` lookup
/// finds it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSummary<'a> {
    pub resource_type: Option<&'a str>,
    /// What event history shows: the name or ID as the record writes it (an ARN when the
    /// record names the resource only by its ARN).
    pub resource_name: Option<Cow<'a, str>>,
    /// Other forms the resource is found under by `ResourceName` and not shown: the name
    /// or ID inside a shown ARN, and the ARN `resources[]` gives for a shown name.
    pub aliases: Vec<Cow<'a, str>>,
}

impl ResourceSummary<'_> {
    /// The shown name and the aliases.
    pub fn lookup_names(&self) -> impl Iterator<Item = &str> {
        self.resource_name
            .as_deref()
            .into_iter()
            .chain(self.aliases.iter().map(Cow::as_ref))
    }

    fn is_named(&self, value: &str) -> bool {
        self.lookup_names().any(|name| name == value)
    }
}

/// The resources of `record`, in the order event history lists them.
pub(crate) fn resources_of(record: &EventRecord) -> Vec<ResourceSummary<'_>> {
    let mut resources = Vec::new();
    if let Some(rules) = table::rules_for(record.event_source()) {
        derive_from_parameters(record, rules, &mut resources);
    }
    for recorded in record.resources() {
        let recorded_type = recorded.resource_type.filter(|value| !value.is_empty());
        let Some(arn) = recorded
            .arn
            .or(recorded.arn_prefix)
            .filter(|value| !value.is_empty())
        else {
            if recorded_type.is_some() {
                resources.push(ResourceSummary {
                    resource_type: recorded_type,
                    resource_name: None,
                    aliases: Vec::new(),
                });
            }
            continue;
        };
        add_recorded(
            &mut resources,
            recorded_type.or_else(|| arn::resource_type(arn)),
            arn,
        );
    }
    resources
}

/// A `resources[]` entry: merged into a resource the table already found under the same
/// type and name (or ARN), else listed with its ARN.
fn add_recorded<'a>(
    resources: &mut Vec<ResourceSummary<'a>>,
    resource_type: Option<&'a str>,
    arn: &'a str,
) {
    let name = arn::name(arn);
    let same = resources.iter_mut().find(|resource| {
        resource_type.is_none_or(|wanted| resource.resource_type == Some(wanted))
            && (resource.is_named(arn) || name.is_some_and(|name| resource.is_named(name)))
    });
    if let Some(resource) = same {
        if !resource.is_named(arn) {
            resource.aliases.push(Cow::Borrowed(arn));
        }
        return;
    }
    resources.push(ResourceSummary {
        resource_type,
        resource_name: Some(Cow::Borrowed(arn)),
        aliases: name
            .filter(|&name| name != arn)
            .map(Cow::Borrowed)
            .into_iter()
            .collect(),
    });
}

/// A resource named by a request parameter or response element (each distinct type and
/// value once).
fn add_derived(resources: &mut Vec<ResourceSummary<'_>>, resource_type: &'static str, value: &str) {
    let known = resources.iter().any(|resource| {
        resource.resource_type == Some(resource_type)
            && resource.resource_name.as_deref() == Some(value)
    });
    if known {
        return;
    }
    resources.push(ResourceSummary {
        resource_type: Some(resource_type),
        resource_name: Some(Cow::Owned(value.to_owned())),
        aliases: arn::name(value)
            .filter(|&name| name != value)
            .map(|name| Cow::Owned(name.to_owned()))
            .into_iter()
            .collect(),
    });
}

fn derive_from_parameters(
    record: &EventRecord,
    rules: &[table::Rule],
    resources: &mut Vec<ResourceSummary<'_>>,
) {
    let event_name = record.event_name();
    let mut request = LazyJson::new(record.request_parameters_json());
    let mut response = LazyJson::new(record.response_elements_json());
    let mut derived = 0;
    for rule in rules.iter().filter(|rule| rule.applies_to(event_name)) {
        let root = match rule.section {
            Section::Request => request.get(),
            Section::Response => response.get(),
        };
        let Some(root) = root else {
            continue;
        };
        let mut found = Vec::new();
        strings_at(root, rule.path, &mut found);
        for value in found {
            if derived == MAX_DERIVED_RESOURCES {
                return;
            }
            let Some(resource_type) = resource_type_of(rule.resource_type, value) else {
                continue;
            };
            let before = resources.len();
            add_derived(resources, resource_type, value);
            derived += resources.len() - before;
        }
    }
}

fn resource_type_of(type_of: TypeOf, value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    type_of.of(value)
}

/// `requestParameters` or `responseElements`, parsed the first time a rule needs it.
struct LazyJson<'a> {
    text: Option<&'a str>,
    parsed: Option<Option<Json<'a>>>,
}

impl<'a> LazyJson<'a> {
    fn new(text: Option<&'a str>) -> Self {
        Self { text, parsed: None }
    }

    fn get(&mut self) -> Option<&Json<'a>> {
        let text = self.text;
        self.parsed
            .get_or_insert_with(|| text.and_then(Json::parse))
            .as_ref()
    }
}

/// The strings at `path` (dotted member names) under `value`, walking arrays met on the
/// way; `{"tag": .., "content": "<id>"}` stands for its `content`.
fn strings_at<'v>(value: &'v Json<'_>, path: &str, out: &mut Vec<&'v str>) {
    match value {
        Json::Array(items) => {
            for item in items {
                strings_at(item, path, out);
            }
        }
        Json::Str(text) if path.is_empty() => out.push(text),
        Json::Object(_) => {
            if path.is_empty() {
                if let Some(Json::Str(content)) = value.member("content") {
                    out.push(content);
                }
                return;
            }
            let (head, rest) = path.split_once('.').unwrap_or((path, ""));
            if let Some(member) = value.member(head) {
                strings_at(member, rest, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> EventRecord {
        EventRecord::from_json(json).expect("test record parses")
    }

    /// (type, shown name) of each resource, `-` for none.
    fn shown(record: &EventRecord) -> Vec<(String, String)> {
        resources_of(record)
            .iter()
            .map(|resource| {
                (
                    resource.resource_type.unwrap_or("-").to_owned(),
                    resource.resource_name.as_deref().unwrap_or("-").to_owned(),
                )
            })
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|&(resource_type, name)| (resource_type.to_owned(), name.to_owned()))
            .collect()
    }

    #[test]
    fn paths_walk_arrays_and_content_objects() {
        let text = serde_json::json!({
            "instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}, {"other": 1}]},
            "Req": {"NatGatewayId": [{"tag": "1", "content": "nat-1"}, {"tag": "2", "content": "nat-2"}]},
            "names": ["a", "b", 3],
        })
        .to_string();
        let value = Json::parse(&text).unwrap();
        let mut out = Vec::new();
        strings_at(&value, "instancesSet.items.instanceId", &mut out);
        strings_at(&value, "Req.NatGatewayId", &mut out);
        strings_at(&value, "names", &mut out);
        strings_at(&value, "missing.path", &mut out);
        assert_eq!(out, vec!["i-1", "i-2", "nat-1", "nat-2", "a", "b"]);
    }

    #[test]
    fn a_bucket_name_is_shown_and_its_arn_kept_for_lookups() {
        let event = record(
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetBucketAcl",
               "requestParameters":{"bucketName":"logs","Host":"logs.s3.amazonaws.com","acl":""},
               "resources":[{"accountId":"1","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::logs"}]}"#,
        );
        let resources = resources_of(&event);
        assert_eq!(resources.len(), 1);
        assert_eq!(resources[0].resource_type, Some("AWS::S3::Bucket"));
        assert_eq!(resources[0].resource_name.as_deref(), Some("logs"));
        assert_eq!(
            resources[0].lookup_names().collect::<Vec<_>>(),
            vec!["logs", "arn:aws:s3:::logs"]
        );
    }

    #[test]
    fn assume_role_lists_what_event_history_lists() {
        let event = record(
            r#"{"eventSource":"sts.amazonaws.com","eventName":"AssumeRole",
               "requestParameters":{"roleArn":"arn:aws:iam::1:role/Deployer","roleSessionName":"build-42"},
               "responseElements":{"credentials":{"accessKeyId":"ASIATEMP","sessionToken":"x"},
                 "assumedRoleUser":{"assumedRoleId":"AROAX:build-42","arn":"arn:aws:sts::1:assumed-role/Deployer/build-42"}},
               "resources":[{"accountId":"1","type":"AWS::IAM::Role","ARN":"arn:aws:iam::1:role/Deployer"}]}"#,
        );
        assert_eq!(
            shown(&event),
            pairs(&[
                ("AWS::IAM::AccessKey", "ASIATEMP"),
                (
                    "AWS::STS::AssumedRole",
                    "arn:aws:sts::1:assumed-role/Deployer/build-42"
                ),
                ("AWS::STS::AssumedRole", "AROAX:build-42"),
                ("AWS::STS::AssumedRole", "build-42"),
                ("AWS::IAM::Role", "arn:aws:iam::1:role/Deployer"),
            ])
        );
        let role = &resources_of(&event)[4];
        assert_eq!(
            role.lookup_names().collect::<Vec<_>>(),
            vec!["arn:aws:iam::1:role/Deployer", "Deployer"]
        );
    }

    #[test]
    fn typeless_recorded_arns_are_typed_and_merged() {
        let event = record(
            r#"{"eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceAssociationStatus",
               "requestParameters":{"associationId":"56fc","instanceId":"i-0dbc"},
               "resources":[{"accountId":"1","ARN":"arn:aws:ssm:us-east-1:1:association/56fc"},
                            {"accountId":"1","ARN":"arn:aws:ec2:us-east-1:1:instance/i-0dbc"},
                            {"accountId":"1","ARN":"arn:aws:foo:us-east-1:1:thing/t"},
                            {"type":"AWS::Only::Type"}]}"#,
        );
        assert_eq!(
            shown(&event),
            pairs(&[
                ("AWS::SSM::Association", "56fc"),
                ("AWS::EC2::Instance", "i-0dbc"),
                ("-", "arn:aws:foo:us-east-1:1:thing/t"),
                ("AWS::Only::Type", "-"),
            ])
        );
    }

    #[test]
    fn derived_resources_are_capped() {
        let ids: Vec<String> = (0..200).map(|n| format!("i-{n}")).collect();
        let items: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| serde_json::json!({"instanceId": id}))
            .collect();
        let json = serde_json::json!({
            "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
            "requestParameters": {"instancesSet": {"items": items}},
        });
        let event = record(&json.to_string());
        assert_eq!(resources_of(&event).len(), MAX_DERIVED_RESOURCES);
    }

    #[test]
    fn unknown_sources_and_error_events_use_what_is_recorded() {
        let event = record(
            r#"{"eventSource":"example.amazonaws.com","eventName":"Do",
               "requestParameters":{"bucketName":"b"},
               "resources":[{"type":"AWS::X::Y","ARN":"arn:aws:x:r:1:y/z"}]}"#,
        );
        assert_eq!(shown(&event), pairs(&[("AWS::X::Y", "arn:aws:x:r:1:y/z")]));
        let names: Vec<String> = resources_of(&event)[0]
            .lookup_names()
            .map(str::to_owned)
            .collect();
        assert_eq!(names, vec!["arn:aws:x:r:1:y/z", "z"]);
        let no_parameters = record(
            r#"{"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","requestParameters":null}"#,
        );
        assert!(resources_of(&no_parameters).is_empty());
    }
}
