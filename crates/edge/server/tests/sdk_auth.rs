//! Authentication as the SDK sees it: the bootstrap key, wrong secrets, unknown keys, and
//! keys created and deleted with the admin CLI while the server runs.

mod common;

use common::{create_trail, expect_error, sdk_client, AccessKey, TestServer, ACCOUNT_ID};

const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_creates_a_root_key() {
    let server = TestServer::start();
    let key = server.credentials();
    assert!(
        key.access_key_id.starts_with("AKIA") && key.access_key_id.len() == 20,
        "{key:?}"
    );
    assert!(key.secret_access_key.len() >= 40, "secret is long enough");
    let announced = server.startup_lines().join("\n");
    assert!(
        announced.contains(&key.access_key_id),
        "first start announces the created key on stdout: {announced}"
    );
    assert!(
        !announced.contains(&key.secret_access_key),
        "the secret is never printed on stdout: {announced}"
    );
    server
        .client(REGION)
        .describe_trails()
        .send()
        .await
        .expect("root key works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_an_invalid_signature() {
    let server = TestServer::start();
    let wrong = AccessKey {
        access_key_id: server.credentials().access_key_id.clone(),
        secret_access_key: "x".repeat(40),
    };
    let client = server.client_with_key(REGION, &wrong);
    expect_error(
        client.describe_trails().send().await,
        "InvalidSignatureException",
    );
    expect_error(
        client
            .create_trail()
            .name("nope")
            .s3_bucket_name(common::BUCKET)
            .send()
            .await,
        "InvalidSignatureException",
    );
    // Nothing was created by the rejected request.
    let listed = server
        .client(REGION)
        .list_trails()
        .send()
        .await
        .expect("list");
    assert!(listed.trails().is_empty(), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_access_key_is_unrecognized() {
    let server = TestServer::start();
    let unknown = AccessKey {
        access_key_id: "AKIAUNKNOWNKEY000000".into(),
        secret_access_key: server.credentials().secret_access_key.clone(),
    };
    expect_error(
        server
            .client_with_key(REGION, &unknown)
            .describe_trails()
            .send()
            .await,
        "UnrecognizedClientException",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_key_works_until_deleted() {
    let server = TestServer::start();
    let root = server.client(REGION);
    create_trail(&root, "shared").await;

    let key = server.create_key("alice");
    assert_ne!(key.access_key_id, server.credentials().access_key_id);
    let alice = server.client_with_key(REGION, &key);
    // Same account: alice sees and manages the account's trails.
    let trail = alice
        .get_trail()
        .name("shared")
        .send()
        .await
        .expect("alice reads")
        .trail
        .expect("trail");
    assert_eq!(
        trail.trail_arn(),
        Some(common::trail_arn(REGION, "shared").as_str())
    );
    let created = create_trail(&alice, "alices").await;
    assert!(
        created
            .trail_arn()
            .is_some_and(|arn| arn.contains(ACCOUNT_ID)),
        "{created:?}"
    );

    server.delete_key(&key.access_key_id);
    expect_error(
        alice.describe_trails().send().await,
        "UnrecognizedClientException",
    );
    // A fresh client with the deleted key fails the same way; root is unaffected.
    let again = sdk_client(&server.endpoint(), "eu-west-1", &key);
    expect_error(
        again.list_trails().send().await,
        "UnrecognizedClientException",
    );
    root.get_trail()
        .name("alices")
        .send()
        .await
        .expect("root still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_independent() {
    let server = TestServer::start();
    let bob = server.create_key("bob");
    let carol = server.create_key("carol");
    // Bob's id with Carol's secret is a bad signature, not a valid request.
    let mixed = AccessKey {
        access_key_id: bob.access_key_id.clone(),
        secret_access_key: carol.secret_access_key.clone(),
    };
    expect_error(
        server
            .client_with_key(REGION, &mixed)
            .list_trails()
            .send()
            .await,
        "InvalidSignatureException",
    );
    server.delete_key(&bob.access_key_id);
    server
        .client_with_key(REGION, &carol)
        .list_trails()
        .send()
        .await
        .expect("carol unaffected by bob's deletion");
}
