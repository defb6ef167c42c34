//! LookupEvents: the request context, validation, page tokens, errors, and how a stored
//! record becomes an `Event`. The wire shapes are the generated
//! `opentrail_operations::{LookupEventsRequest, LookupEventsResponse, Event}`.

mod error;
mod event;
mod request;
mod token;
mod validate;

pub use error::LookupError;
pub(crate) use event::event;
pub use request::LookupRequest;
pub(crate) use token::TokenKey;
pub(crate) use validate::{validate, Filter, Query};
