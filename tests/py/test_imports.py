"""CloudTrail Lake imports (StartImport, GetImport, ListImports, StopImport,
ListImportFailures) against the real `opentrail` binary with boto3 and the AWS CLI: a trail
bucket in the data dir holding AWS-delivered log files (the conformance files), a digest
and an Insights file is copied into an event data store; the modelled errors; a stopped
import started again completes without writing any event twice."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import ACCOUNT_ID, REGION, error_code, wait_for
from test_channel_lake import query
from test_import_layout import digest_file, insight_file
from test_ingest import conformance_files

FILE_ACCOUNT = "218007301253"
DAY = "2023/07/10"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/import-role"
START = "2023-07-10T00:00:00Z"
END = "2023-07-10T23:59:59Z"


def prefix(kind: str) -> str:
    return f"AWSLogs/{FILE_ACCOUNT}/{kind}/{REGION}/{DAY}"


def fill_trail_bucket(server, bucket: str) -> dict:
    """Writes the conformance log files, a digest, an Insights file and a foreign file
    into the bucket's directory; returns what an import of 2023-07-10 must copy."""
    server.create_bucket(bucket)
    root = server.data_dir / "buckets" / bucket
    logs = {}
    events = 0
    for path in conformance_files():
        text = path.read_bytes()
        events += len(json.loads(text)["Records"])
        key = f"{prefix('CloudTrail')}/{path.name}.gz"
        logs[key] = text
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.compress(text))
    digest_key = f"{prefix('CloudTrail-Digest')}/{FILE_ACCOUNT}_CloudTrail-Digest_{REGION}_t_{REGION}_20230710T120000Z.json.gz"
    (root / digest_key).parent.mkdir(parents=True, exist_ok=True)
    (root / digest_key).write_bytes(digest_file(bucket, digest_key, logs))
    insight_key = f"{prefix('CloudTrail-Insight')}/{FILE_ACCOUNT}_CloudTrail-Insight_{REGION}_20230710T1200Z_abcdEFGH01234567.json.gz"
    (root / insight_key).parent.mkdir(parents=True, exist_ok=True)
    (root / insight_key).write_bytes(insight_file("2023-07-10T12:00:00Z", "2023-07-10T12:30:00Z"))
    (root / prefix("CloudTrail") / "README.txt").write_text("not a log file")
    return {"files": len(logs) + 1, "events": events + 2, "prefixes": 2}


def create_store(ct, name: str = "imports") -> str:
    return ct.create_event_data_store(Name=name)["EventDataStoreArn"]


def source(bucket: str, path: str = "") -> dict:
    uri = f"s3://{bucket}/{path}" if path else f"s3://{bucket}"
    return {"S3": {"S3LocationUri": uri, "S3BucketRegion": REGION, "S3BucketAccessRoleArn": ROLE}}


def wait_status(ct, import_id: str, *statuses: str) -> dict:
    found = {}

    def done() -> bool:
        found.update(ct.get_import(ImportId=import_id))
        return found["ImportStatus"] in statuses

    wait_for(done, timeout=90, what=f"import {import_id} to reach {statuses}")
    return found


def imported_files(server, store_arn: str, import_id: str) -> list[Path]:
    store = server.data_dir / "lake" / store_arn.rsplit("/", 1)[1]
    return sorted(store.glob(f"eventday=*/import-{import_id}-*.parquet"))


