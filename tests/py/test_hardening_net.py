"""Issue 9, the HTTP edge: the payload and every x-amz-* header are signed (item 16),
authentication before the body with bounded connections and timeouts (item 13), and TLS
(item 17). Raw requests are signed with botocore's SigV4Auth and replayed with other
bodies or headers, as an attacker who captured them would."""

from __future__ import annotations

import configparser
import datetime as dt
import hashlib
import http.client
import json
import re
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import SSLError
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from conftest import ACCOUNT_ID, OPENTRAIL_BIN, REGION, STOP_TIMEOUT, _child_env, run_aws_cli

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


# --------------------------------------------------------------------------- item 13


def rss_mb(server) -> float:
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def unauthenticated_head(server, content_length: int) -> bytes:
    """A well-formed SigV4 request head with an access key the server does not know."""
    now = dt.datetime.now(dt.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: {JSON_11}\r\n"
        f"X-Amz-Target: {TARGET_PREFIX}CreateTrail\r\nX-Amz-Date: {amz_date}\r\n"
        f"Authorization: AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNKEY000000/{day}/{REGION}/cloudtrail/aws4_request, "
        f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={'0' * 64}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def read_response(sock, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(sock, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds."""
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_unauthenticated_requests_are_refused_before_their_body(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        # Only the head: the answer must not wait for the 1.9 MB announced.
        sock.sendall(unauthenticated_head(server, 1_900_000))
        answer = read_response(sock, timeout=5)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"UnrecognizedClientException" in answer or b"x-amzn-requestid" in answer.lower()


def test_slow_and_unauthenticated_connections_keep_memory_bounded(server):
    server.create_bucket("bucket")
    client = server.client()
    client.describe_trails()
    baseline = rss_mb(server)
    sockets = []

    def large_body() -> None:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sockets.append(sock)
        sock.settimeout(10)
        try:
            # All but the last byte of a body just under --max-request-bytes.
            sock.sendall(unauthenticated_head(server, 2_000_000) + b"x" * 1_999_999)
        except OSError:
            pass  # refused and closed before the body was read

    def slow_head() -> None:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sockets.append(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: ")

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda i: large_body() if i % 3 else slow_head(), range(300)))
        # Authenticated clients are still served while the connections are open.
        client.create_trail(Name="served", S3BucketName="bucket")
        assert [t["Name"] for t in client.describe_trails()["trailList"]] == ["served"]
        grown = rss_mb(server) - baseline
        assert grown < 100, f"server memory grew by {grown:.0f} MB under 300 unauthenticated connections"
    finally:
        for sock in sockets:
            sock.close()


def test_header_read_timeout(start_server):
    server = start_server("--header-read-timeout", "2s")
    with socket.create_connection(("127.0.0.1", server.port)) as silent, socket.create_connection(
        ("127.0.0.1", server.port)
    ) as slow:
        started = time.monotonic()
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        # Generous deadlines for a busy machine; never before the timeout (the silent
        # connection was opened a moment before `started`).
        assert closed_by_server(silent, within=60)
        assert closed_by_server(slow, within=60)
        assert time.monotonic() - started > 1.0
    assert server.client().describe_trails()["trailList"] == []


def test_idle_timeout(start_server):
    server = start_server("--idle-timeout", "5s")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", "/health")
    assert json.loads(connection.getresponse().read())["status"] == "ok"
    # The same keep-alive connection, reused well within the idle timeout, is still open.
    time.sleep(1)
    connection.request("GET", "/health")
    assert connection.getresponse().status == 200
    started = time.monotonic()
    assert closed_by_server(connection.sock, within=60)
    # Not before the timeout (less the moment the answer took to reach us).
    assert time.monotonic() - started > 3
    connection.close()


def test_connection_limit(start_server):
    server = start_server("--max-connections", "4", "--header-read-timeout", "3s")
    client = server.client()
    client.describe_trails()  # botocore keeps this connection; it times out as idle only after 60 s
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        started = time.monotonic()
        # A fifth connection waits for a slot: the idle ones are cut off after 3 s.
        with socket.create_connection(("127.0.0.1", server.port)) as waiting:
            waiting.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_response(waiting, timeout=60)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        # Only once a held connection was cut (3 s after it opened, a moment before `started`).
        assert time.monotonic() - started > 1.5
    finally:
        for sock in held:
            sock.close()
    assert client.describe_trails()["trailList"] == []


def test_sigterm_with_open_connections_exits_promptly(server):
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    idle.request("GET", "/health")
    idle.getresponse().read()
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    body = socket.create_connection(("127.0.0.1", server.port))
    body.sendall(unauthenticated_head(server, 1000)[:-4] + b"\r\n\r\n" + b"x" * 10)
    try:
        server.stop_cleanly()
        # Nothing was in flight: the server closed every connection at once instead of
        # waiting out --shutdown-grace for them.
        log = server.log_text()
        assert "all connections closed" in log and "shutdown grace ended" not in log, log
    finally:
        for sock in (slow, body):
            sock.close()
        idle.close()


# --------------------------------------------------------------------------- item 17


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         # An end-entity certificate, as webpki (the opentrail clients) requires.
         "-addext", "basicConstraints=critical,CA:FALSE"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path, certificate):
    """`opentrail serve --tls-cert --tls-key`; conftest's Server expects http://, so this
    starts and stops the binary itself, with the same rules (SIGTERM, clean exit in 15 s)."""
    cert, key = certificate
    data_dir = tmp_path / "tls-data"
    log = open(tmp_path / "tls-server.log", "wb")
    proc = subprocess.Popen(
        [str(OPENTRAIL_BIN), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0",
         "--account-id", ACCOUNT_ID, "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=_child_env(),
    )
    endpoint = None
    for raw in proc.stdout:
        match = re.fullmatch(r"listening on (https://127\.0\.0\.1:\d+)", raw.decode().strip())
        if match:
            endpoint = match.group(1)
            break
    assert endpoint, (tmp_path / "tls-server.log").read_text()
    try:
        yield endpoint, data_dir, cert
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0, (tmp_path / "tls-server.log").read_text()
        proc.stdout.close()
        log.close()


def test_tls_with_boto3_aws_cli_and_the_opentrail_clients(tls_server, tmp_path):
    endpoint, data_dir, cert = tls_server
    parser = configparser.ConfigParser()
    parser.read(data_dir / "credentials")
    root = parser["default"]
    session = boto3.session.Session(
        aws_access_key_id=root["aws_access_key_id"],
        aws_secret_access_key=root["aws_secret_access_key"],
        region_name=REGION,
    )
    subprocess.run([str(OPENTRAIL_BIN), "buckets", "create", "bucket", "--data-dir", str(data_dir)],
                   check=True, capture_output=True, timeout=60, env=_child_env())
    client = session.client("cloudtrail", endpoint_url=endpoint, verify=str(cert),
                            config=Config(retries={"total_max_attempts": 1}))
    client.create_trail(Name="over-tls", S3BucketName="bucket")
    trails = run_aws_cli("cloudtrail", "describe-trails", "--ca-bundle", str(cert),
                         endpoint=endpoint, region=REGION, credentials_file=data_dir / "credentials")
    assert [t["Name"] for t in trails["trailList"]] == ["over-tls"]

    # The certificate is really checked: without the CA bundle nothing is sent.
    untrusting = session.client("cloudtrail", endpoint_url=endpoint,
                                config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(SSLError):
        untrusting.describe_trails()
    # And plain HTTP gets no answer on the TLS port.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(endpoint.replace("https://", "http://") + "/health", timeout=5)

    records = tmp_path / "records.json"
    records.write_text(json.dumps({"Records": [record(ACCOUNT_ID)]}))
    common = ["--endpoint", endpoint, "--data-dir", str(data_dir), "--ca-bundle", str(cert)]
    imported = subprocess.run([str(OPENTRAIL_BIN), "import", "--quiet", *common, str(records)],
                              capture_output=True, text=True, timeout=120, env=_child_env())
    assert imported.returncode == 0, imported.stderr
    looked_up = subprocess.run(
        [str(OPENTRAIL_BIN), "events", "lookup", *common, "--attribute", "EventName=CreateTrail",
         "--output", "json"],
        capture_output=True, text=True, timeout=120, env=_child_env(),
    )
    assert looked_up.returncode == 0, looked_up.stderr
    untrusted = subprocess.run([str(OPENTRAIL_BIN), "events", "lookup", "--endpoint", endpoint,
                                "--data-dir", str(data_dir)],
                               capture_output=True, text=True, timeout=120, env=_child_env())
    assert untrusted.returncode != 0
