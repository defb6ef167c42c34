//! More Trino scalar functions: regular expressions (`regexp_extract`,
//! `regexp_extract_all`, `regexp_replace`, Java's replacement syntax `$1`), URLs
//! (`url_extract_*`), `date_format` (MySQL patterns), `parse_datetime` (Joda patterns),
//! `from_unixtime`/`to_unixtime`, and the casts [`super::rewrite`] turns Trino's into
//! (`lake_cast_varchar`, `lake_cast_json`, `lake_cast_map`, `lake_cast_array`).

use super::functions::{check_arity, embedded_json, joda_to_chrono};
use crate::schema::TIMESTAMP;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, ListBuilder, MapBuilder, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    RegexpExtract,
    RegexpExtractAll,
    RegexpReplace,
    Url(UrlPart),
    UrlParameter,
    DateFormat,
    ParseDatetime,
    FromUnixtime,
    ToUnixtime,
    CastVarchar,
    CastJson,
    CastMap,
    CastArray,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum UrlPart {
    Host,
    Path,
    Port,
    Protocol,
    Query,
    Fragment,
}

const FUNCTIONS: &[(&str, Kind)] = &[
    ("regexp_extract", Kind::RegexpExtract),
    ("regexp_extract_all", Kind::RegexpExtractAll),
    ("regexp_replace", Kind::RegexpReplace),
    ("url_extract_host", Kind::Url(UrlPart::Host)),
    ("url_extract_path", Kind::Url(UrlPart::Path)),
    ("url_extract_port", Kind::Url(UrlPart::Port)),
    ("url_extract_protocol", Kind::Url(UrlPart::Protocol)),
    ("url_extract_query", Kind::Url(UrlPart::Query)),
    ("url_extract_fragment", Kind::Url(UrlPart::Fragment)),
    ("url_extract_parameter", Kind::UrlParameter),
    ("date_format", Kind::DateFormat),
    ("parse_datetime", Kind::ParseDatetime),
    ("from_unixtime", Kind::FromUnixtime),
    ("to_unixtime", Kind::ToUnixtime),
    ("lake_cast_varchar", Kind::CastVarchar),
    ("lake_cast_json", Kind::CastJson),
    ("lake_cast_map", Kind::CastMap),
    ("lake_cast_array", Kind::CastArray),
];

