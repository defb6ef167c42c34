//! StartQuery, DescribeQuery, GetQueryResults, ListQueries and CancelQuery.

use crate::record::{key, saturating_i32, saturating_i64, QueryRecord, WidgetRun};
use crate::stores::{inactive, not_found, store_arn};
use crate::token::{self, ListToken, ResultsToken};
use crate::{save_in, QueryError, QueryService, MAX_ACTIVE_QUERIES_PER_REGION};
use opentrail_lake::LakeError;
use opentrail_meta::Documents;
use opentrail_model::RequestContext;
use opentrail_operations::{
    CancelQueryRequest, CancelQueryResponse, DescribeQueryRequest, DescribeQueryResponse,
    GetQueryResultsRequest, GetQueryResultsResponse, ListQueriesRequest, ListQueriesResponse,
    QueryStatistics, QueryStatus, StartQueryRequest, StartQueryResponse,
};

/// The longest QueryStatement (the model's limit).
const MAX_STATEMENT_CHARS: usize = 10_000;
/// Rows per GetQueryResults page, and its most (the model's limit).
const MAX_QUERY_RESULTS: i32 = 1000;
/// Queries per ListQueries page, and its most (the model's limit).
const MAX_LIST_RESULTS: i32 = 1000;

fn query_not_found(id: &str) -> QueryError {
    QueryError::QueryIdNotFound(format!("The query ID {id} does not exist or is not valid"))
}

/// `EventDataStoreOwnerAccountId` names the account whose stores are queried; only the
/// caller's own exist here (no federation or delegated administrators).
fn check_owner(ctx: &RequestContext, owner: Option<&str>) -> Result<(), QueryError> {
    match owner {
        Some(owner) if owner != ctx.account.as_str() => Err(QueryError::InvalidParameter(format!(
            "EventDataStoreOwnerAccountId {owner} is not the caller's account {}; only an account's own event data stores can be queried",
            ctx.account
        ))),
        _ => Ok(()),
    }
}

