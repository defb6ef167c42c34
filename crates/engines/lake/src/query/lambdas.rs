//! Trino's functions taking lambdas (`x -> …`), as DataFusion higher-order functions:
//! DataFusion's `array_transform`, `array_filter` and `array_any_match` under Trino's
//! names `transform`, `filter`, `any_match`; `all_match`, `none_match` and `reduce`
//! here. A lambda may use the row's columns (`x -> x = eventname`).

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, interleave, take, take_arrays};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::{list_values, list_values_row_number, take_function_args};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs, HigherOrderSignature,
    HigherOrderUDF, HigherOrderUDFImpl, LambdaArgument, LambdaParametersProgress, ValueOrLambda,
    Volatility,
};
use std::sync::Arc;

/// The higher-order functions to register on a session.
pub(crate) fn trino_higher_order_functions() -> Vec<HigherOrderUDF> {
    use datafusion::functions_nested::{array_filter, array_transform};
    vec![
        array_transform::array_transform_higher_order_function()
            .as_ref()
            .clone()
            .with_aliases(["transform"]),
        array_filter::array_filter_higher_order_function()
            .as_ref()
            .clone()
            .with_aliases(["filter"]),
        HigherOrderUDF::new_from_impl(Matching::new("all_match", Match::All)),
        HigherOrderUDF::new_from_impl(Matching::new("none_match", Match::None)),
        HigherOrderUDF::new_from_impl(Reduce::new()),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Match {
    All,
    None,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Matching {
    name: &'static str,
    which: Match,
    signature: HigherOrderSignature,
}

impl Matching {
    fn new(name: &'static str, which: Match) -> Self {
        Self {
            name,
            which,
            signature: HigherOrderSignature::exact(
                vec![ValueOrLambda::Value(()), ValueOrLambda::Lambda(())],
                Volatility::Immutable,
            ),
        }
    }
}

fn element_field(name: &str, list: &DataType) -> Result<FieldRef> {
    match list {
        DataType::List(field) | DataType::LargeList(field) => Ok(Arc::clone(field)),
        other => plan_err!("{name} takes an array, got {other}"),
    }
}

fn coerce_list(name: &str, arg: &DataType) -> Result<DataType> {
    Ok(match arg {
        DataType::List(_) | DataType::LargeList(_) => arg.clone(),
        DataType::ListView(field) | DataType::FixedSizeList(field, _) => {
            DataType::List(Arc::clone(field))
        }
        DataType::Null => DataType::new_list(DataType::Null, true),
        other => return plan_err!("{name} takes an array, got {other}"),
    })
}

/// Row `i` of a list: the range of its elements in the list's values (sliced lists
/// included), empty for NULL rows.
fn row_ranges(list: &ArrayRef) -> Result<Vec<(usize, usize)>> {
    let ranges = match list.data_type() {
        DataType::List(_) => {
            let list = list.as_list::<i32>();
            let offsets = list.value_offsets();
            let base = offsets[0] as usize;
            (0..list.len())
                .map(|i| (offsets[i] as usize - base, offsets[i + 1] as usize - base))
                .collect()
        }
        DataType::LargeList(_) => {
            let list = list.as_list::<i64>();
            let offsets = list.value_offsets();
            let base = offsets[0] as usize;
            (0..list.len())
                .map(|i| (offsets[i] as usize - base, offsets[i + 1] as usize - base))
                .collect()
        }
        other => return exec_err!("expected an array, got {other}"),
    };
    Ok(ranges)
}

impl HigherOrderUDFImpl for Matching {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [list] = take_function_args(self.name, arg_types)?;
        Ok(vec![coerce_list(self.name, list)?])
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let [list, _] = take_function_args(self.name, fields)?;
        let ValueOrLambda::Value(list) = list else {
            return plan_err!("{} takes an array and a lambda", self.name);
        };
        Ok(LambdaParametersProgress::Complete(vec![vec![
            element_field(self.name, list.data_type())?,
        ]]))
    }

    fn return_field_from_args(&self, _args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new("", DataType::Boolean, true)))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let [ValueOrLambda::Value(list), ValueOrLambda::Lambda(lambda)] =
            take_function_args(self.name, &args.args)?
        else {
            return exec_err!("{} takes an array and a lambda", self.name);
        };
        let list = list.to_array(args.number_rows)?;
        let values = list_values(&list)?;
        let elements = values.len();
        let predicate = {
            let param = move || Ok(Arc::clone(&values));
            lambda
                .evaluate(&[&param], |captures| {
                    let rows = list_values_row_number(&list)?;
                    Ok(take_arrays(captures, &rows, None)?)
                })?
                .into_array(elements)?
        };
        let Some(predicate) = predicate.as_any().downcast_ref::<BooleanArray>() else {
            return exec_err!(
                "{}: the lambda must return boolean, got {}",
                self.name,
                predicate.data_type()
            );
        };
        let ranges = row_ranges(&list)?;
        // Trino: all_match is false if any element is false, else NULL if any is NULL;
        // none_match is false if any element is true, else NULL if any is NULL.
        let answers = ranges.iter().enumerate().map(|(row, &(start, end))| {
            if list.is_null(row) {
                return None;
            }
            let mut unknown = false;
            for at in start..end {
                if predicate.is_null(at) {
                    unknown = true;
                } else if predicate.value(at) == (self.which == Match::None) {
                    return Some(false);
                }
            }
            (!unknown).then_some(true)
        });
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from_iter(
            answers,
        ))))
    }
}

