//! PutEventConfiguration / GetEventConfiguration for event data stores: the maximum event
//! size (Standard 256 KB, Large 1 MB) and the context key selectors of enriched events,
//! stored beside the store and removed with it. `EventConfiguration::max_event_bytes` is
//! what writers into the store honour.

use crate::{Direct, StoreError, StoreRecord, StoreService};
use opentrail_meta::Documents;
use opentrail_model::RequestContext;
use opentrail_operations::{
    ContextKeySelector, EventDataStoreStatus, GetEventConfigurationRequest,
    GetEventConfigurationResponse, MaxEventSize, PutEventConfigurationRequest,
    PutEventConfigurationResponse, Type,
};
use opentrail_selectors::EventDataStoreKind;
use serde::{Deserialize, Serialize};

/// Event configurations, keyed like their store (`StoreRecord::storage_key`).
pub(crate) const EVENT_CONFIGURATIONS: &str = "event_configurations";

/// The largest event a store keeps with `MaxEventSize` Standard, and with Large.
pub const STANDARD_MAX_EVENT_BYTES: usize = 256 * 1024;
pub const LARGE_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// An event data store's event configuration; a store never configured has the default
/// (Standard, no context key selectors).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventConfiguration {
    pub max_event_size: MaxEventSize,
    pub context_key_selectors: Vec<ContextKeySelector>,
}

impl EventConfiguration {
    /// The largest event (its JSON record, in bytes) the store accepts.
    pub fn max_event_bytes(&self) -> usize {
        match self.max_event_size {
            MaxEventSize::Large => LARGE_MAX_EVENT_BYTES,
            _ => STANDARD_MAX_EVENT_BYTES,
        }
    }
}

impl StoreService {
    pub async fn put_event_configuration(
        &self,
        ctx: &RequestContext,
        input: PutEventConfigurationRequest,
    ) -> Result<PutEventConfigurationResponse, StoreError> {
        let store_ref = store_parameter(
            input.trail_name.as_deref(),
            input.event_data_store.as_deref(),
        )?;
        if input.aggregation_configurations.is_some() {
            return Err(StoreError::InvalidParameterCombination(
                "AggregationConfigurations apply to trails, not to event data stores".into(),
            ));
        }
        let configuration = EventConfiguration {
            max_event_size: input.max_event_size.clone().ok_or_else(|| {
                StoreError::InvalidParameter(
                    "MaxEventSize is required for an event data store".into(),
                )
            })?,
            context_key_selectors: input.context_key_selectors.clone().unwrap_or_default(),
        };
        validate(&configuration)?;
        let store = self.write(|tx| {
            let store = self.resolve_in(tx, ctx, store_ref)?;
            if store.status == EventDataStoreStatus::PendingDeletion {
                return Err(StoreError::InactiveEventDataStore(format!(
                    "Event data store {} is pending deletion; restore it first",
                    store.arn()
                )));
            }
            check_category(&store)?;
            let value = serde_json::to_string(&configuration).map_err(|e| {
                StoreError::Internal(format!("failed to encode event configuration: {e}"))
            })?;
            tx.put_document(EVENT_CONFIGURATIONS, &store.storage_key(), &value)?;
            Ok(store)
        })?;
        tracing::info!(store = %store.arn(), max_event_size = ?configuration.max_event_size, "put event configuration");
        Ok(PutEventConfigurationResponse {
            trail_arn: None,
            event_data_store_arn: Some(store.arn()),
            max_event_size: Some(configuration.max_event_size),
            context_key_selectors: Some(configuration.context_key_selectors),
            aggregation_configurations: None,
        })
    }

    pub async fn get_event_configuration(
        &self,
        ctx: &RequestContext,
        input: GetEventConfigurationRequest,
    ) -> Result<GetEventConfigurationResponse, StoreError> {
        let store_ref = store_parameter(
            input.trail_name.as_deref(),
            input.event_data_store.as_deref(),
        )?;
        let direct = Direct(self.meta.as_ref());
        let store = self.resolve_in(&direct, ctx, store_ref)?;
        check_category(&store)?;
        let configuration = configuration_in(&direct, &store)?;
        Ok(GetEventConfigurationResponse {
            trail_arn: None,
            event_data_store_arn: Some(store.arn()),
            max_event_size: Some(configuration.max_event_size),
            context_key_selectors: Some(configuration.context_key_selectors),
            aggregation_configurations: None,
        })
    }