impl QueryService {
    pub async fn start_query(
        &self,
        ctx: &RequestContext,
        input: StartQueryRequest,
    ) -> Result<StartQueryResponse, QueryError> {
        check_owner(ctx, input.event_data_store_owner_account_id.as_deref())?;
        if input.delivery_s3_uri.is_some() {
            return Err(QueryError::UnsupportedOperation(
                "Delivering query results to S3 (DeliveryS3Uri) is not available on this OpenTrail server yet; read them with GetQueryResults".into(),
            ));
        }
        let statement = match (input.query_statement, input.query_alias) {
            (Some(statement), None) => statement,
            (None, Some(_)) => {
                return Err(QueryError::UnsupportedOperation(
                    "StartQuery with QueryAlias is not available on this OpenTrail server: give QueryStatement (dashboard widgets run through StartDashboardRefresh)".into(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(QueryError::InvalidParameter(
                    "Give either QueryStatement or QueryAlias, not both".into(),
                ))
            }
            (None, None) => {
                return Err(QueryError::InvalidParameter(
                    "QueryStatement is required".into(),
                ))
            }
        };
        if input.query_parameters.is_some() {
            return Err(QueryError::InvalidParameter(
                "QueryParameters go with QueryAlias only".into(),
            ));
        }
        let query_id = self.start_statement(ctx, statement, None).await?;
        Ok(StartQueryResponse {
            query_id: Some(query_id),
            event_data_store_owner_account_id: input.event_data_store_owner_account_id,
        })
    }

    /// Starts a dashboard widget's query (its parameters already substituted) for refresh
    /// `widget.refresh_id`: the same checks and limits as StartQuery; DescribeQuery then
    /// finds it by `QueryAlias` and `RefreshId`. Returns the query id.
    pub async fn start_widget_query(
        &self,
        ctx: &RequestContext,
        statement: String,
        widget: WidgetRun,
    ) -> Result<String, QueryError> {
        self.start_statement(ctx, statement, Some(widget)).await
    }

    /// Checks that `statement` would run for the caller (its SQL plans over the caller's
    /// active event data stores, which it names): StartQuery's errors, without starting it.
    pub async fn check_statement(
        &self,
        ctx: &RequestContext,
        statement: &str,
    ) -> Result<(), QueryError> {
        self.plan(ctx, statement).await.map(|_| ())
    }

    /// The ids of the stores `statement` reads and the caller's active stores.
    async fn plan(
        &self,
        ctx: &RequestContext,
        statement: &str,
    ) -> Result<(Vec<String>, Vec<String>), QueryError> {
        let length = statement.chars().count();
        if !(1..=MAX_STATEMENT_CHARS).contains(&length) {
            return Err(QueryError::InvalidParameter(format!(
                "QueryStatement must be 1 to {MAX_STATEMENT_CHARS} characters long, got {length}"
            )));
        }
        let caller = self.caller_stores(ctx)?;
        self.inner
            .engine
            .validate(statement, &caller.active)
            .await
            .map_err(|e| match e {
                LakeError::InvalidQuery(message) => QueryError::InvalidQueryStatement(message),
                LakeError::StoreNotFound(id) if caller.pending_deletion.contains(&id) => {
                    inactive(&store_arn(ctx, &id))
                }
                LakeError::StoreNotFound(id) => not_found(ctx, &store_arn(ctx, &id)),
                other => QueryError::Internal(format!("failed to plan the query: {other}")),
            })?;
        let stores = opentrail_lake::referenced_stores(statement);
        if stores.is_empty() {
            return Err(QueryError::InvalidQueryStatement(
                "The query must read an event data store: name its id after FROM".into(),
            ));
        }
        Ok((stores, caller.active))
    }

    async fn start_statement(
        &self,
        ctx: &RequestContext,
        statement: String,
        widget: Option<WidgetRun>,
    ) -> Result<String, QueryError> {
        let (stores, active) = self.plan(ctx, &statement).await?;
        let now = self.inner.now();
        let query = QueryRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            statement,
            stores,
            status: QueryStatus::Queued,
            created_at: now,
            started_at: None,
            ended_at: None,
            events_matched: 0,
            events_scanned: 0,
            bytes_scanned: 0,
            results_count: 0,
            error_message: None,
            widget,
        };
        let purged = self.inner.write(|tx: &dyn Documents| {
            let purged = self.inner.purge_in(tx, now)?;
            let active = tx
                .list_documents(crate::record::QUERIES)?
                .iter()
                .map(|(key, value)| crate::decode(key, value))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|q| q.account == ctx.account && q.region == ctx.region && q.is_active())
                .count();
            if active >= MAX_ACTIVE_QUERIES_PER_REGION {
                return Err(QueryError::MaxConcurrentQueries(format!(
                    "Account {} already has {MAX_ACTIVE_QUERIES_PER_REGION} queries queued or running in {}; wait for one to end or cancel one",
                    ctx.account, ctx.region
                )));
            }
            save_in(tx, &query)?;
            Ok(purged)
        })?;
        self.inner.remove_results(&purged);
        self.inner.spawn(&query, active);
        Ok(query.id)
    }

    /// The caller's query `id`; with an `EventDataStore` parameter, it must have run over
    /// that store.
    fn find(
        &self,
        ctx: &RequestContext,
        id: &str,
        store: Option<&str>,
    ) -> Result<QueryRecord, QueryError> {
        let store = store
            .map(|value| self.resolve_store(ctx, value))
            .transpose()?;
        let now = self.inner.now();
        let query = self
            .inner
            .get(&key(&ctx.account, &ctx.region, id))?
            .filter(|q| !self.inner.expired(q, now))
            .ok_or_else(|| query_not_found(id))?;
        if store.is_some_and(|store| !query.stores.contains(&store)) {
            return Err(query_not_found(id));
        }
        Ok(query)
    }

    /// The caller's query a dashboard refresh started for the widget `alias`.
    fn find_widget_query(
        &self,
        ctx: &RequestContext,
        alias: &str,
        refresh_id: &str,
    ) -> Result<QueryRecord, QueryError> {
        let now = self.inner.now();
        self.inner
            .all()?
            .into_iter()
            .find(|q| {
                q.account == ctx.account
                    && q.region == ctx.region
                    && !self.inner.expired(q, now)
                    && q.widget
                        .as_ref()
                        .is_some_and(|w| w.query_alias == alias && w.refresh_id == refresh_id)
            })
            .ok_or_else(|| {
                QueryError::QueryIdNotFound(format!(
                    "No query of dashboard refresh {refresh_id} has the alias {alias}"
                ))
            })
    }

    pub async fn describe_query(
        &self,
        ctx: &RequestContext,
        input: DescribeQueryRequest,
    ) -> Result<DescribeQueryResponse, QueryError> {
        check_owner(ctx, input.event_data_store_owner_account_id.as_deref())?;
        let query = match (input.query_id, input.query_alias, input.refresh_id) {
            (Some(id), None, None) => self.find(ctx, &id, input.event_data_store.as_deref())?,
            (None, Some(alias), Some(refresh)) => self.find_widget_query(ctx, &alias, &refresh)?,
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(QueryError::InvalidParameter(
                    "QueryAlias and RefreshId go together: give both to describe a dashboard widget's query".into(),
                ))
            }
            (None, None, None) => {
                return Err(QueryError::InvalidParameter(
                    "QueryId is required".into(),
                ))
            }
            (Some(_), _, _) => {
                return Err(QueryError::InvalidParameter(
                    "Give either QueryId or QueryAlias with RefreshId, not both".into(),
                ))
            }
        };
        Ok(query.to_describe_response(self.inner.now()))
    }

