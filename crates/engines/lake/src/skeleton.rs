//! The record text, stored without what the typed columns already hold.
//!
//! Each file row keeps its record's exact text in `eventjsonskeleton`, except that the value
//! of a top-level member whose typed column reproduces it byte for byte (`"eventID":"…"`,
//! `"eventTime":"2024-03-21T00:00:01Z"`, `"readOnly":true`, `"requestParameters":{…}` from
//! its map column, `"userIdentity":{…}`, `"resources":[…]` and `"tlsDetails":{…}` from their
//! structs, …) is replaced by two bytes: NUL and the marker's number ([`ELIDED`], then
//! [`ALTERNATIVES`]). Neither byte can occur in JSON text, so the markers are unambiguous,
//! and a value is elided only when the column's value written back
//! ([`ElidedColumns::write_json`]) equals the record's own bytes: [`rebuild`] gives back the
//! record text exactly, whatever its key order, spacing, escapes or unknown fields. Objects
//! are written back with their members in the order CloudTrail writes them ([`LAYOUTS`]; a
//! record with another order, spelling or an unknown member keeps its object as it is).
//! Queries see `eventjson` rebuilt and `eventjsonchecksum` computed from it; files written
//! before this layout still hold both and are read as they are.
//!
//! Why: the record text is most of a row (≈ 1,370 bytes a record in the reference set), and
//! its identifiers (`eventID`, `requestID`), times, addresses and ARNs are the parts zstd
//! cannot fold. Left to their typed columns, what remains of a record is its keys (≈ 340
//! bytes), which repeat from record to record: a few hundred distinct skeletons in a file
//! of ~10,000 rows, stored once each in the column's dictionary. See the lake-bench README
//! for the measurements.

use crate::json::{top_level_members, Member};
use chrono::DateTime;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, StringArray, StringBuilder,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};

/// The top-level columns whose values a skeleton may leave out, in marker order (marker
/// byte = index + 1; [`ALTERNATIVES`] follow): scalars, maps, and the objects (and list of
/// objects) CloudTrail writes with a fixed member order ([`LAYOUTS`]).
pub(crate) const ELIDED: [&str; 28] = [
    "eventversion",
    "eventtime",
    "eventsource",
    "eventname",
    "awsregion",
    "sourceipaddress",
    "useragent",
    "errorcode",
    "errormessage",
    "requestid",
    "eventid",
    "readonly",
    "eventtype",
    "apiversion",
    "managementevent",
    "recipientaccountid",
    "sharedeventid",
    "vpcendpointid",
    "vpcendpointaccountid",
    "eventcategory",
    "sessioncredentialfromconsole",
    "requestparameters",
    "responseelements",
    "additionaleventdata",
    "serviceeventdetails",
    "useridentity",
    "resources",
    "tlsdetails",
];

/// The [`ELIDED`] column `key` names, ignoring case. CloudTrail's own spelling is matched
/// first by one `match` (what nearly every key is); others by comparing with each name.
fn elided_index(key: &str) -> Option<usize> {
    let index = match key {
        "eventVersion" => 0,
        "eventTime" => 1,
        "eventSource" => 2,
        "eventName" => 3,
        "awsRegion" => 4,
        "sourceIPAddress" => 5,
        "userAgent" => 6,
        "errorCode" => 7,
        "errorMessage" => 8,
        "requestID" => 9,
        "eventID" => 10,
        "readOnly" => 11,
        "eventType" => 12,
        "apiVersion" => 13,
        "managementEvent" => 14,
        "recipientAccountId" => 15,
        "sharedEventID" => 16,
        "vpcEndpointId" => 17,
        "vpcEndpointAccountId" => 18,
        "eventCategory" => 19,
        "sessionCredentialFromConsole" => 20,
        "requestParameters" => 21,
        "responseElements" => 22,
        "additionalEventData" => 23,
        "serviceEventDetails" => 24,
        "userIdentity" => 25,
        "resources" => 26,
        "tlsDetails" => 27,
        _ => {
            return ELIDED
                .iter()
                .position(|name| name.eq_ignore_ascii_case(key))
        }
    };
    Some(index)
}

/// The byte that starts a marker.
const MARK: u8 = 0;

/// A member of an object a skeleton may leave out whole: its key as CloudTrail spells it,
/// its column (a child of the object's struct), and the members of its value when that is
/// an object too.
struct Key {
    json: &'static str,
    column: &'static str,
    members: &'static [Key],
}

const fn key(json: &'static str, column: &'static str) -> Key {
    Key {
        json,
        column,
        members: &[],
    }
}

const fn object(json: &'static str, column: &'static str, members: &'static [Key]) -> Key {
    Key {
        json,
        column,
        members,
    }
}

