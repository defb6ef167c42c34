//! aws-sdk-cloudtrail against the real binary for the Lake operations around event data
//! stores and queries: StartImport / GetImport / ListImports / ListImportFailures /
//! StopImport from a trail bucket of the embedded store, SearchSampleQueries,
//! Put/Get/DeleteResourcePolicy, Put/GetEventConfiguration and GenerateQuery. The typed SDK
//! deserialises every answer and reads each modelled error; the boto3 and AWS CLI cases of
//! the same operations are in tests/py (test_imports.py, test_samples.py).

mod common;

use std::io::Write;

use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::{
    ContextKeySelector, ImportSource, ImportStatus, MaxEventSize, S3ImportSource, Type,
};
use common::{create_event_data_store, expect_error, store_id, TestServer, ACCOUNT_ID};

const REGION: &str = "us-east-1";
const MISSING_STORE: &str =
    "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/00000000-0000-4000-8000-000000000000";

fn import_source(bucket: &str) -> ImportSource {
    ImportSource::builder()
        .s3(S3ImportSource::builder()
            .s3_location_uri(format!("s3://{bucket}"))
            .s3_bucket_region(REGION)
            .s3_bucket_access_role_arn(format!("arn:aws:iam::{ACCOUNT_ID}:role/import"))
            .build()
            .expect("S3ImportSource"))
        .build()
}

