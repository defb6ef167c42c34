//! The data dir: the metadata store, the account it belongs to and its bootstrap key.

use crate::config::DataDirArgs;
use anyhow::{bail, Context};
use opentrail_meta::{AccessKeyRecord, AccountOrigin, AccountRecord, MetaStore, SqliteMetaStore};
use opentrail_model::{iso8601, AccountId};
use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ACCOUNT_SETTING: &str = "account_id";
const BOOTSTRAP_SETTING: &str = "bootstrap_key_created";
pub use opentrail_cli::store::{object_store, CREDENTIALS_FILE};
const META_FILE: &str = "meta.db";
/// Held (flock, exclusive) by the one `opentrail serve` of a data dir; holds its PID.
const LOCK_FILE: &str = "serve.lock";
/// What a server writes beside `meta.db`: if any of these exist without it, the metadata
/// store was lost, not never created.
const DATA_ENTRIES: [&str; 5] = ["log", "history", "delivery", "keys", CREDENTIALS_FILE];

/// Where the Lake's event data stores (Parquet files) live in a data dir: the lake writer
/// writes and the query engine reads this one directory.
pub fn lake_dir(path: &Path) -> PathBuf {
    path.join("lake")
}

/// Where Lake query results live in a data dir (7 days).
pub fn query_results_dir(path: &Path) -> PathBuf {
    path.join("queries")
}

/// Whether a data dir holds a metadata store (a server or an admin command set it up).
pub fn is_set_up(path: &Path) -> bool {
    path.join(META_FILE).exists()
}

/// The event log's consumer cursors in the data dir's metadata store `meta`.
pub fn log_cursors(path: &Path, meta: Arc<dyn MetaStore>) -> opentrail_log::MetaCursorStore {
    opentrail_log::MetaCursorStore::new(meta, path.join(META_FILE).display().to_string())
}

/// Opens the metadata store of a data dir that has one, without setting anything up.
pub fn open_existing_meta(path: &Path) -> anyhow::Result<Option<Arc<dyn MetaStore>>> {
    if !is_set_up(path) {
        return Ok(None);
    }
    let meta = SqliteMetaStore::open(&path.join(META_FILE))
        .with_context(|| format!("failed to open metadata store in {}", path.display()))?;
    Ok(Some(Arc::new(meta)))
}

pub struct DataDir {
    pub path: PathBuf,
    pub meta: Arc<dyn MetaStore>,
    pub account: AccountId,
    /// Set when this open created the bootstrap key (first start).
    pub new_bootstrap_key: Option<AccessKeyRecord>,
}

pub fn random_account_id() -> String {
    let digits = Uniform::from(0..10u8);
    let mut rng = rand::thread_rng();
    // Account ids do not start with 0 in practice; keep them 12 significant digits.
    let first = rng.gen_range(1..10u8);
    std::iter::once(first)
        .chain((0..11).map(|_| digits.sample(&mut rng)))
        .map(|d| char::from(b'0' + d))
        .collect()
}

/// `AKIA` + 16 uppercase letters and digits, like AWS access key ids.
fn random_access_key_id() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..16)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect();
    format!("AKIA{suffix}")
}

fn random_secret() -> String {
    Alphanumeric
        .sample_iter(rand::thread_rng())
        .take(40)
        .map(char::from)
        .collect()
}

pub fn new_access_key(
    account: &AccountId,
    user_name: &str,
    is_root: bool,
    ingest_any_account: bool,
) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key_id: random_access_key_id(),
        secret_access_key: random_secret(),
        user_name: user_name.to_owned(),
        account_id: account.to_string(),
        is_root,
        ingest_any_account,
        // The bootstrap root key may forward anything; other keys only when created with
        // `--forward-audit`.
        forward_audit: is_root,
        created_at: iso8601(chrono::Utc::now()),
    }
}

fn write_credentials_file(path: &Path, key: &AccessKeyRecord) -> anyhow::Result<()> {
    let text = format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, key.secret_access_key
    );
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    // 0600 from the first byte: the secret is never readable by others, not even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("failed to write {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// Creates the data dir (0700) if needed and takes away group and other access from it and
/// from the metadata store and credentials written by earlier versions (which were 0644).
fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("failed to create data dir {}", path.display()))?;
    restrict(path, 0o700)?;
    for name in [
        META_FILE,
        "meta.db-wal",
        "meta.db-shm",
        CREDENTIALS_FILE,
        "topics.json",
    ] {
        let file = path.join(name);
        if file.exists() {
            restrict(&file, 0o600)?;
        }
    }
    Ok(())
}

/// Removes group and other permission bits (keeps the owner's).
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("failed to read {}", path.display()))?;
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))
            .with_context(|| format!("failed to restrict permissions of {}", path.display()))?;
    }
    Ok(())
}

