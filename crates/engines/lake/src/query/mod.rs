//! SQL over event data stores: Lake's dialect (Trino) prepared for DataFusion, Trino
//! functions, result rendering and statistics.

mod dialect;
mod engine;
mod functions;
mod grouping;
mod lambdas;
mod layout;
mod prepare;
mod render;
mod rewrite;
mod stats;
mod trino;
mod unnest;

pub use prepare::referenced_stores;

pub use engine::{
    DataFusionEngine, QueryEngine, QueryOutput, QueryStatistics, DEFAULT_QUERY_MEMORY,
};

/// Checks `sql` the way StartQuery does before planning (Lake's dialect parsed, one
/// read-only SELECT naming at least one store) without a session; returns the store ids
/// it names, in order of first reference. Planning needs the stores: see
/// [`QueryEngine::validate`].
pub fn parse_query(sql: &str) -> crate::Result<Vec<String>> {
    prepare::prepare(sql, &|_| true).map(|prepared| prepared.stores)
}
