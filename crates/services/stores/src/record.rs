//! What we persist for an event data store, and the generated wire shapes derived from it.

use chrono::{DateTime, Utc};
use opentrail_model::{AccountId, Region};
use opentrail_operations::{
    AdvancedEventSelector as WireSelector, AdvancedFieldSelector as WireFieldSelector, BillingMode,
    CreateEventDataStoreResponse, EventDataStore, EventDataStoreStatus, FederationStatus,
    GetEventDataStoreResponse, PartitionKey, RestoreEventDataStoreResponse, Tag, Timestamp,
    UpdateEventDataStoreResponse,
};
use opentrail_selectors::{AdvancedEventSelector, AdvancedFieldSelector, EventDataStoreKind};
use serde::{Deserialize, Serialize};

/// The selector AWS gives a store created without selectors.
pub const DEFAULT_SELECTOR_NAME: &str = "Default management events";

/// Default retention, in days, by billing mode (AWS: 366 extendable, 2557 fixed).
pub fn default_retention(mode: &BillingMode) -> i32 {
    match mode {
        BillingMode::FixedRetentionPricing => 2557,
        _ => 366,
    }
}

/// Longest retention, in days, by billing mode (AWS: 3653 extendable, 2557 fixed).
pub fn max_retention(mode: &BillingMode) -> i32 {
    match mode {
        BillingMode::FixedRetentionPricing => 2557,
        _ => 3653,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreRecord {
    /// The UUID that ends the ARN (and names the store's table in queries).
    pub id: String,
    pub name: String,
    pub account: AccountId,
    pub home_region: Region,
    /// ENABLED, STOPPED_INGESTION or PENDING_DELETION (transitions are immediate here).
    pub status: EventDataStoreStatus,
    /// The status a restore returns to, while PENDING_DELETION.
    pub status_before_deletion: Option<EventDataStoreStatus>,
    /// When DeleteEventDataStore ran; the store is purged a wait period later.
    pub deleted_at: Option<DateTime<Utc>>,
    pub selectors: Vec<AdvancedEventSelector>,
    pub multi_region_enabled: bool,
    pub organization_enabled: bool,
    pub retention_period: i32,
    pub termination_protection_enabled: bool,
    /// Always a full KMS key or alias ARN.
    pub kms_key_id: Option<String>,
    pub billing_mode: BillingMode,
    pub tags: Vec<Tag>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The event log's end when the store was created or its ingestion last (re)started:
    /// the lake collects the events logged from this offset on, never the log's history
    /// (AWS: a store collects events from its creation; history comes with imports).
    /// 0 for stores created before it was recorded.
    #[serde(default)]
    pub ingest_from_offset: u64,
    /// The event log's end when ingestion last stopped or the store was deleted: events
    /// logged before it still go in, none after. `None` while ingesting.
    #[serde(default)]
    pub ingest_until_offset: Option<u64>,
    /// EnableFederation / DisableFederation: ENABLING, ENABLED, DISABLING, DISABLED; `None`
    /// for a store never federated (reported as nothing, like a store created before).
    #[serde(default)]
    pub federation_status: Option<FederationStatus>,
    /// The role EnableFederation named, while federation is not DISABLED.
    #[serde(default)]
    pub federation_role_arn: Option<String>,
}

/// A store's answer to Create/Get/Update/Restore: the generated response types share these
/// members; `$($rest)*` adds the ones a response has of its own (and `..Default` if any are left).
macro_rules! store_response {
    ($store:expr, $ty:ident { $($rest:tt)* }) => {{
        let store = $store;
        $ty {
            event_data_store_arn: Some(store.arn()),
            name: Some(store.name.clone()),
            advanced_event_selectors: Some(store.wire_selectors()),
            multi_region_enabled: Some(store.multi_region_enabled),
            organization_enabled: Some(store.organization_enabled),
            retention_period: Some(store.retention_period),
            termination_protection_enabled: Some(store.termination_protection_enabled),
            created_timestamp: Some(Timestamp(store.created_at)),
            updated_timestamp: Some(Timestamp(store.updated_at)),
            kms_key_id: store.kms_key_id.clone(),
            billing_mode: Some(store.billing_mode.clone()),
            $($rest)*
        }
    }};
}

impl StoreRecord {
    pub fn arn(&self) -> String {
        arn(&self.home_region, &self.account, &self.id)
    }

    /// The metadata-store key: unique per account, home region and id.
    pub fn storage_key(&self) -> String {
        format!("{}/{}/{}", self.account, self.home_region, self.id)
    }

    /// Whether the wait after DeleteEventDataStore is over at `now`: the store is gone.
    pub fn purged_at(&self, now: DateTime<Utc>, wait: chrono::Duration) -> bool {
        self.status == EventDataStoreStatus::PendingDeletion
            && self.deleted_at.is_some_and(|at| at + wait <= now)
    }

    /// Whether federation is anything but DISABLED (or never enabled): the lake writer
    /// publishes, keeps or removes the store's table, and the store cannot be deleted.
    pub fn federation_active(&self) -> bool {
        matches!(
            self.federation_status,
            Some(
                FederationStatus::Enabling
                    | FederationStatus::Enabled
                    | FederationStatus::Disabling
            )
        )
    }

    /// Whether live events go in now (ENABLED).
    pub fn ingesting(&self) -> bool {
        self.status == EventDataStoreStatus::Enabled
    }

    /// Ingestion (re)starts with the events logged from `log_end` on.
    pub(crate) fn start_collecting(&mut self, log_end: u64) {
        self.ingest_from_offset = log_end;
        self.ingest_until_offset = None;
    }

    /// Ingestion stops with the events logged before `log_end` (unless already stopped).
    pub(crate) fn stop_collecting(&mut self, log_end: u64) {
        if self.ingest_until_offset.is_none() {
            self.ingest_until_offset = Some(log_end.max(self.ingest_from_offset));
        }
    }

    /// The kind of events the store's selectors select (stored selectors were validated).
    pub fn kind(&self) -> EventDataStoreKind {
        opentrail_selectors::validate_event_data_store_selectors(&self.selectors)
            .unwrap_or(EventDataStoreKind::CloudTrailEvents)
    }

    /// How CloudTrail Lake partitions the store's events (OpenTrail: by event time).
    pub fn partition_keys(&self) -> Vec<PartitionKey> {
        vec![PartitionKey {
            name: "eventTime".into(),
            r#type: "timestamp".into(),
        }]
    }

    pub fn wire_selectors(&self) -> Vec<WireSelector> {
        self.selectors.iter().map(selector_to_wire).collect()
    }

    /// botocore's `EventDataStore`, as ListEventDataStores returns it.
    pub fn to_list_item(&self) -> EventDataStore {
        EventDataStore {
            event_data_store_arn: Some(self.arn()),
            name: Some(self.name.clone()),
            termination_protection_enabled: Some(self.termination_protection_enabled),
            status: Some(self.status.clone()),
            advanced_event_selectors: Some(self.wire_selectors()),
            multi_region_enabled: Some(self.multi_region_enabled),
            organization_enabled: Some(self.organization_enabled),
            retention_period: Some(self.retention_period),
            created_timestamp: Some(Timestamp(self.created_at)),
            updated_timestamp: Some(Timestamp(self.updated_at)),
        }
    }

    /// CreateEventDataStore answers `CREATED` whatever ingestion does next (as AWS's
    /// documented example), and the tags it was created with.
    pub fn to_create_response(&self) -> CreateEventDataStoreResponse {
        store_response!(
            self,
            CreateEventDataStoreResponse {
                status: Some(EventDataStoreStatus::Created),
                tags_list: Some(self.tags.clone()),
            }
        )
    }

    pub fn to_get_response(&self) -> GetEventDataStoreResponse {
        store_response!(
            self,
            GetEventDataStoreResponse {
                status: Some(self.status.clone()),
                partition_keys: Some(self.partition_keys()),
                federation_status: self.federation_status.clone(),
                federation_role_arn: self.federation_role_arn.clone(),
            }
        )
    }

    pub fn to_update_response(&self) -> UpdateEventDataStoreResponse {
        store_response!(
            self,
            UpdateEventDataStoreResponse {
                status: Some(self.status.clone()),
                federation_status: self.federation_status.clone(),
                federation_role_arn: self.federation_role_arn.clone(),
            }
        )
    }

    pub fn to_restore_response(&self) -> RestoreEventDataStoreResponse {
        store_response!(
            self,
            RestoreEventDataStoreResponse {
                status: Some(self.status.clone()),
            }
        )
    }
}

pub fn arn(region: &Region, account: &AccountId, id: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:eventdatastore/{id}")
}

/// The selector a store gets when created without any: all management events.
pub fn default_selectors() -> Vec<AdvancedEventSelector> {
    vec![AdvancedEventSelector {
        name: Some(DEFAULT_SELECTOR_NAME.to_owned()),
        field_selectors: vec![AdvancedFieldSelector {
            field: "eventCategory".into(),
            equals: Some(vec!["Management".into()]),
            ..AdvancedFieldSelector::default()
        }],
    }]
}

pub fn selector_from_wire(selector: WireSelector) -> AdvancedEventSelector {
    AdvancedEventSelector {
        name: selector.name,
        field_selectors: selector
            .field_selectors
            .into_iter()
            .map(|f| AdvancedFieldSelector {
                field: f.field,
                equals: f.equals,
                starts_with: f.starts_with,
                ends_with: f.ends_with,
                not_equals: f.not_equals,
                not_starts_with: f.not_starts_with,
                not_ends_with: f.not_ends_with,
            })
            .collect(),
    }
}

fn selector_to_wire(selector: &AdvancedEventSelector) -> WireSelector {
    WireSelector {
        name: selector.name.clone(),
        field_selectors: selector
            .field_selectors
            .iter()
            .map(|f| WireFieldSelector {
                field: f.field.clone(),
                equals: f.equals.clone(),
                starts_with: f.starts_with.clone(),
                ends_with: f.ends_with.clone(),
                not_equals: f.not_equals.clone(),
                not_starts_with: f.not_starts_with.clone(),
                not_ends_with: f.not_ends_with.clone(),
            })
            .collect(),
    }
}
