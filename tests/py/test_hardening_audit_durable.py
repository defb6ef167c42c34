"""No effect without its audit record (issue 9, item 3): on a full disk a call that would
change state is refused with 503 ServiceUnavailable instead of taking effect unaudited,
/health reports the event log degraded, and everything recovers once space returns."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, http_get, trail_arn
from test_hardening_datadir import ingest_ids, looked_up_ids, wait_for

BUCKET = "full-disk-logs"


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Writes a file until the disk is full to the last byte."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    finally:
        os.close(fd)
    return filler


def fill_more(filler: Path) -> None:
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
    try:
        for size in (4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)


def audited_names(server) -> list[str]:
    """The control-plane calls recorded as successful (no errorCode) in event history."""
    pages = server.client().get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "cloudtrail.amazonaws.com"}]
    )
    return [
        event["EventName"]
        for page in pages
        for event in page["Events"]
        if "errorCode" not in json.loads(event["CloudTrailEvent"])
    ]


def test_a_full_disk_refuses_unaudited_changes_and_recovers(start_server, small_disk):
    server = start_server(data_dir=small_disk / "data")
    server.create_bucket(BUCKET)
    client = server.client()
    client.create_trail(Name="guarded", S3BucketName=BUCKET)
    client.start_logging(Name="guarded")

    filler = fill(small_disk)
    try:
        # Events cannot be made durable: refused, never acknowledged. (A write that got
        # halfway is cut back, which frees its bytes: fill them too, until nothing fits.)
        def refused_and_degraded():
            refused = ingest_ids(server, [str(uuid.uuid4()) for _ in range(50)])
            assert refused.status_code == 503, refused.text
            fill_more(filler)
            status, body = http_get(f"{server.endpoint}/health")
            return body if status == 503 else None

        # The report that said degraded is the one checked: a later call may find that a
        # write cut back freed enough bytes for another to succeed meanwhile.
        body = wait_for(refused_and_degraded, timeout=90, what="/health to report the event log degraded")
        assert json.loads(body)["components"]["eventLog"]["status"] == "degraded"

        # A change would be unaudited: refused, and it does not take effect. Which refusal
        # comes first depends on which write fails first: the guard that finds the event log
        # failing (503 ServiceUnavailable) or the metadata store's own write (500).
        # (Fill again first: bytes freed by a cut-back write must not let the audit fit.)
        refusals = {"ServiceUnavailable", "InternalFailure"}
        fill_more(filler)
        assert error_code(client.stop_logging, Name="guarded") in refusals
        fill_more(filler)
        assert error_code(client.delete_trail, Name="guarded") in refusals
        # Reads still work.
        assert client.get_trail_status(Name="guarded")["IsLogging"] is True
    finally:
        os.unlink(filler)

    # Space is back: the log writes again without a restart, and so do changes.
    def accepts():
        try:
            return ingest_ids(server, [str(uuid.uuid4())]).status_code == 200
        except Exception:  # noqa: BLE001
            return False

    wait_for(accepts, timeout=90, what="POST /events to be accepted again")
    wait_for(lambda: http_get(f"{server.endpoint}/health")[0] == 200, timeout=90, what="/health ok")
    client.stop_logging(Name="guarded")
    assert client.get_trail_status(Name="guarded")["IsLogging"] is False

    # Every change that was acknowledged has its audit event; the refused ones took no effect.
    names = wait_for(lambda: (n := audited_names(server)).count("StopLogging") >= 1 and n,
                     what="the StopLogging audit event")
    assert names.count("StartLogging") == 1
    assert names.count("CreateTrail") == 1
    assert names.count("StopLogging") == 1
    assert names.count("DeleteTrail") == 0
    server.stop_cleanly()
    server.start()
    assert server.client().get_trail(Name="guarded")["Trail"]["TrailARN"] == trail_arn("guarded")
