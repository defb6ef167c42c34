//! CloudTrail Lake's query helpers that need no query engine: `SearchSampleQueries` over
//! the sample library OpenTrail ships (ranked with BM25), and `GenerateQuery`, which turns
//! an English prompt into Lake SQL offline and keeps it under a query alias for
//! `StartQuery(QueryAlias=…)` (see [`SampleService::query_for_alias`]).

mod bm25;
mod error;
mod generate;
mod library;
mod search;
mod text;

pub use bm25::Bm25Index;
pub use error::SampleError;
pub use generate::{generate, Generated, Source, MIN_SAMPLE_RELEVANCE};
pub use library::{Ranked, SampleLibrary, SampleQuery, EDS_PLACEHOLDER};
pub use search::DEFAULT_MAX_RESULTS;

use chrono::{DateTime, Utc};
use opentrail_meta::{Documents, MetaStore, Transactions};
use opentrail_model::{AccountId, Clock, Region, RequestContext};
use opentrail_operations::{
    EventDataStoreStatus, GenerateQueryRequest, GenerateQueryResponse, GetEventDataStoreRequest,
    SearchSampleQueriesRequest, SearchSampleQueriesResponse,
};
use opentrail_stores::StoreService;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Generated queries, keyed `account/region/alias`.
const GENERATED: &str = "generated_queries";

/// How long a generated query's alias stays usable (as long as Lake keeps query results).
pub const ALIAS_DAYS: i64 = 7;

/// Prompt length limits (the model's).
const MIN_PROMPT: usize = 3;
const MAX_PROMPT: usize = 500;

/// A query GenerateQuery made, as kept under its alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedQuery {
    pub prompt: String,
    pub sql: String,
    pub event_data_store_arn: String,
    pub created_at: DateTime<Utc>,
}

pub struct SampleService {
    library: SampleLibrary,
    meta: Arc<dyn MetaStore>,
    stores: Arc<StoreService>,
    clock: Arc<dyn Clock>,
}

