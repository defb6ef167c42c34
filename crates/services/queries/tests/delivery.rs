//! StartQuery with `DeliveryS3Uri` (result files and a signed `result_sign.json` in an
//! embedded bucket, their errors and DeliveryStatus) and with `QueryAlias` (a
//! GenerateQuery alias run, its `Prompt` described, its errors), over a scripted engine.

use async_trait::async_trait;
use opentrail_delivery::signing::{verify_signature, DigestSigningKey};
use opentrail_lake::{QueryEngine, QueryOutput, QueryStatistics};
use opentrail_meta::{MetaStore, SqliteMetaStore};
use opentrail_model::{AccountId, Clock, Region, RequestContext, SystemClock};
use opentrail_objstore::{LocalStore, ObjectStore};
use opentrail_operations::{
    CreateEventDataStoreRequest, DeliveryStatus, DescribeQueryRequest, DescribeQueryResponse,
    GenerateQueryRequest, QueryStatus, StartQueryRequest,
};
use opentrail_queries::{QueryError, QueryOptions, QueryService, ResultSigner, Signature};
use opentrail_samples::SampleService;
use opentrail_stores::StoreService;
use opentrail_wire::AwsError;
use sha2::Digest;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// `-- rows=N` rows of `eventName`, `note`; `-- fail` fails.
struct Rows;

#[async_trait]
impl QueryEngine for Rows {
    async fn validate(&self, _sql: &str, _stores: &[String]) -> opentrail_lake::Result<()> {
        Ok(())
    }

    async fn run(&self, sql: &str, _stores: &[String]) -> opentrail_lake::Result<QueryOutput> {
        if sql.contains("-- fail") {
            return Err(opentrail_lake::LakeError::ResourcesExhausted);
        }
        let rows: usize = sql
            .split("-- rows=")
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        Ok(QueryOutput {
            columns: vec!["eventName".into(), "note".into()],
            rows: (0..rows)
                .map(|i| {
                    vec![
                        Some(format!("Event{i}")),
                        (i % 2 == 0).then(|| "a,b".into()),
                    ]
                })
                .collect(),
            statistics: QueryStatistics::default(),
        })
    }
}

struct KeySigner(DigestSigningKey);

