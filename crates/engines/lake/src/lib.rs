//! CloudTrail Lake's engine: the CloudTrail-events schema as Arrow, a durable-log consumer
//! that writes event data stores as Parquet into an object store, and SQL over them
//! (Trino's dialect as Lake speaks it) with DataFusion. The only crate that uses DataFusion.

mod convert;
mod error;
mod query;
mod schema;
mod storage;
mod store;
mod writer;

pub use convert::events_to_batch;
pub use error::{LakeError, Result};
pub use query::{
    parse_query, referenced_stores, DataFusionEngine, QueryEngine, QueryOutput, QueryStatistics,
    DEFAULT_QUERY_MEMORY,
};
pub use schema::events_schema;
pub use storage::{ImportedFile, LakeStorage};
pub use store::{StoreCatalog, StoreSpec};
pub use writer::{LakeWriter, WriteStats, CONSUMER};
