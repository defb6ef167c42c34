//! Server-side SigV4 verification: scope and clock checks, then the signature
//! recomputed with the caller's secret and compared in constant time.

use chrono::{DateTime, Duration, Utc};
use subtle::ConstantTimeEq;

use crate::authorization::{Authorization, RequestParts};
use crate::canonical::{
    canonical_request, format_amz_date, format_scope_date, sha256_hex, signature, signing_key,
    string_to_sign, Scope, UNSIGNED_PAYLOAD, X_AMZ_CONTENT_SHA256,
};
use crate::encoding::PathOptions;
use crate::error::{AuthError, CONTENT_SHA256_MISMATCH};

/// How far the request time may be from the server's clock.
pub const MAX_CLOCK_SKEW_MINUTES: i64 = 15;

/// Verifies a request against its parsed [`Authorization`].
///
/// Checks, in order: the scope's service is `expected_service`; the scope date
/// is the date of the request time; the request time is within ±15 minutes
/// of `now`; `host` is signed; a given `x-amz-content-sha256` matches the
/// body; and finally the signature computed with `secret_access_key`.
pub fn verify(
    req: &RequestParts,
    auth: &Authorization,
    secret_access_key: &str,
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
    if !auth
        .signed_headers
        .iter()
        .any(|name| name.eq_ignore_ascii_case("host"))
    {
        return Err(AuthError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    let payload_hash = payload_hash(req.headers, req.body)?;

    let canonical = canonical_request(
        req.method,
        req.uri,
        req.headers,
        &auth.signed_headers,
        &payload_hash,
        PathOptions::for_service(expected_service),
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

/// The payload hash the client signed: `x-amz-content-sha256` when sent
/// (which must then match the body unless it is `UNSIGNED-PAYLOAD`), else the
/// SHA-256 of the body.
fn payload_hash(headers: &http::HeaderMap, body: &[u8]) -> Result<String, AuthError> {
    let body_hash = sha256_hex(body);
    let Some(claimed) = headers.get(X_AMZ_CONTENT_SHA256) else {
        return Ok(body_hash);
    };
    let claimed = String::from_utf8_lossy(claimed.as_bytes())
        .trim()
        .to_owned();
    if claimed == UNSIGNED_PAYLOAD || claimed.eq_ignore_ascii_case(&body_hash) {
        return Ok(claimed);
    }
    Err(AuthError::InvalidSignature(
        CONTENT_SHA256_MISMATCH.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(payload_hash(&headers, b"").unwrap(), sha256_hex(b""));
        headers.insert(
            X_AMZ_CONTENT_SHA256,
            http::HeaderValue::from_static(UNSIGNED_PAYLOAD),
        );
        assert_eq!(payload_hash(&headers, b"x").unwrap(), UNSIGNED_PAYLOAD);
        headers.insert(X_AMZ_CONTENT_SHA256, sha256_hex(b"x").parse().unwrap());
        assert_eq!(payload_hash(&headers, b"x").unwrap(), sha256_hex(b"x"));
        assert_eq!(
            payload_hash(&headers, b"y"),
            Err(AuthError::InvalidSignature(
                CONTENT_SHA256_MISMATCH.to_owned()
            ))
        );
    }
}
