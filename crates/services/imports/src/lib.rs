//! CloudTrail Lake imports: StartImport, GetImport, ListImports, StopImport and
//! ListImportFailures. An import copies the events of a trail bucket's log and Insights
//! files (within an optional time range) into one event data store's lake folder, in the
//! background; its progress lives in the metadata store, so it resumes after a restart.

mod copy;
mod error;
mod record;
mod source;
mod stream;

pub use copy::CHUNK_EVENTS;
pub use error::ImportError;
pub use record::{ImportRecord, Status};

use base64::Engine;
use opentrail_lake::LakeStorage;
use opentrail_meta::{Documents, MetaStore, Transactions};
use opentrail_model::{Clock, RequestContext};
use opentrail_objstore::ObjectStore;
use opentrail_operations::{
    EventDataStoreStatus, GetImportRequest, GetImportResponse, ListImportFailuresRequest,
    ListImportFailuresResponse, ListImportsRequest, ListImportsResponse, StartImportRequest,
    StartImportResponse, StopImportRequest, StopImportResponse, Timestamp,
};
use opentrail_selectors::EventDataStoreKind;
use opentrail_stores::StoreService;
use record::{FailureRecord, Statistics, FAILURES, IMPORTS};
use source::Location;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Page size of ListImports and ListImportFailures when MaxResults is absent.
const DEFAULT_PAGE_SIZE: usize = 1000;
/// How long StopImport waits for the copy to reach a safe point.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// What the background copies share with the service.
pub(crate) struct Shared {
    meta: Arc<dyn MetaStore>,
    buckets: Arc<dyn ObjectStore>,
    lake: LakeStorage,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn transaction<T>(
        &self,
        body: impl FnMut(&dyn Documents) -> Result<T, ImportError>,
    ) -> Result<T, ImportError> {
        tokio::task::block_in_place(|| self.meta.transaction(body))
    }

    fn meta_get(&self, collection: &str, key: &str) -> Result<Option<String>, ImportError> {
        Ok(tokio::task::block_in_place(|| {
            self.meta.get_document(collection, key)
        })?)
    }

    fn load(&self, id: &str) -> Result<Option<ImportRecord>, ImportError> {
        self.meta_get(IMPORTS, id)?
            .map(|text| copy::decode(id, &text))
            .transpose()
    }

    fn all(&self) -> Result<Vec<ImportRecord>, ImportError> {
        let docs = tokio::task::block_in_place(|| self.meta.list_documents(IMPORTS))?;
        docs.iter()
            .map(|(key, text)| copy::decode(key, text))
            .collect()
    }

    fn failures(&self, id: &str) -> Result<Vec<FailureRecord>, ImportError> {
        let prefix = format!("{id}/");
        let docs = tokio::task::block_in_place(|| self.meta.list_documents(FAILURES))?;
        docs.iter()
            .filter(|(key, _)| key.starts_with(&prefix))
            .map(|(key, text)| copy::decode(key, text))
            .collect()
    }
}

/// A running copy: its stop flag and a signal when it ends.
struct Running {
    stop: Arc<AtomicBool>,
    done: tokio::sync::watch::Receiver<bool>,
}

pub struct ImportService {
    shared: Arc<Shared>,
    stores: Arc<StoreService>,
    running: Arc<Mutex<HashMap<String, Running>>>,
}

