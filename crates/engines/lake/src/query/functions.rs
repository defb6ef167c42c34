//! Trino functions Lake queries use that DataFusion lacks or names differently, as UDFs:
//! `element_at` (maps and 1-based arrays), `contains` on arrays, the `json_*` family (over
//! JSON text or over a map column, serialised to a JSON object first, so Athena's
//! `json_extract_scalar(requestparameters, '$.bucketName')` works), `date_add`,
//! `date_diff`, `format_datetime` (Joda patterns), `from_iso8601_timestamp`, `date`, `if`
//! and the date-part functions (`year`, `day_of_week`, …).

use crate::schema::TIMESTAMP;
use chrono::{DateTime, Datelike, Months, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int64Array, Int64Builder, StringArray,
    TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, TimestampMillisecondType};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    ElementAt,
    Contains,
    JsonExtract,
    JsonExtractScalar,
    JsonArrayLength,
    JsonArrayGet,
    JsonArrayContains,
    JsonParse,
    JsonFormat,
    IsJsonScalar,
    DateAdd,
    DateDiff,
    FormatDatetime,
    FromIso8601Timestamp,
    Date,
    If,
    Slice,
    Part(Part),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Part {
    Year,
    Quarter,
    Month,
    Week,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    YearOfWeek,
    Hour,
    Minute,
    Second,
    Millisecond,
}

const FUNCTIONS: &[(&str, Kind)] = &[
    ("element_at", Kind::ElementAt),
    ("contains", Kind::Contains),
    ("json_extract", Kind::JsonExtract),
    ("json_extract_scalar", Kind::JsonExtractScalar),
    ("json_array_length", Kind::JsonArrayLength),
    ("json_array_get", Kind::JsonArrayGet),
    ("json_array_contains", Kind::JsonArrayContains),
    ("json_parse", Kind::JsonParse),
    ("json_format", Kind::JsonFormat),
    ("is_json_scalar", Kind::IsJsonScalar),
    ("date_add", Kind::DateAdd),
    ("date_diff", Kind::DateDiff),
    ("format_datetime", Kind::FormatDatetime),
    ("from_iso8601_timestamp", Kind::FromIso8601Timestamp),
    ("date", Kind::Date),
    ("if", Kind::If),
    ("slice", Kind::Slice),
    ("year", Kind::Part(Part::Year)),
    ("quarter", Kind::Part(Part::Quarter)),
    ("month", Kind::Part(Part::Month)),
    ("week", Kind::Part(Part::Week)),
    ("week_of_year", Kind::Part(Part::Week)),
    ("day", Kind::Part(Part::DayOfMonth)),
    ("day_of_month", Kind::Part(Part::DayOfMonth)),
    ("day_of_week", Kind::Part(Part::DayOfWeek)),
    ("dow", Kind::Part(Part::DayOfWeek)),
    ("day_of_year", Kind::Part(Part::DayOfYear)),
    ("doy", Kind::Part(Part::DayOfYear)),
    ("year_of_week", Kind::Part(Part::YearOfWeek)),
    ("yow", Kind::Part(Part::YearOfWeek)),
    ("hour", Kind::Part(Part::Hour)),
    ("minute", Kind::Part(Part::Minute)),
    ("second", Kind::Part(Part::Second)),
    ("millisecond", Kind::Part(Part::Millisecond)),
];

