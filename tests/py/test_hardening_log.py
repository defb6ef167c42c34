"""Issue 9, the event log: damage that is not a torn tail and cursors beyond the log's end
refuse to start (and `opentrail log repair` gets the server going again without reusing an
offset), a full disk answers 503 and recovers without a restart, and a garbage consumer
cursor is rewritten instead of failing every commit. The consumers' cursors live in the
metadata store (`meta.db`, documents of collection `log_cursors`)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import OPENTRAIL_BIN, _child_env, wait_for
from test_ingest import post_events, valid_record


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def send(server, count: int, batch: int = 10) -> list[str]:
    """Sends `count` events in batches; returns their eventIDs (all acknowledged)."""
    ids = []
    for start in range(0, count, batch):
        records = [
            valid_record(server.account_id, str(uuid.uuid4()), eventTime=now_iso())
            for _ in range(min(batch, count - start))
        ]
        response = post_events(server, "\n".join(json.dumps(r) for r in records).encode())
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["failed"] == []
        ids.extend(s["eventID"] for s in answer["successful"])
    return ids


def history_ids(server) -> set[str]:
    paginator = server.client().get_paginator("lookup_events")
    return {e["EventId"] for page in paginator.paginate() for e in page["Events"]}


def wait_for_history(server, ids, timeout: float = 90.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while True:
        seen = history_ids(server)
        if set(ids) <= seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "log" / "segments").glob("*.log"))


def serve_must_refuse(data_dir: Path) -> str:
    """Runs `opentrail serve` on the data dir; it must exit non-zero before listening.
    Returns its stderr."""
    proc = subprocess.Popen(
        [str(OPENTRAIL_BIN), "serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=_child_env(),
    )
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"opentrail served a damaged log\n{err.decode(errors='replace')[-4000:]}")
    stderr = err.decode(errors="replace")
    assert proc.returncode != 0, f"opentrail started on a damaged log:\n{out!r}\n{stderr[-4000:]}"
    assert b"listening on" not in out
    return stderr


def stored_cursors(data_dir: Path) -> dict[str, str]:
    """The event log's consumer cursors in the metadata store, as stored (offsets in decimal)."""
    with sqlite3.connect(data_dir / "meta.db") as db:
        rows = db.execute("SELECT key, value FROM documents WHERE collection = 'log_cursors'").fetchall()
    return dict(rows)


def set_stored_cursors(data_dir: Path, value: str | None) -> None:
    """Sets every stored cursor to `value`, or deletes them all (None)."""
    with sqlite3.connect(data_dir / "meta.db") as db:
        if value is None:
            db.execute("DELETE FROM documents WHERE collection = 'log_cursors'")
        else:
            db.execute("UPDATE documents SET value = ? WHERE collection = 'log_cursors'", (value,))


