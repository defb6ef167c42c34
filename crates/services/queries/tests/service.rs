//! The query lifecycle over a scripted engine: statuses, the concurrency limit, cancel,
//! timeout, paging, ListQueries filters, retention and restart.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use opentrail_lake::{LakeError, QueryEngine, QueryOutput, QueryStatistics};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Clock, Region, RequestContext, TestClock};
use opentrail_operations::{
    CancelQueryRequest, CreateEventDataStoreRequest, DeleteEventDataStoreRequest,
    DescribeQueryRequest, GetQueryResultsRequest, ListQueriesRequest, QueryStatus,
    StartQueryRequest, Timestamp,
};
use opentrail_queries::{QueryError, QueryOptions, QueryService, INTERRUPTED_MESSAGE};
use opentrail_stores::StoreService;
use opentrail_wire::AwsError;
use std::sync::Arc;
use std::time::Duration;

/// Answers `SELECT ... FROM <store> -- rows=N` with N rows; `-- fail` fails, `-- slow`
/// never ends; a statement starting with `bad ` is invalid (store ids are random UUIDs,
/// which may hold `bad` anywhere).
struct ScriptedEngine;

#[async_trait]
impl QueryEngine for ScriptedEngine {
    async fn validate(&self, sql: &str, stores: &[String]) -> opentrail_lake::Result<()> {
        if sql.starts_with("bad ") {
            return Err(LakeError::InvalidQuery(format!("cannot parse: {sql}")));
        }
        for store in opentrail_lake::referenced_stores(sql) {
            if !stores.contains(&store) {
                return Err(LakeError::StoreNotFound(store));
            }
        }
        Ok(())
    }

    async fn run(&self, sql: &str, _stores: &[String]) -> opentrail_lake::Result<QueryOutput> {
        if sql.contains("-- slow") {
            std::future::pending::<()>().await;
        }
        if sql.contains("-- fail") {
            return Err(LakeError::ResourcesExhausted);
        }
        let rows: usize = sql
            .split("-- rows=")
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        Ok(QueryOutput {
            columns: vec!["eventName".into(), "_col1".into()],
            rows: (0..rows)
                .map(|i| vec![Some(format!("Event{i}")), None])
                .collect(),
            statistics: QueryStatistics {
                events_matched: rows as u64,
                events_scanned: 2 * rows as u64,
                bytes_scanned: 4096,
                execution_time_in_millis: 1,
            },
        })
    }
}

struct Harness {
    dir: tempfile::TempDir,
    meta: Arc<dyn MetaStore>,
    clock: TestClock,
    stores: Arc<StoreService>,
    queries: QueryService,
}

fn ctx() -> RequestContext {
    RequestContext {
        account: AccountId::parse("111122223333").unwrap(),
        region: Region::parse("us-east-1").unwrap(),
        principal: opentrail_model::Principal {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            kind: opentrail_model::PrincipalKind::Root,
        },
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, QueryError>) -> &'static str {
    result.expect_err("expected an error").code()
}

fn options(timeout: Duration) -> QueryOptions {
    QueryOptions {
        timeout,
        ..QueryOptions::default()
    }
}

fn harness(timeout: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.path().join("meta.db")).unwrap());
    let clock = TestClock::new(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap());
    let stores = Arc::new(StoreService::new(meta.clone(), Arc::new(clock.clone())));
    let queries = service(&dir, &meta, &clock, &stores, options(timeout));
    Harness {
        dir,
        meta,
        clock,
        stores,
        queries,
    }
}

fn service(
    dir: &tempfile::TempDir,
    meta: &Arc<dyn MetaStore>,
    clock: &TestClock,
    stores: &Arc<StoreService>,
    options: QueryOptions,
) -> QueryService {
    QueryService::new(
        meta.clone(),
        Arc::new(clock.clone()) as Arc<dyn Clock>,
        Arc::clone(stores),
        Arc::new(ScriptedEngine),
        dir.path().join("queries"),
        options,
    )
    .unwrap()
}

