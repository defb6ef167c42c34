//! Delivering a FINISHED query's results to S3 (`StartQuery(DeliveryS3Uri=…)`), as
//! CloudTrail Lake does: gzipped CSV files `result_<N>.csv.gz` and a `result_sign.json`
//! signed with the region's key (the one `ListPublicKeys` serves), under
//! `[<prefix>/]AWSLogs/<account>/CloudTrail-Lake/Query/YYYY/MM/DD/<query-id>/`. The files
//! go up first and the sign file last, so a sign file names only files that are there;
//! `aws cloudtrail verify-query-results` checks the hashes and the signature.

use crate::QueryError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use opentrail_model::{AccountId, Region};
use opentrail_objstore::{ObjectStore, StoreError};
use opentrail_operations::DeliveryStatus;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::io::Write;
use std::sync::Arc;

/// The sign file's name, beside the result files.
pub const SIGN_FILE_NAME: &str = "result_sign.json";
/// A result file is closed once its CSV text reaches this many bytes (before
/// compression), and the next one begins with the header again. AWS does not document
/// its split; OpenTrail's choice.
pub const DEFAULT_RESULT_FILE_BYTES: usize = 128 * 1024 * 1024;
/// The longest `DeliveryS3Uri` (the model's limit).
const MAX_URI_CHARS: usize = 1024;

/// A signature of the region's current signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `SHA256withRSA` (PKCS#1 v1.5 over SHA-256) of the message.
    pub bytes: Vec<u8>,
    /// Hex MD5 of the DER public key, as `ListPublicKeys` lists it.
    pub fingerprint: String,
}

/// Signs sign files with the key `ListPublicKeys` publishes for a region (the server
/// wires the delivery worker's key store, which also signs digests).
pub trait ResultSigner: Send + Sync {
    /// Signs `message` with `region`'s key valid at `at`. Blocking (may generate a key).
    fn sign(&self, region: &Region, at: DateTime<Utc>, message: &[u8])
        -> Result<Signature, String>;
}

/// Where results go: the object store trails deliver to, and the signer.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub(crate) buckets: Arc<dyn ObjectStore>,
    pub(crate) signer: Arc<dyn ResultSigner>,
    pub(crate) file_bytes: usize,
}

