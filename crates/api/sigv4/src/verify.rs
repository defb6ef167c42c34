//! Server-side SigV4 verification: scope and clock checks, then the signature
//! recomputed with the caller's secret and compared in constant time.

use chrono::{DateTime, Duration, Utc};
use subtle::ConstantTimeEq;

use crate::authorization::{Authorization, RequestParts};
use crate::canonical::{
    canonical_request, format_amz_date, format_scope_date, sha256_hex, signature, signing_key,
    string_to_sign, Scope, X_AMZ_CONTENT_SHA256,
};
use crate::encoding::PathOptions;
use crate::error::{AuthError, CONTENT_SHA256_MISMATCH, HEADERS_NOT_SIGNED};

/// How far the request time may be from the server's clock.
pub const MAX_CLOCK_SKEW_MINUTES: i64 = 15;

/// Verifies a request against its parsed [`Authorization`].
///
/// Checks, in order, everything [`check_headers`] checks; then that a given
/// `x-amz-content-sha256` that is a SHA-256 matches the body; and finally the
/// signature computed with `secret_access_key` over a canonical request whose
/// payload hash is the SHA-256 of the body received. As for every AWS service
/// but S3, the payload is always signed: a signature computed over
/// `UNSIGNED-PAYLOAD` or a `STREAMING-*` payload does not match.
pub fn verify(
    req: &RequestParts,
    auth: &Authorization,
    secret_access_key: &str,
    expected_service: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    check_headers(req.headers, auth, expected_service, now)?;
    let body_hash = sha256_hex(req.body);
    check_payload(req.headers, &body_hash)?;
    verify_signature(
        req.method,
        req.uri,
        req.headers,
        auth,
        secret_access_key,
        &body_hash,
    )
}

/// What can be checked before the body and the secret key are known: the
/// scope's service is `expected_service`; the scope date is the date of the
/// request time; the request time is within ±15 minutes of `now`; `host` is
/// signed; and every `x-amz-*` header sent is signed (except
/// `x-amz-content-sha256`, whose value the signature covers anyway as the
/// payload hash).
pub fn check_headers(
    headers: &http::HeaderMap,
    auth: &Authorization,
    expected_service: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    if auth.service != expected_service {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{expected_service}'. "
        )));
    }
    check_scope_date(auth)?;
    check_clock_skew(&auth.request_time, &now)?;
    let signed = |name: &str| {
        auth.signed_headers
            .iter()
            .any(|signed| signed.eq_ignore_ascii_case(name))
    };
    if !signed("host") {
        return Err(AuthError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    let mut unsigned: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && *name != X_AMZ_CONTENT_SHA256)
        .filter(|name| !signed(name))
        .collect();
    if !unsigned.is_empty() {
        unsigned.sort_unstable();
        unsigned.dedup();
        return Err(AuthError::IncompleteSignature(format!(
            "{HEADERS_NOT_SIGNED}: {}",
            unsigned.join(", ")
        )));
    }
    Ok(())
}

/// The payload hash `x-amz-content-sha256` announces, lower-cased, when it is
/// a SHA-256 (64 hex digits): the signature can then be verified before the
/// body arrives, and the body checked against it with [`check_payload`].
/// `None` without the header or for any other value (`UNSIGNED-PAYLOAD`,
/// `STREAMING-*`), which the signature never covers.
pub fn claimed_payload_hash(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(X_AMZ_CONTENT_SHA256)?.to_str().ok()?.trim();
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

/// Checks that the body's SHA-256 is the one `x-amz-content-sha256`
/// announces, when it announces one.
pub fn check_payload(headers: &http::HeaderMap, body_hash: &str) -> Result<(), AuthError> {
    match claimed_payload_hash(headers) {
        Some(claimed) if !claimed.eq_ignore_ascii_case(body_hash) => Err(
            AuthError::InvalidSignature(CONTENT_SHA256_MISMATCH.to_owned()),
        ),
        _ => Ok(()),
    }
}

/// Recomputes the signature with `secret_access_key` over a canonical request
/// with `payload_hash` and compares it in constant time. `payload_hash` must be
/// the SHA-256 of the body received, or the one [`claimed_payload_hash`]
/// announces when the body is checked against it with [`check_payload`].
pub fn verify_signature(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    auth: &Authorization,
    secret_access_key: &str,
    payload_hash: &str,
) -> Result<(), AuthError> {
    let canonical = canonical_request(
        method,
        uri,
        headers,
        &auth.signed_headers,
        payload_hash,
        PathOptions::for_service(&auth.service),
    );
    let scope = Scope {
        date: &auth.date,
        region: &auth.region,
        service: &auth.service,
    };
    let to_sign = string_to_sign(&auth.request_time, &scope, &canonical);
    let expected = signature(&signing_key(secret_access_key, &scope), &to_sign);
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::signature_does_not_match())
    }
}