def repair(data_dir: Path) -> dict:
    result = subprocess.run(
        [str(OPENTRAIL_BIN), "log", "repair", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_child_env(),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ------------------------------------------------------------------ item 2: damaged log


def test_a_flipped_byte_before_valid_records_refuses_to_start_and_repair_keeps_the_rest(start_server):
    server = start_server()
    ids = send(server, 300)
    assert set(ids) <= wait_for_history(server, ids)
    server.stop_cleanly()
    [segment] = segments(server.data_dir)
    damaged = bytearray(segment.read_bytes())
    middle = len(damaged) // 2
    damaged[middle] ^= 0x01
    segment.write_bytes(bytes(damaged))

    stderr = serve_must_refuse(server.data_dir)
    assert segment.name in stderr and "not a torn tail" in stderr, stderr[-4000:]
    assert "opentrail log repair" in stderr
    assert segment.read_bytes() == bytes(damaged), "a refused start must change nothing"

    report = repair(server.data_dir)
    assert report["Repaired"] is True
    assert len(report["DamagedByteRanges"]) == 1
    start, end = report["DamagedByteRanges"][0]["start"], report["DamagedByteRanges"][0]["end"]
    assert start <= middle < end
    assert Path(report["QuarantinedCopy"]).read_bytes() == bytes(damaged)

    server.start()
    later = send(server, 50)
    seen = wait_for_history(server, later)
    assert set(later) <= seen, "events sent after the repair must reach event history"
    # Only the one damaged record may be missing.
    assert len(set(ids) - seen) <= 1


def test_a_cursor_beyond_the_log_end_refuses_to_start(start_server):
    server = start_server()
    ids = send(server, 200)
    assert set(ids) <= wait_for_history(server, ids)
    server.stop_cleanly()
    assert "event-history" in stored_cursors(server.data_dir), "event history commits a cursor"
    assert not (server.data_dir / "log" / "cursors").exists(), "no cursor files any more"
    [segment] = segments(server.data_dir)
    # A cut that looks like a torn tail (nothing valid after it), yet consumers read past it.
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size // 2)
    size = segment.stat().st_size

    stderr = serve_must_refuse(server.data_dir)
    assert "beyond" in stderr and "reuse" in stderr and "log_cursors" in stderr, stderr[-4000:]
    assert segment.stat().st_size == size, "a refused start must change nothing"

    report = repair(server.data_dir)
    assert report["Repaired"] is True and report["PlaceholderRecords"] > 0

    server.start()
    later = send(server, 30)
    seen = wait_for_history(server, later)
    assert set(later) <= seen, "new events must not take offsets history has passed"


def test_event_history_beyond_the_log_end_refuses_to_start(start_server):
    # Without any cursor, event history's own position still tells that the log lost
    # records it had read.
    server = start_server()
    ids = send(server, 200)
    assert set(ids) <= wait_for_history(server, ids)
    server.stop_cleanly()
    set_stored_cursors(server.data_dir, None)
    [segment] = segments(server.data_dir)
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size // 2)

    stderr = serve_must_refuse(server.data_dir)
    assert "event history has applied" in stderr and "reuse" in stderr, stderr[-4000:]

    report = repair(server.data_dir)
    assert report["Repaired"] is True and report["PlaceholderRecords"] > 0
    server.start()
    later = send(server, 30)
    assert set(later) <= wait_for_history(server, later), "history must not skip new events"


# ------------------------------------------------------------------ item 3: disk full

DISK_MIB = 48


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of DISK_MIB MiB (mounting needs root or CAP_SYS_ADMIN; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full test (needs root): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(path: Path, leave_bytes: int) -> None:
    """Writes `path` until the filesystem has about `leave_bytes` free."""
    stat = os.statvfs(path.parent)
    size = max(stat.f_bavail * stat.f_frsize - leave_bytes, 0)
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        while size > 0:
            try:
                f.write(chunk[: min(size, len(chunk))])
            except OSError:
                break
            size -= len(chunk)


def post_batch(server, count: int = 100) -> tuple[int, dict, list[str]]:
    records = [
        valid_record(server.account_id, str(uuid.uuid4()), eventTime=now_iso(), requestParameters={"pad": "x" * 300})
        for _ in range(count)
    ]
    response = post_events(server, "\n".join(json.dumps(r) for r in records).encode())
    body = response.json() if response.content else {}
    ids = [s["eventID"] for s in body.get("successful", [])] if response.status_code == 200 else []
    return response.status_code, {"body": body, "headers": dict(response.headers), "text": response.text}, ids


def test_a_full_disk_answers_503_and_ingest_recovers_without_a_restart(small_disk, start_server):
    server = start_server(data_dir=small_disk / "data")
    acknowledged = send(server, 20)
    filler = small_disk / "filler"
    fill(filler, leave_bytes=2 << 20)

    statuses = []
    refused = None
    for _ in range(400):
        status, answer, ids = post_batch(server)
        statuses.append(status)
        acknowledged.extend(ids)
        if status != 200:
            refused = answer
            if statuses[-3:] == [503, 503, 503]:
                break
    assert 503 in statuses, f"the disk never filled up: {statuses[-5:]}"
    assert set(statuses) <= {200, 503}, f"unexpected statuses {sorted(set(statuses))}: {refused}"
    assert "ServiceUnavailable" in refused["text"], refused

    filler.unlink()
    recovered = []

    def ingest_recovered() -> bool:
        status, _answer, ids = post_batch(server)
        recovered.append(status)
        acknowledged.extend(ids)
        return status == 200

    wait_for(ingest_recovered, timeout=60, interval=0.3, what="ingest to recover once space returned")
    assert set(recovered) <= {200, 503}, recovered
    acknowledged.extend(send(server, 30))

    server.stop()
    server.start()
    seen = wait_for_history(server, acknowledged)
    missing = set(acknowledged) - seen
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged events are missing from LookupEvents"


# ------------------------------------------------------------------ item 9: garbage cursors


def test_a_garbage_cursor_is_rewritten_and_events_keep_flowing(start_server):
    server = start_server()
    ids = send(server, 50)
    assert set(ids) <= wait_for_history(server, ids)
    server.stop_cleanly()
    cursors = stored_cursors(server.data_dir)
    assert set(cursors) >= {"event-history"}, cursors
    assert all(value.isdigit() for value in cursors.values()), cursors
    set_stored_cursors(server.data_dir, "\xab garbage")

    server.start()
    assert "CURSOR UNREADABLE" in server.log_text()
    # Rewritten (to re-read from the oldest retained offset: nothing is skipped), and
    # committed again by its consumer.
    rewritten = stored_cursors(server.data_dir)
    assert set(rewritten) == set(cursors) and all(v.isdigit() for v in rewritten.values()), rewritten
    later = send(server, 50)
    seen = wait_for_history(server, later)
    assert set(ids + later) <= seen
    server.stop_cleanly()
    server.start()
    assert "CURSOR UNREADABLE" not in server.log_text()
    assert set(ids + later) <= wait_for_history(server, ids + later)
    # Commits work again: event history's cursor moves past the rewritten position.
    deadline = time.monotonic() + 90
    while stored_cursors(server.data_dir)["event-history"] == "0":
        assert time.monotonic() < deadline, "event history never committed its cursor again"
        send(server, 10)
        time.sleep(0.5)


def remove_cursor(data_dir: Path, consumer: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(OPENTRAIL_BIN), "log", "remove-cursor", "--data-dir", str(data_dir), consumer],
        capture_output=True,
        text=True,
        timeout=60,
        env=_child_env(),
    )


def test_log_remove_cursor_forgets_a_consumer_the_server_no_longer_runs(start_server):
    server = start_server()
    send(server, 10)
    server.stop_cleanly()
    with sqlite3.connect(server.data_dir / "meta.db") as db:
        db.execute("INSERT INTO documents (collection, key, value) VALUES ('log_cursors', 'retired', '0')")
    result = remove_cursor(server.data_dir, "retired")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"Consumer": "retired", "Removed": True}
    assert "retired" not in stored_cursors(server.data_dir)
    assert "event-history" in stored_cursors(server.data_dir)
    result = remove_cursor(server.data_dir, "retired")
    assert json.loads(result.stdout) == {"Consumer": "retired", "Removed": False}
    result = remove_cursor(server.data_dir, "../meta")
    assert result.returncode != 0 and "invalid consumer name" in result.stderr, result.stderr
    # Never under the feet of a running server.
    server.start()
    result = remove_cursor(server.data_dir, "event-history")
    assert result.returncode != 0, result.stdout
    assert "event-history" in stored_cursors(server.data_dir)
