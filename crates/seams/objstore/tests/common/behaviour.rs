//! Behaviour every `ObjectStore` must show, run against `LocalStore` and
//! against `S3Store` on a real S3-compatible server.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{Duration, Utc};
use opentrail_objstore::{ObjectInfo, ObjectStore, StoreError};

pub type Store = Arc<dyn ObjectStore>;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn keys(objects: &[ObjectInfo]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

pub async fn bucket_lifecycle(store: Store) {
    assert_eq!(store.bucket_exists("trail-logs").await, Ok(false));
    store.create_bucket("trail-logs").await.expect("create");
    store
        .create_bucket("archive.example")
        .await
        .expect("create second");
    assert_eq!(store.bucket_exists("trail-logs").await, Ok(true));
    let buckets = store.list_buckets().await.expect("list");
    assert!(
        buckets.contains(&"trail-logs".to_owned())
            && buckets.contains(&"archive.example".to_owned())
    );
    let mut sorted = buckets.clone();
    sorted.sort();
    assert_eq!(buckets, sorted, "sorted");

    assert_eq!(
        store.create_bucket("trail-logs").await,
        Err(StoreError::BucketAlreadyExists("trail-logs".into()))
    );
    for invalid in ["Trail_Logs", "ab", "192.168.5.4", "../etc"] {
        assert!(
            matches!(store.create_bucket(invalid).await, Err(StoreError::InvalidBucketName(m)) if m.starts_with(invalid)),
            "{invalid}"
        );
        assert!(matches!(
            store.bucket_exists(invalid).await,
            Err(StoreError::InvalidBucketName(_))
        ));
    }

    store.delete_bucket("trail-logs").await.expect("delete");
    assert_eq!(store.bucket_exists("trail-logs").await, Ok(false));
    assert!(!store
        .list_buckets()
        .await
        .expect("list")
        .contains(&"trail-logs".to_owned()));
    assert_eq!(
        store.delete_bucket("trail-logs").await,
        Err(StoreError::NoSuchBucket("trail-logs".into()))
    );
}

pub async fn objects_with_metadata(store: Store) {
    let bucket = "trail-objects";
    store.create_bucket(bucket).await.expect("create");
    let started = Utc::now();

    let digest_key = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/05/17/123456789012_CloudTrail-Digest_us-east-1_management_us-east-1_20240517T093012Z.json.gz";
    let metadata = pairs(&[
        ("signature-algorithm", "SHA256withRSA"),
        ("Signature", "0a1b2c"),
    ]);
    store
        .put_object(
            bucket,
            digest_key,
            Bytes::from_static(b"\x1f\x8b digest"),
            &metadata,
        )
        .await
        .expect("put digest");
    let object = store
        .get_object(bucket, digest_key)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(object.body, Bytes::from_static(b"\x1f\x8b digest"));
    assert_eq!(
        object.metadata,
        pairs(&[
            ("signature", "0a1b2c"),
            ("signature-algorithm", "SHA256withRSA")
        ]),
        "lower-case names, sorted"
    );

    // Overwriting replaces body and metadata together.
    store
        .put_object(
            bucket,
            digest_key,
            Bytes::from_static(b"v2"),
            &pairs(&[("signature", "ff")]),
        )
        .await
        .expect("overwrite");
    let object = store
        .get_object(bucket, digest_key)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (object.body.as_ref(), object.metadata),
        (&b"v2"[..], pairs(&[("signature", "ff")]))
    );
    store
        .put_object(bucket, digest_key, Bytes::new(), &[])
        .await
        .expect("overwrite empty");
    let object = store
        .get_object(bucket, digest_key)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((object.body.len(), object.metadata.len()), (0, 0));

    let odd_key = "AWSLogs/odd keys/a b+c=d&e~ü😀.json";
    let binary: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();
    store
        .put_object(bucket, odd_key, Bytes::from(binary.clone()), &[])
        .await
        .expect("put large");
    let object = store
        .get_object(bucket, odd_key)
        .await
        .expect("get")
        .expect("exists");
    assert!(object.body == binary, "large binary body round trips");
    assert!(object.metadata.is_empty());

    store
        .put_object(bucket, "AWSLogs/other/x", Bytes::from_static(b"1"), &[])
        .await
        .expect("put");
    store
        .put_object(bucket, "AWSLogsX", Bytes::from_static(b"12"), &[])
        .await
        .expect("put");
    store
        .put_object(bucket, "top", Bytes::from_static(b"123"), &[])
        .await
        .expect("put");

    let all = store.list_objects(bucket, "").await.expect("list");
    assert_eq!(
        keys(&all),
        [
            digest_key,
            "AWSLogs/odd keys/a b+c=d&e~ü😀.json",
            "AWSLogs/other/x",
            "AWSLogsX",
            "top"
        ]
    );
    let sizes: Vec<u64> = all.iter().map(|o| o.size).collect();
    assert_eq!(sizes, [0, binary.len() as u64, 1, 2, 3]);
    for object in &all {
        assert!(
            object.last_modified > started - Duration::minutes(5),
            "{object:?}"
        );
        assert!(
            object.last_modified < Utc::now() + Duration::minutes(5),
            "{object:?}"
        );
    }
    assert_eq!(
        keys(&store.list_objects(bucket, "AWSLogs/").await.expect("list")).len(),
        3
    );
    assert_eq!(
        keys(&store.list_objects(bucket, "AWSLogs/o").await.expect("list")),
        [odd_key, "AWSLogs/other/x"]
    );
    assert_eq!(
        keys(&store.list_objects(bucket, "AWSLogs").await.expect("list")).len(),
        4
    );
    assert_eq!(
        keys(
            &store
                .list_objects(bucket, "AWSLogs/other/x")
                .await
                .expect("list")
        ),
        ["AWSLogs/other/x"]
    );
    assert!(store
        .list_objects(bucket, "nothing/")
        .await
        .expect("list")
        .is_empty());

    assert_eq!(store.get_object(bucket, "AWSLogs/missing").await, Ok(None));
    assert_eq!(
        store.get_object(bucket, "AWSLogs").await,
        Ok(None),
        "a prefix is not an object"
    );
    assert_eq!(
        store.delete_bucket(bucket).await,
        Err(StoreError::BucketNotEmpty(bucket.into()))
    );

    for key in [digest_key, odd_key, "AWSLogs/other/x", "AWSLogsX", "top"] {
        store.delete_object(bucket, key).await.expect("delete");
        assert_eq!(store.get_object(bucket, key).await, Ok(None));
    }
    store
        .delete_object(bucket, "never-existed")
        .await
        .expect("deleting a missing key succeeds");
    assert!(store
        .list_objects(bucket, "")
        .await
        .expect("list")
        .is_empty());
    store
        .delete_bucket(bucket)
        .await
        .expect("delete emptied bucket");
}

