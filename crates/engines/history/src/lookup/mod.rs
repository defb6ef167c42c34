//! LookupEvents: the wire shapes, validation, page tokens and errors.

mod error;
mod input;
mod output;
mod token;
mod validate;

pub use error::LookupError;
pub use input::{LookupAttribute, LookupEventsInput, LookupRequest};
pub use output::{Event, LookupResponse, Resource};
pub(crate) use token::TokenKey;
pub(crate) use validate::{validate, Filter, Query};
