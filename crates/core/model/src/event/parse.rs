//! Reads the fields OpenTrail needs out of one record's JSON text, in one pass of
//! [`Scanner`]: every known key's value is classified into a [`Slot`] (a range of the
//! text), the objects OpenTrail reads inside (`userIdentity`, its `sessionContext` and
//! `sessionIssuer`, the elements of `resources`) are walked in place, and everything else
//! is validated and skipped without building values. What is accepted is exactly what
//! `serde_json` accepts for the same shape, duplicate known keys included (an error).

use super::error::EventError;
use super::event_time::parse_event_time;
use super::scan::{ScanError, ScanResult, Scanner};
use super::slot::{JsonKind, Slot, Source};
use super::version::minor_version;
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
    /// The minor version of `eventVersion`, when it is `1.<minor>`.
    pub(crate) minor_version: Option<u32>,
    /// The eventID derived for a record before eventVersion 1.01 that has none (see
    /// [`derived_event_id`](super::derived::derived_event_id)).
    pub(crate) derived_event_id: Option<Box<str>>,
}

impl Fields {
    /// About the bytes the index holds on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        let boxed = |text: &str| text.len() + std::mem::size_of::<Box<str>>();
        self.resources.capacity() * std::mem::size_of::<ResourceEntry>()
            + self.decoded.iter().map(|text| boxed(text)).sum::<usize>()
            + self.derived_event_id.as_deref().map_or(0, boxed)
    }

    /// Indexes `record`, the JSON text of one record without surrounding whitespace.
    pub(crate) fn parse(record: &str) -> Result<Self, EventError> {
        let (mut fields, _) = Self::walk(record, Scanner::finish)?;
        fields.derive(record);
        Ok(fields)
    }

    /// Indexes the record object at the start of `text`, which may go on after it (the
    /// rest of a log file); returns the fields and the object's length. Equivalent to
    /// [`Fields::parse`] of the object's text alone.
    pub(crate) fn parse_leading(text: &str) -> Result<(Self, usize), EventError> {
        let (mut fields, end) = Self::walk(text, |_| Ok(()))?;
        fields.derive(&text[..end]);
        Ok((fields, end))
    }

    /// Walks the record object at the start of `text`, then `after` (what may follow it);
    /// returns the fields, not yet derived, and the object's length.
    fn walk<'a>(
        text: &'a str,
        after: impl FnOnce(&mut Scanner<'a>) -> ScanResult<()>,
    ) -> Result<(Self, usize), EventError> {
        if !text.starts_with('{') {
            return Err(EventError::malformed("record is not a json object"));
        }
        let mut fields = Fields::default();
        let mut scanner = Scanner::new(text);
        let mut end = 0;
        walk_record(&mut scanner, &mut fields)
            .and_then(|()| {
                end = scanner.position();
                after(&mut scanner)
            })
            .map_err(|error| EventError::malformed(format!("record: {error}")))?;
        Ok((fields, end))
    }

    /// What is computed from the indexed text once the walk is done.
    fn derive(&mut self, record: &str) {
        let fields = self;
        fields.event_time = fields
            .top
            .event_time
            .as_str(fields.source(record))
            .and_then(parse_event_time);
        fields.minor_version = fields
            .top
            .event_version
            .as_str(fields.source(record))
            .and_then(minor_version);
        fields.derived_event_id = fields.derive_event_id(record);
    }

    /// Where the slots' text is, for a record parsed into these fields.
    pub(crate) fn source<'a>(&'a self, record: &'a str) -> Source<'a> {
        Source {
            record,
            decoded: &self.decoded,
        }
    }
}

