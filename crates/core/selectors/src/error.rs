//! The one error of this crate: a selector set that AWS would refuse.
//! The server answers it as `InvalidEventSelectorsException` carrying `message`.

/// Why a `PutEventSelectors` input is invalid; `message` names the selector, field and value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    pub message: String,
}

impl SelectorError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}
