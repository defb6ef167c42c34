use std::path::PathBuf;

/// Failures of the Insights engine's durable counters.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    #[error("failed to {action} insights counters at {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("insights key log {path} line {line} is not a key record: {reason}")]
    CorruptKeyLog {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl InsightsError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| InsightsError::Io {
            action,
            path,
            source,
        }
    }
}
