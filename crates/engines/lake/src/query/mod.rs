//! SQL over event data stores: Lake's dialect (Trino) prepared for DataFusion, Trino
//! functions, result rendering and statistics.

mod engine;
mod functions;
mod prepare;
mod render;
mod stats;

pub use prepare::referenced_stores;

pub use engine::{
    DataFusionEngine, QueryEngine, QueryOutput, QueryStatistics, DEFAULT_QUERY_MEMORY,
};
