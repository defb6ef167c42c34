//! Event records → Arrow record batches of [`events_schema`]. Each column is built from the
//! record's JSON by the column's type: JSON keys are matched case-insensitively to the
//! lowercase column names (`sourceIPAddress` → `sourceipaddress`), objects become structs,
//! free-form objects become `map<string,string>` with nested values as JSON text.

use crate::json::{bytes_eq, Json, Member, Reader};
use crate::schema::{
    activity_schema, events_file_schema, events_schema, EVENT_JSON, EVENT_JSON_CHECKSUM,
    EVENT_JSON_SKELETON,
};
use crate::skeleton::{skeleton_into, ElidedColumns};
use chrono::{DateTime, NaiveDateTime};
use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, AsArray, BooleanArray, ListArray, MapArray, RecordBatch,
    StringArray, StringBuilder, StructArray, TimestampMillisecondArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, FieldRef, Fields, TimeUnit};
use datafusion::arrow::error::ArrowError;
use opentrail_model::EventRecord;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Converts events sent through channels into one record batch of the activity schema.
/// `eventDataChecksum` is the record's (PutAuditEvents keeps the producer's or computes
/// it), else the base64 SHA-256 of `eventData` as the record holds it.
pub fn activity_to_batch(events: &[EventRecord]) -> Result<RecordBatch, ArrowError> {
    use base64::Engine;
    let encode_base64 = |digest: &[u8]| base64::engine::general_purpose::STANDARD.encode(digest);
    let parsed = parse_records(events);
    let schema = activity_schema();
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().as_str();
            if name == EVENT_DATA_CHECKSUM {
                return Arc::new(StringArray::from_iter(parsed.iter().map(|record| {
                    member(record, name).map(as_text).or_else(|| {
                        member(record, "eventdata").map(|data| {
                            let mut text = Vec::new();
                            data.write_into(&mut text);
                            encode_base64(&Sha256::digest(text))
                        })
                    })
                }))) as ArrayRef;
            }
            let values: Vec<Option<&Json>> =
                parsed.iter().map(|record| member(record, name)).collect();
            column(field.data_type(), &values)
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

const EVENT_DATA_CHECKSUM: &str = "eventdatachecksum";

/// Converts events into one record batch of the events schema.
pub fn events_to_batch(events: &[EventRecord]) -> Result<RecordBatch, ArrowError> {
    let parsed = parse_records(events);
    let schema = events_schema();
    let records: Vec<Option<&Json>> = parsed.iter().map(Some).collect();
    let members = Members::of(schema.fields(), &records);
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| match field.name().as_str() {
            EVENT_JSON => Arc::new(StringArray::from_iter_values(
                events.iter().map(EventRecord::json),
            )) as ArrayRef,
            EVENT_JSON_CHECKSUM => Arc::new(StringArray::from_iter_values(
                events
                    .iter()
                    .map(|event| hex::encode(Sha256::digest(event.as_bytes()))),
            )),
            _ => column(field.data_type(), &members.column(index)),
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

/// Converts events into one record batch of the files' schema ([`events_file_schema`]):
/// the typed columns, read from each record's text in one pass ([`crate::direct`]), and
/// each record's text as a skeleton of what they do not hold.
pub fn events_to_file_batch(events: &[EventRecord]) -> Result<RecordBatch, ArrowError> {
    let texts: Vec<&str> = events.iter().map(EventRecord::json).collect();
    file_batch_of(&texts)
}

/// [`events_to_file_batch`] of record texts.
pub(crate) fn file_batch_of(texts: &[&str]) -> Result<RecordBatch, ArrowError> {
    let (columns, record_members) = crate::direct::record_columns(&TYPED_FILE_FIELDS, texts)?;
    with_skeletons(columns, texts, &record_members)
}

/// The fields of the files' schema that are read from the records (all but the skeleton,
/// which is last).
static TYPED_FILE_FIELDS: std::sync::LazyLock<Fields> = std::sync::LazyLock::new(|| {
    events_file_schema()
        .fields()
        .iter()
        .filter(|field| field.name() != EVENT_JSON_SKELETON)
        .cloned()
        .collect()
});

/// The batch of the files' schema: the typed `columns` of the record texts `texts`, and
/// the skeleton of each text (its top-level members as `record_members` gives them).
fn with_skeletons(
    mut columns: Vec<ArrayRef>,
    texts: &[&str],
    record_members: &[Vec<Member<'_>>],
) -> Result<RecordBatch, ArrowError> {
    let schema = events_file_schema();
    let skeletons = {
        let elided = ElidedColumns::of(&schema, &columns)?;
        skeleton_column(
            texts
                .iter()
                .zip(record_members)
                .map(|(&text, members)| Some((text, Some(members.as_slice())))),
            texts.iter().map(|text| text.len()).sum(),
            &elided,
        )
    };
    columns.push(Arc::new(skeletons));
    RecordBatch::try_new(schema, columns)
}

/// [`file_batch_of`] through a parsed tree of each record: what the one-pass reading is
/// proven against.
#[cfg(test)]
pub(crate) fn file_batch_by_tree(texts: &[&str]) -> Result<RecordBatch, ArrowError> {
    let (parsed, record_members) = parse_records_with_members(texts);
    let schema = events_file_schema();
    let records: Vec<Option<&Json>> = parsed.iter().map(Some).collect();
    let members = Members::of(schema.fields(), &records);
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| field.name() != EVENT_JSON_SKELETON)
        .map(|(index, field)| column(field.data_type(), &members.column(index)))
        .collect();
    with_skeletons(columns, texts, &record_members)
}

/// Every record of the conformance log files (real CloudTrail deliveries).
#[cfg(test)]
pub(crate) fn conformance_events() -> Vec<EventRecord> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../core/model/tests/conformance"
    );
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "json") {
            let bytes = std::fs::read(path).unwrap();
            events.extend(opentrail_model::parse_log_file(&bytes).unwrap());
        }
    }
    events
}

