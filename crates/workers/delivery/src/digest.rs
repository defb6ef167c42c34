//! The digest file: which log files a trail delivered to one region in a time window,
//! their hashes, and the link to the previous digest; signed as validate-logs checks it.

use chrono::{DateTime, Utc};
use opentrail_model::iso8601;
use serde::{Deserialize, Serialize};

use crate::log_file::sha256_hex;
use crate::signing::{DigestSigningKey, SIGNATURE_ALGORITHM};

/// `hashAlgorithm` and `previousDigestHashAlgorithm`.
pub const HASH_ALGORITHM: &str = "SHA-256";

/// The JSON of a digest file, fields in CloudTrail's order. Times are
/// `YYYY-MM-DDTHH:MM:SSZ`; `previous*` and the event times are `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    pub previous_digest_s3_bucket: Option<String>,
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<DigestLogFile>,
}

/// One delivered log file in a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    pub s3_bucket: String,
    pub s3_object: String,
    /// Hex SHA-256 of the uncompressed log file.
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
}

/// The digest before this one in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousDigest {
    pub bucket: String,
    pub key: String,
    /// Hex SHA-256 of its uncompressed JSON.
    pub sha256_hex: String,
    /// Hex signature, as in its `signature` metadata.
    pub signature_hex: String,
}

/// Where a digest goes and what it covers.
#[derive(Debug, Clone)]
pub struct DigestInput<'a> {
    pub account: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub previous: Option<&'a PreviousDigest>,
    pub log_files: &'a [DigestLogFile],
}

/// A digest ready to be written: the uncompressed JSON and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDigest {
    pub bucket: String,
    pub key: String,
    pub json: String,
    pub sha256_hex: String,
    pub signature_hex: String,
}

impl SignedDigest {
    /// The object metadata validate-logs reads: `signature` and `signature-algorithm`.
    pub fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("signature".to_owned(), self.signature_hex.clone()),
            (
                "signature-algorithm".to_owned(),
                SIGNATURE_ALGORITHM.to_owned(),
            ),
        ]
    }

    /// What the next digest of the chain links to.
    pub fn as_previous(&self) -> PreviousDigest {
        PreviousDigest {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            sha256_hex: self.sha256_hex.clone(),
            signature_hex: self.signature_hex.clone(),
        }
    }
}

/// The digest JSON for `input`, attributed to `fingerprint`.
pub fn build_digest(input: &DigestInput<'_>, fingerprint: &str) -> DigestFile {
    let oldest = input
        .log_files
        .iter()
        .filter_map(|file| file.oldest_event_time.clone())
        .min();
    let newest = input
        .log_files
        .iter()
        .filter_map(|file| file.newest_event_time.clone())
        .max();
    let previous = input.previous;
    DigestFile {
        aws_account_id: input.account.to_owned(),
        digest_start_time: iso8601(input.start),
        digest_end_time: iso8601(input.end),
        digest_s3_bucket: input.bucket.to_owned(),
        digest_s3_object: input.key.to_owned(),
        digest_public_key_fingerprint: fingerprint.to_owned(),
        digest_signature_algorithm: SIGNATURE_ALGORITHM.to_owned(),
        newest_event_time: newest,
        oldest_event_time: oldest,
        previous_digest_s3_bucket: previous.map(|p| p.bucket.clone()),
        previous_digest_s3_object: previous.map(|p| p.key.clone()),
        previous_digest_hash_value: previous.map(|p| p.sha256_hex.clone()),
        previous_digest_hash_algorithm: previous.map(|_| HASH_ALGORITHM.to_owned()),
        previous_digest_signature: previous.map(|p| p.signature_hex.clone()),
        log_files: input.log_files.to_vec(),
    }
}

