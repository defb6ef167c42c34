//! `S3Store` against a real S3-compatible server (moto, authentication
//! enforced): the shared behaviour, plus S3-specific failure modes.
//!
//! moto_server comes from `OPENTRAIL_MOTO_SERVER` or `<workspace>/.venv`;
//! without it these tests fail and say how to install it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::behaviour;
use common::moto::{python, Moto, MotoS3};
use opentrail_objstore::{ObjectStore, S3Config, S3Store, StoreError};

#[tokio::test]
async fn bucket_lifecycle() {
    let moto = Moto::start().await;
    behaviour::bucket_lifecycle(Arc::new(moto.store())).await;
}

#[tokio::test]
async fn objects_with_metadata() {
    let moto = Moto::start().await;
    behaviour::objects_with_metadata(Arc::new(moto.store())).await;
}

#[tokio::test]
async fn missing_bucket_errors() {
    let moto = Moto::start().await;
    behaviour::missing_bucket_errors(Arc::new(moto.store())).await;
}

#[tokio::test]
async fn rejects_keys_that_are_not_paths() {
    let moto = Moto::start().await;
    behaviour::rejects_keys_that_are_not_paths(Arc::new(moto.store())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_every_page() {
    let moto = Moto::start().await;
    behaviour::lists_every_page(Arc::new(moto.store()), 1100).await;
}

#[tokio::test]
async fn object_store_readers_see_objects() {
    let moto = Moto::start().await;
    behaviour::object_store_readers_see_objects(Arc::new(moto.store())).await;
}

/// Outside us-east-1 the bucket is created with a LocationConstraint (moto
/// rejects the request without one) and requests are signed for that region.
#[tokio::test]
async fn works_outside_us_east_1() {
    let moto = Moto::start().await;
    let store = S3Store::new(moto.config("eu-west-1")).unwrap();
    store.create_bucket("eu-logs").await.unwrap();
    assert_eq!(
        store.create_bucket("eu-logs").await,
        Err(StoreError::BucketAlreadyExists("eu-logs".into()))
    );
    store
        .put_object("eu-logs", "k", Bytes::from_static(b"v"), &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_object("eu-logs", "k")
            .await
            .unwrap()
            .unwrap()
            .body,
        Bytes::from_static(b"v")
    );
}

#[tokio::test]
async fn a_wrong_secret_is_access_denied() {
    let moto = Moto::start().await;
    let mut config = moto.config("us-east-1");
    config.secret_key = "not-the-secret".to_owned();
    let store = S3Store::new(config).unwrap();
    let denied = store.list_buckets().await;
    assert!(
        matches!(&denied, Err(StoreError::AccessDenied(m)) if m.contains("SignatureDoesNotMatch")),
        "{denied:?}"
    );
    assert!(
        !format!("{denied:?}").contains("not-the-secret"),
        "the secret never appears in errors"
    );
    assert!(matches!(
        store.bucket_exists("some-bucket").await,
        Err(StoreError::AccessDenied(_))
    ));
}

/// An independent client (boto3) reads what S3Store wrote, metadata included.
#[tokio::test]
async fn boto3_reads_what_we_wrote() {
    let moto = Moto::start().await;
    let store = moto.store();
    store.create_bucket("shared").await.unwrap();
    let metadata = vec![
        ("signature".to_owned(), "0a1b".to_owned()),
        ("signature-algorithm".to_owned(), "SHA256withRSA".to_owned()),
    ];
    store
        .put_object(
            "shared",
            "dir/a b+ü.json",
            Bytes::from_static(b"payload"),
            &metadata,
        )
        .await
        .unwrap();
    let script = r#"
import boto3, json, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
got = s3.get_object(Bucket="shared", Key="dir/a b+ü.json")
print(json.dumps({"body": got["Body"].read().decode(), "metadata": got["Metadata"]}, sort_keys=True))
"#;
    let output = std::process::Command::new(python())
        .args([
            "-c",
            script,
            &moto.endpoint,
            &moto.access_key,
            &moto.secret_key,
        ])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"{"body": "payload", "metadata": {"signature": "0a1b", "signature-algorithm": "SHA256withRSA"}}"#
    );
}

fn config_for(endpoint: String) -> S3Config {
    S3Config {
        endpoint,
        access_key: "AKIDEXAMPLE".to_owned(),
        secret_key: "secret".to_owned(),
        region: "us-east-1".to_owned(),
        path_style: true,
    }
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = S3Store::new(config_for(format!("http://127.0.0.1:{port}"))).unwrap();
    assert!(matches!(
        store.bucket_exists("any-bucket").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.put_object("any-bucket", "k", Bytes::new(), &[]).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.list_buckets().await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket); // accept, read nothing, answer nothing
        }
    });
    let store = S3Store::with_timeouts(
        config_for(endpoint),
        Duration::from_secs(1),
        Duration::from_millis(500),
    )
    .unwrap();
    let result = store.get_object("any-bucket", "k").await;
    assert!(
        matches!(&result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    silent.abort();
}
