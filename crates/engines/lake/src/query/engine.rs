//! The query engine seam and its DataFusion implementation.

use super::functions::{trino_aggregates, trino_functions};
use super::grouping::GroupByBits;
use super::lambdas::trino_higher_order_functions;
use super::layout::events_table;
use super::prepare::{prepare, resolve_names, table_name, Prepared};
use super::render::render_value;
use super::stats::scan_stats;
use super::trino::more_trino_functions;
use super::unnest::unnest_functions;
use crate::error::{LakeError, Result};
use crate::schema::events_scan_schema;
use crate::storage::{superseded, LakeStorage};
use crate::store::{StoreCatalog, StoreSchema};
use async_trait::async_trait;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::{
    CacheManagerConfig, FileMetadataCache, FileStatisticsCache,
};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::{collect, execute_stream};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// A finished query's statistics (DescribeQuery's `QueryStatistics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStatistics {
    pub events_matched: u64,
    pub events_scanned: u64,
    pub bytes_scanned: u64,
    pub execution_time_in_millis: u64,
}

/// A finished query's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryOutput {
    /// Column names as Lake keys them (see `prepare::output_names`).
    pub columns: Vec<String>,
    /// Each value as Lake's text; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    pub statistics: QueryStatistics,
}

impl QueryOutput {
    /// `QueryResultRows` as GetQueryResults returns them: per row, one single-key object
    /// per column in SELECT order. NULL renders as the empty string (OpenTrail's choice;
    /// AWS does not document it).
    pub fn result_rows(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    Value::Array(
                        self.columns
                            .iter()
                            .zip(row)
                            .map(|(column, value)| {
                                let mut object = Map::new();
                                object.insert(
                                    column.clone(),
                                    Value::String(value.clone().unwrap_or_default()),
                                );
                                Value::Object(object)
                            })
                            .collect(),
                    )
                })
                .collect(),
        )
    }
}

/// Runs Lake SQL over event data stores.
#[async_trait]
pub trait QueryEngine: Send + Sync + 'static {
    /// Checks that `sql` is one read-only query over stores in `stores` (the ids the caller
    /// may query) and plans it: what StartQuery rejects with `InvalidQueryStatementException`
    /// or `EventDataStoreNotFoundException`.
    async fn validate(&self, sql: &str, stores: &[String]) -> Result<()>;

    /// Runs `sql` to completion; dropping the future cancels the query.
    async fn run(&self, sql: &str, stores: &[String]) -> Result<QueryOutput>;
}

/// Memory one query may hold before it fails with "Query exhausted resources at this
/// scale factor" (nothing spills to disk).
pub const DEFAULT_QUERY_MEMORY: usize = 512 * 1024 * 1024;

/// Stack of the threads that plan and run queries: DataFusion plans and optimises
/// expressions recursively, with large frames in unoptimised builds.
const QUERY_THREAD_STACK: usize = 64 * 1024 * 1024;
/// Threads running queries (SQL execution stays off the server's async workers).
const QUERY_THREADS: usize = 2;

/// [`QueryEngine`] over the Parquet files of [`crate::LakeWriter`], with DataFusion, on
/// its own threads.
pub struct DataFusionEngine {
    planner: Planner,
    /// Always `Some` until dropped (taken to shut down without blocking).
    runtime: Option<tokio::runtime::Runtime>,
}

impl DataFusionEngine {
    pub fn new(storage: LakeStorage) -> Self {
        // Building a runtime fails only when the OS refuses threads; then queries run on
        // the caller's runtime.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(QUERY_THREADS)
            .thread_name("lake-query")
            .thread_stack_size(QUERY_THREAD_STACK)
            .enable_all()
            .build()
            .map_err(|e| tracing::warn!(error = %e, "failed to start the lake query threads"))
            .ok();
        Self {
            planner: Planner {
                storage,
                memory_limit: DEFAULT_QUERY_MEMORY,
                catalog: None,
                group_by_bits: true,
                filter_pushdown: true,
                footers: Arc::new(
                    DefaultCache::new(FOOTER_CACHE_BYTES).with_name("lake Parquet footers"),
                ),
                statistics: Arc::new(
                    DefaultCache::new(STATISTICS_CACHE_BYTES).with_name("lake file statistics"),
                ),
            },
            runtime,
        }
    }

    /// Whether partial aggregations group rows by the bits of their group values first
    /// ([`super::grouping`]; on by default). Off runs DataFusion's own grouping alone:
    /// the benchmarks compare the two.
    pub fn with_group_by_bits(mut self, on: bool) -> Self {
        self.planner.group_by_bits = on;
        self
    }

