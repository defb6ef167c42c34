//! One CloudTrail event record: the exact JSON text it arrived as, and the fields
//! OpenTrail reads, indexed once when the record is parsed.

use super::error::EventError;
use super::identity::{Resource, SessionIssuer, UserIdentity};
use super::parse::{Fields, ResourceEntry};
use super::slot::{Slot, Source};
use bytes::Bytes;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A CloudTrail event record.
///
/// The record owns the exact JSON text it was parsed from and writes back exactly that
/// text (key order, whitespace inside the object, unknown fields, number spelling and
/// escapes are all kept). Typed accessors read an index built at parse time; strings
/// without escapes are not copied. Cloning is cheap (a reference count).
///
/// Accessors for fields every valid record has (`eventSource`, ...) return `""` when the
/// field is absent or not a string; [`EventRecord::validate`] rejects such records.
/// `eventID`, `eventType` and `recipientAccountId`, which records of early eventVersions
/// lack, are derived for them (see each accessor). Accessors for optional fields return `None` when the field is absent, `null`
/// or of the wrong type.
#[derive(Clone)]
pub struct EventRecord {
    inner: Arc<Indexed>,
}

struct Indexed {
    /// One JSON object, checked by [`Fields::parse`] when the record was made: owned, or
    /// a slice of a larger text it shares (a request body).
    json: ByteString,
    fields: Fields,
}

/// Field positions are stored as u32 offsets; validation's limit is far lower.
fn check_size(size: usize) -> Result<(), EventError> {
    if u32::try_from(size).is_err() {
        return Err(EventError::RecordTooLarge {
            size,
            limit: u32::MAX as usize,
        });
    }
    Ok(())
}

/// A record parsed over text it does not own ([`EventRecord::parse_borrowed`]).
pub struct RecordRef<'a> {
    json: &'a str,
    fields: Fields,
}

impl<'a> RecordRef<'a> {
    /// The record's JSON text.
    pub fn json(&self) -> &'a str {
        self.json
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.fields
    }

    fn text(&self, slot: &Slot) -> &str {
        slot.as_str(self.fields.source(self.json)).unwrap_or("")
    }

    /// [`EventRecord::event_id`] of this record.
    pub fn event_id(&self) -> &str {
        self.fields.event_id(self.json)
    }

    /// [`EventRecord::recipient_account_id`] of this record.
    pub fn recipient_account_id(&self) -> &str {
        self.fields.recipient_account_id(self.json)
    }

    /// `awsRegion` (`""` when absent or not a string).
    pub fn aws_region(&self) -> &str {
        self.text(&self.fields.top.aws_region)
    }

    /// `eventSource` (`""` when absent or not a string).
    pub fn event_source(&self) -> &str {
        self.text(&self.fields.top.event_source)
    }

    /// [`EventRecord::event_type`] of this record.
    pub fn event_type(&self) -> &str {
        self.fields.event_type(self.json)
    }

    /// `eventTime`, when it has CloudTrail's `YYYY-MM-DDTHH:MM:SSZ` form.
    pub fn event_time(&self) -> Option<DateTime<Utc>> {
        self.fields.event_time
    }

    /// [`EventRecord::event_category`] of this record.
    pub fn event_category(&self) -> &str {
        let recorded = self.text(&self.fields.top.event_category);
        if !recorded.is_empty() {
            return recorded;
        }
        match self.event_type() {
            "AwsCloudTrailInsight" => "Insight",
            "AwsVpceEvent" => "NetworkActivity",
            _ if self.recorded_management_event() == Some(false) => "Data",
            _ => "Management",
        }
    }

    /// `managementEvent` as recorded (a boolean, or the string `"true"`/`"false"`).
    pub fn recorded_management_event(&self) -> Option<bool> {
        self.fields
            .top
            .management_event
            .as_flag(self.fields.source(self.json))
    }

    /// [`EventRecord::management_event`] of this record.
    pub fn management_event(&self) -> bool {
        match self.recorded_management_event() {
            Some(recorded) => recorded,
            None => self.event_category() == "Management",
        }
    }

    /// A record owning a copy of the text, with the same index.
    pub fn to_record(&self) -> EventRecord {
        self.with_text(ByteString::from(self.json))
    }

    /// A record sharing its text with `whole`, the text this record was parsed from a
    /// part of (without copying it; a copy if the record's text is not part of `whole`).
    pub fn to_record_within(&self, whole: &ByteString) -> EventRecord {
        let (start, len) = (whole.as_ptr() as usize, whole.len());
        let at = self.json.as_ptr() as usize;
        if at >= start && at - start + self.json.len() <= len {
            self.with_text(whole.slice_ref(self.json))
        } else {
            self.to_record()
        }
    }

    fn with_text(&self, json: ByteString) -> EventRecord {
        debug_assert_eq!(&*json, self.json);
        EventRecord {
            inner: Arc::new(Indexed {
                json,
                fields: self.fields.clone(),
            }),
        }
    }
}

