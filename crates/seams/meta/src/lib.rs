//! The metadata seam: access keys, settings and control-plane documents (trails, ...).
//! The embedded default is SQLite in WAL mode with synchronous=FULL: a commit returns only
//! after it is durable, and several processes (the server and `opentrail keys`) can share it.
//! Read-check-write sequences (a trail name is free, a region holds fewer than five trails)
//! run in `MetaStore::transaction`, which is serialisable across threads, processes and
//! store instances sharing one database: no in-process lock is needed for correctness.

mod sqlite;

pub use sqlite::SqliteMetaStore;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store failed: {0}")]
    Storage(String),
    /// A transaction body gave up; its writes were rolled back. `Transactions::transaction`
    /// turns this back into the body's own error.
    #[error("transaction rolled back")]
    Aborted,
}

pub type Result<T> = std::result::Result<T, MetaError>;

/// An access key and who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub user_name: String,
    pub account_id: String,
    /// Root keys act as the account itself; others as an IAM user of it.
    pub is_root: bool,
    /// May ingest events whose recipientAccountId is another account (log forwarders).
    pub ingest_any_account: bool,
    /// May ingest records that claim to be OpenTrail's own audit events of this server's
    /// accounts (eventSource `cloudtrail.amazonaws.com`/`cloudtrail-data.amazonaws.com`).
    pub forward_audit: bool,
    pub created_at: String,
}

/// How an account came to exist on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOrigin {
    /// The data dir's own account (setting `account_id`), made on first start.
    Bootstrap,
    /// `opentrail accounts create`.
    Cli,
    /// A record ingested (`POST /events`, `opentrail import`) for an account not known yet.
    Ingest,
}

impl AccountOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountOrigin::Bootstrap => "bootstrap",
            AccountOrigin::Cli => "cli",
            AccountOrigin::Ingest => "ingest",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "bootstrap" => Some(AccountOrigin::Bootstrap),
            "cli" => Some(AccountOrigin::Cli),
            "ingest" => Some(AccountOrigin::Ingest),
            _ => None,
        }
    }
}

/// An account this server hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account_id: String,
    pub origin: AccountOrigin,
    pub created_at: String,
}

/// Document operations, either directly on the store or inside one transaction.
/// Documents are opaque values grouped in collections, ordered by key.
pub trait Documents {
    fn get_document(&self, collection: &str, key: &str) -> Result<Option<String>>;
    fn list_documents(&self, collection: &str) -> Result<Vec<(String, String)>>;
    fn put_document(&self, collection: &str, key: &str, value: &str) -> Result<()>;
    /// Returns whether a document was deleted.
    fn delete_document(&self, collection: &str, key: &str) -> Result<bool>;
}

/// The body of a transaction: reads and writes through the handle it is given.
pub type TransactionBody<'a> = dyn FnMut(&dyn Documents) -> Result<()> + 'a;

pub trait MetaStore: Send + Sync + 'static {
    /// Runs `body` in one serialisable write transaction: its reads see every transaction
    /// committed before it began, and no other transaction (of this instance, another
    /// instance on the same database, or another process) commits between them and its own
    /// writes. Committed (durably) when `body` returns `Ok`, rolled back when it returns
    /// `Err` (or panics). The body may run again when the store must retry, so it should
    /// have no effects beyond the handle. Prefer `Transactions::transaction`.
    fn run_transaction(&self, body: &mut TransactionBody<'_>) -> Result<()>;

    fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` unless the key already has one; returns what is stored afterwards.
    fn init_setting(&self, key: &str, value: &str) -> Result<String>;

    fn put_access_key(&self, key: &AccessKeyRecord) -> Result<()>;
    fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>>;
    fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>>;
    /// Returns whether a key was deleted.
    fn delete_access_key(&self, access_key_id: &str) -> Result<bool>;

    /// Registers an account unless it exists; returns whether this call added it.
    fn register_account(&self, account: &AccountRecord) -> Result<bool>;
    fn get_account(&self, account_id: &str) -> Result<Option<AccountRecord>>;
    /// Every account, oldest first.
    fn list_accounts(&self) -> Result<Vec<AccountRecord>>;

    /// Documents are opaque values grouped in collections, ordered by key.
    fn put_document(&self, collection: &str, key: &str, value: &str) -> Result<()>;
    fn get_document(&self, collection: &str, key: &str) -> Result<Option<String>>;
    fn list_documents(&self, collection: &str) -> Result<Vec<(String, String)>>;
    fn delete_document(&self, collection: &str, key: &str) -> Result<bool>;
}

/// Typed transactions over any `MetaStore`.
pub trait Transactions {
    /// Runs `body` in one transaction (see `MetaStore::run_transaction`): committed when it
    /// returns `Ok`, rolled back when it returns `Err`, which is then returned as it was.
    fn transaction<T, E: From<MetaError>>(
        &self,
        body: impl FnMut(&dyn Documents) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>;
}

impl<S: MetaStore + ?Sized> Transactions for S {
    fn transaction<T, E: From<MetaError>>(
        &self,
        mut body: impl FnMut(&dyn Documents) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut outcome: Option<std::result::Result<T, E>> = None;
        let ran = self.run_transaction(&mut |tx| match body(tx) {
            Ok(value) => {
                outcome = Some(Ok(value));
                Ok(())
            }
            Err(e) => {
                outcome = Some(Err(e));
                Err(MetaError::Aborted)
            }
        });
        match (ran, outcome) {
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Err(MetaError::Aborted), Some(Err(e))) => Err(e),
            (Err(e), _) => Err(e.into()),
            (Ok(()), _) => Err(MetaError::Storage(
                "transaction committed without its body's result".into(),
            )
            .into()),
        }
    }
}
