//! aws-sdk-cloudtrail against the real binary for CloudTrail Lake queries: the typed SDK
//! reads our answers to StartQuery, DescribeQuery, GetQueryResults, ListQueries and
//! CancelQuery and their typed errors (unknown query, cancel of a finished query, the 11th
//! concurrent query, bad SQL, unknown store). Raw cases: `tests/scenarios/queries.json`.

mod common;

use aws_sdk_cloudtrail::types::QueryStatus;
use aws_sdk_cloudtrail::Client;
use common::{create_event_data_store, expect_error, store_id, TestServer};
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";
const UNKNOWN_QUERY: &str = "00000000-0000-4000-8000-000000000000";

async fn create_store(client: &Client, name: &str) -> String {
    store_id(&create_event_data_store(client, name).await)
}

async fn wait_until_done(client: &Client, query_id: &str) -> QueryStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let described = client
            .describe_query()
            .query_id(query_id)
            .send()
            .await
            .expect("DescribeQuery");
        let status = described.query_status().expect("a status").clone();
        if !matches!(status, QueryStatus::Queued | QueryStatus::Running) {
            return status;
        }
        assert!(Instant::now() < deadline, "query {query_id} never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_runs_and_is_described_listed_and_paged_through_the_sdk() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let store = create_store(&client, "sdk-queries").await;
    let sql = format!("SELECT eventName, count(*) AS calls FROM {store} GROUP BY eventName");
    let started = client
        .start_query()
        .query_statement(&sql)
        .send()
        .await
        .expect("StartQuery");
    let query_id = started.query_id().expect("a query id").to_owned();
    assert_eq!(
        wait_until_done(&client, &query_id).await,
        QueryStatus::Finished
    );

    let described = client
        .describe_query()
        .query_id(&query_id)
        .send()
        .await
        .expect("DescribeQuery");
    assert_eq!(described.query_string(), Some(sql.as_str()));
    let statistics = described.query_statistics().expect("statistics");
    assert!(statistics.creation_time().is_some());
    assert!(statistics.events_scanned().is_some() && statistics.bytes_scanned().is_some());

    let results = client
        .get_query_results()
        .query_id(&query_id)
        .max_query_results(10)
        .send()
        .await
        .expect("GetQueryResults");
    assert_eq!(results.query_status(), Some(&QueryStatus::Finished));
    let statistics = results.query_statistics().expect("statistics");
    assert_eq!(
        statistics.results_count(),
        Some(results.query_result_rows().len() as i32)
    );

    let listed = client
        .list_queries()
        .event_data_store(&store)
        .send()
        .await
        .expect("ListQueries");
    let ids: Vec<_> = listed
        .queries()
        .iter()
        .filter_map(|q| q.query_id())
        .collect();
    assert_eq!(ids, vec![query_id.as_str()]);

    expect_error(
        client.cancel_query().query_id(&query_id).send().await,
        "InactiveQueryException",
    );
    expect_error(
        client.describe_query().query_id(UNKNOWN_QUERY).send().await,
        "QueryIdNotFoundException",
    );
    expect_error(
        client.cancel_query().query_id(UNKNOWN_QUERY).send().await,
        "QueryIdNotFoundException",
    );
    expect_error(
        client
            .start_query()
            .query_statement(format!("SELECT nosuchcolumn FROM {store}"))
            .send()
            .await,
        "InvalidQueryStatementException",
    );
    expect_error(
        client
            .start_query()
            .query_statement("SELECT * FROM 0000aaaa-1111-2222-3333-444455556666")
            .send()
            .await,
        "EventDataStoreNotFoundException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_active_query_is_refused_and_cancel_frees_a_place() {
    // Every query waits QUEUED for ten minutes (the test hook), so ten stay active.
    let server = TestServer::builder()
        .arg("--query-hold")
        .arg("600s")
        .start();
    let client = server.client(REGION);
    let store = create_store(&client, "held").await;
    let sql = format!("SELECT eventName FROM {store}");
    let mut ids = Vec::new();
    for _ in 0..10 {
        let started = client
            .start_query()
            .query_statement(&sql)
            .send()
            .await
            .expect("StartQuery");
        ids.push(started.query_id().expect("a query id").to_owned());
    }
    expect_error(
        client.start_query().query_statement(&sql).send().await,
        "MaxConcurrentQueriesException",
    );
    let cancelled = client
        .cancel_query()
        .query_id(&ids[0])
        .send()
        .await
        .expect("CancelQuery");
    assert_eq!(cancelled.query_status(), &QueryStatus::Cancelled);
    client
        .start_query()
        .query_statement(&sql)
        .send()
        .await
        .expect("a place is free again");
}