pub async fn missing_bucket_errors(store: Store) {
    let missing = || Err(StoreError::NoSuchBucket("no-such-bucket".into()));
    assert_eq!(
        store
            .put_object("no-such-bucket", "k", Bytes::from_static(b"x"), &[])
            .await,
        missing()
    );
    assert_eq!(
        store.get_object("no-such-bucket", "k").await,
        missing().map(|()| None)
    );
    assert_eq!(
        store.list_objects("no-such-bucket", "").await,
        missing().map(|()| Vec::new())
    );
    assert_eq!(store.delete_object("no-such-bucket", "k").await, missing());
    assert_eq!(store.delete_bucket("no-such-bucket").await, missing());
}

pub async fn rejects_keys_that_are_not_paths(store: Store) {
    store.create_bucket("key-rules").await.expect("create");
    for key in [
        "../escape",
        "a/../../b",
        "a//b",
        "/abs",
        "dir/",
        "",
        "a/./b",
    ] {
        assert!(
            matches!(store.put_object("key-rules", key, Bytes::from_static(b"x"), &[]).await, Err(StoreError::Other(m)) if m.contains("invalid object key")),
            "{key:?}"
        );
        assert_eq!(
            store.get_object("key-rules", key).await,
            Ok(None),
            "{key:?}"
        );
        assert_eq!(
            store.delete_object("key-rules", key).await,
            Ok(()),
            "{key:?}"
        );
    }
    assert!(matches!(
        store
            .put_object("key-rules", "k", Bytes::new(), &pairs(&[("bad name", "v")]))
            .await,
        Err(StoreError::Other(_))
    ));
    assert!(store
        .list_objects("key-rules", "")
        .await
        .expect("list")
        .is_empty());
    store.delete_bucket("key-rules").await.expect("delete");
}

/// More keys than one S3 listing page (1000) holds.
pub async fn lists_every_page(store: Store, count: usize) {
    let bucket = "many-keys";
    store.create_bucket(bucket).await.expect("create");
    let mut tasks = tokio::task::JoinSet::new();
    let chunk = count.div_ceil(8);
    for start in (0..count).step_by(chunk) {
        let store = store.clone();
        tasks.spawn(async move {
            for index in start..(start + chunk).min(count) {
                let key = format!("AWSLogs/{}/{index:05}.json.gz", index % 3);
                store
                    .put_object(bucket, &key, Bytes::from(index.to_string()), &[])
                    .await
                    .expect("put");
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("put task");
    }
    let all = store.list_objects(bucket, "").await.expect("list");
    assert_eq!(all.len(), count);
    let mut expected: Vec<String> = (0..count)
        .map(|i| format!("AWSLogs/{}/{i:05}.json.gz", i % 3))
        .collect();
    expected.sort();
    assert_eq!(
        keys(&all),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let zeros = store
        .list_objects(bucket, "AWSLogs/0/")
        .await
        .expect("list prefix");
    assert_eq!(zeros.len(), count.div_ceil(3));
}

/// What `put_object` wrote, an `object_store` reader (DataFusion's way in)
/// reads back: bodies by key, listings by key prefix.
pub async fn object_store_readers_see_objects(store: Store) {
    use futures_util::TryStreamExt;
    use object_store::path::Path;
    use object_store::ObjectStoreExt;

    let bucket = "lake-files";
    store.create_bucket(bucket).await.expect("create");
    for key in [
        "tables/events/part-0.parquet",
        "tables/events/part-1.parquet",
        "other/x",
    ] {
        store
            .put_object(bucket, key, Bytes::from(key.to_owned()), &[])
            .await
            .expect("put");
    }
    let reader = store.bucket_store(bucket).expect("bucket store");
    let path = Path::parse("tables/events/part-1.parquet").unwrap();
    let body = reader
        .get(&path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(body, Bytes::from_static(b"tables/events/part-1.parquet"));
    let prefix = Path::parse("tables/events").unwrap();
    let mut listed: Vec<String> = reader
        .list(Some(&prefix))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(
        listed,
        [
            "tables/events/part-0.parquet",
            "tables/events/part-1.parquet"
        ]
    );
    assert!(matches!(
        store.bucket_store("Not_A_Bucket"),
        Err(StoreError::InvalidBucketName(_))
    ));
}