    /// The event configuration of `store` (the default when never put): for writers into
    /// the store.
    pub fn event_configuration(
        &self,
        store: &StoreRecord,
    ) -> Result<EventConfiguration, StoreError> {
        configuration_in(&Direct(self.meta.as_ref()), store)
    }
}

fn configuration_in(
    docs: &dyn Documents,
    store: &StoreRecord,
) -> Result<EventConfiguration, StoreError> {
    match docs.get_document(EVENT_CONFIGURATIONS, &store.storage_key())? {
        None => Ok(EventConfiguration::default()),
        Some(value) => serde_json::from_str(&value).map_err(|e| {
            StoreError::Internal(format!(
                "stored event configuration of {} is unreadable: {e}",
                store.arn()
            ))
        }),
    }
}

/// The event data store a request names. Trails' event configuration (aggregated events)
/// is not built.
fn store_parameter<'a>(
    trail_name: Option<&str>,
    event_data_store: Option<&'a str>,
) -> Result<&'a str, StoreError> {
    match (trail_name, event_data_store) {
        (Some(_), Some(_)) => Err(StoreError::InvalidParameterCombination(
            "Specify either TrailName or EventDataStore, not both".into(),
        )),
        (None, Some(store)) => Ok(store),
        (Some(trail), None) => Err(StoreError::UnsupportedOperation(format!(
            "Event configuration of trails (aggregated events) is not available on this OpenTrail server; trail {trail} was named"
        ))),
        (None, None) => Err(StoreError::InvalidParameterCombination(
            "Specify TrailName or EventDataStore".into(),
        )),
    }
}

/// Enriched events and large events are CloudTrail-event stores' features.
fn check_category(store: &StoreRecord) -> Result<(), StoreError> {
    if store.kind() == EventDataStoreKind::CloudTrailEvents {
        return Ok(());
    }
    Err(StoreError::InvalidEventDataStoreCategory(format!(
        "Event data store {} does not hold CloudTrail management or data events; event configuration applies only to such stores",
        store.arn()
    )))
}

fn validate(configuration: &EventConfiguration) -> Result<(), StoreError> {
    if let MaxEventSize::Unknown(other) = &configuration.max_event_size {
        return Err(StoreError::InvalidParameter(format!(
            "MaxEventSize must be Standard or Large, got {other}"
        )));
    }
    let selectors = &configuration.context_key_selectors;
    if selectors.len() > 2 {
        return Err(StoreError::InvalidParameter(format!(
            "ContextKeySelectors takes at most 2 selectors, got {}",
            selectors.len()
        )));
    }
    if !selectors.is_empty() && configuration.max_event_size != MaxEventSize::Large {
        return Err(StoreError::InvalidParameterCombination(
            "MaxEventSize must be Large when ContextKeySelectors are given".into(),
        ));
    }
    let mut seen = Vec::new();
    for selector in selectors {
        if let Type::Unknown(other) = &selector.r#type {
            return Err(StoreError::InvalidParameter(format!(
                "ContextKeySelector Type must be TagContext or RequestContext, got {other}"
            )));
        }
        if seen.contains(&&selector.r#type) {
            return Err(StoreError::InvalidParameter(format!(
                "ContextKeySelectors name Type {:?} twice",
                selector.r#type
            )));
        }
        seen.push(&selector.r#type);
        if selector.equals.is_empty() || selector.equals.len() > 50 {
            return Err(StoreError::InvalidParameter(format!(
                "ContextKeySelector Equals takes 1 to 50 keys, got {}",
                selector.equals.len()
            )));
        }
        if let Some(bad) = selector
            .equals
            .iter()
            .find(|key| key.is_empty() || key.chars().count() > 128)
        {
            return Err(StoreError::InvalidParameter(format!(
                "ContextKeySelector key must be 1 to 128 characters long: {bad:?}"
            )));
        }
    }
    Ok(())
}
