//! Trail delivery: events from the durable log become gzipped CloudTrail log files in
//! each logging trail's bucket, with signed hourly digest files that `aws cloudtrail
//! validate-logs` (and [`validate`]) can check.
//!
//! The server implements [`TrailDirectory`], gives a [`DeliveryWorker`] the event log, an
//! object store, a [`KeyStore`], the metadata store and a clock, and answers
//! `ListPublicKeys` from the same [`KeyStore`]. Digest chains (one per trail and covered
//! region) and signing keys live in the metadata store (collections `digest_chains` and
//! `signing_keys`); the worker's state directory holds the spool of unwritten log files and
//! the names of files being written (see the crate's README).

mod backoff;
mod batcher;
mod chain;
pub mod cpu_time;
pub mod digest;
mod directory;
mod durable_file;
mod error;
mod intents;
pub mod keys;
pub mod log_file;
pub mod object_keys;
mod public_keys;
pub mod routing;
pub mod signing;
mod spool;
pub mod validate;
mod worker;

pub use backoff::BackoffPolicy;
pub use chain::DIGEST_CHAINS;
pub use directory::{DeliveryOutcome, TrailDirectory};
pub use error::{s3_error_code, DeliveryError};
pub use keys::{KeyStore, PublicKeyInfo};
pub use public_keys::{list_public_keys, PublicKeysError};
pub use routing::{routes, TrailTarget};
pub use worker::{
    DeliveryConfig, DeliveryDeps, DeliveryStats, DeliveryWorker, StartPosition, StepReport,
    MIN_DELIVERY_INTERVAL,
};