impl ImportService {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        buckets: Arc<dyn ObjectStore>,
        lake: LakeStorage,
        stores: Arc<StoreService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                meta,
                buckets,
                lake,
                clock,
            }),
            stores,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Starts the copies of imports that were running when the server stopped.
    pub fn resume(&self) -> Result<usize, ImportError> {
        let ongoing: Vec<_> = self
            .shared
            .all()?
            .into_iter()
            .filter(|import| import.status.is_ongoing())
            .collect();
        for import in &ongoing {
            tracing::info!(import = %import.id, "resuming import");
            self.spawn(&import.id);
        }
        Ok(ongoing.len())
    }

    fn spawn(&self, id: &str) {
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = tokio::sync::watch::channel(false);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.to_owned(),
                Running {
                    stop: Arc::clone(&stop),
                    done,
                },
            );
        let shared = Arc::clone(&self.shared);
        let running = Arc::clone(&self.running);
        let id = id.to_owned();
        tokio::spawn(async move {
            copy::run(shared, id.clone(), stop).await;
            running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            let _ = done_tx.send(true);
        });
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.clock.now()
    }

    /// The caller's import `id` (another account's or region's is not found).
    fn find(&self, ctx: &RequestContext, id: &str) -> Result<ImportRecord, ImportError> {
        self.shared
            .load(id)?
            .filter(|import| {
                import.account == ctx.account.as_str() && import.region == ctx.region.as_str()
            })
            .ok_or_else(|| ImportError::ImportNotFound(format!("Import {id} not found")))
    }

    fn failed_entries(&self, id: &str) -> Result<i64, ImportError> {
        Ok(self
            .shared
            .failures(id)?
            .iter()
            .filter(|f| f.status == "FAILED")
            .count() as i64)
    }

    fn ongoing_in(&self, ctx: &RequestContext) -> Result<Option<ImportRecord>, ImportError> {
        Ok(self.shared.all()?.into_iter().find(|import| {
            import.account == ctx.account.as_str()
                && import.region == ctx.region.as_str()
                && import.status.is_ongoing()
        }))
    }

    pub async fn start_import(
        &self,
        ctx: &RequestContext,
        input: StartImportRequest,
    ) -> Result<StartImportResponse, ImportError> {
        let import = match &input.import_id {
            Some(id) => self.restart(ctx, id)?,
            None => self.create(ctx, input)?,
        };
        self.spawn(&import.id);
        Ok(StartImportResponse {
            import_id: Some(import.id.clone()),
            destinations: Some(import.destinations.clone()),
            import_source: Some(import.source()),
            start_event_time: import.start_event_time.map(Timestamp),
            end_event_time: import.end_event_time.map(Timestamp),
            import_status: Some(import.status.to_wire()),
            created_timestamp: Some(Timestamp(import.created_at)),
            updated_timestamp: Some(Timestamp(import.updated_at)),
        })
    }

    fn ensure_none_ongoing(&self, ctx: &RequestContext) -> Result<(), ImportError> {
        match self.ongoing_in(ctx)? {
            Some(ongoing) => Err(ImportError::AccountHasOngoingImport(format!(
                "Account {} has an ongoing import {} in region {}; wait for it to finish or stop it",
                ctx.account, ongoing.id, ctx.region
            ))),
            None => Ok(()),
        }
    }

    fn restart(&self, ctx: &RequestContext, id: &str) -> Result<ImportRecord, ImportError> {
        let import = self.find(ctx, id)?;
        if !matches!(import.status, Status::Stopped | Status::Failed) {
            return Err(ImportError::InvalidParameter(format!(
                "Import {id} is {}; only a STOPPED or FAILED import can be started again",
                import.status.to_wire().as_str()
            )));
        }
        if self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
        {
            return Err(ImportError::InvalidParameter(format!(
                "Import {id} is still stopping; try again in a moment"
            )));
        }
        self.ensure_none_ongoing(ctx)?;
        let now = self.now();
        self.shared.transaction(|tx| {
            let mut record = copy::load_in(tx, id)?;
            record.status = Status::Initializing;
            record.updated_at = now;
            copy::save_in(tx, &record)?;
            Ok(record)
        })
    }

    fn create(
        &self,
        ctx: &RequestContext,
        input: StartImportRequest,
    ) -> Result<ImportRecord, ImportError> {
        let destinations = input.destinations.unwrap_or_default();
        let Some(source) = input.import_source else {
            return Err(ImportError::InvalidParameter(
                "ImportSource is required to start a new import".into(),
            ));
        };
        if destinations.is_empty() {
            return Err(ImportError::InvalidParameter(
                "Destinations is required to start a new import".into(),
            ));
        }
        let start = input.start_event_time.map(|t| t.0);
        let end = input.end_event_time.map(|t| t.0);
        if let (Some(start), Some(end)) = (start, end) {
            if start > end {
                return Err(ImportError::InvalidParameter(
                    "StartEventTime must be before EndEventTime".into(),
                ));
            }
        }
        let mut destination_ids = Vec::with_capacity(destinations.len());
        for destination in &destinations {
            let store = self.stores.find_event_data_store(ctx, destination)?;
            if store.status != EventDataStoreStatus::Enabled {
                return Err(ImportError::InvalidEventDataStoreStatus(format!(
                    "Event data store {} is {}; an import needs an ENABLED event data store",
                    store.arn(),
                    store.status.as_str()
                )));
            }
            if store.kind() != EventDataStoreKind::CloudTrailEvents {
                return Err(ImportError::InvalidEventDataStoreCategory(format!(
                    "Event data store {} does not hold CloudTrail events; imports copy trail events only into CloudTrail event data stores",
                    store.arn()
                )));
            }
            destination_ids.push(store.id);
        }
        let s3 = source.s3;
        let Some(location) = Location::parse(&s3.s3_location_uri) else {
            return Err(ImportError::InvalidImportSource(format!(
                "S3LocationUri {} is not an S3 URI of the form s3://bucket[/prefix]",
                s3.s3_location_uri
            )));
        };
        if opentrail_model::Region::parse(&s3.s3_bucket_region).is_err() {
            return Err(ImportError::InvalidImportSource(format!(
                "S3BucketRegion {} is not a region",
                s3.s3_bucket_region
            )));
        }
        let role_ok = opentrail_model::Arn::parse(&s3.s3_bucket_access_role_arn)
            .is_ok_and(|arn| arn.service == "iam" && arn.resource.starts_with("role/"));
        if !role_ok {
            return Err(ImportError::InvalidImportSource(format!(
                "S3BucketAccessRoleArn {} is not an IAM role ARN",
                s3.s3_bucket_access_role_arn
            )));
        }
        let exists = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(self.shared.buckets.bucket_exists(&location.bucket))
        })
        .map_err(|e| {
            ImportError::Internal(format!("failed to check bucket {}: {e}", location.bucket))
        })?;
        if !exists {
            return Err(ImportError::InvalidImportSource(format!(
                "The source S3 bucket {} does not exist",
                location.bucket
            )));
        }
        let now = self.now();
        let record = ImportRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account: ctx.account.as_str().to_owned(),
            region: ctx.region.as_str().to_owned(),
            destinations,
            destination_ids,
            location_uri: s3.s3_location_uri,
            bucket_region: s3.s3_bucket_region,
            access_role_arn: s3.s3_bucket_access_role_arn,
            start_event_time: start,
            end_event_time: end,
            status: Status::Initializing,
            statistics: Statistics::default(),
            created_at: now,
            updated_at: now,
        };
        // Checked and written in one transaction: two concurrent starts cannot both pass.
        let account = ctx.account.as_str().to_owned();
        let region = ctx.region.as_str().to_owned();
        self.shared.transaction(|tx| {
            for (key, text) in tx.list_documents(IMPORTS)? {
                let other: ImportRecord = copy::decode(&key, &text)?;
                if other.account == account && other.region == region && other.status.is_ongoing()
                {
                    return Err(ImportError::AccountHasOngoingImport(format!(
                        "Account {account} has an ongoing import {} in region {region}; wait for it to finish or stop it",
                        other.id
                    )));
                }
            }
            copy::save_in(tx, &record)
        })?;
        Ok(record)
    }

    pub async fn get_import(
        &self,
        ctx: &RequestContext,
        input: GetImportRequest,
    ) -> Result<GetImportResponse, ImportError> {
        let import = self.find(ctx, &input.import_id)?;
        let failed = self.failed_entries(&import.id)?;
        Ok(GetImportResponse {
            import_id: Some(import.id.clone()),
            destinations: Some(import.destinations.clone()),
            import_source: Some(import.source()),
            start_event_time: import.start_event_time.map(Timestamp),
            end_event_time: import.end_event_time.map(Timestamp),
            import_status: Some(import.status.to_wire()),
            created_timestamp: Some(Timestamp(import.created_at)),
            updated_timestamp: Some(Timestamp(import.updated_at)),
            import_statistics: Some(import.wire_statistics(failed)),
        })
    }

    pub async fn stop_import(
        &self,
        ctx: &RequestContext,
        input: StopImportRequest,
    ) -> Result<StopImportResponse, ImportError> {
        let id = input.import_id;
        self.find(ctx, &id)?;
        let now = self.now();
        self.shared.transaction(|tx| {
            let mut record = copy::load_in(tx, &id)?;
            if record.status.is_ongoing() {
                record.status = Status::Stopped;
                record.updated_at = now;
                copy::save_in(tx, &record)?;
            }
            Ok(())
        })?;
        let done = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.get(&id).map(|run| {
                run.stop.store(true, Ordering::Relaxed);
                run.done.clone()
            })
        };
        if let Some(mut done) = done {
            let _ = tokio::time::timeout(STOP_WAIT, done.wait_for(|ended| *ended)).await;
        }
        let import = self.find(ctx, &id)?;
        let failed = self.failed_entries(&id)?;
        Ok(StopImportResponse {
            import_id: Some(import.id.clone()),
            destinations: Some(import.destinations.clone()),
            import_source: Some(import.source()),
            start_event_time: import.start_event_time.map(Timestamp),
            end_event_time: import.end_event_time.map(Timestamp),
            import_status: Some(import.status.to_wire()),
            created_timestamp: Some(Timestamp(import.created_at)),
            updated_timestamp: Some(Timestamp(import.updated_at)),
            import_statistics: Some(import.wire_statistics(failed)),
        })
    }

    pub async fn list_imports(
        &self,
        ctx: &RequestContext,
        input: ListImportsRequest,
    ) -> Result<ListImportsResponse, ImportError> {
        let wanted_status = match &input.import_status {
            Some(status) => Some(Status::from_wire(status).ok_or_else(|| {
                ImportError::InvalidParameter(format!(
                    "ImportStatus {} is not one of INITIALIZING, IN_PROGRESS, FAILED, STOPPED, COMPLETED",
                    status.as_str()
                ))
            })?),
            None => None,
        };
        if let Some(destination) = &input.destination {
            // A malformed ARN is EventDataStoreARNInvalidException, as AWS answers.
            let valid = opentrail_model::Arn::parse(destination).is_ok_and(|arn| {
                arn.service == "cloudtrail" && arn.resource.starts_with("eventdatastore/")
            });
            if !valid {
                return Err(ImportError::Store(
                    opentrail_stores::StoreError::EventDataStoreArnInvalid(format!(
                        "Invalid event data store ARN: {destination}"
                    )),
                ));
            }
        }
        let mut imports: Vec<ImportRecord> = self
            .shared
            .all()?
            .into_iter()
            .filter(|import| {
                import.account == ctx.account.as_str()
                    && import.region == ctx.region.as_str()
                    && wanted_status.is_none_or(|status| import.status == status)
                    && input
                        .destination
                        .as_ref()
                        .is_none_or(|d| import.destinations.contains(d))
            })
            .collect();
        imports.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let keys: Vec<String> = imports.iter().map(|i| i.id.clone()).collect();
        let (start, end, next_token) = page(&keys, input.max_results, input.next_token.as_deref())?;
        Ok(ListImportsResponse {
            imports: Some(
                imports[start..end]
                    .iter()
                    .map(ImportRecord::list_item)
                    .collect(),
            ),
            next_token,
        })
    }

    pub async fn list_import_failures(
        &self,
        ctx: &RequestContext,
        input: ListImportFailuresRequest,
    ) -> Result<ListImportFailuresResponse, ImportError> {
        // An unknown (or another caller's) import has no failures to list.
        let failures = match self.find(ctx, &input.import_id) {
            Ok(import) => self.shared.failures(&import.id)?,
            Err(ImportError::ImportNotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let keys: Vec<String> = failures
            .iter()
            .enumerate()
            .map(|(n, f)| format!("{}#{n}", f.location))
            .collect();
        let (start, end, next_token) = page(&keys, input.max_results, input.next_token.as_deref())?;
        Ok(ListImportFailuresResponse {
            failures: Some(
                failures[start..end]
                    .iter()
                    .map(FailureRecord::list_item)
                    .collect(),
            ),
            next_token,
        })
    }
}

/// One page of `keys`: (start, end, NextToken). The token names the page's first key.
fn page(
    keys: &[String],
    max_results: Option<i32>,
    token: Option<&str>,
) -> Result<(usize, usize, Option<String>), ImportError> {
    let size = match max_results {
        Some(n) if !(1..=1000).contains(&n) => {
            return Err(ImportError::InvalidParameter(format!(
                "MaxResults {n} is outside 1 to 1000"
            )))
        }
        Some(n) => n as usize,
        None => DEFAULT_PAGE_SIZE,
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = match token {
        None => 0,
        Some(token) => {
            let key = engine
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| ImportError::InvalidNextToken("Invalid NextToken".into()))?;
            keys.iter().position(|k| *k == key).ok_or_else(|| {
                ImportError::InvalidNextToken(
                    "NextToken no longer names a position in the listing".into(),
                )
            })?
        }
    };
    let end = (start + size).min(keys.len());
    let next = (end < keys.len()).then(|| engine.encode(keys[end].as_bytes()));
    Ok((start, end, next))
}
