//! `LocalStore`: the shared behaviour, plus how buckets look on disk.

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::behaviour;
use opentrail_objstore::{LocalStore, ObjectStore, StoreError};

fn store_in(dir: &Path) -> LocalStore {
    LocalStore::new(dir.join("buckets"))
}

#[tokio::test]
async fn bucket_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::bucket_lifecycle(Arc::new(store_in(dir.path()))).await;
}

#[tokio::test]
async fn objects_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::objects_with_metadata(Arc::new(store_in(dir.path()))).await;
}

#[tokio::test]
async fn missing_bucket_errors() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::missing_bucket_errors(Arc::new(store_in(dir.path()))).await;
}

#[tokio::test]
async fn rejects_keys_that_are_not_paths() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::rejects_keys_that_are_not_paths(Arc::new(store_in(dir.path()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_every_page() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::lists_every_page(Arc::new(store_in(dir.path())), 1100).await;
}

#[tokio::test]
async fn object_store_readers_see_objects() {
    let dir = tempfile::tempdir().unwrap();
    behaviour::object_store_readers_see_objects(Arc::new(store_in(dir.path()))).await;
}

#[tokio::test]
async fn objects_are_plain_files_and_metadata_is_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.create_bucket("logs").await.unwrap();
    let metadata = vec![("signature".to_owned(), "abc".to_owned())];
    store
        .put_object(
            "logs",
            "a/b/c.json.gz",
            Bytes::from_static(b"body"),
            &metadata,
        )
        .await
        .unwrap();

    let bucket_dir = dir.path().join("buckets/logs");
    assert_eq!(
        std::fs::read(bucket_dir.join("a/b/c.json.gz")).unwrap(),
        b"body"
    );
    let sidecar = bucket_dir.join(".opentrail-meta/metadata/a/b/c.json.gz");
    assert_eq!(
        std::fs::read_to_string(sidecar).unwrap(),
        r#"[["signature","abc"]]"#
    );
    let leftovers: Vec<_> = std::fs::read_dir(bucket_dir.join(".opentrail-meta/tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "temporary files are renamed away");

    let listed = store.list_objects("logs", "").await.unwrap();
    assert_eq!(
        listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["a/b/c.json.gz"]
    );
    assert!(store
        .list_objects("logs", ".opentrail-meta/")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_objects("logs", ".opentrail-meta")
        .await
        .unwrap()
        .is_empty());

    let reserved = store
        .put_object("logs", ".opentrail-meta/metadata/x", Bytes::new(), &[])
        .await;
    assert!(matches!(reserved, Err(StoreError::Other(m)) if m.contains(".opentrail-meta")));
    assert_eq!(
        store
            .get_object("logs", ".opentrail-meta/metadata/a/b/c.json.gz")
            .await,
        Ok(None)
    );

    store.delete_object("logs", "a/b/c.json.gz").await.unwrap();
    assert!(
        !bucket_dir.join("a").exists(),
        "empty directories are pruned"
    );
    assert!(!bucket_dir.join(".opentrail-meta/metadata/a").exists());
}

#[tokio::test]
async fn data_survives_a_new_instance() {
    let dir = tempfile::tempdir().unwrap();
    let metadata = vec![("k".to_owned(), "v".to_owned())];
    {
        let store = store_in(dir.path());
        store.create_bucket("durable").await.unwrap();
        store
            .put_object("durable", "x/y", Bytes::from_static(b"kept"), &metadata)
            .await
            .unwrap();
    }
    let reopened = store_in(dir.path());
    assert_eq!(reopened.list_buckets().await.unwrap(), ["durable"]);
    let object = reopened
        .get_object("durable", "x/y")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (object.body, object.metadata),
        (Bytes::from_static(b"kept"), metadata)
    );
}

#[tokio::test]
async fn a_key_cannot_be_both_object_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.create_bucket("clash").await.unwrap();
    store
        .put_object("clash", "a", Bytes::from_static(b"1"), &[])
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_object("clash", "a/b", Bytes::from_static(b"2"), &[])
            .await,
        Err(StoreError::Other(_))
    ));
    store
        .put_object("clash", "c/d", Bytes::from_static(b"3"), &[])
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_object("clash", "c", Bytes::from_static(b"4"), &[])
            .await,
        Err(StoreError::Other(_))
    ));
    assert_eq!(
        store.get_object("clash", "a").await.unwrap().unwrap().body,
        Bytes::from_static(b"1")
    );
    assert_eq!(
        store
            .get_object("clash", "c/d")
            .await
            .unwrap()
            .unwrap()
            .body,
        Bytes::from_static(b"3")
    );
}

#[tokio::test]
async fn ignores_what_is_not_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    assert_eq!(
        store.list_buckets().await.unwrap(),
        Vec::<String>::new(),
        "root not created yet"
    );
    store.create_bucket("real-bucket").await.unwrap();
    let root = dir.path().join("buckets");
    std::fs::create_dir(root.join("Not_A_Bucket")).unwrap();
    std::fs::create_dir(root.join(".deleted-x-1-2")).unwrap();
    std::fs::write(root.join("file-not-dir"), b"").unwrap();
    assert_eq!(store.list_buckets().await.unwrap(), ["real-bucket"]);
}

#[tokio::test]
async fn deleting_a_bucket_with_only_leftover_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.create_bucket("leftovers").await.unwrap();
    store
        .put_object("leftovers", "k", Bytes::from_static(b"x"), &[])
        .await
        .unwrap();
    store.delete_object("leftovers", "k").await.unwrap();
    // A crash can leave a temporary file; it does not make the bucket non-empty.
    std::fs::write(
        dir.path()
            .join("buckets/leftovers/.opentrail-meta/tmp/.tmpXYZ"),
        b"partial",
    )
    .unwrap();
    store.delete_bucket("leftovers").await.unwrap();
    assert!(!dir.path().join("buckets/leftovers").exists());
    assert_eq!(store.list_buckets().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_body_without_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store_in(dir.path()));
    store.create_bucket("race").await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for version in 0..200 {
                let body = Bytes::from(format!("body-{version}"));
                let metadata = vec![("version".to_owned(), version.to_string())];
                store
                    .put_object("race", "digest", body, &metadata)
                    .await
                    .unwrap();
            }
        })
    };
    while !writer.is_finished() {
        if let Some(object) = store.get_object("race", "digest").await.unwrap() {
            let version = &object.metadata[0].1;
            assert_eq!(object.body, Bytes::from(format!("body-{version}")));
        }
    }
    writer.await.unwrap();
}
