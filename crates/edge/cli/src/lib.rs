//! The client-side commands of the `opentrail` binary: `import`, `events`, `stores`, `query`,
//! `insights` and `validate`, which talk to a running server (or read a bucket), and their
//! arguments.

pub mod args;
pub mod client;
pub mod events_cli;
pub mod import;
pub mod insights_cli;
pub mod query_cli;
pub mod store;
pub mod stores_cli;
pub mod validate_cli;
