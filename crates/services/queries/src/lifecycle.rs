//! StartQuery, DescribeQuery, GetQueryResults, ListQueries and CancelQuery.

use crate::record::{key, saturating_i32, saturating_i64, QueryRecord, WidgetRun};
use crate::stores::{inactive, not_found, store_arn};
use crate::token::{self, ListToken, ResultsToken};
use crate::{save_in, QueryError, QueryService, MAX_ACTIVE_QUERIES_PER_REGION};
use opentrail_lake::LakeError;
use opentrail_meta::Documents;
use opentrail_model::RequestContext;
use opentrail_operations::{
    CancelQueryRequest, CancelQueryResponse, DeliveryStatus, DescribeQueryRequest,
    DescribeQueryResponse, GetQueryResultsRequest, GetQueryResultsResponse, ListQueriesRequest,
    ListQueriesResponse, QueryStatistics, QueryStatus, StartQueryRequest, StartQueryResponse,
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

/// The longest QueryAlias (the model's limit).
const MAX_ALIAS_CHARS: usize = 256;
/// The most QueryParameters, and the longest one (the model's limits).
const MAX_PARAMETERS: usize = 10;
const MAX_PARAMETER_CHARS: usize = 1024;

/// A QueryAlias as the model allows it: `^[a-zA-Z][a-zA-Z0-9._\-]*$`, 1 to 256 characters.
fn check_alias(alias: &str) -> Result<(), QueryError> {
    let mut chars = alias.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && alias.len() <= MAX_ALIAS_CHARS;
    if valid {
        Ok(())
    } else {
        Err(QueryError::InvalidParameter(format!(
            "QueryAlias {alias:?} is not valid: it must be 1 to {MAX_ALIAS_CHARS} characters, a letter then letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Puts `parameters` in the `?` placeholders of a query template, in order, as AWS does
/// for dashboard widgets (a placeholder inside quotes stays inside them). The count must
/// match; a template without placeholders takes no parameters.
pub(crate) fn fill_parameters(
    template: &str,
    parameters: Option<&[String]>,
) -> Result<String, QueryError> {
    let parameters = parameters.unwrap_or_default();
    if parameters.len() > MAX_PARAMETERS {
        return Err(QueryError::InvalidParameter(format!(
            "QueryParameters may hold at most {MAX_PARAMETERS} values, got {}",
            parameters.len()
        )));
    }
    if let Some(bad) = parameters
        .iter()
        .find(|p| !(1..=MAX_PARAMETER_CHARS).contains(&p.chars().count()))
    {
        return Err(QueryError::InvalidParameter(format!(
            "Each of QueryParameters must be 1 to {MAX_PARAMETER_CHARS} characters long, got {} characters",
            bad.chars().count()
        )));
    }
    let placeholders = template.matches('?').count();
    if placeholders != parameters.len() {
        return Err(QueryError::InvalidParameter(format!(
            "The query of this QueryAlias has {placeholders} ? placeholders but {} QueryParameters were given",
            parameters.len()
        )));
    }
    let mut pieces = template.split('?');
    let mut filled = pieces.next().unwrap_or_default().to_owned();
    for (value, piece) in parameters.iter().zip(pieces) {
        filled.push_str(value);
        filled.push_str(piece);
    }
    Ok(filled)
}

impl QueryService {
    /// The parsed `DeliveryS3Uri`, whose bucket must exist and accept our writes.
    async fn destination(
        &self,
        ctx: &RequestContext,
        uri: &str,
    ) -> Result<crate::Destination, QueryError> {
        let Some(delivery) = self.inner.delivery.get() else {
            return Err(QueryError::UnsupportedOperation(
                "This OpenTrail server has no object store to deliver query results to; read them with GetQueryResults".into(),
            ));
        };
        let destination = crate::Destination::parse(uri)?;
        let bucket = &destination.bucket;
        match delivery.buckets.bucket_exists(bucket).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(QueryError::S3BucketDoesNotExist(format!(
                    "S3 bucket {bucket} does not exist"
                )))
            }
            Err(opentrail_objstore::StoreError::AccessDenied(why)) => {
                return Err(QueryError::InsufficientS3BucketPolicy(format!(
                    "Access to S3 bucket {bucket} was denied: {why}"
                )))
            }
            Err(e) => {
                return Err(QueryError::Internal(format!(
                    "failed to check that S3 bucket {bucket} exists: {e}"
                )))
            }
        }
        // An embedded bucket another account owns takes no results of this account (on
        // AWS its bucket policy would not let CloudTrail write them), as for trails.
        let owner = crate::blocking(|| {
            self.inner
                .meta
                .get_document(opentrail_trails::BUCKET_OWNERS, bucket)
        })?;
        if owner.is_some_and(|owner| owner != ctx.account.as_str()) {
            return Err(QueryError::InsufficientS3BucketPolicy(format!(
                "Incorrect S3 bucket policy is detected for bucket: {bucket}"
            )));
        }
        Ok(destination)
    }

    /// The query GenerateQuery keeps under `alias` for the caller.
    fn template(
        &self,
        ctx: &RequestContext,
        alias: &str,
    ) -> Result<opentrail_samples::GeneratedQuery, QueryError> {
        check_alias(alias)?;
        let Some(samples) = self.inner.templates.get() else {
            return Err(QueryError::UnsupportedOperation(
                "This OpenTrail server keeps no generated queries: give QueryStatement".into(),
            ));
        };
        samples
            .query_for_alias(&ctx.account, &ctx.region, alias)
            .map_err(|e| QueryError::Internal(format!("failed to read QueryAlias {alias}: {e}")))?
            .ok_or_else(|| {
                QueryError::InvalidParameter(format!(
                    "QueryAlias {alias} does not exist or has expired: GenerateQuery returns one, usable for {} days",
                    opentrail_samples::ALIAS_DAYS
                ))
            })
    }

    pub async fn start_query(
        &self,
        ctx: &RequestContext,
        input: StartQueryRequest,
    ) -> Result<StartQueryResponse, QueryError> {
        check_owner(ctx, input.event_data_store_owner_account_id.as_deref())?;
        let destination = match input.delivery_s3_uri.as_deref() {
            Some(uri) => Some(self.destination(ctx, uri).await?),
            None => None,
        };
        let (statement, prompt) = match (input.query_statement, input.query_alias) {
            (Some(statement), None) => {
                if input.query_parameters.is_some() {
                    return Err(QueryError::InvalidParameter(
                        "QueryParameters go with QueryAlias only".into(),
                    ));
                }
                (statement, None)
            }
            (None, Some(alias)) => {
                let template = self.template(ctx, &alias)?;
                let statement = fill_parameters(&template.sql, input.query_parameters.as_deref())?;
                (statement, Some(template.prompt))
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
        let options = StartOptions {
            delivery_s3_uri: destination.as_ref().and(input.delivery_s3_uri),
            destination,
            prompt,
            widget: None,
        };
        let query_id = self.start_statement(ctx, statement, options).await?;
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
        let options = StartOptions {
            widget: Some(widget),
            ..StartOptions::default()
        };
        self.start_statement(ctx, statement, options).await
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
        options: StartOptions,
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
            delivery_status: options
                .destination
                .as_ref()
                .map(|_| DeliveryStatus::Pending),
            delivery_s3_uri: options.delivery_s3_uri,
            destination: options.destination,
            prompt: options.prompt,
            widget: options.widget,
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
            if cancelled.delivery_status.is_some() {
                cancelled.delivery_status = Some(DeliveryStatus::Cancelled);
            }
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

/// What a query started by StartQuery or a dashboard refresh carries besides its SQL.
#[derive(Default)]
struct StartOptions {
    /// Where its results are delivered (`DeliveryS3Uri`), and that URI as given.
    destination: Option<crate::Destination>,
    delivery_s3_uri: Option<String>,
    /// The GenerateQuery prompt of a query started by its `QueryAlias`.
    prompt: Option<String>,
    /// The dashboard widget and refresh that started it.
    widget: Option<WidgetRun>,
}