/// Serialises `digest` compactly and signs it with `key`.
pub fn sign_digest(digest: &DigestFile, key: &DigestSigningKey) -> SignedDigest {
    let json = serde_json::to_string(digest).expect("digest serialises");
    let sha256 = sha256_hex(json.as_bytes());
    let to_sign = string_to_sign(
        &digest.digest_end_time,
        &digest.digest_s3_bucket,
        &digest.digest_s3_object,
        &sha256,
        digest.previous_digest_signature.as_deref(),
    );
    SignedDigest {
        bucket: digest.digest_s3_bucket.clone(),
        key: digest.digest_s3_object.clone(),
        signature_hex: hex::encode(key.sign(to_sign.as_bytes())),
        sha256_hex: sha256,
        json,
    }
}

/// `digestEndTime \n bucket/key \n hex(sha256(uncompressed digest)) \n previousDigestSignature`,
/// with the literal `null` for the first digest of a chain.
pub fn string_to_sign(
    digest_end_time: &str,
    bucket: &str,
    key: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    let previous = previous_signature.unwrap_or("null");
    format!("{digest_end_time}\n{bucket}/{key}\n{digest_sha256_hex}\n{previous}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::verify_signature;
    use chrono::TimeZone;

    fn key() -> DigestSigningKey {
        DigestSigningKey::from_pkcs1_pem(crate::signing::tests::TEST_KEY_PEM).unwrap()
    }

    #[test]
    fn first_digest_has_null_links_and_signs_null() {
        let start = Utc.with_ymd_and_hms(2015, 8, 17, 14, 1, 31).unwrap();
        let end = Utc.with_ymd_and_hms(2015, 8, 17, 15, 1, 31).unwrap();
        let log_files = vec![DigestLogFile {
            s3_bucket: "b".into(),
            s3_object: "AWSLogs/x.json.gz".into(),
            hash_value: "00".repeat(32),
            hash_algorithm: HASH_ALGORITHM.into(),
            newest_event_time: Some("2015-08-17T14:52:27Z".into()),
            oldest_event_time: Some("2015-08-17T14:42:27Z".into()),
        }];
        let input = DigestInput {
            account: "111122223333",
            bucket: "b",
            key: "AWSLogs/d.json.gz",
            start,
            end,
            previous: None,
            log_files: &log_files,
        };
        let signing_key = key();
        let digest = build_digest(&input, signing_key.fingerprint());
        let signed = sign_digest(&digest, &signing_key);
        let value: serde_json::Value = serde_json::from_str(&signed.json).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "awsAccountId",
                "digestStartTime",
                "digestEndTime",
                "digestS3Bucket",
                "digestS3Object",
                "digestPublicKeyFingerprint",
                "digestSignatureAlgorithm",
                "newestEventTime",
                "oldestEventTime",
                "previousDigestS3Bucket",
                "previousDigestS3Object",
                "previousDigestHashValue",
                "previousDigestHashAlgorithm",
                "previousDigestSignature",
                "logFiles"
            ]
        );
        assert_eq!(value["digestStartTime"], "2015-08-17T14:01:31Z");
        assert_eq!(value["digestEndTime"], "2015-08-17T15:01:31Z");
        assert!(value["previousDigestSignature"].is_null());
        assert_eq!(value["oldestEventTime"], "2015-08-17T14:42:27Z");
        assert_eq!(
            value["logFiles"][0]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            [
                "s3Bucket",
                "s3Object",
                "hashValue",
                "hashAlgorithm",
                "newestEventTime",
                "oldestEventTime"
            ]
        );
        let message = format!(
            "2015-08-17T15:01:31Z\nb/AWSLogs/d.json.gz\n{}\nnull",
            sha256_hex(signed.json.as_bytes())
        );
        let signature = hex::decode(&signed.signature_hex).unwrap();
        assert!(verify_signature(
            signing_key.public_key_der(),
            message.as_bytes(),
            &signature
        ));
    }

    #[test]
    fn empty_digest_has_null_event_times() {
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let input = DigestInput {
            account: "111122223333",
            bucket: "b",
            key: "k",
            start: t,
            end: t,
            previous: None,
            log_files: &[],
        };
        let digest = build_digest(&input, "ff");
        assert_eq!(digest.oldest_event_time, None);
        let json = serde_json::to_string(&digest).unwrap();
        assert!(json.contains(r#""newestEventTime":null"#));
        assert!(json.ends_with(r#""logFiles":[]}"#));
    }
}
