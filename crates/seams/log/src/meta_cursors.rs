//! Consumer cursors kept in the metadata store (the server's store): collection
//! [`CURSOR_COLLECTION`], one document per consumer name whose value is the committed offset
//! in decimal. Each commit is one metadata transaction, durable when it returns.

use std::sync::Arc;

use opentrail_meta::{MetaError, MetaStore, Transactions};

use crate::cursor_store::{CursorStore, StoredCursor};
use crate::error::{LogError, Result};

/// The metadata collection of the event log's consumer cursors.
pub const CURSOR_COLLECTION: &str = "log_cursors";

/// A [`CursorStore`] over a [`MetaStore`].
pub struct MetaCursorStore {
    meta: Arc<dyn MetaStore>,
    /// Names the store in messages (for example the database file).
    described_as: String,
}

impl std::fmt::Debug for MetaCursorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaCursorStore")
            .field("described_as", &self.described_as)
            .finish_non_exhaustive()
    }
}

impl MetaCursorStore {
    /// `described_as` names the store in messages to the operator, e.g. the path of
    /// `meta.db`.
    pub fn new(meta: Arc<dyn MetaStore>, described_as: impl Into<String>) -> Self {
        Self {
            meta,
            described_as: described_as.into(),
        }
    }

    fn failed(&self, consumer: Option<&str>, error: MetaError) -> LogError {
        LogError::CursorStore {
            location: consumer.map_or_else(
                || format!("{CURSOR_COLLECTION} in {}", self.described_as),
                |consumer| self.location(consumer),
            ),
            reason: error.to_string(),
        }
    }

    fn parse(&self, consumer: &str, value: &str) -> Result<Option<u64>> {
        value
            .parse::<u64>()
            .map(Some)
            .map_err(|_| LogError::CursorStore {
                location: self.location(consumer),
                reason: format!("{value:?} is not an offset"),
            })
    }
}

impl CursorStore for MetaCursorStore {
    fn load_all(&self) -> Result<Vec<StoredCursor>> {
        let documents = self
            .meta
            .list_documents(CURSOR_COLLECTION)
            .map_err(|error| self.failed(None, error))?;
        Ok(documents
            .into_iter()
            .map(|(consumer, value)| StoredCursor {
                offset: self.parse(&consumer, &value),
                consumer,
            })
            .collect())
    }

    fn load(&self, consumer: &str) -> Result<Option<u64>> {
        match self
            .meta
            .get_document(CURSOR_COLLECTION, consumer)
            .map_err(|error| self.failed(Some(consumer), error))?
        {
            Some(value) => self.parse(consumer, &value),
            None => Ok(None),
        }
    }

    fn commit(&self, consumer: &str, offset: u64) -> Result<()> {
        self.meta
            .put_document(CURSOR_COLLECTION, consumer, &offset.to_string())
            .map_err(|error| self.failed(Some(consumer), error))
    }

    /// One transaction.
    fn replace_all(&self, cursors: &[(String, u64)]) -> Result<()> {
        if cursors.is_empty() {
            return Ok(());
        }
        self.meta
            .transaction(|tx| {
                for (consumer, offset) in cursors {
                    tx.put_document(CURSOR_COLLECTION, consumer, &offset.to_string())?;
                }
                Ok::<(), MetaError>(())
            })
            .map_err(|error| self.failed(None, error))
    }

    fn remove(&self, consumer: &str) -> Result<bool> {
        self.meta
            .delete_document(CURSOR_COLLECTION, consumer)
            .map_err(|error| self.failed(Some(consumer), error))
    }

    fn location(&self, consumer: &str) -> String {
        format!(
            "document {consumer:?} of {CURSOR_COLLECTION} in {}",
            self.described_as
        )
    }
}
