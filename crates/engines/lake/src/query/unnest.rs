//! Trino's `CROSS JOIN UNNEST(x) [WITH ORDINALITY] AS t(a, …)` (or `, UNNEST(…)` in a FROM
//! list), which DataFusion cannot plan over a column of the joined table (a lateral
//! reference). It is rewritten into a derived table that keeps the table's name:
//!
//! ```sql
//! FROM eds_0 AS e CROSS JOIN UNNEST(e.resources) AS t(r)
//! -- becomes
//! FROM (SELECT * EXCLUDE (__lake_row), lake_field(__lake_row, 1) AS r
//!       FROM (SELECT *, unnest(lake_unnest_rows(e.resources, false, false)) AS __lake_row
//!             FROM eds_0 AS e) AS e) AS e
//! ```
//!
//! and `t.r` elsewhere in the query becomes `e.r`. `lake_unnest_rows` turns a map into
//! its entries (`k`, `v`), an array of rows into the rows' fields when several columns are
//! named, and appends the 1-based position for `WITH ORDINALITY`. Several arrays in one
//! `UNNEST(a, b)` are zipped (the shorter padded with NULL). Limits: the UNNEST must
//! follow a single table or subquery (not a parenthesised join) and name its columns.

use super::dialect::parse_statements;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, Ident, JoinOperator, Query, SetExpr, Statement, TableFactor,
    TableWithJoins, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Rewrites every `UNNEST` join of `query` (see the module's documentation).
pub(crate) fn rewrite_unnest(query: &mut Query) {
    let mut renames: Vec<(String, String)> = Vec::new();
    let _ = VisitMut::visit(&mut *query, &mut UnnestJoins(&mut renames));
    if renames.is_empty() {
        return;
    }
    let _ = visit_expressions_mut(query, |expr| {
        if let Expr::CompoundIdentifier(parts) = expr {
            if parts.len() >= 2 {
                if let Some((_, to)) = renames
                    .iter()
                    .find(|(from, _)| from.eq_ignore_ascii_case(&parts[0].value))
                {
                    parts[0] = Ident::new(to.clone());
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

struct UnnestJoins<'a>(&'a mut Vec<(String, String)>);

impl VisitorMut for UnnestJoins<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            // `FROM a, UNNEST(…) AS t(x)`: the UNNEST joins the item before it.
            let mut from: Vec<TableWithJoins> = Vec::new();
            for item in std::mem::take(&mut select.from) {
                let is_unnest =
                    item.joins.is_empty() && matches!(item.relation, TableFactor::UNNEST { .. });
                match from.last_mut() {
                    Some(previous) if is_unnest && previous.joins.is_empty() => {
                        if let Some(relation) =
                            unnest_join(&previous.relation, &item.relation, self.0)
                        {
                            previous.relation = relation;
                            continue;
                        }
                        from.push(item);
                    }
                    _ => from.push(item),
                }
            }
            for item in from.iter_mut() {
                while let Some(join) = item.joins.first() {
                    if !matches!(join.join_operator, JoinOperator::CrossJoin(_)) {
                        break;
                    }
                    let Some(relation) = unnest_join(&item.relation, &join.relation, self.0) else {
                        break;
                    };
                    item.relation = relation;
                    item.joins.remove(0);
                }
            }
            select.from = from;
        }
        ControlFlow::Continue(())
    }
}

/// The derived table joining `table` with the `UNNEST` `unnest`, or `None` when either is
/// not of a form handled here.
fn unnest_join(
    table: &TableFactor,
    unnest: &TableFactor,
    renames: &mut Vec<(String, String)>,
) -> Option<TableFactor> {
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_ordinality,
        ..
    } = unnest
    else {
        return None;
    };
    let columns: Vec<&Ident> = alias.columns.iter().map(|column| &column.name).collect();
    let name = match table {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } => alias.name.clone(),
        TableFactor::Table {
            name, alias: None, ..
        } => name.0.last()?.as_ident()?.clone(),
        _ => return None,
    };
    if columns.is_empty() || array_exprs.is_empty() {
        return None;
    }
    let (mut rows, mut fields) = (Vec::new(), Vec::new());
    if let [array] = array_exprs.as_slice() {
        let expand = columns.len() > 1 + usize::from(*with_ordinality);
        rows.push(format!(
            "unnest(lake_unnest_rows({array}, {expand}, {with_ordinality})) AS __lake_row0"
        ));
        for (position, column) in columns.iter().enumerate() {
            fields.push(format!(
                "lake_field(__lake_row0, {}) AS {column}",
                position + 1
            ));
        }
    } else {
        if *with_ordinality || columns.len() != array_exprs.len() {
            return None;
        }
        for (index, (array, column)) in array_exprs.iter().zip(&columns).enumerate() {
            rows.push(format!(
                "unnest(lake_unnest_rows({array}, false, false)) AS __lake_row{index}"
            ));
            fields.push(format!("lake_field(__lake_row{index}, 1) AS {column}"));
        }
    }
    let hidden: Vec<String> = (0..rows.len()).map(|i| format!("__lake_row{i}")).collect();
    let sql = format!(
        "SELECT * FROM (SELECT * EXCLUDE ({}), {} FROM (SELECT *, {} FROM {table}) AS {name}) AS {name}",
        hidden.join(", "),
        fields.join(", "),
        rows.join(", "),
    );
    let [Statement::Query(query)] =
        <[Statement; 1]>::try_from(parse_statements(&sql).ok()?).ok()?
    else {
        return None;
    };
    let SetExpr::Select(select) = *query.body else {
        return None;
    };
    let relation = select.from.into_iter().next()?.relation;
    renames.push((alias.name.value.clone(), name.value.clone()));
    Some(relation)
}

/// `lake_unnest_rows(x, expand, ordinality)` and `lake_field(row, n)`.
pub(crate) fn unnest_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(UnnestRows {
            signature: Signature::any(3, Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(RowField {
            signature: Signature::any(2, Volatility::Immutable),
        }),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct UnnestRows {
    signature: Signature,
}

fn flag(args: &ReturnFieldArgs, at: usize) -> bool {
    matches!(
        args.scalar_arguments.get(at),
        Some(Some(ScalarValue::Boolean(Some(true))))
    )
}

/// The fields of one unnested row, given the container's type.
fn row_fields(container: &DataType, expand: bool, ordinality: bool) -> Result<Fields> {
    let mut fields: Vec<FieldRef> = match container {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) => fields.iter().cloned().collect(),
            other => return plan_err!("UNNEST: unexpected map entries {other}"),
        },
        DataType::List(item) => match item.data_type() {
            DataType::Struct(fields) if expand => fields.iter().cloned().collect(),
            other => vec![Arc::new(Field::new("value", other.clone(), true))],
        },
        DataType::Null => vec![Arc::new(Field::new("value", DataType::Null, true))],
        other => return plan_err!("UNNEST takes an array or a map, got {other}"),
    };
    fields = fields
        .into_iter()
        .map(|field| Arc::new(field.as_ref().clone().with_nullable(true)))
        .collect();
    if ordinality {
        fields.push(Arc::new(Field::new("ordinality", DataType::Int64, true)));
    }
    Ok(fields.into())
}

impl ScalarUDFImpl for UnnestRows {
    fn name(&self) -> &str {
        "lake_unnest_rows"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        plan_err!("lake_unnest_rows: the type depends on its arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let fields = row_fields(
            args.arg_fields[0].data_type(),
            flag(&args, 1),
            flag(&args, 2),
        )?;
        Ok(Arc::new(Field::new(
            "rows",
            DataType::new_list(DataType::Struct(fields), true),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let DataType::List(item) = args.return_field.data_type() else {
            return exec_err!("lake_unnest_rows: unexpected return type");
        };
        let DataType::Struct(fields) = item.data_type() else {
            return exec_err!("lake_unnest_rows: unexpected return type");
        };
        let ordinality = fields.last().is_some_and(|f| f.name() == "ordinality");
        let container = &arrays[0];
        let (offsets, nulls, mut columns): (OffsetBuffer<i32>, _, Vec<ArrayRef>) =
            match container.data_type() {
                DataType::Map(..) => {
                    let map = container.as_map();
                    (
                        map.offsets().clone(),
                        map.nulls().cloned(),
                        map.entries().columns().to_vec(),
                    )
                }
                DataType::List(_) => {
                    let list = container.as_list::<i32>();
                    let values = Arc::clone(list.values());
                    let expand = matches!(
                        &args.args[1],
                        ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))
                    );
                    let columns = match values.data_type() {
                        DataType::Struct(_) if expand => values.as_struct().columns().to_vec(),
                        _ => vec![values],
                    };
                    (list.offsets().clone(), list.nulls().cloned(), columns)
                }
                DataType::Null => {
                    return Ok(ColumnarValue::Array(
                        datafusion::arrow::array::new_null_array(
                            args.return_field.data_type(),
                            args.number_rows,
                        ),
                    ))
                }
                other => return exec_err!("UNNEST takes an array or a map, got {other}"),
            };
        if ordinality {
            let mut positions = vec![0i64; columns.first().map_or(0, |c| c.len())];
            for window in offsets.windows(2) {
                for (n, at) in (window[0] as usize..window[1] as usize).enumerate() {
                    positions[at] = n as i64 + 1;
                }
            }
            columns.push(Arc::new(Int64Array::from(positions)));
        }
        let rows = StructArray::try_new(fields.clone(), columns, None)?;
        Ok(ColumnarValue::Array(Arc::new(ListArray::try_new(
            Arc::clone(item),
            offsets,
            Arc::new(rows),
            nulls,
        )?)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RowField {
    signature: Signature,
}

fn field_index(args: &ReturnFieldArgs) -> Result<usize> {
    match args.scalar_arguments.get(1) {
        Some(Some(value)) => match value.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(n)) if n >= 1 => Ok(n as usize - 1),
            _ => plan_err!("lake_field takes a position from 1"),
        },
        _ => plan_err!("lake_field takes a constant position"),
    }
}

impl ScalarUDFImpl for RowField {
    fn name(&self) -> &str {
        "lake_field"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        plan_err!("lake_field: the type depends on its arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let index = field_index(&args)?;
        match args.arg_fields[0].data_type() {
            DataType::Struct(fields) => match fields.get(index) {
                Some(field) => Ok(Arc::new(field.as_ref().clone().with_nullable(true))),
                None => plan_err!(
                    "UNNEST names {} columns, but its rows have {}",
                    index + 1,
                    fields.len()
                ),
            },
            other => plan_err!("lake_field takes a row, got {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let index = match &args.args[1] {
            ColumnarValue::Scalar(value) => match value.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(n)) if n >= 1 => n as usize - 1,
                _ => return exec_err!("lake_field takes a position from 1"),
            },
            ColumnarValue::Array(_) => return exec_err!("lake_field takes a constant position"),
        };
        let rows = args.args[0].to_array(args.number_rows)?;
        let rows = rows.as_struct();
        let column = Arc::clone(rows.column(index));
        // A NULL row (a shorter array of several zipped) has NULL fields.
        let column = match rows.nulls() {
            Some(nulls) if nulls.null_count() > 0 => {
                let keep = datafusion::arrow::array::BooleanArray::from_iter(
                    (0..rows.len()).map(|i| Some(rows.is_valid(i))),
                );
                let null = datafusion::arrow::array::new_null_array(column.data_type(), rows.len());
                datafusion::arrow::compute::kernels::zip::zip(&keep, &column, &null)?
            }
            _ => column,
        };
        Ok(ColumnarValue::Array(column))
    }
}