impl SampleService {
    /// The service over the built-in library; fails only when that library is unreadable.
    pub fn new(
        meta: Arc<dyn MetaStore>,
        stores: Arc<StoreService>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SampleError> {
        Ok(Self {
            library: SampleLibrary::builtin().map_err(SampleError::Internal)?,
            meta,
            stores,
            clock,
        })
    }

    pub fn library(&self) -> &SampleLibrary {
        &self.library
    }

    pub async fn search_sample_queries(
        &self,
        input: SearchSampleQueriesRequest,
    ) -> Result<SearchSampleQueriesResponse, SampleError> {
        search::search(&self.library, &input)
    }

    pub async fn generate_query(
        &self,
        ctx: &RequestContext,
        input: GenerateQueryRequest,
    ) -> Result<GenerateQueryResponse, SampleError> {
        let prompt = &input.prompt;
        let length = prompt.chars().count();
        if !(MIN_PROMPT..=MAX_PROMPT).contains(&length) {
            return Err(SampleError::InvalidParameter(format!(
                "Prompt must be between {MIN_PROMPT} and {MAX_PROMPT} characters long, got {length}"
            )));
        }
        if !search::printable(prompt) {
            return Err(SampleError::InvalidParameter(
                "Prompt may hold only printable ASCII characters and newlines".into(),
            ));
        }
        let [store] = input.event_data_stores.as_slice() else {
            return Err(SampleError::InvalidParameter(format!(
                "EventDataStores must name exactly one event data store, got {}",
                input.event_data_stores.len()
            )));
        };
        let found = self
            .stores
            .get_event_data_store(
                ctx,
                GetEventDataStoreRequest {
                    event_data_store: store.clone(),
                },
            )
            .await?;
        let arn = found.event_data_store_arn.unwrap_or_default();
        if found.status == Some(EventDataStoreStatus::PendingDeletion) {
            return Err(SampleError::Store(
                opentrail_stores::StoreError::InactiveEventDataStore(format!(
                    "Event data store {arn} is pending deletion"
                )),
            ));
        }
        let store_id = arn.rsplit('/').next().unwrap_or_default().to_owned();
        let generated = generate(&self.library, prompt, &store_id).ok_or_else(|| {
            SampleError::GenerateResponse(format!(
                "no query could be generated for the prompt: {}",
                prompt.trim()
            ))
        })?;
        // The same parse StartQuery makes: never hand out a query it would refuse.
        let named = opentrail_lake::parse_query(&generated.sql).map_err(|e| {
            tracing::warn!(prompt = %prompt, sql = %generated.sql, error = %e, "generated query does not parse");
            SampleError::GenerateResponse(format!(
                "the query generated for the prompt is not valid: {e}"
            ))
        })?;
        if named != [store_id.clone()] {
            return Err(SampleError::GenerateResponse(format!(
                "the query generated for the prompt does not read event data store {store_id}"
            )));
        }
        let alias = format!("generated-query-{}", uuid::Uuid::new_v4());
        let record = GeneratedQuery {
            prompt: prompt.clone(),
            sql: generated.sql.clone(),
            event_data_store_arn: arn,
            created_at: self.clock.now(),
        };
        self.save_alias(&ctx.account, &ctx.region, &alias, &record)?;
        tracing::info!(alias, source = ?generated.source, "generated a query from a prompt");
        Ok(GenerateQueryResponse {
            query_statement: Some(generated.sql),
            query_alias: Some(alias),
            event_data_store_owner_account_id: Some(ctx.account.to_string()),
        })
    }

    /// The prompt and SQL GenerateQuery kept under `alias` in the account and region, for
    /// `StartQuery(QueryAlias=…)` (and `DescribeQuery`'s `Prompt`); `None` when no such
    /// alias exists or it is older than [`ALIAS_DAYS`].
    pub fn query_for_alias(
        &self,
        account: &AccountId,
        region: &Region,
        alias: &str,
    ) -> Result<Option<GeneratedQuery>, SampleError> {
        let key = alias_key(account, region, alias);
        let stored = tokio::task::block_in_place(|| self.meta.get_document(GENERATED, &key))?;
        let Some(value) = stored else {
            return Ok(None);
        };
        let record: GeneratedQuery = decode(&key, &value)?;
        Ok((!self.expired(&record)).then_some(record))
    }

    fn expired(&self, record: &GeneratedQuery) -> bool {
        self.clock.now() - record.created_at > chrono::Duration::days(ALIAS_DAYS)
    }

    /// Stores the alias and drops expired ones, in one transaction.
    fn save_alias(
        &self,
        account: &AccountId,
        region: &Region,
        alias: &str,
        record: &GeneratedQuery,
    ) -> Result<(), SampleError> {
        let value = serde_json::to_string(record)
            .map_err(|e| SampleError::Internal(format!("failed to encode generated query: {e}")))?;
        let key = alias_key(account, region, alias);
        tokio::task::block_in_place(|| {
            self.meta
                .transaction(|tx: &dyn Documents| -> Result<(), SampleError> {
                    for (old_key, old_value) in tx.list_documents(GENERATED)? {
                        let expired = serde_json::from_str::<GeneratedQuery>(&old_value)
                            .map_or(true, |old| self.expired(&old));
                        if expired {
                            tx.delete_document(GENERATED, &old_key)?;
                        }
                    }
                    tx.put_document(GENERATED, &key, &value)?;
                    Ok(())
                })
        })?;
        Ok(())
    }
}

fn alias_key(account: &AccountId, region: &Region, alias: &str) -> String {
    format!("{account}/{region}/{alias}")
}

fn decode(key: &str, value: &str) -> Result<GeneratedQuery, SampleError> {
    serde_json::from_str(value).map_err(|e| {
        SampleError::Internal(format!("stored generated query {key} is unreadable: {e}"))
    })
}
