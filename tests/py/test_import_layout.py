"""`opentrail import` of a whole trail bucket: log files, Insights files, digests and
foreign files in CloudTrail's `AWSLogs/` layout, from a directory and from an S3-compatible
server (the digests there written by OpenTrail's own delivery), through the real binary."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re

import pytest

from conftest import REGION, Credentials, wait_for, wait_for_digest_chains_closed
from test_delivery import keys
from test_history import JULY_2023, all_events
from test_ingest import CONFORMANCE_ACCOUNT, conformance_files, run_import

# The account in the conformance files' names (their records' recipient is CONFORMANCE_ACCOUNT).
FILE_ACCOUNT = "218007301253"
LONG_RETENTION = ("--history-retention-days", "36500")
DAY = "2023/07/10"


def insight_record(event_id: str, state: str, event_time: str, account: str = CONFORMANCE_ACCOUNT) -> dict:
    return {
        "eventVersion": "1.08",
        "eventTime": event_time,
        "awsRegion": REGION,
        "eventID": event_id,
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": account,
        "sharedEventID": "5f8c1b3a-0d3e-4e55-9f7a-2b1c3d4e5f60",
        "insightDetails": {
            "state": state,
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutObject",
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 0.01}, "insight": {"average": 2.5}}},
        },
        "eventCategory": "Insight",
    }


INSIGHT_IDS = ["0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"]


def insight_file(event_time_start: str, event_time_end: str, account: str = CONFORMANCE_ACCOUNT) -> bytes:
    records = [insight_record(INSIGHT_IDS[0], "Start", event_time_start, account),
               insight_record(INSIGHT_IDS[1], "End", event_time_end, account)]
    return gzip.compress(json.dumps({"Records": records}).encode())


def digest_file(bucket: str, key: str, logs: dict[str, bytes]) -> bytes:
    """A digest in CloudTrail's format listing `logs` (bucket key: uncompressed content)."""
    body = {
        "awsAccountId": FILE_ACCOUNT,
        "digestStartTime": "2023-07-10T11:00:00Z",
        "digestEndTime": "2023-07-10T12:00:00Z",
        "digestS3Bucket": bucket,
        "digestS3Object": key,
        "digestPublicKeyFingerprint": "0" * 32,
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": "2023-07-10T11:59:59Z",
        "oldestEventTime": "2023-07-10T11:00:00Z",
        "previousDigestS3Bucket": None,
        "previousDigestS3Object": None,
        "previousDigestHashValue": None,
        "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [
            {"s3Bucket": bucket, "s3Object": k, "hashValue": hashlib.sha256(text).hexdigest(),
             "hashAlgorithm": "SHA-256", "newestEventTime": "2023-07-10T11:59:59Z",
             "oldestEventTime": "2023-07-10T11:00:00Z"}
            for k, text in logs.items()
        ],
    }
    return gzip.compress(json.dumps(body).encode())


