//! StartEventDataStoreIngestion and StopEventDataStoreIngestion: ENABLED <-> STOPPED_INGESTION
//! (AWS passes through STARTING_INGESTION / STOPPING_INGESTION; here the change is immediate).

use crate::record::StoreRecord;
use crate::{save_in, StoreError, StoreService};
use opentrail_model::RequestContext;
use opentrail_operations::{
    EventDataStoreStatus, StartEventDataStoreIngestionRequest,
    StartEventDataStoreIngestionResponse, StopEventDataStoreIngestionRequest,
    StopEventDataStoreIngestionResponse,
};

impl StoreService {
    /// Moves the store from `from` to `to`, checking its category and status.
    fn change_ingestion(
        &self,
        ctx: &RequestContext,
        reference: &str,
        from: EventDataStoreStatus,
        to: EventDataStoreStatus,
        verb: &str,
    ) -> Result<StoreRecord, StoreError> {
        let now = self.now();
        self.write(|tx| {
            let mut store = self.resolve_in(tx, ctx, reference)?;
            if !store.kind().controls_ingestion() {
                return Err(StoreError::InvalidEventDataStoreCategory(format!(
                    "Ingestion of event data store {} cannot be {verb}; only stores of Management, Data, NetworkActivity or ConfigurationItem events ingest live events",
                    store.arn()
                )));
            }
            if store.status != from {
                return Err(StoreError::InvalidEventDataStoreStatus(format!(
                    "Ingestion of event data store {} cannot be {verb} while its status is {}; it must be {}",
                    store.arn(),
                    store.status.as_str(),
                    from.as_str()
                )));
            }
            store.status = to.clone();
            if store.ingesting() {
                store.start_collecting(self.log_end());
            } else {
                store.stop_collecting(self.log_end());
            }
            store.updated_at = now;
            save_in(tx, &store)?;
            Ok(store)
        })
    }

    pub async fn start_event_data_store_ingestion(
        &self,
        ctx: &RequestContext,
        input: StartEventDataStoreIngestionRequest,
    ) -> Result<StartEventDataStoreIngestionResponse, StoreError> {
        let store = self.change_ingestion(
            ctx,
            &input.event_data_store,
            EventDataStoreStatus::StoppedIngestion,
            EventDataStoreStatus::Enabled,
            "started",
        )?;
        tracing::info!(event_data_store = %store.arn(), "started ingestion");
        Ok(StartEventDataStoreIngestionResponse {})
    }

    pub async fn stop_event_data_store_ingestion(
        &self,
        ctx: &RequestContext,
        input: StopEventDataStoreIngestionRequest,
    ) -> Result<StopEventDataStoreIngestionResponse, StoreError> {
        let store = self.change_ingestion(
            ctx,
            &input.event_data_store,
            EventDataStoreStatus::Enabled,
            EventDataStoreStatus::StoppedIngestion,
            "stopped",
        )?;
        tracing::info!(event_data_store = %store.arn(), "stopped ingestion");
        Ok(StopEventDataStoreIngestionResponse {})
    }
}