/// `userIdentity` in the order CloudTrail writes its members (the conformance records and
/// the reference set: every identity type is a subsequence of it).
const USER_IDENTITY: &[Key] = &[
    key("type", "type"),
    key("principalId", "principalid"),
    key("arn", "arn"),
    key("accountId", "accountid"),
    key("accessKeyId", "accesskeyid"),
    key("userName", "username"),
    object(
        "sessionContext",
        "sessioncontext",
        &[
            object(
                "sessionIssuer",
                "sessionissuer",
                &[
                    key("type", "type"),
                    key("principalId", "principalid"),
                    key("arn", "arn"),
                    key("accountId", "accountid"),
                    key("userName", "username"),
                ],
            ),
            object(
                "webIdFederationData",
                "webidfederationdata",
                &[
                    key("federatedProvider", "federatedprovider"),
                    key("attributes", "attributes"),
                ],
            ),
            object(
                "attributes",
                "attributes",
                &[
                    key("creationDate", "creationdate"),
                    key("mfaAuthenticated", "mfaauthenticated"),
                ],
            ),
            key("ec2RoleDelivery", "ec2roledelivery"),
            key("sourceIdentity", "sourceidentity"),
            key("ec2IssuedInVPC", "ec2issuedinvpc"),
        ],
    ),
    key("invokedBy", "invokedby"),
    key("identityProvider", "identityprovider"),
    object(
        "onBehalfOf",
        "onbehalfof",
        &[
            key("userId", "userid"),
            key("identityStoreArn", "identitystorearn"),
        ],
    ),
    key("credentialId", "credentialid"),
    object(
        "inScopeOf",
        "inscopeof",
        &[
            key("sourceArn", "sourcearn"),
            key("sourceAccount", "sourceaccount"),
            key("issuerType", "issuertype"),
            key("credentialsIssuedTo", "credentialsissuedto"),
        ],
    ),
];

/// A `resources` entry as management events write it.
const RESOURCE_ACCOUNT_FIRST: &[Key] = &[
    key("accountId", "accountid"),
    key("type", "type"),
    key("ARN", "arn"),
];

/// A `resources` entry as data events write it.
const RESOURCE_TYPE_FIRST: &[Key] = &[
    key("type", "type"),
    key("ARN", "arn"),
    key("accountId", "accountid"),
];

const TLS_DETAILS: &[Key] = &[
    key("tlsVersion", "tlsversion"),
    key("cipherSuite", "ciphersuite"),
    key("clientProvidedHostHeader", "clientprovidedhostheader"),
];

/// The member layout of each [`ELIDED`] column that holds objects (an object, or a list of
/// them).
const LAYOUTS: [(&str, &[Key]); 3] = [
    ("useridentity", USER_IDENTITY),
    ("resources", RESOURCE_ACCOUNT_FIRST),
    ("tlsdetails", TLS_DETAILS),
];

/// Markers after [`ELIDED`]'s (marker byte = `ELIDED.len()` + 1 + index): another layout
/// of an [`ELIDED`] column.
const ALTERNATIVES: [(&str, &[Key]); 1] = [("resources", RESOURCE_TYPE_FIRST)];

/// The [`ELIDED`] column marker `marker` stands for, and its value's layout (empty for a
/// value that is not an object).
fn marker_column(marker: usize) -> Option<(usize, &'static [Key])> {
    let index = marker.checked_sub(1)?;
    let layout_of = |name: &str, layouts: &[(&str, &'static [Key])]| {
        layouts
            .iter()
            .find(|(column, _)| *column == name)
            .map(|(_, layout)| *layout)
    };
    if let Some(name) = ELIDED.get(index) {
        return Some((index, layout_of(name, &LAYOUTS).unwrap_or_default()));
    }
    let (name, layout) = ALTERNATIVES.get(index - ELIDED.len())?;
    Some((ELIDED.iter().position(|column| column == name)?, layout))
}

/// A [`Key`] found in a batch: how it is written, the nulls of its values, and the values.
struct Resolved<'a> {
    /// `,"key":` (without the comma for an object's first member).
    lead: String,
    nulls: Option<&'a NullBuffer>,
    value: Value<'a>,
}

impl Resolved<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.nulls.is_some_and(|nulls| nulls.is_null(row))
    }

    fn lead(&self, first: bool) -> &str {
        if first {
            &self.lead[1..]
        } else {
            &self.lead
        }
    }
}

