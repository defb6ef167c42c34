//! Requests captured from the AWS CLI and boto3 (see `captured/capture.py`):
//! each verifies as received and every tampered variant is rejected.

mod common;

use std::path::Path;

use common::{parse_raw_request, tamper, RawRequest};
use opentrail_sigv4::{parse_authorization, verify};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn fixture(name: &str) -> RawRequest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/captured")
        .join(name);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_raw_request(&raw)
}

fn assert_verifies(request: &RawRequest, service: &str) {
    let auth = parse_authorization(&request.parts()).expect("authorization");
    assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
    assert_eq!(auth.region, "us-east-1");
    assert_eq!(
        verify(&request.parts(), &auth, SECRET, service, auth.request_time),
        Ok(())
    );
}

#[test]
fn awscli_describe_trails() {
    let request = fixture("awscli-describe-trails.http");
    assert_eq!(
        request.headers["x-amz-target"],
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails"
    );
    assert_verifies(&request, "cloudtrail");
    tamper::check_all(&request, SECRET, "cloudtrail");
}

#[test]
fn boto3_create_trail() {
    let request = fixture("boto3-create-trail.http");
    assert!(request.body.starts_with(br#"{"Name": "management-events""#));
    assert_verifies(&request, "cloudtrail");
    tamper::check_all(&request, SECRET, "cloudtrail");
}

/// rest-json with a percent-encoded query (an ARN with `:` and `/`, a space).
#[test]
fn boto3_put_audit_events() {
    let request = fixture("boto3-put-audit-events.http");
    assert_eq!(request.uri.path(), "/PutAuditEvents");
    assert_verifies(&request, "cloudtrail-data");
    tamper::check_all(&request, SECRET, "cloudtrail-data");
}
