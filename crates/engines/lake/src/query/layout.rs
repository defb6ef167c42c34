//! The CloudTrail-events table over the files: every typed column as stored, `eventjson`
//! rebuilt from the skeleton and the typed columns (or read whole from files written before
//! the skeleton layout), and `eventjsonchecksum` computed from it. A view, so DataFusion
//! reads only the columns a query needs and pushes filters down to the files.

use crate::schema::{events_schema, EVENT_JSON, EVENT_JSON_CHECKSUM, EVENT_JSON_SKELETON};
use crate::skeleton::{rebuild_column, ElidedColumns, ELIDED};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{exec_err, Column, Result};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The function that gives a row's record text: `lake_eventjson(eventjson,
/// eventjsonskeleton, <the ELIDED columns>)`.
const EVENT_JSON_FUNCTION: &str = "lake_eventjson";
/// Hex SHA-256 of a record text.
const CHECKSUM_FUNCTION: &str = "lake_eventjsonchecksum";

/// The table queries see for a CloudTrail-events store whose files `files` lists.
pub(crate) fn events_table(files: ListingTable) -> Result<ViewTable> {
    let arguments: Vec<Expr> = [EVENT_JSON, EVENT_JSON_SKELETON]
        .into_iter()
        .chain(ELIDED)
        .map(column)
        .collect();
    let projection: Vec<Expr> = events_schema()
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            EVENT_JSON => record_text(false).call(arguments.clone()).alias(EVENT_JSON),
            // Of the same expression, which DataFusion computes once for both columns.
            EVENT_JSON_CHECKSUM => record_text(true)
                .call(vec![record_text(false).call(arguments.clone())])
                .alias(EVENT_JSON_CHECKSUM),
            name => column(name),
        })
        .collect();
    let plan = LogicalPlanBuilder::scan("files", provider_as_source(Arc::new(files)), None)?
        .project(projection)?
        .build()?;
    Ok(ViewTable::new(plan, None))
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

fn record_text(checksum: bool) -> ScalarUDF {
    let arguments = if checksum { 1 } else { 2 + ELIDED.len() };
    ScalarUDF::new_from_impl(RecordText {
        checksum,
        signature: Signature::any(arguments, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RecordText {
    checksum: bool,
    signature: Signature,
}

impl ScalarUDFImpl for RecordText {
    fn name(&self) -> &str {
        if self.checksum {
            CHECKSUM_FUNCTION
        } else {
            EVENT_JSON_FUNCTION
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if self.checksum {
            let Some(texts) = arrays
                .first()
                .and_then(|texts| texts.as_string_opt::<i32>())
            else {
                return exec_err!("{} takes the record text", self.name());
            };
            // Into one buffer sized up front: no string allocated per row.
            let mut checksums = StringBuilder::with_capacity(texts.len(), texts.len() * 64);
            let mut hex_text = [0u8; 64];
            for text in texts.iter() {
                let Some(text) = text else {
                    checksums.append_null();
                    continue;
                };
                let written = hex::encode_to_slice(Sha256::digest(text), &mut hex_text);
                match (written, std::str::from_utf8(&hex_text)) {
                    (Ok(()), Ok(hex_text)) => checksums.append_value(hex_text),
                    _ => checksums.append_null(),
                }
            }
            return Ok(ColumnarValue::Array(Arc::new(checksums.finish())));
        }
        let [whole, skeletons, elided @ ..] = arrays.as_slice() else {
            return exec_err!("{} takes {} arguments", self.name(), 2 + ELIDED.len());
        };
        let (Some(whole), Some(skeletons)) = (
            whole.as_string_opt::<i32>(),
            skeletons.as_string_opt::<i32>(),
        ) else {
            return exec_err!("{} takes the record text columns", self.name());
        };
        let columns = ElidedColumns::new(elided.iter().collect());
        let texts: ArrayRef = Arc::new(rebuild_column(whole, skeletons, &columns));
        Ok(ColumnarValue::Array(texts))
    }
}
