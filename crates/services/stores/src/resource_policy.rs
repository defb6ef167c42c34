//! Resource-based policies on event data stores, channels and dashboards
//! (PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy): validated as AWS documents
//! them, stored in the metadata store beside their resource and removed with it. They are
//! not evaluated yet: OpenTrail has no access control beyond an account's own keys.
//! Dashboards live in a crate above this one; a [`DashboardLookup`] the server wires in
//! tells whether one exists.

use crate::{Direct, StoreError, StoreService};
use chrono::{DateTime, Utc};
use opentrail_meta::Documents;
use opentrail_model::RequestContext;
use opentrail_operations::{
    DeleteResourcePolicyRequest, DeleteResourcePolicyResponse, GetResourcePolicyRequest,
    GetResourcePolicyResponse, PutResourcePolicyRequest, PutResourcePolicyResponse, ResourceType,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Resource policies, keyed by their resource's ARN.
pub(crate) const RESOURCE_POLICIES: &str = "resource_policies";

/// The model's limit on a policy's length.
const MAX_POLICY_CHARS: usize = 8192;
/// AWS's limits for channel policies (OpenTrail applies them to every resource).
const MAX_STATEMENTS: usize = 20;
const MAX_PRINCIPALS: usize = 50;

/// The actions a channel's policy may grant: producers send events.
const CHANNEL_ACTIONS: &[&str] = &["cloudtrail-data:PutAuditEvents"];
/// The actions an event data store's policy may grant: reading it with Lake queries.
const EVENT_DATA_STORE_ACTIONS: &[&str] = &[
    "cloudtrail:StartQuery",
    "cloudtrail:GetQueryResults",
    "cloudtrail:DescribeQuery",
    "cloudtrail:CancelQuery",
    "cloudtrail:ListQueries",
    "cloudtrail:GenerateQuery",
    "cloudtrail:GenerateQueryResultsSummary",
    "cloudtrail:GetEventDataStore",
];

/// The actions a dashboard's policy may grant: CloudTrail refreshing it on its schedule
/// (AWS: "CloudTrail must be granted permissions to run the StartDashboardRefresh operation
/// to refresh the dashboard on your behalf").
const DASHBOARD_ACTIONS: &[&str] = &["cloudtrail:StartDashboardRefresh"];

/// Finds dashboards for policies on dashboard ARNs (the dashboards service implements it).
pub trait DashboardLookup: Send + Sync {
    /// The ARN of the caller's dashboard that `arn` (a `dashboard/<name>` ARN of the
    /// caller's account and region) names, read through `docs` (the policy request's own
    /// transaction), or `None` when there is no such dashboard.
    fn find_dashboard(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        arn: &str,
    ) -> opentrail_meta::Result<Option<String>>;
}

/// Removes the resource policy of `arn`, in the transaction that deletes the resource;
/// whether there was one.
pub fn remove_resource_policy(docs: &dyn Documents, arn: &str) -> opentrail_meta::Result<bool> {
    docs.delete_document(RESOURCE_POLICIES, arn)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPolicy {
    policy: String,
    updated_at: DateTime<Utc>,
}

/// The resource a policy request names, once found.
struct Target {
    arn: String,
    actions: &'static [&'static str],
}

impl StoreService {
    pub async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        input: PutResourcePolicyRequest,
    ) -> Result<PutResourcePolicyResponse, StoreError> {
        let now = self.now();
        let arn = self.write(|tx| {
            let target = self.policy_target(tx, ctx, &input.resource_arn)?;
            validate_policy(&input.resource_policy, &target)?;
            let stored = StoredPolicy {
                policy: input.resource_policy.clone(),
                updated_at: now,
            };
            let value = serde_json::to_string(&stored).map_err(|e| {
                StoreError::Internal(format!("failed to encode resource policy: {e}"))
            })?;
            tx.put_document(RESOURCE_POLICIES, &target.arn, &value)?;
            Ok(target.arn)
        })?;
        tracing::info!(resource = %arn, "put resource policy");
        Ok(PutResourcePolicyResponse {
            resource_arn: Some(arn),
            resource_policy: Some(input.resource_policy),
            delegated_admin_resource_policy: None,
        })
    }

    pub async fn get_resource_policy(
        &self,
        ctx: &RequestContext,
        input: GetResourcePolicyRequest,
    ) -> Result<GetResourcePolicyResponse, StoreError> {
        let direct = Direct(self.meta.as_ref());
        let target = self.policy_target(&direct, ctx, &input.resource_arn)?;
        let stored = direct
            .get_document(RESOURCE_POLICIES, &target.arn)?
            .ok_or_else(|| no_policy(&target.arn))?;
        let stored: StoredPolicy = serde_json::from_str(&stored).map_err(|e| {
            StoreError::Internal(format!(
                "stored resource policy of {} is unreadable: {e}",
                target.arn
            ))
        })?;
        Ok(GetResourcePolicyResponse {
            resource_arn: Some(target.arn),
            resource_policy: Some(stored.policy),
            delegated_admin_resource_policy: None,
        })
    }

    pub async fn delete_resource_policy(
        &self,
        ctx: &RequestContext,
        input: DeleteResourcePolicyRequest,
    ) -> Result<DeleteResourcePolicyResponse, StoreError> {
        let arn = self.write(|tx| {
            let target = self.policy_target(tx, ctx, &input.resource_arn)?;
            if !tx.delete_document(RESOURCE_POLICIES, &target.arn)? {
                return Err(no_policy(&target.arn));
            }
            Ok(target.arn)
        })?;
        tracing::info!(resource = %arn, "deleted resource policy");
        Ok(DeleteResourcePolicyResponse {})
    }

    /// The event data store, channel or dashboard `resource_arn` names, in the caller's
    /// account and region.
    fn policy_target(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        resource_arn: &str,
    ) -> Result<Target, StoreError> {
        let invalid = || {
            StoreError::ResourceArnNotValid(format!(
                "Resource ARN {resource_arn} is not a valid ARN"
            ))
        };
        let well_formed = (3..=256).contains(&resource_arn.len())
            && resource_arn
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-:".contains(&b));
        if !well_formed {
            return Err(invalid());
        }
        let arn = opentrail_model::Arn::parse(resource_arn).map_err(|_| invalid())?;
        let unsupported = || {
            StoreError::ResourceTypeNotSupported(format!(
                "Resource {resource_arn} does not take resource-based policies: only event data stores, channels and dashboards do"
            ))
        };
        if arn.service != "cloudtrail" {
            return Err(unsupported());
        }
        let not_found = || {
            StoreError::ResourceNotFound(format!(
                "Resource {resource_arn} does not exist in account {} and region {}",
                ctx.account, ctx.region
            ))
        };
        match ResourceType::of_arn(resource_arn) {
            Some(ResourceType::EventDataStore) => {
                let store = self
                    .resolve_in(docs, ctx, resource_arn)
                    .map_err(|e| match e {
                        StoreError::EventDataStoreNotFound(_) => not_found(),
                        StoreError::EventDataStoreArnInvalid(_) => invalid(),
                        other => other,
                    })?;
                Ok(Target {
                    arn: store.arn(),
                    actions: EVENT_DATA_STORE_ACTIONS,
                })
            }
            Some(ResourceType::Channel) => {
                let channel =
                    self.resolve_channel_in(docs, ctx, resource_arn)
                        .map_err(|e| match e {
                            StoreError::ChannelNotFound(_) => not_found(),
                            StoreError::ChannelArnInvalid(_) => invalid(),
                            other => other,
                        })?;
                Ok(Target {
                    arn: channel.arn(),
                    actions: CHANNEL_ACTIONS,
                })
            }
            Some(ResourceType::Dashboard) => {
                if arn
                    .resource
                    .strip_prefix("dashboard/")
                    .unwrap_or("")
                    .is_empty()
                {
                    return Err(invalid());
                }
                if arn.account != ctx.account.as_str() || arn.region != ctx.region.as_str() {
                    return Err(not_found());
                }
                let Some(lookup) = self.dashboards.as_ref() else {
                    return Err(not_found());
                };
                let found = lookup
                    .find_dashboard(docs, ctx, resource_arn)?
                    .ok_or_else(not_found)?;
                Ok(Target {
                    arn: found,
                    actions: DASHBOARD_ACTIONS,
                })
            }
            Some(ResourceType::Trail) | None => Err(unsupported()),
        }
    }
}