    pub async fn get_query_results(
        &self,
        ctx: &RequestContext,
        input: GetQueryResultsRequest,
    ) -> Result<GetQueryResultsResponse, QueryError> {
        check_owner(ctx, input.event_data_store_owner_account_id.as_deref())?;
        let max = input.max_query_results.unwrap_or(MAX_QUERY_RESULTS);
        if !(1..=MAX_QUERY_RESULTS).contains(&max) {
            return Err(QueryError::InvalidMaxResults(format!(
                "MaxQueryResults must be 1 to {MAX_QUERY_RESULTS}, got {max}"
            )));
        }
        let query = self.find(ctx, &input.query_id, input.event_data_store.as_deref())?;
        let from = match input.next_token.as_deref() {
            None => crate::Position::default(),
            Some(given) => {
                let decoded: ResultsToken = token::decode(given)?;
                if decoded.q != query.id || query.status != QueryStatus::Finished {
                    return Err(token::invalid());
                }
                crate::Position {
                    row: decoded.r,
                    byte: decoded.b,
                }
            }
        };
        let (rows, next) = if query.status == QueryStatus::Finished {
            let (results, id) = (&self.inner.results, query.id.clone());
            crate::blocking(|| results.read_page(&id, from, max as usize))?
        } else {
            (Vec::new(), None)
        };
        Ok(GetQueryResultsResponse {
            query_status: Some(query.status.clone()),
            query_statistics: Some(QueryStatistics {
                results_count: Some(saturating_i32(rows.len() as u64)),
                total_results_count: Some(saturating_i32(query.results_count)),
                bytes_scanned: Some(saturating_i64(query.bytes_scanned)),
            }),
            query_result_rows: Some(rows),
            next_token: next.map(|at| {
                token::encode(&ResultsToken {
                    q: query.id.clone(),
                    r: at.row,
                    b: at.byte,
                })
            }),
            error_message: query.error_message,
        })
    }