/// How a member's value is written: text (most), another scalar or a map
/// ([`emit_value`]), or an object.
enum Value<'a> {
    Text(&'a StringArray),
    Other(&'a dyn Array),
    Object(Vec<Resolved<'a>>),
}

impl<'a> Value<'a> {
    /// The values of `array`: objects of `layout`'s members, or (no members) as they are.
    fn of(array: &'a dyn Array, layout: &'static [Key]) -> Option<Self> {
        Some(if !layout.is_empty() {
            Value::Object(resolve(array, layout)?)
        } else if let Some(texts) = array.as_string_opt::<i32>() {
            Value::Text(texts)
        } else {
            Value::Other(array)
        })
    }

    /// Row `row` (not null) as JSON.
    fn emit(&self, row: usize, sink: &mut impl Sink) -> bool {
        match self {
            Value::Text(texts) => sink.put_string(texts.value(row)),
            Value::Object(members) => emit_object(members, row, sink),
            Value::Other(array) => emit_value(*array, row, sink),
        }
    }
}

/// `layout` over the children of `array` (a struct): the keys whose column it has.
fn resolve<'a>(array: &'a dyn Array, layout: &'static [Key]) -> Option<Vec<Resolved<'a>>> {
    let fields = array.as_struct_opt()?;
    Some(
        layout
            .iter()
            .filter_map(|key| {
                let child = fields.column_by_name(key.column)?.as_ref();
                Some(Resolved {
                    lead: format!(",\"{}\":", key.json),
                    nulls: child.nulls(),
                    value: Value::of(child, key.members)?,
                })
            })
            .collect(),
    )
}

/// Where the JSON text the columns write goes: a buffer (rebuilding a record), or a record's
/// own text it is compared with as it is written ([`Matcher`], deciding what a skeleton
/// leaves out). Each `put` says whether the text still matches (a buffer always does).
trait Sink {
    /// `text` as it is.
    fn put(&mut self, text: &str) -> bool;
    /// One ASCII byte.
    fn put_byte(&mut self, byte: u8) -> bool;
    /// `text` as a JSON string ([`write_json_string`]).
    fn put_string(&mut self, text: &str) -> bool;
    /// A time as CloudTrail writes it ([`write_time`]).
    fn put_time(&mut self, millis: i64) -> bool;
}

impl Sink for String {
    fn put(&mut self, text: &str) -> bool {
        self.push_str(text);
        true
    }

    fn put_byte(&mut self, byte: u8) -> bool {
        self.push(char::from(byte));
        true
    }

    fn put_string(&mut self, text: &str) -> bool {
        write_json_string(text, self);
        true
    }

    fn put_time(&mut self, millis: i64) -> bool {
        write_time(millis, self)
    }
}

/// A record's text compared, from its start, with what the columns write: nothing is
/// copied but what needs writing first (escaped strings, times).
struct Matcher<'v, 's> {
    rest: &'v [u8],
    scratch: &'s mut String,
}

/// Whether `rest` starts with `bytes` (then taken off it).
fn take(rest: &mut &[u8], bytes: &[u8]) -> bool {
    match rest.strip_prefix(bytes) {
        Some(after) => {
            *rest = after;
            true
        }
        None => false,
    }
}

impl Sink for Matcher<'_, '_> {
    fn put(&mut self, text: &str) -> bool {
        take(&mut self.rest, text.as_bytes())
    }

    fn put_byte(&mut self, byte: u8) -> bool {
        take(&mut self.rest, &[byte])
    }

    fn put_string(&mut self, text: &str) -> bool {
        if plain(text.as_bytes()) {
            return self.put_byte(b'"') && self.put(text) && self.put_byte(b'"');
        }
        self.scratch.clear();
        write_json_string(text, self.scratch);
        take(&mut self.rest, self.scratch.as_bytes())
    }

    fn put_time(&mut self, millis: i64) -> bool {
        self.scratch.clear();
        write_time(millis, self.scratch) && take(&mut self.rest, self.scratch.as_bytes())
    }
}

/// How one marker's value is written.
enum Written<'a> {
    /// Each row one value (the column, for its nulls).
    One(&'a dyn Array, Value<'a>),
    /// Each row a list of objects of these members (the list, its entries' members).
    Objects(&'a datafusion::arrow::array::ListArray, Vec<Resolved<'a>>),
}

/// The [`ELIDED`] columns of a batch, as each marker writes them.
pub(crate) struct ElidedColumns<'a> {
    /// By marker byte - 1; None for a column this batch lacks or cannot write.
    markers: Vec<Option<Written<'a>>>,
    /// By [`ELIDED`] index: the markers that may stand for its value, in the order tried.
    tried: Vec<Vec<usize>>,
}

impl<'a> ElidedColumns<'a> {
    /// `columns` must be the arrays of the [`ELIDED`] columns, in that order.
    pub(crate) fn new(columns: Vec<&'a ArrayRef>) -> Self {
        let mut tried = vec![Vec::new(); ELIDED.len()];
        let markers = (1..=ELIDED.len() + ALTERNATIVES.len())
            .map(|marker| {
                let (index, layout) = marker_column(marker)?;
                let array: &'a dyn Array = columns.get(index).copied()?.as_ref();
                let written = match array.as_list_opt::<i32>() {
                    Some(list) if !layout.is_empty() => {
                        Written::Objects(list, resolve(list.values().as_ref(), layout)?)
                    }
                    _ => Written::One(array, Value::of(array, layout)?),
                };
                tried[index].push(marker);
                Some(written)
            })
            .collect();
        Self { markers, tried }
    }

