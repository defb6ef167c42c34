//! The AWS JSON 1.1 protocol as OpenTrail speaks it: which operation a request names,
//! whether its body fits the botocore model, and how errors look on the wire.

mod error;
pub mod ingest;
mod model;
mod target;

pub use error::{ApiError, AwsError};
pub use model::{ServiceModel, CLOUDTRAIL_MODEL_JSON};
pub use target::parse_target;

/// The content type of every JSON 1.1 request and response.
pub const JSON_11_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