/// The exclusive claim of one `opentrail serve` on a data dir, held until the process
/// exits (the kernel drops the lock when the process dies, kill -9 included).
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the data dir's lock before anything in it is opened for writing; a second
    /// server on the same data dir fails here, naming the holder's PID.
    pub fn acquire(path: &Path) -> anyhow::Result<Self> {
        create_private_dir(path)?;
        let lock_path = path.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("failed to open {}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "unknown pid".to_owned()
                } else {
                    format!("pid {holder}")
                };
                bail!(
                    "data dir {} is in use by another opentrail server ({holder}); stop it first or choose another --data-dir",
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("failed to lock {}", lock_path.display()))
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("failed to write {}", lock_path.display()))?;
        Ok(Self { _file: file })
    }
}

/// A server's data without its metadata store means `meta.db` was lost: starting would
/// create a new account, overwrite `credentials` and hide the old account's history.
fn refuse_lost_metadata(path: &Path) -> anyhow::Result<()> {
    if path.join(META_FILE).exists() {
        return Ok(());
    }
    let present: Vec<&str> = DATA_ENTRIES
        .into_iter()
        .filter(|name| path.join(name).exists())
        .collect();
    if !present.is_empty() {
        bail!(
            "data dir {} holds {} but no metadata store ({META_FILE}): it was lost or moved. \
             Refusing to start a new account over existing data; restore {META_FILE} from a backup, \
             or move the data dir aside to start afresh",
            path.display(),
            present.join(", ")
        );
    }
    Ok(())
}

impl DataDir {
    /// Opens (creating on first use) the data dir; fixes its account id and creates the
    /// bootstrap root key and `credentials` file once.
    pub fn open(args: &DataDirArgs) -> anyhow::Result<Self> {
        let path = args.data_dir.clone();
        create_private_dir(&path)?;
        refuse_lost_metadata(&path)?;
        let meta = SqliteMetaStore::open(&path.join(META_FILE))
            .with_context(|| format!("failed to open metadata store in {}", path.display()))?;
        let requested = match &args.account_id {
            Some(id) => Some(AccountId::parse(id).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let candidate = requested
            .as_ref()
            .map(AccountId::to_string)
            .unwrap_or_else(random_account_id);
        let stored = meta.init_setting(ACCOUNT_SETTING, &candidate)?;
        let account = AccountId::parse(&stored).map_err(anyhow::Error::msg)?;
        if let Some(requested) = requested {
            if requested != account {
                bail!(
                    "data dir {} belongs to account {account}; --account-id {requested} does not match",
                    path.display()
                );
            }
        }
        let mut new_bootstrap_key = None;
        if meta.get_setting(BOOTSTRAP_SETTING)?.is_none() {
            let key = new_access_key(&account, "root", true, true);
            meta.put_access_key(&key)?;
            write_credentials_file(&path.join(CREDENTIALS_FILE), &key)?;
            meta.init_setting(BOOTSTRAP_SETTING, &key.access_key_id)?;
            new_bootstrap_key = Some(key);
        }
        register_existing_accounts(&meta, &account)?;
        Ok(Self {
            path,
            meta: Arc::new(meta),
            account,
            new_bootstrap_key,
        })
    }

    /// The account `--account ID` names (it must be registered), or the bootstrap account.
    pub fn account_or_bootstrap(&self, requested: Option<&str>) -> anyhow::Result<AccountId> {
        let Some(id) = requested else {
            return Ok(self.account.clone());
        };
        let account = AccountId::parse(id).map_err(anyhow::Error::msg)?;
        if self.meta.get_account(account.as_str())?.is_none() {
            bail!(
                "no account {account} on this server; see `opentrail accounts list`, or create it with `opentrail accounts create --account-id {account}`"
            );
        }
        Ok(account)
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.path.join(CREDENTIALS_FILE)
    }
}

/// The accounts registry: the bootstrap account and the accounts of existing access keys
/// (data dirs written before the registry existed have only those). Idempotent.
fn register_existing_accounts(meta: &SqliteMetaStore, bootstrap: &AccountId) -> anyhow::Result<()> {
    let keys = meta.list_access_keys()?;
    // The bootstrap account dates from its first key (the bootstrap root key).
    let created_at = keys
        .iter()
        .find(|key| key.account_id == bootstrap.as_str())
        .map_or_else(|| iso8601(chrono::Utc::now()), |key| key.created_at.clone());
    meta.register_account(&AccountRecord {
        account_id: bootstrap.to_string(),
        origin: AccountOrigin::Bootstrap,
        created_at,
    })?;
    for key in keys {
        meta.register_account(&AccountRecord {
            account_id: key.account_id.clone(),
            origin: AccountOrigin::Cli,
            created_at: key.created_at.clone(),
        })?;
    }
    Ok(())
}
