//! The metadata seam: access keys, settings and control-plane documents (trails, ...).
//! The embedded default is SQLite in WAL mode with synchronous=FULL: a commit returns only
//! after it is durable, and several processes (the server and `opentrail keys`) can share it.

mod sqlite;

pub use sqlite::SqliteMetaStore;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store failed: {0}")]
    Storage(String),
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

pub trait MetaStore: Send + Sync + 'static {
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
