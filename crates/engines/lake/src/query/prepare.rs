//! Before DataFusion sees a statement: event data store ids in FROM and JOIN (bare,
//! hyphenated, not valid SQL identifiers) become table names, the statement must be one
//! read-only query, and the result's column names are taken from the SELECT list as
//! written (Trino keeps the query's spelling; DataFusion would lowercase it).

use super::dialect::parse_statements;
use super::rewrite::rewrite_trino;
use super::unnest::rewrite_unnest;
use crate::error::{LakeError, Result};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AccessExpr, Expr, Ident, Query, SelectItem, SetExpr, Statement,
    Subscript, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use std::ops::ControlFlow;

/// A statement ready for DataFusion.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// The store ids referenced, in order of first reference; the `n`th is the table
    /// [`table_name`]`(n)` in [`Self::planned`].
    pub(crate) stores: Vec<String>,
    /// The result's column names as the query writes them (see [`column_names`]).
    pub(crate) names: Option<Vec<ColumnName>>,
    /// The query as DataFusion plans it (see [`rewrite_field_access`]).
    pub(crate) planned: Box<Query>,
}

/// The SQL table name standing for the `index`th store of a statement.
pub(crate) fn table_name(index: usize) -> String {
    format!("eds_{index}")
}

/// The event data store ids `sql` names after FROM/JOIN (outside strings and comments), in
/// order of first appearance: what a query runs over (for ListQueries and audit events).
pub fn referenced_stores(sql: &str) -> Vec<String> {
    replace_store_ids(sql).1
}

/// Prepares `sql`; `known` tells whether a store id names a store the caller may query.
pub(crate) fn prepare(sql: &str, known: &dyn Fn(&str) -> bool) -> Result<Prepared> {
    let (rewritten, stores) = replace_store_ids(sql);
    if let Some(unknown) = stores.iter().find(|id| !known(id)) {
        return Err(LakeError::StoreNotFound(unknown.clone()));
    }
    let statements = parse_statements(&rewritten)
        .map_err(|e| LakeError::InvalidQuery(format!("query statement is not valid SQL: {e}")))?;
    let [statement] = <[Statement; 1]>::try_from(statements).map_err(|statements| {
        LakeError::InvalidQuery(format!(
            "query must be exactly one SELECT statement, found {} statements",
            statements.len()
        ))
    })?;
    let Statement::Query(query) = statement else {
        return Err(LakeError::InvalidQuery(format!(
            "only SELECT statements are supported, found: {}",
            statement_kind(&statement)
        )));
    };
    check_read_only(&query.body)?;
    if stores.is_empty() {
        return Err(LakeError::InvalidQuery(
            "query must name an event data store in FROM".into(),
        ));
    }
    check_depth(&query)?;
    let names = column_names(&query);
    let mut planned = query;
    rewrite_field_access(&mut planned);
    rewrite_unnest(&mut planned);
    rewrite_trino(&mut planned);
    let _ = VisitMut::visit(&mut *planned, &mut NameUnnamed);
    Ok(Prepared {
        stores,
        names,
        planned,
    })
}

/// Expressions nested deeper than this are refused: DataFusion plans them recursively
/// (cloning and rewriting each level) and would overflow the stack of the thread running
/// the query. Trino too refuses such statements ("Statement is too large").
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 256;

struct DepthGauge {
    depth: usize,
    deepest: usize,
}

impl Visitor for DepthGauge {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        self.deepest = self.deepest.max(self.depth);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

fn check_depth(query: &Query) -> Result<()> {
    let mut gauge = DepthGauge {
        depth: 0,
        deepest: 0,
    };
    let _ = Visit::visit(query, &mut gauge);
    if gauge.deepest > MAX_EXPRESSION_DEPTH {
        return Err(LakeError::InvalidQuery(format!(
            "query statement is too large: expressions nested {} levels deep, at most {MAX_EXPRESSION_DEPTH} are supported",
            gauge.deepest
        )));
    }
    Ok(())
}

/// Names every unnamed computed column `_colN`, as Trino does: DataFusion refuses two
/// columns of one SELECT whose expressions print alike (`CAST(x AS varchar)`,
/// `CAST(x AS date)`), and Trino lets an outer query refer to `_col0`.
struct NameUnnamed;

impl VisitorMut for NameUnnamed {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        name_unnamed(&mut query.body);
        ControlFlow::Continue(())
    }
}

