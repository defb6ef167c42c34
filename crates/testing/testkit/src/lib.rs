//! Support for the crates' integration tests (a dev-dependency only).

pub mod moto;