def test_import_copies_log_and_insight_files_and_skips_digests(server):
    ct = server.client()
    expected = fill_trail_bucket(server, "trail-bucket")
    store = create_store(ct)
    started = ct.start_import(
        Destinations=[store], ImportSource=source("trail-bucket"),
        StartEventTime=START, EndEventTime=END,
    )
    assert started["Destinations"] == [store]
    assert started["ImportStatus"] in ("INITIALIZING", "IN_PROGRESS", "COMPLETED")
    assert started["ImportSource"]["S3"]["S3LocationUri"] == "s3://trail-bucket"
    import_id = started["ImportId"]
    assert len(import_id) == 36
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "COMPLETED", ct.list_import_failures(ImportId=import_id)
    assert final["ImportStatistics"] == {
        "PrefixesFound": expected["prefixes"],
        "PrefixesCompleted": expected["prefixes"],
        "FilesCompleted": expected["files"],
        "EventsCompleted": expected["events"],
        "FailedEntries": 0,
    }
    assert ct.list_import_failures(ImportId=import_id)["Failures"] == []
    assert imported_files(server, store, import_id), "the events are in the store's lake folder"
    listed = ct.list_imports(Destination=store)["Imports"]
    assert [i["ImportId"] for i in listed] == [import_id]
    assert listed[0]["ImportStatus"] == "COMPLETED"
    assert ct.list_imports(ImportStatus="FAILED")["Imports"] == []
    # The AWS CLI reads the same import.
    cli = server.aws("cloudtrail", "get-import", "--import-id", import_id)
    assert cli["ImportStatistics"]["EventsCompleted"] == expected["events"]
    # The time range bounds what is copied: nothing of 2023-07-10 is in this one.
    other = ct.start_import(
        Destinations=[store], ImportSource=source("trail-bucket"),
        StartEventTime="2024-01-01T00:00:00Z", EndEventTime="2024-01-02T00:00:00Z",
    )["ImportId"]
    stats = wait_status(ct, other, "COMPLETED")["ImportStatistics"]
    assert stats["PrefixesFound"] == 0 and stats["EventsCompleted"] == 0


def test_errors(server):
    ct = server.client()
    server.create_bucket("empty-bucket")
    store = create_store(ct)
    unknown = "11111111-2222-3333-4444-555555555555"
    assert error_code(ct.get_import, ImportId=unknown) == "ImportNotFoundException"
    assert error_code(ct.stop_import, ImportId=unknown) == "ImportNotFoundException"
    assert error_code(ct.start_import, ImportId=unknown) == "ImportNotFoundException"
    assert ct.list_import_failures(ImportId=unknown)["Failures"] == []
    bad_uri = {"S3": {"S3LocationUri": "https://empty-bucket/x", "S3BucketRegion": REGION, "S3BucketAccessRoleArn": ROLE}}
    assert error_code(ct.start_import, Destinations=[store], ImportSource=bad_uri) == "InvalidImportSourceException"
    assert error_code(ct.start_import, Destinations=[store], ImportSource=source("no-such-bucket")) == "InvalidImportSourceException"
    missing = store.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    assert error_code(ct.start_import, Destinations=[missing], ImportSource=source("empty-bucket")) == "EventDataStoreNotFoundException"
    assert error_code(ct.start_import, Destinations=["not:an-arn"], ImportSource=source("empty-bucket")) == "EventDataStoreARNInvalidException"
    assert error_code(ct.start_import, Destinations=[store]) == "InvalidParameterException"
    assert error_code(
        ct.start_import, Destinations=[store], ImportSource=source("empty-bucket"),
        StartEventTime=END, EndEventTime=START,
    ) == "InvalidParameterException"
    ct.stop_event_data_store_ingestion(EventDataStore=store)
    assert error_code(ct.start_import, Destinations=[store], ImportSource=source("empty-bucket")) == "InvalidEventDataStoreStatusException"
    ct.start_event_data_store_ingestion(EventDataStore=store)
    done = ct.start_import(Destinations=[store], ImportSource=source("empty-bucket"))["ImportId"]
    assert wait_status(ct, done, "COMPLETED")["ImportStatistics"]["PrefixesFound"] == 0
    # A completed import cannot be started again.
    assert error_code(ct.start_import, ImportId=done) == "InvalidParameterException"
    assert error_code(ct.list_imports, NextToken="bm90LWEta2V5") == "InvalidNextTokenException"


