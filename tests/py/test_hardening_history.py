"""Event history under accident and attack (issue 9, items 5, 9 and 19), through the real
binary: the accepted eventTime window, thousands of day partitions under a low open-file
limit, a day partition that cannot be written, a damaged segment, and eventID squatting."""

from __future__ import annotations

import datetime as dt
import json
import resource
import time
import uuid

import pytest

from conftest import REGION
from test_delivery import wait_for
from test_ingest import post_events, valid_record

DAY = dt.timedelta(days=1)
# Long enough that every day since CloudTrail began (2013-11-01) is inside the window.
LONG_RETENTION = ("--history-retention-days", "5000")
# History flushes its memtable at 24 MiB: records this big make ingest flush on its own.
PADDING = "x" * 6000


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def stamp(time: dt.datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(server, time: dt.datetime, *, padded: bool = False, event_id: str | None = None, **fields) -> dict:
    extra = {"requestParameters": {"padding": PADDING}} if padded else {}
    extra.update(fields)
    return valid_record(server.account_id, event_id or str(uuid.uuid4()), eventTime=stamp(time), **extra)


def post(server, records: list[dict]) -> dict:
    body = "\n".join(json.dumps(r) for r in records).encode()
    response = post_events(server, body)
    assert response.status_code == 200, response.text
    return response.json()


def post_all(server, records: list[dict], per_request: int = 100) -> None:
    for start in range(0, len(records), per_request):
        answer = post(server, records[start:start + per_request])
        assert answer["failed"] == [], answer["failed"][:3]


def limit_open_files(server, limit: int = 256) -> None:
    """Lowers the running server's open-file limit (soft and hard)."""
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))


def lookup_ids(server, start: dt.datetime, end: dt.datetime, **kwargs) -> list[str]:
    client = server.client()
    ids, token = [], None
    while True:
        page = client.lookup_events(
            StartTime=start, EndTime=end, MaxResults=50, **kwargs, **({"NextToken": token} if token else {})
        )
        ids.extend(e["EventId"] for e in page["Events"])
        token = page.get("NextToken")
        if not token:
            return ids


def ingested_ids(server, start: dt.datetime, end: dt.datetime) -> set[str]:
    """Events of `records`' kind (s3 CreateBucket) in the window; self-audit events ignored."""
    return set(lookup_ids(server, start, end, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}]))


