"""Raw AWS JSON 1.1 requests (signed with botocore's SigV4Auth, sent with `requests`) for
the protocol edges SDKs never produce, plus /health and /metrics."""

from __future__ import annotations

import datetime as dt
import json
import re

import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from conftest import OTHER_REGION, REGION, http_get, trail_arn

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
JSON_11 = "application/x-amz-json-1.1"


def raw_call(
    server,
    operation: str | None,
    payload: bytes | str | dict,
    *,
    region: str = REGION,
    sign: bool = True,
    target: str | None = None,
    secret: str | None = None,
) -> requests.Response:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    headers = {"Content-Type": JSON_11}
    if target is not None:
        headers["X-Amz-Target"] = target
    elif operation is not None:
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=data, headers=headers)
    if sign:
        root = server.root
        credentials = BotoCredentials(root.access_key_id, secret or root.secret_access_key)
        SigV4Auth(credentials, "cloudtrail", region).add_auth(request)
    return send(request, data)


def send(request: AWSRequest, data: bytes) -> requests.Response:
    """Sends `data` with the (possibly signed) headers of `request`."""
    prepared = request.prepare()
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return requests.post(prepared.url, data=data, headers=headers, timeout=30)


def error_of(response: requests.Response) -> str:
    assert response.headers["Content-Type"].startswith(JSON_11), response.headers
    document = response.json()
    assert isinstance(document.get("message"), str) and document["message"], document
    return document["__type"]


@pytest.fixture
def bucket(server) -> str:
    server.create_bucket("raw-bucket")
    return "raw-bucket"


def test_signed_raw_request_round_trip(server, bucket):
    created = raw_call(server, "CreateTrail", {"Name": "raw-trail", "S3BucketName": bucket})
    assert created.status_code == 200, created.text
    assert created.headers["Content-Type"].startswith(JSON_11)
    assert created.headers.get("x-amzn-RequestId")
    assert created.json()["TrailARN"] == trail_arn("raw-trail")
    # The short target form that Smithy SDKs send is accepted too.
    got = raw_call(server, None, {"Name": "raw-trail"}, target="CloudTrail_20131101.GetTrail")
    assert got.status_code == 200, got.text
    assert got.json()["Trail"]["Name"] == "raw-trail"


def test_malformed_json_is_a_serialization_error(server):
    for payload in [b"{not json", b"[1, 2, 3]", b"\xff\xfe"]:
        response = raw_call(server, "DescribeTrails", payload)
        assert response.status_code == 400, payload
        assert error_of(response) == "SerializationException", payload


@pytest.mark.parametrize(
    "operation, payload",
    [
        ("CreateTrail", {"Name": 5, "S3BucketName": "raw-bucket"}),
        ("CreateTrail", {"Name": "typed", "S3BucketName": "raw-bucket", "IsMultiRegionTrail": "yes"}),
        ("CreateTrail", {"Name": "typed", "S3BucketName": ["raw-bucket"]}),
        ("DescribeTrails", {"trailNameList": "not-a-list"}),
        ("AddTags", {"ResourceId": trail_arn("typed"), "TagsList": {"Key": "k"}}),
        ("PutEventSelectors", {"TrailName": "typed", "EventSelectors": [{"IncludeManagementEvents": "true"}]}),
    ],
)
def test_wrong_json_types_are_serialization_errors(server, bucket, operation, payload):
    response = raw_call(server, operation, payload)
    assert response.status_code == 400
    assert error_of(response) == "SerializationException"
    assert raw_call(server, "ListTrails", {}).json()["Trails"] == []


@pytest.mark.parametrize(
    "operation, payload",
    [
        ("CreateTrail", {"Name": "no-bucket"}),
        ("CreateTrail", {"S3BucketName": "raw-bucket"}),
        ("GetTrail", {}),
        ("DeleteTrail", {}),
        ("AddTags", {"TagsList": [{"Key": "k", "Value": "v"}]}),
        ("ListTags", {}),
        ("PutEventSelectors", {"EventSelectors": []}),
    ],
)
def test_missing_required_members_are_validation_errors(server, bucket, operation, payload):
    response = raw_call(server, operation, payload)
    assert response.status_code == 400
    assert error_of(response) == "ValidationException"


def test_unknown_operation(server):
    response = raw_call(server, "FrobnicateTrail", {})
    assert response.status_code == 400
    assert error_of(response) == "UnknownOperationException"


