//! CloudTrail Lake event data stores, control plane only: create, read, list, update,
//! delete (PENDING_DELETION, then purged), restore, start and stop ingestion, and tags;
//! and channels (CreateChannel ... DeleteChannel), the destinations of PutAuditEvents.
//! Each operation takes the generated request of `opentrail-operations` and returns its
//! generated response, or a `StoreError` (an `opentrail_wire::AwsError`).

mod channels;
mod error;
mod event_configuration;
mod federation;
mod ingestion;
mod insights;
mod lifecycle;
mod record;
mod resource_policy;
mod tagging;
mod validate;

pub use channels::{
    channel_arn, ChannelRecord, IngestError, IngestTarget, IngestionAttempt, IngestionStatusRecord,
    CUSTOM_SOURCE, MAX_CHANNELS_PER_REGION,
};
pub use error::StoreError;
pub use event_configuration::{
    EventConfiguration, LARGE_MAX_EVENT_BYTES, STANDARD_MAX_EVENT_BYTES,
};
pub use insights::{InsightsSource, StoreInsights};
pub use record::{StoreRecord, DEFAULT_SELECTOR_NAME};
pub use resource_policy::{remove_resource_policy, DashboardLookup};

use chrono::{DateTime, Utc};
use opentrail_meta::{Documents, MetaStore, Transactions};
use opentrail_model::{AccountId, Clock, Region, RequestContext};
use std::sync::Arc;

/// The most event data stores one account may have in a region, whatever their status.
pub const MAX_EVENT_DATA_STORES_PER_REGION: usize = 10;

/// How long a deleted store stays PENDING_DELETION (restorable) before it is purged.
pub const PENDING_DELETION_DAYS: i64 = 7;

/// Event data store documents, keyed by `StoreRecord::storage_key`.
const STORES: &str = "event_data_stores";

pub struct StoreService {
    meta: Arc<dyn MetaStore>,
    clock: Arc<dyn Clock>,
    /// How long a deleted store waits before it is purged (7 days; shorter in tests).
    pending_deletion: chrono::Duration,
    /// Each channel's latest PutAuditEvents outcome, by channel storage key.
    ingestion: std::sync::Mutex<std::collections::HashMap<String, channels::IngestionMemo>>,
    /// The event log's end (offset after its last durable record): where a store's
    /// ingestion starts or stops. Without a log, 0.
    log_end: Option<LogEnd>,
    /// Bumped after every committed change of this service's stores (see [`Self::changes`]).
    changes: std::sync::atomic::AtomicU64,
    /// Finds dashboards for resource policies on dashboard ARNs (without it, none exist).
    dashboards: Option<Arc<dyn DashboardLookup>>,
}

/// Reads the event log's end offset.
pub type LogEnd = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How a request names an event data store: its ARN, or the id that ends it.
enum StoreRef {
    Id(String),
    Arn {
        region: String,
        account: String,
        id: String,
    },
}

impl StoreRef {
    fn parse(value: &str) -> Result<Self, StoreError> {
        let invalid = || {
            StoreError::EventDataStoreArnInvalid(format!(
                "Invalid event data store ARN or id: {value}"
            ))
        };
        let is_id =
            |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !value.starts_with("arn:") {
            return is_id(value)
                .then(|| StoreRef::Id(value.to_owned()))
                .ok_or_else(invalid);
        }
        let arn = opentrail_model::Arn::parse(value).map_err(|_| invalid())?;
        let id = arn.resource.strip_prefix("eventdatastore/").unwrap_or("");
        if arn.service != "cloudtrail" || Region::parse(&arn.region).is_err() || !is_id(id) {
            return Err(invalid());
        }
        Ok(StoreRef::Arn {
            region: arn.region.clone(),
            account: arn.account.clone(),
            id: id.to_owned(),
        })
    }

    fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Arn { id, .. } => id,
        }
    }
}

impl StoreService {
    pub fn new(meta: Arc<dyn MetaStore>, clock: Arc<dyn Clock>) -> Self {
        Self::with_pending_deletion(meta, clock, chrono::Duration::days(PENDING_DELETION_DAYS))
    }

    /// `new` with another wait between DeleteEventDataStore and the purge (tests).
    pub fn with_pending_deletion(
        meta: Arc<dyn MetaStore>,
        clock: Arc<dyn Clock>,
        pending_deletion: chrono::Duration,
    ) -> Self {
        Self {
            meta,
            clock,
            pending_deletion,
            ingestion: std::sync::Mutex::new(std::collections::HashMap::new()),
            log_end: None,
            changes: std::sync::atomic::AtomicU64::new(0),
            dashboards: None,
        }
    }

    /// Lets PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy find dashboards.
    pub fn with_dashboards(mut self, lookup: Arc<dyn DashboardLookup>) -> Self {
        self.dashboards = Some(lookup);
        self
    }

    /// Records the event log's end (`durable_end`) in a store when its ingestion starts
    /// or stops, so that the lake writer gives it exactly the events logged meanwhile.
    pub fn with_log_end(mut self, log_end: LogEnd) -> Self {
        self.log_end = Some(log_end);
        self
    }

    fn log_end(&self) -> u64 {
        self.log_end.as_ref().map_or(0, |end| end())
    }

