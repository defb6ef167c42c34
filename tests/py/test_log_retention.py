"""Event log retention (issue 11, item 4), through the real binary: old segments are deleted
once every consumer is past them and they are older than `--event-log-retention`; every
acknowledged event survives in LookupEvents; a lagging consumer keeps its segments and the
server says so in a warning line and in /metrics."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid

from conftest import wait_for
from test_ingest import post_events, valid_record

# Small segments (the hidden test flag) so that a few MB roll many of them.
SEGMENT_BYTES = 65536
RETENTION = ("--event-log-retention", "2s", "--event-log-segment-bytes", str(SEGMENT_BYTES))
EVENT_NAME = "RetentionLoad"
PADDING = "x" * 1000


def segment_files(server) -> list[str]:
    return sorted(p.name for p in (server.data_dir / "log" / "segments").glob("*.log"))


def segments_bytes(server) -> int:
    return sum(p.stat().st_size for p in (server.data_dir / "log" / "segments").glob("*.log"))


def gauge(server, name: str, labels: str = "") -> int | None:
    pattern = re.compile(rf"^{re.escape(name + labels)} (\d+)$", re.MULTILINE)
    match = pattern.search(server.metrics())
    return int(match.group(1)) if match else None


def ingest(server, count: int, per_request: int = 100, pause: float = 0.0) -> list[str]:
    """Ingests `count` management events named EVENT_NAME; returns their acknowledged ids."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    acknowledged = []
    for _ in range(0, count, per_request):
        records = [
            valid_record(server.account_id, str(uuid.uuid4()), eventTime=now, eventName=EVENT_NAME,
                         requestParameters={"padding": PADDING})
            for _ in range(per_request)
        ]
        body = "\n".join(json.dumps(r) for r in records).encode()
        response = post_events(server, body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["failed"] == [], answer["failed"][:3]
        acknowledged.extend(s["eventID"] for s in answer["successful"])
        time.sleep(pause)
    return acknowledged


def looked_up_ids(server) -> set[str]:
    client = server.client()
    ids, token = set(), None
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    while True:
        page = client.lookup_events(
            StartTime=start, EndTime=end, MaxResults=50,
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": EVENT_NAME}],
            **({"NextToken": token} if token else {}),
        )
        ids.update(e["EventId"] for e in page["Events"])
        token = page.get("NextToken")
        if not token:
            return ids


def test_old_segments_are_deleted_and_every_acknowledged_event_survives_a_restart(start_server):
    server = start_server(*RETENTION)
    ids = ingest(server, 2000, pause=0.05)
    rolled = len(segment_files(server))
    first = "00000000000000000000.log"

    # Retention passes every second: the oldest segments go once history and delivery (no
    # trail: it skips everything) have passed them and they are 2 s old.
    wait_for(lambda: first not in segment_files(server), timeout=60, what="the first segment deleted")
    wait_for(lambda: (gauge(server, "opentrail_event_log_segments_deleted_total") or 0) > 0,
             timeout=30, what="deletions counted in /metrics")
    assert len(segment_files(server)) < rolled
    start = gauge(server, "opentrail_event_log_start_offset")
    assert start is not None and start > 0
    assert int(segment_files(server)[0].removesuffix(".log")) == start
    on_disk = segments_bytes(server)
    reported = gauge(server, "opentrail_event_log_disk_bytes")
    assert reported is not None and 0 < reported <= 2 * on_disk + SEGMENT_BYTES
    assert reported < 2000 * len(PADDING), "far less than everything ingested"
    for consumer in ("event-history", "trail-delivery"):
        lag = gauge(server, "opentrail_event_log_consumer_lag_records", f'{{consumer="{consumer}"}}')
        assert lag is not None, consumer
        assert gauge(server, "opentrail_event_log_consumer_holding_retention",
                     f'{{consumer="{consumer}"}}') == 0, consumer
    assert "event log retention held back" not in server.log_text()

    # Every acknowledged event is still searchable, also after a restart.
    wait_for(lambda: looked_up_ids(server) >= set(ids), timeout=60, what="every event searchable")
    server.restart()
    assert looked_up_ids(server) >= set(ids)
    # The log opens from its retained segments and appends after them.
    more = ingest(server, 100)
    wait_for(lambda: looked_up_ids(server) >= set(ids) | set(more), timeout=60, what="new events searchable")


def test_a_lagging_consumer_keeps_its_segments_and_is_reported(start_server):
    # Delivery holds every event of a trail's open log file until the file is written: with
    # an hour's interval it lags, as it would behind a bucket that is down for a day.
    server = start_server(*RETENTION, "--delivery-interval", "1h")
    server.create_bucket("retention-bucket")
    client = server.client()
    client.create_trail(Name="held", S3BucketName="retention-bucket")
    client.start_logging(Name="held")
    time.sleep(1)
    ingest(server, 1500, pause=0.05)
    holding = '{consumer="trail-delivery"}'

    wait_for(lambda: gauge(server, "opentrail_event_log_consumer_holding_retention", holding) == 1,
             timeout=60, what="delivery reported as holding retention back")
    wait_for(lambda: "event log retention held back" in server.log_text(), timeout=30,
             what="the warning line")
    assert "trail-delivery@" in server.log_text()
    assert server.log_text().count("event log retention held back") == 1, "rate-limited"
    end = gauge(server, "opentrail_event_log_durable_end_offset")
    lag = gauge(server, "opentrail_event_log_consumer_lag_records", holding)
    start = gauge(server, "opentrail_event_log_start_offset")
    assert lag is not None and lag >= 1500
    assert start <= end - lag, "nothing delivery still needs is deleted"
    assert (gauge(server, "opentrail_event_log_retention_held_bytes") or 0) > SEGMENT_BYTES
    assert gauge(server, "opentrail_event_log_consumer_holding_retention", '{consumer="event-history"}') == 0
    kept = len(segment_files(server))
    assert segments_bytes(server) >= 1500 * len(PADDING), "the held events are all on disk"

    # Once delivery catches up (a short interval after a restart), its segments go too.
    server.stop_cleanly()
    server.args = [*RETENTION, "--delivery-interval", "1s"]
    server.start()
    wait_for(lambda: gauge(server, "opentrail_event_log_consumer_holding_retention", holding) == 0
             and len(segment_files(server)) < kept / 2, timeout=60, what="delivery's segments released")
    delivered = list((server.data_dir / "buckets" / "retention-bucket").rglob("*.json.gz"))
    assert delivered, "delivery wrote the held events"