def test_oversized_body_is_rejected_with_413(start_server):
    server = start_server("--max-request-bytes", "4096")
    server.create_bucket("raw-bucket")
    small = raw_call(server, "CreateTrail", {"Name": "small", "S3BucketName": "raw-bucket", "S3KeyPrefix": "p" * 100})
    assert small.status_code == 200, small.text
    huge = {"Name": "huge", "S3BucketName": "raw-bucket", "S3KeyPrefix": "p" * 8000}
    response = raw_call(server, "CreateTrail", huge)
    assert response.status_code == 413
    assert [t["Name"] for t in raw_call(server, "ListTrails", {}).json()["Trails"]] == ["small"]


def test_unsigned_request_is_missing_authentication(server):
    response = raw_call(server, "DescribeTrails", {}, sign=False)
    assert response.status_code in (400, 403)
    assert error_of(response) == "MissingAuthenticationTokenException"


def test_bad_signatures(server):
    wrong_secret = raw_call(server, "DescribeTrails", {}, secret="not-the-secret")
    assert error_of(wrong_secret) == "InvalidSignatureException"
    assert wrong_secret.status_code in (400, 403)

    # A signature over a different body than the one sent.
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b"{}",
        headers={"Content-Type": JSON_11, "X-Amz-Target": TARGET_PREFIX + "DescribeTrails"},
    )
    root = server.root
    SigV4Auth(BotoCredentials(root.access_key_id, root.secret_access_key), "cloudtrail", REGION).add_auth(request)
    tampered = send(request, b'{"includeShadowTrails": false}')
    assert error_of(tampered) == "InvalidSignatureException"


def test_signature_for_another_service_is_rejected(server):
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b"{}",
        headers={"Content-Type": JSON_11, "X-Amz-Target": TARGET_PREFIX + "DescribeTrails"},
    )
    root = server.root
    SigV4Auth(BotoCredentials(root.access_key_id, root.secret_access_key), "s3", REGION).add_auth(request)
    response = send(request, b"{}")
    assert error_of(response) == "InvalidSignatureException"


@pytest.mark.parametrize("skew_minutes", [-20, 20])
def test_requests_outside_fifteen_minutes_are_rejected(server, monkeypatch, skew_minutes):
    real_now = botocore.auth.get_current_datetime

    def skewed_now(*args, **kwargs):
        return real_now(*args, **kwargs) + dt.timedelta(minutes=skew_minutes)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", skewed_now)
    response = raw_call(server, "DescribeTrails", {})
    assert error_of(response) == "InvalidSignatureException"
    monkeypatch.undo()
    assert raw_call(server, "DescribeTrails", {}).status_code == 200


def test_region_comes_from_the_credential_scope(server, bucket):
    created = raw_call(server, "CreateTrail", {"Name": "scoped", "S3BucketName": bucket}, region=OTHER_REGION)
    assert created.status_code == 200, created.text
    assert created.json()["TrailARN"] == trail_arn("scoped", region=OTHER_REGION)


def test_health(server):
    status, text = http_get(f"{server.endpoint}/health")
    assert status == 200
    report = json.loads(text)
    assert report["status"] == "ok"
    assert {name: c["status"] for name, c in report["components"].items()} == {
        "eventLog": "ok",
        "eventHistory": "ok",
        "eventHistoryStore": "ok",
        "delivery": "ok",
        "insights": "ok",
        "lake": "ok",
    }


def counter(metrics: str, operation: str, outcome: str) -> int:
    pattern = rf'^opentrail_requests_total\{{operation="{operation}",outcome="{outcome}"\}} (\d+)$'
    match = re.search(pattern, metrics, re.MULTILINE)
    return int(match.group(1)) if match else 0


def test_metrics_count_requests_by_operation_and_outcome(server, bucket):
    client = server.client()
    for _ in range(3):
        client.describe_trails()
    client.create_trail(Name="metered", S3BucketName=bucket)
    for _ in range(2):
        with pytest.raises(client.exceptions.TrailNotFoundException):
            client.get_trail(Name="not-metered")
    with pytest.raises(client.exceptions.TrailAlreadyExistsException):
        client.create_trail(Name="metered", S3BucketName=bucket)

    metrics = server.metrics()
    assert "# TYPE opentrail_requests_total counter" in metrics
    assert counter(metrics, "DescribeTrails", "success") == 3
    assert counter(metrics, "CreateTrail", "success") == 1
    assert counter(metrics, "CreateTrail", "TrailAlreadyExistsException") == 1
    assert counter(metrics, "GetTrail", "TrailNotFoundException") == 2
    assert counter(metrics, "GetTrail", "success") == 0

    raw_call(server, "DescribeTrails", {}, sign=False)
    client.describe_trails()
    metrics = server.metrics()
    assert counter(metrics, "DescribeTrails", "success") == 4
    assert "MissingAuthenticationTokenException" in metrics