/// `reduce(array, initial, (s, x) -> next, s -> output)`, folding each row's elements
/// in order.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Reduce {
    signature: HigherOrderSignature,
}

impl Reduce {
    fn new() -> Self {
        Self {
            signature: HigherOrderSignature::exact(
                vec![
                    ValueOrLambda::Value(()),
                    ValueOrLambda::Value(()),
                    ValueOrLambda::Lambda(()),
                    ValueOrLambda::Lambda(()),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl HigherOrderUDFImpl for Reduce {
    fn name(&self) -> &str {
        "reduce"
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [list, initial] = take_function_args("reduce", arg_types)?;
        let initial = match initial {
            DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int64,
            DataType::Float32 => DataType::Float64,
            DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
            other => other.clone(),
        };
        Ok(vec![coerce_list("reduce", list)?, initial])
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let [ValueOrLambda::Value(list), ValueOrLambda::Value(initial), ValueOrLambda::Lambda(_), ValueOrLambda::Lambda(_)] =
            take_function_args("reduce", fields)?
        else {
            return plan_err!(
                "reduce takes an array, an initial state and two lambdas: reduce(array, initial, (s, x) -> …, s -> …)"
            );
        };
        let state = Arc::new(Field::new("s", initial.data_type().clone(), true));
        Ok(LambdaParametersProgress::Complete(vec![
            vec![
                Arc::clone(&state),
                element_field("reduce", list.data_type())?,
            ],
            vec![state],
        ]))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let [_, _, _, ValueOrLambda::Lambda(output)] =
            take_function_args("reduce", args.arg_fields)?
        else {
            return plan_err!("reduce takes two lambdas after the array and the initial state");
        };
        Ok(Arc::new(Field::new("", output.data_type().clone(), true)))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [ValueOrLambda::Value(list), ValueOrLambda::Value(initial), ValueOrLambda::Lambda(step), ValueOrLambda::Lambda(output)] =
            take_function_args("reduce", &args.args)?
        else {
            return exec_err!("reduce takes an array, an initial state and two lambdas");
        };
        let list = list.to_array(rows)?;
        let mut state = initial.to_array(rows)?;
        let state_type = state.data_type().clone();
        let values = list_values(&list)?;
        let ranges = row_ranges(&list)?;
        let longest = ranges
            .iter()
            .map(|(start, end)| end - start)
            .max()
            .unwrap_or(0);
        for position in 0..longest {
            // The rows with an element at `position`, and where that element is.
            let (active, elements): (Vec<u32>, Vec<u32>) = ranges
                .iter()
                .enumerate()
                .filter(|&(row, &(start, end))| list.is_valid(row) && start + position < end)
                .map(|(row, &(start, _))| (row as u32, (start + position) as u32))
                .unzip();
            let active = UInt32Array::from(active);
            let element = take(&values, &UInt32Array::from(elements), None)?;
            let current = take(&state, &active, None)?;
            let next = apply(step, &[current, element], &active)?;
            let next = cast(&next, &state_type)?;
            // Row r takes its new state from `next` when active, else keeps its own.
            let mut from: Vec<(usize, usize)> = (0..rows).map(|row| (0, row)).collect();
            for (at, row) in active.values().iter().enumerate() {
                from[*row as usize] = (1, at);
            }
            state = interleave(&[state.as_ref(), next.as_ref()], &from)?;
        }
        let all = UInt32Array::from_iter_values(0..rows as u32);
        let result = apply(output, &[state], &all)?;
        // A NULL array gives NULL.
        let nulls = BooleanArray::from_iter((0..rows).map(|row| Some(list.is_null(row))));
        let null = new_null_array(result.data_type(), rows);
        Ok(ColumnarValue::Array(
            datafusion::arrow::compute::kernels::zip::zip(&nulls, &null, &result)?,
        ))
    }
}

/// Evaluates `lambda` with `params`, for the outer rows `rows` (one per parameter row).
fn apply(lambda: &LambdaArgument, params: &[ArrayRef], rows: &UInt32Array) -> Result<ArrayRef> {
    let closures: Vec<Box<dyn Fn() -> Result<ArrayRef>>> = params
        .iter()
        .map(|param| {
            let param = Arc::clone(param);
            Box::new(move || Ok(Arc::clone(&param))) as Box<dyn Fn() -> Result<ArrayRef>>
        })
        .collect();
    let references: Vec<&dyn Fn() -> Result<ArrayRef>> =
        closures.iter().map(|closure| closure.as_ref()).collect();
    lambda
        .evaluate(&references, |captures| {
            Ok(take_arrays(captures, rows, None)?)
        })?
        .into_array(rows.len())
}
