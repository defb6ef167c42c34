//! One CloudTrail log file: `{"Records":[...]}\n` of the records' original bytes,
//! gzipped as a single member, plus what a digest says about it.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use opentrail_model::{write_log_file, EventRecord};
use sha2::{Digest, Sha256};

/// The gzip level of log files. zlib-rs at level 5 compresses CloudTrail records about
/// 1 % smaller than `gzip -6` (zlib's default, what CloudTrail's files compare with) and
/// a fifth faster than its own level 6 (`opentrail-delivery-bench` compares with `gzip -6`).
pub const GZIP_LEVEL: u32 = 5;

/// A log file ready to be written, and its digest facts.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// One gzip member holding the uncompressed file.
    pub gzip: Bytes,
    pub uncompressed_len: usize,
    /// Hex SHA-256 of the *uncompressed* file: validate-logs inflates a log file and
    /// hashes the result, so this is the digest's `hashValue`.
    pub sha256_hex: String,
    pub record_count: usize,
    pub oldest_event_time: Option<DateTime<Utc>>,
    pub newest_event_time: Option<DateTime<Utc>>,
}

/// Builds the file for `records`, in their order.
pub fn build_log_file(records: &[EventRecord]) -> LogFile {
    build_log_file_timed(records).0
}

/// [`build_log_file`] and the CPU time spent compressing.
pub(crate) fn build_log_file_timed(records: &[EventRecord]) -> (LogFile, Duration) {
    let uncompressed = write_log_file(records);
    let times = records.iter().filter_map(EventRecord::event_time);
    let (oldest, newest) = times.fold((None, None), |(oldest, newest), time| {
        (
            Some(oldest.map_or(time, |o: DateTime<Utc>| o.min(time))),
            Some(newest.map_or(time, |n: DateTime<Utc>| n.max(time))),
        )
    });
    let (gzip, gzip_time) = crate::cpu_time::measure(|| gzip_single_member(&uncompressed));
    let gzip = Bytes::from(gzip);
    let file = LogFile {
        gzip,
        uncompressed_len: uncompressed.len(),
        sha256_hex: sha256_hex(&uncompressed),
        record_count: records.len(),
        oldest_event_time: oldest,
        newest_event_time: newest,
    };
    (file, gzip_time)
}

/// `data` as one gzip member at [`GZIP_LEVEL`].
pub fn gzip_single_member(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 8 + 64),
        Compression::new(GZIP_LEVEL),
    );
    // Writing into a Vec cannot fail.
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// Why gzip bytes are not one valid member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GunzipError {
    #[error("not valid gzip: {0}")]
    Invalid(String),
    /// validate-logs refuses a file with bytes after its first member.
    #[error("unexpected data after end of compressed stream")]
    TrailingData,
}

/// Inflates exactly one gzip member, as validate-logs does (`zlib.decompressobj(MAX_WBITS | 16)`),
/// refusing anything after it.
pub fn gunzip_single_member(gzip: &[u8]) -> Result<Vec<u8>, GunzipError> {
    let mut decoder = flate2::bufread::GzDecoder::new(gzip);
    let mut out = Vec::with_capacity(gzip.len() * 8);
    decoder
        .read_to_end(&mut out)
        .map_err(|error| GunzipError::Invalid(error.to_string()))?;
    if !decoder.into_inner().is_empty() {
        return Err(GunzipError::TrailingData);
    }
    Ok(out)
}

/// The lower-case hex SHA-256 of the content of exactly one gzip member, inflated in
/// pieces straight into the hash (what validate-logs compares with a digest's `hashValue`).
pub fn gunzip_sha256_hex(gzip: &[u8]) -> Result<String, GunzipError> {
    let mut decoder = flate2::bufread::GzDecoder::new(gzip);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = decoder
            .read(&mut buffer)
            .map_err(|error| GunzipError::Invalid(error.to_string()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    if !decoder.into_inner().is_empty() {
        return Err(GunzipError::TrailingData);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: &str, id: &str) -> EventRecord {
        EventRecord::from_json(&format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"Root","accountId":"123456789012"}},"eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.1","userAgent":"test","requestParameters":null,"responseElements":null,"eventID":"{id}","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#
        ))
        .expect("valid record")
    }

    #[test]
    fn file_is_one_member_of_the_exact_records() {
        let records = vec![
            record(
                "2024-05-07T09:03:59Z",
                "11111111-1111-1111-1111-111111111111",
            ),
            record(
                "2024-05-07T09:01:00Z",
                "22222222-2222-2222-2222-222222222222",
            ),
        ];
        let file = build_log_file(&records);
        let inflated = gunzip_single_member(&file.gzip).unwrap();
        assert_eq!(inflated, write_log_file(&records));
        assert_eq!(inflated.len(), file.uncompressed_len);
        assert!(inflated.ends_with(b"]}\n"));
        assert_eq!(file.sha256_hex, sha256_hex(&inflated));
        assert_eq!(gunzip_sha256_hex(&file.gzip).as_ref(), Ok(&file.sha256_hex));
        assert_eq!(file.record_count, 2);
        assert_eq!(
            file.oldest_event_time
                .map(opentrail_model::iso8601)
                .as_deref(),
            Some("2024-05-07T09:01:00Z")
        );
        assert_eq!(
            file.newest_event_time
                .map(opentrail_model::iso8601)
                .as_deref(),
            Some("2024-05-07T09:03:59Z")
        );
        assert_eq!(&file.gzip[..3], &[0x1f, 0x8b, 8], "gzip magic and deflate");
    }

    #[test]
    fn a_second_member_is_trailing_data() {
        let mut two = gzip_single_member(b"one");
        two.extend(gzip_single_member(b"two"));
        assert_eq!(gunzip_single_member(&two), Err(GunzipError::TrailingData));
        assert_eq!(gunzip_sha256_hex(&two), Err(GunzipError::TrailingData));
        assert!(matches!(
            gunzip_sha256_hex(b"not gzip"),
            Err(GunzipError::Invalid(_))
        ));
        assert!(matches!(
            gunzip_single_member(b"not gzip"),
            Err(GunzipError::Invalid(_))
        ));
    }

    #[test]
    fn empty_file_still_has_the_envelope() {
        let file = build_log_file(&[]);
        assert_eq!(
            gunzip_single_member(&file.gzip).unwrap(),
            b"{\"Records\":[]}\n"
        );
        assert_eq!(file.oldest_event_time, None);
    }
}