    /// The [`ELIDED`] columns among `columns`, the arrays of `schema`'s fields in order.
    pub(crate) fn of(
        schema: &datafusion::arrow::datatypes::Schema,
        columns: &'a [ArrayRef],
    ) -> Result<Self, datafusion::arrow::error::ArrowError> {
        let columns = ELIDED
            .iter()
            .map(|name| {
                let index = schema.index_of(name)?;
                columns.get(index).ok_or_else(|| {
                    datafusion::arrow::error::ArrowError::SchemaError(format!(
                        "no array for column {name}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(columns))
    }

    /// Whether the value marker `marker` stands for at `row`, written as JSON
    /// ([`Self::write_json`]), is `value`. A string without escapes is compared as it is:
    /// written back it would differ exactly when the column's text differs. `scratch` is
    /// scratch space.
    fn reproduces(&self, marker: usize, row: usize, value: &str, scratch: &mut String) -> bool {
        if let (Some(Some(Written::One(_, Value::Text(texts)))), Some(inner)) = (
            self.markers.get(marker - 1),
            value
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"')),
        ) {
            if plain(inner.as_bytes()) {
                return texts.is_valid(row) && inner == texts.value(row);
            }
        }
        let mut matcher = Matcher {
            rest: value.as_bytes(),
            scratch,
        };
        self.emit(marker, row, &mut matcher) && matcher.rest.is_empty()
    }

    /// Appends the JSON text marker `marker` stands for at `row`, as CloudTrail writes it:
    /// strings with serde_json's escaping, booleans bare, times as `YYYY-MM-DDTHH:MM:SSZ`
    /// (milliseconds only when there are any), objects with their members in their layout's
    /// order, leaving out null members. False (and `out` holding part of it) for a null, a
    /// type this layout does not elide, or a marker it does not know.
    pub(crate) fn write_json(&self, marker: usize, row: usize, out: &mut String) -> bool {
        self.emit(marker, row, out)
    }

    /// [`Self::write_json`] into any [`Sink`].
    fn emit(&self, marker: usize, row: usize, sink: &mut impl Sink) -> bool {
        let Some(Some(written)) = marker.checked_sub(1).and_then(|at| self.markers.get(at)) else {
            return false;
        };
        match written {
            Written::One(array, value) => array.is_valid(row) && value.emit(row, sink),
            Written::Objects(list, members) => {
                list.is_valid(row) && emit_objects(list, members, row, sink)
            }
        }
    }
}

/// Row `row` of `array` (not null) as JSON; false for a type no layout elides.
fn emit_value(array: &dyn Array, row: usize, sink: &mut impl Sink) -> bool {
    match array.data_type() {
        DataType::Utf8 => sink.put_string(array.as_string::<i32>().value(row)),
        // As queries read the string columns (`events_scan_schema`).
        DataType::Utf8View => sink.put_string(array.as_string_view().value(row)),
        DataType::Boolean => {
            let flags: &BooleanArray = array.as_boolean();
            sink.put(if flags.value(row) { "true" } else { "false" })
        }
        DataType::Timestamp(TimeUnit::Millisecond, None) => {
            sink.put_time(array.as_primitive::<TimestampMillisecondType>().value(row))
        }
        DataType::Map(_, _) => emit_map(array.as_map(), row, sink),
        _ => false,
    }
}

/// Row `row` of an object's `members` (its struct not null there) as JSON.
fn emit_object(members: &[Resolved<'_>], row: usize, sink: &mut impl Sink) -> bool {
    if !sink.put_byte(b'{') {
        return false;
    }
    let mut first = true;
    for member in members {
        if member.is_null(row) {
            continue;
        }
        if !sink.put(member.lead(first)) {
            return false;
        }
        first = false;
        if !member.value.emit(row, sink) {
            return false;
        }
    }
    sink.put_byte(b'}')
}

/// Row `row` of `list` (not null), a list of objects of `members`, as JSON.
fn emit_objects(
    list: &datafusion::arrow::array::ListArray,
    members: &[Resolved<'_>],
    row: usize,
    sink: &mut impl Sink,
) -> bool {
    let offsets = list.value_offsets();
    let (Some(&start), Some(&end)) = (offsets.get(row), offsets.get(row + 1)) else {
        return false;
    };
    let entries = list.values();
    if !sink.put_byte(b'[') {
        return false;
    }
    for entry in start as usize..end as usize {
        if entry > start as usize && !sink.put_byte(b',') {
            return false;
        }
        let written = if entries.is_null(entry) {
            sink.put("null")
        } else {
            emit_object(members, entry, sink)
        };
        if !written {
            return false;
        }
    }
    sink.put_byte(b']')
}

/// A string as serde_json writes it: quoted; `"` and `\` escaped; `\b`, `\t`, `\n`,
/// `\f`, `\r` for those controls and `\u00xx` (lowercase hex) for the other bytes below
/// 0x20; everything else as it is.
fn write_json_string(text: &str, out: &mut String) {
    out.push('"');
    let bytes = text.as_bytes();
    if plain(bytes) {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut copied = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x09 => "\\t",
            0x0A => "\\n",
            0x0C => "\\f",
            0x0D => "\\r",
            0x00..=0x1F => "",
            _ => continue,
        };
        out.push_str(&text[copied..at]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        } else {
            out.push_str(escape);
        }
        copied = at + 1;
    }
    out.push_str(&text[copied..]);
    out.push('"');
}

/// Whether a string is written as it is (no byte needs an escape). Most values need none:
/// one pass without branches (it vectorises) says so.
fn plain(bytes: &[u8]) -> bool {
    !bytes.iter().fold(false, |escape, &byte| {
        escape | (byte < 0x20) | (byte == b'"') | (byte == b'\\')
    })
}

/// A time as CloudTrail writes `eventTime`: `"YYYY-MM-DDTHH:MM:SSZ"`, with `.sss` before
/// the `Z` only when there are milliseconds.
fn write_time(millis: i64, out: &mut String) -> bool {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let Some(time) = DateTime::from_timestamp_millis(millis) else {
        return false;
    };
    let fraction = millis.rem_euclid(1000);
    if let Ok(year) = u32::try_from(time.year()) {
        if year <= 9999 {
            // Digits written in place: `write!` was a tenth of rebuilding a record.
            let mut text = *b"\"0000-00-00T00:00:00.000Z\"";
            put_digits(&mut text[1..5], year);
            put_digits(&mut text[6..8], time.month());
            put_digits(&mut text[9..11], time.day());
            put_digits(&mut text[12..14], time.hour());
            put_digits(&mut text[15..17], time.minute());
            put_digits(&mut text[18..20], time.second());
            let text: &[u8] = if fraction == 0 {
                text[20..22].copy_from_slice(b"Z\"");
                &text[..22]
            } else {
                put_digits(&mut text[21..24], u32::try_from(fraction).unwrap_or(0));
                &text
            };
            // ASCII digits and punctuation only.
            out.push_str(std::str::from_utf8(text).unwrap_or_default());
            return true;
        }
    }
    let format = if fraction == 0 {
        "\"%Y-%m-%dT%H:%M:%SZ\""
    } else {
        "\"%Y-%m-%dT%H:%M:%S%.3fZ\""
    };
    let _ = write!(out, "{}", time.format(format));
    true
}

/// `value`'s last `digits.len()` decimal digits into `digits`.
fn put_digits(digits: &mut [u8], mut value: u32) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// A `map<string,string>` entry list as the JSON object it came from: keys as strings,
/// values that are JSON objects, arrays, numbers, booleans or null as they are, any other
/// value as a string. (A string that looks like one of those is written unquoted, so its
/// record keeps the member whole.)
/// Row `row` of `map` (not null) as JSON. Its entries are read in place: slicing the row
/// out (`MapArray::value`) allocates its arrays, which had been a third of this function.
fn emit_map(map: &datafusion::arrow::array::MapArray, row: usize, sink: &mut impl Sink) -> bool {
    let (Some(keys), Some(values)) = (
        map.keys().as_string_opt::<i32>(),
        map.values().as_string_opt::<i32>(),
    ) else {
        return false;
    };
    let offsets = map.value_offsets();
    let (Some(&start), Some(&end)) = (offsets.get(row), offsets.get(row + 1)) else {
        return false;
    };
    if !sink.put_byte(b'{') {
        return false;
    }
    for index in start as usize..end as usize {
        if index > start as usize && !sink.put_byte(b',') {
            return false;
        }
        if !(sink.put_string(keys.value(index)) && sink.put_byte(b':')) {
            return false;
        }
        let written = if values.is_null(index) {
            sink.put("null")
        } else {
            let value = values.value(index);
            if written_bare(value) {
                sink.put(value)
            } else {
                sink.put_string(value)
            }
        };
        if !written {
            return false;
        }
    }
    sink.put_byte(b'}')
}

/// Whether a map value is JSON text other than a string (how the writer keeps nested
/// values, numbers and booleans).
fn written_bare(value: &str) -> bool {
    match value.as_bytes().first() {
        Some(b'{' | b'[') => true,
        Some(b'-' | b'0'..=b'9') => value.parse::<f64>().is_ok(),
        _ => matches!(value, "true" | "false" | "null"),
    }
}

/// Appends the skeleton of record `json` (row `row` of `columns`) to `out`: the text with
/// each top-level scalar value its column reproduces replaced by a marker. `members` are
/// the record's top-level members ([`top_level_members`]; found here when None). A text
/// that is not a JSON object is kept whole. `written` is scratch space kept between calls.
pub(crate) fn skeleton_into(
    json: &str,
    members: Option<&[Member<'_>]>,
    columns: &ElidedColumns<'_>,
    row: usize,
    out: &mut String,
    written: &mut String,
) {
    let found;
    let members = match members {
        Some(members) => members,
        None => {
            found = top_level_members(json.as_bytes());
            &found
        }
    };
    let mut copied = 0;
    for member in members {
        let Some(index) = elided_index(member.key) else {
            continue;
        };
        let Some(value) = json.get(member.value.clone()) else {
            continue;
        };
        let Some(marker) = columns.tried[index]
            .iter()
            .copied()
            .find(|&marker| columns.reproduces(marker, row, value, written))
        else {
            continue;
        };
        out.push_str(&json[copied..member.value.start]);
        out.push(char::from(MARK));
        out.push(char::from(u8::try_from(marker).unwrap_or(u8::MAX)));
        copied = member.value.end;
    }
    out.push_str(&json[copied..]);
}

/// The record text of `skeleton`, each marker replaced by its column's value at `row`.
/// None if a marker names a column that has no value there (a damaged file).
#[cfg(test)]
pub(crate) fn rebuild(skeleton: &str, columns: &ElidedColumns<'_>, row: usize) -> Option<String> {
    let mut out = String::with_capacity(skeleton.len() + 256);
    rebuild_into(skeleton, columns, row, &mut out).then_some(out)
}

/// Appends the record text of `skeleton` (see [`rebuild`]) to `out`; false, with `out`
/// holding part of it, for a damaged skeleton.
fn rebuild_into(skeleton: &str, columns: &ElidedColumns<'_>, row: usize, out: &mut String) -> bool {
    let bytes = skeleton.as_bytes();
    let mut copied = 0;
    // A marker's second byte is never NUL (a NUL there is damage, refused below), so each
    // NUL found starts a marker after the last one.
    for mark in memchr::memchr_iter(MARK, bytes) {
        let Some(&marker) = bytes.get(mark + 1) else {
            return false;
        };
        out.push_str(&skeleton[copied..mark]);
        if !columns.write_json(usize::from(marker), row, out) {
            return false;
        }
        copied = mark + 2;
    }
    out.push_str(&skeleton[copied..]);
    true
}

/// What a rebuilt record text adds to its skeleton, about (the reference set: ~1,370-byte
/// records, ~340-byte skeletons): the first guess of the column's size.
const REBUILT_BYTES_PER_ROW: usize = 1024;

/// The `eventjson` column of rows whose text is a skeleton (`eventjson` null there) or
/// whole (older files). Rows are written into one buffer sized up front, through one
/// scratch string: no allocation per row.
pub(crate) fn rebuild_column(
    whole: &StringArray,
    skeletons: &StringArray,
    columns: &ElidedColumns<'_>,
) -> StringArray {
    let rows = whole.len();
    let capacity =
        text_bytes(whole) + text_bytes(skeletons) + rows.saturating_mul(REBUILT_BYTES_PER_ROW);
    let mut texts = StringBuilder::with_capacity(rows, capacity);
    let mut text = String::new();
    for row in 0..rows {
        if whole.is_valid(row) {
            texts.append_value(whole.value(row));
            continue;
        }
        if skeletons.is_valid(row) {
            text.clear();
            if rebuild_into(skeletons.value(row), columns, row, &mut text) {
                texts.append_value(&text);
                continue;
            }
        }
        texts.append_null();
    }
    texts.finish()
}

/// The bytes of the values of `array` (of its slice only).
pub(crate) fn text_bytes(array: &StringArray) -> usize {
    let offsets = array.value_offsets();
    match (offsets.first(), offsets.last()) {
        (Some(&first), Some(&last)) => usize::try_from(last - first).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast match gives what comparing with each name ignoring case gives, for every
    /// key of the conformance records and other spellings of them.
    #[test]
    fn elided_index_is_the_case_insensitive_position() {
        let slow = |key: &str| {
            ELIDED
                .iter()
                .position(|name| name.eq_ignore_ascii_case(key))
        };
        let mut keys: Vec<String> = crate::convert::conformance_events()
            .iter()
            .flat_map(|event| {
                top_level_members(event.json().as_bytes())
                    .into_iter()
                    .map(|member| member.key.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        keys.sort();
        keys.dedup();
        let found = keys.iter().filter(|key| slow(key).is_some()).count();
        assert!(found >= 20, "{keys:?}");
        for key in keys {
            for spelling in [key.clone(), key.to_lowercase(), key.to_uppercase()] {
                assert_eq!(elided_index(&spelling), slow(&spelling), "{spelling}");
            }
        }
    }
    use crate::convert::events_to_file_batch;
    use opentrail_model::EventRecord;

    fn round_trip(json: &str) -> String {
        let event = EventRecord::from_json(json).unwrap();
        let batch = events_to_file_batch(std::slice::from_ref(&event)).unwrap();
        let skeleton = batch
            .column_by_name(crate::schema::EVENT_JSON_SKELETON)
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_string();
        let columns = ElidedColumns::of(&batch.schema(), batch.columns()).unwrap();
        assert_eq!(rebuild(&skeleton, &columns, 0).as_deref(), Some(json));
        skeleton
    }

    proptest::proptest! {
        /// Strings and times are written exactly as serde_json and chrono write them (the
        /// files written before this writer rebuild their text with those).
        #[test]
        fn strings_and_times_are_written_as_serde_json_and_chrono_write_them(
            text in "(?s).{0,40}",
            millis in -62_135_596_800_000i64..253_402_300_800_000,
            whole in proptest::bool::ANY,
        ) {
            let mut out = String::new();
            write_json_string(&text, &mut out);
            proptest::prop_assert_eq!(&out, &serde_json::to_string(&text).unwrap());
            let millis = if whole { millis - millis.rem_euclid(1000) } else { millis };
            let time = DateTime::from_timestamp_millis(millis).unwrap();
            let format = if millis.rem_euclid(1000) == 0 {
                "\"%Y-%m-%dT%H:%M:%SZ\""
            } else {
                "\"%Y-%m-%dT%H:%M:%S%.3fZ\""
            };
            out.clear();
            proptest::prop_assert!(write_time(millis, &mut out));
            proptest::prop_assert_eq!(out, time.format(format).to_string());
        }
    }

    #[test]
    fn control_characters_are_escaped_as_serde_json_does() {
        let text: String = (0u8..0x80).map(char::from).collect();
        let mut out = String::new();
        write_json_string(&text, &mut out);
        assert_eq!(out, serde_json::to_string(&text).unwrap());
    }

    #[test]
    fn leaves_out_the_values_the_columns_hold_and_gives_the_text_back() {
        let json = r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","arn":"arn:aws:iam::123456789012:root"},"eventTime":"2024-03-21T00:00:01Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2 \"quoted\" é","requestParameters":{"bucketName":"b"},"responseElements":null,"requestID":"R1","eventID":"3e7da7f9-7115-46f5-8f56-127f9fe8f366","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","eventCategory":"Data"}"#;
        let skeleton = round_trip(json);
        assert!(skeleton.len() + 150 < json.len(), "{skeleton:?}");
        assert!(!skeleton.contains("3e7da7f9"));
        assert!(!skeleton.contains(r#""bucketName":"b""#), "{skeleton:?}");
        assert!(skeleton.contains(r#""responseElements":null"#));
    }

    #[test]
    fn maps_give_back_their_objects_when_they_can() {
        let base = r#""eventVersion":"1.08","eventTime":"2024-03-21T00:00:01Z","eventID":"e""#;
        for (parameters, elided) in [
            (
                r#"{"a":"x","n":5,"f":1.5,"t":true,"z":null,"o":{"k":[1,"v"]},"e":{}}"#,
                true,
            ),
            ("{}", true),
            (r#"{"policy":"{\"a\":1}"}"#, false),
            (r#"{"n":"5"}"#, false),
            (r#"{"f":1.50}"#, false),
            (r#"{"s":"a\/b"}"#, false),
            (r#"{ "a":"x" }"#, false),
        ] {
            let json = format!(r#"{{{base},"requestParameters":{parameters}}}"#);
            let skeleton = round_trip(&json);
            assert_eq!(!skeleton.contains(parameters), elided, "{json}");
        }
    }

    #[test]
    fn keeps_values_the_columns_would_write_differently() {
        // Spacing, escapes the column would not write, a string where a boolean belongs,
        // fractional and offset times, a number in a text column, unknown keys.
        for json in [
            r#"{ "eventVersion" : "1.08" , "eventID":"a\/b", "readOnly":"true", "eventTime":"2024-03-21T00:00:01.500Z" }"#,
            r#"{"eventTime":"2024-03-21T01:00:01+01:00","eventSource":"x\u0041","apiVersion":5,"eventName":"A","newField":{"eventID":"inner"}}"#,
            r#"{"EVENTNAME":"Upper","errorMessage":"line\nbreak \u2028","eventID":""}"#,
            r#"{"eventVersion":"1.08","eventTime":"2024-03-21T00:00:01.123Z","readOnly":false}"#,
        ] {
            round_trip(json);
        }
    }

    /// Every conformance record (as AWS delivered it) comes back byte for byte, and the
    /// objects CloudTrail writes in its own member order are left out of nearly all.
    #[test]
    fn every_conformance_record_comes_back_and_its_objects_are_left_out() {
        let events = crate::convert::conformance_events();
        let batch = events_to_file_batch(&events).unwrap();
        let skeletons = batch
            .column_by_name(crate::schema::EVENT_JSON_SKELETON)
            .unwrap()
            .as_string::<i32>();
        let columns = ElidedColumns::of(&batch.schema(), batch.columns()).unwrap();
        let (mut present, mut kept) = ([0usize; 3], [0usize; 3]);
        for (row, event) in events.iter().enumerate() {
            let skeleton = skeletons.value(row);
            assert_eq!(
                rebuild(skeleton, &columns, row).as_deref(),
                Some(event.json()),
                "{skeleton:?}"
            );
            for (at, key) in ["\"userIdentity\":", "\"resources\":", "\"tlsDetails\":"]
                .into_iter()
                .enumerate()
            {
                if event.json().contains(key) {
                    present[at] += 1;
                    if skeleton.contains(&format!("{key}{{"))
                        || skeleton.contains(&format!("{key}["))
                    {
                        kept[at] += 1;
                    }
                }
            }
        }
        assert!(present.iter().all(|&n| n > 500), "{present:?}");
        for (present, kept) in present.into_iter().zip(kept) {
            assert!(kept * 100 <= present, "kept {kept} of {present}");
        }
    }

    #[test]
    fn objects_are_left_out_only_when_written_back_exactly() {
        let base = r#""eventVersion":"1.08","eventTime":"2024-03-21T00:00:01Z","eventID":"e""#;
        let role = r#"{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::123456789012:assumed-role/r/s","accountId":"123456789012","accessKeyId":"ASIA","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA","arn":"arn:aws:iam::123456789012:role/r","accountId":"123456789012","userName":"r"},"webIdFederationData":{},"attributes":{"creationDate":"2024-03-21T00:00:00Z","mfaAuthenticated":"false"},"ec2RoleDelivery":"2.0"},"invokedBy":"ec2.amazonaws.com"}"#;
        for (member, value, elided) in [
            ("userIdentity", role, true),
            (
                "userIdentity",
                r#"{"type":"AWSService","invokedBy":"s3.amazonaws.com"}"#,
                true,
            ),
            (
                "userIdentity",
                r#"{"type":"IAMUser","sessionContext":{"sessionIssuer":{},"attributes":{"creationDate":"2024-03-21T00:00:00.250Z"}}}"#,
                true,
            ),
            (
                "userIdentity",
                r#"{"type":"IdentityCenterUser","accountId":"1","onBehalfOf":{"userId":"u","identityStoreArn":"a"},"credentialId":"c"}"#,
                true,
            ),
            ("userIdentity", "{}", true),
            (
                "resources",
                r#"[{"accountId":"1","type":"AWS::IAM::Role","ARN":"arn:r"}]"#,
                true,
            ),
            (
                "resources",
                r#"[{"type":"AWS::S3::Object","ARN":"arn:o"},{"type":"AWS::S3::Bucket","ARN":"arn:b","accountId":"1"}]"#,
                true,
            ),
            ("resources", "[]", true),
            (
                "tlsDetails",
                r#"{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"h"}"#,
                true,
            ),
            // Another member order, a member CloudTrail spells otherwise, spacing, an
            // unknown or null member, a number where text belongs, a repeated key, a time
            // with an offset, escapes serde_json would not write, entries of two orders.
            (
                "userIdentity",
                r#"{"principalId":"p","type":"IAMUser"}"#,
                false,
            ),
            ("userIdentity", r#"{"Type":"IAMUser"}"#, false),
            ("userIdentity", r#"{"type": "IAMUser"}"#, false),
            (
                "userIdentity",
                r#"{"type":"IAMUser","newMember":"x"}"#,
                false,
            ),
            (
                "userIdentity",
                r#"{"type":"IAMUser","userName":null}"#,
                false,
            ),
            (
                "userIdentity",
                r#"{"type":"IAMUser","accountId":123456789012}"#,
                false,
            ),
            (
                "tlsDetails",
                r#"{"tlsVersion":"a","tlsVersion":"b"}"#,
                false,
            ),
            (
                "userIdentity",
                r#"{"sessionContext":{"attributes":{"creationDate":"2024-03-21T01:00:00+01:00"}}}"#,
                false,
            ),
            ("userIdentity", r#"{"arn":"arn:aws:iam::1:user\/u"}"#, false),
            (
                "resources",
                r#"[{"accountId":"1","type":"t","ARN":"a"},{"type":"t","ARN":"a","accountId":"1"}]"#,
                false,
            ),
            ("resources", r#"[{"arn":"a"}]"#, false),
            (
                "tlsDetails",
                r#"{"cipherSuite":"c","tlsVersion":"v"}"#,
                false,
            ),
        ] {
            let json = format!(r#"{{{base},"{member}":{value}}}"#);
            let skeleton = round_trip(&json);
            assert_eq!(!skeleton.contains(value), elided, "{json}: {skeleton:?}");
        }
    }

    #[test]
    fn a_damaged_marker_gives_no_text() {
        let columns = ElidedColumns::new(Vec::new());
        assert_eq!(rebuild("{\"a\":\u{0}\u{1}}", &columns, 0), None);
        assert_eq!(rebuild("{\"a\":\u{0}", &columns, 0), None);
    }
}
