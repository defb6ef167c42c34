//! Tamper checks run on every real client request: a correctly signed request
//! must verify, and every change to a signed part must be rejected with the
//! error AWS gives; changes to unsigned parts must not matter.

use chrono::{DateTime, Duration, Utc};
use opentrail_sigv4::{format_amz_date, parse_authorization, verify, AuthError};

use super::RawRequest;

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

fn verdict(
    request: &RawRequest,
    secret: &str,
    service: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let auth = parse_authorization(&request.parts())?;
    verify(&request.parts(), &auth, secret, service, now)
}

fn set_header(request: &mut RawRequest, name: &str, value: &str) {
    request.headers.insert(
        http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
        http::HeaderValue::from_str(value).expect("value"),
    );
}

fn header(request: &RawRequest, name: &str) -> String {
    request.headers[name].to_str().expect("ascii").to_owned()
}

fn mismatch() -> Result<(), AuthError> {
    Err(AuthError::InvalidSignature(MISMATCH.to_owned()))
}

fn content_sha256_mismatch() -> Result<(), AuthError> {
    Err(AuthError::InvalidSignature(
        "The provided 'x-amz-content-sha256' header does not match what was computed.".to_owned(),
    ))
}

/// Runs every tamper check; `request` must be a correctly signed request.
pub fn check_all(request: &RawRequest, secret: &str, service: &str) {
    let auth = parse_authorization(&request.parts()).expect("authorization");
    let signed_at = auth.request_time;
    let now = signed_at + Duration::seconds(30);
    assert_eq!(
        verdict(request, secret, service, now),
        Ok(()),
        "untouched request"
    );
    let check = |what: &str, tampered: &RawRequest, expected: Result<(), AuthError>| {
        assert_eq!(verdict(tampered, secret, service, now), expected, "{what}");
    };

    let mut body = request.clone();
    match body.body.first_mut() {
        Some(byte) => *byte ^= 0x01,
        None => body.body.push(b'x'),
    }
    let body_hash_sent = request
        .headers
        .get("x-amz-content-sha256")
        .is_some_and(|value| value != "UNSIGNED-PAYLOAD");
    let body_changed = if body_hash_sent {
        content_sha256_mismatch()
    } else {
        mismatch()
    };
    check("one body byte changed", &body, body_changed);

    for name in &auth.signed_headers {
        let mut changed = request.clone();
        let value = header(request, name);
        let (new_value, expected) = match name.as_str() {
            "x-amz-date" => (
                format_amz_date(&(signed_at + Duration::seconds(1))),
                mismatch(),
            ),
            "x-amz-content-sha256" => (
                opentrail_sigv4::sha256_hex(b"other"),
                content_sha256_mismatch(),
            ),
            _ => (format!("{value}x"), mismatch()),
        };
        set_header(&mut changed, name, &new_value);
        check(&format!("signed header {name} changed"), &changed, expected);
    }

    let mut next_day = request.clone();
    let later = signed_at + Duration::days(1);
    set_header(&mut next_day, "x-amz-date", &format_amz_date(&later));
    assert_eq!(
        verdict(&next_day, secret, service, later),
        Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            auth.date,
            later.format("%Y%m%d"),
            format_amz_date(&later)
        ))),
        "x-amz-date moved to the next day"
    );

    let scope = format!(
        "{}/{}/{}/{}/aws4_request",
        auth.access_key_id, auth.date, auth.region, auth.service
    );
    let with_scope = |new_scope: &str| {
        let mut changed = request.clone();
        let value = header(request, "authorization").replace(&scope, new_scope);
        set_header(&mut changed, "authorization", &value);
        changed
    };
    let other_region = if auth.region == "eu-west-1" {
        "us-east-1"
    } else {
        "eu-west-1"
    };
    check(
        "scope region changed",
        &with_scope(&format!(
            "{}/{}/{other_region}/{}/aws4_request",
            auth.access_key_id, auth.date, auth.service
        )),
        mismatch(),
    );
    check(
        "scope service changed",
        &with_scope(&format!(
            "{}/{}/{}/sts/aws4_request",
            auth.access_key_id, auth.date, auth.region
        )),
        Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{service}'. "
        ))),
    );
    let previous_day = (signed_at - Duration::days(1)).format("%Y%m%d").to_string();
    check(
        "scope date changed",
        &with_scope(&format!("{}/{previous_day}/{}/{}/aws4_request", auth.access_key_id, auth.region, auth.service)),
        Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{previous_day}' != '{}', from '{}'.",
            auth.date,
            format_amz_date(&signed_at)
        ))),
    );

    let mut signature = request.clone();
    let flipped = if auth.signature.starts_with('0') {
        "1"
    } else {
        "0"
    };
    let value = header(request, "authorization").replace(
        &auth.signature,
        &format!("{flipped}{}", &auth.signature[1..]),
    );
    set_header(&mut signature, "authorization", &value);
    check("signature changed", &signature, mismatch());

    let mut method = request.clone();
    method.method = if request.method == http::Method::PUT {
        http::Method::POST
    } else {
        http::Method::PUT
    };
    check("method changed", &method, mismatch());

    let mut path = request.clone();
    let path_and_query = match request.uri.query() {
        Some(query) => format!("{}x?{query}", request.uri.path()),
        None => format!("{}x", request.uri.path()),
    };
    path.uri = path_and_query.parse().expect("uri");
    check("path changed", &path, mismatch());

    if let Some(query) = request.uri.query() {
        let mut changed = request.clone();
        changed.uri = format!("{}?{query}x", request.uri.path())
            .parse()
            .expect("uri");
        check("query changed", &changed, mismatch());
    }

    let mut extra = request.clone();
    set_header(&mut extra, "x-forwarded-for", "192.0.2.1");
    set_header(&mut extra, "user-agent", "something-else/1.0");
    check("unsigned headers added or changed", &extra, Ok(()));

    assert_eq!(
        verdict(request, "not-the-secret", service, now),
        mismatch(),
        "wrong secret"
    );

    let mut unsigned = request.clone();
    unsigned.headers.remove("authorization");
    check(
        "no authorization header",
        &unsigned,
        Err(AuthError::MissingAuthenticationToken),
    );

    let late = signed_at + Duration::minutes(16);
    assert_eq!(
        verdict(request, secret, service, late),
        Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            format_amz_date(&signed_at),
            format_amz_date(&(late - Duration::minutes(15))),
            format_amz_date(&late)
        ))),
        "expired"
    );
    let early = signed_at - Duration::minutes(16);
    assert_eq!(
        verdict(request, secret, service, early),
        Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            format_amz_date(&signed_at),
            format_amz_date(&(early + Duration::minutes(15))),
            format_amz_date(&early)
        ))),
        "not yet current"
    );
}
