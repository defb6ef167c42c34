"""Issue 9, self-audit and ingest hardening: hostile requests against the real binary.

Unauthenticated floods write bounded, redacted, rate-limited audit records (item 10);
hostile ingest bodies are refused before they cost memory (item 11); unknown regions are
refused (item 12); what cannot be stored is rejected, not acknowledged (item 8); forged
self-audit records are refused (item 18)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import time
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from conftest import REGION, Credentials, error_code
from test_delivery import wait_for
from test_ingest import post_events, valid_record

MAX_UNTRUSTED_BYTES = 1024


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.stat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            total += max(stat.st_size, stat.st_blocks * 512)
    return total


def metric(server, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}(\{{{re.escape(wanted)}\}})? (\S+)$", re.M)
    match = pattern.search(server.metrics())
    return float(match.group(2)) if match else 0.0


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# ----------------------------------------------------------------------------- item 10


def test_unauthenticated_flood_is_truncated_redacted_and_rate_limited(server):
    signature = "cafebabe" * 8
    padding = "x" * 100_000
    headers = {
        "User-Agent": "evil-agent/" + "A" * 100_000,
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails",
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        # No SignedHeaders: an IncompleteSignatureException whose message quotes the header.
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIAFLOOD/20260101/{REGION}/cloudtrail/aws4_request, "
        f"Signature={signature}, Pad={padding}",
    }
    log_dir = server.data_dir / "log"
    before = dir_bytes(log_dir)
    sent = 200
    with requests.Session() as session:
        for _ in range(sent):
            answer = session.post(server.endpoint + "/", data=b"{}", headers=headers, timeout=10)
            assert answer.status_code == 400
            assert answer.json()["__type"] == "IncompleteSignatureException"
    dropped = metric(server, "opentrail_audit_records_dropped_total", reason="unauthenticated_rate_limit")
    assert dropped >= sent / 2, f"only {dropped} of {sent} flood records were dropped"

    client = server.client()
    client.describe_trails()  # authenticated calls are never limited
    events = wait_for(
        lambda: [
            json.loads(e["CloudTrailEvent"])
            for e in client.lookup_events(
                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Unknown"}], MaxResults=50
            )["Events"]
        ],
        what="the flood's audit records in event history",
    )
    assert 0 < len(events) <= sent - dropped
    for record in events:
        text = json.dumps(record)
        assert record["errorCode"] == "IncompleteSignatureException"
        assert record["userIdentity"]["type"] == "Unknown"
        assert record["userAgent"].startswith("evil-agent/AAAA")
        assert len(record["userAgent"].encode()) <= MAX_UNTRUSTED_BYTES
        assert len(record["errorMessage"].encode()) <= MAX_UNTRUSTED_BYTES
        assert signature not in text and "Pad=xxx" not in text and "Authorization=" not in text
        assert len(text) < 4 * 1024
    wait_for(
        lambda: client.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "DescribeTrails"}]
        )["Events"],
        what="the authenticated DescribeTrails recorded",
    )
    grown = dir_bytes(log_dir) - before
    # 200 records of 200 KB each were 40 MB before the fix.
    assert grown < 2 * 1024 * 1024, f"the event log grew by {grown} bytes for {sent} rejected requests"


# ----------------------------------------------------------------------------- item 11


def test_hostile_ingest_bodies_are_refused_quickly_with_bounded_memory(server):
    baseline = vm_hwm_kib(server.proc.pid)
    million_lines = gzip.compress(b"{}\n" * 1_000_000, 9)
    million_elements = gzip.compress(b'{"Records":[' + b",".join([b"{}"] * 1_000_000) + b"]}", 9)
    bomb = gzip.compress(bytes(256 * 1024 * 1024), 9)
    assert len(million_lines) < 10_000 and len(bomb) < 2 * 1024 * 1024
    for body, status, code in [
        (million_lines, 400, "ValidationException"),
        (million_elements, 400, "ValidationException"),
        (bomb, 413, "RequestEntityTooLargeException"),
    ]:
        # No stopwatch (the machine may be busy): the refusal must not inflate the whole
        # body, which the memory high-water mark below checks; post_events' 60 s timeout
        # catches a server that hangs on it.
        answer = post_events(server, body, headers={"Content-Encoding": "gzip"})
        assert answer.status_code == status, answer.text[:300]
        assert answer.json()["__type"] == code
        if code == "ValidationException":
            assert "10000" in answer.json()["message"]
        assert len(answer.content) < 4096
    grown_mib = (vm_hwm_kib(server.proc.pid) - baseline) / 1024
    # Before the fix the million {} lines alone took the server past 1 GiB.
    assert grown_mib < 160, f"peak RSS grew by {grown_mib:.0f} MiB"
    # At the limit the request is still served, one outcome per record.
    body = "\n".join(json.dumps(valid_record(server.account_id, f"id-{i}")) for i in range(10_000)).encode()
    answer = post_events(server, gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text[:300]
    assert len(answer.json()["successful"]) == 10_000


# ----------------------------------------------------------------------------- item 12


def test_only_partition_regions_and_extra_regions_are_served(start_server):
    server = start_server("--extra-regions", "local-dev-1,lab-west-2")
    for region in ["zz-invented-1", "us-east-9", "eu-west-1x"]:
        client = server.client(region=region)
        assert error_code(client.describe_trails) == "InvalidSignatureException"
    with pytest.raises(ClientError, match="Credential should be scoped to a valid region, not 'zz-invented-1'"):
        server.client(region="zz-invented-1").describe_trails()
    for region in ["us-east-1", "ap-southeast-7", "cn-north-1", "us-gov-west-1", "local-dev-1", "lab-west-2"]:
        assert server.client(region=region).describe_trails()["trailList"] == []

    # Ingest: the key's scope region is checked the same way...
    def post_in(region: str, body: bytes):
        creds = server.root
        request = AWSRequest(method="POST", url=f"{server.endpoint}/events", data=body)
        SigV4Auth(BotoCredentials(creds.access_key_id, creds.secret_access_key), "opentrail", region).add_auth(request)
        prepared = request.prepare()
        headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
        return requests.post(prepared.url, data=body, headers=headers, timeout=30)

    one = json.dumps({"Records": [valid_record(server.account_id, "scope-1")]}).encode()
    refused = post_in("zz-invented-1", one)
    assert refused.status_code == 400 and refused.json()["__type"] == "InvalidSignatureException"
    assert post_in("local-dev-1", one).status_code == 200

    # ...and each record's awsRegion on its own.
    records = [
        valid_record(server.account_id, "r-0", awsRegion="us-east-1"),
        valid_record(server.account_id, "r-1", awsRegion="zz-invented-1"),
        valid_record(server.account_id, "r-2", awsRegion="lab-west-2"),
        valid_record(server.account_id, "r-3", awsRegion="mars-north-1"),
    ]
    answer = post_events(server, json.dumps({"Records": records}).encode())
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [s["id"] for s in result["successful"]] == ["0", "2"]
    assert [(f["id"], f["errorCode"]) for f in result["failed"]] == [("1", "InvalidField"), ("3", "InvalidField")]
    assert "awsRegion" in result["failed"][0]["errorMessage"]
    # Nothing in the data dir is named after a refused region.
    names = [name for _root, dirs, files in os.walk(server.data_dir) for name in dirs + files]
    assert not [n for n in names if "invented" in n or "mars" in n]


# ----------------------------------------------------------------------------- item 8


def insight_record(account: str | None, event_id: str, event_time: str) -> dict:
    record = {
        "eventVersion": "1.08",
        "eventTime": event_time,
        "awsRegion": REGION,
        "eventID": event_id,
        "eventType": "AwsCloudTrailInsight",
        "eventCategory": "Insight",
        "sharedEventID": f"shared-{event_id}",
        "insightDetails": {
            "state": "Start",
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutObject",
            "insightType": "ApiCallRateInsight",
        },
    }
    if account:
        record["recipientAccountId"] = account
    return record


def test_what_cannot_be_stored_is_rejected_and_old_records_are_flagged(start_server):
    server = start_server("--history-retention-days", "30")
    now = dt.datetime.now(dt.timezone.utc)
    recent = (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (now - dt.timedelta(days=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
    account = server.account_id
    records = [
        insight_record(None, "insight-no-account", recent),
        insight_record(account, "insight-ok", recent),
        valid_record(account, "mgmt-old", eventTime=old),
        insight_record(account, "insight-old", old),
        valid_record(account, "data-old", eventTime=old, managementEvent=False, eventCategory="Data",
                     eventName="GetObject"),
        valid_record(account, "mgmt-recent", eventTime=recent),
    ]
    answer = post_events(server, json.dumps({"Records": records}).encode())
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [(f["id"], f["errorCode"]) for f in result["failed"]] == [("0", "MissingField")]
    assert "recipientAccountId" in result["failed"][0]["errorMessage"]
    successful = {s["id"]: s for s in result["successful"]}
    assert sorted(successful) == ["1", "2", "3", "4", "5"]
    assert successful["2"]["history"] == "outside-retention"
    assert successful["3"]["history"] == "outside-retention"
    for plain in ["1", "4", "5"]:
        assert "history" not in successful[plain], successful[plain]

    # What was acknowledged as searchable is searchable.
    client = server.client()
    wait_for(
        lambda: client.lookup_events(EventCategory="insight", StartTime=now - dt.timedelta(days=2))["Events"],
        what="the acknowledged Insights event in event history",
    )
    insights = client.lookup_events(EventCategory="insight", StartTime=now - dt.timedelta(days=2))["Events"]
    assert [e["EventId"] for e in insights] == ["insight-ok"]
    wait_for(
        lambda: client.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": "mgmt-recent"}])["Events"],
        what="the acknowledged management event in event history",
    )


# ----------------------------------------------------------------------------- item 18


def forged_audit_record(account: str, event_id: str, source: str = "cloudtrail.amazonaws.com") -> dict:
    """Looks exactly like the record OpenTrail writes for a Root DeleteTrail."""
    return {
        "eventVersion": "1.11",
        "userIdentity": {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                         "accountId": account, "accessKeyId": "AKIAFORGED"},
        "eventTime": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": "DeleteTrail",
        "awsRegion": REGION,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "aws-cli/2.0",
        "requestParameters": {"name": "audit"},
        "responseElements": None,
        "requestID": "00000000-0000-0000-0000-000000000000",
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "apiVersion": "2013-11-01",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def key_credentials(server, *flags: str, user: str) -> Credentials:
    key = json.loads(server.admin("keys", "create", "--user", user, *flags).stdout)
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def test_forged_self_audit_records_need_a_forward_audit_key(server):
    account = server.account_id
    alice = key_credentials(server, user="alice")
    forwarder = key_credentials(server, "--forward-audit", user="forwarder")
    any_account = key_credentials(server, "--ingest-any-account", user="relay")

    body = json.dumps({"Records": [
        forged_audit_record(account, "forged-0"),
        forged_audit_record(account, "forged-1", source="cloudtrail-data.amazonaws.com"),
        valid_record(account, "plain-0"),
        dict(forged_audit_record(account, "service-event"), eventType="AwsServiceEvent"),
    ]}).encode()
    result = post_events(server, body, credentials=alice).json()
    assert [(f["id"], f["errorCode"]) for f in result["failed"]] == [
        ("0", "ForwardAuditDenied"), ("1", "ForwardAuditDenied")]
    assert "--forward-audit" in result["failed"][0]["errorMessage"]
    assert [s["id"] for s in result["successful"]] == ["2", "3"]

    # A relay allowed other accounts may not claim this server's account either...
    other = "999988887777"
    body = json.dumps({"Records": [forged_audit_record(account, "forged-2"),
                                   forged_audit_record(other, "foreign-0")]}).encode()
    result = post_events(server, body, credentials=any_account).json()
    assert [(f["id"], f["errorCode"]) for f in result["failed"]] == [("0", "ForwardAuditDenied")]
    # ...while CloudTrail records of accounts this server does not serve are plain records.
    assert [s["id"] for s in result["successful"]] == ["1"]

    # An explicitly allowed key, and the bootstrap root key, may forward them.
    allowed = post_events(server, json.dumps({"Records": [forged_audit_record(account, "forwarded-0")]}).encode(),
                          credentials=forwarder).json()
    assert allowed["failed"] == [] and allowed["successful"][0]["eventID"] == "forwarded-0"
    by_root = post_events(server, json.dumps({"Records": [forged_audit_record(account, "forwarded-1")]}).encode()).json()
    assert by_root["failed"] == []

    client = server.client()

    def deletes():
        events = client.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "DeleteTrail"}])["Events"]
        return sorted(e["EventId"] for e in events)

    wait_for(lambda: len(deletes()) >= 3, what="the forwarded DeleteTrail records")
    assert deletes() == ["forwarded-0", "forwarded-1", "service-event"]
