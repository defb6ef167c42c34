//! Reads the fields OpenTrail needs out of one record's JSON text.
//! Every known key is borrowed as raw JSON and classified into a [`Slot`]; unknown keys
//! are skipped without being built into values, and nothing is re-serialised.

use super::error::EventError;
use super::event_time::parse_event_time;
use super::slot::{JsonKind, Slot};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Declares the borrowed serde shape of a JSON object and its classified twin, so the
/// list of keys is written once.
macro_rules! json_object_fields {
    ($(#[$doc:meta])* $json_struct:ident => $slots_struct:ident { $($field:ident: $key:literal,)* }) => {
        #[derive(Deserialize)]
        struct $json_struct<'a> {
            $(#[serde(rename = $key, borrow)] $field: Option<&'a RawValue>,)*
        }

        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub(crate) struct $slots_struct {
            $(pub(crate) $field: Slot,)*
        }

        impl $slots_struct {
            fn read(record: &str, json: &$json_struct<'_>) -> Self {
                Self { $($field: Slot::read(record, json.$field),)* }
            }
        }
    };
}

json_object_fields! {
    /// The top-level fields of a record, in CloudTrail's order (eventVersion 1.11).
    TopLevelJson => TopLevel {
        event_version: "eventVersion",
        user_identity: "userIdentity",
        event_time: "eventTime",
        event_source: "eventSource",
        event_name: "eventName",
        aws_region: "awsRegion",
        source_ip_address: "sourceIPAddress",
        user_agent: "userAgent",
        error_code: "errorCode",
        error_message: "errorMessage",
        request_parameters: "requestParameters",
        response_elements: "responseElements",
        additional_event_data: "additionalEventData",
        request_id: "requestID",
        event_id: "eventID",
        read_only: "readOnly",
        resources: "resources",
        event_type: "eventType",
        api_version: "apiVersion",
        management_event: "managementEvent",
        recipient_account_id: "recipientAccountId",
        shared_event_id: "sharedEventID",
        vpc_endpoint_id: "vpcEndpointId",
        vpc_endpoint_account_id: "vpcEndpointAccountId",
        event_category: "eventCategory",
        addendum: "addendum",
        session_credential_from_console: "sessionCredentialFromConsole",
        edge_device_details: "edgeDeviceDetails",
        tls_details: "tlsDetails",
        insight_details: "insightDetails",
        service_event_details: "serviceEventDetails",
    }
}

json_object_fields! {
    /// The `userIdentity` fields OpenTrail reads.
    IdentityJson => IdentitySlots {
        identity_type: "type",
        principal_id: "principalId",
        arn: "arn",
        account_id: "accountId",
        access_key_id: "accessKeyId",
        user_name: "userName",
        invoked_by: "invokedBy",
        session_context: "sessionContext",
        credential_id: "credentialId",
        identity_provider: "identityProvider",
    }
}

json_object_fields! {
    /// The `userIdentity.sessionContext` fields OpenTrail reads.
    SessionContextJson => SessionContextSlots {
        session_issuer: "sessionIssuer",
        source_identity: "sourceIdentity",
    }
}

json_object_fields! {
    /// `userIdentity.sessionContext.sessionIssuer`.
    IssuerJson => IssuerSlots {
        issuer_type: "type",
        principal_id: "principalId",
        arn: "arn",
        account_id: "accountId",
        user_name: "userName",
    }
}

json_object_fields! {
    /// One element of `resources`.
    ResourceJson => ResourceSlots {
        arn: "ARN",
        arn_prefix: "ARNPrefix",
        account_id: "accountId",
        resource_type: "type",
    }
}

/// One element of the `resources` array: an object, or a value of another type
/// (`None` for `null`) that validation rejects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResourceEntry {
    Object(ResourceSlots),
    NotAnObject(Option<JsonKind>),
}

/// Everything parsed out of one record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) top: TopLevel,
    pub(crate) identity: IdentitySlots,
    pub(crate) session_context: SessionContextSlots,
    pub(crate) issuer: IssuerSlots,
    /// Empty unless `resources` is an array.
    pub(crate) resources: Vec<ResourceEntry>,
    /// `eventTime`, when it is in CloudTrail's `YYYY-MM-DDTHH:MM:SSZ` form.
    pub(crate) event_time: Option<DateTime<Utc>>,
}

impl Fields {
    /// Indexes `record`, the JSON text of one record without surrounding whitespace.
    pub(crate) fn parse(record: &str) -> Result<Self, EventError> {
        let top: TopLevelJson<'_> = parse_object(record, "record")?;
        let top = TopLevel::read(record, &top);

        let mut identity = IdentitySlots::default();
        let mut session_context = SessionContextSlots::default();
        let mut issuer = IssuerSlots::default();
        if let Some(json) = top.user_identity.object_json(record) {
            identity = IdentitySlots::read(record, &parse_object(json, "userIdentity")?);
        }
        if let Some(json) = identity.session_context.object_json(record) {
            let context: SessionContextJson<'_> =
                parse_object(json, "userIdentity.sessionContext")?;
            session_context = SessionContextSlots::read(record, &context);
        }
        if let Some(json) = session_context.session_issuer.object_json(record) {
            let json: IssuerJson<'_> =
                parse_object(json, "userIdentity.sessionContext.sessionIssuer")?;
            issuer = IssuerSlots::read(record, &json);
        }

        let mut resources = Vec::new();
        if let Some(json) = top.resources.array_json(record) {
            let elements: Vec<&RawValue> = serde_json::from_str(json)
                .map_err(|error| EventError::malformed(format!("resources: {error}")))?;
            resources.reserve_exact(elements.len());
            for element in elements {
                resources.push(read_resource(record, element)?);
            }
        }

        let event_time = top.event_time.as_str(record).and_then(parse_event_time);
        Ok(Self {
            top,
            identity,
            session_context,
            issuer,
            resources,
            event_time,
        })
    }
}

fn read_resource(record: &str, element: &RawValue) -> Result<ResourceEntry, EventError> {
    let slot = Slot::read(record, Some(element));
    let Some(json) = slot.object_json(record) else {
        return Ok(ResourceEntry::NotAnObject(slot.kind()));
    };
    let json: ResourceJson<'_> = parse_object(json, "resources")?;
    Ok(ResourceEntry::Object(ResourceSlots::read(record, &json)))
}

/// Deserializes the JSON object `json` (serde would also accept an array for a struct,
/// so the opening brace is checked first). `what` names the object in errors.
fn parse_object<'a, T: Deserialize<'a>>(json: &'a str, what: &str) -> Result<T, EventError> {
    if !json.starts_with('{') {
        return Err(EventError::malformed(format!(
            "{what} is not a json object"
        )));
    }
    serde_json::from_str(json).map_err(|error| EventError::malformed(format!("{what}: {error}")))
}
