//! CloudTrail Lake queries: StartQuery, DescribeQuery, GetQueryResults, ListQueries and
//! CancelQuery. Queries run asynchronously, off the request path, on a [`QueryEngine`];
//! their records live in the metadata store and their results in files under the data
//! dir, both kept 7 days. Each operation takes the generated request of
//! `opentrail-operations` and returns its generated response, or a [`QueryError`] (an
//! `opentrail_wire::AwsError`).

mod delivery;
mod error;
mod lifecycle;
mod record;
mod results;
mod run;
mod stores;
mod token;

pub use delivery::{
    result_files, sign_file, string_to_sign, Destination, ResultFile, ResultSigner, Signature,
    DEFAULT_RESULT_FILE_BYTES, SIGN_FILE_NAME,
};
pub use error::QueryError;
pub use record::{QueryRecord, WidgetRun};
pub use results::{Position, ResultRow};

use chrono::{DateTime, Utc};
use opentrail_lake::QueryEngine;
use opentrail_meta::{Documents, MetaStore, Transactions};
use opentrail_model::Clock;
use opentrail_operations::QueryStatus;
use opentrail_stores::StoreService;
use record::QUERIES;
use results::ResultFiles;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The most queries one account may have QUEUED or RUNNING in a region (AWS: 10).
pub const MAX_ACTIVE_QUERIES_PER_REGION: usize = 10;
/// How long a query's record and results are kept after it was started (AWS: 7 days).
pub const RESULT_RETENTION_DAYS: i64 = 7;
/// A query runs at most this long, then is TIMED_OUT (AWS: 1 hour).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(3600);
/// Queries running at once on this server; the others wait QUEUED.
pub const DEFAULT_RUNNING_QUERIES: usize = 2;

/// How queries run.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// RUNNING longer than this: TIMED_OUT.
    pub timeout: Duration,
    /// How long records and results are kept.
    pub retention: chrono::Duration,
    /// Queries executing at once (each holds the engine's memory budget).
    pub running: usize,
    /// A test hook: each query stays QUEUED this long before it may run, so that tests
    /// can hold ten queries active without needing slow SQL.
    pub hold: Duration,
    /// CSV bytes after which a delivered result file is closed and the next begun.
    pub result_file_bytes: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_QUERY_TIMEOUT,
            retention: chrono::Duration::days(RESULT_RETENTION_DAYS),
            running: DEFAULT_RUNNING_QUERIES,
            hold: Duration::ZERO,
            result_file_bytes: delivery::DEFAULT_RESULT_FILE_BYTES,
        }
    }
}

/// The query API. Cheap to clone; clones share the running queries.
#[derive(Clone)]
pub struct QueryService {
    inner: Arc<Inner>,
}

struct Inner {
    meta: Arc<dyn MetaStore>,
    clock: Arc<dyn Clock>,
    stores: Arc<StoreService>,
    engine: Arc<dyn QueryEngine>,
    results: ResultFiles,
    options: QueryOptions,
    /// One permit per query allowed to execute at once.
    slots: tokio::sync::Semaphore,
    /// The tasks of this process's QUEUED and RUNNING queries, by query id.
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Where `DeliveryS3Uri` results go; unset, StartQuery refuses a `DeliveryS3Uri`.
    delivery: OnceLock<delivery::Delivery>,
    /// GenerateQuery's aliases, for `StartQuery(QueryAlias=…)`; unset, it is refused.
    templates: OnceLock<Arc<opentrail_samples::SampleService>>,
}

/// Why a query that was QUEUED or RUNNING when its server stopped is FAILED on restart.
pub const INTERRUPTED_MESSAGE: &str =
    "Query failed because the server stopped while it was queued or running; start it again";

impl QueryService {
    /// The query API over `engine`, with results in `results_dir`. Queries left QUEUED or
    /// RUNNING by a server that stopped become FAILED ([`INTERRUPTED_MESSAGE`]), and
    /// queries older than the retention are purged, before this returns.
    pub fn new(
        meta: Arc<dyn MetaStore>,
        clock: Arc<dyn Clock>,
        stores: Arc<StoreService>,
        engine: Arc<dyn QueryEngine>,
        results_dir: PathBuf,
        options: QueryOptions,
    ) -> Result<Self, QueryError> {
        let results = ResultFiles::open(results_dir)?;
        let slots = tokio::sync::Semaphore::new(options.running.max(1));
        let service = Self {
            inner: Arc::new(Inner {
                meta,
                clock,
                stores,
                engine,
                results,
                options,
                slots,
                tasks: Mutex::new(HashMap::new()),
                delivery: OnceLock::new(),
                templates: OnceLock::new(),
            }),
        };
        service.inner.recover()?;
        Ok(service)
    }

