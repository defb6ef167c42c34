//! The full record schema up to eventVersion 1.11 as owned values, for building records
//! (OpenTrail's own audit events) and for reading every field of one. Free-form parts
//! (`requestParameters`, `responseElements`, ...) stay raw JSON text and are not re-encoded.
//!
//! A document is not byte-preserving: converting a record to a document and back keeps
//! every known field's meaning but not key order, unknown fields or `readOnly` written
//! as a string. [`EventRecord`] is the byte-exact form.

use super::error::EventError;
use super::event_time::parse_event_time;
use super::record::EventRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A CloudTrail event record with every documented field, in CloudTrail's field order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDocument {
    /// `1.<minor>`; the current version is `1.11`.
    pub event_version: String,
    /// Absent only in Insights events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentityDocument>,
    #[serde(with = "event_time_format")]
    pub event_time: DateTime<Utc>,
    /// Empty (and then not written) only in Insights events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_source: String,
    /// Empty (and then not written) only in Insights events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_name: String,
    pub aws_region: String,
    #[serde(
        rename = "sourceIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// CloudTrail writes `null` here for API calls without parameters.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "raw_json"
    )]
    pub request_parameters: Option<Box<RawValue>>,
    /// CloudTrail writes `null` here for API calls that change nothing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "raw_json"
    )]
    pub response_elements: Option<Box<RawValue>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "raw_json"
    )]
    pub additional_event_data: Option<Box<RawValue>>,
    #[serde(rename = "requestID", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Empty (and then not written) only in records before eventVersion 1.01.
    #[serde(rename = "eventID", default, skip_serializing_if = "String::is_empty")]
    pub event_id: String,
    /// Read from a boolean or the string `"true"`/`"false"`; written as a boolean.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flexible_bool"
    )]
    pub read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<ResourceDocument>>,
    /// Empty (and then not written) only in records before eventVersion 1.02.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Read from a boolean or the string `"true"`/`"false"`; written as a boolean.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "flexible_bool"
    )]
    pub management_event: Option<bool>,
    /// Empty (and then not written) in Insights events and records without one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recipient_account_id: String,
    #[serde(
        rename = "sharedEventID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_account_id: Option<String>,
    /// `Management`, `Data`, `NetworkActivity` or `Insight` (eventVersion 1.07 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addendum: Option<Addendum>,
    /// The string `"true"` when the session credentials came from the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_credential_from_console: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "raw_json"
    )]
    pub edge_device_details: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<TlsDetails>,
    /// Insights events only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "raw_json"
    )]
    pub insight_details: Option<Box<RawValue>>,
    /// `AwsServiceEvent` records only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "raw_json"
    )]
    pub service_event_details: Option<Box<RawValue>>,
}

/// `userIdentity`: who made the request and with which credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentityDocument {
    /// `IAMUser`, `AssumedRole`, `Root`, `AWSService`, `AWSAccount`, `FederatedUser`,
    /// `WebIdentityUser`, `IdentityCenterUser`, `SAMLUser`, `Directory` or `Unknown`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    /// IAM Identity Center: the user on whose behalf the request was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<OnBehalfOf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
}

/// `userIdentity.sessionContext`: how temporary credentials were issued.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuerDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_id_federation_data: Option<WebIdFederationData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<SessionAttributes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// `"1.0"` or `"2.0"`: the instance metadata service version that delivered EC2 role
    /// credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_role_delivery: Option<String>,
    /// The account whose root was assumed with `sts:AssumeRoot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_root: Option<String>,
}

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuerDocument {
    /// `Root`, `IAMUser` or `Role`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub issuer_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// `userIdentity.sessionContext.webIdFederationData`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebIdFederationData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_provider: Option<String>,
    /// Provider-specific claims, kept as JSON text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "raw_json"
    )]
    pub attributes: Option<Box<RawValue>>,
}

impl PartialEq for WebIdFederationData {
    fn eq(&self, other: &Self) -> bool {
        self.federated_provider == other.federated_provider
            && self.attributes.as_ref().map(|json| json.get())
                == other.attributes.as_ref().map(|json| json.get())
    }
}

impl Eq for WebIdFederationData {}

/// `userIdentity.sessionContext.attributes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    /// When the credentials were issued, `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// The string `"true"` or `"false"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_authenticated: Option<String>,
}

/// `userIdentity.onBehalfOf` (IAM Identity Center).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnBehalfOf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_store_arn: Option<String>,
}

/// One element of `resources`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDocument {
    #[serde(rename = "ARN", default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(rename = "ARNPrefix", default, skip_serializing_if = "Option::is_none")]
    pub arn_prefix: Option<String>,
    #[serde(rename = "accountId", default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
}

/// `addendum`: why an event was delivered late or changed after it was first delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addendum {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_fields: Option<String>,
    #[serde(
        rename = "originalRequestID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub original_request_id: Option<String>,
    #[serde(
        rename = "originalEventID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub original_event_id: Option<String>,
}

/// `tlsDetails`: the TLS session of the request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_provided_host_header: Option<String>,
}

impl EventRecord {
    /// Writes `document` as compact JSON in CloudTrail's field order and indexes it.
    pub fn from_document(document: &EventDocument) -> Result<Self, EventError> {
        let json = serde_json::to_string(document)
            .map_err(|error| EventError::malformed(format!("record document: {error}")))?;
        Self::from_json(&json)
    }

    /// Reads every documented field. Fails with `MalformedJson` when a field does not
    /// have the schema's type (run [`EventRecord::validate`] first for a precise error).
    pub fn to_document(&self) -> Result<EventDocument, EventError> {
        serde_json::from_str(self.json()).map_err(|error| {
            EventError::malformed(format!("record does not match the schema: {error}"))
        })
    }
}

/// Keeps a present value's JSON text, including `null` (which `Option` alone would drop).
fn raw_json<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

fn flexible_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Option::<Flag>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Flag::Bool(value)) => Ok(Some(value)),
        Some(Flag::Text(text)) => match text.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom(format!(
                "expected true or false, got {text:?}"
            ))),
        },
    }
}

/// `eventTime` as CloudTrail writes it: `YYYY-MM-DDTHH:MM:SSZ`.
mod event_time_format {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&time.format("%Y-%m-%dT%H:%M:%SZ"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_event_time(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "eventTime must be YYYY-MM-DDTHH:MM:SSZ, got {text:?}"
            ))
        })
    }
}