/// A parsed `DeliveryS3Uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl Destination {
    /// `s3://bucket[/prefix]`, checked as AWS does: a malformed bucket name is
    /// `InvalidS3BucketNameException`, a malformed prefix `InvalidS3PrefixException`.
    pub fn parse(uri: &str) -> Result<Self, QueryError> {
        let length = uri.chars().count();
        if length > MAX_URI_CHARS {
            return Err(QueryError::InvalidParameter(format!(
                "DeliveryS3Uri must be at most {MAX_URI_CHARS} characters long, got {length}"
            )));
        }
        let Some(rest) = uri.strip_prefix("s3://") else {
            return Err(QueryError::InvalidParameter(format!(
                "DeliveryS3Uri {uri} is not an S3 URI: it must look like s3://bucket[/prefix]"
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        opentrail_objstore::validate_bucket_name(bucket).map_err(|why| {
            QueryError::InvalidS3BucketName(format!(
                "DeliveryS3Uri names the invalid bucket name {bucket:?}: {why}"
            ))
        })?;
        let prefix = prefix.trim_end_matches('/');
        if prefix.starts_with('/') || prefix.contains("//") {
            return Err(QueryError::InvalidS3Prefix(format!(
                "DeliveryS3Uri {uri} has an invalid prefix {prefix:?}: it may not contain empty path segments"
            )));
        }
        if prefix.chars().any(char::is_control) {
            return Err(QueryError::InvalidS3Prefix(format!(
                "DeliveryS3Uri {uri} has an invalid prefix: it may not contain control characters"
            )));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The folder (ending in `/`) the files of `query_id`, completed at `completed`, go in.
    pub fn folder(&self, account: &AccountId, query_id: &str, completed: DateTime<Utc>) -> String {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        format!(
            "{prefix}AWSLogs/{account}/CloudTrail-Lake/Query/{}/{query_id}/",
            completed.format("%Y/%m/%d")
        )
    }
}

/// One gzipped CSV result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFile {
    pub name: String,
    pub gzipped: Vec<u8>,
}

/// The result as CSV (a header of the column names, then one line per row; NULL is the
/// empty field), gzipped, in files of about `file_bytes` of CSV each. An empty result is
/// one file with the header only.
pub fn result_files(
    columns: &[String],
    rows: &[Vec<Option<String>>],
    file_bytes: usize,
) -> Result<Vec<ResultFile>, QueryError> {
    let header = csv_line(columns.iter().map(String::as_str))?;
    let mut texts: Vec<Vec<u8>> = Vec::new();
    let mut current = header.clone();
    for row in rows {
        let text = csv_line(row.iter().map(|value| value.as_deref().unwrap_or("")))?;
        if current.len() > header.len() && current.len() + text.len() > file_bytes.max(1) {
            texts.push(std::mem::replace(&mut current, header.clone()));
        }
        current.extend_from_slice(&text);
    }
    texts.push(current);
    texts
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&text).map_err(|e| csv_error(&e))?;
            Ok(ResultFile {
                name: format!("result_{}.csv.gz", index + 1),
                gzipped: encoder.finish().map_err(|e| csv_error(&e))?,
            })
        })
        .collect()
}

fn csv_error(e: &dyn std::fmt::Display) -> QueryError {
    QueryError::Internal(format!("failed to write query results as CSV: {e}"))
}

/// One CSV record with its CRLF.
fn csv_line<'a>(fields: impl IntoIterator<Item = &'a str>) -> Result<Vec<u8>, QueryError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(fields).map_err(|e| csv_error(&e))?;
    writer.into_inner().map_err(|e| csv_error(&e))
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `queryCompleteTime` as CloudTrail writes it: `YYYY-MM-DD HH:MM:SS.mmm`, UTC.
pub fn complete_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// The string the sign file's `hashSignature` signs: the files' hashes, in the order the
/// sign file lists them, joined by single spaces.
pub fn string_to_sign(files: &[ResultFile]) -> String {
    files
        .iter()
        .map(|file| sha256_hex(&file.gzipped))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `result_sign.json` for `files`.
pub fn sign_file(
    region: &Region,
    files: &[ResultFile],
    completed: DateTime<Utc>,
    signature: &Signature,
) -> serde_json::Value {
    serde_json::json!({
        "version": "1.0",
        "region": region.as_str(),
        "files": files
            .iter()
            .map(|file| serde_json::json!({
                "fileHashValue": sha256_hex(&file.gzipped),
                "fileName": file.name,
            }))
            .collect::<Vec<_>>(),
        "hashAlgorithm": "SHA-256",
        "signatureAlgorithm": "SHA256withRSA",
        "queryCompleteTime": complete_time(completed),
        "hashSignature": hex::encode(&signature.bytes),
        "publicKeyFingerprint": signature.fingerprint,
    })
}

/// The DeliveryStatus a failed write of a result file comes to.
fn write_failure(error: &StoreError) -> DeliveryStatus {
    match error {
        StoreError::NoSuchBucket(_) => DeliveryStatus::ResourceNotFound,
        StoreError::AccessDenied(_) => DeliveryStatus::AccessDenied,
        _ => DeliveryStatus::Failed,
    }
}

/// What the delivery of a query's results needs to know about it.
pub(crate) struct Shipment<'a> {
    pub(crate) account: &'a AccountId,
    pub(crate) region: &'a Region,
    pub(crate) query_id: &'a str,
    pub(crate) completed: DateTime<Utc>,
    pub(crate) destination: &'a Destination,
}

