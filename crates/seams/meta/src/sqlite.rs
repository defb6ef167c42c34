//! SQLite implementation of `MetaStore`.

use crate::{
    AccessKeyRecord, AccountOrigin, AccountRecord, Documents, MetaError, MetaStore, Result,
    TransactionBody,
};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

pub struct SqliteMetaStore {
    conn: Mutex<Connection>,
}

fn storage(e: rusqlite::Error) -> MetaError {
    MetaError::Storage(e.to_string())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    user_name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    is_root INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (collection, key)
);
";

impl SqliteMetaStore {
    pub fn open(path: &Path) -> Result<Self> {
        create_owner_only(path).map_err(|e| MetaError::Storage(e.to_string()))?;
        let conn = Connection::open(path).map_err(storage)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(storage)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(storage)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(storage)?;
        conn.execute_batch(SCHEMA).map_err(storage)?;
        migrate(&conn).map_err(storage)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn).map_err(storage)
    }
}

/// The store holds secrets (access keys, signing keys, webhook secrets): a new database
/// file is 0600 from its first byte, whatever the umask (SQLite gives its WAL and shared
/// memory files the database file's mode).
#[cfg(unix)]
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_owner_only(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Brings stores made by older versions up to the current schema.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_column: bool = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('access_keys') WHERE name = 'ingest_any_account'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_column {
        conn.execute_batch(
            "ALTER TABLE access_keys ADD COLUMN ingest_any_account INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    // Checked and added in one write transaction: `opentrail keys` may open the store
    // while the server does.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let added = (|| {
        let has_forward_audit: bool = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('access_keys') WHERE name = 'forward_audit'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_forward_audit {
            // The bootstrap root key keeps what it could do before: send any record.
            conn.execute_batch(
                "ALTER TABLE access_keys ADD COLUMN forward_audit INTEGER NOT NULL DEFAULT 0;
                 UPDATE access_keys SET forward_audit = 1 WHERE is_root = 1;",
            )?;
        }
        Ok(())
    })();
    match added {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        access_key_id: row.get(0)?,
        secret_access_key: row.get(1)?,
        user_name: row.get(2)?,
        account_id: row.get(3)?,
        is_root: row.get::<_, i64>(4)? != 0,
        created_at: row.get(5)?,
        ingest_any_account: row.get::<_, i64>(6)? != 0,
        forward_audit: row.get::<_, i64>(7)? != 0,
    })
}

fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRecord> {
    let origin: String = row.get(1)?;
    Ok(AccountRecord {
        account_id: row.get(0)?,
        // An origin written by a later version reads as `cli` (made by an operator).
        origin: AccountOrigin::parse(&origin).unwrap_or(AccountOrigin::Cli),
        created_at: row.get(2)?,
    })
}

const KEY_COLUMNS: &str =
    "access_key_id, secret_access_key, user_name, account_id, is_root, created_at, ingest_any_account, forward_audit";