/// JSON's insignificant whitespace, which a record's text does not keep around itself.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

impl EventRecord {
    /// Parses one record. Whitespace around the object is dropped; everything inside
    /// is kept byte for byte. The text is read once: indexing the fields also checks
    /// that it is exactly one well-formed JSON object.
    pub fn from_json(json: &str) -> Result<Self, EventError> {
        Self::from_text(json.trim_matches(JSON_WHITESPACE).into())
    }

    /// Parses one record from UTF-8 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        let json = std::str::from_utf8(bytes)
            .map_err(|error| EventError::malformed(format!("record is not utf-8: {error}")))?;
        Self::from_json(json)
    }

    /// Indexes an already parsed JSON value, which must be an object.
    pub fn from_raw_value(json: Box<RawValue>) -> Result<Self, EventError> {
        Self::from_text(json.into())
    }

    /// Indexes `json` (one JSON object, whitespace around it dropped) without copying
    /// it: for checking records that may not be kept. [`RecordRef::to_record`] keeps one.
    pub fn parse_borrowed(json: &str) -> Result<RecordRef<'_>, EventError> {
        let json = json.trim_matches(JSON_WHITESPACE);
        check_size(json.len())?;
        let fields = Fields::parse(json)?;
        Ok(RecordRef { json, fields })
    }

    /// [`EventRecord::parse_borrowed`] of the object at the start of `text`, which may go
    /// on after it; also returns the object's length.
    pub(crate) fn parse_leading_borrowed(text: &str) -> Result<(RecordRef<'_>, usize), EventError> {
        check_size(text.len())?;
        let (fields, end) = Fields::parse_leading(text)?;
        Ok((
            RecordRef {
                json: &text[..end],
                fields,
            },
            end,
        ))
    }

    fn from_text(json: Box<str>) -> Result<Self, EventError> {
        check_size(json.len())?;
        let fields = Fields::parse(&json)?;
        Ok(Self {
            inner: Arc::new(Indexed {
                json: ByteString::from(String::from(json)),
                fields,
            }),
        })
    }

    /// The record's JSON text, exactly as parsed.
    pub fn json(&self) -> &str {
        &self.inner.json
    }

    /// The record's JSON text as shared bytes (no copy).
    pub fn text_bytes(&self) -> Bytes {
        self.inner.json.as_bytes().clone()
    }

    /// The record's JSON text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.json().as_bytes()
    }

    /// The length of the record's JSON text in bytes.
    pub fn byte_len(&self) -> usize {
        self.json().len()
    }

    pub(crate) fn fields(&self) -> &Fields {
        &self.inner.fields
    }

    /// About the memory the record's index takes beside its text, for memory budgets.
    pub fn index_bytes(&self) -> usize {
        std::mem::size_of::<Indexed>() + self.fields().heap_bytes()
    }

    fn text<'a>(&'a self, slot: &Slot) -> Option<&'a str> {
        slot.as_str(self.source())
    }

    fn source(&self) -> Source<'_> {
        self.fields().source(self.json())
    }

    fn required_text<'a>(&'a self, slot: &'a Slot) -> &'a str {
        self.text(slot).unwrap_or("")
    }

    fn object(&self, slot: &Slot) -> Option<&str> {
        slot.object_json(self.json())
    }

    /// `eventVersion`, e.g. `"1.08"`.
    pub fn event_version(&self) -> &str {
        self.required_text(&self.fields().top.event_version)
    }

    /// `userIdentity`'s string fields.
    pub fn user_identity(&self) -> UserIdentity<'_> {
        let fields = self.fields();
        let identity = &fields.identity;
        let issuer = &fields.issuer;
        let session_issuer = fields
            .session_context
            .session_issuer
            .object_json(self.json())
            .map(|_| SessionIssuer {
                issuer_type: self.text(&issuer.issuer_type),
                principal_id: self.text(&issuer.principal_id),
                arn: self.text(&issuer.arn),
                account_id: self.text(&issuer.account_id),
                user_name: self.text(&issuer.user_name),
            });
        UserIdentity {
            identity_type: self.text(&identity.identity_type),
            principal_id: self.text(&identity.principal_id),
            arn: self.text(&identity.arn),
            account_id: self.text(&identity.account_id),
            access_key_id: self.text(&identity.access_key_id),
            user_name: self.text(&identity.user_name),
            invoked_by: self.text(&identity.invoked_by),
            credential_id: self.text(&identity.credential_id),
            identity_provider: self.text(&identity.identity_provider),
            source_identity: self.text(&fields.session_context.source_identity),
            session_issuer,
        }
    }

    /// The JSON text of `userIdentity`, when it is an object.
    pub fn user_identity_json(&self) -> Option<&str> {
        self.object(&self.fields().top.user_identity)
    }

    /// `eventTime`, when it has CloudTrail's `YYYY-MM-DDTHH:MM:SSZ` form.
    pub fn event_time(&self) -> Option<DateTime<Utc>> {
        self.fields().event_time
    }

    /// `eventTime` as written.
    pub fn event_time_text(&self) -> &str {
        self.required_text(&self.fields().top.event_time)
    }

    /// `eventSource`, e.g. `"s3.amazonaws.com"`.
    pub fn event_source(&self) -> &str {
        self.required_text(&self.fields().top.event_source)
    }

    /// `eventName`, e.g. `"PutObject"`.
    pub fn event_name(&self) -> &str {
        self.required_text(&self.fields().top.event_name)
    }

    /// `awsRegion`.
    pub fn aws_region(&self) -> &str {
        self.required_text(&self.fields().top.aws_region)
    }

    /// `sourceIPAddress` (an address, or a service name such as `"AWS Internal"`).
    pub fn source_ip_address(&self) -> Option<&str> {
        self.text(&self.fields().top.source_ip_address)
    }

    /// `userAgent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.text(&self.fields().top.user_agent)
    }

    /// `errorCode`, present when the request failed.
    pub fn error_code(&self) -> Option<&str> {
        self.text(&self.fields().top.error_code)
    }

    /// `errorMessage`.
    pub fn error_message(&self) -> Option<&str> {
        self.text(&self.fields().top.error_message)
    }

    /// The JSON text of `requestParameters`, when it is an object.
    pub fn request_parameters_json(&self) -> Option<&str> {
        self.object(&self.fields().top.request_parameters)
    }

    /// The JSON text of `responseElements`, when it is an object.
    pub fn response_elements_json(&self) -> Option<&str> {
        self.object(&self.fields().top.response_elements)
    }

    /// The JSON text of `additionalEventData`, when it is an object.
    pub fn additional_event_data_json(&self) -> Option<&str> {
        self.object(&self.fields().top.additional_event_data)
    }

    /// `requestID`.
    pub fn request_id(&self) -> Option<&str> {
        self.text(&self.fields().top.request_id)
    }

    /// `eventID`, the GUID that identifies the event (duplicates are redeliveries). A
    /// record before eventVersion 1.01 has none: its id is derived from its JSON value
    /// (the same for every copy of the record), a UUID of version 8.
    pub fn event_id(&self) -> &str {
        self.fields().event_id(self.json())
    }

    /// `eventID` as recorded, `None` when the record has none (or not a string).
    pub fn recorded_event_id(&self) -> Option<&str> {
        self.text(&self.fields().top.event_id)
    }

    /// `readOnly`, written by most services as a boolean and by some as the string
    /// `"true"` or `"false"`.
    pub fn read_only(&self) -> Option<bool> {
        self.fields().top.read_only.as_flag(self.source())
    }

    /// The object elements of `resources`, in order.
    pub fn resources(&self) -> impl Iterator<Item = Resource<'_>> + '_ {
        self.fields()
            .resources
            .iter()
            .filter_map(move |entry| match entry {
                ResourceEntry::Object(slots) => Some(Resource {
                    arn: self.text(&slots.arn),
                    arn_prefix: self.text(&slots.arn_prefix),
                    account_id: self.text(&slots.account_id),
                    resource_type: self.text(&slots.resource_type),
                }),
                ResourceEntry::NotAnObject(_) => None,
            })
    }

    /// `eventType`, e.g. `"AwsApiCall"`. Records before eventVersion 1.02 predate it:
    /// theirs is `AwsConsoleSignIn` for events of `signin.amazonaws.com`, else `AwsApiCall`.
    pub fn event_type(&self) -> &str {
        self.fields().event_type(self.json())
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> Option<&str> {
        self.text(&self.fields().top.api_version)
    }

    /// `managementEvent` as recorded (a boolean, or the string `"true"`/`"false"`).
    pub fn recorded_management_event(&self) -> Option<bool> {
        self.fields().top.management_event.as_flag(self.source())
    }

    /// Whether this is a management event: `managementEvent` when recorded, otherwise
    /// whether [`event_category`](Self::event_category) is `Management`.
    pub fn management_event(&self) -> bool {
        match self.recorded_management_event() {
            Some(recorded) => recorded,
            None => self.event_category() == "Management",
        }
    }

    /// `recipientAccountId`, the account that receives the event. When the record has none
    /// (optional at every eventVersion), `userIdentity.accountId` of an identity of the
    /// account itself (not of type `AWSAccount` or `AWSService`); else `""`.
    pub fn recipient_account_id(&self) -> &str {
        self.fields().recipient_account_id(self.json())
    }

    /// `recipientAccountId` as recorded, `None` when absent (or not a string).
    pub fn recorded_recipient_account_id(&self) -> Option<&str> {
        self.text(&self.fields().top.recipient_account_id)
    }

    /// `sharedEventID`, common to the copies of an event delivered to several accounts.
    pub fn shared_event_id(&self) -> Option<&str> {
        self.text(&self.fields().top.shared_event_id)
    }

    /// `insightSource` of an Insights event of an event data store: the source store's
    /// ARN (such events go to its Insights destination store only). `None` for other
    /// events, trails' Insights events included. Read on demand: Insights events are rare.
    pub fn insight_source(&self) -> Option<String> {
        if self.event_category() != "Insight" || !self.json().contains("\"insightSource\"") {
            return None;
        }
        #[derive(serde::Deserialize)]
        struct Source {
            #[serde(rename = "insightSource")]
            insight_source: Option<String>,
        }
        serde_json::from_str::<Source>(self.json())
            .ok()
            .and_then(|source| source.insight_source)
    }

    /// `vpcEndpointId`.
    pub fn vpc_endpoint_id(&self) -> Option<&str> {
        self.text(&self.fields().top.vpc_endpoint_id)
    }

    /// `vpcEndpointAccountId`.
    pub fn vpc_endpoint_account_id(&self) -> Option<&str> {
        self.text(&self.fields().top.vpc_endpoint_account_id)
    }

    /// `eventCategory` as recorded (eventVersion 1.07 and later); `None` when absent or empty.
    pub fn recorded_event_category(&self) -> Option<&str> {
        self.text(&self.fields().top.event_category)
            .filter(|category| !category.is_empty())
    }

    /// `eventCategory`, derived when the record predates the field: `Insight` for
    /// `AwsCloudTrailInsight` events, `NetworkActivity` for `AwsVpceEvent` events,
    /// `Data` when `managementEvent` is false, otherwise `Management`.
    pub fn event_category(&self) -> &str {
        if let Some(category) = self.recorded_event_category() {
            return category;
        }
        match self.event_type() {
            "AwsCloudTrailInsight" => "Insight",
            "AwsVpceEvent" => "NetworkActivity",
            _ if self.recorded_management_event() == Some(false) => "Data",
            _ => "Management",
        }
    }

    /// The JSON text of `addendum`, when it is an object.
    pub fn addendum_json(&self) -> Option<&str> {
        self.object(&self.fields().top.addendum)
    }

    /// `sessionCredentialFromConsole`, recorded as the string `"true"` (a boolean is
    /// accepted too).
    pub fn session_credential_from_console(&self) -> Option<bool> {
        self.fields()
            .top
            .session_credential_from_console
            .as_flag(self.source())
    }

    /// The JSON text of `edgeDeviceDetails`, when it is an object.
    pub fn edge_device_details_json(&self) -> Option<&str> {
        self.object(&self.fields().top.edge_device_details)
    }

    /// The JSON text of `tlsDetails`, when it is an object.
    pub fn tls_details_json(&self) -> Option<&str> {
        self.object(&self.fields().top.tls_details)
    }

    /// The JSON text of `insightDetails`, when it is an object.
    pub fn insight_details_json(&self) -> Option<&str> {
        self.object(&self.fields().top.insight_details)
    }

    /// The JSON text of `serviceEventDetails`, when it is an object.
    pub fn service_event_details_json(&self) -> Option<&str> {
        self.object(&self.fields().top.service_event_details)
    }
}

