//! CloudTrail Lake in the server: where event data stores keep their files, and the
//! stores service seen as the lake writer's [`StoreCatalog`].

use opentrail_lake::{
    ContextKeys, FederatedStore, FederationState, LakeError, LakeStorage, StoreCatalog,
    StoreSchema, StoreSpec,
};
use opentrail_operations::FederationStatus;
use opentrail_operations::Type;
use opentrail_selectors::EventDataStoreKind;
use opentrail_stores::{
    ChannelRecord, EventConfiguration, InsightsSource, StoreRecord, StoreService,
};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the writer trusts its copy of the stores when this server changed none: the
/// bound on how late it sees a change another process made to a shared metadata store
/// (its own changes it sees at the next batch).
const CATALOG_TTL: Duration = Duration::from_secs(1);

/// The event data stores' files: `<data-dir>/lake/<store-id>/eventday=YYYY-MM-DD/…`.
pub fn storage(data_dir: &Path) -> anyhow::Result<LakeStorage> {
    Ok(LakeStorage::local(&crate::datadir::lake_dir(data_dir))?)
}

/// What the lake writer needs of a store, or `None` for a store it does not write (stores
/// of Config or evidence events have other schemas). A store of channel events
/// (ActivityAuditLog) takes the events of the `channels` whose destinations name it.
/// Insights stores are written by [`insights_store_spec`].
pub fn store_spec(
    store: &StoreRecord,
    configuration: &EventConfiguration,
    channels: &[ChannelRecord],
) -> Option<StoreSpec> {
    let (schema, channels) = match store.kind() {
        EventDataStoreKind::CloudTrailEvents => (StoreSchema::CloudTrailEvents, Vec::new()),
        EventDataStoreKind::ActivityAuditLog => {
            let arn = store.arn();
            let sending = channels
                .iter()
                .filter(|channel| channel.destinations.contains(&arn))
                .map(ChannelRecord::arn)
                .collect();
            (StoreSchema::ActivityAuditLog, sending)
        }
        _ => return None,
    };
    let keys_of = |kind: Type| -> Vec<String> {
        configuration
            .context_key_selectors
            .iter()
            .filter(|selector| selector.r#type == kind)
            .flat_map(|selector| selector.equals.iter().cloned())
            .collect()
    };
    Some(StoreSpec {
        id: store.id.clone(),
        account: store.account.to_string(),
        home_region: store.home_region.to_string(),
        multi_region: store.multi_region_enabled,
        // Stored selectors are the effective ones: the default "Default management
        // events" selector is filled in at creation.
        advanced_selectors: store.selectors.clone(),
        ingestion_enabled: store.ingesting(),
        retention_days: u32::try_from(store.retention_period).unwrap_or(0),
        from_offset: store.ingest_from_offset,
        until_offset: store.ingest_until_offset,
        insights_from: None,
        schema,
        channels,
        max_event_bytes: configuration.max_event_bytes(),
        context_keys: ContextKeys {
            request: keys_of(Type::RequestContext),
            tags: keys_of(Type::TagContext),
        },
    })
}

/// An Insights store's spec: it takes the Insights events of the source stores (ARNs)
/// that name it as their `InsightsDestination`.
pub fn insights_store_spec(
    store: &StoreRecord,
    configuration: &EventConfiguration,
    sources: &[InsightsSource],
) -> Option<StoreSpec> {
    if store.kind() != EventDataStoreKind::Insight {
        return None;
    }
    let from = sources
        .iter()
        .filter(|source| source.insights.destination_id == store.id)
        .map(|source| source.source.arn())
        .collect();
    Some(StoreSpec {
        id: store.id.clone(),
        account: store.account.to_string(),
        home_region: store.home_region.to_string(),
        // Insights events are the source's; its regions decided what was analysed.
        multi_region: true,
        advanced_selectors: store.selectors.clone(),
        ingestion_enabled: store.ingesting(),
        retention_days: u32::try_from(store.retention_period).unwrap_or(0),
        from_offset: store.ingest_from_offset,
        until_offset: store.ingest_until_offset,
        insights_from: Some(from),
        schema: StoreSchema::CloudTrailEvents,
        channels: Vec::new(),
        max_event_bytes: configuration.max_event_bytes(),
        context_keys: ContextKeys::default(),
    })
}

/// The stores service as a [`StoreCatalog`]: the stores are read again when the service
/// committed a change since the last read ([`StoreService::changes`]), or after
/// [`CATALOG_TTL`]; otherwise each batch gets the cached copy.
pub struct StoreDirectory {
    stores: Arc<StoreService>,
    cache: Mutex<Option<Cached>>,
    federated: Mutex<Option<(u64, Instant, Vec<FederatedStore>)>>,
}

struct Cached {
    changes: u64,
    loaded: Instant,
    specs: Vec<StoreSpec>,
}

impl StoreDirectory {
    pub fn new(stores: Arc<StoreService>) -> Self {
        Self {
            stores,
            cache: Mutex::new(None),
            federated: Mutex::new(None),
        }
    }
}

/// A store whose federation the lake writer acts on, with the table's schema; `None` when
/// federation is DISABLED (or the store holds no lake table).
pub fn federated_store(store: &StoreRecord) -> Option<FederatedStore> {
    let state = match store.federation_status.as_ref()? {
        FederationStatus::Enabling => FederationState::Enabling,
        FederationStatus::Enabled => FederationState::Enabled,
        FederationStatus::Disabling => FederationState::Disabling,
        _ => return None,
    };
    let schema = match store.kind() {
        EventDataStoreKind::CloudTrailEvents | EventDataStoreKind::Insight => {
            StoreSchema::CloudTrailEvents
        }
        EventDataStoreKind::ActivityAuditLog => StoreSchema::ActivityAuditLog,
        _ => return None,
    };
    Some(FederatedStore {
        id: store.id.clone(),
        schema,
        state,
    })
}

impl StoreCatalog for StoreDirectory {
    fn stores(&self) -> opentrail_lake::Result<Vec<StoreSpec>> {
        // Read before listing: a change committed during the listing makes the next
        // batch list again.
        let changes = self.stores.changes();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cached) = cache.as_ref() {
            if cached.changes == changes && cached.loaded.elapsed() < CATALOG_TTL {
                return Ok(cached.specs.clone());
            }
        }
        let records = self
            .stores
            .all_stores()
            .map_err(|e| LakeError::Catalog(e.to_string()))?;

        let catalog = |e: opentrail_stores::StoreError| LakeError::Catalog(e.to_string());
        let channels = self.stores.all_channels().map_err(catalog)?;
        let sources = self.stores.insights_sources().map_err(catalog)?;
        let mut specs = Vec::with_capacity(records.len());
        for record in &records {
            let configuration = self.stores.event_configuration(record).map_err(catalog)?;
            specs.extend(
                store_spec(record, &configuration, &channels)
                    .or_else(|| insights_store_spec(record, &configuration, &sources)),
            );
        }
        *cache = Some(Cached {
            changes,
            loaded: Instant::now(),
            specs: specs.clone(),
        });
        Ok(specs)
    }

    /// Asked every second by an idle writer: cached like [`Self::stores`].
    fn federated(&self) -> opentrail_lake::Result<Vec<FederatedStore>> {
        let changes = self.stores.changes();
        let mut cache = self.federated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, loaded, federated)) = cache.as_ref() {
            if *seen == changes && loaded.elapsed() < CATALOG_TTL {
                return Ok(federated.clone());
            }
        }
        let federated: Vec<FederatedStore> = self
            .stores
            .federated_stores()
            .map_err(|e| LakeError::Catalog(e.to_string()))?
            .iter()
            .filter_map(federated_store)
            .collect();
        *cache = Some((changes, Instant::now(), federated.clone()));
        Ok(federated)
    }

    fn federation_settled(&self, store: &str, enabled: bool) -> opentrail_lake::Result<()> {
        self.stores
            .settle_federation(store, enabled)
            .map_err(|e| LakeError::Catalog(e.to_string()))
    }
}

/// Signs delivered query results (`result_sign.json`) with the region's key of the key
/// store that signs digests, so that `ListPublicKeys` serves the key that verifies them.
pub struct QuerySigner(pub Arc<opentrail_delivery::KeyStore>);

impl opentrail_queries::ResultSigner for QuerySigner {
    fn sign(
        &self,
        region: &opentrail_model::Region,
        at: chrono::DateTime<chrono::Utc>,
        message: &[u8],
    ) -> Result<opentrail_queries::Signature, String> {
        let key = self.0.signing_key(region, at).map_err(|e| e.to_string())?;
        Ok(opentrail_queries::Signature {
            bytes: key.sign(message),
            fingerprint: key.fingerprint().to_owned(),
        })
    }
}
