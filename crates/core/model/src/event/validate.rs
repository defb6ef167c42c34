//! Ingest validation: the fields a record must have, the JSON types of the fields
//! OpenTrail knows, and the record's size.

use super::error::EventError;
use super::parse::{Fields, ResourceEntry};
use super::record::{EventRecord, RecordRef};
use super::slot::{JsonKind, Slot, Source};
use super::version::{minor_version, EVENT_ID_SINCE, EVENT_TYPE_SINCE};
use crate::{AccountId, Region};
use chrono::{DateTime, Utc};

/// The largest record accepted, in bytes of JSON text: 256 KB, the per-event limit of
/// `PutAuditEvents`.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// The earliest `eventTime` accepted at ingest: CloudTrail began in November 2013, so no
/// genuine record is older, and imports of old logs still pass.
pub const EARLIEST_EVENT_TIME: &str = "2013-11-01T00:00:00Z";

/// How far past the server's clock an `eventTime` may lie (clock skew between the
/// producer and the server): 24 hours.
pub const MAX_EVENT_TIME_AHEAD_SECONDS: i64 = 24 * 60 * 60;

/// `eventType` of Insights events, which have their own required fields.
const INSIGHT_EVENT_TYPE: &str = "AwsCloudTrailInsight";

impl EventRecord {
    /// Checks that the record can be ingested. The first problem found is returned;
    /// checks run in this order: size; required fields in CloudTrail's field order;
    /// then the types of the optional fields. See [`View::validate`].
    pub fn validate(&self) -> Result<(), EventError> {
        View::new(self.json(), self.fields()).validate()
    }
}

impl RecordRef<'_> {
    /// [`EventRecord::validate`] for a record that is not kept.
    pub fn validate(&self) -> Result<(), EventError> {
        View::new(self.json(), self.fields()).validate()
    }

    /// [`RecordRef::validate`], then [`check_event_time`] against the caller's `now`:
    /// what ingest accepts.
    pub fn validate_at(&self, now: DateTime<Utc>) -> Result<(), EventError> {
        self.validate()?;
        match self.fields().event_time {
            Some(time) => check_event_time(time, now),
            None => Ok(()),
        }
    }
}

/// Checks that `time` (a record's `eventTime`) lies in the window ingest accepts: from
/// [`EARLIEST_EVENT_TIME`] to `now` + [`MAX_EVENT_TIME_AHEAD_SECONDS`], both inclusive.
/// `now` is the server's clock, passed in so that this crate stays free of clocks.
pub fn check_event_time(time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), EventError> {
    let earliest = earliest_event_time();
    let latest = now + chrono::Duration::seconds(MAX_EVENT_TIME_AHEAD_SECONDS);
    if time < earliest || time > latest {
        return Err(EventError::EventTimeOutOfRange {
            time: crate::iso8601(time),
            earliest: crate::iso8601(earliest),
            latest: crate::iso8601(latest),
        });
    }
    Ok(())
}

fn earliest_event_time() -> DateTime<Utc> {
    super::event_time::parse_event_time(EARLIEST_EVENT_TIME).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A parsed record's text and fields, owned or not.
struct View<'a> {
    json: &'a str,
    fields: &'a Fields,
}

impl<'a> View<'a> {
    fn new(json: &'a str, fields: &'a Fields) -> Self {
        Self { json, fields }
    }

