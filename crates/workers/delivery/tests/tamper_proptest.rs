//! Property: validation passes exactly when every log file's content and every digest
//! (content and signature) is as delivered. Any change to what a file says is caught;
//! changes to gzip framing that leave the content intact (header time, padding bits)
//! are not changes to the logs, and validate-logs accepts them too.

mod common;

use std::io::Read;

use bytes::Bytes;
use chrono::Duration;
use common::{region, t0, trail, Ev, Harness};
use opentrail_delivery::log_file::{gunzip_single_member, gzip_single_member};
use opentrail_delivery::validate::{validate_logs, ValidationRequest};
use opentrail_objstore::Object;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Debug, Clone)]
enum Alteration {
    /// Change one byte of the uncompressed content, re-gzip.
    ContentByte { at: usize, xor: u8 },
    /// Insert a byte into the uncompressed content, re-gzip.
    ContentInsert { at: usize, byte: u8 },
    /// Cut the uncompressed content short, re-gzip.
    ContentTruncate { keep: usize },
    /// Flip one bit of the stored (compressed) bytes.
    StoredBit { at: usize, bit: u8 },
    /// Change one hex digit of a digest's `signature` metadata.
    SignatureDigit { at: usize },
}

fn alteration() -> impl Strategy<Value = Alteration> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Alteration::ContentByte { at, xor }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Alteration::ContentInsert { at, byte }),
        any::<usize>().prop_map(|keep| Alteration::ContentTruncate { keep }),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Alteration::StoredBit { at, bit }),
        any::<usize>().prop_map(|at| Alteration::SignatureDigit { at }),
    ]
}

/// Inflates like validate-logs: the first member only, anything after it is an error.
fn content(body: &[u8]) -> Option<Vec<u8>> {
    gunzip_single_member(body).ok()
}

/// The altered object and whether it still says exactly what the original said.
fn alter(original: &Object, is_digest: bool, alteration: &Alteration) -> (Object, bool) {
    let mut altered = original.clone();
    let inflated = content(&original.body).expect("delivered files inflate");
    match alteration {
        Alteration::ContentByte { at, xor } => {
            let mut changed = inflated.clone();
            let at = at % changed.len();
            changed[at] ^= xor;
            altered.body = Bytes::from(gzip_single_member(&changed));
        }
        Alteration::ContentInsert { at, byte } => {
            let mut changed = inflated.clone();
            changed.insert(at % (changed.len() + 1), *byte);
            altered.body = Bytes::from(gzip_single_member(&changed));
        }
        Alteration::ContentTruncate { keep } => {
            let changed = &inflated[..keep % inflated.len()];
            altered.body = Bytes::from(gzip_single_member(changed));
        }
        Alteration::StoredBit { at, bit } => {
            let mut body = original.body.to_vec();
            let at = at % body.len();
            body[at] ^= 1 << bit;
            altered.body = Bytes::from(body);
        }
        Alteration::SignatureDigit { at } => {
            if is_digest {
                let (_, signature) = altered
                    .metadata
                    .iter_mut()
                    .find(|(name, _)| name == "signature")
                    .unwrap();
                let mut digits = signature.clone().into_bytes();
                let at = at % digits.len();
                digits[at] = if digits[at] == b'0' { b'1' } else { b'0' };
                *signature = String::from_utf8(digits).unwrap();
            }
        }
    }
    let same_content = content(&altered.body).as_deref() == Some(&inflated[..]);
    let same_signature = altered.metadata == original.metadata;
    (altered, same_content && same_signature)
}

#[test]
fn any_change_to_a_log_file_or_digest_is_detected() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = runtime.block_on(Harness::local());
    let mut target = trail("main", "us-east-1");
    target.log_file_validation = true;
    h.directory.set(vec![target.clone()]);
    runtime.block_on(async {
        let mut worker = h.worker().await;
        worker.step(None).await.unwrap();
        for hour in 0..3 {
            let events: Vec<Ev> = (0..4)
                .map(|i| {
                    Ev::new(
                        format!("p{hour}-{i}"),
                        "us-east-1",
                        "ec2.amazonaws.com",
                        "RunInstances",
                    )
                })
                .collect();
            h.append(&events).await;
            worker.step(None).await.unwrap();
            h.advance(60);
            worker.step(None).await.unwrap();
            h.advance(3540);
            worker.step(None).await.unwrap();
        }
    });
    let request = ValidationRequest {
        bucket: "trail-bucket".to_owned(),
        prefix: None,
        account: target.account.clone(),
        trail: target.arn(),
        region: region("us-east-1"),
        start: t0() - Duration::minutes(5),
        end: t0() + Duration::hours(3),
        public_keys: h.keys.public_keys(
            &region("us-east-1"),
            t0() - Duration::minutes(5),
            t0() + Duration::hours(5),
        ),
    };
    let baseline = runtime
        .block_on(validate_logs(h.store.as_ref(), &request))
        .unwrap();
    assert!(
        baseline.is_valid() && baseline.valid_digests() == 3 && baseline.valid_log_files() == 3
    );

    let mut objects: Vec<(String, bool)> = Vec::new();
    runtime.block_on(async {
        for key in h.log_file_keys("trail-bucket").await {
            objects.push((key, false));
        }
        for key in h.digest_keys("trail-bucket").await {
            objects.push((key, true));
        }
    });

    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&(0..objects.len(), alteration()), |(index, alteration)| {
            let (key, is_digest) = &objects[index];
            runtime.block_on(async {
                let original = h
                    .store
                    .get_object("trail-bucket", key)
                    .await
                    .unwrap()
                    .unwrap();
                let (altered, unchanged) = alter(&original, *is_digest, &alteration);
                h.store
                    .put_object("trail-bucket", key, altered.body, &altered.metadata)
                    .await
                    .unwrap();
                let report = validate_logs(h.store.as_ref(), &request).await.unwrap();
                h.store
                    .put_object("trail-bucket", key, original.body, &original.metadata)
                    .await
                    .unwrap();
                prop_assert_eq!(
                    report.is_valid(),
                    unchanged,
                    "{} {:?}: {:#?}",
                    key,
                    alteration,
                    report
                );
                Ok(())
            })
        })
        .unwrap();

    // The stored gzip really is what an independent inflater reads.
    runtime.block_on(async {
        for (key, _) in &objects {
            let body = h
                .store
                .get_object("trail-bucket", key)
                .await
                .unwrap()
                .unwrap()
                .body;
            let mut other = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .read_to_end(&mut other)
                .unwrap();
            assert_eq!(Some(other), content(&body));
        }
    });
}