fn no_policy(arn: &str) -> StoreError {
    StoreError::ResourcePolicyNotFound(format!("Resource {arn} has no resource-based policy"))
}

fn not_valid(message: impl Into<String>) -> StoreError {
    StoreError::ResourcePolicyNotValid(message.into())
}

/// Checks a policy document: JSON, a known `Version`, 1–20 statements each with an
/// `Effect`, 1–50 principals, and only the actions the resource type takes; a `Resource`,
/// when given, must be the resource's own ARN.
fn validate_policy(policy: &str, target: &Target) -> Result<(), StoreError> {
    let length = policy.chars().count();
    if length == 0 || length > MAX_POLICY_CHARS {
        return Err(not_valid(format!(
            "Resource policy must be between 1 and {MAX_POLICY_CHARS} characters long, got {length}"
        )));
    }
    let document: Value = serde_json::from_str(policy)
        .map_err(|e| not_valid(format!("Resource policy is not valid JSON: {e}")))?;
    let Value::Object(document) = document else {
        return Err(not_valid("Resource policy must be a JSON object"));
    };
    for key in document.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            return Err(not_valid(format!(
                "Resource policy has an unknown element {key}"
            )));
        }
    }
    match document.get("Version") {
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
        Some(other) => {
            return Err(not_valid(format!(
                "Resource policy Version must be 2012-10-17 or 2008-10-17, got {other}"
            )))
        }
        None => return Err(not_valid("Resource policy must have a Version")),
    }
    let statements = match document.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        Some(_) => {
            return Err(not_valid(
                "Resource policy Statement must be an object or a list of objects",
            ))
        }
        None => return Err(not_valid("Resource policy must have a Statement")),
    };
    if statements.is_empty() || statements.len() > MAX_STATEMENTS {
        return Err(not_valid(format!(
            "Resource policy must have between 1 and {MAX_STATEMENTS} statements, got {}",
            statements.len()
        )));
    }
    for (index, statement) in statements.into_iter().enumerate() {
        validate_statement(index, statement, target)?;
    }
    Ok(())
}