    fn json(&self) -> &'a str {
        self.json
    }

    fn fields(&self) -> &'a Fields {
        self.fields
    }

    fn byte_len(&self) -> usize {
        self.json.len()
    }

    fn event_type(&self) -> &'a str {
        let source = self.fields.source(self.json);
        self.fields.top.event_type.as_str(source).unwrap_or("")
    }

    fn event_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.fields.event_time
    }

    /// Checks that the record can be ingested. The first problem found is returned;
    /// checks run in this order: size; required fields in CloudTrail's field order;
    /// then the types of the optional fields.
    ///
    /// Required, as the record reference has them since eventVersion 1.0: `eventVersion`
    /// (`1.<minor>`), `userIdentity` (an object), `eventTime` (`YYYY-MM-DDTHH:MM:SSZ`),
    /// `eventSource`, `eventName` and `awsRegion` (a region name); since 1.01 `eventID`
    /// and since 1.02 `eventType` (non-empty strings; derived for earlier records).
    /// `recipientAccountId` (12 digits) is optional at every version, but then
    /// `userIdentity` must name the account it is derived from (see
    /// [`EventRecord::recipient_account_id`]). Insights events (`eventType`
    /// `AwsCloudTrailInsight`) have no `userIdentity`, `eventSource` or `eventName` and
    /// may lack `recipientAccountId`, but require `sharedEventID` and `insightDetails`.
    pub fn validate(&self) -> Result<(), EventError> {
        let size = self.byte_len();
        if size > MAX_RECORD_BYTES {
            return Err(EventError::RecordTooLarge {
                size,
                limit: MAX_RECORD_BYTES,
            });
        }
        let check = Checker {
            source: self.fields().source(self.json()),
        };
        let top = &self.fields().top;
        let insight = self.event_type() == INSIGHT_EVENT_TYPE;

        let version = check.required_str(&top.event_version, "eventVersion")?;
        let Some(minor) = minor_version(version) else {
            return Err(EventError::invalid(
                "eventVersion",
                format!("must be 1.<minor>, got {}", quoted(version)),
            ));
        };
        if insight {
            check.optional_object(&top.user_identity, "userIdentity")?;
        } else {
            check.required_object(&top.user_identity, "userIdentity")?;
        }
        let time = check.required_str(&top.event_time, "eventTime")?;
        if self.event_time().is_none() {
            return Err(EventError::invalid(
                "eventTime",
                format!("must be YYYY-MM-DDTHH:MM:SSZ, got {}", quoted(time)),
            ));
        }
        if insight {
            check.optional_str(&top.event_source, "eventSource")?;
            check.optional_str(&top.event_name, "eventName")?;
        } else {
            check.required_str(&top.event_source, "eventSource")?;
            check.required_str(&top.event_name, "eventName")?;
        }
        let region = check.required_str(&top.aws_region, "awsRegion")?;
        if !Region::is_valid(region) {
            return Err(EventError::invalid(
                "awsRegion",
                format!("must be a region name, got {}", quoted(region)),
            ));
        }
        check.required_since(minor, EVENT_ID_SINCE, &top.event_id, "eventID")?;
        if self.fields().event_id(self.json()).is_empty() {
            // A record before 1.01 whose id cannot be derived (serde_json cannot hold
            // one of its numbers, say): nothing could tell its copies apart.
            return Err(EventError::MissingField { field: "eventID" });
        }
        check.required_since(minor, EVENT_TYPE_SINCE, &top.event_type, "eventType")?;
        let recipient = check.optional_str(&top.recipient_account_id, "recipientAccountId")?;
        if recipient.is_none()
            && !insight
            && self.fields().recipient_account_id(self.json()).is_empty()
        {
            // Optional in the record reference, but trails and event history file every
            // event under its recipient, which is then taken from userIdentity.
            return Err(EventError::MissingField {
                field: "recipientAccountId",
            });
        }
        if let Some(account) = recipient {
            if account.is_empty() {
                return Err(EventError::invalid(
                    "recipientAccountId",
                    "must not be empty",
                ));
            }
            if !AccountId::is_valid(account) {
                return Err(EventError::invalid(
                    "recipientAccountId",
                    format!("must be 12 digits, got {}", quoted(account)),
                ));
            }
        }
        if insight {
            check.required_str(&top.shared_event_id, "sharedEventID")?;
            check.required_object(&top.insight_details, "insightDetails")?;
        }

        self.validate_user_identity(&check)?;
        check.optional_str(&top.source_ip_address, "sourceIPAddress")?;
        check.optional_str(&top.user_agent, "userAgent")?;
        check.optional_str(&top.error_code, "errorCode")?;
        check.optional_str(&top.error_message, "errorMessage")?;
        check.optional_object(&top.request_parameters, "requestParameters")?;
        check.optional_object(&top.response_elements, "responseElements")?;
        check.optional_object(&top.additional_event_data, "additionalEventData")?;
        check.optional_str(&top.request_id, "requestID")?;
        check.optional_flag(&top.read_only, "readOnly")?;
        self.validate_resources(&check)?;
        check.optional_str(&top.api_version, "apiVersion")?;
        check.optional_flag(&top.management_event, "managementEvent")?;
        check.optional_str(&top.shared_event_id, "sharedEventID")?;
        check.optional_str(&top.vpc_endpoint_id, "vpcEndpointId")?;
        check.optional_str(&top.vpc_endpoint_account_id, "vpcEndpointAccountId")?;
        if check.optional_str(&top.event_category, "eventCategory")? == Some("") {
            return Err(EventError::invalid("eventCategory", "must not be empty"));
        }
        check.optional_object(&top.addendum, "addendum")?;
        check.optional_flag(
            &top.session_credential_from_console,
            "sessionCredentialFromConsole",
        )?;
        check.optional_object(&top.edge_device_details, "edgeDeviceDetails")?;
        check.optional_object(&top.tls_details, "tlsDetails")?;
        check.optional_object(&top.insight_details, "insightDetails")?;
        check.optional_object(&top.service_event_details, "serviceEventDetails")?;
        Ok(())
    }

    fn validate_user_identity(&self, check: &Checker<'_>) -> Result<(), EventError> {
        let fields = self.fields();
        let identity = &fields.identity;
        check.optional_str(&identity.identity_type, "userIdentity.type")?;
        check.optional_str(&identity.principal_id, "userIdentity.principalId")?;
        check.optional_str(&identity.arn, "userIdentity.arn")?;
        check.optional_str(&identity.account_id, "userIdentity.accountId")?;
        check.optional_str(&identity.access_key_id, "userIdentity.accessKeyId")?;
        check.optional_str(&identity.user_name, "userIdentity.userName")?;
        check.optional_str(&identity.invoked_by, "userIdentity.invokedBy")?;
        check.optional_str(&identity.credential_id, "userIdentity.credentialId")?;
        check.optional_str(&identity.identity_provider, "userIdentity.identityProvider")?;
        check.optional_object(&identity.session_context, "userIdentity.sessionContext")?;

        let context = &fields.session_context;
        check.optional_object(
            &context.session_issuer,
            "userIdentity.sessionContext.sessionIssuer",
        )?;
        check.optional_str(
            &context.source_identity,
            "userIdentity.sessionContext.sourceIdentity",
        )?;

        let issuer = &fields.issuer;
        check.optional_str(
            &issuer.issuer_type,
            "userIdentity.sessionContext.sessionIssuer.type",
        )?;
        check.optional_str(
            &issuer.principal_id,
            "userIdentity.sessionContext.sessionIssuer.principalId",
        )?;
        check.optional_str(&issuer.arn, "userIdentity.sessionContext.sessionIssuer.arn")?;
        check.optional_str(
            &issuer.account_id,
            "userIdentity.sessionContext.sessionIssuer.accountId",
        )?;
        check.optional_str(
            &issuer.user_name,
            "userIdentity.sessionContext.sessionIssuer.userName",
        )?;
        Ok(())
    }

    fn validate_resources(&self, check: &Checker<'_>) -> Result<(), EventError> {
        let slot = &self.fields().top.resources;
        match slot.kind() {
            None | Some(JsonKind::Array) => {}
            Some(kind) => {
                return Err(EventError::invalid(
                    "resources",
                    format!("must be an array, got {}", kind.name()),
                ))
            }
        }
        for (index, entry) in self.fields().resources.iter().enumerate() {
            let slots = match entry {
                ResourceEntry::Object(slots) => slots,
                ResourceEntry::NotAnObject(kind) => {
                    let kind = kind.map_or("null", JsonKind::name);
                    return Err(EventError::invalid(
                        "resources",
                        format!("element {index} must be an object, got {kind}"),
                    ));
                }
            };
            let in_element = |error: EventError| match error {
                EventError::InvalidField { field, reason } => EventError::InvalidField {
                    field,
                    reason: format!("element {index}: {reason}"),
                },
                other => other,
            };
            check
                .optional_str(&slots.arn, "resources.ARN")
                .map_err(in_element)?;
            check
                .optional_str(&slots.arn_prefix, "resources.ARNPrefix")
                .map_err(in_element)?;
            check
                .optional_str(&slots.account_id, "resources.accountId")
                .map_err(in_element)?;
            check
                .optional_str(&slots.resource_type, "resources.type")
                .map_err(in_element)?;
        }
        Ok(())
    }
}