impl ResultSigner for KeySigner {
    fn sign(
        &self,
        _region: &Region,
        _at: chrono::DateTime<chrono::Utc>,
        message: &[u8],
    ) -> Result<Signature, String> {
        Ok(Signature {
            bytes: self.0.sign(message),
            fingerprint: self.0.fingerprint().to_owned(),
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    buckets: Arc<dyn ObjectStore>,
    stores: Arc<StoreService>,
    samples: Arc<SampleService>,
    queries: QueryService,
    public_key: Vec<u8>,
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

fn harness(file_bytes: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> =
        Arc::new(SqliteMetaStore::open(&dir.path().join("meta.db")).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let stores = Arc::new(StoreService::new(meta.clone(), clock.clone()));
    let samples =
        Arc::new(SampleService::new(meta.clone(), Arc::clone(&stores), clock.clone()).unwrap());
    let buckets: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path().join("buckets")));
    let key = DigestSigningKey::generate().unwrap();
    let public_key = key.public_key_der().to_vec();
    let queries = QueryService::new(
        meta,
        clock,
        Arc::clone(&stores),
        Arc::new(Rows),
        dir.path().join("queries"),
        QueryOptions {
            result_file_bytes: file_bytes,
            ..QueryOptions::default()
        },
    )
    .unwrap()
    .with_delivery(Arc::clone(&buckets), Arc::new(KeySigner(key)))
    .with_templates(Arc::clone(&samples));
    Harness {
        _dir: dir,
        buckets,
        stores,
        samples,
        queries,
        public_key,
    }
}

impl Harness {
    async fn store(&self) -> String {
        let created = self
            .stores
            .create_event_data_store(
                &ctx(),
                CreateEventDataStoreRequest {
                    name: "store".into(),
                    termination_protection_enabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        created.event_data_store_arn.unwrap()
    }

    async fn start(&self, request: StartQueryRequest) -> Result<String, QueryError> {
        Ok(self
            .queries
            .start_query(&ctx(), request)
            .await?
            .query_id
            .unwrap())
    }

    async fn describe(&self, id: &str) -> DescribeQueryResponse {
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
    }

    /// Waits (90 s) for the query to end and its delivery (if any) to leave PENDING.
    async fn settled(&self, id: &str) -> DescribeQueryResponse {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let described = self.describe(id).await;
            let active = matches!(
                described.query_status,
                Some(QueryStatus::Queued | QueryStatus::Running)
            );
            if !active && described.delivery_status != Some(DeliveryStatus::Pending) {
                return described;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "query {id} never settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn statement(store_arn: &str, rows: usize) -> Option<String> {
    let id = store_arn.rsplit('/').next().unwrap();
    Some(format!("SELECT eventName, note FROM {id} -- rows={rows}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_delivered_in_files_with_a_signed_sign_file() {
    let h = harness(60);
    let store = h.store().await;
    h.buckets.create_bucket("results-bucket").await.unwrap();
    let uri = "s3://results-bucket/exports/lake";
    let id = h
        .start(StartQueryRequest {
            query_statement: statement(&store, 7),
            delivery_s3_uri: Some(uri.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let described = h.settled(&id).await;
    assert_eq!(described.query_status, Some(QueryStatus::Finished));
    assert_eq!(described.delivery_status, Some(DeliveryStatus::Success));
    assert_eq!(described.delivery_s3_uri.as_deref(), Some(uri));

    let keys: Vec<String> = h
        .buckets
        .list_objects("results-bucket", "")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let sign_key = keys
        .iter()
        .find(|k| k.ends_with("/result_sign.json"))
        .expect("a sign file");
    let folder = sign_key.trim_end_matches("result_sign.json");
    assert!(
        folder.starts_with("exports/lake/AWSLogs/111122223333/CloudTrail-Lake/Query/")
            && folder.ends_with(&format!("/{id}/")),
        "{folder}"
    );
    let sign: serde_json::Value = serde_json::from_slice(
        &h.buckets
            .get_object("results-bucket", sign_key)
            .await
            .unwrap()
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(sign["version"], "1.0");
    assert_eq!(sign["region"], "us-east-1");
    assert_eq!(sign["hashAlgorithm"], "SHA-256");
    assert_eq!(sign["signatureAlgorithm"], "SHA256withRSA");
    let files = sign["files"].as_array().unwrap();
    assert!(files.len() > 1, "60 CSV bytes a file split 7 rows: {sign}");
    assert_eq!(keys.len(), files.len() + 1);
    let mut hashes = Vec::new();
    let mut lines = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let name = file["fileName"].as_str().unwrap();
        assert_eq!(name, format!("result_{}.csv.gz", index + 1));
        let body = h
            .buckets
            .get_object("results-bucket", &format!("{folder}{name}"))
            .await
            .unwrap()
            .unwrap()
            .body;
        let hash = hex::encode(sha2::Sha256::digest(&body));
        assert_eq!(file["fileHashValue"], hash.as_str());
        hashes.push(hash);
        let text = gunzip(&body);
        let mut file_lines = text.split_terminator("\r\n");
        assert_eq!(file_lines.next(), Some("eventName,note"));
        lines.extend(file_lines.map(str::to_owned));
    }
    assert_eq!(lines.first().map(String::as_str), Some("Event0,\"a,b\""));
    assert_eq!(lines.get(1).map(String::as_str), Some("Event1,"));
    assert_eq!(lines.len(), 7);
    let signature = hex::decode(sign["hashSignature"].as_str().unwrap()).unwrap();
    let message = hashes.join(" ");
    assert!(verify_signature(
        &h.public_key,
        message.as_bytes(),
        &signature
    ));
    assert!(!verify_signature(
        &h.public_key,
        format!("{message} ").as_bytes(),
        &signature
    ));
    assert_eq!(
        sign["publicKeyFingerprint"],
        opentrail_delivery::signing::fingerprint(&h.public_key).as_str()
    );
    let complete = sign["queryCompleteTime"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(complete, "%Y-%m-%d %H:%M:%S%.3f").is_ok(),
        "{complete}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_errors_and_statuses() {
    let h = harness(1 << 20);
    let store = h.store().await;
    let start = |uri: &str, rows: usize| StartQueryRequest {
        query_statement: statement(&store, rows),
        delivery_s3_uri: Some(uri.into()),
        ..Default::default()
    };
    assert_eq!(
        code(h.start(start("s3://no-such-bucket/x", 1)).await),
        "S3BucketDoesNotExistException"
    );
    assert_eq!(
        code(h.start(start("s3://Bad_Bucket", 1)).await),
        "InvalidS3BucketNameException"
    );
    h.buckets.create_bucket("b-1").await.unwrap();
    assert_eq!(
        code(h.start(start("s3://b-1/a//b", 1)).await),
        "InvalidS3PrefixException"
    );
    assert_eq!(
        code(h.start(start("http://b-1/a", 1)).await),
        "InvalidParameterException"
    );

    // An empty result is delivered too: one file with the header.
    let empty = h.start(start("s3://b-1", 0)).await.unwrap();
    assert_eq!(
        h.settled(&empty).await.delivery_status,
        Some(DeliveryStatus::Success)
    );
    let listed = h.buckets.list_objects("b-1", "AWSLogs/").await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    // A failed query delivers nothing.
    let mut failing = start("s3://b-1/failed", 0);
    failing.query_statement = failing.query_statement.map(|s| s + " -- fail");
    let failed = h.start(failing).await.unwrap();
    let described = h.settled(&failed).await;
    assert_eq!(described.query_status, Some(QueryStatus::Failed));
    assert_eq!(described.delivery_status, Some(DeliveryStatus::Failed));
    assert!(h
        .buckets
        .list_objects("b-1", "failed/")
        .await
        .unwrap()
        .is_empty());

    // Without a DeliveryS3Uri there is no delivery status.
    let plain = h
        .start(StartQueryRequest {
            query_statement: statement(&store, 1),
            ..Default::default()
        })
        .await
        .unwrap();
    let described = h.settled(&plain).await;
    assert_eq!(described.delivery_status, None);
    assert_eq!(described.delivery_s3_uri, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_query_runs_by_its_alias() {
    let h = harness(1 << 20);
    let store = h.store().await;
    let prompt = "count events by region";
    let generated = h
        .samples
        .generate_query(
            &ctx(),
            GenerateQueryRequest {
                event_data_stores: vec![store.clone()],
                prompt: prompt.into(),
            },
        )
        .await
        .unwrap();
    let alias = generated.query_alias.unwrap();
    let id = h
        .start(StartQueryRequest {
            query_alias: Some(alias.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let described = h.settled(&id).await;
    assert_eq!(described.query_status, Some(QueryStatus::Finished));
    assert_eq!(described.prompt.as_deref(), Some(prompt));
    assert_eq!(described.query_string, generated.query_statement);

    let alias_start = |alias: &str, parameters: Option<Vec<String>>| StartQueryRequest {
        query_alias: Some(alias.into()),
        query_parameters: parameters,
        ..Default::default()
    };
    assert_eq!(
        code(h.start(alias_start("nosuchalias", None)).await),
        "InvalidParameterException"
    );
    assert_eq!(
        code(h.start(alias_start("1bad", None)).await),
        "InvalidParameterException"
    );
    // The generated query has no ? placeholder: parameters do not fit it.
    assert_eq!(
        code(h.start(alias_start(&alias, Some(vec!["x".into()]))).await),
        "InvalidParameterException"
    );
    // A statement takes no parameters.
    assert_eq!(
        code(
            h.start(StartQueryRequest {
                query_statement: statement(&store, 1),
                query_parameters: Some(vec!["x".into()]),
                ..Default::default()
            })
            .await
        ),
        "InvalidParameterException"
    );
}
