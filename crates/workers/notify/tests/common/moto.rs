//! The shared moto_server of the integration tests (`opentrail-testkit`).

#[allow(unused_imports)] // each test binary uses a different subset
pub use opentrail_testkit::moto::{element, Moto};
