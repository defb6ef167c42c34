#!/usr/bin/env python3
"""How soon an acknowledged event is visible to LookupEvents while the server ingests at a
steady rate (issue: events, "visible within 2 s p99 at 50,000 events/s").

Starts the real server, sends ≤1 MB {"Records":[...]} bodies from the reference dataset to
POST /events at --rate events/s (records rewritten to the server's account, fresh eventIDs
and the current eventTime, so they fall in the 90-day window), and for the first event of
every request polls LookupEvents(EventId=...) from its ack until it is found.

    python3 benches/gen_cloudtrail.py --out /tmp/ct1m --events 1000000 --seed 42
    cargo build --profile fast -p opentrail-server
    .venv/bin/python benches/history_visibility.py --input /tmp/ct1m --rate 50000 --duration 20
"""

from __future__ import annotations

import argparse
import configparser
import datetime as dt
import gzip
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCOUNT = "111122223333"
EVENT_ID = re.compile(rb'"eventID":"[0-9a-f-]{36}"')
ACCOUNT_FIELD = re.compile(rb'"recipientAccountId":"\d{12}"')
TIME_FIELD = re.compile(rb'"eventTime":"[0-9T:Z-]{20}"')


def bodies(input_dir: Path, limit: int = 1 << 20):
    for path in sorted(input_dir.rglob("*.json.gz")):
        records = json.loads(gzip.decompress(path.read_bytes()))["Records"]
        batch, size = [], 0
        for record in records:
            raw = json.dumps(record, separators=(",", ":")).encode()
            if batch and size + len(raw) > limit:
                yield batch
                batch, size = [], 0
            batch.append(raw)
            size += len(raw) + 1
        if batch:
            yield batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, default=Path("/tmp/ct1m"))
    parser.add_argument("--binary", type=Path, default=Path("target/fast/opentrail"))
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--watch-every", type=float, default=0.25,
                        help="seconds between watched events (one LookupEvents poller each)")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="opentrail-visibility-"))
    server = subprocess.Popen(
        [str(args.binary), "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--account-id", ACCOUNT],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        endpoint = ""
        for line in server.stdout:
            if line.startswith("listening on "):
                endpoint = line.split()[-1]
                break
        config = configparser.ConfigParser()
        config.read(data / "credentials")
        key, secret = config["default"]["aws_access_key_id"], config["default"]["aws_secret_access_key"]
        creds = Credentials(key, secret)
        lookup = boto3.client("cloudtrail", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=key, aws_secret_access_key=secret)
        delays: list[float] = []
        pollers: list[threading.Thread] = []

        def watch(event_id: str, acked: float) -> None:
            while time.monotonic() - acked < 30:
                found = lookup.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}])
                if found["Events"]:
                    delays.append(time.monotonic() - acked)
                    return
                time.sleep(0.02)
            delays.append(float("inf"))

        # Build and sign every request before the clock starts: the client must not be the
        # bottleneck (the server still verifies every payload hash).
        now = dt.datetime.now(dt.timezone.utc).strftime('"eventTime":"%Y-%m-%dT%H:%M:%SZ"').encode()
        prepared_requests = []
        budget = int(args.rate * args.duration)
        for batch in bodies(args.input):
            if sum(n for *_, n in prepared_requests) >= budget:
                break
            fresh = []
            for raw in batch:
                raw = EVENT_ID.sub(lambda _: f'"eventID":"{uuid.uuid4()}"'.encode(), raw, count=1)
                raw = ACCOUNT_FIELD.sub(f'"recipientAccountId":"{ACCOUNT}"'.encode(), raw, count=1)
                fresh.append(TIME_FIELD.sub(now, raw, count=1))
            first = json.loads(fresh[0])
            body = b'{"Records":[' + b",".join(fresh) + b"]}"
            request = AWSRequest(method="POST", url=f"{endpoint}/events", data=body)
            SigV4Auth(creds, "opentrail", "us-east-1").add_auth(request)
            prepared = request.prepare()
            prepared_requests.append((prepared.url, body, dict(prepared.headers), first, len(fresh)))

        # Two senders (each paced to half the rate) keep up 50k events/s; one event every
        # --watch-every s is watched, so the watchers' LookupEvents calls stay a light load.
        started = time.monotonic()
        counters = [0, 0]
        last_watch = [0.0]
        lock = threading.Lock()

        def send(share: list, slot: int) -> None:
            session = requests.Session()
            for url, body, headers, first, count in share:
                response = session.post(url, data=body, headers=headers, timeout=60)
                acked = time.monotonic()
                response.raise_for_status()
                counters[slot] += count
                watchable = first.get("awsRegion") == "us-east-1" and first.get("managementEvent", True) is not False
                with lock:
                    due = watchable and acked - last_watch[0] >= args.watch_every
                    if due:
                        last_watch[0] = acked
                if due:
                    poller = threading.Thread(target=watch, args=(first["eventID"], acked), daemon=True)
                    poller.start()
                    pollers.append(poller)
                ahead = counters[slot] / (args.rate / 2) - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

        senders = [threading.Thread(target=send, args=(prepared_requests[i::2], i)) for i in range(2)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        sent = sum(counters)
        elapsed = time.monotonic() - started
        for poller in pollers:
            poller.join()
        delays.sort()
        pct = lambda p: delays[min(len(delays) - 1, max(0, int(round(p / 100 * len(delays))) - 1))]
        print(f"sent {sent} events in {elapsed:.1f}s ({sent / elapsed:,.0f} events/s); "
              f"{len(delays)} sampled events visible after ack: p50 {pct(50):.3f}s p99 {pct(99):.3f}s max {delays[-1]:.3f}s")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