/// The functions of this module, to register on a session (they replace DataFusion's
/// `regexp_replace`, `date_format`, `from_unixtime` and `to_unixtime`, which differ).
pub(crate) fn more_trino_functions() -> Vec<ScalarUDF> {
    FUNCTIONS
        .iter()
        .map(|&(name, kind)| {
            ScalarUDF::new_from_impl(MoreFunction {
                name,
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MoreFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

fn text_map_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
        .finish()
        .data_type()
        .clone()
}

fn text_list_type() -> DataType {
    ListBuilder::new(StringBuilder::new())
        .finish()
        .data_type()
        .clone()
}

impl ScalarUDFImpl for MoreFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        use DataType::*;
        Ok(match self.kind {
            Kind::RegexpExtract | Kind::RegexpExtractAll => {
                check_arity(self.name, args, 2..=3)?;
                let mut types = vec![Utf8, Utf8];
                if args.len() == 3 {
                    types.push(Int64);
                }
                types
            }
            Kind::RegexpReplace => {
                check_arity(self.name, args, 2..=3)?;
                vec![Utf8; args.len()]
            }
            Kind::Url(_) => {
                check_arity(self.name, args, 1..=1)?;
                vec![Utf8]
            }
            Kind::UrlParameter => {
                check_arity(self.name, args, 2..=2)?;
                vec![Utf8, Utf8]
            }
            Kind::DateFormat => {
                check_arity(self.name, args, 2..=2)?;
                vec![TIMESTAMP, Utf8]
            }
            Kind::ParseDatetime => {
                check_arity(self.name, args, 2..=2)?;
                vec![Utf8, Utf8]
            }
            Kind::FromUnixtime => {
                check_arity(self.name, args, 1..=1)?;
                vec![Float64]
            }
            Kind::ToUnixtime => {
                check_arity(self.name, args, 1..=1)?;
                vec![TIMESTAMP]
            }
            Kind::CastVarchar | Kind::CastJson | Kind::CastMap | Kind::CastArray => {
                check_arity(self.name, args, 3..=3)?;
                let input = match (self.kind, &args[0]) {
                    (Kind::CastMap | Kind::CastArray, Map(..) | List(_)) => args[0].clone(),
                    (Kind::CastMap | Kind::CastArray, LargeList(item)) => List(item.clone()),
                    (Kind::CastMap | Kind::CastArray, _) => Utf8,
                    (_, Utf8View | LargeUtf8) => Utf8,
                    (_, other) => other.clone(),
                };
                vec![input, Utf8, Boolean]
            }
        })
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        use DataType::*;
        Ok(match self.kind {
            Kind::RegexpExtract
            | Kind::RegexpReplace
            | Kind::Url(UrlPart::Host | UrlPart::Path | UrlPart::Protocol)
            | Kind::Url(UrlPart::Query | UrlPart::Fragment)
            | Kind::UrlParameter
            | Kind::DateFormat
            | Kind::CastVarchar
            | Kind::CastJson => Utf8,
            Kind::Url(UrlPart::Port) => Int64,
            Kind::RegexpExtractAll | Kind::CastArray => text_list_type(),
            Kind::CastMap => text_map_type(),
            Kind::ParseDatetime | Kind::FromUnixtime => TIMESTAMP,
            Kind::ToUnixtime => Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result: ArrayRef = match self.kind {
            Kind::RegexpExtract => regexp_extract(&arrays)?,
            Kind::RegexpExtractAll => regexp_extract_all(&arrays)?,
            Kind::RegexpReplace => regexp_replace(&arrays, rows)?,
            Kind::Url(part) => url_part(part, &arrays[0]),
            Kind::UrlParameter => {
                let urls = arrays[0].as_string::<i32>();
                let names = arrays[1].as_string::<i32>();
                Arc::new(StringArray::from_iter(
                    urls.iter()
                        .zip(names.iter())
                        .map(|(url, name)| url_parameter(&Url::parse(url?)?, name?)),
                ))
            }
            Kind::DateFormat => date_format(&arrays)?,
            Kind::ParseDatetime => parse_datetime(&arrays)?,
            Kind::FromUnixtime => Arc::new(TimestampMillisecondArray::from_iter(
                arrays[0]
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|seconds| seconds.map(|s| (s * 1000.0).round() as i64)),
            )),
            Kind::ToUnixtime => Arc::new(Float64Array::from_iter(
                arrays[0]
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .map(|millis| millis.map(|m| m as f64 / 1000.0)),
            )),
            Kind::CastVarchar => cast_varchar(&arrays[0], failsafe(&arrays[2]))?,
            Kind::CastJson => cast_json(&arrays[0], failsafe(&arrays[2]))?,
            Kind::CastMap => cast_map(&arrays[0], &arrays[1], failsafe(&arrays[2]))?,
            Kind::CastArray => cast_array(&arrays[0], &arrays[1], failsafe(&arrays[2]))?,
        };
        Ok(ColumnarValue::Array(result))
    }
}

fn failsafe(flag: &ArrayRef) -> bool {
    let flags = flag.as_boolean();
    !flags.is_empty() && flags.is_valid(0) && flags.value(0)
}

/// Compiled patterns by text, for one batch.
#[derive(Default)]
struct Patterns(HashMap<String, Regex>);

impl Patterns {
    fn get(&mut self, pattern: &str) -> Result<&Regex> {
        if !self.0.contains_key(pattern) {
            match Regex::new(pattern) {
                Ok(regex) => {
                    self.0.insert(pattern.to_string(), regex);
                }
                Err(e) => return exec_err!("invalid regular expression '{pattern}': {e}"),
            }
        }
        Ok(&self.0[pattern])
    }
}

fn group_of(regex: &Regex, group: Option<i64>) -> Result<usize> {
    let group = group.unwrap_or(0);
    let groups = regex.captures_len() - 1;
    match usize::try_from(group) {
        Ok(group) if group <= groups => Ok(group),
        _ => exec_err!("Pattern has {groups} groups. Cannot access group {group}"),
    }
}

fn groups_argument(arrays: &[ArrayRef]) -> Vec<Option<i64>> {
    match arrays.get(2) {
        Some(groups) => groups.as_primitive::<Int64Type>().iter().collect(),
        None => vec![Some(0); arrays[0].len()],
    }
}

fn regexp_extract(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let texts = arrays[0].as_string::<i32>();
    let patterns = arrays[1].as_string::<i32>();
    let groups = groups_argument(arrays);
    let mut compiled = Patterns::default();
    let mut out = StringBuilder::new();
    for (row, &group) in groups.iter().enumerate().take(texts.len()) {
        let (Some(text), Some(pattern), Some(group)) = (
            texts.is_valid(row).then(|| texts.value(row)),
            patterns.is_valid(row).then(|| patterns.value(row)),
            group,
        ) else {
            out.append_null();
            continue;
        };
        let regex = compiled.get(pattern)?;
        let group = group_of(regex, Some(group))?;
        out.append_option(
            regex
                .captures(text)
                .and_then(|captures| captures.get(group))
                .map(|found| found.as_str()),
        );
    }
    Ok(Arc::new(out.finish()))
}

fn regexp_extract_all(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let texts = arrays[0].as_string::<i32>();
    let patterns = arrays[1].as_string::<i32>();
    let groups = groups_argument(arrays);
    let mut compiled = Patterns::default();
    let mut out = ListBuilder::new(StringBuilder::new());
    for (row, &group) in groups.iter().enumerate().take(texts.len()) {
        let (Some(text), Some(pattern), Some(group)) = (
            texts.is_valid(row).then(|| texts.value(row)),
            patterns.is_valid(row).then(|| patterns.value(row)),
            group,
        ) else {
            out.append_null();
            continue;
        };
        let regex = compiled.get(pattern)?;
        let group = group_of(regex, Some(group))?;
        for captures in regex.captures_iter(text) {
            out.values()
                .append_option(captures.get(group).map(|found| found.as_str()));
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

/// Java's replacement syntax (`$1`, `${name}`, `\$`) as the regex crate's (`${1}`, `$$`).
fn java_replacement(replacement: &str) -> String {
    let chars: Vec<char> = replacement.chars().collect();
    let mut out = String::with_capacity(replacement.len());
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '\\' if at + 1 < chars.len() => {
                if chars[at + 1] == '$' {
                    out.push_str("$$");
                } else {
                    out.push(chars[at + 1]);
                }
                at += 2;
            }
            '$' if chars.get(at + 1).is_some_and(char::is_ascii_digit) => {
                let digits: String = chars[at + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                out.push_str(&format!("${{{digits}}}"));
                at += 1 + digits.len();
            }
            '$' if chars.get(at + 1) == Some(&'{') => {
                out.push('$');
                at += 1;
            }
            '$' => {
                out.push_str("$$");
                at += 1;
            }
            c => {
                out.push(c);
                at += 1;
            }
        }
    }
    out
}

fn regexp_replace(arrays: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let texts = arrays[0].as_string::<i32>();
    let patterns = arrays[1].as_string::<i32>();
    let empty = StringArray::from(vec![""; rows]);
    let replacements = match arrays.get(2) {
        Some(replacements) => replacements.as_string::<i32>(),
        None => &empty,
    };
    let mut compiled = Patterns::default();
    let mut out = StringBuilder::new();
    for row in 0..rows {
        if texts.is_null(row) || patterns.is_null(row) || replacements.is_null(row) {
            out.append_null();
            continue;
        }
        let regex = compiled.get(patterns.value(row))?;
        let replacement = java_replacement(replacements.value(row));
        out.append_value(regex.replace_all(texts.value(row), replacement.as_str()));
    }
    Ok(Arc::new(out.finish()))
}

/// The parts of a URL Trino's `url_extract_*` read (RFC 3986, without validation).
struct Url<'a> {
    protocol: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<i64>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

impl<'a> Url<'a> {
    fn parse(text: &'a str) -> Option<Url<'a>> {
        let (rest, fragment) = match text.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (text, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (protocol, rest) = match rest.split_once(':') {
            Some((scheme, rest))
                if !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                (Some(scheme), rest)
            }
            _ => (None, rest),
        };
        let (authority, path) = match rest.strip_prefix("//") {
            Some(after) => {
                let end = after.find('/').unwrap_or(after.len());
                (Some(&after[..end]), &after[end..])
            }
            None => (None, rest),
        };
        let (host, port) = match authority {
            Some(authority) => {
                let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                match hostport.rsplit_once(':') {
                    Some((host, port)) if !host.ends_with(']') || port.is_empty() => {
                        match port.parse::<i64>() {
                            Ok(port) => (Some(host), Some(port)),
                            Err(_) if port.is_empty() => (Some(host), None),
                            Err(_) => return None,
                        }
                    }
                    _ => (Some(hostport), None),
                }
            }
            None => (None, None),
        };
        Some(Url {
            protocol,
            host,
            port,
            path,
            query,
            fragment,
        })
    }
}

fn url_part(part: UrlPart, array: &ArrayRef) -> ArrayRef {
    let urls = array.as_string::<i32>();
    let parsed = urls.iter().map(|url| url.and_then(Url::parse));
    match part {
        UrlPart::Port => Arc::new(datafusion::arrow::array::Int64Array::from_iter(
            parsed.map(|url| url?.port),
        )),
        _ => Arc::new(StringArray::from_iter(parsed.map(|url| {
            let url = url?;
            match part {
                UrlPart::Host => url.host.filter(|host| !host.is_empty()),
                UrlPart::Path => Some(url.path),
                UrlPart::Protocol => url.protocol,
                UrlPart::Query => url.query,
                UrlPart::Fragment => url.fragment,
                UrlPart::Port => None,
            }
        }))),
    }
}

fn url_parameter(url: &Url, name: &str) -> Option<String> {
    url.query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn timestamps(array: &ArrayRef) -> impl Iterator<Item = Option<NaiveDateTime>> + '_ {
    array
        .as_primitive::<TimestampMillisecondType>()
        .iter()
        .map(|millis| {
            millis
                .and_then(DateTime::from_timestamp_millis)
                .map(|t| t.naive_utc())
        })
}

/// A MySQL `date_format` pattern (Trino's `date_format`) as a chrono format string.
fn mysql_to_chrono(pattern: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            break;
        };
        out.push_str(match spec {
            'a' => "%a",
            'b' => "%b",
            'c' => "%-m",
            'd' => "%d",
            'e' => "%-d",
            'f' => "%6f",
            'H' => "%H",
            'h' | 'I' => "%I",
            'i' => "%M",
            'j' => "%j",
            'k' => "%-H",
            'l' => "%-I",
            'M' => "%B",
            'm' => "%m",
            'p' => "%p",
            'r' => "%I:%M:%S %p",
            'S' | 's' => "%S",
            'T' => "%H:%M:%S",
            'v' => "%V",
            'W' => "%A",
            'w' => "%w",
            'x' => "%G",
            'Y' => "%Y",
            'y' => "%y",
            '%' => "%%",
            'D' | 'U' | 'u' | 'V' | 'X' => {
                return exec_err!("date_format: %{spec} not supported in date format string")
            }
            other => {
                out.push(other);
                continue;
            }
        });
    }
    Ok(out)
}

fn date_format(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let patterns = arrays[1].as_string::<i32>();
    let mut formats: HashMap<&str, String> = HashMap::new();
    let mut out = StringBuilder::new();
    for (time, pattern) in timestamps(&arrays[0]).zip(patterns.iter()) {
        let (Some(time), Some(pattern)) = (time, pattern) else {
            out.append_null();
            continue;
        };
        if !formats.contains_key(pattern) {
            formats.insert(pattern, mysql_to_chrono(pattern)?);
        }
        out.append_value(time.format(&formats[pattern]).to_string());
    }
    Ok(Arc::new(out.finish()))
}

fn parse_datetime(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let texts = arrays[0].as_string::<i32>();
    let patterns = arrays[1].as_string::<i32>();
    let mut out = Vec::with_capacity(texts.len());
    for (text, pattern) in texts.iter().zip(patterns.iter()) {
        let (Some(text), Some(pattern)) = (text, pattern) else {
            out.push(None);
            continue;
        };
        let format = joda_to_chrono(pattern);
        let parsed = NaiveDateTime::parse_from_str(text, &format)
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(text, &format)
                    .ok()
                    .and_then(|day| day.and_hms_opt(0, 0, 0))
            })
            .or_else(|| {
                DateTime::parse_from_str(text, &format)
                    .ok()
                    .map(|time| time.naive_utc())
            });
        match parsed {
            Some(time) => out.push(Some(time.and_utc().timestamp_millis())),
            None => return exec_err!("Invalid format: \"{text}\" (pattern '{pattern}')"),
        }
    }
    Ok(Arc::new(TimestampMillisecondArray::from(out)))
}

/// Trino's text of a timestamp: `2023-01-22 10:00:00.000`.
pub(crate) fn timestamp_text(time: NaiveDateTime) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn cast_options(failsafe: bool) -> CastOptions<'static> {
    CastOptions {
        safe: failsafe,
        ..Default::default()
    }
}

fn cast_varchar(array: &ArrayRef, failsafe: bool) -> Result<ArrayRef> {
    if let DataType::Timestamp(..) = array.data_type() {
        let millis = cast_with_options(array, &TIMESTAMP, &cast_options(failsafe))?;
        return Ok(Arc::new(StringArray::from_iter(
            timestamps(&millis).map(|time| time.map(timestamp_text)),
        )));
    }
    if matches!(
        array.data_type(),
        DataType::Map(..) | DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_)
    ) {
        if failsafe {
            return Ok(datafusion::arrow::array::new_null_array(
                &DataType::Utf8,
                array.len(),
            ));
        }
        return exec_err!("Cannot cast {} to varchar", array.data_type());
    }
    Ok(cast_with_options(
        array,
        &DataType::Utf8,
        &cast_options(failsafe),
    )?)
}

