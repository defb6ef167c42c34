"""Issue 9, the HTTP edge: the payload and every x-amz-* header are signed (item 16),
authentication before the body with bounded connections and timeouts (item 13), and TLS
(item 17). Raw requests are signed with botocore's SigV4Auth and replayed with other
bodies or headers, as an attacker who captured them would."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from conftest import REGION

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
JSON_11 = "application/x-amz-json-1.1"


def signed_headers(server, path: str, body: bytes, headers: dict, service: str) -> dict:
    """Headers of a request signed by botocore for `body` (botocore signs every header
    given, and takes the payload hash from `X-Amz-Content-SHA256` when one is given)."""
    request = AWSRequest(method="POST", url=server.endpoint + path, data=body, headers=dict(headers))
    root = server.root
    SigV4Auth(BotoCredentials(root.access_key_id, root.secret_access_key), service, REGION).add_auth(request)
    prepared = request.prepare()
    return {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}


def send(server, path: str, headers: dict, body: bytes) -> requests.Response:
    return requests.post(server.endpoint + path, data=body, headers=headers, timeout=30)


def api_headers(operation: str, **extra: str) -> dict:
    return {"Content-Type": JSON_11, "X-Amz-Target": TARGET_PREFIX + operation, **extra}


def error_of(response: requests.Response) -> tuple[int, str, str]:
    document = response.json()
    return response.status_code, document["__type"], document["message"]


def trail_names(server) -> list[str]:
    return [t["Name"] for t in server.client().list_trails()["Trails"]]


def record(account: str) -> dict:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": account, "userName": "alice"},
        "eventTime": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateBucket",
        "awsRegion": REGION,
        "sourceIPAddress": "10.0.0.1",
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }


# --------------------------------------------------------------------------- item 16


@pytest.mark.parametrize(
    "payload_hash",
    ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"],
)
def test_unsigned_payload_is_refused_and_cannot_be_replayed(server, payload_hash):
    server.create_bucket("bucket")
    body = json.dumps({"Name": "genuine", "S3BucketName": "bucket"}).encode()
    headers = signed_headers(
        server, "/", body, api_headers("CreateTrail", **{"X-Amz-Content-SHA256": payload_hash}), "cloudtrail"
    )
    assert headers["X-Amz-Content-SHA256"] == payload_hash
    # As every AWS service but S3: the signature must cover the body's hash.
    status, code, message = error_of(send(server, "/", headers, body))
    assert (status, code) == (400, "InvalidSignatureException"), message
    assert message.startswith("The request signature we calculated does not match")
    forged = json.dumps({"Name": "forged", "S3BucketName": "bucket"}).encode()
    status, code, _ = error_of(send(server, "/", headers, forged))
    assert (status, code) == (400, "InvalidSignatureException")
    assert trail_names(server) == []


def test_a_claimed_payload_hash_binds_the_body(server):
    server.create_bucket("bucket")
    body = json.dumps({"Name": "genuine", "S3BucketName": "bucket"}).encode()
    claimed = hashlib.sha256(body).hexdigest()
    headers = signed_headers(
        server, "/", body, api_headers("CreateTrail", **{"X-Amz-Content-SHA256": claimed}), "cloudtrail"
    )
    forged = json.dumps({"Name": "forged", "S3BucketName": "bucket"}).encode()
    status, code, message = error_of(send(server, "/", headers, forged))
    assert (status, code) == (400, "InvalidSignatureException")
    assert message == "The provided 'x-amz-content-sha256' header does not match what was computed."
    # The genuine request, with the real hash announced, is accepted.
    response = send(server, "/", headers, body)
    assert response.status_code == 200, response.text
    assert trail_names(server) == ["genuine"]


def test_an_unsigned_target_is_refused(server):
    server.create_bucket("bucket")
    server.client().create_trail(Name="keep", S3BucketName="bucket")
    body = json.dumps({"Name": "keep"}).encode()
    # Signed without X-Amz-Target; the target is added afterwards (a DeleteTrail).
    headers = signed_headers(server, "/", body, {"Content-Type": JSON_11}, "cloudtrail")
    headers["X-Amz-Target"] = TARGET_PREFIX + "DeleteTrail"
    status, code, message = error_of(send(server, "/", headers, body))
    assert (status, code) == (400, "IncompleteSignatureException"), message
    assert message == "There were headers present in the request which were not signed: x-amz-target"
    assert trail_names(server) == ["keep"]


def test_every_x_amz_header_must_be_signed(server):
    body = b"{}"
    headers = signed_headers(server, "/", body, api_headers("DescribeTrails"), "cloudtrail")
    assert send(server, "/", headers, body).status_code == 200
    status, code, message = error_of(send(server, "/", {**headers, "X-Amz-Meta-Extra": "1"}, body))
    assert (status, code) == (400, "IncompleteSignatureException")
    assert message.endswith("not signed: x-amz-meta-extra")
    # Headers outside x-amz-* may stay unsigned, as for AWS.
    assert send(server, "/", {**headers, "X-Forwarded-For": "10.0.0.9"}, body).status_code == 200


def test_ingest_payload_must_be_signed(server):
    genuine = json.dumps({"Records": [record(server.account_id)]}).encode()
    forged = json.dumps({"Records": [record(server.account_id), record(server.account_id)]}).encode()
    unsigned = signed_headers(
        server, "/events", genuine, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, "opentrail"
    )
    for body in (genuine, forged):
        status, code, _ = error_of(send(server, "/events", unsigned, body))
        assert (status, code) == (400, "InvalidSignatureException")
    hashed = signed_headers(
        server, "/events", genuine, {"X-Amz-Content-SHA256": hashlib.sha256(genuine).hexdigest()}, "opentrail"
    )
    status, code, _ = error_of(send(server, "/events", hashed, forged))
    assert (status, code) == (400, "InvalidSignatureException")
    accepted = send(server, "/events", hashed, genuine)
    assert accepted.status_code == 200, accepted.text
    assert len(accepted.json()["successful"]) == 1
    plain = signed_headers(server, "/events", genuine, {}, "opentrail")
    status, code, _ = error_of(send(server, "/events", plain, forged))
    assert (status, code) == (400, "InvalidSignatureException")
