//! NextTokens: opaque to clients, bound to what they page (a query's results, or one
//! store's query list); a token of something else is `InvalidNextTokenException`.

use crate::QueryError;
use base64::Engine;
use serde::{de::DeserializeOwned, Serialize};

pub(crate) fn encode(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

pub(crate) fn decode<T: DeserializeOwned>(token: &str) -> Result<T, QueryError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(invalid)
}

pub(crate) fn invalid() -> QueryError {
    QueryError::InvalidNextToken("The NextToken is not valid".into())
}

/// Where the next page of a query's results starts.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ResultsToken {
    /// The query it belongs to.
    pub(crate) q: String,
    pub(crate) r: u64,
    pub(crate) b: u64,
}

/// Where the next page of ListQueries starts: after the query created at `t` (epoch
/// milliseconds) with id `i`, among the queries of store `s`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ListToken {
    pub(crate) s: String,
    pub(crate) t: i64,
    pub(crate) i: String,
}