class Tree:
    """A trail bucket under prefix `team/` written to a directory: 10 real AWS log files,
    one Insights file, one digest listing the log files, and two foreign files."""

    def __init__(self, root):
        self.root = root
        base = f"team/AWSLogs/{FILE_ACCOUNT}"
        self.logs: dict[str, bytes] = {}
        self.records = []
        for source in conformance_files()[:10]:
            key = f"{base}/CloudTrail/{REGION}/{DAY}/{source.name}.gz"
            text = source.read_bytes()
            self.logs[key] = text
            self.records.extend(json.loads(text)["Records"])
            self.write(key, gzip.compress(text))
        self.insight_key = (f"{base}/CloudTrail-Insight/{REGION}/{DAY}/"
                            f"{FILE_ACCOUNT}_CloudTrail-Insight_{REGION}_20230710T1200Z_Ab3dEf6hIj9kLm2n.json.gz")
        self.write(self.insight_key, insight_file("2023-07-10T11:40:00Z", "2023-07-10T11:50:00Z"))
        self.digest_key = (f"{base}/CloudTrail-Digest/{REGION}/{DAY}/"
                           f"{FILE_ACCOUNT}_CloudTrail-Digest_{REGION}_management_{REGION}_20230710T120000Z.json.gz")
        self.write(self.digest_key, digest_file("org-trail-bucket", self.digest_key, self.logs))
        self.write(f"{base}/CloudTrail/README.txt", b"copied from the trail bucket\n")
        self.write(f"{base}/CloudTrail/{REGION}/inventory.json", json.dumps({"files": len(self.logs)}).encode())

    def write(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    @property
    def event_ids(self) -> set[str]:
        return {r["eventID"] for r in self.records}


@pytest.fixture
def history_server(start_server):
    return start_server(*LONG_RETENTION, account_id=CONFORMANCE_ACCOUNT)


def summary(stderr: str) -> str:
    match = re.search(r"^files: .*$", stderr, re.MULTILINE)
    assert match, stderr
    return match.group(0)


def test_a_trail_bucket_tree_imports_logs_and_insights_and_skips_digests_and_foreign_files(history_server, tmp_path):
    tree = Tree(tmp_path / "bucket")
    result = run_import(history_server, tree.root)
    assert result.returncode == 0, result.stderr
    assert f"imported {len(tree.records) + 2} events" in result.stderr
    assert "; 0 rejected" in result.stderr
    assert summary(result.stderr) == ("files: 10 log files and 1 Insights files imported, 1 digest files skipped, "
                                      "2 other files skipped, 0 log files unreadable")
    # Each foreign file is named in a warning; the digest is not sent.
    assert "warning: skipped " in result.stderr and "README.txt" in result.stderr
    assert "inventory.json" in result.stderr and "not a CloudTrail log file" in result.stderr
    assert "CloudTrail-Digest" not in result.stderr

    client = history_server.client()
    wait_for(lambda: {e["EventId"] for e in all_events(client, StartTime=JULY_2023[0], EndTime=JULY_2023[1])}
             == tree.event_ids, what="the imported log records in event history")
    insights = wait_for(lambda: all_events(client, EventCategory="insight", StartTime=JULY_2023[0],
                                           EndTime=JULY_2023[1]),
                        what="the imported Insights events")
    assert sorted(e["EventId"] for e in insights) == INSIGHT_IDS
    assert {json.loads(e["CloudTrailEvent"])["eventType"] for e in insights} == {"AwsCloudTrailInsight"}

    # Again, resuming: no log file is read again (the `.json` outside the layout is, to tell
    # what it is). Again from scratch (another state file): every record is sent again, and
    # event history still holds each once.
    again = run_import(history_server, tree.root)
    assert again.returncode == 0, again.stderr
    assert "importing 1 files (11 already imported)" in again.stderr
    assert "imported 0 events" in again.stderr
    scratch = run_import(history_server, tree.root, "--state-file", str(tmp_path / "fresh.done"))
    assert scratch.returncode == 0, scratch.stderr
    assert f"imported {len(tree.records) + 2} events" in scratch.stderr
    history_server.wait_for_history_caught_up()
    events = all_events(client, StartTime=JULY_2023[0], EndTime=JULY_2023[1])
    assert len(events) == len(tree.records) and {e["EventId"] for e in events} == tree.event_ids
    insights = all_events(client, EventCategory="insight", StartTime=JULY_2023[0], EndTime=JULY_2023[1])
    assert sorted(e["EventId"] for e in insights) == INSIGHT_IDS


def test_digests_are_checked_against_the_imported_log_files(history_server, tmp_path):
    tree = Tree(tmp_path / "bucket")
    checked = run_import(history_server, tree.root / "team", "--validate-digests")
    assert checked.returncode == 0, checked.stderr
    assert "digests: 1 digest files checked, 10/10 listed log files valid" in checked.stderr

    # A log file altered after the digest was written, and another deleted: the records
    # that are there are imported, then the command fails naming both files.
    altered, deleted = list(tree.logs)[:2]
    records = json.loads(tree.logs[altered])["Records"]
    tree.write(altered, gzip.compress(json.dumps({"Records": records[1:]}).encode()))
    (tree.root / deleted).unlink()
    failed = run_import(history_server, tree.root / "team", "--validate-digests",
                        "--state-file", str(tmp_path / "fresh.done"))
    assert failed.returncode != 0
    assert "digests: 1 digest files checked, 8/10 listed log files valid" in failed.stderr
    assert re.search(rf"log file \S*{re.escape(altered)} .*INVALID: hash value doesn't match", failed.stderr), failed.stderr
    assert f"log file s3://org-trail-bucket/{deleted} " in failed.stderr and "INVALID: not found" in failed.stderr
    assert "digest validation found 2 problems" in failed.stderr
    assert summary(failed.stderr).startswith("files: 9 log files and 1 Insights files imported")


def test_a_log_file_that_cannot_be_read_fails_the_import_after_the_others(history_server, tmp_path):
    tree = Tree(tmp_path / "bucket")
    broken = next(iter(tree.logs))
    tree.write(broken, b"\x1f\x8b not really gzip")
    result = run_import(history_server, tree.root)
    assert result.returncode != 0
    assert summary(result.stderr) == ("files: 9 log files and 1 Insights files imported, 1 digest files skipped, "
                                      "2 other files skipped, 1 log files unreadable")
    assert f"error: {tree.root / broken}: " in result.stderr
    assert "1 log files could not be imported" in result.stderr
    # The readable files are remembered; the broken one is tried again next time.
    tree.write(broken, gzip.compress(tree.logs[broken]))
    again = run_import(history_server, tree.root)
    assert again.returncode == 0, again.stderr
    assert "importing 2 files (10 already imported)" in again.stderr


def test_the_conformance_files_import_as_loose_files(history_server, tmp_path):
    """The 55 real AWS files lie in a directory with a README and a LICENSE: the files
    are imported by their names, the other two skipped with a warning."""
    result = run_import(history_server, conformance_files()[0].parent)
    assert result.returncode == 0, result.stderr
    assert "imported 2900 events" in result.stderr
    assert summary(result.stderr).startswith("files: 55 log files and 0 Insights files imported, 0 digest files skipped, "
                                             "2 other files skipped")
    one = run_import(history_server, conformance_files()[0], "--state-file", str(tmp_path / "one.done"))
    assert one.returncode == 0, one.stderr
    assert summary(one.stderr).startswith("files: 1 log files")


def test_a_bucket_delivered_by_opentrail_imports_with_its_digests_checked(start_server, moto_server):
    """A trail with log file validation delivers log files and signed digests to an
    S3-compatible server; an Insights file and foreign objects are added; the bucket is
    imported into a second server with its digests checked."""
    source = start_server(*moto_server.opentrail_args(), "--delivery-interval", "1s", "--digest-interval", "3s")
    s3 = moto_server.s3()
    bucket = "import-whole-trail-bucket"
    s3.create_bucket(Bucket=bucket)
    client = source.client()
    client.create_trail(Name="exported", S3BucketName=bucket, S3KeyPrefix="audit", EnableLogFileValidation=True)
    client.start_logging(Name="exported")
    account = source.account_id
    digest_prefix = f"audit/AWSLogs/{account}/CloudTrail-Digest/{REGION}/"
    log_prefix = f"audit/AWSLogs/{account}/CloudTrail/{REGION}/"

    def two_digests_while_busy():
        client.describe_trails()
        return len(keys(s3, bucket, digest_prefix)) >= 2

    wait_for(two_digests_while_busy, timeout=120, interval=0.5, what="two digests")
    client.stop_logging(Name="exported")
    wait_for_digest_chains_closed(source)
    digests, logs = keys(s3, bucket, digest_prefix), keys(s3, bucket, log_prefix)
    delivered = {r["eventID"] for k in logs
                 for r in json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))["Records"]}
    listed = sum(len(json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))["logFiles"])
                 for k in digests)
    now = dt.datetime.now(dt.timezone.utc)
    insight_key = (f"audit/AWSLogs/{account}/CloudTrail-Insight/{REGION}/{now:%Y/%m/%d}/"
                   f"{account}_CloudTrail-Insight_{REGION}_{now:%Y%m%dT%H%MZ}_Zz9yX8wV7uT6sR5q.json.gz")
    stamp = (now - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    s3.put_object(Bucket=bucket, Key=insight_key, Body=insight_file(stamp, stamp, account))
    s3.put_object(Bucket=bucket, Key=f"audit/AWSLogs/{account}/CloudTrail/{REGION}/", Body=b"")
    s3.put_object(Bucket=bucket, Key="audit/AWSLogs/ConfigWritabilityCheckFile", Body=b"")

    target = start_server()
    result = run_import(target, f"s3://{bucket}/audit/", "--validate-digests", *moto_server.opentrail_args())
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == (f"files: {len(logs)} log files and 1 Insights files imported, "
                                      f"{len(digests)} digest files skipped, 1 other files skipped, 0 log files unreadable"), result.stderr
    assert f"imported {len(delivered) + 2} events" in result.stderr
    assert f"digests: {len(digests)} digest files checked, {listed}/{listed} listed log files valid" in result.stderr
    assert listed == len(logs)
    assert "ConfigWritabilityCheckFile" in result.stderr

    # The source account's events, looked up in the target with a key of that account.
    created = json.loads(target.admin("keys", "create", "--account", account, "--user", "auditor").stdout)
    reader = target.client(credentials=Credentials(created["AccessKeyId"], created["SecretAccessKey"]))
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)
    wait_for(lambda: delivered <= {e["EventId"] for e in all_events(reader, StartTime=start, EndTime=end)},
             what="the delivered records in the target's event history")
    insights = wait_for(lambda: all_events(reader, EventCategory="insight", StartTime=start, EndTime=end),
                        what="the Insights events in the target's event history")
    assert sorted(e["EventId"] for e in insights) == INSIGHT_IDS
