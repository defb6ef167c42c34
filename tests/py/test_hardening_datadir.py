"""The data dir under accident and attack (issue 9): one server per data dir, a lost
metadata store is refused, files are private to the owner, logging to a dead stderr kills
nothing, and a background task that dies is restarted and reported."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import OPENTRAIL_BIN, STOP_TIMEOUT, _child_env, http_get, wait_for
from test_ingest import post_events, valid_record

BUCKET = "hardening-logs"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")



def ingest_ids(server, ids: list[str], event_name="HardeningLoad"):
    records = [
        valid_record(server.account_id, event_id, eventTime=now_iso(), eventName=event_name)
        for event_id in ids
    ]
    return post_events(server, json.dumps({"Records": records}).encode())


def looked_up_ids(server, event_name="HardeningLoad") -> list[str]:
    pages = server.client().get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}]
    )
    return [event["EventId"] for page in pages for event in page["Events"]]


def run_second_serve(data_dir: Path, *extra: str, timeout=30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(OPENTRAIL_BIN), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(),
    )


# ----------------------------------------------------------------- item 1: one server per data dir


def test_a_second_server_on_the_same_data_dir_exits_and_loses_nothing(start_server):
    first = start_server()
    lock = threading.Lock()
    acknowledged: set[str] = set()
    problems: list[str] = []
    stop = threading.Event()

    def sender():
        while not stop.is_set():
            ids = [str(uuid.uuid4()) for _ in range(200)]
            try:
                response = ingest_ids(first, ids)
            except requests.RequestException as error:
                problems.append(f"request failed: {error!r}")
                return
            if response.status_code != 200:
                problems.append(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            answer = response.json()
            with lock:
                acknowledged.update(entry["eventID"] for entry in answer["successful"])

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(acknowledged) >= 2000, timeout=60, what="2000 acknowledged events")
        # The common mistake, twice: the same data dir on another port, and on the same one.
        for extra in ([], ["--account-id", first.account_id]):
            second = run_second_serve(first.data_dir, *extra)
            assert second.returncode != 0, second.stderr
            assert "in use by another opentrail server" in second.stderr, second.stderr
            assert f"pid {first.proc.pid}" in second.stderr, second.stderr
        wait_for(lambda: len(acknowledged) >= 4000, timeout=60, what="more events acknowledged after the second start")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert problems == []
    first.stop_cleanly()

    restarted = start_server(data_dir=first.data_dir)
    # History indexes again from the event log what the first server had not flushed
    # within its bounded shutdown: wait for it rather than look once.
    missing: set[str] = set()

    def none_missing() -> bool:
        missing.clear()
        missing.update(acknowledged - set(looked_up_ids(restarted)))
        return not missing

    try:
        wait_for(none_missing, interval=1.0, what="every acknowledged event in LookupEvents")
    except AssertionError:
        pytest.fail(f"{len(missing)} of {len(acknowledged)} acknowledged events lost")


def test_the_lock_is_released_by_kill_9(start_server):
    server = start_server()
    server.kill()
    restarted = start_server(data_dir=server.data_dir)
    assert restarted.client().describe_trails()["trailList"] == []


# ----------------------------------------------------------------- item 6: a lost meta.db


def test_a_lost_metadata_store_is_refused(start_server):
    server = start_server()
    ids = [str(uuid.uuid4()) for _ in range(20)]
    assert ingest_ids(server, ids).status_code == 200
    credentials = server.credentials_path.read_text()
    server.stop_cleanly()
    for name in ("meta.db", "meta.db-wal", "meta.db-shm"):
        (server.data_dir / name).unlink(missing_ok=True)

    refused = run_second_serve(server.data_dir)
    assert refused.returncode != 0
    assert "no metadata store (meta.db)" in refused.stderr, refused.stderr
    assert server.credentials_path.read_text() == credentials
    assert not (server.data_dir / "meta.db").exists()
    # Admin commands refuse as well: `keys create` would start a new account just the same.
    keys = subprocess.run(
        [str(OPENTRAIL_BIN), "keys", "create", "--user", "x", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60, env=_child_env(),
    )
    assert keys.returncode != 0 and "no metadata store" in keys.stderr, keys.stderr


# ----------------------------------------------------------------- item 14: private files


def modes(root: Path) -> dict[str, int]:
    found = {}
    for path in [root, *root.rglob("*")]:
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(root: Path) -> None:
    loose = {name: oct(mode) for name, mode in modes(root).items() if mode & 0o077}
    assert not loose, f"readable by group or others: {loose}"


def test_every_file_in_the_data_dir_is_private(start_server):
    server = start_server("--delivery-interval", "1s", "--digest-interval", "3s")
    server.create_bucket(BUCKET)
    client = server.client()
    client.create_trail(Name="private", S3BucketName=BUCKET, EnableLogFileValidation=True)
    client.start_logging(Name="private")
    ids = [str(uuid.uuid4()) for _ in range(50)]
    assert ingest_ids(server, ids).status_code == 200
    wait_for(lambda: any((server.data_dir / "buckets" / BUCKET).rglob("*.json.gz")), timeout=60, what="a delivered log file")
    wait_for(lambda: any((server.data_dir / "buckets" / BUCKET).rglob("*Digest*.json.gz")), timeout=60, what="a digest")
    assert_private(server.data_dir)

    # A second local user reads nothing: not the secret keys, not the signing keys.
    if shutil.which("runuser") and os.geteuid() == 0:
        for target in [server.data_dir / "meta.db", server.credentials_path]:
            peek = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(target)], capture_output=True)
            assert peek.returncode != 0 and b"Permission denied" in peek.stderr, target


def test_a_data_dir_of_an_earlier_version_is_made_private(start_server):
    server = start_server()
    server.stop_cleanly()
    # What earlier versions left: a world-readable dir and metadata store.
    os.chmod(server.data_dir, 0o755)
    for name in ("meta.db", "credentials"):
        os.chmod(server.data_dir / name, 0o644)
    server.start()
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    for name in ("meta.db", "credentials"):
        assert stat.S_IMODE((server.data_dir / name).stat().st_mode) == 0o600, name


# ----------------------------------------------------------------- item 4: logging never kills work


def test_a_dead_stderr_kills_no_work(tmp_path):
    """stderr is a pipe nobody reads (closed at once): every log line fails to write. The
    server still starts, answers, indexes and delivers, and counts the lines it dropped."""
    data_dir = tmp_path / "data"
    subprocess.run([str(OPENTRAIL_BIN), "buckets", "create", BUCKET, "--data-dir", str(data_dir)],
                   check=True, capture_output=True, timeout=60, env=_child_env())
    env = _child_env({"OPENTRAIL_LOG": "debug"})
    proc = subprocess.Popen(
        [str(OPENTRAIL_BIN), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0",
         "--delivery-interval", "1s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
    )
    proc.stderr.close()
    try:
        endpoint = None
        for raw in proc.stdout:
            line = raw.decode().strip()
            if line.startswith("listening on "):
                endpoint = line.removeprefix("listening on ")
                break
        assert endpoint, f"the server exited with {proc.wait()} before listening"

        from conftest import Server

        server = Server(data_dir, tmp_path, "", [])
        server.endpoint = endpoint
        client = server.client()
        client.create_trail(Name="quiet", S3BucketName=BUCKET)
        client.start_logging(Name="quiet")
        ids = [str(uuid.uuid4()) for _ in range(100)]
        server.account_id = client.get_trail(Name="quiet")["Trail"]["TrailARN"].split(":")[4]
        assert ingest_ids(server, ids).status_code == 200
        wait_for(lambda: set(ids) <= set(looked_up_ids(server)), timeout=60, what="events in LookupEvents")

        def delivered():
            found = set()
            for path in (data_dir / "buckets" / BUCKET).rglob("*.json.gz"):
                import gzip
                found.update(r["eventID"] for r in json.loads(gzip.decompress(path.read_bytes()))["Records"])
            return set(ids) <= found

        wait_for(delivered, timeout=60, what="events delivered to the bucket")
        status, body = http_get(f"{endpoint}/health")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        _, metrics = http_get(f"{endpoint}/metrics")
        dropped = [line for line in metrics.splitlines() if line.startswith("opentrail_log_lines_dropped_total ")]
        assert dropped and int(dropped[0].split()[1]) > 0, dropped
        assert proc.poll() is None
    finally:
        proc.terminate()
        assert proc.wait(timeout=STOP_TIMEOUT) == 0


def test_a_dead_background_task_is_restarted_and_reported(start_server, monkeypatch):
    monkeypatch.setenv("OPENTRAIL_FAULT_INJECT", "delivery-panic-once")
    server = start_server("--delivery-interval", "1s")
    monkeypatch.delenv("OPENTRAIL_FAULT_INJECT")

    def restarted():
        status, body = http_get(f"{server.endpoint}/health")
        report = json.loads(body)
        return status == 200 and report["components"]["delivery"].get("restarts") == 1 and report

    report = wait_for(restarted, timeout=60, what="/health to show the restarted delivery task")
    assert "injected fault" in report["components"]["delivery"]["lastError"]
    assert 'opentrail_task_restarts_total{component="delivery"} 1' in server.metrics()

    # The restarted task delivers.
    server.create_bucket(BUCKET)
    client = server.client()
    client.create_trail(Name="after-restart", S3BucketName=BUCKET)
    client.start_logging(Name="after-restart")
    assert ingest_ids(server, [str(uuid.uuid4())]).status_code == 200
    wait_for(lambda: any((server.data_dir / "buckets" / BUCKET).rglob("*.json.gz")), timeout=60, what="a delivered log file")
