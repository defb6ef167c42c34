//! Trino expressions DataFusion has no direct counterpart for, rewritten in the parsed
//! statement into ones it plans:
//!
//! - `count_if(x)` → `count(CASE WHEN x THEN 1 END)`;
//! - `max_by(x, y)` / `min_by(x, y)` → `first_value(x ORDER BY y DESC|ASC) FILTER (WHERE
//!   y IS NOT NULL)` (as aggregates; not as window functions);
//! - `approx_percentile(x, p)` → `approx_percentile_cont(p) WITHIN GROUP (ORDER BY x)`;
//! - `try(e)` → `e` with every cast in it a `TRY_CAST` and every divisor `NULLIF(d, 0)`:
//!   the failures `try` turns into NULL that DataFusion would otherwise raise;
//! - `CAST(x AS varchar)` → `lake_cast_varchar(x)` (timestamps print as Trino prints them),
//!   `CAST(x AS json)` → `lake_cast_json(x)`, `CAST(x AS map(varchar, json|varchar))` →
//!   `lake_cast_map(x, 'json'|'varchar')`, `CAST(x AS array(json|varchar))` →
//!   `lake_cast_array(x, 'json'|'varchar')` (JSON is text in Lake's engine); each takes a
//!   last argument telling whether it gives NULL (`TRY_CAST`, `try`) instead of failing.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AccessExpr, ArrayElemTypeDef, BinaryOperator, CastKind, DataType, Expr,
    Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, OrderByExpr, OrderByOptions, Query, Subscript, Value,
};
use std::ops::ControlFlow;

/// Applies every rewrite to `query`.
pub(crate) fn rewrite_trino(query: &mut Query) {
    let _ = visit_expressions_mut(query, |expr| {
        rewrite_expr(expr);
        ControlFlow::<()>::Continue(())
    });
}

fn rewrite_expr(expr: &mut Expr) {
    match expr {
        Expr::Function(function) => {
            let name = function_name(function);
            match name.as_deref() {
                Some("count_if") if function.over.is_none() => {
                    if let Some([x]) = plain_args::<1>(function) {
                        *expr = call(
                            "count",
                            vec![Expr::Case {
                                case_token: AttachedToken::empty(),
                                end_token: AttachedToken::empty(),
                                operand: None,
                                conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen {
                                    condition: x,
                                    result: Expr::value(Value::Number("1".into(), false)),
                                }],
                                else_result: None,
                            }],
                        );
                    }
                }
                Some(which @ ("max_by" | "min_by")) if function.over.is_none() => {
                    let descending = which == "max_by";
                    if let Some([x, y]) = plain_args::<2>(function) {
                        let mut first = call("first_value", vec![x]);
                        if let Expr::Function(first) = &mut first {
                            if let FunctionArguments::List(list) = &mut first.args {
                                list.clauses.push(FunctionArgumentClause::OrderBy(vec![
                                    OrderByExpr {
                                        expr: y.clone(),
                                        options: OrderByOptions {
                                            asc: Some(!descending),
                                            nulls_first: Some(false),
                                        },
                                        with_fill: None,
                                    },
                                ]));
                            }
                            first.filter = Some(Box::new(Expr::IsNotNull(Box::new(y))));
                        }
                        *expr = first;
                    }
                }
                Some("approx_percentile") if function.over.is_none() => {
                    if let Some([x, p]) = plain_args::<2>(function) {
                        let mut cont = call("approx_percentile_cont", vec![p]);
                        if let Expr::Function(cont) = &mut cont {
                            cont.within_group = vec![OrderByExpr {
                                expr: x,
                                options: OrderByOptions {
                                    asc: None,
                                    nulls_first: None,
                                },
                                with_fill: None,
                            }];
                        }
                        *expr = cont;
                    }
                }
                Some("try") => {
                    if let Some([mut inner]) = plain_args::<1>(function) {
                        let _ = visit_expressions_mut(&mut inner, |e| {
                            make_failsafe(e);
                            ControlFlow::<()>::Continue(())
                        });
                        *expr = Expr::Nested(Box::new(inner));
                    }
                }
                _ => {}
            }
        }
        Expr::Cast {
            kind,
            expr: inner,
            data_type,
            format: None,
            ..
        } => {
            let Some((name, cast_kind)) = cast_function(data_type) else {
                return;
            };
            let failsafe = matches!(kind, CastKind::TryCast | CastKind::SafeCast);
            *expr = call(
                name,
                vec![
                    (**inner).clone(),
                    Expr::value(Value::SingleQuotedString(cast_kind.unwrap_or("").into())),
                    Expr::value(Value::Boolean(failsafe)),
                ],
            );
        }
        Expr::Lambda(lambda) => {
            let params: Vec<String> = lambda
                .params
                .iter()
                .map(|param| param.name.value.to_lowercase())
                .collect();
            let _ = visit_expressions_mut(&mut lambda.body, |e| {
                parameter_fields(e, &params);
                ControlFlow::<()>::Continue(())
            });
        }
        _ => {}
    }
}

