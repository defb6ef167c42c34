#!/usr/bin/env python3
"""A mixed load against the real server for a fixed time, counting errors and sampling the
server's memory (issue 9: "re-runs a 30-second mixed load with 0 errors and stable memory").

At once, for --duration seconds:
- ingest: --senders threads POST /events batches of 500 fresh records (SigV4, service opentrail);
- lookups: one thread pages LookupEvents (AWS SDK for Python);
- control plane: one thread creates, tags, starts, stops and deletes trails;
- hostile: one thread sends what an attacker would: unsigned and badly signed requests with
  huge User-Agent and Authorization headers, unknown X-Amz-Target values, unknown regions,
  replayed bodies, a gzip bomb and a million-line body.

Legitimate calls must all succeed and hostile ones must all be refused with a 4xx; any other
answer, a 5xx or a dropped connection is an error. The server's RSS is read from /proc once a
second. Exit status 1 when there were errors or the RSS of the last quarter of the run is more
than 1.5x that of the second quarter (memory that keeps growing).

    cargo build --profile fast -p opentrail-server
    .venv/bin/python benches/mixed_load.py --bin target/fast/opentrail --duration 30
"""

from __future__ import annotations

import argparse
import configparser
import datetime as dt
import gzip
import io
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ACCOUNT = "111122223333"
REGION = "us-east-1"


class Run:
    def __init__(self, endpoint: str, creds: Credentials, deadline: float):
        self.endpoint = endpoint
        self.creds = creds
        self.deadline = deadline
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def live(self) -> bool:
        return time.monotonic() < self.deadline

    def ok(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def error(self, what: str) -> None:
        with self.lock:
            self.counts["errors"] += 1
            if len(self.errors) < 20:
                self.errors.append(what)

    def signed(self, path: str, body: bytes, headers: dict, service: str, region: str = REGION):
        request = AWSRequest(method="POST", url=f"{self.endpoint}{path}", data=body, headers=headers)
        SigV4Auth(self.creds, service, region).add_auth(request)
        prepared = request.prepare()
        return {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}


def record(event_id: str, now: str) -> dict:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT, "userName": "loader"},
        "eventTime": now,
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutObject",
        "awsRegion": REGION,
        "sourceIPAddress": "10.0.0.1",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }


def ingest(run: Run) -> None:
    session = requests.Session()
    while run.live():
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps({"Records": [record(str(uuid.uuid4()), now) for _ in range(500)]}).encode()
        headers = run.signed("/events", body, {"Content-Type": "application/json"}, "opentrail")
        try:
            response = session.post(f"{run.endpoint}/events", data=body, headers=headers, timeout=60)
        except requests.RequestException as e:
            run.error(f"ingest: {e!r}")
            continue
        if response.status_code == 200 and not response.json()["failed"]:
            run.ok("ingest")
        else:
            run.error(f"ingest: HTTP {response.status_code} {response.text[:200]}")


