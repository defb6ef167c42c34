//! `opentrail import --validate-digests`: checks every log file a digest of the source
//! lists against the source's copy (SHA-256 of the inflated file, the digest's `hashValue`).
//! Digest signatures are not checked: that needs the signer's public keys.

use super::layout::layout_tail;
use super::source::Source;
use anyhow::Context;
use opentrail_delivery::digest::DigestFile;
use opentrail_delivery::log_file::{gunzip_sha256_hex, gunzip_single_member, sha256_hex};
use std::collections::HashMap;

/// What the digests said about the source's log files.
#[derive(Debug, Default)]
pub struct DigestCheck {
    pub digests: usize,
    /// Log file entries in the digests.
    pub listed: usize,
    pub valid: usize,
    /// One line per problem: a digest that could not be read, a listed file missing from
    /// the source or whose hash differs.
    pub problems: Vec<String>,
}

fn inflate(name: &str, raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    if !name.ends_with(".gz") {
        return Ok(raw.to_vec());
    }
    Ok(gunzip_single_member(raw)?)
}

/// Hex SHA-256 of the file's content, inflated when gzipped (as validate-logs hashes it).
fn content_sha256(name: &str, raw: &[u8]) -> anyhow::Result<String> {
    if !name.ends_with(".gz") {
        return Ok(sha256_hex(raw));
    }
    Ok(gunzip_sha256_hex(raw)?)
}

/// Reads the digests at `digests` (indices into `names`) and checks the log files they list.
pub async fn check_digests(source: &Source, names: &[String], digests: &[usize]) -> DigestCheck {
    // A digest names the bucket key; the source may hold the tree under another prefix.
    let by_tail: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .filter_map(|(index, name)| layout_tail(name).map(|tail| (tail, index)))
        .collect();
    let mut check = DigestCheck::default();
    for &index in digests {
        let digest_name = &names[index];
        check.digests += 1;
        let digest = match read_digest(source, index, digest_name).await {
            Ok(digest) => digest,
            Err(error) => {
                check
                    .problems
                    .push(format!("digest {digest_name}: INVALID: {error:#}"));
                continue;
            }
        };
        for listed in &digest.log_files {
            check.listed += 1;
            let key = format!("s3://{}/{}", listed.s3_bucket, listed.s3_object);
            let Some(&log_index) = layout_tail(&listed.s3_object).and_then(|t| by_tail.get(t))
            else {
                check.problems.push(format!(
                    "log file {key} (listed in {digest_name}): INVALID: not found"
                ));
                continue;
            };
            let log_name = &names[log_index];
            let hashed = match source.read(log_index).await {
                Ok(raw) => {
                    let name = log_name.clone();
                    tokio::task::spawn_blocking(move || content_sha256(&name, &raw))
                        .await
                        .map_err(anyhow::Error::from)
                        .and_then(|hash| hash)
                }
                Err(error) => Err(error),
            };
            match hashed {
                Ok(hash) if hash.eq_ignore_ascii_case(&listed.hash_value) => check.valid += 1,
                Ok(_) => check.problems.push(format!(
                    "log file {log_name} (listed in {digest_name}): INVALID: hash value doesn't match"
                )),
                Err(error) => check.problems.push(format!(
                    "log file {log_name} (listed in {digest_name}): INVALID: {error:#}"
                )),
            }
        }
    }
    check
}

async fn read_digest(source: &Source, index: usize, name: &str) -> anyhow::Result<DigestFile> {
    let raw = source.read(index).await?;
    let json = inflate(name, &raw)?;
    serde_json::from_slice(&json).context("not a CloudTrail digest file")
}