    pub async fn list_queries(
        &self,
        ctx: &RequestContext,
        input: ListQueriesRequest,
    ) -> Result<ListQueriesResponse, QueryError> {
        let max = input.max_results.unwrap_or(MAX_LIST_RESULTS);
        if !(1..=MAX_LIST_RESULTS).contains(&max) {
            return Err(QueryError::InvalidMaxResults(format!(
                "MaxResults must be 1 to {MAX_LIST_RESULTS}, got {max}"
            )));
        }
        if let Some(QueryStatus::Unknown(status)) = &input.query_status {
            return Err(QueryError::InvalidQueryStatus(format!(
                "QueryStatus {status} is not one of {}",
                QueryStatus::VALUES.join(", ")
            )));
        }
        let (start, end) = (input.start_time.map(|t| t.0), input.end_time.map(|t| t.0));
        if let (Some(start), Some(end)) = (start, end) {
            if start > end {
                return Err(QueryError::InvalidDateRange(
                    "StartTime must not be after EndTime".into(),
                ));
            }
        }
        let store = self.resolve_store(ctx, &input.event_data_store)?;
        let after = input
            .next_token
            .as_deref()
            .map(|given| {
                let decoded: ListToken = token::decode(given)?;
                if decoded.s != store {
                    return Err(token::invalid());
                }
                Ok((decoded.t, decoded.i))
            })
            .transpose()?;
        let now = self.inner.now();
        let mut queries: Vec<QueryRecord> = self
            .inner
            .all()?
            .into_iter()
            .filter(|q| {
                q.account == ctx.account
                    && q.region == ctx.region
                    && q.stores.contains(&store)
                    && !self.inner.expired(q, now)
                    && start.is_none_or(|start| q.created_at >= start)
                    && end.is_none_or(|end| q.created_at <= end)
                    && input.query_status.as_ref().is_none_or(|s| &q.status == s)
            })
            .collect();
        // Newest first; ties by id, so pages never skip or repeat one.
        let order = |q: &QueryRecord| {
            (
                std::cmp::Reverse(q.created_at.timestamp_millis()),
                q.id.clone(),
            )
        };
        queries.sort_by_key(order);
        if let Some((t, i)) = after {
            let position = (std::cmp::Reverse(t), i);
            queries.retain(|q| order(q) > position);
        }
        let more = queries.len() > max as usize;
        queries.truncate(max as usize);
        let next_token = more.then(|| queries.last()).flatten().map(|last| {
            token::encode(&ListToken {
                s: store.clone(),
                t: last.created_at.timestamp_millis(),
                i: last.id.clone(),
            })
        });
        Ok(ListQueriesResponse {
            queries: Some(queries.iter().map(QueryRecord::to_list_item).collect()),
            next_token,
        })
    }

    pub async fn cancel_query(
        &self,
        ctx: &RequestContext,
        input: CancelQueryRequest,
    ) -> Result<CancelQueryResponse, QueryError> {
        check_owner(ctx, input.event_data_store_owner_account_id.as_deref())?;
        let query = self.find(ctx, &input.query_id, input.event_data_store.as_deref())?;
        let now = self.inner.now();
        let storage_key = query.storage_key();
        let cancelled = self.inner.write(|tx: &dyn Documents| {
            let current = tx
                .get_document(crate::record::QUERIES, &storage_key)?
                .map(|value| crate::decode(&storage_key, &value))
                .transpose()?
                .ok_or_else(|| query_not_found(&query.id))?;
            if !current.is_active() {
                return Err(QueryError::InactiveQuery(format!(
                    "Query {} is {} and can no longer be cancelled",
                    current.id,
                    current.status.as_str()
                )));
            }
            let mut cancelled = current;
            cancelled.status = QueryStatus::Cancelled;
            cancelled.ended_at = Some(now);
            save_in(tx, &cancelled)?;
            Ok(cancelled)
        })?;
        self.inner.abort(&cancelled.id);
        Ok(CancelQueryResponse {
            query_id: cancelled.id,
            query_status: cancelled.status,
            event_data_store_owner_account_id: input.event_data_store_owner_account_id,
        })
    }
}
