//! Reads the fields OpenTrail needs out of one record's JSON text, in one pass of
//! [`Scanner`]: every known key's value is classified into a [`Slot`] (a range of the
//! text), the objects OpenTrail reads inside (`userIdentity`, its `sessionContext` and
//! `sessionIssuer`, the elements of `resources`) are walked in place, and everything else
//! is validated and skipped without building values. What is accepted is exactly what
//! `serde_json` accepts for the same shape, duplicate known keys included (an error).

use super::error::EventError;
use super::event_time::parse_event_time;
use super::scan::{ScanError, ScanResult, Scanner, StrToken};
use super::slot::{JsonKind, Slot, Source};
use chrono::{DateTime, Utc};

/// Declares the slots of one JSON object, so the list of keys is written once.
macro_rules! json_object_fields {
    ($(#[$doc:meta])* $json_struct:ident => $slots_struct:ident { $($field:ident: $key:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub(crate) struct $slots_struct {
            $(pub(crate) $field: Slot,)*
        }

        impl $slots_struct {
            /// The slot for `key` and its bit among this object's keys; `None` for keys
            /// OpenTrail does not read.
            fn member(&mut self, key: &str) -> Option<(u64, &mut Slot)> {
                #[allow(non_camel_case_types, clippy::enum_variant_names)]
                enum Bit { $($field,)* }
                match key {
                    $($key => Some((1u64 << Bit::$field as u32, &mut self.$field)),)*
                    _ => None,
                }
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
    /// Strings with escapes, decoded; slots refer to them by index.
    pub(crate) decoded: Vec<Box<str>>,
}

impl Fields {
    /// Indexes `record`, the JSON text of one record without surrounding whitespace.
    pub(crate) fn parse(record: &str) -> Result<Self, EventError> {
        if !record.starts_with('{') {
            return Err(EventError::malformed("record is not a json object"));
        }
        let mut fields = Fields::default();
        let mut scanner = Scanner::new(record);
        walk_record(&mut scanner, &mut fields)
            .and_then(|()| scanner.finish())
            .map_err(|error| EventError::malformed(format!("record: {error}")))?;
        fields.event_time = fields
            .top
            .event_time
            .as_str(fields.source(record))
            .and_then(parse_event_time);
        Ok(fields)
    }

    /// Where the slots' text is, for a record parsed into these fields.
    pub(crate) fn source<'a>(&'a self, record: &'a str) -> Source<'a> {
        Source {
            record,
            decoded: &self.decoded,
        }
    }
}

/// The key's text; serde refuses keys whose escapes do not decode, and so does this.
fn key_name<'a>(scanner: &Scanner<'a>, key: StrToken) -> ScanResult<std::borrow::Cow<'a, str>> {
    scanner.key_text(key).ok_or_else(|| {
        Box::new(ScanError {
            what: "invalid escape in a key".into(),
            at: key.start as usize,
        })
    })
}

/// Marks `bit` seen; a second occurrence of a known key is an error, as in serde.
fn first_time(seen: &mut u64, bit: u64, key: &str, at: u32) -> ScanResult<()> {
    if *seen & bit != 0 {
        return Err(Box::new(ScanError {
            what: format!("duplicate field `{key}`").into(),
            at: at as usize,
        }));
    }
    *seen |= bit;
    Ok(())
}

/// Reads the value at the scanner into `slot`.
fn read_value(
    scanner: &mut Scanner<'_>,
    slot: &mut Slot,
    decoded: &mut Vec<Box<str>>,
) -> ScanResult<()> {
    let text = scanner.text();
    if scanner.peek() == Some(b'"') {
        let token = scanner.string()?;
        *slot = Slot::read_string_token(text, token, decoded);
        return Ok(());
    }
    let (start, end) = scanner.value()?;
    *slot = Slot::read(text, &text[start..end], decoded);
    Ok(())
}

/// The slot of a container walked in place.
fn container(scanner: &Scanner<'_>, kind: JsonKind, (start, end): (usize, usize)) -> Slot {
    let text = scanner.text();
    Slot::read_container(text, kind, &text[start..end])
}

fn walk_record(scanner: &mut Scanner<'_>, fields: &mut Fields) -> ScanResult<()> {
    let mut seen = 0u64;
    scanner
        .object(|scanner, key| {
            let name = key_name(scanner, key)?;
            let Some((bit, slot)) = fields.top.member(&name) else {
                return scanner.value().map(drop);
            };
            first_time(&mut seen, bit, &name, key.start)?;
            match (&*name, scanner.peek()) {
                ("userIdentity", Some(b'{')) => {
                    let parts = (
                        &mut fields.identity,
                        &mut fields.session_context,
                        &mut fields.issuer,
                    );
                    let span = walk_identity(scanner, parts, &mut fields.decoded)?;
                    fields.top.user_identity = container(scanner, JsonKind::Object, span);
                }
                ("resources", Some(b'[')) => {
                    let (resources, decoded) = (&mut fields.resources, &mut fields.decoded);
                    let span = scanner.array(|scanner| {
                        resources.push(read_resource(scanner, decoded)?);
                        Ok(())
                    })?;
                    fields.top.resources = container(scanner, JsonKind::Array, span);
                }
                _ => read_value(scanner, slot, &mut fields.decoded)?,
            }
            Ok(())
        })
        .map(drop)
}

type IdentityParts<'f> = (
    &'f mut IdentitySlots,
    &'f mut SessionContextSlots,
    &'f mut IssuerSlots,
);