/// Type checks of single fields against the record's text.
struct Checker<'a> {
    source: Source<'a>,
}

impl<'a> Checker<'a> {
    /// A present, non-empty string.
    fn required_str(&self, slot: &'a Slot, field: &'static str) -> Result<&'a str, EventError> {
        if slot.is_absent() {
            return Err(EventError::MissingField { field });
        }
        match self.optional_str(slot, field)? {
            Some("") => Err(EventError::invalid(field, "must not be empty")),
            Some(text) => Ok(text),
            None => Err(EventError::MissingField { field }),
        }
    }

    /// A string when present (`null` counts as absent).
    fn optional_str(
        &self,
        slot: &'a Slot,
        field: &'static str,
    ) -> Result<Option<&'a str>, EventError> {
        match slot.kind() {
            None => Ok(None),
            Some(JsonKind::String) => match slot.as_str(self.source) {
                Some(text) => Ok(Some(text)),
                None => Err(EventError::invalid(
                    field,
                    "string escapes do not decode to unicode text",
                )),
            },
            Some(kind) => Err(wrong_type(field, "a string", kind)),
        }
    }

    /// [`Self::required_str`] in records of eventVersion `1.<since>` and later (`minor`
    /// is the record's); before, a non-empty string when present.
    fn required_since(
        &self,
        minor: u32,
        since: u32,
        slot: &'a Slot,
        field: &'static str,
    ) -> Result<(), EventError> {
        if minor >= since {
            return self.required_str(slot, field).map(drop);
        }
        match self.optional_str(slot, field)? {
            Some("") => Err(EventError::invalid(field, "must not be empty")),
            _ => Ok(()),
        }
    }

    fn required_object(&self, slot: &Slot, field: &'static str) -> Result<(), EventError> {
        if slot.is_absent() {
            return Err(EventError::MissingField { field });
        }
        self.optional_object(slot, field)
    }

    /// An object when present (`null` counts as absent).
    fn optional_object(&self, slot: &Slot, field: &'static str) -> Result<(), EventError> {
        match slot.kind() {
            None | Some(JsonKind::Object) => Ok(()),
            Some(kind) => Err(wrong_type(field, "an object", kind)),
        }
    }

    /// A boolean, or the string `"true"` or `"false"`, when present.
    fn optional_flag(&self, slot: &Slot, field: &'static str) -> Result<(), EventError> {
        if slot.is_absent() || slot.as_flag(self.source).is_some() {
            return Ok(());
        }
        Err(EventError::invalid(
            field,
            "must be true or false (a boolean or a string)",
        ))
    }
}