def test_unreadable_file_is_a_failure_and_a_retry_reads_it(server):
    ct = server.client()
    fill_trail_bucket(server, "trail-bucket")
    broken = server.data_dir / "buckets" / "trail-bucket" / prefix("CloudTrail") / f"{FILE_ACCOUNT}_CloudTrail_{REGION}_20230710T1300Z_brokenbrokenbrok.json.gz"
    broken.write_bytes(b"this is not gzip")
    store = create_store(ct)
    import_id = ct.start_import(Destinations=[store], ImportSource=source("trail-bucket"))["ImportId"]
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "FAILED"
    assert final["ImportStatistics"]["FailedEntries"] == 1
    failures = ct.list_import_failures(ImportId=import_id)["Failures"]
    assert len(failures) == 1
    failure = failures[0]
    assert failure["Location"] == f"s3://trail-bucket/{prefix('CloudTrail')}/{broken.name}"
    assert failure["Status"] == "FAILED"
    assert failure["ErrorType"] == "UnreadableFile"
    assert failure["ErrorMessage"] and "LastUpdatedTime" in failure
    events_before = final["ImportStatistics"]["EventsCompleted"]
    # Fix the file and retry the import: only the failed file is read again.
    record = {"eventVersion": "1.08", "eventTime": "2023-07-10T13:00:00Z", "eventID": "7c1d8b52-9a43-4d5e-8f00-000000000001",
              "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": REGION,
              "recipientAccountId": FILE_ACCOUNT, "eventType": "AwsApiCall", "eventCategory": "Management",
              "userIdentity": {"type": "Root", "accountId": FILE_ACCOUNT}}
    broken.write_bytes(gzip.compress(json.dumps({"Records": [record]}).encode()))
    assert ct.start_import(ImportId=import_id)["ImportStatus"] == "INITIALIZING"
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "COMPLETED"
    assert final["ImportStatistics"]["EventsCompleted"] == events_before + 1
    assert final["ImportStatistics"]["FailedEntries"] == 0
    assert ct.list_import_failures(ImportId=import_id)["Failures"][0]["Status"] == "SUCCEEDED"


def big_log_file(events: int) -> bytes:
    records = [
        {"eventVersion": "1.08", "eventTime": f"2023-07-10T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
         "eventID": f"00000000-0000-4000-8000-{i:012d}", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
         "awsRegion": REGION, "recipientAccountId": FILE_ACCOUNT, "eventType": "AwsApiCall", "eventCategory": "Data",
         "userIdentity": {"type": "Root", "accountId": FILE_ACCOUNT}}
        for i in range(events)
    ]
    return gzip.compress(json.dumps({"Records": records}).encode(), compresslevel=1)


BIG = 300_000


def start_import_with_big_file(server):
    """Fills the trail bucket, adds a file of BIG events (it keeps the copy busy long enough
    to be stopped part-way) and starts importing it all into a new store; returns the
    client, what the bucket holds besides, the store and the import."""
    ct = server.client()
    expected = fill_trail_bucket(server, "trail-bucket")
    name = f"{FILE_ACCOUNT}_CloudTrail_{REGION}_20230710T0000Z_aaaaaaaaaaaaaaaa.json.gz"
    (server.data_dir / "buckets" / "trail-bucket" / prefix("CloudTrail") / name).write_bytes(big_log_file(BIG))
    store = create_store(ct)
    import_id = ct.start_import(Destinations=[store], ImportSource=source("trail-bucket"))["ImportId"]
    return ct, expected, store, import_id


def test_stopped_import_started_again_completes_without_duplicates(server):
    ct, expected, store, import_id = start_import_with_big_file(server)
    big = BIG
    assert error_code(ct.start_import, Destinations=[store], ImportSource=source("trail-bucket")) == "AccountHasOngoingImportException"
    stopped = ct.stop_import(ImportId=import_id)
    assert stopped["ImportStatus"] == "STOPPED"
    assert stopped["ImportStatistics"]["EventsCompleted"] < expected["events"] + big
    assert ct.list_imports(ImportStatus="STOPPED")["Imports"][0]["ImportId"] == import_id
    restarted = server.aws("cloudtrail", "start-import", "--import-id", import_id)
    assert restarted["ImportId"] == import_id
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "COMPLETED"
    assert final["ImportStatistics"]["EventsCompleted"] == expected["events"] + big
    assert final["ImportStatistics"]["FilesCompleted"] == expected["files"] + 1
    # Every event once: the stopped run's unfinished chunks went, and the small files of
    # the day were written together (far fewer sources than files).
    names = [f.name for f in imported_files(server, store, import_id)]
    assert len(names) == len(set(names))
    sources = {n.split("-")[6] for n in names}
    assert 2 <= len(sources) < expected["files"]
    assert imported_count(ct, store) == expected["events"] + big


