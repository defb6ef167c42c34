"""POST /events (SigV4 service `opentrail`) and `opentrail import`, driven with curl's
--aws-sigv4, botocore's signer and the real binary, on the real AWS-delivered log files."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from conftest import OPENTRAIL_BIN, REGION, _child_env, wait_for

CONFORMANCE = Path(__file__).resolve().parents[2] / "crates" / "core" / "model" / "tests" / "conformance"
CONFORMANCE_ACCOUNT = "123837392027"


def conformance_files() -> list[Path]:
    files = sorted(CONFORMANCE.glob("*.json"))
    assert len(files) == 55, "the 55 AWS-delivered log files must be in the repository"
    return files


def post_events(server, body: bytes, *, credentials=None, headers=None, service="opentrail"):
    creds = credentials or server.root
    request = AWSRequest(method="POST", url=f"{server.endpoint}/events", data=body, headers=dict(headers or {}))
    SigV4Auth(BotoCredentials(creds.access_key_id, creds.secret_access_key), service, REGION).add_auth(request)
    prepared = request.prepare()
    sent_headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return requests.post(prepared.url, data=body, headers=sent_headers, timeout=60)


def valid_record(account: str, event_id: str, **fields) -> dict:
    record = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": account, "userName": "alice"},
        "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateBucket",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.0.1",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }
    record.update(fields)
    return record


@pytest.fixture
def ingest_server(start_server):
    return start_server(account_id=CONFORMANCE_ACCOUNT)


def test_a_delivered_log_file_is_accepted_whole(ingest_server):
    source = conformance_files()[0]
    body = source.read_bytes()
    expected = [r["eventID"] for r in json.loads(body)["Records"]]
    response = post_events(ingest_server, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["failed"] == []
    assert [s["eventID"] for s in answer["successful"]] == expected
    assert [s["id"] for s in answer["successful"]] == [str(i) for i in range(len(expected))]


def test_gzip_and_ndjson_bodies(ingest_server):
    records = json.loads(conformance_files()[1].read_bytes())["Records"]
    gz = gzip.compress(json.dumps({"Records": records}).encode())
    answer = post_events(ingest_server, gz, headers={"Content-Encoding": "gzip"}).json()
    assert len(answer["successful"]) == len(records) and answer["failed"] == []
    ndjson = "\n".join(json.dumps(r) for r in records).encode() + b"\n"
    answer = post_events(ingest_server, ndjson).json()
    assert len(answer["successful"]) == len(records) and answer["failed"] == []


def test_malformed_records_are_rejected_one_by_one(ingest_server):
    account = ingest_server.account_id
    good = valid_record(account, "11111111-1111-1111-1111-111111111111")
    missing_time = valid_record(account, "22222222-2222-2222-2222-222222222222")
    del missing_time["eventTime"]
    bad_type = valid_record(account, "33333333-3333-3333-3333-333333333333", readOnly=[1])
    lines = [json.dumps(good), json.dumps(missing_time), "{not json", json.dumps(bad_type)]
    response = post_events(ingest_server, "\n".join(lines).encode())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [s["id"] for s in answer["successful"]] == ["0"]
    failed = {f["id"]: f for f in answer["failed"]}
    assert failed["1"]["errorCode"] == "MissingField" and "eventTime" in failed["1"]["errorMessage"]
    assert failed["2"]["errorCode"] == "MalformedJson"
    assert failed["3"]["errorCode"] == "InvalidField" and "readOnly" in failed["3"]["errorMessage"]


def test_other_accounts_need_an_allowed_key(ingest_server):
    other = valid_record("999988887777", "44444444-4444-4444-4444-444444444444")
    key = ingest_server.create_key("producer")
    creds = type(ingest_server.root)(key["AccessKeyId"], key["SecretAccessKey"])
    answer = post_events(ingest_server, json.dumps(other).encode(), credentials=creds).json()
    assert answer["successful"] == []
    assert answer["failed"][0]["errorCode"] == "AccountMismatch"
    # Its own account's events are fine.
    own = valid_record(ingest_server.account_id, "55555555-5555-5555-5555-555555555555")
    answer = post_events(ingest_server, json.dumps(own).encode(), credentials=creds).json()
    assert len(answer["successful"]) == 1
    # A forwarder key may send for any account.
    forwarder = json.loads(ingest_server.admin("keys", "create", "--user", "fwd", "--ingest-any-account").stdout)
    creds = type(ingest_server.root)(forwarder["AccessKeyId"], forwarder["SecretAccessKey"])
    answer = post_events(ingest_server, json.dumps(other).encode(), credentials=creds).json()
    assert len(answer["successful"]) == 1 and answer["failed"] == []


def test_ingest_requires_the_opentrail_signing_service(ingest_server):
    body = json.dumps(valid_record(ingest_server.account_id, "66666666-6666-6666-6666-666666666666")).encode()
    response = post_events(ingest_server, body, service="cloudtrail")
    assert response.status_code in (400, 403)
    assert response.json()["__type"] == "InvalidSignatureException"
    response = requests.post(f"{ingest_server.endpoint}/events", data=body, timeout=10)
    assert response.json()["__type"] == "MissingAuthenticationTokenException"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_example_from_the_readme(ingest_server):
    creds = ingest_server.root
    result = subprocess.run(
        [
            "curl", "-s", "--aws-sigv4", f"aws:amz:{REGION}:opentrail",
            "--user", f"{creds.access_key_id}:{creds.secret_access_key}",
            "-H", "Content-Type: application/json",
            "--data-binary", f"@{conformance_files()[2]}",
            f"{ingest_server.endpoint}/events",
        ],
        capture_output=True, text=True, timeout=60, check=True,
    )
    answer = json.loads(result.stdout)
    assert answer["failed"] == [] and len(answer["successful"]) > 0


def run_import(server, path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(OPENTRAIL_BIN), "import", "--quiet", "--endpoint", server.endpoint,
         "--data-dir", str(server.data_dir), *extra, str(path)],
        capture_output=True, text=True, timeout=300, env=_child_env(),
    )


def test_import_of_a_tree_is_resumable(ingest_server, tmp_path):
    tree = tmp_path / "AWSLogs" / CONFORMANCE_ACCOUNT / "CloudTrail" / "us-east-1" / "2023" / "07" / "10"
    tree.mkdir(parents=True)
    files = conformance_files()
    for source in files[:30]:
        (tree / (source.name + ".gz")).write_bytes(gzip.compress(source.read_bytes()))
    for source in files[30:]:
        shutil.copy(source, tree / source.name)
    total = sum(len(json.loads(f.read_bytes())["Records"]) for f in files)
    assert total == 2900
    first = run_import(ingest_server, tmp_path / "AWSLogs")
    assert first.returncode == 0, first.stderr
    assert f"imported {total} events" in first.stderr
    again = run_import(ingest_server, tmp_path / "AWSLogs")
    assert again.returncode == 0, again.stderr
    assert "importing 0 files (55 already imported)" in again.stderr
    assert "imported 0 events" in again.stderr


def test_import_from_an_s3_bucket(start_server, moto_server):
    server = start_server(*moto_server.opentrail_args(), account_id=CONFORMANCE_ACCOUNT)
    s3 = moto_server.s3()
    s3.create_bucket(Bucket="imported-logs")
    files = conformance_files()[:5]
    for source in files:
        key = f"AWSLogs/{CONFORMANCE_ACCOUNT}/CloudTrail/us-east-1/2023/07/10/{source.name}.gz"
        s3.put_object(Bucket="imported-logs", Key=key, Body=gzip.compress(source.read_bytes()))
    expected = sum(len(json.loads(f.read_bytes())["Records"]) for f in files)
    result = run_import(server, "s3://imported-logs/AWSLogs/", *moto_server.opentrail_args())
    assert result.returncode == 0, result.stderr
    assert f"imported {expected} events" in result.stderr


def test_import_reports_rejected_records(ingest_server, tmp_path):
    bad = tmp_path / "bad.json"
    record = valid_record(ingest_server.account_id, "77777777-7777-7777-7777-777777777777")
    del record["eventSource"]
    bad.write_text(json.dumps({"Records": [record]}))
    result = run_import(ingest_server, bad)
    assert result.returncode != 0
    assert "MissingField" in result.stderr


def test_the_log_gives_back_the_memory_of_records_its_consumers_have_read(start_server):
    """The event log keeps records its consumers (event history, the lake writer, insights,
    delivery) have not read yet in memory beyond its capacity; once they have all read
    them, it holds its capacity at most again: no idle consumer keeps them."""
    capacity = 64 * 1024
    server = start_server("--event-log-tail-bytes", str(capacity), account_id=CONFORMANCE_ACCOUNT)
    server.client().create_event_data_store(Name="everything")
    for source in conformance_files():
        response = post_events(server, source.read_bytes())
        assert response.status_code == 200, response.text
        assert response.json()["failed"] == []
    server.wait_for_history_caught_up()
    wait_for(lambda: server.metric("opentrail_event_log_tail_bytes") <= capacity, timeout=60,
             what="the event log's tail to shrink to its capacity")