/// One gzipped trail log file of `events` management events on 2023-07-10, where a trail
/// delivers it in the bucket `bucket` of the embedded store.
fn write_trail_log(server: &TestServer, bucket: &str, events: usize) {
    let records: Vec<String> = (0..events)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::{ACCOUNT_ID}:user/alice","accountId":"{ACCOUNT_ID}"}},"eventTime":"2023-07-10T12:00:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"CreateBucket","awsRegion":"{REGION}","sourceIPAddress":"192.0.2.1","requestParameters":{{"bucketName":"b{i}"}},"responseElements":null,"requestID":"r{i}","eventID":"00000000-0000-4000-8000-{i:012}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{ACCOUNT_ID}","eventCategory":"Management"}}"#,
                i % 60
            )
        })
        .collect();
    let text = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let dir = server.data_dir().join("buckets").join(bucket).join(format!(
        "AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/2023/07/10"
    ));
    std::fs::create_dir_all(&dir).expect("trail folder");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("gzip");
    std::fs::write(
        dir.join(format!(
            "{ACCOUNT_ID}_CloudTrail_{REGION}_20230710T1205Z_sdkImport0000001.json.gz"
        )),
        gz.finish().expect("gzip"),
    )
    .expect("log file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_through_the_sdk() {
    let server = TestServer::start();
    let client = server.client(REGION);
    server.create_bucket("sdk-trail-bucket");
    write_trail_log(&server, "sdk-trail-bucket", 25);
    let store = create_event_data_store(&client, "sdk-imports").await;

    let started = client
        .start_import()
        .destinations(&store)
        .import_source(import_source("sdk-trail-bucket"))
        .start_event_time(DateTime::from_secs(1_688_947_200)) // 2023-07-10T00:00:00Z
        .end_event_time(DateTime::from_secs(1_689_033_599))
        .send()
        .await
        .expect("StartImport");
    let id = started.import_id().expect("an import id").to_owned();
    assert_eq!(started.destinations(), std::slice::from_ref(&store));
    assert_eq!(
        started
            .import_source()
            .and_then(|s| s.s3())
            .map(|s| s.s3_location_uri()),
        Some("s3://sdk-trail-bucket")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let done = loop {
        let got = client
            .get_import()
            .import_id(&id)
            .send()
            .await
            .expect("GetImport");
        match got.import_status() {
            Some(ImportStatus::Completed) => break got,
            Some(ImportStatus::Failed) => panic!("import failed: {got:?}"),
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "never COMPLETED");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let stats = done.import_statistics().expect("ImportStatistics");
    assert_eq!(stats.files_completed(), Some(1));
    assert_eq!(stats.events_completed(), Some(25));
    assert_eq!(stats.prefixes_found(), Some(1));
    assert_eq!(stats.failed_entries(), Some(0));
    let listed = client
        .list_imports()
        .destination(&store)
        .send()
        .await
        .expect("ListImports");
    assert_eq!(listed.imports().len(), 1);
    assert_eq!(listed.imports()[0].import_id(), Some(id.as_str()));
    assert_eq!(
        listed.imports()[0].import_status(),
        Some(&ImportStatus::Completed)
    );
    let failures = client
        .list_import_failures()
        .import_id(&id)
        .send()
        .await
        .expect("ListImportFailures");
    assert!(failures.failures().is_empty());
    // StopImport of a finished import answers its final state.
    let stopped = client
        .stop_import()
        .import_id(&id)
        .send()
        .await
        .expect("StopImport");
    assert_eq!(stopped.import_id(), Some(id.as_str()));

    let unknown = "11111111-2222-3333-4444-555555555555";
    expect_error(
        client.get_import().import_id(unknown).send().await,
        "ImportNotFoundException",
    );
    expect_error(
        client.stop_import().import_id(unknown).send().await,
        "ImportNotFoundException",
    );
    expect_error(
        client
            .start_import()
            .destinations(&store)
            .import_source(import_source("no-such-bucket"))
            .send()
            .await,
        "InvalidImportSourceException",
    );
    expect_error(
        client
            .start_import()
            .destinations(MISSING_STORE)
            .import_source(import_source("sdk-trail-bucket"))
            .send()
            .await,
        "EventDataStoreNotFoundException",
    );
    expect_error(
        client
            .list_imports()
            .next_token("bm90LWEta2V5")
            .send()
            .await,
        "InvalidNextTokenException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_policies_event_configuration_and_generated_queries_through_the_sdk() {
    let server = TestServer::start();
    let client = server.client(REGION);
    let store = create_event_data_store(&client, "sdk-edges").await;
    let id = store_id(&store);

    // SearchSampleQueries: ranked, relevance in (0, 1].
    let found = client
        .search_sample_queries()
        .search_phrase("failed console logins")
        .max_results(5)
        .send()
        .await
        .expect("SearchSampleQueries");
    let results = found.search_results();
    assert!(!results.is_empty() && results.len() <= 5);
    assert_eq!(results[0].name(), Some("Failed console logins"));
    let relevance: Vec<f32> = results.iter().map(|r| r.relevance()).collect();
    assert!(relevance.iter().all(|r| *r > 0.0 && *r <= 1.0));
    assert!(relevance.windows(2).all(|w| w[0] >= w[1]), "{relevance:?}");
    expect_error(
        client
            .search_sample_queries()
            .search_phrase("logins")
            .max_results(51)
            .send()
            .await,
        "InvalidParameterException",
    );

    // Resource-based policies on the store.
    expect_error(
        client
            .get_resource_policy()
            .resource_arn(&store)
            .send()
            .await,
        "ResourcePolicyNotFoundException",
    );
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"q","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_ID}:root"}},"Action":["cloudtrail:StartQuery","cloudtrail:GetQueryResults"],"Resource":"{store}"}}]}}"#
    );
    let put = client
        .put_resource_policy()
        .resource_arn(&store)
        .resource_policy(&policy)
        .send()
        .await
        .expect("PutResourcePolicy");
    assert_eq!(put.resource_arn(), Some(store.as_str()));
    assert_eq!(put.resource_policy(), Some(policy.as_str()));
    let got = client
        .get_resource_policy()
        .resource_arn(&store)
        .send()
        .await
        .expect("GetResourcePolicy");
    assert_eq!(got.resource_policy(), Some(policy.as_str()));
    expect_error(
        client
            .put_resource_policy()
            .resource_arn(&store)
            .resource_policy("not json")
            .send()
            .await,
        "ResourcePolicyNotValidException",
    );
    client
        .delete_resource_policy()
        .resource_arn(&store)
        .send()
        .await
        .expect("DeleteResourcePolicy");
    expect_error(
        client
            .delete_resource_policy()
            .resource_arn(&store)
            .send()
            .await,
        "ResourcePolicyNotFoundException",
    );
    expect_error(
        client
            .get_resource_policy()
            .resource_arn("not-an-arn")
            .send()
            .await,
        "ResourceARNNotValidException",
    );

    // Event configuration.
    let got = client
        .get_event_configuration()
        .event_data_store(&store)
        .send()
        .await
        .expect("GetEventConfiguration");
    assert_eq!(got.max_event_size(), Some(&MaxEventSize::Standard));
    assert!(got.context_key_selectors().is_empty());
    let selector = ContextKeySelector::builder()
        .r#type(Type::TagContext)
        .equals("team")
        .build()
        .expect("ContextKeySelector");
    let put = client
        .put_event_configuration()
        .event_data_store(&store)
        .max_event_size(MaxEventSize::Large)
        .context_key_selectors(selector.clone())
        .send()
        .await
        .expect("PutEventConfiguration");
    assert_eq!(put.event_data_store_arn(), Some(store.as_str()));
    assert_eq!(put.max_event_size(), Some(&MaxEventSize::Large));
    assert_eq!(put.context_key_selectors(), std::slice::from_ref(&selector));
    let got = client
        .get_event_configuration()
        .event_data_store(&id)
        .send()
        .await
        .expect("GetEventConfiguration by id");
    assert_eq!(got.max_event_size(), Some(&MaxEventSize::Large));
    expect_error(
        client
            .put_event_configuration()
            .event_data_store(&store)
            .max_event_size(MaxEventSize::Standard)
            .context_key_selectors(selector)
            .send()
            .await,
        "InvalidParameterCombinationException",
    );
    expect_error(
        client
            .get_event_configuration()
            .event_data_store(MISSING_STORE)
            .send()
            .await,
        "EventDataStoreNotFoundException",
    );

    // GenerateQuery, and the generated query run by its alias.
    let generated = client
        .generate_query()
        .event_data_stores(&store)
        .prompt("count events by region")
        .send()
        .await
        .expect("GenerateQuery");
    let statement = generated.query_statement().expect("a statement");
    assert!(statement.contains(&format!("FROM {id}")), "{statement}");
    assert!(statement.contains("GROUP BY awsRegion"), "{statement}");
    assert_eq!(
        generated.event_data_store_owner_account_id(),
        Some(ACCOUNT_ID)
    );
    let alias = generated.query_alias().expect("an alias");
    let query = client
        .start_query()
        .query_alias(alias)
        .send()
        .await
        .expect("StartQuery by alias");
    let described = client
        .describe_query()
        .query_id(query.query_id().expect("a query id"))
        .send()
        .await
        .expect("DescribeQuery");
    assert_eq!(described.prompt(), Some("count events by region"));
    expect_error(
        client
            .generate_query()
            .event_data_stores(&store)
            .prompt("what is the weather like in paris")
            .send()
            .await,
        "GenerateResponseException",
    );
    expect_error(
        client
            .generate_query()
            .event_data_stores(MISSING_STORE)
            .prompt("count events by region")
            .send()
            .await,
        "EventDataStoreNotFoundException",
    );
}
