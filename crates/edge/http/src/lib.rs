//! The HTTP edge of OpenTrail: one request pipeline (authenticate on the headers, read
//! the body, parse the operation, dispatch it to a service, answer, audit, measure), the
//! ingest endpoint, the listener, `/health` and `/metrics`.

pub mod accounts;
pub mod api;
pub mod app;
pub mod audit;
pub mod audit_events;
pub mod auth;
mod dispatch;
pub mod exchange;
pub mod health;
pub mod ingest;
mod insights_ops;
pub mod listener;
pub mod logging;
pub mod metrics;
mod query_audit;
pub mod rate_limit;
pub mod self_audit;

pub use app::App;
pub use auth::AuthMode;