impl MetaStore for SqliteMetaStore {
    fn get_setting(&self, key: &str) -> Result<Option<String>> {
        self.with_conn(|c| {
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        self.with_conn(|c| {
            c.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
                [key, value],
            )?;
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
        })
    }

    fn put_access_key(&self, key: &AccessKeyRecord) -> Result<()> {
        self.with_conn(|c| {
            c.execute(
                &format!(
                    "INSERT INTO access_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    key.access_key_id,
                    key.secret_access_key,
                    key.user_name,
                    key.account_id,
                    key.is_root as i64,
                    key.created_at,
                    key.ingest_any_account as i64,
                    key.forward_audit as i64
                ],
            )
            .map(|_| ())
        })
    }

    fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>> {
        self.with_conn(|c| {
            c.query_row(
                &format!("SELECT {KEY_COLUMNS} FROM access_keys WHERE access_key_id = ?1"),
                [access_key_id],
                key_from_row,
            )
            .optional()
        })
    }

    fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM access_keys ORDER BY created_at, access_key_id"
            ))?;
            let rows = stmt.query_map([], key_from_row)?;
            rows.collect()
        })
    }

    fn delete_access_key(&self, access_key_id: &str) -> Result<bool> {
        self.with_conn(|c| {
            c.execute(
                "DELETE FROM access_keys WHERE access_key_id = ?1",
                [access_key_id],
            )
            .map(|n| n > 0)
        })
    }

    fn register_account(&self, account: &AccountRecord) -> Result<bool> {
        self.with_conn(|c| {
            c.execute(
                "INSERT OR IGNORE INTO accounts (account_id, origin, created_at) VALUES (?1, ?2, ?3)",
                [
                    account.account_id.as_str(),
                    account.origin.as_str(),
                    account.created_at.as_str(),
                ],
            )
            .map(|n| n > 0)
        })
    }

    fn get_account(&self, account_id: &str) -> Result<Option<AccountRecord>> {
        self.with_conn(|c| {
            c.query_row(
                "SELECT account_id, origin, created_at FROM accounts WHERE account_id = ?1",
                [account_id],
                account_from_row,
            )
            .optional()
        })
    }

    fn list_accounts(&self) -> Result<Vec<AccountRecord>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT account_id, origin, created_at FROM accounts ORDER BY created_at, account_id",
            )?;
            let rows = stmt.query_map([], account_from_row)?;
            rows.collect()
        })
    }

    fn put_document(&self, collection: &str, key: &str, value: &str) -> Result<()> {
        self.with_conn(|c| put_document(c, collection, key, value))
    }

    fn get_document(&self, collection: &str, key: &str) -> Result<Option<String>> {
        self.with_conn(|c| get_document(c, collection, key))
    }

    fn list_documents(&self, collection: &str) -> Result<Vec<(String, String)>> {
        self.with_conn(|c| list_documents(c, collection))
    }

    fn delete_document(&self, collection: &str, key: &str) -> Result<bool> {
        self.with_conn(|c| delete_document(c, collection, key))
    }

    fn run_transaction(&self, body: &mut TransactionBody<'_>) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        // BEGIN IMMEDIATE takes the database's write lock before the first read, so no
        // other writer (thread, instance or process) can commit between the body's reads
        // and its writes; the busy timeout waits for the current writer.
        let tx = begin_immediate(&conn)?;
        body(&SqliteTransaction { conn: &tx })?;
        tx.commit().map_err(storage)
        // Dropping an uncommitted `tx` (error or panic in `body`) rolls it back.
    }
}

/// How often BEGIN IMMEDIATE is tried when the busy timeout ran out (a long writer).
const BEGIN_ATTEMPTS: u32 = 5;

fn begin_immediate(conn: &Connection) -> Result<rusqlite::Transaction<'_>> {
    let mut attempt = 1;
    loop {
        match rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate) {
            Ok(tx) => return Ok(tx),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && attempt < BEGIN_ATTEMPTS =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
            }
            Err(e) => return Err(storage(e)),
        }
    }
}

struct SqliteTransaction<'a> {
    conn: &'a Connection,
}

impl Documents for SqliteTransaction<'_> {
    fn get_document(&self, collection: &str, key: &str) -> Result<Option<String>> {
        get_document(self.conn, collection, key).map_err(storage)
    }

    fn list_documents(&self, collection: &str) -> Result<Vec<(String, String)>> {
        list_documents(self.conn, collection).map_err(storage)
    }

    fn put_document(&self, collection: &str, key: &str, value: &str) -> Result<()> {
        put_document(self.conn, collection, key, value).map_err(storage)
    }

    fn delete_document(&self, collection: &str, key: &str) -> Result<bool> {
        delete_document(self.conn, collection, key).map_err(storage)
    }
}

fn put_document(c: &Connection, collection: &str, key: &str, value: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO documents (collection, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value",
        [collection, key, value],
    )
    .map(|_| ())
}

fn get_document(c: &Connection, collection: &str, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row(
        "SELECT value FROM documents WHERE collection = ?1 AND key = ?2",
        [collection, key],
        |r| r.get(0),
    )
    .optional()
}