fn name_unnamed(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for (position, item) in select.projection.iter_mut().enumerate() {
                let SelectItem::UnnamedExpr(expr) = item else {
                    continue;
                };
                if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                    continue;
                }
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias: Ident::new(format!("_col{position}")),
                };
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            name_unnamed(left);
            name_unnamed(right);
        }
        _ => {}
    }
}

/// DataFusion plans `a[1].b` and `f(x).b` only as `a[1]['b']` and `f(x)['b']`: a field
/// access after a subscript or on a computed value becomes a string subscript (lowercased
/// unless quoted, as identifiers are).
fn rewrite_field_access(query: &mut Query) {
    let _ = visit_expressions_mut(query, |expr| {
        if let Expr::CompoundFieldAccess { root, access_chain } = expr {
            let mut computed = !matches!(
                root.as_ref(),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_)
            );
            for access in access_chain.iter_mut() {
                match access {
                    AccessExpr::Subscript(_) => computed = true,
                    AccessExpr::Dot(Expr::Identifier(ident)) if computed => {
                        let name = match ident.quote_style {
                            Some(_) => ident.value.clone(),
                            None => ident.value.to_lowercase(),
                        };
                        *access = AccessExpr::Subscript(Subscript::Index {
                            index: Expr::value(Value::SingleQuotedString(name)),
                        });
                    }
                    AccessExpr::Dot(_) => {}
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The statement's leading keywords, for the error message.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

fn check_read_only(body: &SetExpr) -> Result<()> {
    match body {
        SetExpr::Select(select) if select.into.is_some() => Err(LakeError::InvalidQuery(
            "SELECT INTO is not supported: queries are read-only".into(),
        )),
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Ok(()),
        SetExpr::Query(query) => check_read_only(&query.body),
        SetExpr::SetOperation { left, right, .. } => {
            check_read_only(left)?;
            check_read_only(right)
        }
        other => Err(LakeError::InvalidQuery(format!(
            "only SELECT statements are supported, found: {}",
            other
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_uppercase()
        ))),
    }
}

/// Replaces every bare hyphenated word that follows FROM or JOIN (or a comma in a FROM
/// list) outside string literals, quoted identifiers and comments with a table name.
fn replace_store_ids(sql: &str) -> (String, Vec<String>) {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut stores: Vec<String> = Vec::new();
    let mut previous = String::new(); // the last keyword or punctuation, uppercased
    let mut in_from = false;
    // Whether each enclosing parenthesis was opened inside a FROM list.
    let mut enclosing: Vec<bool> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        let rest = &sql[at..];
        let skip = if rest.starts_with("--") {
            rest.find('\n').map_or(rest.len(), |end| end + 1)
        } else if let Some(comment) = rest.strip_prefix("/*") {
            comment.find("*/").map_or(rest.len(), |end| end + 4)
        } else if byte == b'\'' || byte == b'"' || byte == b'`' {
            quoted_len(rest, byte)
        } else {
            0
        };
        if skip > 0 {
            out.push_str(&rest[..skip]);
            if byte == b'\'' || byte == b'"' || byte == b'`' {
                previous = "QUOTED".into();
            }
            at += skip;
            continue;
        }
        if is_word_byte(byte) {
            let mut end = at;
            while end < bytes.len()
                && is_word_byte(bytes[end])
                && !(bytes[end] == b'-' && bytes.get(end + 1) == Some(&b'-'))
            {
                end += 1;
            }
            let word = &sql[at..end];
            let follows_table_keyword =
                matches!(previous.as_str(), "FROM" | "JOIN") || (in_from && previous == ",");
            if word.contains('-') && follows_table_keyword && !word.starts_with('-') {
                let index = match stores.iter().position(|id| id == word) {
                    Some(index) => index,
                    None => {
                        stores.push(word.to_string());
                        stores.len() - 1
                    }
                };
                out.push_str(&table_name(index));
            } else {
                out.push_str(word);
            }
            let upper = word.to_ascii_uppercase();
            match upper.as_str() {
                "FROM" | "JOIN" => in_from = true,
                "WHERE" | "GROUP" | "ORDER" | "LIMIT" | "HAVING" | "UNION" | "EXCEPT"
                | "INTERSECT" | "SELECT" | "ON" | "USING" | "WINDOW" | "OFFSET" => in_from = false,
                _ => {}
            }
            previous = upper;
            at = end;
            continue;
        }
        let character = rest.chars().next().unwrap_or(' ');
        if !character.is_whitespace() {
            previous = character.to_string();
            if character == '(' {
                enclosing.push(in_from);
                in_from = false;
            } else if character == ')' {
                in_from = enclosing.pop().unwrap_or(false);
            }
        }
        out.push(character);
        at += character.len_utf8();
    }
    (out, stores)
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// The length of the quoted token at the start of `text` (a doubled quote escapes it).
fn quoted_len(text: &str, quote: u8) -> usize {
    let bytes = text.as_bytes();
    let mut at = 1;
    while at < bytes.len() {
        if bytes[at] == quote {
            if bytes.get(at + 1) == Some(&quote) {
                at += 2;
                continue;
            }
            return at + 1;
        }
        at += 1;
    }
    bytes.len()
}

/// How one SELECT item names its result column(s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ColumnName {
    /// An alias, a column as written, or `_colN`.
    Written(String),
    /// `*` or `t.*`: the names of the columns it expands to.
    Expanded,
}

/// The result's column names as Lake gives them: an alias or a column as written, a
/// dotted path by its last part, `_colN` for any other expression (N its position);
/// `None` when the query has no SELECT list of its own (VALUES).
pub(crate) fn column_names(query: &Query) -> Option<Vec<ColumnName>> {
    let items = leftmost_projection(&query.body)?;
    let mut names = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        names.push(match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => ColumnName::Expanded,
            SelectItem::ExprWithAlias { alias, .. } => ColumnName::Written(alias.value.clone()),
            SelectItem::UnnamedExpr(expr) => ColumnName::Written(
                expression_name(expr).unwrap_or_else(|| format!("_col{position}")),
            ),
            SelectItem::ExprWithAliases { aliases, .. } => match aliases.first() {
                Some(alias) => ColumnName::Written(alias.value.clone()),
                None => ColumnName::Written(format!("_col{position}")),
            },
        });
    }
    Some(names)
}

/// The final names: `names` with what a `*` expands to taken from `actual` (DataFusion's
/// names, lowercase as the schema's); DataFusion's names whenever they cannot be matched
/// up (several `*`).
pub(crate) fn resolve_names(names: Option<&[ColumnName]>, actual: &[String]) -> Vec<String> {
    let Some(names) = names else {
        return actual.to_vec();
    };
    let wildcards = names
        .iter()
        .filter(|name| **name == ColumnName::Expanded)
        .count();
    let written = names.len() - wildcards;
    if wildcards > 1 || (wildcards == 0 && names.len() != actual.len()) || written > actual.len() {
        return actual.to_vec();
    }
    let expanded = actual.len() - written;
    let mut resolved = Vec::with_capacity(actual.len());
    for name in names {
        let position = resolved.len();
        match name {
            ColumnName::Expanded => {
                resolved.extend_from_slice(&actual[position..position + expanded])
            }
            ColumnName::Written(name) => resolved.push(name.clone()),
        }
    }
    resolved
}

fn leftmost_projection(body: &SetExpr) -> Option<&[SelectItem]> {
    match body {
        SetExpr::Select(select) => Some(&select.projection),
        SetExpr::Query(query) => leftmost_projection(&query.body),
        SetExpr::SetOperation { left, .. } => leftmost_projection(left),
        _ => None,
    }
}

/// A column reference or field dereference is named by its last part.
fn expression_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|ident| ident.value.clone()),
        Expr::Nested(inner) => expression_name(inner),
        Expr::CompoundFieldAccess { access_chain, .. } => match access_chain.last() {
            Some(AccessExpr::Dot(Expr::Identifier(ident))) => Some(ident.value.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(_: &str) -> bool {
        true
    }

    #[test]
    fn store_ids_become_tables_everywhere_a_table_goes() {
        let sql = "WITH x AS (SELECT eventname FROM EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE) \
                   SELECT a.eventname, 'FROM aa-bb' FROM x JOIN 0a1b2c3d-0000-1111-2222-333344445555 a ON true \
                   UNION SELECT eventname - 1 FROM (SELECT * FROM EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE), c-d -- FROM e-f";
        let (rewritten, stores) = replace_store_ids(sql);
        assert_eq!(
            stores,
            [
                "EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE",
                "0a1b2c3d-0000-1111-2222-333344445555",
                "c-d"
            ]
        );
        assert_eq!(
            rewritten,
            "WITH x AS (SELECT eventname FROM eds_0) \
             SELECT a.eventname, 'FROM aa-bb' FROM x JOIN eds_1 a ON true \
             UNION SELECT eventname - 1 FROM (SELECT * FROM eds_0), eds_2 -- FROM e-f"
        );
    }

    #[test]
    fn only_one_select_is_accepted() {
        for (sql, message) in [
            (
                "DELETE FROM a-b WHERE true",
                "only SELECT statements are supported, found: DELETE FROM",
            ),
            (
                "INSERT INTO t SELECT * FROM a-b",
                "only SELECT statements are supported, found: INSERT INTO",
            ),
            (
                "DROP TABLE t",
                "only SELECT statements are supported, found: DROP TABLE",
            ),
            ("SELECT 1", "query must name an event data store"),
            (
                "SELECT 1 FROM a-b; SELECT 2 FROM a-b",
                "exactly one SELECT statement, found 2",
            ),
            ("SELECT * INTO t FROM a-b", "SELECT INTO is not supported"),
            ("SELEC eventname FROM a-b", "not valid SQL"),
        ] {
            let error = prepare(sql, &any).unwrap_err();
            assert!(
                matches!(error, LakeError::InvalidQuery(_)),
                "{sql}: {error:?}"
            );
            assert!(error.to_string().contains(message), "{sql}: {error}");
        }
        assert!(matches!(
            prepare("SELECT 1 FROM a-b", &|id| id != "a-b"),
            Err(LakeError::StoreNotFound(id)) if id == "a-b"
        ));
    }

    #[test]
    fn names_keep_the_written_case() {
        let prepared = prepare(
            "SELECT userIdentity.principalid, eventName, COUNT(*) AS apiCount, element_at(responseElements, 'queryId'), resources[1].arn, resources[1] FROM a-b",
            &any,
        )
        .unwrap();
        let actual: Vec<String> = (0..6).map(|i| format!("df{i}")).collect();
        assert_eq!(
            resolve_names(prepared.names.as_deref(), &actual),
            [
                "principalid",
                "eventName",
                "apiCount",
                "_col3",
                "arn",
                "_col5"
            ]
        );
        let star = prepare("SELECT eventName, * FROM a-b", &any).unwrap();
        let actual: Vec<String> = ["eventname", "x", "y"].map(String::from).to_vec();
        assert_eq!(
            resolve_names(star.names.as_deref(), &actual),
            ["eventName", "x", "y"]
        );
    }
}
