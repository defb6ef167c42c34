//! Shared by the integration tests: the behaviour both stores must show and
//! a real S3-compatible server (moto) to show it against.

#![allow(dead_code)] // each test binary uses a different subset

pub mod behaviour;
pub mod moto;