/// `batch` in the files' layout: a batch of a file written before the skeleton layout
/// (whole `eventjson` and its checksum) gets the skeleton column instead; any other batch
/// is returned as it is.
pub(crate) fn to_file_layout(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let Some(whole) = batch.column_by_name(EVENT_JSON) else {
        return Ok(batch);
    };
    let whole = whole.as_string::<i32>().clone();
    let schema = events_file_schema();
    let mut columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .filter(|field| field.name() != EVENT_JSON_SKELETON)
        .map(|field| {
            batch
                .column_by_name(field.name())
                .cloned()
                .unwrap_or_else(|| {
                    datafusion::arrow::array::new_null_array(field.data_type(), batch.num_rows())
                })
        })
        .collect();
    let elided = ElidedColumns::of(&schema, &columns)?;
    let skeletons = skeleton_column(
        (0..batch.num_rows()).map(|row| whole.is_valid(row).then(|| (whole.value(row), None))),
        crate::skeleton::text_bytes(&whole),
        &elided,
    );
    drop(elided);
    columns.push(Arc::new(skeletons));
    RecordBatch::try_new(schema, columns)
}

/// Each record read into a [`Json`] (null for a text that is not JSON).
fn parse_records(events: &[EventRecord]) -> Vec<Json<'_>> {
    let (mut reader, mut members) = (Reader::default(), Vec::new());
    events
        .iter()
        .map(|event| {
            members.clear();
            reader
                .read(event.json(), &mut members)
                .unwrap_or(Json::Null)
        })
        .collect()
}

/// Records read into [`Json`] values, and each record's top-level members.
#[cfg(test)]
type ParsedRecords<'t> = (Vec<Json<'t>>, Vec<Vec<Member<'t>>>);

