//! CreateEventDataStore, GetEventDataStore, ListEventDataStores, UpdateEventDataStore,
//! DeleteEventDataStore, RestoreEventDataStore.

use crate::record::{default_retention, default_selectors, selector_from_wire, StoreRecord};
use crate::{save_in, validate, StoreError, StoreService, MAX_EVENT_DATA_STORES_PER_REGION};
use base64::Engine;
use opentrail_model::RequestContext;
use opentrail_operations::{
    AdvancedEventSelector as WireSelector, BillingMode, CreateEventDataStoreRequest,
    CreateEventDataStoreResponse, DeleteEventDataStoreRequest, DeleteEventDataStoreResponse,
    EventDataStoreStatus, GetEventDataStoreRequest, GetEventDataStoreResponse,
    ListEventDataStoresRequest, ListEventDataStoresResponse, RestoreEventDataStoreRequest,
    RestoreEventDataStoreResponse, UpdateEventDataStoreRequest, UpdateEventDataStoreResponse,
};
use opentrail_selectors::{validate_event_data_store_selectors, AdvancedEventSelector};

/// ListEventDataStores' page size when MaxResults is absent.
const DEFAULT_PAGE_SIZE: usize = 1000;

fn organizations_not_in_use(ctx: &RequestContext) -> StoreError {
    StoreError::OrganizationsNotInUse(format!(
        "Account {} is not part of an organization; organization event data stores are not available",
        ctx.account
    ))
}

/// Validated selectors in the selectors domain type.
fn selectors(input: Vec<WireSelector>) -> Result<Vec<AdvancedEventSelector>, StoreError> {
    let selectors: Vec<AdvancedEventSelector> = input.into_iter().map(selector_from_wire).collect();
    validate_event_data_store_selectors(&selectors)
        .map_err(|e| StoreError::InvalidEventSelectors(e.message))?;
    Ok(selectors)
}

fn name_taken(name: &str, ctx: &RequestContext) -> StoreError {
    StoreError::EventDataStoreAlreadyExists(format!(
        "An event data store named {name} already exists in account {} and region {}",
        ctx.account, ctx.region
    ))
}

fn check_room(existing: &[StoreRecord], ctx: &RequestContext) -> Result<(), StoreError> {
    if existing.len() >= MAX_EVENT_DATA_STORES_PER_REGION {
        return Err(StoreError::EventDataStoreMaxLimitExceeded(format!(
            "Account {} already has {MAX_EVENT_DATA_STORES_PER_REGION} event data stores in {}",
            ctx.account, ctx.region
        )));
    }
    Ok(())
}

pub(crate) fn inactive(store: &StoreRecord) -> StoreError {
    StoreError::InactiveEventDataStore(format!(
        "Event data store {} is pending deletion; restore it first",
        store.arn()
    ))
}

fn encode_token(after: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(after)
}

fn decode_token(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes).ok()
}