fn validate_statement(index: usize, statement: &Value, target: &Target) -> Result<(), StoreError> {
    let at = |what: &str| format!("Statement {index}: {what}");
    let Value::Object(statement) = statement else {
        return Err(not_valid(at("must be a JSON object")));
    };
    for key in statement.keys() {
        if !matches!(
            key.as_str(),
            "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition"
        ) {
            return Err(not_valid(at(&format!(
                "element {key} is not supported in CloudTrail resource policies"
            ))));
        }
    }
    match statement.get("Effect").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        _ => return Err(not_valid(at("Effect must be Allow or Deny"))),
    }
    let principals = match statement.get("Principal") {
        Some(Value::String(star)) if star == "*" => 1,
        Some(Value::Object(kinds)) if !kinds.is_empty() => {
            let mut count = 0;
            for (kind, value) in kinds {
                if !matches!(
                    kind.as_str(),
                    "AWS" | "Service" | "Federated" | "CanonicalUser"
                ) {
                    return Err(not_valid(at(&format!("unknown principal type {kind}"))));
                }
                count += strings(value)
                    .ok_or_else(|| {
                        not_valid(at(&format!(
                            "Principal {kind} must be a string or a list of strings"
                        )))
                    })?
                    .len();
            }
            count
        }
        Some(_) => {
            return Err(not_valid(at(
                "Principal must be \"*\" or an object of principal types",
            )))
        }
        None => return Err(not_valid(at("must have a Principal"))),
    };
    if principals == 0 || principals > MAX_PRINCIPALS {
        return Err(not_valid(at(&format!(
            "must name between 1 and {MAX_PRINCIPALS} principals, got {principals}"
        ))));
    }
    let actions = statement
        .get("Action")
        .ok_or_else(|| not_valid(at("must have an Action")))
        .and_then(|value| {
            strings(value)
                .ok_or_else(|| not_valid(at("Action must be a string or a list of strings")))
        })?;
    if actions.is_empty() {
        return Err(not_valid(at("must name at least one Action")));
    }
    for action in actions {
        if !target
            .actions
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(action))
        {
            return Err(not_valid(at(&format!(
                "action {action} is not allowed on {}; allowed: {}",
                target.arn,
                target.actions.join(", ")
            ))));
        }
    }
    if let Some(resource) = statement.get("Resource") {
        let resources = strings(resource)
            .ok_or_else(|| not_valid(at("Resource must be a string or a list of strings")))?;
        if let Some(other) = resources.iter().find(|r| **r != target.arn) {
            return Err(not_valid(at(&format!(
                "Resource {other} must be the ARN the policy is attached to, {}",
                target.arn
            ))));
        }
    }
    if let Some(condition) = statement.get("Condition") {
        if !condition.is_object() {
            return Err(not_valid(at("Condition must be a JSON object")));
        }
    }
    Ok(())
}