impl Delivery {
    /// Writes the result files, then the sign file; returns the DeliveryStatus reached.
    pub(crate) async fn deliver(
        &self,
        shipment: Shipment<'_>,
        files: Vec<ResultFile>,
    ) -> DeliveryStatus {
        let Shipment {
            account,
            region,
            query_id,
            completed,
            destination,
        } = shipment;
        let folder = destination.folder(account, query_id, completed);
        let bucket = &destination.bucket;
        for file in &files {
            let key = format!("{folder}{}", file.name);
            let body = Bytes::from(file.gzipped.clone());
            if let Err(error) = self.buckets.put_object(bucket, &key, body, &[]).await {
                tracing::warn!(query = query_id, bucket, key, %error, "failed to deliver a query result file");
                return write_failure(&error);
            }
        }
        let message = string_to_sign(&files);
        let signer = Arc::clone(&self.signer);
        let signed = {
            let region = region.clone();
            tokio::task::spawn_blocking(move || signer.sign(&region, completed, message.as_bytes()))
                .await
                .map_err(|e| e.to_string())
                .and_then(|signed| signed)
        };
        let signature = match signed {
            Ok(signature) => signature,
            Err(error) => {
                tracing::warn!(query = query_id, %error, "failed to sign query results");
                return DeliveryStatus::FailedSigningFile;
            }
        };
        let sign = sign_file(region, &files, completed, &signature);
        let body = Bytes::from(serde_json::to_vec_pretty(&sign).unwrap_or_default());
        let key = format!("{folder}{SIGN_FILE_NAME}");
        match self.buckets.put_object(bucket, &key, body, &[]).await {
            Ok(()) => DeliveryStatus::Success,
            Err(error) => {
                tracing::warn!(query = query_id, bucket, key, %error, "failed to deliver a query's sign file");
                match error {
                    StoreError::AccessDenied(_) => DeliveryStatus::AccessDeniedSigningFile,
                    _ => DeliveryStatus::FailedSigningFile,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn uris_parse_into_bucket_and_prefix() {
        let parse = |uri: &str| Destination::parse(uri).map(|d| (d.bucket, d.prefix));
        assert_eq!(parse("s3://my-bucket"), Ok(("my-bucket".into(), "".into())));
        assert_eq!(
            parse("s3://my-bucket/"),
            Ok(("my-bucket".into(), "".into()))
        );
        assert_eq!(
            parse("s3://my-bucket/a/b/"),
            Ok(("my-bucket".into(), "a/b".into()))
        );
        assert!(matches!(
            parse("https://my-bucket/a"),
            Err(QueryError::InvalidParameter(_))
        ));
        assert!(matches!(
            parse("s3://My_Bucket/a"),
            Err(QueryError::InvalidS3BucketName(_))
        ));
        assert!(matches!(
            parse("s3://my-bucket/a//b"),
            Err(QueryError::InvalidS3Prefix(_))
        ));
    }

    #[test]
    fn the_folder_follows_the_cloudtrail_layout() {
        let destination = Destination::parse("s3://b-1/exports").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.089Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            destination.folder(&AccountId::parse("111122223333").unwrap(), "q-1", at),
            "exports/AWSLogs/111122223333/CloudTrail-Lake/Query/2026/03/04/q-1/"
        );
        assert_eq!(complete_time(at), "2026-03-04 05:06:07.089");
    }

    #[test]
    fn results_are_csv_with_a_header_split_across_files() {
        let columns = vec!["eventName".to_owned(), "note".to_owned()];
        let rows: Vec<Vec<Option<String>>> = (0..5)
            .map(|i| vec![Some(format!("Event{i}")), Some("a, \"b\"".to_owned())])
            .chain([vec![Some("Last".to_owned()), None]])
            .collect();
        let one = result_files(&columns, &rows, DEFAULT_RESULT_FILE_BYTES).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, "result_1.csv.gz");
        let text = gunzip(&one[0].gzipped);
        assert!(text.starts_with("eventName,note\r\nEvent0,\"a, \"\"b\"\"\"\r\n"));
        assert!(text.ends_with("Last,\r\n"));

        let split = result_files(&columns, &rows, 40).unwrap();
        assert!(split.len() > 1);
        let mut lines = Vec::new();
        for (index, file) in split.iter().enumerate() {
            assert_eq!(file.name, format!("result_{}.csv.gz", index + 1));
            let text = gunzip(&file.gzipped);
            let mut file_lines = text.split_terminator("\r\n");
            assert_eq!(file_lines.next(), Some("eventName,note"));
            lines.extend(file_lines.map(str::to_owned));
        }
        assert_eq!(lines.len(), rows.len());
    }

    #[test]
    fn an_empty_result_is_a_header() {
        let files = result_files(&["a".to_owned()], &[], 10).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(gunzip(&files[0].gzipped), "a\r\n");
    }

    #[test]
    fn the_sign_file_signs_the_hashes_joined_by_spaces() {
        let files = result_files(&["a".to_owned()], &[vec![Some("1".into())]], 1).unwrap();
        let message = string_to_sign(&files);
        assert_eq!(message, sha256_hex(&files[0].gzipped));
        let signature = Signature {
            bytes: vec![0xab, 0x01],
            fingerprint: "f".into(),
        };
        let at = Utc::now();
        let sign = sign_file(&Region::parse("us-east-1").unwrap(), &files, at, &signature);
        assert_eq!(sign["hashSignature"], "ab01");
        assert_eq!(sign["files"][0]["fileName"], "result_1.csv.gz");
        assert_eq!(sign["files"][0]["fileHashValue"], message.as_str());
        assert_eq!(sign["signatureAlgorithm"], "SHA256withRSA");
        assert_eq!(sign["hashAlgorithm"], "SHA-256");
        assert_eq!(sign["version"], "1.0");
        assert_eq!(sign["region"], "us-east-1");
    }
}