fn check_scope_date(auth: &Authorization) -> Result<(), AuthError> {
    let request_date = format_scope_date(&auth.request_time);
    if auth.date == request_date {
        return Ok(());
    }
    Err(AuthError::InvalidSignature(format!(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{request_date}', from '{}'.",
        auth.date,
        format_amz_date(&auth.request_time)
    )))
}

fn check_clock_skew(request_time: &DateTime<Utc>, now: &DateTime<Utc>) -> Result<(), AuthError> {
    let skew = Duration::minutes(MAX_CLOCK_SKEW_MINUTES);
    let earliest = *now - skew;
    if *request_time < earliest {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - {MAX_CLOCK_SKEW_MINUTES} min.)",
            format_amz_date(request_time),
            format_amz_date(&earliest),
            format_amz_date(now)
        )));
    }
    let latest = *now + skew;
    if *request_time > latest {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + {MAX_CLOCK_SKEW_MINUTES} min.)",
            format_amz_date(request_time),
            format_amz_date(&latest),
            format_amz_date(now)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::UNSIGNED_PAYLOAD;
    use chrono::TimeZone;

    fn at(text: &str) -> DateTime<Utc> {
        crate::authorization::parse_amz_date(text).unwrap()
    }

    #[test]
    fn expired_message_matches_aws() {
        let err = check_clock_skew(&at("20240101T000000Z"), &at("20240101T002500Z")).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature expired: 20240101T000000Z is now earlier than 20240101T001000Z (20240101T002500Z - 15 min.)"
        );
    }

    #[test]
    fn future_message_matches_aws() {
        let err = check_clock_skew(&at("20240101T004000Z"), &at("20240101T002000Z")).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature not yet current: 20240101T004000Z is still later than 20240101T003500Z (20240101T002000Z + 15 min.)"
        );
    }

    #[test]
    fn skew_limits_are_inclusive() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        assert!(check_clock_skew(&(now - Duration::minutes(15)), &now).is_ok());
        assert!(check_clock_skew(&(now + Duration::minutes(15)), &now).is_ok());
        assert!(check_clock_skew(&(now - Duration::seconds(15 * 60 + 1)), &now).is_err());
        assert!(check_clock_skew(&(now + Duration::seconds(15 * 60 + 1)), &now).is_err());
    }

    #[test]
    fn claimed_payload_hash_must_match_body() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(claimed_payload_hash(&headers), None);
        assert_eq!(check_payload(&headers, &sha256_hex(b"x")), Ok(()));
        for value in [
            UNSIGNED_PAYLOAD,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        ] {
            headers.insert(X_AMZ_CONTENT_SHA256, http::HeaderValue::from_static(value));
            assert_eq!(claimed_payload_hash(&headers), None, "{value}");
        }
        headers.insert(
            X_AMZ_CONTENT_SHA256,
            sha256_hex(b"x").to_uppercase().parse().unwrap(),
        );
        assert_eq!(claimed_payload_hash(&headers), Some(sha256_hex(b"x")));
        assert_eq!(check_payload(&headers, &sha256_hex(b"x")), Ok(()));
        assert_eq!(
            check_payload(&headers, &sha256_hex(b"y")),
            Err(AuthError::InvalidSignature(
                CONTENT_SHA256_MISMATCH.to_owned()
            ))
        );
    }

    #[test]
    fn every_x_amz_header_but_the_payload_hash_must_be_signed() {
        let now = at("20240101T000000Z");
        let auth = Authorization {
            access_key_id: "K".into(),
            date: "20240101".into(),
            region: "us-east-1".into(),
            service: "cloudtrail".into(),
            signed_headers: vec!["host".into(), "x-amz-date".into()],
            signature: "00".into(),
            request_time: now,
        };
        let mut headers = http::HeaderMap::new();
        headers.insert("x-amz-date", "20240101T000000Z".parse().unwrap());
        headers.insert(X_AMZ_CONTENT_SHA256, sha256_hex(b"").parse().unwrap());
        headers.insert("x-amzn-trace-id", "Root=1".parse().unwrap());
        assert_eq!(check_headers(&headers, &auth, "cloudtrail", now), Ok(()));
        headers.insert(
            "x-amz-target",
            "CloudTrail_20131101.DeleteTrail".parse().unwrap(),
        );
        headers.insert("x-amz-meta", "1".parse().unwrap());
        assert_eq!(
            check_headers(&headers, &auth, "cloudtrail", now),
            Err(AuthError::IncompleteSignature(
                "There were headers present in the request which were not signed: x-amz-meta, x-amz-target".into()
            ))
        );
    }
}