    /// A counter that grows after every change this service commits to its stores (not
    /// those of other processes sharing the metadata store): callers caching
    /// [`Self::all_stores`] reload when it moved.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `body` in one metadata transaction (see `MetaStore::run_transaction`): the
    /// checks it makes (a name is free, a region has room) hold when it writes, across
    /// threads, processes and nodes sharing the store. Purged stores are removed first.
    fn write<T>(
        &self,
        mut body: impl FnMut(&dyn Documents) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = self.now();
        let result = tokio::task::block_in_place(|| {
            self.meta.transaction(|tx: &dyn Documents| {
                self.remove_purged(tx, now)?;
                body(tx)
            })
        });
        if result.is_ok() {
            self.changes
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        result
    }

    /// Deletes the documents of stores whose wait after deletion is over.
    fn remove_purged(&self, tx: &dyn Documents, now: DateTime<Utc>) -> Result<(), StoreError> {
        for (key, value) in tx.list_documents(STORES)? {
            let store = decode(&key, &value)?;
            if store.purged_at(now, self.pending_deletion) {
                tx.delete_document(STORES, &key)?;
                // What lives beside the store goes with it.
                tx.delete_document(resource_policy::RESOURCE_POLICIES, &store.arn())?;
                tx.delete_document(event_configuration::EVENT_CONFIGURATIONS, &key)?;
                tx.delete_document(insights::STORE_INSIGHTS, &key)?;
                tracing::info!(
                    key,
                    "purged event data store after its pending-deletion wait"
                );
            }
        }
        Ok(())
    }

    /// The account's stores in `region` (purged ones excluded), in creation order.
    fn stores_in(
        &self,
        docs: &dyn Documents,
        account: &AccountId,
        region: &Region,
    ) -> Result<Vec<StoreRecord>, StoreError> {
        let now = self.now();
        let mut stores: Vec<StoreRecord> = docs
            .list_documents(STORES)?
            .into_iter()
            .map(|(key, value)| decode(&key, &value))
            .collect::<Result<_, _>>()?;
        stores.retain(|s| {
            &s.account == account
                && &s.home_region == region
                && !s.purged_at(now, self.pending_deletion)
        });
        stores.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(stores)
    }

    /// Every store of every account (purged ones excluded): for the lake's writer.
    pub fn all_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        let now = self.now();
        let docs = tokio::task::block_in_place(|| self.meta.list_documents(STORES))?;
        let mut stores = Vec::with_capacity(docs.len());
        for (key, value) in docs {
            let store = decode(&key, &value)?;
            if !store.purged_at(now, self.pending_deletion) {
                stores.push(store);
            }
        }
        Ok(stores)
    }

    /// Every channel of every account and region (for the lake writer: which channels'
    /// events go into which store).
    pub fn all_channels(&self) -> Result<Vec<ChannelRecord>, StoreError> {
        tokio::task::block_in_place(|| channels::all_channels(&Direct(self.meta.as_ref())))
    }

    /// The account's stores in `region` (all statuses, purged ones excluded), in
    /// creation order: the stores a query of that account and region may name.
    pub fn stores_of(
        &self,
        account: &AccountId,
        region: &Region,
    ) -> Result<Vec<StoreRecord>, StoreError> {
        self.stores_in(&Direct(self.meta.as_ref()), account, region)
    }

    /// Finds the store an `EventDataStore` parameter names, in the request's region.
    fn resolve_in(
        &self,
        docs: &dyn Documents,
        ctx: &RequestContext,
        value: &str,
    ) -> Result<StoreRecord, StoreError> {
        let reference = StoreRef::parse(value)?;
        let arn = match &reference {
            StoreRef::Id(id) => record::arn(&ctx.region, &ctx.account, id),
            StoreRef::Arn { .. } => value.to_owned(),
        };
        let missing = || {
            StoreError::EventDataStoreNotFound(format!(
                "Event data store {arn} does not exist in account {} and region {}",
                ctx.account, ctx.region
            ))
        };
        if let StoreRef::Arn {
            region, account, ..
        } = &reference
        {
            if account != ctx.account.as_str() || region != ctx.region.as_str() {
                return Err(missing());
            }
        }
        self.stores_in(docs, &ctx.account, &ctx.region)?
            .into_iter()
            .find(|s| s.id == reference.id())
            .ok_or_else(missing)
    }

    fn resolve(&self, ctx: &RequestContext, value: &str) -> Result<StoreRecord, StoreError> {
        self.resolve_in(&Direct(self.meta.as_ref()), ctx, value)
    }

    /// The caller's store an ARN or id names, in the request's region (StartImport's
    /// destinations): `EventDataStoreARNInvalidException` or `EventDataStoreNotFoundException`.
    pub fn find_event_data_store(
        &self,
        ctx: &RequestContext,
        value: &str,
    ) -> Result<StoreRecord, StoreError> {
        self.resolve(ctx, value)
    }
}

/// Documents read outside a transaction.
struct Direct<'a>(&'a dyn MetaStore);

impl Documents for Direct<'_> {
    fn get_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<Option<String>> {
        tokio::task::block_in_place(|| self.0.get_document(collection, key))
    }

    fn list_documents(&self, collection: &str) -> opentrail_meta::Result<Vec<(String, String)>> {
        tokio::task::block_in_place(|| self.0.list_documents(collection))
    }

    fn put_document(&self, collection: &str, key: &str, value: &str) -> opentrail_meta::Result<()> {
        tokio::task::block_in_place(|| self.0.put_document(collection, key, value))
    }

    fn delete_document(&self, collection: &str, key: &str) -> opentrail_meta::Result<bool> {
        tokio::task::block_in_place(|| self.0.delete_document(collection, key))
    }
}

fn decode(key: &str, value: &str) -> Result<StoreRecord, StoreError> {
    serde_json::from_str(value).map_err(|e| {
        StoreError::Internal(format!("stored event data store {key} is unreadable: {e}"))
    })
}

fn save_in(docs: &dyn Documents, store: &StoreRecord) -> Result<(), StoreError> {
    let value = serde_json::to_string(store)
        .map_err(|e| StoreError::Internal(format!("failed to encode event data store: {e}")))?;
    docs.put_document(STORES, &store.storage_key(), &value)?;
    Ok(())
}