    /// Lets StartQuery deliver results to the buckets of `buckets` (the object store
    /// trails deliver to), signing them with `signer`.
    pub fn with_delivery(
        self,
        buckets: Arc<dyn opentrail_objstore::ObjectStore>,
        signer: Arc<dyn ResultSigner>,
    ) -> Self {
        let file_bytes = self.inner.options.result_file_bytes;
        let _ = self.inner.delivery.set(delivery::Delivery {
            buckets,
            signer,
            file_bytes,
        });
        self
    }

    /// Lets StartQuery run the queries GenerateQuery keeps under an alias.
    pub fn with_templates(self, samples: Arc<opentrail_samples::SampleService>) -> Self {
        let _ = self.inner.templates.set(samples);
        self
    }

    /// The ARNs of the event data stores a query of the caller's ran over (for its audit
    /// events); empty when there is no such query.
    pub fn store_arns_of(
        &self,
        ctx: &opentrail_model::RequestContext,
        query_id: &str,
    ) -> Vec<String> {
        let key = record::key(&ctx.account, &ctx.region, query_id);
        match self.inner.get(&key) {
            Ok(Some(query)) => query
                .stores
                .iter()
                .map(|id| stores::store_arn(ctx, id))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `body` in one metadata transaction, off the async workers.
    fn write<T>(
        &self,
        body: impl FnMut(&dyn Documents) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        blocking(|| self.meta.transaction(body))
    }

    fn get(&self, key: &str) -> Result<Option<QueryRecord>, QueryError> {
        blocking(|| self.meta.get_document(QUERIES, key))?
            .map(|value| decode(key, &value))
            .transpose()
    }

    /// Every stored query (of every account).
    fn all(&self) -> Result<Vec<QueryRecord>, QueryError> {
        blocking(|| self.meta.list_documents(QUERIES))?
            .iter()
            .map(|(key, value)| decode(key, value))
            .collect()
    }

    fn expired(&self, query: &QueryRecord, now: DateTime<Utc>) -> bool {
        query.created_at + self.options.retention <= now
    }

    /// Deletes queries past the retention, in `tx`; returns their ids (whose result files
    /// the caller deletes once the transaction committed).
    fn purge_in(&self, tx: &dyn Documents, now: DateTime<Utc>) -> Result<Vec<String>, QueryError> {
        let mut purged = Vec::new();
        for (key, value) in tx.list_documents(QUERIES)? {
            let query = decode(&key, &value)?;
            if self.expired(&query, now) {
                tx.delete_document(QUERIES, &key)?;
                purged.push(query.id);
            }
        }
        Ok(purged)
    }

    fn remove_results(&self, ids: &[String]) {
        for id in ids {
            self.results.remove(id);
        }
    }

    /// Marks what a stopped server left QUEUED or RUNNING as FAILED; purges old queries.
    fn recover(&self) -> Result<(), QueryError> {
        let now = self.now();
        let purged = self.meta.transaction(|tx: &dyn Documents| {
            let purged = self.purge_in(tx, now)?;
            for (key, value) in tx.list_documents(QUERIES)? {
                let mut query = decode(&key, &value)?;
                if query.status == QueryStatus::Finished
                    && query.delivery_status == Some(opentrail_operations::DeliveryStatus::Pending)
                {
                    // Its delivery was cut short: the bucket may hold some files and no
                    // sign file. Run the query again to deliver its results.
                    query.delivery_status = Some(opentrail_operations::DeliveryStatus::Failed);
                    save_in(tx, &query)?;
                    continue;
                }
                if !query.is_active() {
                    continue;
                }
                if query.delivery_status.is_some() {
                    query.delivery_status = Some(opentrail_operations::DeliveryStatus::Failed);
                }
                query.status = QueryStatus::Failed;
                query.ended_at = Some(now);
                query.error_message = Some(INTERRUPTED_MESSAGE.to_owned());
                save_in(tx, &query)?;
                tracing::warn!(query = %query.id, "query interrupted by a server stop is now FAILED");
            }
            Ok::<_, QueryError>(purged)
        })?;
        self.remove_results(&purged);
        Ok(())
    }
}

/// Runs blocking metadata work: on a multi-threaded runtime without holding up its other
/// tasks, elsewhere (tests, startup) directly.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

fn decode(key: &str, value: &str) -> Result<QueryRecord, QueryError> {
    serde_json::from_str(value)
        .map_err(|e| QueryError::Internal(format!("stored query {key} is unreadable: {e}")))
}

fn save_in(docs: &dyn Documents, query: &QueryRecord) -> Result<(), QueryError> {
    let value = serde_json::to_string(query)
        .map_err(|e| QueryError::Internal(format!("failed to encode query: {e}")))?;
    docs.put_document(QUERIES, &query.storage_key(), &value)?;
    Ok(())
}
