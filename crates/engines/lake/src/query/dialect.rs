//! The SQL dialect Lake statements are parsed with: sqlparser's generic dialect (which
//! DataFusion plans as its own) plus Trino's lambda expressions (`x -> x + 1`,
//! `(s, x) -> s + x`), which DataFusion plans for its higher-order functions.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use std::any::TypeId;

/// Parses `sql` as Lake does: with [`LakeDialect`], and Trino's `array(T)` type (which the
/// generic dialect writes `array<T>`) after `AS` in a cast.
pub(crate) fn parse_statements(sql: &str) -> Result<Vec<Statement>, ParserError> {
    let mut tokens = Tokenizer::new(&LakeDialect, sql).tokenize_with_location()?;
    rewrite_array_types(&mut tokens);
    Parser::new(&LakeDialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
}

fn keyword(token: &Token) -> Option<Keyword> {
    match token {
        Token::Word(word) => Some(word.keyword),
        _ => None,
    }
}

/// `AS array(json)` → `AS array<json>`, nested types included (`array(map(varchar,
/// json))`); the parenthesis closing each `array(` becomes `>`.
fn rewrite_array_types(tokens: &mut [TokenWithSpan]) {
    // Indices of the meaningful (non-whitespace) tokens.
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&at| !matches!(tokens[at].token, Token::Whitespace(_)))
        .collect();
    // For each open parenthesis inside a type: whether it was an `array(`.
    let mut open: Vec<bool> = Vec::new();
    let mut in_type = false;
    for (position, &at) in significant.iter().enumerate() {
        let previous = position
            .checked_sub(1)
            .map(|p| &tokens[significant[p]].token);
        let next = significant.get(position + 1).map(|&n| &tokens[n].token);
        let is_array_word = keyword(&tokens[at].token) == Some(Keyword::ARRAY);
        if is_array_word && next == Some(&Token::LParen) {
            let starts_type = previous.and_then(keyword) == Some(Keyword::AS);
            if starts_type || in_type {
                in_type = true;
                // The parenthesis after it is rewritten when reached.
                continue;
            }
        }
        if !in_type {
            continue;
        }
        match &tokens[at].token {
            Token::LParen => {
                let after_array = previous.and_then(keyword) == Some(Keyword::ARRAY);
                open.push(after_array);
                if after_array {
                    tokens[at].token = Token::Lt;
                }
            }
            Token::RParen => {
                if open.pop() == Some(true) {
                    tokens[at].token = Token::Gt;
                }
                if open.is_empty() {
                    in_type = false;
                }
            }
            _ => {}
        }
    }
}

/// [`GenericDialect`] with lambdas. It keeps the generic dialect's identity
/// (`dialect_of!(… is GenericDialect)` holds inside the parser), so it parses every
/// statement the generic dialect parses alike.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LakeDialect;

macro_rules! delegate_flags {
    ($($flag:ident,)*) => {
        $(
            fn $flag(&self) -> bool {
                GenericDialect.$flag()
            }
        )*
    };
}

impl Dialect for LakeDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GenericDialect.is_identifier_part(ch)
    }

    fn supports_lambda_functions(&self) -> bool {
        true
    }

    delegate_flags!(
        supports_unicode_string_literal,
        supports_partition_by_after_order_by,
        supports_array_join_syntax,
        supports_group_by_expr,
        supports_group_by_with_modifier,
        supports_left_associative_joins_without_parens,
        supports_connect_by,
        supports_match_recognize,
        supports_pipe_operator,
        supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg,
        supports_dictionary_syntax,
        supports_window_clause_named_window_reference,
        supports_parenthesized_set_variables,
        supports_select_wildcard_except,
        support_map_literal_syntax,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_extract_comma_syntax,
        supports_create_view_comment_syntax,
        supports_parens_around_table_factor,
        supports_values_as_table_factor,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_limit_comma,
        supports_update_order_by,
        supports_from_first_select,
        supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition,
        supports_try_convert,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_assignment_operator,
        supports_struct_literal,
        supports_empty_projections,
        supports_nested_comments,
        supports_multiline_comment_hints,
        supports_user_host_grantee,
        supports_string_escape_constant,
        supports_array_typedef_with_brackets,
        supports_match_against,
        supports_set_names,
        supports_comma_separated_set_assignments,
        supports_filter_during_aggregation,
        supports_select_wildcard_exclude,
        supports_data_type_signed_suffix,
        supports_interval_options,
        supports_quote_delimited_string,
        supports_select_wildcard_replace,
        supports_select_wildcard_ilike,
        supports_select_wildcard_rename,
        supports_optimize_table,
        supports_install,
        supports_detach,
        supports_prewhere,
        supports_with_fill,
        supports_limit_by,
        supports_interpolate,
        supports_settings,
        supports_select_format,
        supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name,
        supports_key_column_option,
        supports_comma_separated_trim,
        supports_cte_without_as,
        supports_select_item_multi_column_alias,
        supports_xml_expressions,
    );
}