/// The value at `row` as JSON; map values holding JSON objects or arrays are embedded.
fn json_value(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            let keys = entries.column(0);
            let values = entries.column(1);
            let mut object = serde_json::Map::new();
            for at in 0..entries.len() {
                let key = match json_value(keys.as_ref(), at) {
                    Value::String(key) => key,
                    other => other.to_string(),
                };
                let value = match json_value(values.as_ref(), at) {
                    Value::String(text) => embedded_json(&text),
                    other => other,
                };
                object.insert(key, value);
            }
            Value::Object(object)
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            Value::Array(
                (0..items.len())
                    .map(|i| json_value(items.as_ref(), i))
                    .collect(),
            )
        }
        DataType::Struct(fields) => {
            let columns = array.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(columns.columns())
                    .map(|(field, column)| (field.name().clone(), json_value(column.as_ref(), row)))
                    .collect(),
            )
        }
        DataType::Timestamp(..) => {
            let single = array.slice(row, 1);
            match cast_with_options(&single, &TIMESTAMP, &CastOptions::default()) {
                Ok(millis) => timestamps(&millis)
                    .next()
                    .flatten()
                    .map_or(Value::Null, |time| Value::String(timestamp_text(time))),
                Err(_) => Value::Null,
            }
        }
        data_type if data_type.is_numeric() => {
            let single = array.slice(row, 1);
            let as_float = cast_with_options(&single, &DataType::Float64, &CastOptions::default());
            let integral = data_type.is_integer();
            match (
                integral,
                cast_with_options(&single, &DataType::Int64, &CastOptions::default()),
                as_float,
            ) {
                (true, Ok(int), _) => Value::from(int.as_primitive::<Int64Type>().value(0)),
                (_, _, Ok(float)) => {
                    serde_json::Number::from_f64(float.as_primitive::<Float64Type>().value(0))
                        .map_or(Value::Null, Value::Number)
                }
                _ => Value::Null,
            }
        }
        _ => match cast_with_options(
            &array.slice(row, 1),
            &DataType::Utf8,
            &CastOptions::default(),
        ) {
            Ok(text) => Value::String(text.as_string::<i32>().value(0).to_string()),
            Err(_) => Value::Null,
        },
    }
}

