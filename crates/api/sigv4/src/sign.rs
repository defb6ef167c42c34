//! Client-side SigV4 signing in the `Authorization` header, as the AWS SDKs
//! do it (used by the S3 client and by tests).

use chrono::{DateTime, Utc};
use http::{HeaderName, HeaderValue};

use crate::canonical::{
    canonical_request, format_amz_date, format_scope_date, sha256_hex, signature, signing_key,
    string_to_sign, Scope, ALGORITHM, UNSIGNED_PAYLOAD, X_AMZ_CONTENT_SHA256, X_AMZ_DATE,
    X_AMZ_SECURITY_TOKEN,
};
use crate::encoding::PathOptions;
use crate::error::AuthError;

/// What goes into the payload-hash line of the canonical request.
#[derive(Debug, Clone, Copy)]
pub enum PayloadHash<'a> {
    /// Hash this body.
    Body(&'a [u8]),
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// A hex SHA-256 the caller computed.
    Precomputed(&'a str),
}

impl PayloadHash<'_> {
    fn hex(&self) -> String {
        match self {
            PayloadHash::Body(body) => sha256_hex(body),
            PayloadHash::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
            PayloadHash::Precomputed(hash) => (*hash).to_owned(),
        }
    }
}

#[derive(Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: DateTime<Utc>,
    /// Sent and signed as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    /// Normalise and double-encode the path; `false` for S3, which signs the
    /// path exactly as sent.
    pub uri_double_encode: bool,
    pub payload: PayloadHash<'a>,
    /// Also send (and sign) the payload hash as `x-amz-content-sha256`, as S3 requires.
    pub set_content_sha256_header: bool,
}

impl std::fmt::Debug for SigningParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningParams")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("time", &self.time)
            .field(
                "session_token",
                &self.session_token.map(|_| "** redacted **"),
            )
            .field("uri_double_encode", &self.uri_double_encode)
            .field("payload", &self.payload)
            .field("set_content_sha256_header", &self.set_content_sha256_header)
            .finish()
    }
}

/// Headers never signed: they are computed by signing or changed in transit.
const UNSIGNED_HEADERS: [&str; 4] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
];

/// Signs a request and returns the headers to set on it (each replacing any
/// header of the same name): `authorization`, `x-amz-date`, `host` when
/// absent, `x-amz-security-token` with a session token and
/// `x-amz-content-sha256` when requested.
///
/// Every header in `headers` is signed except `authorization`, `user-agent`,
/// `x-amzn-trace-id` and `transfer-encoding`.
pub fn sign(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    params: &SigningParams,
) -> Result<Vec<(HeaderName, HeaderValue)>, AuthError> {
    let payload_hash = params.payload.hex();
    let mut added = Vec::new();
    if !headers.contains_key(http::header::HOST) {
        added.push((http::header::HOST, header_value(&host_of(uri)?)?));
    }
    added.push((
        HeaderName::from_static(X_AMZ_DATE),
        header_value(&format_amz_date(&params.time))?,
    ));
    if let Some(token) = params.session_token {
        let mut value = header_value(token)?;
        value.set_sensitive(true);
        added.push((HeaderName::from_static(X_AMZ_SECURITY_TOKEN), value));
    }
    if params.set_content_sha256_header {
        added.push((
            HeaderName::from_static(X_AMZ_CONTENT_SHA256),
            header_value(&payload_hash)?,
        ));
    }

    let mut signed = headers.clone();
    for (name, value) in &added {
        signed.insert(name.clone(), value.clone());
    }
    let mut signed_headers: Vec<String> = signed
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| !UNSIGNED_HEADERS.contains(&name.as_str()))
        .collect();
    signed_headers.sort();

    let path_options = if params.uri_double_encode {
        PathOptions::STANDARD
    } else {
        PathOptions::S3
    };
    let canonical = canonical_request(
        method,
        uri,
        &signed,
        &signed_headers,
        &payload_hash,
        path_options,
    );
    let date = format_scope_date(&params.time);
    let scope = Scope {
        date: &date,
        region: params.region,
        service: params.service,
    };
    let to_sign = string_to_sign(&params.time, &scope, &canonical);
    let signature = signature(&signing_key(params.secret_access_key, &scope), &to_sign);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        params.access_key_id,
        signed_headers.join(";")
    );
    let mut authorization = header_value(&authorization)?;
    authorization.set_sensitive(true);
    added.push((http::header::AUTHORIZATION, authorization));
    Ok(added)
}

fn host_of(uri: &http::Uri) -> Result<String, AuthError> {
    let host = uri.host().ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "cannot sign request to {uri}: no host header and no host in the uri"
        ))
    })?;
    Ok(match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

fn header_value(value: &str) -> Result<HeaderValue, AuthError> {
    HeaderValue::from_str(value).map_err(|_| {
        AuthError::IncompleteSignature(
            "cannot sign request: a signing input is not a valid header value".to_owned(),
        )
    })
}
