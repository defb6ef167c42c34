//! The accounts this server hosts, as ingest sees them: a cache of the registry in the
//! metadata store, so that the check that runs for every ingested record stays a hash
//! lookup.

use opentrail_meta::{AccountOrigin, AccountRecord, MetaStore};
use opentrail_model::iso8601;
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

pub struct AccountRegistry {
    meta: Arc<dyn MetaStore>,
    /// Registered accounts seen so far. Accounts are never removed, so a cached one stays
    /// true; one not cached is looked up in the store (`opentrail accounts create` may have
    /// added it while the server runs).
    known: RwLock<HashSet<String>>,
}

impl AccountRegistry {
    pub fn load(meta: Arc<dyn MetaStore>) -> opentrail_meta::Result<Self> {
        let known = meta
            .list_accounts()?
            .into_iter()
            .map(|account| account.account_id)
            .collect();
        Ok(Self {
            meta,
            known: RwLock::new(known),
        })
    }

    fn cached(&self, account: &str) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(account)
    }

    fn remember(&self, account: &str) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.to_owned());
    }

    /// Whether `account` is registered (blocking: may read the metadata store).
    pub fn is_registered(&self, account: &str) -> opentrail_meta::Result<bool> {
        if self.cached(account) {
            return Ok(true);
        }
        let found = self.meta.get_account(account)?.is_some();
        if found {
            self.remember(account);
        }
        Ok(found)
    }

    /// Registers `account` (origin `ingest`) unless it is registered; returns whether this
    /// call added it (blocking).
    pub fn register_from_ingest(&self, account: &str) -> opentrail_meta::Result<bool> {
        if self.cached(account) {
            return Ok(false);
        }
        let added = self.meta.register_account(&AccountRecord {
            account_id: account.to_owned(),
            origin: AccountOrigin::Ingest,
            created_at: iso8601(chrono::Utc::now()),
        })?;
        self.remember(account);
        if added {
            tracing::info!(account, "registered account from ingested records");
        }
        Ok(added)
    }
}