/// [`parse_records`], and each record's top-level members (where their values are).
#[cfg(test)]
fn parse_records_with_members<'t>(texts: &[&'t str]) -> ParsedRecords<'t> {
    let mut reader = Reader::default();
    texts
        .iter()
        .map(|&text| {
            let mut members = Vec::with_capacity(24);
            let json = reader.read(text, &mut members).unwrap_or(Json::Null);
            (json, members)
        })
        .unzip()
}

/// The `eventjsonskeleton` column of the record texts `texts` (row by row, with their
/// top-level members when known; None is null), written through one buffer sized for
/// `text_bytes`, the bytes of the texts (which their skeletons do not outgrow, but for
/// a marker in place of a one-byte value): growing it by doubling as rows came copied
/// the column again and again.
fn skeleton_column<'t, 'm>(
    texts: impl ExactSizeIterator<Item = Option<(&'t str, Option<&'m [Member<'t>]>)>>,
    text_bytes: usize,
    elided: &ElidedColumns<'_>,
) -> StringArray
where
    't: 'm,
{
    let mut builder = StringBuilder::with_capacity(texts.len(), text_bytes);
    let (mut text, mut scratch) = (String::new(), String::new());
    for (row, json) in texts.enumerate() {
        let Some((json, members)) = json else {
            builder.append_null();
            continue;
        };
        text.clear();
        skeleton_into(json, members, elided, row, &mut text, &mut scratch);
        builder.append_value(&text);
    }
    builder.finish()
}

/// The member of a JSON object whose key equals `name` ignoring ASCII case.
fn member<'v, 'a>(value: &'v Json<'a>, name: &str) -> Option<&'v Json<'a>> {
    let object = value.as_object()?;
    object
        .iter()
        .find(|(key, _)| key == name)
        .or_else(|| {
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
        })
        .map(|(_, value)| value)
        .filter(|value| !value.is_null())
}

/// The longest key that can name a field: lowercasing ASCII keeps the length.
const LONGEST_FIELD_NAME: usize = 64;

/// The members of many JSON objects that a struct's fields take, found in one pass over
/// each object's keys (what [`member`] finds for each field, without a search per field):
/// row-major, `fields` per row.
struct Members<'v, 'a> {
    width: usize,
    found: Vec<Option<&'v Json<'a>>>,
}

impl<'v, 'a> Members<'v, 'a> {
    fn of(fields: &Fields, values: &[Option<&'v Json<'a>>]) -> Self {
        let width = fields.len();
        let mut names: Vec<(&str, usize)> = fields
            .iter()
            .enumerate()
            .map(|(index, field)| (field.name().as_str(), index))
            .collect();
        names.sort_unstable();
        let mut found = vec![None; values.len() * width];
        // Per field of the current row: 0 nothing yet, 1 a key equal ignoring case,
        // 2 the key written exactly as the field (which wins, as in `member`).
        let mut how = vec![0u8; width];
        let mut lower = [0u8; LONGEST_FIELD_NAME];
        // The field (and whether exactly spelled) of a key: found by lowercasing it and a
        // binary search.
        let mut resolve = |key: &str| -> Option<(usize, bool)> {
            let buffer = lower.get_mut(..key.len())?;
            buffer.copy_from_slice(key.as_bytes());
            buffer.make_ascii_lowercase();
            let position = names
                .binary_search_by(|(name, _)| name.as_bytes().cmp(buffer))
                .ok()?;
            let (name, index) = names[position];
            Some((index, name == key))
        };
        // Records of a kind have the same keys in the same order: per position, the last
        // key seen there and its field, checked with one comparison.
        let mut hints: Vec<(&'v str, Option<(usize, bool)>)> = Vec::new();
        for (row, value) in values.iter().enumerate() {
            let Some(object) = value.and_then(Json::as_object) else {
                continue;
            };
            how.fill(0);
            let slots = &mut found[row * width..(row + 1) * width];
            for (at, (key, item)) in object.iter().enumerate() {
                let key: &'v str = key.as_ref();
                let resolved = match hints.get(at) {
                    Some((hinted, resolved)) if bytes_eq(hinted.as_bytes(), key.as_bytes()) => {
                        *resolved
                    }
                    _ => {
                        let resolved = resolve(key);
                        match hints.get_mut(at) {
                            Some(hint) => *hint = (key, resolved),
                            None => hints.push((key, resolved)),
                        }
                        resolved
                    }
                };
                let Some((index, exact)) = resolved else {
                    continue;
                };
                if exact || how[index] == 0 {
                    how[index] = if exact { 2 } else { 1 };
                    slots[index] = Some(item);
                }
            }
            for slot in slots.iter_mut() {
                if slot.is_some_and(Json::is_null) {
                    *slot = None;
                }
            }
        }
        Self { width, found }
    }

    /// The values of field `index`, one per row.
    fn column(&self, index: usize) -> Vec<Option<&'v Json<'a>>> {
        self.found
            .iter()
            .skip(index)
            .step_by(self.width.max(1))
            .copied()
            .collect()
    }
}

/// Appends a scalar as text (strings as they are, anything else as its JSON text) without
/// an allocation per value: `scratch` holds the JSON text of non-strings.
fn append_text(builder: &mut StringBuilder, value: &Json, scratch: &mut Vec<u8>) {
    match value {
        Json::String(text) => builder.append_value(text),
        other => {
            scratch.clear();
            other.write_into(scratch);
            builder.append_value(String::from_utf8_lossy(scratch));
        }
    }
}

/// About the bytes [`append_text`] writes for `value`: exact for strings, a guess for
/// the rest (whose JSON text is only known once written).
fn text_len(value: &Json) -> usize {
    match value {
        Json::String(text) => text.len(),
        Json::Null => 0,
        _ => 16,
    }
}

/// About the bytes a text column of `values` holds (see [`text_len`]): the builder is
/// sized once instead of growing while the column is written.
fn text_bytes(values: &[Option<&Json>]) -> usize {
    values.iter().flatten().map(|value| text_len(value)).sum()
}

/// A scalar as text: strings as they are, anything else as its JSON text.
fn as_text(value: &Json) -> String {
    match value {
        Json::String(text) => text.to_string(),
        other => {
            let mut text = Vec::new();
            other.write_into(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        }
    }
}

/// `eventTime` and `creationDate` as CloudTrail writes them (RFC 3339, usually whole seconds).
pub(crate) fn parse_timestamp_millis(text: &str) -> Option<i64> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_millis());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|time| time.and_utc().timestamp_millis())
}

fn column(data_type: &DataType, values: &[Option<&Json>]) -> ArrayRef {
    match data_type {
        DataType::Utf8 => {
            let mut builder = StringBuilder::with_capacity(values.len(), text_bytes(values));
            let mut scratch = Vec::new();
            for value in values {
                match value {
                    Some(value) => append_text(&mut builder, value, &mut scratch),
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish())
        }
        DataType::Boolean => Arc::new(BooleanArray::from_iter(values.iter().map(
            |value| match value {
                Some(Json::Bool(flag)) => Some(*flag),
                Some(Json::String(text)) => text.parse().ok(),
                _ => None,
            },
        ))),
        DataType::Timestamp(TimeUnit::Millisecond, None) => Arc::new(
            TimestampMillisecondArray::from_iter(values.iter().map(|value| {
                value
                    .and_then(|value| value.as_str())
                    .and_then(parse_timestamp_millis)
            })),
        ),
        DataType::Struct(fields) => struct_column(fields, values),
        DataType::Map(entries, _) => map_column(entries, values),
        DataType::List(item) => list_column(item, values),
        other => unreachable_type(other, values.len()),
    }
}

/// The schema holds only the types above; any other is a programming error caught by the
/// schema test, answered with nulls rather than a panic.
fn unreachable_type(data_type: &DataType, len: usize) -> ArrayRef {
    debug_assert!(false, "events schema has unsupported type {data_type}");
    datafusion::arrow::array::new_null_array(data_type, len)
}

fn struct_column(fields: &Fields, values: &[Option<&Json>]) -> ArrayRef {
    let objects: Vec<Option<&Json>> = values
        .iter()
        .map(|value| value.filter(|value| value.is_object()))
        .collect();
    let members = Members::of(fields, &objects);
    let children = fields
        .iter()
        .enumerate()
        .map(|(index, field)| column(field.data_type(), &members.column(index)))
        .collect();
    let nulls = NullBuffer::from_iter(objects.iter().map(Option::is_some));
    Arc::new(StructArray::new(fields.clone(), children, Some(nulls)))
}

/// A free-form JSON object as `map<string,string>`; a non-object value is null.
fn map_column(entries: &FieldRef, values: &[Option<&Json>]) -> ArrayRef {
    let (mut count, mut key_bytes, mut item_bytes) = (0, 0, 0);
    for (key, item) in values
        .iter()
        .filter_map(|value| value.and_then(Json::as_object))
        .flatten()
    {
        count += 1;
        key_bytes += key.len();
        item_bytes += text_len(item);
    }
    let mut keys = StringBuilder::with_capacity(count, key_bytes);
    let mut items = StringBuilder::with_capacity(count, item_bytes);
    let mut scratch = Vec::new();
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(values.len());
    for value in values {
        let object = value.and_then(|value| value.as_object());
        valid.push(object.is_some());
        for (key, item) in object.into_iter().flatten() {
            keys.append_value(key);
            match item {
                Json::Null => items.append_null(),
                item => append_text(&mut items, item, &mut scratch),
            }
        }
        offsets.push(i32::try_from(keys.len()).unwrap_or(i32::MAX));
    }
    let DataType::Struct(entry_fields) = entries.data_type() else {
        return unreachable_type(entries.data_type(), values.len());
    };
    let entry_array = StructArray::new(
        entry_fields.clone(),
        vec![Arc::new(keys.finish()), Arc::new(items.finish())],
        None,
    );
    Arc::new(MapArray::new(
        Arc::clone(entries),
        OffsetBuffer::new(offsets.into()),
        entry_array,
        Some(NullBuffer::from(valid)),
        false,
    ))
}

fn list_column(item: &FieldRef, values: &[Option<&Json>]) -> ArrayRef {
    let arrays: Vec<Option<&[Json]>> = values
        .iter()
        .map(|value| value.and_then(|value| value.as_array()))
        .collect();
    let elements: Vec<Option<&Json>> = arrays
        .iter()
        .flatten()
        .flat_map(|array| {
            array
                .iter()
                .map(|element| Some(element).filter(|e| !e.is_null()))
        })
        .collect();
    let lengths = arrays.iter().map(|array| array.map_or(0, <[Json]>::len));
    let child = column(item.data_type(), &elements);
    let nulls = NullBuffer::from_iter(arrays.iter().map(Option::is_some));
    Arc::new(ListArray::new(
        Arc::clone(item),
        OffsetBuffer::from_lengths(lengths),
        child,
        Some(nulls),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimestampMillisecondType;

    const RECORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA:bob","arn":"arn:aws:sts::123456789012:assumed-role/r/bob","accountId":"123456789012","sessionContext":{"sessionIssuer":{"type":"Role","userName":"r"},"attributes":{"creationDate":"2023-07-10T11:00:00Z","mfaAuthenticated":"false"}}},"eventTime":"2023-07-10T11:45:03Z","eventSource":"s3.amazonaws.com","eventName":"CreateBucket","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","requestParameters":{"bucketName":"b","CreateBucketConfiguration":{"LocationConstraint":"eu-west-1"},"n":5},"responseElements":null,"eventID":"e1","readOnly":false,"resources":[{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.2"}}"#;

    #[test]
    fn converts_every_kind_of_column() {
        let event = EventRecord::from_json(RECORD).unwrap();
        let batch = events_to_batch(&[event]).unwrap();
        let text = |name: &str| {
            let column = batch.column_by_name(name).unwrap().as_string::<i32>();
            column.is_valid(0).then(|| column.value(0).to_string())
        };
        assert_eq!(text("sourceipaddress").as_deref(), Some("1.2.3.4"));
        assert_eq!(text("eventid").as_deref(), Some("e1"));
        assert_eq!(text("errorcode"), None);
        assert_eq!(text("eventjson").as_deref(), Some(RECORD));
        assert_eq!(text("eventjsonchecksum").unwrap().len(), 64);
        let time = batch.column_by_name("eventtime").unwrap();
        assert_eq!(
            time.as_primitive::<TimestampMillisecondType>().value(0),
            1_688_989_503_000
        );
        let identity = batch.column_by_name("useridentity").unwrap().as_struct();
        let principal = identity
            .column_by_name("principalid")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(principal.value(0), "AROA:bob");
        let context = identity
            .column_by_name("sessioncontext")
            .unwrap()
            .as_struct();
        let issuer = context.column_by_name("sessionissuer").unwrap().as_struct();
        assert_eq!(
            issuer
                .column_by_name("username")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "r"
        );
        let params = batch.column_by_name("requestparameters").unwrap().as_map();
        let entries = params.value(0);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_string::<i32>();
        let pairs: Vec<(&str, &str)> = (0..keys.len())
            .map(|i| (keys.value(i), values.value(i)))
            .collect();
        assert_eq!(
            pairs,
            [
                ("bucketName", "b"),
                (
                    "CreateBucketConfiguration",
                    r#"{"LocationConstraint":"eu-west-1"}"#
                ),
                ("n", "5")
            ]
        );
        assert!(batch.column_by_name("responseelements").unwrap().is_null(0));
        let readonly = batch.column_by_name("readonly").unwrap().as_boolean();
        assert!(!readonly.value(0));
        let resources = batch.column_by_name("resources").unwrap().as_list::<i32>();
        let first = resources.value(0);
        let arn = first
            .as_struct()
            .column_by_name("arn")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(arn.value(0), "arn:aws:s3:::b");
    }

    #[test]
    fn keys_match_fields_ignoring_case_and_the_exact_spelling_wins() {
        let fields = Fields::from(vec![
            datafusion::arrow::datatypes::Field::new("eventname", DataType::Utf8, true),
            datafusion::arrow::datatypes::Field::new("eventsource", DataType::Utf8, true),
        ]);
        let objects: Vec<Json> = [
            r#"{"EventName":"a","eventname":"b"}"#,
            r#"{"EventName":"a","EVENTNAME":"b","eventSource":"s"}"#,
            r#"{"eventname":null,"EventName":"x"}"#,
            r#"{"other":1}"#,
            r#"[1]"#,
        ]
        .iter()
        .map(|text| Json::parse(text).unwrap())
        .collect();
        let values: Vec<Option<&Json>> = objects.iter().map(Some).collect();
        let members = Members::of(&fields, &values);
        let text = |column: Vec<Option<&Json>>| -> Vec<Option<String>> {
            column.into_iter().map(|value| value.map(as_text)).collect()
        };
        let expected_from_member = |name: &str| -> Vec<Option<String>> {
            objects
                .iter()
                .map(|object| member(object, name).map(as_text))
                .collect()
        };
        assert_eq!(
            text(members.column(0)),
            [Some("b".into()), Some("a".into()), None, None, None]
        );
        assert_eq!(text(members.column(0)), expected_from_member("eventname"));
        assert_eq!(text(members.column(1)), expected_from_member("eventsource"));
    }

    #[test]
    fn every_conformance_record_converts() {
        let events = conformance_events();
        assert!(events.len() > 50);
        let batch = events_to_batch(&events).unwrap();
        assert_eq!(batch.num_rows(), events.len());
        assert_eq!(batch.column_by_name("eventtime").unwrap().null_count(), 0);
    }
}