/// In a lambda's body, `r.arn` (a field of the parameter `r`, which DataFusion would read
/// as the column `arn` of a table `r`) → `r['arn']`.
fn parameter_fields(expr: &mut Expr, params: &[String]) {
    let Expr::CompoundIdentifier(parts) = expr else {
        return;
    };
    if parts.len() < 2 || !params.contains(&parts[0].value.to_lowercase()) {
        return;
    }
    let access_chain = parts[1..]
        .iter()
        .map(|ident| {
            let name = match ident.quote_style {
                Some(_) => ident.value.clone(),
                None => ident.value.to_lowercase(),
            };
            AccessExpr::Subscript(Subscript::Index {
                index: Expr::value(Value::SingleQuotedString(name)),
            })
        })
        .collect();
    *expr = Expr::CompoundFieldAccess {
        root: Box::new(Expr::Identifier(parts[0].clone())),
        access_chain,
    };
}

/// Inside `try(…)`: casts do not fail, divisions by zero are NULL.
fn make_failsafe(expr: &mut Expr) {
    match expr {
        Expr::Cast { kind, .. } if matches!(kind, CastKind::Cast | CastKind::DoubleColon) => {
            *kind = CastKind::TryCast;
        }
        Expr::Function(function)
            if function_name(function)
                .as_deref()
                .is_some_and(|name| name.starts_with("lake_cast_")) =>
        {
            if let FunctionArguments::List(list) = &mut function.args {
                if let Some(last) = list.args.get_mut(2) {
                    *last = unnamed(Expr::value(Value::Boolean(true)));
                }
            }
        }
        Expr::BinaryOp {
            op: BinaryOperator::Divide | BinaryOperator::Modulo,
            right,
            ..
        } => {
            let divisor = (**right).clone();
            **right = call(
                "nullif",
                vec![divisor, Expr::value(Value::Number("0".into(), false))],
            );
        }
        _ => {}
    }
}

/// The Lake function a cast to `data_type` becomes, with its kind argument.
fn cast_function(data_type: &DataType) -> Option<(&'static str, Option<&'static str>)> {
    match data_type {
        DataType::Varchar(_)
        | DataType::Char(_)
        | DataType::String(_)
        | DataType::Text
        | DataType::CharacterVarying(_) => Some(("lake_cast_varchar", None)),
        DataType::JSON => Some(("lake_cast_json", None)),
        DataType::Map(key, value) if is_text(key) => {
            json_or_text(value).map(|kind| ("lake_cast_map", Some(kind)))
        }
        DataType::Array(
            ArrayElemTypeDef::AngleBracket(element) | ArrayElemTypeDef::Parenthesis(element),
        ) => json_or_text(element).map(|kind| ("lake_cast_array", Some(kind))),
        _ => None,
    }
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Varchar(_)
            | DataType::Char(_)
            | DataType::String(_)
            | DataType::Text
            | DataType::CharacterVarying(_)
    )
}

fn json_or_text(data_type: &DataType) -> Option<&'static str> {
    if matches!(data_type, DataType::JSON) {
        Some("json")
    } else if is_text(data_type) {
        Some("varchar")
    } else {
        None
    }
}

fn function_name(function: &Function) -> Option<String> {
    match function.name.0.as_slice() {
        [part] => part.as_ident().map(|ident| ident.value.to_lowercase()),
        _ => None,
    }
}

/// The function's arguments when it has exactly `N` plain ones and no clauses.
fn plain_args<const N: usize>(function: &Function) -> Option<[Expr; N]> {
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() || function.filter.is_some() {
        return None;
    }
    let args: Vec<Expr> = list
        .args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr.clone()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    args.try_into().ok()
}

fn unnamed(expr: Expr) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))
}

/// `name(args…)`.
pub(crate) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(unnamed).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}
