//! Where the log keeps its consumers' cursors: the [`CursorStore`] seam, and what the log
//! adds around any store (consumer names, which consumers this process registered, how
//! many unreadable cursors were rewritten).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cursor::validate_consumer_name;
use crate::error::Result;

/// A stored cursor as [`CursorStore::load_all`] found it.
#[derive(Debug)]
pub struct StoredCursor {
    pub consumer: String,
    /// The committed offset (`None`: created but never committed), or why it cannot be
    /// read.
    pub offset: Result<Option<u64>>,
}

/// Durable storage of the consumers' committed cursors, one offset per consumer name.
///
/// Contract: [`Self::commit`] and [`Self::replace_all`] return only once durable (a
/// committed cursor survives kill -9 and power loss); `replace_all` is all or none where
/// the store has transactions. Consumer names are checked by the log before they reach the
/// store. Calls block (they fsync); the log calls them off the async workers.
pub trait CursorStore: Send + Sync + std::fmt::Debug + 'static {
    /// Every stored cursor, ordered by consumer name; one that cannot be read is reported
    /// with its error, not skipped.
    fn load_all(&self) -> Result<Vec<StoredCursor>>;

    /// The cursor of `consumer`, or `None` if it never committed one.
    fn load(&self, consumer: &str) -> Result<Option<u64>>;

    /// Durably records `offset` as the cursor of `consumer`.
    fn commit(&self, consumer: &str, offset: u64) -> Result<()>;

    /// Durably sets every `(consumer, offset)`, whatever each held before (an unreadable
    /// value too).
    fn replace_all(&self, cursors: &[(String, u64)]) -> Result<()>;

    /// Deletes the cursor of `consumer`; returns whether there was one.
    fn remove(&self, consumer: &str) -> Result<bool>;

    /// Where the cursor of `consumer` is kept, for messages to the operator.
    fn location(&self, consumer: &str) -> String;

    /// Damaged cursors this store found and overwrote while committing (0 for stores that
    /// cannot hold a damaged value).
    fn damaged_overwritten(&self) -> u64 {
        0
    }
}

/// The log's view of its cursor store.
#[derive(Debug)]
pub(crate) struct Cursors {
    store: Arc<dyn CursorStore>,
    /// Consumers this process registered (the others were left by earlier runs).
    registered: Mutex<BTreeSet<String>>,
    /// Unreadable cursors rewritten when the log was opened.
    rewritten: AtomicU64,
}

impl Cursors {
    pub(crate) fn new(store: Arc<dyn CursorStore>, rewritten: u64) -> Self {
        Self {
            store,
            registered: Mutex::new(BTreeSet::new()),
            rewritten: AtomicU64::new(rewritten),
        }
    }

    /// Notes that a consumer of this process uses the cursor `name`.
    pub(crate) fn register(&self, name: &str) -> Result<()> {
        validate_consumer_name(name)?;
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string());
        Ok(())
    }

    /// Whether a consumer of this process registered `name`.
    pub(crate) fn is_registered(&self, name: &str) -> bool {
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name)
    }

    pub(crate) fn get(&self, name: &str) -> Result<Option<u64>> {
        validate_consumer_name(name)?;
        self.store.load(name)
    }

    pub(crate) fn commit(&self, name: &str, offset: u64) -> Result<()> {
        validate_consumer_name(name)?;
        self.store.commit(name, offset)
    }

    pub(crate) fn list(&self) -> Result<Vec<StoredCursor>> {
        self.store.load_all()
    }

    /// Unreadable cursors rewritten at open, and damaged ones overwritten since.
    pub(crate) fn rewritten(&self) -> u64 {
        self.rewritten.load(Ordering::Relaxed) + self.store.damaged_overwritten()
    }
}