impl StoreService {
    pub async fn create_event_data_store(
        &self,
        ctx: &RequestContext,
        input: CreateEventDataStoreRequest,
    ) -> Result<CreateEventDataStoreResponse, StoreError> {
        validate::name(&input.name)?;
        let selectors = match input.advanced_event_selectors {
            Some(given) => selectors(given)?,
            None => default_selectors(),
        };
        let billing_mode = input.billing_mode.unwrap_or_default();
        validate::billing_mode(&billing_mode)?;
        let retention_period = input
            .retention_period
            .unwrap_or_else(|| default_retention(&billing_mode));
        validate::retention(retention_period, &billing_mode)?;
        if input.organization_enabled == Some(true) {
            return Err(organizations_not_in_use(ctx));
        }
        let kms_key_id = input
            .kms_key_id
            .as_deref()
            .map(|key| validate::kms_key_id(key, &ctx.region, &ctx.account))
            .transpose()?;
        let tags = input.tags_list.unwrap_or_default();
        validate::tags(&tags)?;
        let now = self.now();
        let log_end = self.log_end();
        let start_ingestion = input.start_ingestion.unwrap_or(true);
        let mut store = StoreRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: input.name.clone(),
            account: ctx.account.clone(),
            home_region: ctx.region.clone(),
            status: if start_ingestion {
                EventDataStoreStatus::Enabled
            } else {
                EventDataStoreStatus::StoppedIngestion
            },
            status_before_deletion: None,
            deleted_at: None,
            selectors,
            multi_region_enabled: input.multi_region_enabled.unwrap_or(true),
            organization_enabled: false,
            retention_period,
            termination_protection_enabled: input.termination_protection_enabled.unwrap_or(true),
            kms_key_id,
            billing_mode,
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
            ingest_from_offset: log_end,
            ingest_until_offset: (!start_ingestion).then_some(log_end),
            federation_status: None,
            federation_role_arn: None,
        };
        let arn = store.arn();
        validate::merge_tags(&mut store.tags, tags, &arn)?;
        self.write(|tx| {
            let existing = self.stores_in(tx, &ctx.account, &ctx.region)?;
            if existing.iter().any(|s| s.name == store.name) {
                return Err(name_taken(&store.name, ctx));
            }
            check_room(&existing, ctx)?;
            save_in(tx, &store)
        })?;
        tracing::info!(event_data_store = %arn, "created event data store");
        Ok(store.to_create_response())
    }

    pub async fn get_event_data_store(
        &self,
        ctx: &RequestContext,
        input: GetEventDataStoreRequest,
    ) -> Result<GetEventDataStoreResponse, StoreError> {
        Ok(self
            .resolve(ctx, &input.event_data_store)?
            .to_get_response())
    }

    /// The account's stores in the request's region (all statuses), a page at a time.
    pub async fn list_event_data_stores(
        &self,
        ctx: &RequestContext,
        input: ListEventDataStoresRequest,
    ) -> Result<ListEventDataStoresResponse, StoreError> {
        let page_size = match input.max_results {
            Some(n) => validate::max_results(n)?,
            None => DEFAULT_PAGE_SIZE,
        };
        let stores = self.stores_in(
            &crate::Direct(self.meta.as_ref()),
            &ctx.account,
            &ctx.region,
        )?;
        let start = match input.next_token.as_deref() {
            None => 0,
            Some(token) => {
                let after = decode_token(token)
                    .ok_or_else(|| StoreError::InvalidNextToken("Invalid NextToken".into()))?;
                // The position after the store the previous page ended with; a store
                // deleted since then ends the listing where it stood.
                match stores.iter().position(|s| s.id == after) {
                    Some(at) => at + 1,
                    None => {
                        return Err(StoreError::InvalidNextToken(
                            "NextToken no longer names a position in the listing".into(),
                        ))
                    }
                }
            }
        };
        let remaining = &stores[start.min(stores.len())..];
        let page: Vec<_> = remaining.iter().take(page_size).collect();
        let next_token = (remaining.len() > page_size)
            .then(|| page.last().map(|s| encode_token(&s.id)))
            .flatten();
        Ok(ListEventDataStoresResponse {
            event_data_stores: Some(page.iter().map(|s| s.to_list_item()).collect()),
            next_token,
        })
    }

    pub async fn update_event_data_store(
        &self,
        ctx: &RequestContext,
        input: UpdateEventDataStoreRequest,
    ) -> Result<UpdateEventDataStoreResponse, StoreError> {
        let nothing = input.name.is_none()
            && input.advanced_event_selectors.is_none()
            && input.multi_region_enabled.is_none()
            && input.organization_enabled.is_none()
            && input.retention_period.is_none()
            && input.termination_protection_enabled.is_none()
            && input.kms_key_id.is_none()
            && input.billing_mode.is_none();
        if nothing {
            return Err(StoreError::InvalidParameter(
                "UpdateEventDataStore needs at least one setting to change besides EventDataStore"
                    .into(),
            ));
        }
        if let Some(name) = &input.name {
            validate::name(name)?;
        }
        let new_selectors = input
            .advanced_event_selectors
            .clone()
            .map(selectors)
            .transpose()?;
        let now = self.now();
        let store = self.write(|tx| {
            let mut store = self.resolve_in(tx, ctx, &input.event_data_store)?;
            if store.status == EventDataStoreStatus::PendingDeletion {
                return Err(inactive(&store));
            }
            if let Some(name) = &input.name {
                let others = self.stores_in(tx, &ctx.account, &ctx.region)?;
                if others.iter().any(|s| &s.name == name && s.id != store.id) {
                    return Err(name_taken(name, ctx));
                }
                store.name = name.clone();
            }
            if let Some(selectors) = &new_selectors {
                let kind = validate_event_data_store_selectors(selectors)
                    .map_err(|e| StoreError::InvalidEventSelectors(e.message))?;
                if kind != store.kind() {
                    return Err(StoreError::InvalidEventSelectors(format!(
                        "The advanced event selectors would change the kind of events event data store {} holds ({:?} to {kind:?}); create another event data store instead",
                        store.arn(),
                        store.kind()
                    )));
                }
                store.selectors = selectors.clone();
            }
            if let Some(mode) = &input.billing_mode {
                validate::billing_mode(mode)?;
                let downgrade = store.billing_mode == BillingMode::ExtendableRetentionPricing
                    && *mode == BillingMode::FixedRetentionPricing;
                if downgrade {
                    return Err(StoreError::InvalidParameter(
                        "The billing mode cannot change from EXTENDABLE_RETENTION_PRICING to FIXED_RETENTION_PRICING; create another event data store instead".into(),
                    ));
                }
                store.billing_mode = mode.clone();
            }
            if let Some(days) = input.retention_period {
                store.retention_period = days;
            }
            validate::retention(store.retention_period, &store.billing_mode)?;
            if input.organization_enabled == Some(true) {
                return Err(organizations_not_in_use(ctx));
            }
            if let Some(multi) = input.multi_region_enabled {
                store.multi_region_enabled = multi;
            }
            if let Some(protect) = input.termination_protection_enabled {
                store.termination_protection_enabled = protect;
            }
            if let Some(key) = &input.kms_key_id {
                let key = validate::kms_key_id(key, &ctx.region, &ctx.account)?;
                match &store.kms_key_id {
                    Some(current) if *current != key => {
                        return Err(StoreError::InvalidParameter(format!(
                            "Event data store {} is encrypted with KMS key {current}; its key cannot be changed or removed",
                            store.arn()
                        )))
                    }
                    _ => store.kms_key_id = Some(key),
                }
            }
            store.updated_at = now;
            save_in(tx, &store)?;
            Ok(store)
        })?;
        tracing::info!(event_data_store = %store.arn(), "updated event data store");
        Ok(store.to_update_response())
    }

    pub async fn delete_event_data_store(
        &self,
        ctx: &RequestContext,
        input: DeleteEventDataStoreRequest,
    ) -> Result<DeleteEventDataStoreResponse, StoreError> {
        let now = self.now();
        let store = self.write(|tx| {
            let mut store = self.resolve_in(tx, ctx, &input.event_data_store)?;
            if store.status == EventDataStoreStatus::PendingDeletion {
                return Err(inactive(&store));
            }
            crate::channels::check_no_channel_uses(tx, &store)?;
            if store.federation_active() {
                return Err(StoreError::EventDataStoreFederationEnabled(format!(
                    "Event data store {} cannot be deleted because Lake query federation is {}; run DisableFederation first",
                    store.arn(),
                    store.federation_status.as_ref().map_or("", |s| s.as_str())
                )));
            }
            if store.termination_protection_enabled {
                return Err(StoreError::EventDataStoreTerminationProtected(format!(
                    "Event data store {} cannot be deleted because termination protection is enabled",
                    store.arn()
                )));
            }
            store.stop_collecting(self.log_end());
            store.status_before_deletion = Some(store.status.clone());
            store.status = EventDataStoreStatus::PendingDeletion;
            store.deleted_at = Some(now);
            store.updated_at = now;
            save_in(tx, &store)?;
            Ok(store)
        })?;
        tracing::info!(event_data_store = %store.arn(), "event data store pending deletion");
        Ok(DeleteEventDataStoreResponse {})
    }

    pub async fn restore_event_data_store(
        &self,
        ctx: &RequestContext,
        input: RestoreEventDataStoreRequest,
    ) -> Result<RestoreEventDataStoreResponse, StoreError> {
        let now = self.now();
        let store = self.write(|tx| {
            let mut store = self.resolve_in(tx, ctx, &input.event_data_store)?;
            if store.status != EventDataStoreStatus::PendingDeletion {
                return Err(StoreError::InvalidEventDataStoreStatus(format!(
                    "Event data store {} is {}; only a store pending deletion can be restored",
                    store.arn(),
                    store.status.as_str()
                )));
            }
            // Stores pending deletion count towards the quota, so the region has room.
            let others: Vec<StoreRecord> = self
                .stores_in(tx, &ctx.account, &ctx.region)?
                .into_iter()
                .filter(|s| s.id != store.id)
                .collect();
            check_room(&others, ctx)?;
            store.status = store
                .status_before_deletion
                .take()
                .unwrap_or(EventDataStoreStatus::Enabled);
            if store.ingesting() {
                store.start_collecting(self.log_end());
            }
            store.deleted_at = None;
            store.updated_at = now;
            save_in(tx, &store)?;
            Ok(store)
        })?;
        tracing::info!(event_data_store = %store.arn(), "restored event data store");
        Ok(store.to_restore_response())
    }
}
