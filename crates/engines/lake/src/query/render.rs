//! Query results as Lake renders them: every value a string; timestamps
//! `YYYY-MM-DD HH:MM:SS.sss`; maps `{k=v, k2=v2}`, arrays `[a, b]` and rows
//! `{field=value}` the way Trino's Java client prints them; NULL inside a map, array or
//! row as `null`. A NULL result value is `None` here; [`crate::QueryOutput::result_rows`]
//! renders it as the empty string (AWS does not document it).

use chrono::{DateTime, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::*;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// The value at `row` of `array` as Lake's text, `None` for NULL.
pub(crate) fn render_value(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(render_present(array, row))
}

fn nested(array: &dyn Array, row: usize) -> String {
    render_value(array, row).unwrap_or_else(|| "null".to_string())
}

fn timestamp_text(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis)
        .map(|time| time.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| millis.to_string())
}

fn render_present(array: &dyn Array, row: usize) -> String {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).to_string(),
        DataType::Utf8View => array.as_string_view().value(row).to_string(),
        DataType::Timestamp(unit, _) => {
            let millis = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1000),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => array
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(row)
                    .div_euclid(1000),
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .value(row)
                    .div_euclid(1_000_000),
            };
            timestamp_text(millis)
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                .map(|day| day.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| days.to_string())
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let pairs: Vec<String> = (0..entries.len())
                .map(|i| format!("{}={}", nested(keys, i), nested(values, i)))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
        DataType::List(_) => list_text(&array.as_list::<i32>().value(row)),
        DataType::LargeList(_) => list_text(&array.as_list::<i64>().value(row)),
        DataType::Struct(fields) => {
            let columns = array.as_struct();
            let members: Vec<String> = fields
                .iter()
                .zip(columns.columns())
                .map(|(field, column)| format!("{}={}", field.name(), nested(column, row)))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        _ => {
            let options = FormatOptions::default();
            match ArrayFormatter::try_new(array, &options) {
                Ok(formatter) => formatter.value(row).to_string(),
                Err(_) => String::new(),
            }
        }
    }
}

fn list_text(values: &dyn Array) -> String {
    let items: Vec<String> = (0..values.len()).map(|i| nested(values, i)).collect();
    format!("[{}]", items.join(", "))
}