impl PartialEq for EventRecord {
    /// Records are equal when their JSON text is byte-identical.
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Eq for EventRecord {}

impl Hash for EventRecord {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.json().hash(state);
    }
}

/// The record's exact JSON text, e.g. to share it as `Bytes` without copying.
impl AsRef<[u8]> for EventRecord {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRecord")
            .field("event_id", &self.event_id())
            .field("event_source", &self.event_source())
            .field("event_name", &self.event_name())
            .field("bytes", &self.byte_len())
            .finish()
    }
}

impl Serialize for EventRecord {
    /// Embeds the record's exact JSON text (serde_json serializers only).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json embeds a RawValue verbatim; making one checks the text again, which
        // only serialising pays for.
        let raw =
            RawValue::from_string(self.json().to_owned()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventRecord {
    /// Keeps the record's exact JSON text (serde_json deserializers only).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<RawValue>::deserialize(deserializer)?;
        Self::from_raw_value(json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"Root"},"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","eventID":"e1","eventType":"AwsApiCall","recipientAccountId":"123456789012"}"#;

    #[test]
    fn a_record_within_a_larger_text_shares_it_and_one_outside_is_copied() {
        let body = ByteString::from(format!(r#"{{"Records":[{RECORD}]}}"#));
        let start = body.find(RECORD).unwrap();
        let part = &body[start..start + RECORD.len()];
        let parsed = EventRecord::parse_borrowed(part).unwrap();
        let shared = parsed.to_record_within(&body);
        assert_eq!(shared.json(), RECORD);
        assert_eq!(shared.json().as_ptr(), part.as_ptr(), "no copy");
        assert_eq!(shared.text_bytes(), RECORD.as_bytes());
        assert_eq!(shared.event_name(), "ListBuckets");

        let elsewhere = ByteString::from(RECORD);
        let copied = parsed.to_record_within(&elsewhere);
        assert_eq!(copied.json(), RECORD);
        assert_ne!(copied.json().as_ptr(), part.as_ptr());
        assert_ne!(copied.json().as_ptr(), elsewhere.as_ptr());
        assert_eq!(copied, shared);
        assert!(shared.index_bytes() >= std::mem::size_of::<Indexed>());
    }
}
