//! Requests signed by `aws-sigv4`, the signer inside aws-sdk-rust, with the
//! settings the SDK uses: our `verify` accepts them (and rejects tampering),
//! and our `sign` produces the same `Authorization` for the same request.

mod common;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign as sdk_sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SigningSettings, UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::{DateTime, TimeZone, Utc};
use common::{tamper, RawRequest};
use opentrail_sigv4::{parse_authorization, sign, verify, PayloadHash, SigningParams};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn signing_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 17, 9, 30, 12).unwrap()
}

struct SdkRequest<'a> {
    method: &'a str,
    url: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    service: &'a str,
    session_token: Option<&'a str>,
    settings: SigningSettings,
}

/// Signs with aws-sigv4 and returns the request as the server receives it:
/// origin-form URI, the `Host` header the HTTP client adds.
fn sign_with_sdk(request: SdkRequest) -> RawRequest {
    let identity: Identity = Credentials::new(
        ACCESS_KEY,
        SECRET,
        request.session_token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(request.service)
        .time(SystemTime::from(signing_time()))
        .settings(request.settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .expect("signable request");
    let (instructions, _signature) = sdk_sign(signable, &params).expect("sign").into_parts();

    let mut http_request = http::Request::builder()
        .method(request.method)
        .uri(request.url);
    for (name, value) in &request.headers {
        http_request = http_request.header(*name, *value);
    }
    let mut http_request = http_request.body(request.body.to_vec()).expect("request");
    instructions.apply_to_request_http1x(&mut http_request);

    let (parts, body) = http_request.into_parts();
    let mut headers = parts.headers;
    let authority = parts
        .uri
        .authority()
        .expect("authority")
        .as_str()
        .to_owned();
    headers.insert(http::header::HOST, authority.parse().expect("host"));
    RawRequest {
        method: parts.method,
        uri: parts
            .uri
            .path_and_query()
            .expect("path")
            .as_str()
            .parse()
            .expect("origin-form"),
        headers,
        body,
    }
}

fn describe_trails_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "CloudTrail_20131101.DescribeTrails"),
        ("content-length", "2"),
        ("user-agent", "aws-sdk-rust/1.3.9 os/linux lang/rust/1.85.0"),
        (
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 api/cloudtrail/1.130.0 os/linux lang/rust/1.85.0",
        ),
        (
            "amz-sdk-invocation-id",
            "6f7c3b2e-5b1e-4d4e-9a0f-0a1b2c3d4e5f",
        ),
        ("amz-sdk-request", "attempt=1; max=3"),
    ]
}

fn authorization_of(request: &RawRequest) -> String {
    request.headers["authorization"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[test]
fn verifies_a_cloudtrail_json_request_signed_by_aws_sdk_rust() {
    let request = sign_with_sdk(SdkRequest {
        method: "POST",
        url: "http://127.0.0.1:4566/",
        headers: describe_trails_headers(),
        body: b"{}",
        service: "cloudtrail",
        session_token: None,
        settings: SigningSettings::default(),
    });
    let auth = parse_authorization(&request.parts()).expect("authorization");
    assert_eq!(auth.service, "cloudtrail");
    assert!(auth.signed_headers.contains(&"x-amz-target".to_owned()));
    assert!(!auth.signed_headers.contains(&"user-agent".to_owned()));
    assert_eq!(
        verify(
            &request.parts(),
            &auth,
            SECRET,
            "cloudtrail",
            signing_time()
        ),
        Ok(())
    );
    tamper::check_all(&request, SECRET, "cloudtrail");
}

#[test]
fn verifies_a_request_with_a_session_token() {
    let request = sign_with_sdk(SdkRequest {
        method: "POST",
        url: "http://localhost:4566/",
        headers: describe_trails_headers(),
        body: b"{}",
        service: "cloudtrail",
        session_token: Some("FQoGZXIvYXdzEXAMPLETOKEN//+=="),
        settings: SigningSettings::default(),
    });
    let auth = parse_authorization(&request.parts()).expect("authorization");
    assert!(auth
        .signed_headers
        .contains(&"x-amz-security-token".to_owned()));
    assert_eq!(
        verify(
            &request.parts(),
            &auth,
            SECRET,
            "cloudtrail",
            signing_time()
        ),
        Ok(())
    );
    tamper::check_all(&request, SECRET, "cloudtrail");
}

#[test]
fn our_signer_matches_aws_sdk_rust_for_cloudtrail() {
    let sdk = sign_with_sdk(SdkRequest {
        method: "POST",
        url: "http://127.0.0.1:4566/",
        headers: describe_trails_headers(),
        body: b"{}",
        service: "cloudtrail",
        session_token: None,
        settings: SigningSettings::default(),
    });
    let mut headers = http::HeaderMap::new();
    for (name, value) in describe_trails_headers() {
        headers.insert(name, value.parse().expect("value"));
    }
    let uri: http::Uri = "http://127.0.0.1:4566/".parse().expect("uri");
    let params = SigningParams {
        access_key_id: ACCESS_KEY,
        secret_access_key: SECRET,
        region: "us-east-1",
        service: "cloudtrail",
        time: signing_time(),
        session_token: None,
        uri_double_encode: true,
        payload: PayloadHash::Body(b"{}"),
        set_content_sha256_header: false,
    };
    let ours = sign(&http::Method::POST, &uri, &headers, &params).expect("sign");
    let authorization = ours
        .iter()
        .find(|(name, _)| name == "authorization")
        .expect("authorization");
    assert_eq!(
        authorization.1.to_str().expect("ascii"),
        authorization_of(&sdk)
    );
    let host = ours
        .iter()
        .find(|(name, _)| name == "host")
        .expect("host added");
    assert_eq!(host.1, "127.0.0.1:4566");
}

/// S3 signs the path as sent (no normalisation, no second encoding) and the
/// payload hash travels in `x-amz-content-sha256`; our S3 client relies on it.
#[test]
fn s3_style_signing_agrees_with_aws_sdk_rust() {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let url =
        "http://127.0.0.1:9000/trail-bucket/AWSLogs//a%20b%2Bc%C3%BC/./x.json.gz?x-id=PutObject";
    let body = b"not really gzip";
    let headers = vec![
        ("content-type", "application/octet-stream"),
        ("x-amz-meta-signature", "abc123"),
    ];
    let sdk = sign_with_sdk(SdkRequest {
        method: "PUT",
        url,
        headers: headers.clone(),
        body,
        service: "s3",
        session_token: None,
        settings,
    });
    let auth = parse_authorization(&sdk.parts()).expect("authorization");
    assert_eq!(
        verify(&sdk.parts(), &auth, SECRET, "s3", signing_time()),
        Ok(())
    );
    tamper::check_all(&sdk, SECRET, "s3");

    let mut our_headers = http::HeaderMap::new();
    for (name, value) in headers {
        our_headers.insert(name, value.parse().expect("value"));
    }
    let params = SigningParams {
        access_key_id: ACCESS_KEY,
        secret_access_key: SECRET,
        region: "us-east-1",
        service: "s3",
        time: signing_time(),
        session_token: None,
        uri_double_encode: false,
        payload: PayloadHash::Body(body),
        set_content_sha256_header: true,
    };
    let uri: http::Uri = url.parse().expect("uri");
    let ours = sign(&http::Method::PUT, &uri, &our_headers, &params).expect("sign");
    let authorization = ours
        .iter()
        .find(|(name, _)| name == "authorization")
        .expect("authorization");
    assert_eq!(
        authorization.1.to_str().expect("ascii"),
        authorization_of(&sdk)
    );
}