fn cast_json(array: &ArrayRef, _failsafe: bool) -> Result<ArrayRef> {
    Ok(Arc::new(StringArray::from_iter((0..array.len()).map(
        |row| {
            array
                .is_valid(row)
                .then(|| json_value(array.as_ref(), row).to_string())
        },
    ))))
}

/// A JSON value as an element of `array(varchar)`/`map(varchar, varchar)` (`None`: not a
/// scalar) or of `array(json)`/`map(varchar, json)` (its JSON text).
fn element_text(value: &Value, as_json: bool) -> Option<Option<String>> {
    if as_json {
        return Some(Some(value.to_string()));
    }
    match value {
        Value::Null => Some(None),
        Value::String(text) => Some(Some(text.clone())),
        Value::Number(number) => Some(Some(number.to_string())),
        Value::Bool(flag) => Some(Some(flag.to_string())),
        _ => None,
    }
}

fn kind_is_json(kinds: &ArrayRef) -> bool {
    let kinds = kinds.as_string::<i32>();
    !kinds.is_empty() && kinds.is_valid(0) && kinds.value(0) == "json"
}

fn cast_map(array: &ArrayRef, kinds: &ArrayRef, failsafe: bool) -> Result<ArrayRef> {
    let as_json = kind_is_json(kinds);
    let mut out = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for row in 0..array.len() {
        if array.is_null(row) {
            out.append(false)?;
            continue;
        }
        let value = match array.data_type() {
            DataType::Map(..) => Some(json_value(array.as_ref(), row)),
            DataType::Utf8 => serde_json::from_str(array.as_string::<i32>().value(row)).ok(),
            other => return exec_err!("Cannot cast {other} to map"),
        };
        let entries: Option<Vec<(String, Option<String>)>> = match &value {
            Some(Value::Object(object)) => object
                .iter()
                .map(|(key, value)| Some((key.clone(), element_text(value, as_json)?)))
                .collect(),
            _ => None,
        };
        match entries {
            Some(entries) => {
                for (key, value) in entries {
                    out.keys().append_value(key);
                    out.values().append_option(value);
                }
                out.append(true)?;
            }
            None if failsafe => out.append(false)?,
            None => {
                return exec_err!(
                    "Cannot cast to map({}): {}",
                    if as_json {
                        "varchar, json"
                    } else {
                        "varchar, varchar"
                    },
                    super::render::render_value(array.as_ref(), row).unwrap_or_default()
                )
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

fn cast_array(array: &ArrayRef, kinds: &ArrayRef, failsafe: bool) -> Result<ArrayRef> {
    let as_json = kind_is_json(kinds);
    let mut out = ListBuilder::new(StringBuilder::new());
    for row in 0..array.len() {
        if array.is_null(row) {
            out.append(false);
            continue;
        }
        let value = match array.data_type() {
            DataType::List(_) => Some(json_value(array.as_ref(), row)),
            DataType::Utf8 => serde_json::from_str(array.as_string::<i32>().value(row)).ok(),
            other => return exec_err!("Cannot cast {other} to array"),
        };
        let items: Option<Vec<Option<String>>> = match &value {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| element_text(item, as_json))
                .collect(),
            _ => None,
        };
        match items {
            Some(items) => {
                for item in items {
                    out.values().append_option(item);
                }
                out.append(true);
            }
            None if failsafe => out.append(false),
            None => {
                return exec_err!(
                    "Cannot cast to array({}): {}",
                    if as_json { "json" } else { "varchar" },
                    super::render::render_value(array.as_ref(), row).unwrap_or_default()
                )
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_replacements() {
        assert_eq!(java_replacement("$1-$2"), "${1}-${2}");
        assert_eq!(java_replacement("\\$x $"), "$$x $$");
        assert_eq!(java_replacement("${name}"), "${name}");
    }

    #[test]
    fn urls() {
        let url = Url::parse("https://user@example.com:8443/a/b?x=1&y=a+b#frag").unwrap();
        assert_eq!(url.protocol, Some("https"));
        assert_eq!(url.host, Some("example.com"));
        assert_eq!(url.port, Some(8443));
        assert_eq!(url.path, "/a/b");
        assert_eq!(url.query, Some("x=1&y=a+b"));
        assert_eq!(url.fragment, Some("frag"));
        assert_eq!(url_parameter(&url, "y").as_deref(), Some("a b"));
        assert_eq!(url_parameter(&url, "z"), None);
    }

    #[test]
    fn mysql_patterns() {
        assert_eq!(
            mysql_to_chrono("%Y-%m-%d %H:%i:%s").unwrap(),
            "%Y-%m-%d %H:%M:%S"
        );
        assert!(mysql_to_chrono("%D").is_err());
    }
}