fn wrong_type(field: &'static str, expected: &str, kind: JsonKind) -> EventError {
    EventError::invalid(field, format!("must be {expected}, got {}", kind.name()))
}

/// A value for an error message, cut short so a huge field cannot bloat the message.
fn quoted(value: &str) -> String {
    const LIMIT: usize = 64;
    if value.len() <= LIMIT {
        return format!("{value:?}");
    }
    let mut end = LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_window() {
        let at = |text: &str| super::super::event_time::parse_event_time(text).unwrap();
        let now = at("2026-12-02T12:00:00Z");
        for good in [
            EARLIEST_EVENT_TIME,
            "2014-05-05T10:00:00Z",
            "2026-12-02T12:00:00Z",
            "2026-12-03T12:00:00Z",
        ] {
            assert_eq!(check_event_time(at(good), now), Ok(()), "{good}");
        }
        for bad in [
            "2013-10-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2026-12-03T12:00:01Z",
            "2117-01-01T00:00:00Z",
        ] {
            let error = check_event_time(at(bad), now).unwrap_err();
            assert_eq!(error.code(), "EventTimeOutOfRange");
            assert_eq!(error.field(), Some("eventTime"));
            assert!(error.to_string().contains(bad), "{error}");
            assert!(
                error.to_string().contains("2026-12-03T12:00:00Z"),
                "{error}"
            );
        }
    }

    #[test]
    fn quoting_cuts_long_values_on_char_boundaries() {
        assert_eq!(quoted("abc"), "\"abc\"");
        let long = "é".repeat(100);
        let message = quoted(&long);
        assert!(message.ends_with("..."));
        assert!(message.len() < 80);
    }
}