def history_segments(server) -> int:
    try:
        return len(json.loads((server.data_dir / "history" / "MANIFEST").read_text())["segments"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for_segments(server, at_least: int, timeout: float = 120.0) -> None:
    """Waits (without failing) until history has written `at_least` segments: until the
    flush the ingested records caused has run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and history_segments(server) < at_least:
        time.sleep(0.5)


def spread_over_days(server, first: dt.datetime, days: int, per_day: int, padded: bool) -> list[dict]:
    return [
        record(server, first + day * DAY + dt.timedelta(minutes=minute), padded=padded)
        for day in range(days)
        for minute in range(per_day)
    ]


# --------------------------------------------------------------------------- item 5


def test_event_times_outside_the_window_are_rejected_per_record(server):
    now = utc_now()
    cases = [
        ("now", now, True),
        ("CloudTrail's first day", dt.datetime(2013, 11, 1, tzinfo=dt.timezone.utc), True),
        ("23 hours ahead", now + dt.timedelta(hours=23), True),
        ("25 hours ahead", now + dt.timedelta(hours=25), False),
        ("far future", dt.datetime(2117, 3, 4, tzinfo=dt.timezone.utc), False),
        ("before CloudTrail", dt.datetime(2013, 10, 31, 23, 59, 59, tzinfo=dt.timezone.utc), False),
        ("epoch", dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), False),
    ]
    answer = post(server, [record(server, time) for _, time, _ in cases])
    accepted = {s["id"] for s in answer["successful"]}
    failed = {f["id"]: f for f in answer["failed"]}
    for index, (name, time, ok) in enumerate(cases):
        if ok:
            assert str(index) in accepted, (name, failed.get(str(index)))
        else:
            assert failed[str(index)]["errorCode"] == "EventTimeOutOfRange", name
            message = failed[str(index)]["errorMessage"]
            assert stamp(time) in message and "2013-11-01T00:00:00Z" in message, message


def test_thousands_of_days_under_a_low_open_file_limit_stay_searchable(start_server):
    server = start_server(*LONG_RETENTION)
    limit_open_files(server)
    first = dt.datetime(2015, 1, 1, 12, tzinfo=dt.timezone.utc)
    days = 2400
    # ~29 MB of records on 2,400 distinct days: history flushes while they arrive, one
    # segment per day partition.
    old = spread_over_days(server, first, days, per_day=2, padded=True)
    post_all(server, old)
    # Events sent after that flush must become searchable too.
    wait_for_segments(server, days // 2)
    now = utc_now()
    recent = [record(server, now - dt.timedelta(minutes=minute)) for minute in range(1, 21)]
    post_all(server, recent)

    recent_ids = {r["eventID"] for r in recent}
    wait_for(lambda: ingested_ids(server, now - dt.timedelta(hours=1), now) == recent_ids,
             timeout=120, what="the recent events searchable after thousands of day partitions")
    samples = [0, 1, 700, 1500, days - 1]
    for day in samples:
        start = first + day * DAY - dt.timedelta(hours=1)
        expected = {r["eventID"] for r in old[day * 2:day * 2 + 2]}
        assert ingested_ids(server, start, start + dt.timedelta(hours=2)) == expected, day
    everything = ingested_ids(server, first - DAY, now)
    assert everything == {r["eventID"] for r in old} | recent_ids

    # Across a restart (shutdown flush, reopening 2,400 segments) under the same limit.
    server.stop_cleanly()
    server.start()
    limit_open_files(server)
    more = [record(server, utc_now())]
    post_all(server, more)
    wait_for(lambda: more[0]["eventID"] in ingested_ids(server, now - dt.timedelta(hours=1), utc_now()),
             timeout=60, what="a new event searchable after the restart")
    everything = ingested_ids(server, first - DAY, utc_now())
    assert everything == {r["eventID"] for r in old} | recent_ids | {more[0]["eventID"]}
    assert "Too many open files" not in server.log_path.read_text(errors="replace")


def test_a_day_partition_that_cannot_be_written_does_not_stop_the_others(start_server):
    server = start_server(*LONG_RETENTION)
    server.stop_cleanly()
    blocked_day = dt.datetime(2020, 2, 2, 8, tzinfo=dt.timezone.utc)
    # A file where the day's partition directory would go: that day cannot be written.
    (server.data_dir / "history" / "p-2020-02-02").write_bytes(b"in the way")
    server.start()
    first = dt.datetime(2020, 3, 1, 8, tzinfo=dt.timezone.utc)
    # Enough records to make history flush while they arrive.
    old = spread_over_days(server, first, 1000, per_day=4, padded=True)
    blocked = [record(server, blocked_day + dt.timedelta(minutes=m), padded=True) for m in range(5)]
    post_all(server, blocked + old)
    wait_for_segments(server, 500)
    now = utc_now()
    recent = [record(server, now - dt.timedelta(minutes=m)) for m in range(1, 6)]
    post_all(server, recent)

    recent_ids = {r["eventID"] for r in recent}
    blocked_ids = {r["eventID"] for r in blocked}
    wait_for(lambda: ingested_ids(server, now - dt.timedelta(hours=1), now) == recent_ids,
             timeout=120, what="recent events searchable while one day cannot be written")
    wait_for(lambda: "failed to write an event history day partition" in server.log_path.read_text(errors="replace"),
             timeout=60, what="the failed partition reported")
    window = (blocked_day - dt.timedelta(hours=1), blocked_day + dt.timedelta(hours=1))
    assert ingested_ids(server, *window) == blocked_ids
    assert ingested_ids(server, blocked_day - DAY, now) == {r["eventID"] for r in old} | blocked_ids | recent_ids

    # After a restart the blocked day's events are still there (read again from the event log).
    server.restart()
    wait_for(lambda: ingested_ids(server, *window) == blocked_ids, timeout=120,
             what="the blocked day's events searchable after a restart")
    assert ingested_ids(server, blocked_day - DAY, utc_now()) == {r["eventID"] for r in old} | blocked_ids | recent_ids


# --------------------------------------------------------------------------- item 9


@pytest.mark.parametrize("where", ["record blocks", "footer"])
def test_a_damaged_history_segment_is_quarantined_and_indexed_again(start_server, where):
    server = start_server(*LONG_RETENTION)
    day = utc_now().replace(hour=0, minute=0, second=0) - 3 * DAY
    records = [record(server, day + dt.timedelta(minutes=m), padded=bool(m % 2)) for m in range(300)]
    post_all(server, records)
    window = (day - dt.timedelta(hours=1), day + DAY)
    expected = {r["eventID"] for r in records}
    wait_for(lambda: ingested_ids(server, *window) == expected, timeout=60, what="events indexed")
    server.stop_cleanly()  # flushes history into segment files

    partition = server.data_dir / "history" / f"p-{day:%Y-%m-%d}"
    segments = sorted(partition.glob("seg-*.seg"))
    assert len(segments) == 1, segments
    damaged = bytearray(segments[0].read_bytes())
    # Record blocks are found damaged by a lookup; the footer when the store opens.
    span = range(64, 64 + 256) if where == "record blocks" else range(len(damaged) - 40, len(damaged) - 20)
    for at in span:
        damaged[at] ^= 0x5A
    segments[0].write_bytes(bytes(damaged))

    server.start()
    # LookupEvents over that day answers (never an internal error) ...
    client = server.client()
    client.lookup_events(StartTime=window[0], EndTime=window[1])
    # ... and, once the damaged segment is quarantined and the event log indexed again,
    # finds every event.
    wait_for(lambda: ingested_ids(server, *window) == expected, timeout=120,
             what="every event of the damaged day searchable again")
    quarantined = list((server.data_dir / "history" / "quarantine").iterdir())
    assert len(quarantined) == 1, quarantined
    assert "quarantined" in server.log_path.read_text(errors="replace")
    # Durable: a restart finds them too, and the damaged file stays aside.
    server.restart()
    wait_for(lambda: ingested_ids(server, *window) == expected, timeout=60, what="events after restart")


# --------------------------------------------------------------------------- item 19


def test_an_event_id_sent_first_by_someone_else_does_not_hide_the_genuine_record(server):
    now = utc_now()
    event_id = str(uuid.uuid4())
    squatter = record(server, now - dt.timedelta(minutes=5), event_id=event_id,
                      eventName="DeleteBucket", sourceIPAddress="203.0.113.66")
    genuine = record(server, now - dt.timedelta(minutes=2), event_id=event_id)
    assert len(post(server, [squatter])["successful"]) == 1
    assert len(post(server, [genuine])["successful"]) == 1

    client = server.client()

    def by_id():
        events = client.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}])["Events"]
        return sorted(e["EventName"] for e in events)

    wait_for(lambda: by_id() == ["CreateBucket", "DeleteBucket"], timeout=90,
             what="both records under the squatted eventID")
    # The genuine record is what a search for it finds.
    assert event_id in ingested_ids(server, now - dt.timedelta(hours=1), now)
    log = server.log_path.read_text(errors="replace")
    assert "eventID conflict" in log and event_id in log

    # Identical re-sends (an import run twice) are still deduplicated.
    post(server, [genuine, squatter])
    marker = record(server, now)
    post(server, [marker])
    wait_for(lambda: marker["eventID"] in ingested_ids(server, now - dt.timedelta(hours=1), utc_now()),
             timeout=30, what="a later event indexed")
    assert by_id() == ["CreateBucket", "DeleteBucket"]
    assert server.log_path.read_text(errors="replace").count("eventID conflict") == 1


def test_reimporting_the_same_records_stays_idempotent(server):
    now = utc_now()
    records = [record(server, now - dt.timedelta(minutes=m)) for m in range(1, 31)]
    for _ in range(3):
        post_all(server, records)
    # Reordered members and other spacing are the same record.
    reordered = [dict(reversed(list(r.items()))) for r in records[:5]]
    post_all(server, reordered)
    window = (now - dt.timedelta(hours=1), now)
    wait_for(lambda: len(lookup_ids(server, *window, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}])) >= 30, timeout=30, what="indexed")
    marker = record(server, now)
    post(server, [marker])
    wait_for(lambda: marker["eventID"] in ingested_ids(server, window[0], utc_now()), timeout=90, what="marker")
    ids = lookup_ids(server, window[0], utc_now(), LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateBucket"}])
    assert sorted(ids) == sorted({r["eventID"] for r in records} | {marker["eventID"]})
    assert "eventID conflict" not in server.log_path.read_text(errors="replace")