def imported_count(ct, store_arn: str) -> int:
    """How many events of 2023 (the imported ones, not the server's own) the store holds."""
    sql = f"SELECT COUNT(*) AS n FROM {store_arn.rsplit('/', 1)[1]} WHERE eventTime < '2024-01-01 00:00:00'"
    return int(query(ct, sql)[0][0]["n"])


def test_chunks_an_interrupted_run_left_are_removed_when_it_resumes(server):
    ct, expected, store, import_id = start_import_with_big_file(server)
    big = BIG
    assert ct.stop_import(ImportId=import_id)["ImportStatus"] == "STOPPED"
    # What a run killed while writing leaves behind: a chunk of a source (a group of small
    # files) it never recorded as done. Its files are read again, maybe grouped otherwise.
    day = server.data_dir / "lake" / store.rsplit("/", 1)[1] / "eventday=2023-07-10"
    day.mkdir(parents=True, exist_ok=True)
    planted = day / f"import-{import_id}-0123456789abcdef-000000.parquet"
    planted.write_bytes(b"PAR1 left by a run that was killed")
    server.kill()
    server.start()
    ct = server.client()
    assert ct.start_import(ImportId=import_id)["ImportStatus"] == "INITIALIZING"
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "COMPLETED"
    assert final["ImportStatistics"]["EventsCompleted"] == expected["events"] + big
    assert not planted.exists()
    assert imported_count(ct, store) == expected["events"] + big


def test_chunks_that_cannot_be_written_fail_their_files_and_a_retry_writes_them(server):
    """A file streamed alone has its chunks written while it is read: a write that fails
    (here the store's day folder is a plain file) fails the file, whatever chunk it was,
    leaves none of its chunks behind, and a retry writes every event once."""
    ct = server.client()
    store = create_store(ct)
    day = server.data_dir / "lake" / store.rsplit("/", 1)[1] / "eventday=2023-07-10"
    day.parent.mkdir(parents=True, exist_ok=True)
    day.write_bytes(b"not a folder")
    expected = fill_trail_bucket(server, "trail-bucket")
    name = f"{FILE_ACCOUNT}_CloudTrail_{REGION}_20230710T0000Z_aaaaaaaaaaaaaaaa.json.gz"
    (server.data_dir / "buckets" / "trail-bucket" / prefix("CloudTrail") / name).write_bytes(big_log_file(BIG))
    import_id = ct.start_import(Destinations=[store], ImportSource=source("trail-bucket"))["ImportId"]
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "FAILED"
    failures = ct.list_import_failures(ImportId=import_id)["Failures"]
    big = [f for f in failures if f["Location"].endswith(name)]
    assert len(big) == 1 and big[0]["Status"] == "FAILED", failures
    assert "failed to write the events into event data store" in big[0]["ErrorMessage"]
    day.unlink()
    assert ct.start_import(ImportId=import_id)["ImportStatus"] == "INITIALIZING"
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "COMPLETED", ct.list_import_failures(ImportId=import_id)
    assert final["ImportStatistics"]["EventsCompleted"] == expected["events"] + BIG
    assert imported_count(ct, store) == expected["events"] + BIG


def test_import_resumes_after_a_restart(server):
    ct = server.client()
    expected = fill_trail_bucket(server, "trail-bucket")
    store = create_store(ct)
    import_id = ct.start_import(Destinations=[store], ImportSource=source("trail-bucket"))["ImportId"]
    server.kill()
    server.start()
    ct = server.client()
    final = wait_status(ct, import_id, "COMPLETED", "FAILED")
    assert final["ImportStatus"] == "COMPLETED"
    assert final["ImportStatistics"]["EventsCompleted"] == expected["events"]
    assert final["ImportStatistics"]["FilesCompleted"] == expected["files"]
