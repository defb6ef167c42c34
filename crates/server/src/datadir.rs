//! The data dir: the metadata store, the account it belongs to and its bootstrap key.

use crate::config::{DataDirArgs, S3Args};
use anyhow::{bail, Context};
use opentrail_meta::{AccessKeyRecord, MetaStore, SqliteMetaStore};
use opentrail_model::{iso8601, AccountId};
use opentrail_objstore::{LocalStore, ObjectStore, S3Config, S3Store};
use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ACCOUNT_SETTING: &str = "account_id";
const BOOTSTRAP_SETTING: &str = "bootstrap_key_created";
pub const CREDENTIALS_FILE: &str = "credentials";

pub struct DataDir {
    pub path: PathBuf,
    pub meta: Arc<dyn MetaStore>,
    pub account: AccountId,
    /// Set when this open created the bootstrap key (first start).
    pub new_bootstrap_key: Option<AccessKeyRecord>,
}

fn random_account_id() -> String {
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
    std::fs::write(&tmp, text).with_context(|| format!("failed to write {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

impl DataDir {
    /// Opens (creating on first use) the data dir; fixes its account id and creates the
    /// bootstrap root key and `credentials` file once.
    pub fn open(args: &DataDirArgs) -> anyhow::Result<Self> {
        let path = args.data_dir.clone();
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create data dir {}", path.display()))?;
        let meta = SqliteMetaStore::open(&path.join("meta.db"))
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
        Ok(Self {
            path,
            meta: Arc::new(meta),
            account,
            new_bootstrap_key,
        })
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.path.join(CREDENTIALS_FILE)
    }
}

/// The object store trails deliver to: bucket directories in the data dir, or an S3 server.
pub fn object_store(data_dir: &Path, s3: &S3Args) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let Some(endpoint) = &s3.s3_endpoint else {
        let root = data_dir.join("buckets");
        std::fs::create_dir_all(&root)
            .with_context(|| format!("failed to create {}", root.display()))?;
        return Ok(Arc::new(LocalStore::new(root)));
    };
    let (Some(access_key), Some(secret_key)) = (&s3.s3_access_key, &s3.s3_secret_key) else {
        bail!("--s3-endpoint needs --s3-access-key and --s3-secret-key (or OPENTRAIL_S3_ACCESS_KEY / OPENTRAIL_S3_SECRET_KEY)");
    };
    let store = S3Store::new(S3Config {
        endpoint: endpoint.clone(),
        access_key: access_key.clone(),
        secret_key: secret_key.clone(),
        region: s3.s3_region.clone(),
        path_style: s3.s3_path_style,
    })
    .map_err(|e| anyhow::anyhow!("failed to configure S3 endpoint {endpoint}: {e}"))?;
    Ok(Arc::new(store))
}