    /// Whether filters are evaluated while Parquet is decoded (on by default). Off decodes
    /// every column a query reads and filters after: the benchmarks compare the two.
    pub fn with_filter_pushdown(mut self, on: bool) -> Self {
        self.planner.filter_pushdown = on;
        self
    }

    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.planner.memory_limit = bytes;
        self
    }

    /// Where the engine learns each store's table schema ([`crate::StoreSpec::schema`]);
    /// without it, or for a store the catalog does not list, every store has the
    /// CloudTrail-events schema.
    pub fn with_catalog(mut self, catalog: Arc<dyn StoreCatalog>) -> Self {
        self.planner.catalog = Some(catalog);
        self
    }

    /// Runs `sql` and streams its result, counting rows without keeping or rendering them:
    /// what a result reader that writes rows out as they come (result delivery, the
    /// benchmarks) costs. Returns the row count and the statistics.
    pub async fn run_counting(
        &self,
        sql: &str,
        stores: &[String],
    ) -> Result<(u64, QueryStatistics)> {
        let (planner, sql, stores) = (self.planner.clone(), sql.to_string(), stores.to_vec());
        self.on_query_threads(async move { planner.run_counting(&sql, &stores).await })
            .await
    }

    /// Runs `work` on the query threads.
    async fn on_query_threads<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let Some(runtime) = &self.runtime else {
            return work.await;
        };
        // Dropping the caller's future (CancelQuery, a timeout) stops the query too.
        let mut task = AbortOnDrop(runtime.spawn(work));
        (&mut task.0)
            .await
            .map_err(|e| LakeError::Execution(format!("query failed: {e}")))?
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for DataFusionEngine {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Plans and runs one query.
#[derive(Clone)]
struct Planner {
    storage: LakeStorage,
    memory_limit: usize,
    catalog: Option<Arc<dyn StoreCatalog>>,
    group_by_bits: bool,
    filter_pushdown: bool,
    /// The files' Parquet footers, kept across queries (each query has its own runtime
    /// for its memory limit). An entry is used only while the file's size and modification
    /// time are unchanged.
    footers: Arc<FileMetadataCache>,
    /// Each file's statistics (row count, per column min/max/nulls) as DataFusion plans
    /// with them, kept across queries on the same terms: computing them from the footers
    /// on every query was a third of a small query's time (the lake-bench README has the
    /// profile).
    statistics: Arc<FileStatisticsCache>,
}

/// Memory for cached Parquet footers (a lake file's footer is tens of KB).
const FOOTER_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Memory for cached file statistics (a few KB a file).
const STATISTICS_CACHE_BYTES: usize = 32 * 1024 * 1024;

impl Planner {
    /// A session with the statement's stores registered as tables `eds_<n>`.
    async fn session(&self, stores: &[String]) -> Result<SessionContext> {
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(
                CacheManagerConfig::default()
                    .with_file_metadata_cache(Some(Arc::clone(&self.footers)))
                    .with_metadata_cache_limit(FOOTER_CACHE_BYTES)
                    .with_file_statistics_cache(Some(Arc::clone(&self.statistics)))
                    .with_file_statistics_cache_limit(STATISTICS_CACHE_BYTES),
            )
            .with_memory_limit(self.memory_limit, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(execution_error)?;
        let mut config = SessionConfig::new().with_target_partitions(2);
        // Compare strings with timestamps as Trino does; keep plain Utf8 strings.
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        config
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = false;
        // Filters are evaluated while decoding, and the other columns decoded only for
        // the rows that pass: rows are sorted by principal, so one principal's events are
        // a few pages (the lake-bench README has the measurement).
        config.options_mut().execution.parquet.pushdown_filters = self.filter_pushdown;
        config.options_mut().execution.parquet.reorder_filters = true;
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features();
        if self.group_by_bits {
            state = state.with_physical_optimizer_rule(Arc::new(GroupByBits));
        }
        let state = state.build();
        let context = SessionContext::new_with_state(state);
        let url = url_of_lake()?;
        context.register_object_store(url.as_ref(), Arc::clone(&self.storage.objects));
        for function in trino_functions() {
            context.register_udf(function);
        }
        for function in more_trino_functions().into_iter().chain(unnest_functions()) {
            context.register_udf(function);
        }
        for function in trino_higher_order_functions() {
            context.register_higher_order_function(Arc::new(function));
        }
        for aggregate in trino_aggregates() {
            context.register_udaf(aggregate);
        }
        for (index, store) in stores.iter().enumerate() {
            let table = self.store_table(&url, store).await?;
            context
                .register_table(table_name(index), table)
                .map_err(execution_error)?;
        }
        Ok(context)
    }

    /// The table schema of `store`.
    fn schema_of(&self, store: &str) -> Result<StoreSchema> {
        let Some(catalog) = &self.catalog else {
            return Ok(StoreSchema::CloudTrailEvents);
        };
        Ok(catalog
            .stores()?
            .into_iter()
            .find(|spec| spec.id == store)
            .map(|spec| spec.schema)
            .unwrap_or_default())
    }

    /// The store's files as a table, leaving out inputs of an unfinished compaction.
    async fn store_table(
        &self,
        url: &ObjectStoreUrl,
        store: &str,
    ) -> Result<Arc<dyn TableProvider>> {
        let parts = self.storage.list_parts(Some(store)).await?;
        let skipped = superseded(&parts);
        let mut paths = Vec::with_capacity(parts.len());
        for (index, stored) in parts.iter().enumerate() {
            if !skipped.contains(&index) {
                paths.push(
                    ListingTableUrl::parse(format!("{}{}", url.as_str(), stored.path))
                        .map_err(execution_error)?,
                );
            }
        }
        // Files written by StartImport, beside the writer's.
        for path in self.storage.list_imported(store).await? {
            paths.push(
                ListingTableUrl::parse(format!("{}{}", url.as_str(), path))
                    .map_err(execution_error)?,
            );
        }
        if paths.is_empty() {
            // A store without files yet: its (empty) folder.
            let prefix = self.storage.store_prefix(store);
            paths.push(
                ListingTableUrl::parse(format!("{}{}/", url.as_str(), prefix))
                    .map_err(execution_error)?,
            );
        }
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let schema = self.schema_of(store)?;
        let file_schema = match schema {
            StoreSchema::CloudTrailEvents => events_scan_schema(),
            StoreSchema::ActivityAuditLog => schema.arrow_schema(),
        };
        let config = ListingTableConfig::new_with_multi_paths(paths)
            .with_listing_options(options)
            .with_schema(file_schema);
        let files = ListingTable::try_new(config)
            .map_err(execution_error)?
            .with_cache(Some(Arc::clone(&self.statistics)));
        Ok(match schema {
            StoreSchema::CloudTrailEvents => {
                Arc::new(events_table(files).map_err(execution_error)?)
            }
            StoreSchema::ActivityAuditLog => Arc::new(files),
        })
    }

    async fn plan(
        &self,
        sql: &str,
        stores: &[String],
    ) -> Result<(
        SessionContext,
        datafusion::dataframe::DataFrame,
        Vec<String>,
    )> {
        let known = |id: &str| stores.iter().any(|store| store == id);
        let Prepared {
            stores: referenced,
            names,
            planned,
        } = prepare(sql, &known)?;
        let context = self.session(&referenced).await?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let invalid =
            |e: DataFusionError| LakeError::InvalidQuery(planning_message(&e, &referenced));
        let statement = DFStatement::Statement(Box::new(Statement::Query(planned)));
        let plan = context
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(invalid)?;
        options.verify_plan(&plan).map_err(invalid)?;
        let frame = context.execute_logical_plan(plan).await.map_err(invalid)?;
        let actual: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect();
        let names = resolve_names(names.as_deref(), &actual);
        Ok((context, frame, names))
    }
}

/// Whether `plan` has a scan with filters and every such scan reads, besides the columns
/// its filters name, at most one column, of a plain (not nested) type.
fn only_narrow_filtered_scans(plan: &datafusion::logical_expr::LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let mut filtered = false;
    let mut narrow = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if !scan.filters.is_empty() {
                filtered = true;
                let named: std::collections::HashSet<&str> = scan
                    .filters
                    .iter()
                    .flat_map(|filter| filter.column_refs())
                    .map(|column| column.name.as_str())
                    .collect();
                let schema = scan.source.schema();
                let read: Vec<usize> = match &scan.projection {
                    Some(projection) => projection.clone(),
                    None => (0..schema.fields().len()).collect(),
                };
                let others: Vec<_> = read
                    .iter()
                    .map(|&index| schema.field(index))
                    .filter(|field| !named.contains(field.name().as_str()))
                    .collect();
                narrow &=
                    others.len() <= 1 && others.iter().all(|field| !field.data_type().is_nested());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    filtered && narrow
}

/// The object store URL the lake is registered under in a session.
fn url_of_lake() -> Result<ObjectStoreUrl> {
    ObjectStoreUrl::parse("opentrail-lake://lake/").map_err(execution_error)
}

fn execution_error(error: DataFusionError) -> LakeError {
    if is_resources_exhausted(&error) {
        return LakeError::ResourcesExhausted;
    }
    LakeError::Execution(error.to_string())
}

fn is_resources_exhausted(error: &DataFusionError) -> bool {
    match error {
        DataFusionError::ResourcesExhausted(_) => true,
        DataFusionError::Context(_, inner) => is_resources_exhausted(inner),
        other => matches!(other.find_root(), DataFusionError::ResourcesExhausted(_)),
    }
}

/// DataFusion's planning message with the internal table names put back as store ids.
fn planning_message(error: &DataFusionError, stores: &[String]) -> String {
    let mut message = error.strip_backtrace();
    for (index, store) in stores.iter().enumerate().rev() {
        message = message.replace(&table_name(index), store);
    }
    message
}

#[async_trait]
impl QueryEngine for DataFusionEngine {
    async fn validate(&self, sql: &str, stores: &[String]) -> Result<()> {
        let (planner, sql, stores) = (self.planner.clone(), sql.to_string(), stores.to_vec());
        self.on_query_threads(async move { planner.validate(&sql, &stores).await })
            .await
    }

    async fn run(&self, sql: &str, stores: &[String]) -> Result<QueryOutput> {
        let (planner, sql, stores) = (self.planner.clone(), sql.to_string(), stores.to_vec());
        self.on_query_threads(async move { planner.run(&sql, &stores).await })
            .await
    }
}

impl Planner {
    /// The statement's execution plan. Filters are evaluated while Parquet is decoded (the
    /// session's setting) unless every scan that filters reads at most one plain column
    /// besides the filter's own ([`only_narrow_filtered_scans`]): there the filter-then-
    /// decode machinery costs more than decoding that column for every row and filtering
    /// after (query (c) of the lake-bench README: 43.5–46.9 ms against 52.7–61.6 ms at 10M),
    /// while a wide scan (`SELECT *` of one principal) is 7× faster with it.
    async fn physical_plan(
        &self,
        frame: datafusion::dataframe::DataFrame,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let (mut state, plan) = frame.into_parts();
        let plan = state.optimize(&plan)?;
        if self.filter_pushdown && only_narrow_filtered_scans(&plan) {
            state
                .config_mut()
                .options_mut()
                .execution
                .parquet
                .pushdown_filters = false;
        }
        let planner = Arc::clone(state.query_planner());
        planner.create_physical_plan(&plan, &state).await
    }

    async fn validate(&self, sql: &str, stores: &[String]) -> Result<()> {
        let (_, frame, _) = self.plan(sql, stores).await?;
        self.physical_plan(frame)
            .await
            .map_err(|e| LakeError::InvalidQuery(e.strip_backtrace()))?;
        Ok(())
    }

    async fn run_counting(&self, sql: &str, stores: &[String]) -> Result<(u64, QueryStatistics)> {
        let started = Instant::now();
        let (context, frame, _) = self.plan(sql, stores).await?;
        let plan = self.physical_plan(frame).await.map_err(execution_error)?;
        let mut stream =
            execute_stream(Arc::clone(&plan), context.task_ctx()).map_err(execution_error)?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            rows += batch.map_err(execution_error)?.num_rows() as u64;
        }
        let scanned = scan_stats(&plan);
        Ok((
            rows,
            QueryStatistics {
                events_matched: scanned.events_matched,
                events_scanned: scanned.events_scanned,
                bytes_scanned: scanned.bytes_scanned,
                execution_time_in_millis: started.elapsed().as_millis() as u64,
            },
        ))
    }

    async fn run(&self, sql: &str, stores: &[String]) -> Result<QueryOutput> {
        let started = Instant::now();
        let (context, frame, columns) = self.plan(sql, stores).await?;
        let plan = self.physical_plan(frame).await.map_err(execution_error)?;
        let batches = collect(Arc::clone(&plan), context.task_ctx())
            .await
            .map_err(execution_error)?;
        let mut rows = Vec::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|column| render_value(column.as_ref(), row))
                        .collect(),
                );
            }
        }
        let scanned = scan_stats(&plan);
        Ok(QueryOutput {
            columns,
            rows,
            statistics: QueryStatistics {
                events_matched: scanned.events_matched,
                events_scanned: scanned.events_scanned,
                bytes_scanned: scanned.bytes_scanned,
                execution_time_in_millis: started.elapsed().as_millis() as u64,
            },
        })
    }
}
