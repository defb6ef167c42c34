//! CloudTrail Lake's engine: the CloudTrail-events and channel-events schemas as Arrow, a
//! durable-log consumer that writes event data stores as Parquet into an object store, and
//! SQL over them (Trino's dialect as Lake speaks it) with DataFusion. The only crate that uses DataFusion.

mod avro;
mod context;
mod convert;
mod direct;
mod error;
mod facts;
mod federation;
mod json;
mod query;
mod schema;
mod skeleton;
mod storage;
mod store;
mod writer;

pub use context::ContextKeys;
pub use convert::{activity_to_batch, events_to_batch, events_to_file_batch};
pub use error::{LakeError, Result};
pub use federation::{
    FederatedStore, FederationState, IcebergSchema, FEDERATION_DIR, MANIFEST_LIST_SCHEMA,
    MANIFEST_SCHEMA,
};
pub use query::{
    parse_query, referenced_stores, DataFusionEngine, QueryEngine, QueryOutput, QueryStatistics,
    DEFAULT_QUERY_MEMORY,
};
pub use schema::{activity_schema, events_file_schema, events_schema, EVENT_JSON_SKELETON};
pub use storage::{ImportedFile, LakeStorage};
pub use store::{StoreCatalog, StoreSchema, StoreSpec, STANDARD_MAX_EVENT_BYTES};
pub use writer::{LakeWriter, WriteStats, CONSUMER};