impl Harness {
    async fn store(&self, name: &str) -> String {
        let created = self
            .stores
            .create_event_data_store(
                &ctx(),
                CreateEventDataStoreRequest {
                    name: name.into(),
                    termination_protection_enabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let arn = created.event_data_store_arn.unwrap();
        arn.rsplit('/').next().unwrap().to_owned()
    }

    async fn start(&self, sql: &str) -> Result<String, QueryError> {
        let started = self
            .queries
            .start_query(
                &ctx(),
                StartQueryRequest {
                    query_statement: Some(sql.into()),
                    ..Default::default()
                },
            )
            .await?;
        Ok(started.query_id.unwrap())
    }

    async fn status(&self, id: &str) -> QueryStatus {
        self.queries
            .describe_query(
                &ctx(),
                DescribeQueryRequest {
                    query_id: Some(id.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .query_status
            .unwrap()
    }

    /// Waits (up to 90 s) until the query leaves QUEUED and RUNNING.
    async fn finished(&self, id: &str) -> QueryStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let status = self.status(id).await;
            if !matches!(status, QueryStatus::Queued | QueryStatus::Running) {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "query {id} never ended"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn results(
        &self,
        id: &str,
        max: Option<i32>,
        token: Option<String>,
    ) -> Result<opentrail_operations::GetQueryResultsResponse, QueryError> {
        self.queries
            .get_query_results(
                &ctx(),
                GetQueryResultsRequest {
                    query_id: id.into(),
                    max_query_results: max,
                    next_token: token,
                    ..Default::default()
                },
            )
            .await
    }

    async fn list(&self, request: ListQueriesRequest) -> Result<Vec<String>, QueryError> {
        let answer = self.queries.list_queries(&ctx(), request).await?;
        Ok(answer
            .queries
            .unwrap()
            .into_iter()
            .map(|q| q.query_id.unwrap())
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_finishes_with_statistics_and_paged_results() {
    let h = harness(Duration::from_secs(3600));
    let store = h.store("store-1").await;
    let id = h
        .start(&format!("SELECT eventName FROM {store} -- rows=5"))
        .await
        .unwrap();
    assert_eq!(id, id.to_lowercase());
    assert_eq!(h.finished(&id).await, QueryStatus::Finished);
    let described = h
        .queries
        .describe_query(
            &ctx(),
            DescribeQueryRequest {
                query_id: Some(id.clone()),
                event_data_store: Some(store.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let statistics = described.query_statistics.unwrap();
    assert_eq!(statistics.events_matched, Some(5));
    assert_eq!(statistics.events_scanned, Some(10));
    assert_eq!(statistics.bytes_scanned, Some(4096));
    assert_eq!(statistics.creation_time, Some(Timestamp(h.clock.now())));
    assert_eq!(
        described.query_string.as_deref(),
        Some(format!("SELECT eventName FROM {store} -- rows=5").as_str())
    );
    assert_eq!(described.error_message, None);

    let first = h.results(&id, Some(2), None).await.unwrap();
    let rows = first.query_result_rows.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0]["eventName"], "Event0");
    assert_eq!(rows[0][1]["_col1"], "");
    let statistics = first.query_statistics.unwrap();
    assert_eq!(statistics.results_count, Some(2));
    assert_eq!(statistics.total_results_count, Some(5));
    assert_eq!(statistics.bytes_scanned, Some(4096));
    let mut seen = vec![
        rows[0][0]["eventName"].clone(),
        rows[1][0]["eventName"].clone(),
    ];
    let mut token = first.next_token;
    while let Some(next) = token {
        let page = h.results(&id, Some(2), Some(next)).await.unwrap();
        for row in page.query_result_rows.unwrap() {
            seen.push(row[0]["eventName"].clone());
        }
        token = page.next_token;
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("Event{i}")).collect::<Vec<_>>()
    );

    assert_eq!(
        code(h.results(&id, Some(0), None).await),
        "InvalidMaxResultsException"
    );
    assert_eq!(
        code(h.results(&id, Some(1001), None).await),
        "InvalidMaxResultsException"
    );
    assert_eq!(
        code(h.results(&id, None, Some("garbage".into())).await),
        "InvalidNextTokenException"
    );
    // A token of another query's results is refused.
    let other = h
        .start(&format!("SELECT * FROM {store} -- rows=3"))
        .await
        .unwrap();
    h.finished(&other).await;
    let other_token = h.results(&other, Some(1), None).await.unwrap().next_token;
    assert_eq!(
        code(h.results(&id, Some(1), other_token).await),
        "InvalidNextTokenException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_query_validates_first() {
    let h = harness(Duration::from_secs(3600));
    let store = h.store("store-1").await;
    let gone = h.store("store-2").await;
    assert_eq!(
        code(h.start(&format!("bad SELECT FROM {store}")).await),
        "InvalidQueryStatementException"
    );
    assert_eq!(
        code(
            h.start("SELECT * FROM 0000aaaa-1111-2222-3333-444455556666")
                .await
        ),
        "EventDataStoreNotFoundException"
    );
    assert_eq!(
        code(h.start("SELECT 1").await),
        "InvalidQueryStatementException"
    );
    assert_eq!(code(h.start("").await), "InvalidParameterException");
    h.stores
        .delete_event_data_store(
            &ctx(),
            DeleteEventDataStoreRequest {
                event_data_store: gone.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        code(h.start(&format!("SELECT * FROM {gone}")).await),
        "InactiveEventDataStoreException"
    );
    let with_s3 = h
        .queries
        .start_query(
            &ctx(),
            StartQueryRequest {
                query_statement: Some(format!("SELECT * FROM {store}")),
                delivery_s3_uri: Some("s3://bucket/prefix".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(with_s3), "UnsupportedOperationException");
    assert_eq!(
        code(
            h.queries
                .describe_query(
                    &ctx(),
                    DescribeQueryRequest {
                        query_id: Some("00000000-0000-0000-0000-000000000000".into()),
                        ..Default::default()
                    }
                )
                .await
        ),
        "QueryIdNotFoundException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_active_queries_at_most_then_cancel_frees_a_place() {
    let h = harness(Duration::from_secs(3600));
    let store = h.store("store-1").await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(
            h.start(&format!("SELECT * FROM {store} -- slow"))
                .await
                .unwrap(),
        );
    }
    let eleventh = h.start(&format!("SELECT * FROM {store} -- rows=1")).await;
    assert_eq!(code(eleventh), "MaxConcurrentQueriesException");
    // Two run, the others wait for an execution slot.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut running = 0;
        for id in &ids {
            if h.status(id).await == QueryStatus::Running {
                running += 1;
            }
        }
        if running == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two queries never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.status(&ids[9]).await, QueryStatus::Queued);
    for id in &ids {
        let cancelled = h
            .queries
            .cancel_query(
                &ctx(),
                CancelQueryRequest {
                    query_id: id.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(cancelled.query_status, QueryStatus::Cancelled);
    }
    let again = h
        .queries
        .cancel_query(
            &ctx(),
            CancelQueryRequest {
                query_id: ids[0].clone(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(again), "InactiveQueryException");
    // The slots were given back: a new query runs to the end.
    let id = h
        .start(&format!("SELECT * FROM {store} -- rows=1"))
        .await
        .unwrap();
    assert_eq!(h.finished(&id).await, QueryStatus::Finished);
    let results = h.results(&ids[0], None, None).await.unwrap();
    assert_eq!(results.query_status, Some(QueryStatus::Cancelled));
    assert_eq!(results.query_result_rows, Some(vec![]));
    let unknown = h
        .queries
        .cancel_query(
            &ctx(),
            CancelQueryRequest {
                query_id: "00000000-0000-0000-0000-000000000000".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(unknown), "QueryIdNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_timeouts_are_reported() {
    let h = harness(Duration::from_millis(200));
    let store = h.store("store-1").await;
    let failed = h
        .start(&format!("SELECT * FROM {store} -- fail"))
        .await
        .unwrap();
    assert_eq!(h.finished(&failed).await, QueryStatus::Failed);
    let results = h.results(&failed, None, None).await.unwrap();
    assert_eq!(
        results.error_message.as_deref(),
        Some("Query exhausted resources at this scale factor")
    );
    let slow = h
        .start(&format!("SELECT * FROM {store} -- slow"))
        .await
        .unwrap();
    assert_eq!(h.finished(&slow).await, QueryStatus::TimedOut);
    let cancel = h
        .queries
        .cancel_query(
            &ctx(),
            CancelQueryRequest {
                query_id: slow,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(cancel), "InactiveQueryException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queries_filters_and_pages_per_store() {
    let h = harness(Duration::from_secs(3600));
    let one = h.store("store-1").await;
    let two = h.store("store-2").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            h.start(&format!("SELECT * FROM {one} -- rows=1"))
                .await
                .unwrap(),
        );
        h.clock.advance(chrono::Duration::seconds(10));
    }
    let other = h
        .start(&format!("SELECT * FROM {two} -- fail"))
        .await
        .unwrap();
    for id in ids.iter().chain([&other]) {
        h.finished(id).await;
    }
    let request = |store: &str| ListQueriesRequest {
        event_data_store: store.into(),
        ..Default::default()
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(h.list(request(&one)).await.unwrap(), newest_first);
    assert_eq!(h.list(request(&two)).await.unwrap(), vec![other.clone()]);
    // Pages of one.
    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let answer = h
            .queries
            .list_queries(
                &ctx(),
                ListQueriesRequest {
                    max_results: Some(1),
                    next_token: token,
                    ..request(&one)
                },
            )
            .await
            .unwrap();
        paged.extend(
            answer
                .queries
                .unwrap()
                .into_iter()
                .map(|q| q.query_id.unwrap()),
        );
        token = answer.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(paged, newest_first);
    // Filters.
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 5).unwrap();
    let windowed = h
        .list(ListQueriesRequest {
            start_time: Some(Timestamp(start)),
            ..request(&one)
        })
        .await
        .unwrap();
    assert_eq!(windowed, vec![ids[2].clone(), ids[1].clone()]);
    let failed = h
        .list(ListQueriesRequest {
            query_status: Some(QueryStatus::Failed),
            ..request(&two)
        })
        .await
        .unwrap();
    assert_eq!(failed, vec![other]);
    let backwards = h
        .list(ListQueriesRequest {
            start_time: Some(Timestamp(start)),
            end_time: Some(Timestamp(start - chrono::Duration::seconds(1))),
            ..request(&one)
        })
        .await;
    assert_eq!(code(backwards), "InvalidDateRangeException");
    let unknown_status = h
        .list(ListQueriesRequest {
            query_status: Some(QueryStatus::Unknown("DONE".into())),
            ..request(&one)
        })
        .await;
    assert_eq!(code(unknown_status), "InvalidQueryStatusException");
    assert_eq!(
        code(
            h.list(request("0000aaaa-1111-2222-3333-444455556666"))
                .await
        ),
        "EventDataStoreNotFoundException"
    );
    assert_eq!(
        code(h.list(request("not a store!")).await),
        "EventDataStoreARNInvalidException"
    );
    // A token of another store's list is refused.
    let token = h
        .queries
        .list_queries(
            &ctx(),
            ListQueriesRequest {
                max_results: Some(1),
                ..request(&one)
            },
        )
        .await
        .unwrap()
        .next_token;
    let crossed = h
        .list(ListQueriesRequest {
            next_token: token,
            ..request(&two)
        })
        .await;
    assert_eq!(code(crossed), "InvalidNextTokenException");
    // DescribeQuery with a store the query did not read: not found.
    let mismatched = h
        .queries
        .describe_query(
            &ctx(),
            DescribeQueryRequest {
                query_id: Some(ids[0].clone()),
                event_data_store: Some(two.clone()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(mismatched), "QueryIdNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_queries_and_results_fails_interrupted_ones_and_purges_old_ones() {
    let h = harness(Duration::from_secs(3600));
    let store = h.store("store-1").await;
    let done = h
        .start(&format!("SELECT * FROM {store} -- rows=3"))
        .await
        .unwrap();
    h.finished(&done).await;
    let interrupted = h
        .start(&format!("SELECT * FROM {store} -- slow"))
        .await
        .unwrap();
    // A second service on the same metadata and results is what a restarted server sees.
    let restarted = service(
        &h.dir,
        &h.meta,
        &h.clock,
        &h.stores,
        options(Duration::from_secs(3600)),
    );
    let h2 = Harness {
        dir: tempfile::tempdir().unwrap(),
        meta: h.meta.clone(),
        clock: h.clock.clone(),
        stores: Arc::clone(&h.stores),
        queries: restarted,
    };
    assert_eq!(h2.status(&done).await, QueryStatus::Finished);
    let rows = h2
        .results(&done, None, None)
        .await
        .unwrap()
        .query_result_rows
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(h2.status(&interrupted).await, QueryStatus::Failed);
    let described = h2
        .queries
        .describe_query(
            &ctx(),
            DescribeQueryRequest {
                query_id: Some(interrupted.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        described.error_message.as_deref(),
        Some(INTERRUPTED_MESSAGE)
    );
    // Seven days later the query and its results are gone.
    h.clock.advance(chrono::Duration::days(7));
    let purged = h2
        .queries
        .describe_query(
            &ctx(),
            DescribeQueryRequest {
                query_id: Some(done.clone()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(purged), "QueryIdNotFoundException");
    let _ = h2
        .start(&format!("SELECT * FROM {store} -- rows=1"))
        .await
        .unwrap();
    assert!(!h
        .dir
        .path()
        .join("queries")
        .join(format!("{done}.jsonl"))
        .exists());
}
