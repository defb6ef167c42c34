//! SQL over event data stores: Lake's dialect (Trino) prepared for DataFusion, Trino
//! functions, result rendering and statistics.

mod dialect;
mod engine;
mod functions;
mod lambdas;
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