/// Walks the object at the scanner into `slots`: unknown keys are skipped, a known key
/// given twice is an error (as in serde's typed parse), and `read` reads each known key's
/// value into its slot. Returns the object's byte range.
fn walk_slots<'a, S>(
    scanner: &mut Scanner<'a>,
    slots: &mut S,
    member: for<'s, 'k> fn(&'s mut S, &'k str) -> Option<(u64, &'s mut Slot)>,
    mut read: impl FnMut(&mut Scanner<'a>, &str, &mut Slot) -> ScanResult<()>,
) -> ScanResult<(usize, usize)> {
    let mut seen = 0u64;
    scanner.object(|scanner, key| {
        let name = scanner.key_text(key)?;
        let Some((bit, slot)) = member(slots, &name) else {
            return scanner.value().map(drop);
        };
        if seen & bit != 0 {
            return Err(ScanError::duplicate_field(&name, key.start));
        }
        seen |= bit;
        read(scanner, &name, slot)
    })
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

/// Records in `slot` the container `walk` walked in place.
fn walk_container<'a>(
    scanner: &mut Scanner<'a>,
    slot: &mut Slot,
    kind: JsonKind,
    walk: impl FnOnce(&mut Scanner<'a>) -> ScanResult<(usize, usize)>,
) -> ScanResult<()> {
    let (start, end) = walk(scanner)?;
    let text = scanner.text();
    *slot = Slot::read_container(text, kind, &text[start..end]);
    Ok(())
}

fn walk_record(scanner: &mut Scanner<'_>, fields: &mut Fields) -> ScanResult<()> {
    let Fields {
        top,
        identity,
        session_context,
        issuer,
        resources,
        decoded,
        ..
    } = fields;
    walk_slots(
        scanner,
        top,
        TopLevel::member,
        |scanner, name, slot| match (name, scanner.peek()) {
            ("userIdentity", Some(b'{')) => {
                walk_container(scanner, slot, JsonKind::Object, |scanner| {
                    walk_identity(
                        scanner,
                        (&mut *identity, &mut *session_context, &mut *issuer),
                        decoded,
                    )
                })
            }
            ("resources", Some(b'[')) => {
                walk_container(scanner, slot, JsonKind::Array, |scanner| {
                    scanner.array(|scanner| {
                        resources.push(read_resource(scanner, decoded)?);
                        Ok(())
                    })
                })
            }
            _ => read_value(scanner, slot, decoded),
        },
    )
    .map(drop)
}

type IdentityParts<'f> = (
    &'f mut IdentitySlots,
    &'f mut SessionContextSlots,
    &'f mut IssuerSlots,
);

/// `userIdentity`, with its `sessionContext` and that one's `sessionIssuer` walked in place.
fn walk_identity(
    scanner: &mut Scanner<'_>,
    (identity, session_context, issuer): IdentityParts<'_>,
    decoded: &mut Vec<Box<str>>,
) -> ScanResult<(usize, usize)> {
    walk_slots(
        scanner,
        identity,
        IdentitySlots::member,
        |scanner, name, slot| {
            if name != "sessionContext" || scanner.peek() != Some(b'{') {
                return read_value(scanner, slot, decoded);
            }
            walk_container(scanner, slot, JsonKind::Object, |scanner| {
                walk_slots(
                    scanner,
                    session_context,
                    SessionContextSlots::member,
                    |scanner, name, slot| {
                        if name != "sessionIssuer" || scanner.peek() != Some(b'{') {
                            return read_value(scanner, slot, decoded);
                        }
                        walk_container(scanner, slot, JsonKind::Object, |scanner| {
                            walk_slots(scanner, issuer, IssuerSlots::member, |scanner, _, slot| {
                                read_value(scanner, slot, decoded)
                            })
                        })
                    },
                )
            })
        },
    )
}

/// One element of `resources`.
fn read_resource(
    scanner: &mut Scanner<'_>,
    decoded: &mut Vec<Box<str>>,
) -> ScanResult<ResourceEntry> {
    if scanner.peek() == Some(b'{') {
        let mut slots = ResourceSlots::default();
        walk_slots(
            scanner,
            &mut slots,
            ResourceSlots::member,
            |scanner, _, slot| read_value(scanner, slot, decoded),
        )?;
        return Ok(ResourceEntry::Object(slots));
    }
    let mut slot = Slot::Absent;
    read_value(scanner, &mut slot, decoded)?;
    Ok(ResourceEntry::NotAnObject(slot.kind()))
}