fn list_documents(c: &Connection, collection: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt =
        c.prepare_cached("SELECT key, value FROM documents WHERE collection = ?1 ORDER BY key")?;
    let rows = stmt.query_map([collection], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn delete_document(c: &Connection, collection: &str, key: &str) -> rusqlite::Result<bool> {
    c.execute(
        "DELETE FROM documents WHERE collection = ?1 AND key = ?2",
        [collection, key],
    )
    .map(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> AccessKeyRecord {
        AccessKeyRecord {
            access_key_id: id.into(),
            secret_access_key: "secret".into(),
            user_name: "alice".into(),
            account_id: "123456789012".into(),
            is_root: false,
            ingest_any_account: false,
            forward_audit: false,
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn older_stores_gain_forward_audit_for_their_root_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE access_keys (access_key_id TEXT PRIMARY KEY, secret_access_key TEXT NOT NULL,
                    user_name TEXT NOT NULL, account_id TEXT NOT NULL, is_root INTEGER NOT NULL,
                    created_at TEXT NOT NULL, ingest_any_account INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO access_keys VALUES ('AKIAROOT', 's', 'root', '123456789012', 1, 't', 1);
                 INSERT INTO access_keys VALUES ('AKIAUSER', 's', 'alice', '123456789012', 0, 't', 0);",
            )
            .unwrap();
        }
        let store = SqliteMetaStore::open(&path).unwrap();
        assert!(
            store
                .get_access_key("AKIAROOT")
                .unwrap()
                .unwrap()
                .forward_audit
        );
        assert!(
            !store
                .get_access_key("AKIAUSER")
                .unwrap()
                .unwrap()
                .forward_audit
        );
        drop(store);
        let again = SqliteMetaStore::open(&path).unwrap();
        assert!(
            again
                .get_access_key("AKIAROOT")
                .unwrap()
                .unwrap()
                .forward_audit
        );
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        {
            let store = SqliteMetaStore::open(&path).unwrap();
            assert_eq!(
                store.init_setting("account", "111111111111").unwrap(),
                "111111111111"
            );
            store.put_access_key(&key("AKIA1")).unwrap();
            store.put_document("trails", "a", "{}").unwrap();
        }
        let store = SqliteMetaStore::open(&path).unwrap();
        assert_eq!(
            store.init_setting("account", "222222222222").unwrap(),
            "111111111111"
        );
        assert_eq!(store.get_access_key("AKIA1").unwrap(), Some(key("AKIA1")));
        assert_eq!(
            store.list_documents("trails").unwrap(),
            vec![("a".into(), "{}".into())]
        );
        assert!(store.delete_document("trails", "a").unwrap());
        assert!(!store.delete_document("trails", "a").unwrap());
        assert!(store.delete_access_key("AKIA1").unwrap());
        assert!(store.list_access_keys().unwrap().is_empty());
    }

    #[test]
    fn accounts_register_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetaStore::open(&dir.path().join("meta.db")).unwrap();
        let record = |id: &str, origin| AccountRecord {
            account_id: id.into(),
            origin,
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        assert!(store
            .register_account(&record("111111111111", AccountOrigin::Bootstrap))
            .unwrap());
        assert!(!store
            .register_account(&record("111111111111", AccountOrigin::Ingest))
            .unwrap());
        assert!(store
            .register_account(&record("222222222222", AccountOrigin::Ingest))
            .unwrap());
        assert_eq!(
            store.get_account("111111111111").unwrap().unwrap().origin,
            AccountOrigin::Bootstrap
        );
        assert!(store.get_account("333333333333").unwrap().is_none());
        assert_eq!(store.list_accounts().unwrap().len(), 2);
    }

    #[test]
    fn a_second_process_handle_sees_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let server = SqliteMetaStore::open(&path).unwrap();
        let cli = SqliteMetaStore::open(&path).unwrap();
        cli.put_access_key(&key("AKIA2")).unwrap();
        assert!(server.get_access_key("AKIA2").unwrap().is_some());
    }
}