/// Every Trino function this module adds, to register on a session: its own, and
/// DataFusion's under Trino's names (`split`).
pub(crate) fn trino_functions() -> Vec<ScalarUDF> {
    let mut functions: Vec<ScalarUDF> = FUNCTIONS
        .iter()
        .map(|&(name, kind)| {
            ScalarUDF::new_from_impl(TrinoFunction {
                name,
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect();
    functions.push(
        datafusion::functions_nested::string::string_to_array_udf()
            .as_ref()
            .clone()
            .with_aliases(["split"]),
    );
    functions
}

/// DataFusion's aggregates under Trino's names (`arbitrary`).
pub(crate) fn trino_aggregates() -> Vec<datafusion::logical_expr::AggregateUDF> {
    vec![
        datafusion::functions_aggregate::first_last::first_value_udaf()
            .as_ref()
            .clone()
            .with_aliases(["arbitrary"]),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TrinoFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

fn is_map(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Map(_, _))
}

fn is_list(data_type: &DataType) -> bool {
    matches!(data_type, DataType::List(_) | DataType::LargeList(_))
}

/// JSON functions take JSON text or a map (serialised to a JSON object).
fn json_input(data_type: &DataType) -> DataType {
    if is_map(data_type) {
        data_type.clone()
    } else {
        DataType::Utf8
    }
}

/// Checks that function `name` got an argument count within `expected`.
pub(super) fn check_arity(
    name: &str,
    args: &[DataType],
    expected: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    if !expected.contains(&args.len()) {
        return plan_err!(
            "function {} takes {} arguments, got {}",
            name,
            if expected.start() == expected.end() {
                expected.start().to_string()
            } else {
                format!("{} to {}", expected.start(), expected.end())
            },
            args.len()
        );
    }
    Ok(())
}

impl ScalarUDFImpl for TrinoFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        use DataType::*;
        Ok(match self.kind {
            Kind::ElementAt => {
                check_arity(self.name, args, 2..=2)?;
                if is_map(&args[0]) {
                    vec![args[0].clone(), Utf8]
                } else if is_list(&args[0]) {
                    vec![args[0].clone(), Int64]
                } else {
                    return plan_err!("element_at takes a map or an array, got {}", args[0]);
                }
            }
            Kind::Contains => {
                check_arity(self.name, args, 2..=2)?;
                if is_list(&args[0]) {
                    vec![args[0].clone(), args[1].clone()]
                } else {
                    vec![Utf8, Utf8]
                }
            }
            Kind::JsonExtract | Kind::JsonExtractScalar | Kind::JsonArrayContains => {
                check_arity(self.name, args, 2..=2)?;
                let second = match (self.kind, &args[1]) {
                    (Kind::JsonArrayContains, Boolean | Float64 | Int64) => args[1].clone(),
                    (Kind::JsonArrayContains, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32) => {
                        Int64
                    }
                    (Kind::JsonArrayContains, Float32 | Decimal128(..)) => Float64,
                    _ => Utf8,
                };
                vec![json_input(&args[0]), second]
            }
            Kind::JsonArrayGet => {
                check_arity(self.name, args, 2..=2)?;
                vec![json_input(&args[0]), Int64]
            }
            Kind::JsonArrayLength | Kind::JsonParse | Kind::JsonFormat | Kind::IsJsonScalar => {
                check_arity(self.name, args, 1..=1)?;
                vec![json_input(&args[0])]
            }
            Kind::DateAdd => {
                check_arity(self.name, args, 3..=3)?;
                vec![Utf8, Int64, TIMESTAMP]
            }
            Kind::DateDiff => {
                check_arity(self.name, args, 3..=3)?;
                vec![Utf8, TIMESTAMP, TIMESTAMP]
            }
            Kind::FormatDatetime => {
                check_arity(self.name, args, 2..=2)?;
                vec![TIMESTAMP, Utf8]
            }
            Kind::FromIso8601Timestamp => {
                check_arity(self.name, args, 1..=1)?;
                vec![Utf8]
            }
            Kind::Slice => {
                check_arity(self.name, args, 3..=3)?;
                if !matches!(args[0], List(_)) {
                    return plan_err!("slice takes an array, got {}", args[0]);
                }
                vec![args[0].clone(), Int64, Int64]
            }
            Kind::Date | Kind::Part(_) => {
                check_arity(self.name, args, 1..=1)?;
                vec![TIMESTAMP]
            }
            Kind::If => {
                check_arity(self.name, args, 2..=3)?;
                let common = match (args[1].clone(), args.get(2).cloned().unwrap_or(Null)) {
                    (a, b) if a == b => a,
                    (Null, other) | (other, Null) => other,
                    (a, b) if a.is_numeric() && b.is_numeric() => Float64,
                    _ => Utf8,
                };
                let mut types = vec![Boolean, common.clone()];
                if args.len() == 3 {
                    types.push(common);
                }
                types
            }
        })
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        use DataType::*;
        Ok(match self.kind {
            Kind::ElementAt => match &args[0] {
                Map(entries, _) => match entries.data_type() {
                    Struct(fields) if fields.len() == 2 => fields[1].data_type().clone(),
                    other => return plan_err!("element_at: unexpected map entries {other}"),
                },
                List(item) | LargeList(item) => item.data_type().clone(),
                other => return plan_err!("element_at takes a map or an array, got {other}"),
            },
            Kind::Contains | Kind::JsonArrayContains | Kind::IsJsonScalar => Boolean,
            Kind::JsonExtract
            | Kind::JsonExtractScalar
            | Kind::JsonArrayGet
            | Kind::JsonParse
            | Kind::JsonFormat
            | Kind::FormatDatetime => Utf8,
            Kind::JsonArrayLength | Kind::DateDiff | Kind::Part(_) => Int64,
            Kind::DateAdd | Kind::FromIso8601Timestamp => TIMESTAMP,
            Kind::Date => Date32,
            Kind::If => args[1].clone(),
            Kind::Slice => args[0].clone(),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result = match self.kind {
            Kind::ElementAt => element_at(&arrays[0], &arrays[1])?,
            Kind::Contains => contains(&arrays[0], &arrays[1])?,
            Kind::JsonExtract => json_path_fn(&arrays, rows, |value| Some(value.to_string()))?,
            Kind::JsonExtractScalar => json_path_fn(&arrays, rows, scalar_text)?,
            Kind::JsonArrayGet => json_array_get(&arrays)?,
            Kind::JsonArrayLength => {
                let values = json_values(&arrays[0])?;
                Arc::new(Int64Array::from_iter(values.iter().map(|value| {
                    value
                        .as_ref()
                        .and_then(Value::as_array)
                        .map(|items| items.len() as i64)
                })))
            }
            Kind::JsonArrayContains => json_array_contains(&arrays)?,
            Kind::JsonParse | Kind::JsonFormat => {
                let values = json_values(&arrays[0])?;
                if let Some(row) =
                    (0..rows).find(|&row| arrays[0].is_valid(row) && values[row].is_none())
                {
                    return exec_err!("{}: value at row {row} is not valid JSON", self.name);
                }
                Arc::new(StringArray::from_iter(
                    values
                        .iter()
                        .map(|value| value.as_ref().map(Value::to_string)),
                ))
            }
            Kind::IsJsonScalar => {
                let values = json_values(&arrays[0])?;
                Arc::new(BooleanArray::from_iter(values.iter().map(|value| {
                    value
                        .as_ref()
                        .map(|value| !(value.is_object() || value.is_array()))
                })))
            }
            Kind::DateAdd => date_add(&arrays)?,
            Kind::DateDiff => date_diff(&arrays)?,
            Kind::FormatDatetime => format_datetime(&arrays)?,
            Kind::FromIso8601Timestamp => {
                let texts = arrays[0].as_string::<i32>();
                let mut out = Vec::with_capacity(rows);
                for text in texts.iter() {
                    out.push(match text {
                        None => None,
                        Some(text) => match parse_iso8601(text) {
                            Some(millis) => Some(millis),
                            None => return exec_err!("Invalid format: \"{text}\""),
                        },
                    });
                }
                Arc::new(TimestampMillisecondArray::from(out))
            }
            Kind::Date => cast(&arrays[0], &DataType::Date32)?,
            Kind::If => {
                let condition = arrays[0].as_boolean();
                // NULL conditions take the else branch, as in CASE.
                let condition =
                    BooleanArray::from_iter(condition.iter().map(|c| Some(c == Some(true))));
                let otherwise = match arrays.get(2) {
                    Some(otherwise) => Arc::clone(otherwise),
                    None => new_null_array(arrays[1].data_type(), rows),
                };
                zip(&condition, &arrays[1], &otherwise)?
            }
            Kind::Slice => slice(&arrays)?,
            Kind::Part(part) => date_part(part, &arrays[0]),
        };
        Ok(ColumnarValue::Array(result))
    }
}

fn element_at(container: &ArrayRef, key: &ArrayRef) -> Result<ArrayRef> {
    let mut indices: Vec<Option<u32>> = Vec::with_capacity(container.len());
    let values: ArrayRef = match container.data_type() {
        DataType::Map(_, _) => {
            let map = container.as_map();
            let keys = cast(map.keys(), &DataType::Utf8)?;
            let keys = keys.as_string::<i32>();
            let wanted = key.as_string::<i32>();
            let offsets = map.value_offsets();
            for row in 0..map.len() {
                let found = (map.is_valid(row) && wanted.is_valid(row))
                    .then(|| {
                        (offsets[row] as usize..offsets[row + 1] as usize)
                            .find(|&at| keys.value(at) == wanted.value(row))
                    })
                    .flatten();
                indices.push(found.map(|at| at as u32));
            }
            Arc::clone(map.values())
        }
        DataType::List(_) => {
            let list = container.as_list::<i32>();
            let positions = key.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let offsets = list.value_offsets();
            for row in 0..list.len() {
                let (start, end) = (offsets[row] as i64, offsets[row + 1] as i64);
                let at = (list.is_valid(row) && positions.is_valid(row))
                    .then(|| {
                        let position = positions.value(row);
                        // 1-based; negative counts from the end; out of range is NULL.
                        let at = if position > 0 {
                            start + position - 1
                        } else {
                            end + position
                        };
                        (position != 0 && at >= start && at < end).then_some(at as u32)
                    })
                    .flatten();
                indices.push(at);
            }
            Arc::clone(list.values())
        }
        other => return exec_err!("element_at takes a map or an array, got {other}"),
    };
    Ok(take(&values, &UInt32Array::from(indices), None)?)
}

/// Trino's `slice(array, start, length)`: 1-based start, negative from the end.
fn slice(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let list = arrays[0].as_list::<i32>();
    let starts = arrays[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let lengths = arrays[2].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let offsets = list.value_offsets();
    let mut indices: Vec<u32> = Vec::new();
    let mut new_offsets = vec![0i32];
    let mut valid = Vec::with_capacity(list.len());
    for row in 0..list.len() {
        let present = list.is_valid(row) && starts.is_valid(row) && lengths.is_valid(row);
        valid.push(present);
        if present {
            let (first, end) = (offsets[row] as i64, offsets[row + 1] as i64);
            let (start, length) = (starts.value(row), lengths.value(row));
            if start == 0 {
                return exec_err!("SQL array indices start at 1");
            }
            if length < 0 {
                return exec_err!("Length must be greater than or equal to 0");
            }
            let from = if start > 0 {
                first + start - 1
            } else {
                end + start
            };
            let to = from.saturating_add(length).min(end);
            for at in from.max(first)..to {
                indices.push(at as u32);
            }
        }
        new_offsets.push(indices.len() as i32);
    }
    let values = take(list.values(), &UInt32Array::from(indices), None)?;
    let DataType::List(item) = list.data_type() else {
        return exec_err!("slice takes an array");
    };
    Ok(Arc::new(datafusion::arrow::array::ListArray::try_new(
        Arc::clone(item),
        datafusion::arrow::buffer::OffsetBuffer::new(new_offsets.into()),
        values,
        Some(datafusion::arrow::buffer::NullBuffer::from(valid)),
    )?))
}

fn contains(container: &ArrayRef, item: &ArrayRef) -> Result<ArrayRef> {
    if !is_list(container.data_type()) {
        let (texts, parts) = (container.as_string::<i32>(), item.as_string::<i32>());
        return Ok(Arc::new(BooleanArray::from_iter(
            texts
                .iter()
                .zip(parts.iter())
                .map(|(text, part)| Some(text?.contains(part?))),
        )));
    }
    let list = container.as_list::<i32>();
    let values = cast(list.values(), &DataType::Utf8)?;
    let values = values.as_string::<i32>();
    let items = cast(item, &DataType::Utf8)?;
    let items = items.as_string::<i32>();
    let offsets = list.value_offsets();
    Ok(Arc::new(BooleanArray::from_iter((0..list.len()).map(
        |row| {
            if list.is_null(row) || items.is_null(row) {
                return None;
            }
            let range = offsets[row] as usize..offsets[row + 1] as usize;
            let mut saw_null = false;
            for at in range {
                if values.is_null(at) {
                    saw_null = true;
                } else if values.value(at) == items.value(row) {
                    return Some(true);
                }
            }
            // Trino: NULL when not found but the array holds a NULL.
            (!saw_null).then_some(false)
        },
    ))))
}

/// Each row's JSON value: JSON text parsed (NULL when invalid), or a map as an object
/// whose values that hold a JSON object or array are embedded as JSON.
fn json_values(array: &ArrayRef) -> Result<Vec<Option<Value>>> {
    if let DataType::Map(_, _) = array.data_type() {
        let map = array.as_map();
        let keys = cast(map.keys(), &DataType::Utf8)?;
        let values = cast(map.values(), &DataType::Utf8)?;
        let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
        let offsets = map.value_offsets();
        return Ok((0..map.len())
            .map(|row| {
                map.is_valid(row).then(|| {
                    let mut object = Map::new();
                    for at in offsets[row] as usize..offsets[row + 1] as usize {
                        let value = if values.is_null(at) {
                            Value::Null
                        } else {
                            embedded_json(values.value(at))
                        };
                        object.insert(keys.value(at).to_string(), value);
                    }
                    Value::Object(object)
                })
            })
            .collect());
    }
    Ok(array
        .as_string::<i32>()
        .iter()
        .map(|text| text.and_then(|text| serde_json::from_str(text).ok()))
        .collect())
}

pub(crate) fn embedded_json(text: &str) -> Value {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(value) = serde_json::from_str(text) {
            return value;
        }
    }
    Value::String(text.to_string())
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn json_path_fn(
    arrays: &[ArrayRef],
    rows: usize,
    finish: impl Fn(&Value) -> Option<String>,
) -> Result<ArrayRef> {
    let values = json_values(&arrays[0])?;
    let paths = arrays[1].as_string::<i32>();
    let mut out = Vec::with_capacity(rows);
    for (value, path) in values.iter().zip(paths.iter()) {
        let (Some(value), Some(path)) = (value, path) else {
            out.push(None);
            continue;
        };
        let steps = match parse_json_path(path) {
            Some(steps) => steps,
            None => return exec_err!("Invalid JSON path: '{path}'"),
        };
        out.push(follow(value, &steps).and_then(&finish));
    }
    Ok(Arc::new(StringArray::from(out)))
}

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The JSONPath subset Trino's json functions take: `$`, `.key`, `["key"]`, `['key']`, `[n]`.
fn parse_json_path(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(after[..end].to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inside = after[..end].trim();
            let quoted = inside
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| inside.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')));
            steps.push(match quoted {
                Some(key) => Step::Key(key.to_string()),
                None => Step::Index(inside.parse().ok()?),
            });
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn follow<'a>(value: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |value, step| match step {
        Step::Key(key) => value.as_object()?.get(key),
        Step::Index(index) => value.as_array()?.get(*index),
    })
}

fn json_array_get(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let values = json_values(&arrays[0])?;
    let indices = arrays[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    Ok(Arc::new(StringArray::from_iter(
        values.iter().zip(indices.iter()).map(|(value, index)| {
            let items = value.as_ref()?.as_array()?;
            let index = index?;
            let at = if index >= 0 {
                usize::try_from(index).ok()?
            } else {
                items
                    .len()
                    .checked_sub(usize::try_from(index.unsigned_abs()).ok()?)?
            };
            items.get(at).map(Value::to_string)
        }),
    )))
}

fn json_array_contains(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let values = json_values(&arrays[0])?;
    let wanted: Vec<Option<Value>> = match arrays[1].data_type() {
        DataType::Boolean => arrays[1]
            .as_boolean()
            .iter()
            .map(|b| b.map(Value::Bool))
            .collect(),
        DataType::Int64 => arrays[1]
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .iter()
            .map(|n| n.map(Value::from))
            .collect(),
        DataType::Float64 => arrays[1]
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .iter()
            .map(|n| n.map(Value::from))
            .collect(),
        _ => arrays[1]
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(Value::from))
            .collect(),
    };
    Ok(Arc::new(BooleanArray::from_iter(
        values.iter().zip(wanted).map(|(value, wanted)| {
            let items = value.as_ref()?.as_array()?;
            let wanted = wanted?;
            Some(items.iter().any(|item| match (item, &wanted) {
                (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                (a, b) => a == b,
            }))
        }),
    )))
}

fn timestamps(array: &ArrayRef) -> Vec<Option<NaiveDateTime>> {
    array
        .as_primitive::<TimestampMillisecondType>()
        .iter()
        .map(|millis| {
            millis
                .and_then(DateTime::from_timestamp_millis)
                .map(|t| t.naive_utc())
        })
        .collect()
}

fn unit_millis(unit: &str) -> Option<i64> {
    Some(match unit {
        "millisecond" => 1,
        "second" => 1_000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        "week" => 7 * 86_400_000,
        _ => return None,
    })
}

fn unit_months(unit: &str) -> Option<u32> {
    Some(match unit {
        "month" => 1,
        "quarter" => 3,
        "year" => 12,
        _ => return None,
    })
}

fn date_add(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let units = arrays[0].as_string::<i32>();
    let amounts = arrays[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let times = timestamps(&arrays[2]);
    let mut out = Vec::with_capacity(times.len());
    for ((unit, amount), time) in units.iter().zip(amounts.iter()).zip(times) {
        let (Some(unit), Some(amount), Some(time)) = (unit, amount, time) else {
            out.push(None);
            continue;
        };
        let unit = unit.to_ascii_lowercase();
        let shifted = if let Some(millis) = unit_millis(&unit) {
            amount
                .checked_mul(millis)
                .and_then(|delta| time.checked_add_signed(chrono::TimeDelta::milliseconds(delta)))
        } else if let Some(months) = unit_months(&unit) {
            let total = amount.checked_mul(i64::from(months));
            total.and_then(|total| {
                let magnitude = Months::new(u32::try_from(total.unsigned_abs()).ok()?);
                if total >= 0 {
                    time.checked_add_months(magnitude)
                } else {
                    time.checked_sub_months(magnitude)
                }
            })
        } else {
            return exec_err!("'{unit}' is not a valid TIMESTAMP field");
        };
        out.push(shifted.map(|time| time.and_utc().timestamp_millis()));
    }
    Ok(Arc::new(TimestampMillisecondArray::from(out)))
}

/// Whole months from `from` to `to`, truncated toward zero, as Trino counts them.
fn months_between(from: NaiveDateTime, to: NaiveDateTime) -> i64 {
    let months =
        i64::from(to.year() - from.year()) * 12 + i64::from(to.month()) - i64::from(from.month());
    let rest = |t: NaiveDateTime| (t.day(), t.time());
    if months > 0 && rest(to) < rest(from) {
        months - 1
    } else if months < 0 && rest(to) > rest(from) {
        months + 1
    } else {
        months
    }
}

fn date_diff(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let units = arrays[0].as_string::<i32>();
    let (starts, ends) = (timestamps(&arrays[1]), timestamps(&arrays[2]));
    let mut out = Int64Builder::with_capacity(starts.len());
    for ((unit, start), end) in units.iter().zip(starts).zip(ends) {
        let (Some(unit), Some(start), Some(end)) = (unit, start, end) else {
            out.append_null();
            continue;
        };
        let unit = unit.to_ascii_lowercase();
        if let Some(millis) = unit_millis(&unit) {
            out.append_value((end - start).num_milliseconds() / millis);
        } else if let Some(months) = unit_months(&unit) {
            out.append_value(months_between(start, end) / i64::from(months));
        } else {
            return exec_err!("'{unit}' is not a valid TIMESTAMP field");
        }
    }
    Ok(Arc::new(out.finish()))
}

/// A Joda-Time pattern (Trino's format_datetime) as a chrono format string.
pub(crate) fn joda_to_chrono(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c == '\'' {
            let end = chars[at + 1..]
                .iter()
                .position(|&q| q == '\'')
                .map(|p| at + 1 + p);
            match end {
                Some(end) if end == at + 1 => out.push('\''),
                Some(end) => out.extend(chars[at + 1..end].iter().map(|&c| {
                    if c == '%' {
                        "%%".to_string()
                    } else {
                        c.to_string()
                    }
                })),
                None => out.extend(chars[at + 1..].iter()),
            }
            at = end.map_or(chars.len(), |end| end + 1);
            continue;
        }
        let run = chars[at..].iter().take_while(|&&d| d == c).count();
        let spec = match (c, run) {
            ('y' | 'Y' | 'u', 2) => "%y",
            ('y' | 'Y' | 'u', _) => "%Y",
            ('x', _) => "%G",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', _) => "%3f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('e', _) => "%u",
            ('w', _) => "%V",
            ('Z', 1) => "%z",
            ('Z', _) => "%:z",
            ('z', _) => "UTC",
            _ => "",
        };
        if spec.is_empty() {
            for _ in 0..run {
                if c == '%' {
                    out.push_str("%%");
                } else {
                    out.push(c);
                }
            }
        } else {
            out.push_str(spec);
        }
        at += run;
    }
    out
}

fn format_datetime(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let times = timestamps(&arrays[0]);
    let patterns = arrays[1].as_string::<i32>();
    let mut out = Vec::with_capacity(times.len());
    for (time, pattern) in times.into_iter().zip(patterns.iter()) {
        let (Some(time), Some(pattern)) = (time, pattern) else {
            out.push(None);
            continue;
        };
        let format = joda_to_chrono(pattern);
        let items: Vec<_> = chrono::format::StrftimeItems::new(&format).collect();
        if items.contains(&chrono::format::Item::Error) {
            return exec_err!("Invalid format: '{pattern}'");
        }
        out.push(Some(
            time.and_utc()
                .format_with_items(items.into_iter())
                .to_string(),
        ));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// ISO 8601 date-times with or without a zone (UTC assumed), or a date alone.
fn parse_iso8601(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc().timestamp_millis())
}

fn date_part(part: Part, array: &ArrayRef) -> ArrayRef {
    Arc::new(Int64Array::from_iter(timestamps(array).into_iter().map(
        |time| {
            let time = time?;
            Some(i64::from(match part {
                Part::Year => time.year() as u32,
                Part::Quarter => (time.month() - 1) / 3 + 1,
                Part::Month => time.month(),
                Part::Week => time.iso_week().week(),
                Part::DayOfMonth => time.day(),
                Part::DayOfWeek => time.weekday().number_from_monday(),
                Part::DayOfYear => time.ordinal(),
                Part::YearOfWeek => time.iso_week().year() as u32,
                Part::Hour => time.hour(),
                Part::Minute => time.minute(),
                Part::Second => time.second(),
                Part::Millisecond => time.and_utc().timestamp_subsec_millis(),
            }))
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        assert_eq!(
            parse_json_path("$.a['b c'][2].d"),
            Some(vec![
                Step::Key("a".into()),
                Step::Key("b c".into()),
                Step::Index(2),
                Step::Key("d".into())
            ])
        );
        assert_eq!(parse_json_path("$"), Some(vec![]));
        assert_eq!(parse_json_path("a.b"), None);
        assert_eq!(parse_json_path("$."), None);
    }

    #[test]
    fn joda_patterns() {
        assert_eq!(
            joda_to_chrono("yyyy-MM-dd HH:mm:ss.SSS"),
            "%Y-%m-%d %H:%M:%S.%3f"
        );
        assert_eq!(joda_to_chrono("yyyy-MM-dd'T'HH"), "%Y-%m-%dT%H");
    }

    #[test]
    fn months_are_whole() {
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            months_between(t("2023-01-31 00:00:00"), t("2023-02-28 00:00:00")),
            0
        );
        assert_eq!(
            months_between(t("2023-01-15 00:00:00"), t("2023-03-15 00:00:00")),
            2
        );
        assert_eq!(
            months_between(t("2023-03-15 00:00:00"), t("2023-01-16 00:00:00")),
            -1
        );
    }
}
