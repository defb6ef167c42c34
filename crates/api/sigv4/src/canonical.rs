//! The canonical request and string to sign of SigV4, and the HMAC chain that
//! turns a secret key and a string to sign into a signature.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::encoding::{canonical_query, canonical_uri, PathOptions};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const SCOPE_TERMINATOR: &str = "aws4_request";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub(crate) const X_AMZ_DATE: &str = "x-amz-date";
pub(crate) const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
pub(crate) const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";

/// The `date/region/service` a signature is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// `YYYYMMDD`.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl std::fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{SCOPE_TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// `YYYYMMDDTHHMMSSZ`, the X-Amz-Date format.
pub fn format_amz_date(time: &DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `YYYYMMDD`, the date of a credential scope.
pub fn format_scope_date(time: &DateTime<Utc>) -> String {
    time.format("%Y%m%d").to_string()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Trims leading and trailing spaces and collapses inner runs of spaces, as
/// SigV4 (and S3, which only considers the space character) requires.
fn trim_all(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(' ').filter(|word| !word.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The canonical value of one signed header: every occurrence trimmed and
/// joined with `,` in the order received. A signed `host` missing from the
/// map (HTTP/2 carries it as `:authority`) falls back to the URI authority.
fn canonical_header_value(name: &str, uri: &http::Uri, headers: &http::HeaderMap) -> String {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| trim_all(&String::from_utf8_lossy(value.as_bytes())))
        .collect();
    if values.is_empty() && name == "host" {
        if let Some(authority) = uri.authority() {
            return authority.as_str().to_owned();
        }
    }
    values.join(",")
}

/// The SigV4 canonical request.
///
/// `signed_headers` are lower-case names; they are sorted here. Header values
/// that are not UTF-8 are read lossily (no AWS client signs such values).
pub fn canonical_request(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
    path: PathOptions,
) -> String {
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();

    let mut out = String::new();
    out.push_str(method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(uri.path(), path));
    out.push('\n');
    out.push_str(&canonical_query(uri.query().unwrap_or("")));
    out.push('\n');
    for name in &names {
        out.push_str(name);
        out.push(':');
        out.push_str(&canonical_header_value(name, uri, headers));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The SigV4 string to sign.
pub fn string_to_sign(
    request_time: &DateTime<Utc>,
    scope: &Scope,
    canonical_request: &str,
) -> String {
    format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        format_amz_date(request_time),
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of every length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret_access_key: &str, scope: &Scope) -> [u8; 32] {
    let date_key = hmac_sha256(
        format!("AWS4{secret_access_key}").as_bytes(),
        scope.date.as_bytes(),
    );
    let region_key = hmac_sha256(&date_key, scope.region.as_bytes());
    let service_key = hmac_sha256(&region_key, scope.service.as_bytes());
    hmac_sha256(&service_key, SCOPE_TERMINATOR.as_bytes())
}

/// Lower-case hex HMAC of the string to sign.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_collapses_spaces_only() {
        assert_eq!(trim_all("  a   b  c "), "a b c");
        assert_eq!(trim_all("\"a   b   c\""), "\"a b c\"");
        assert_eq!(trim_all("a\tb"), "a\tb");
        assert_eq!(trim_all("   "), "");
    }

    #[test]
    fn joins_duplicate_headers_in_order() {
        let mut headers = http::HeaderMap::new();
        headers.append("my-header1", http::HeaderValue::from_static("value4"));
        headers.append("my-header1", http::HeaderValue::from_static(" value1 "));
        let uri: http::Uri = "/".parse().unwrap();
        assert_eq!(
            canonical_header_value("my-header1", &uri, &headers),
            "value4,value1"
        );
    }

    #[test]
    fn host_falls_back_to_authority() {
        let uri: http::Uri = "https://example.com:8443/x".parse().unwrap();
        let headers = http::HeaderMap::new();
        assert_eq!(
            canonical_header_value("host", &uri, &headers),
            "example.com:8443"
        );
    }

    #[test]
    fn aws_documentation_signing_key() {
        // Example from the AWS SigV4 documentation (IAM service, 2015-08-30).
        let scope = Scope {
            date: "20150830",
            region: "us-east-1",
            service: "iam",
        };
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &scope);
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }
}