fn walk_identity(
    scanner: &mut Scanner<'_>,
    (identity, session_context, issuer): IdentityParts<'_>,
    decoded: &mut Vec<Box<str>>,
) -> ScanResult<(usize, usize)> {
    let mut seen = 0u64;
    scanner.object(|scanner, key| {
        let name = key_name(scanner, key)?;
        let Some((bit, slot)) = identity.member(&name) else {
            return scanner.value().map(drop);
        };
        first_time(&mut seen, bit, &name, key.start)?;
        if &*name == "sessionContext" && scanner.peek() == Some(b'{') {
            let span = walk_session_context(scanner, session_context, issuer, decoded)?;
            identity.session_context = container(scanner, JsonKind::Object, span);
            return Ok(());
        }
        read_value(scanner, slot, decoded)
    })
}

fn walk_session_context(
    scanner: &mut Scanner<'_>,
    session_context: &mut SessionContextSlots,
    issuer: &mut IssuerSlots,
    decoded: &mut Vec<Box<str>>,
) -> ScanResult<(usize, usize)> {
    let mut seen = 0u64;
    scanner.object(|scanner, key| {
        let name = key_name(scanner, key)?;
        let Some((bit, slot)) = session_context.member(&name) else {
            return scanner.value().map(drop);
        };
        first_time(&mut seen, bit, &name, key.start)?;
        if &*name == "sessionIssuer" && scanner.peek() == Some(b'{') {
            let span = walk_slots(scanner, issuer, IssuerSlots::member, decoded)?;
            session_context.session_issuer = container(scanner, JsonKind::Object, span);
            return Ok(());
        }
        read_value(scanner, slot, decoded)
    })
}

/// Walks an object of plain slots.
fn walk_slots<S>(
    scanner: &mut Scanner<'_>,
    slots: &mut S,
    member: for<'s, 'k> fn(&'s mut S, &'k str) -> Option<(u64, &'s mut Slot)>,
    decoded: &mut Vec<Box<str>>,
) -> ScanResult<(usize, usize)> {
    let mut seen = 0u64;
    scanner.object(|scanner, key| {
        let name = key_name(scanner, key)?;
        let Some((bit, slot)) = member(slots, &name) else {
            return scanner.value().map(drop);
        };
        first_time(&mut seen, bit, &name, key.start)?;
        read_value(scanner, slot, decoded)
    })
}

/// One element of `resources`.
fn read_resource(
    scanner: &mut Scanner<'_>,
    decoded: &mut Vec<Box<str>>,
) -> ScanResult<ResourceEntry> {
    if scanner.peek() == Some(b'{') {
        let mut slots = ResourceSlots::default();
        walk_slots(scanner, &mut slots, ResourceSlots::member, decoded)?;
        return Ok(ResourceEntry::Object(slots));
    }
    let mut slot = Slot::Absent;
    read_value(scanner, &mut slot, decoded)?;
    Ok(ResourceEntry::NotAnObject(slot.kind()))
}