def client(run: Run):
    return boto3.client(
        "cloudtrail", region_name=REGION, endpoint_url=run.endpoint,
        aws_access_key_id=run.creds.access_key, aws_secret_access_key=run.creds.secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def lookups(run: Run) -> None:
    ct = client(run)
    while run.live():
        try:
            pages = ct.get_paginator("lookup_events").paginate(
                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutObject"}],
                PaginationConfig={"MaxItems": 200},
            )
            for _ in pages:
                pass
            run.ok("lookup")
        except Exception as e:  # noqa: BLE001 - counted, not lost
            run.error(f"lookup: {e!r}")


def control_plane(run: Run, bucket: str) -> None:
    ct = client(run)
    n = 0
    while run.live():
        name = f"mixed-{n % 4}"
        n += 1
        try:
            arn = ct.create_trail(Name=name, S3BucketName=bucket)["TrailARN"]
            ct.add_tags(ResourceId=arn, TagsList=[{"Key": "k", "Value": str(n)}])
            ct.start_logging(Name=name)
            ct.get_trail_status(Name=name)
            ct.stop_logging(Name=name)
            ct.delete_trail(Name=name)
            run.ok("control")
        except Exception as e:  # noqa: BLE001
            run.error(f"control: {e!r}")


def hostile_requests(run: Run):
    """(label, method, path, headers, body, accepted statuses)."""
    big = "x" * 200_000
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb") as out:
        out.write(b"{}\n" * 1_000_000)
    lines = b"{}\n" * 200_000
    target = {"X-Amz-Target": "CloudTrail_20131101.DescribeTrails", "Content-Type": "application/x-amz-json-1.1"}
    yield "unsigned", "/", {**target, "User-Agent": big}, b"{}"
    yield "bad auth", "/", {**target, "Authorization": "AWS4-HMAC-SHA256 Credential=" + big}, b"{}"
    yield "unknown target", "/", run.signed(
        "/", b"{}", {**target, "X-Amz-Target": f"CloudTrail_20131101.X{uuid.uuid4().hex}"}, "cloudtrail"), b"{}"
    yield "unknown region", "/", run.signed("/", b"{}", dict(target), "cloudtrail", region="xx-nowhere-9"), b"{}"
    signed = run.signed("/", b"{}", dict(target), "cloudtrail")
    yield "replayed body", "/", signed, b'{"trailNameList":["other"]}'
    gz = bomb.getvalue()
    yield "gzip bomb", "/events", run.signed(
        "/events", gz, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, "opentrail"), gz
    yield "million lines", "/events", run.signed("/events", lines, {"Content-Type": "application/json"}, "opentrail"), lines


def hostile(run: Run) -> None:
    session = requests.Session()
    while run.live():
        for label, path, headers, body in hostile_requests(run):
            try:
                response = session.post(f"{run.endpoint}{path}", data=body, headers=headers, timeout=30)
            except requests.RequestException as e:
                run.error(f"hostile {label}: {e!r}")
                session = requests.Session()
                continue
            if 400 <= response.status_code < 500:
                run.ok("hostile refused")
            else:
                run.error(f"hostile {label}: HTTP {response.status_code} {response.text[:120]}")


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=Path, default=Path("target/fast/opentrail"))
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--senders", type=int, default=2)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="opentrail-mixed-"))
    bucket = "mixed-load"
    subprocess.run([str(args.bin), "buckets", "create", bucket, "--data-dir", str(data / "d")], check=True,
                   capture_output=True)
    server = subprocess.Popen(
        [str(args.bin), "serve", "--data-dir", str(data / "d"), "--listen", "127.0.0.1:0",
         "--account-id", ACCOUNT, "--delivery-interval", "1s"],
        stdout=subprocess.PIPE, stderr=open(data / "server.log", "wb"),
    )
    try:
        endpoint = None
        for raw in server.stdout:
            line = raw.decode().strip()
            if line.startswith("listening on "):
                endpoint = line.removeprefix("listening on ")
                break
        assert endpoint, "the server did not start"
        parsed = configparser.ConfigParser()
        parsed.read(data / "d" / "credentials")
        section = parsed["default"]
        creds = Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])
        run = Run(endpoint, creds, time.monotonic() + args.duration)
        threads = [threading.Thread(target=ingest, args=(run,)) for _ in range(args.senders)]
        threads += [threading.Thread(target=lookups, args=(run,)),
                    threading.Thread(target=control_plane, args=(run, bucket)),
                    threading.Thread(target=hostile, args=(run,))]
        for thread in threads:
            thread.start()
        samples = []
        while run.live():
            samples.append(rss_kib(server.pid))
            time.sleep(1)
        for thread in threads:
            thread.join()
        quarter = max(len(samples) // 4, 1)
        second_q = sum(samples[quarter:2 * quarter]) / quarter
        last_q = sum(samples[-quarter:]) / quarter
        status = requests.get(f"{endpoint}/health", timeout=5)
        print(f"duration {args.duration:.0f} s, {args.senders} ingest senders")
        print("ok: " + ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()) if k != "errors"))
        print(f"events acknowledged: {run.counts['ingest'] * 500}")
        print(f"errors: {run.counts['errors']}")
        for error in run.errors:
            print(f"  {error}")
        print(f"server RSS MiB: min {min(samples) / 1024:.0f}, max {max(samples) / 1024:.0f}, "
              f"2nd quarter avg {second_q / 1024:.0f}, last quarter avg {last_q / 1024:.0f}")
        print(f"/health: {status.status_code} {status.text}")
        stable = last_q <= 1.5 * second_q
        print("memory stable" if stable else "MEMORY GREW")
        return 0 if run.counts["errors"] == 0 and stable and status.status_code == 200 else 1
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