/// A string or a list of strings, as policy elements take them.
fn strings(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(one) => Some(vec![one.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL: &str = "arn:aws:cloudtrail:us-east-1:123456789012:channel/abc";

    fn channel() -> Target {
        Target {
            arn: CHANNEL.into(),
            actions: CHANNEL_ACTIONS,
        }
    }

    fn error_of(policy: &str) -> String {
        match validate_policy(policy, &channel()) {
            Err(StoreError::ResourcePolicyNotValid(message)) => message,
            other => panic!("{policy}: expected ResourcePolicyNotValid, got {other:?}"),
        }
    }

    #[test]
    fn documented_channel_policy_is_valid() {
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"ChannelPolicy","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]}},"Action":"cloudtrail-data:PutAuditEvents","Resource":"{CHANNEL}","Condition":{{"StringEquals":{{"cloudtrail:ExternalId":"x"}}}}}}]}}"#
        );
        validate_policy(&policy, &channel()).unwrap();
    }

    #[test]
    fn malformed_policies_name_their_fault() {
        assert!(error_of("not json").contains("not valid JSON"));
        assert!(error_of("[]").contains("JSON object"));
        assert!(error_of(r#"{"Statement":[]}"#).contains("Version"));
        assert!(error_of(r#"{"Version":"2012-10-17"}"#).contains("Statement"));
        assert!(error_of(r#"{"Version":"2012-10-17","Statement":[]}"#).contains("between 1 and 20"));
        let statement = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#);
        assert!(error_of(&statement(
            r#"{"Effect":"Allow","Action":"cloudtrail-data:PutAuditEvents"}"#
        ))
        .contains("Principal"));
        assert!(error_of(&statement(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"cloudtrail:StartQuery"}"#
        ))
        .contains("cloudtrail:StartQuery is not allowed"));
        assert!(error_of(&statement(
            r#"{"Effect":"Maybe","Principal":"*","Action":"cloudtrail-data:PutAuditEvents"}"#
        ))
        .contains("Effect"));
        assert!(error_of(&statement(
            r#"{"Effect":"Allow","Principal":"*","Action":"cloudtrail-data:PutAuditEvents","Resource":"arn:aws:cloudtrail:us-east-1:123456789012:channel/other"}"#
        ))
        .contains("must be the ARN"));
        assert!(error_of(&statement(
            r#"{"Effect":"Allow","Principal":"*","NotAction":"cloudtrail-data:PutAuditEvents"}"#
        ))
        .contains("NotAction"));
    }
}
