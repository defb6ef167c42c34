"""Several accounts on one server: `opentrail accounts create|list`, `keys create --account`,
isolation of trails, event history, topics and buckets between accounts, accounts created
by ingest, and data dirs written by the version before the accounts registry."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import subprocess
import tarfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT_ID, OPENTRAIL_BIN, Credentials, _child_env, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
THIRD_ACCOUNT = "777788889999"


def accounts(server) -> dict[str, tuple[str, str]]:
    """`accounts list` as {id: (origin, created_at)}."""
    lines = server.admin("accounts", "list").stdout.splitlines()
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == 3 for row in rows), lines
    return {row[0]: (row[1], row[2]) for row in rows}


def create_account(server, *args: str) -> tuple[str, Credentials]:
    answer = json.loads(server.admin("accounts", "create", *args).stdout)
    assert set(answer) == {"AccountId", "AccessKeyId", "SecretAccessKey"}
    return answer["AccountId"], Credentials(answer["AccessKeyId"], answer["SecretAccessKey"])


def key_for(server, account: str, user: str) -> Credentials:
    key = json.loads(server.admin("keys", "create", "--account", account, "--user", user).stdout)
    assert key["AccountId"] == account
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def error(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def lookup_all(client, **kwargs) -> list[dict]:
    events = []
    for page in client.get_paginator("lookup_events").paginate(**kwargs):
        events.extend(page["Events"])
    return events


def record(account: str, event_id: str, when: datetime) -> dict:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": account, "userName": "importer"},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateBucket",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.0.1",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "readOnly": False,
        "eventCategory": "Management",
        "recipientAccountId": account,
    }


def test_accounts_are_isolated(server):
    assert accounts(server) == {ACCOUNT_ID: ("bootstrap", accounts(server)[ACCOUNT_ID][1])}
    other, other_root = create_account(server)
    assert len(other) == 12 and other.isdigit() and other != ACCOUNT_ID
    assert accounts(server)[other][0] == "cli"
    # An existing id and a malformed one are refused.
    again = server.admin("accounts", "create", "--account-id", other, check=False)
    assert again.returncode != 0 and f"account {other} already exists" in again.stderr
    bad = server.admin("accounts", "create", "--account-id", "12345", check=False)
    assert bad.returncode != 0 and "12 digits" in bad.stderr
    chosen, _ = create_account(server, "--account-id", "555566667777")
    assert chosen == "555566667777"

    mine = server.client()
    theirs = server.client(credentials=other_root)
    server.admin("buckets", "create", "bucket-mine")
    server.admin("buckets", "create", "--account", other, "bucket-theirs")
    mine.create_trail(Name="trail-mine", S3BucketName="bucket-mine")
    theirs.create_trail(Name="trail-theirs", S3BucketName="bucket-theirs")
    # The same name in two accounts is two trails.
    mine.create_trail(Name="same-name", S3BucketName="bucket-mine")
    theirs.create_trail(Name="same-name", S3BucketName="bucket-theirs")

    assert sorted(t["Name"] for t in mine.describe_trails()["trailList"]) == ["same-name", "trail-mine"]
    assert sorted(t["Name"] for t in theirs.describe_trails()["trailList"]) == ["same-name", "trail-theirs"]
    assert mine.get_trail(Name="same-name")["Trail"]["TrailARN"].split(":")[4] == ACCOUNT_ID
    assert theirs.get_trail(Name="same-name")["Trail"]["TrailARN"].split(":")[4] == other
    assert error(mine.get_trail, Name="trail-theirs")[0] == "TrailNotFoundException"
    assert error(theirs.get_trail, Name="trail-mine")[0] == "TrailNotFoundException"
    assert mine.describe_trails(trailNameList=["trail-theirs"])["trailList"] == []
    their_arn = theirs.get_trail(Name="trail-theirs")["Trail"]["TrailARN"]
    assert error(mine.get_trail, Name=their_arn)[0] == "TrailNotFoundException"
    assert error(mine.delete_trail, Name=their_arn)[0] == "TrailNotFoundException"
    assert [t["Name"] for t in mine.list_trails()["Trails"]] == ["same-name", "trail-mine"]

    # A user key of the other account acts in that account.
    bob = server.client(credentials=key_for(server, other, "bob"))
    assert sorted(t["Name"] for t in bob.describe_trails()["trailList"]) == ["same-name", "trail-theirs"]

    # Event history: each account sees its own calls only.
    def created(client) -> set[str]:
        events = lookup_all(client, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}])
        return {json.loads(e["CloudTrailEvent"])["requestParameters"]["name"] for e in events}

    wait_for(lambda: created(mine) == {"trail-mine", "same-name"}, what="my CreateTrail events")
    wait_for(lambda: created(theirs) == {"trail-theirs", "same-name"}, what="their CreateTrail events")
    for client, account in ((mine, ACCOUNT_ID), (theirs, other)):
        events = lookup_all(client)
        assert events
        assert {json.loads(e["CloudTrailEvent"])["recipientAccountId"] for e in events} == {account}

    # Topics: each account names only its own.
    topic = server.admin("topics", "create", "--account", other, "their-topic").stdout.strip()
    assert topic == f"arn:aws:sns:us-east-1:{other}:their-topic"
    theirs.update_trail(Name="trail-theirs", SnsTopicName="their-topic")
    assert error(mine.update_trail, Name="trail-mine", SnsTopicName=topic)[0] == "InsufficientSnsTopicPolicyException"
    assert error(mine.update_trail, Name="trail-mine", SnsTopicName="their-topic")[0] == "InsufficientSnsTopicPolicyException"

    # Keys list shows each key's account.
    listed = [line.split("\t") for line in server.admin("keys", "list").stdout.splitlines()]
    assert {row[3] for row in listed} == {ACCOUNT_ID, other, "555566667777"}


def test_unknown_account_is_refused_by_admin_commands(server):
    for args in (
        ("keys", "create", "--account", "999999999999", "--user", "nobody"),
        ("topics", "create", "--account", "999999999999", "nothing"),
        ("buckets", "create", "--account", "999999999999", "nobody-bucket"),
    ):
        result = server.admin(*args, check=False)
        assert result.returncode != 0, args
        assert "no account 999999999999" in result.stderr, result.stderr
    assert "999999999999" not in server.admin("keys", "list").stdout
    assert not (server.data_dir / "buckets" / "nobody-bucket").exists()


def test_bucket_owner_rule(server):
    other, other_root = create_account(server)
    mine, theirs = server.client(), server.client(credentials=other_root)
    server.admin("buckets", "create", "bucket-mine")
    server.admin("buckets", "create", "--account", other, "bucket-theirs")
    expected = ("InsufficientS3BucketPolicyException", "Incorrect S3 bucket policy is detected for bucket: bucket-mine")
    assert error(theirs.create_trail, Name="their-trail", S3BucketName="bucket-mine") == expected
    theirs.create_trail(Name="their-trail", S3BucketName="bucket-theirs")
    assert error(theirs.update_trail, Name="their-trail", S3BucketName="bucket-mine") == expected
    assert theirs.get_trail(Name="their-trail")["Trail"]["S3BucketName"] == "bucket-theirs"
    assert error(mine.create_trail, Name="their-trail", S3BucketName="bucket-theirs")[0] == "InsufficientS3BucketPolicyException"
    # Creating an existing bucket for another account does not change its owner.
    taken = server.admin("buckets", "create", "--account", other, "bucket-mine", check=False)
    assert taken.returncode != 0 and f"belongs to account {ACCOUNT_ID}" in taken.stderr
    # A bucket without an owner record (made before owners were recorded) is everyone's.
    (server.data_dir / "buckets" / "legacy-bucket").mkdir(mode=0o700)
    mine.create_trail(Name="legacy-mine", S3BucketName="legacy-bucket")
    theirs.update_trail(Name="their-trail", S3BucketName="legacy-bucket")
    # Deleting a bucket forgets its owner.
    server.admin("buckets", "create", "--account", other, "recycled")
    server.admin("buckets", "delete", "recycled")
    server.admin("buckets", "create", "recycled")
    mine.update_trail(Name="legacy-mine", S3BucketName="recycled")


def test_import_creates_the_account_of_its_records(server, tmp_path):
    now = datetime.now(timezone.utc) - timedelta(hours=1)
    logs = tmp_path / "AWSLogs" / THIRD_ACCOUNT / "CloudTrail" / "us-east-1"
    logs.mkdir(parents=True)
    ids = [str(uuid.uuid4()) for _ in range(6)]
    for index, chunk in enumerate((ids[:3], ids[3:])):
        body = {"Records": [record(THIRD_ACCOUNT, i, now + timedelta(seconds=n)) for n, i in enumerate(chunk)]}
        (logs / f"{THIRD_ACCOUNT}_CloudTrail_us-east-1_{index}.json.gz").write_bytes(gzip.compress(json.dumps(body).encode()))
    assert THIRD_ACCOUNT not in accounts(server)
    # A key of another account that may not ingest for other accounts is refused as before.
    other, other_root = create_account(server)
    refused = subprocess.run(
        [str(OPENTRAIL_BIN), "import", "--quiet", "--endpoint", server.endpoint, "--data-dir", str(server.data_dir),
         "--access-key-id", other_root.access_key_id, "--secret-access-key", other_root.secret_access_key,
         "--state-file", str(tmp_path / "refused-state"), str(tmp_path / "AWSLogs")],
        capture_output=True, text=True, timeout=120, env=_child_env(),
    )
    assert "AccountMismatch" in refused.stderr + refused.stdout, refused.stderr
    assert THIRD_ACCOUNT not in accounts(server)

    imported = subprocess.run(
        [str(OPENTRAIL_BIN), "import", "--quiet", "--endpoint", server.endpoint, "--data-dir", str(server.data_dir),
         "--state-file", str(tmp_path / "state"), str(tmp_path / "AWSLogs")],
        capture_output=True, text=True, timeout=120, env=_child_env(),
    )
    assert imported.returncode == 0, imported.stderr
    assert "imported 6 events" in imported.stderr
    assert accounts(server)[THIRD_ACCOUNT][0] == "ingest"

    third = server.client(credentials=key_for(server, THIRD_ACCOUNT, "reader"))
    s3_events = {"LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": "s3.amazonaws.com"}]}
    wait_for(lambda: len(lookup_all(third, **s3_events)) == 6, what="the imported events")
    assert sorted(e["EventId"] for e in lookup_all(third, **s3_events)) == sorted(ids)
    assert lookup_all(server.client(), **s3_events) == []
    assert lookup_all(server.client(credentials=other_root), **s3_events) == []
    # Registered once: a second import of the same account changes nothing.
    assert [a for a in accounts(server) if a == THIRD_ACCOUNT] == [THIRD_ACCOUNT]


def test_a_data_dir_of_the_previous_version_opens_with_all_its_data(start_server, tmp_path):
    with tarfile.open(FIXTURES / "datadir-previous-version.tar.gz") as tar:
        tar.extractall(tmp_path / "fixture", filter="data")
    data_dir = tmp_path / "fixture" / "datadir"
    with sqlite3.connect(data_dir / "meta.db") as db:
        assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'accounts'").fetchone() == (0,)
        alice_id, alice_secret = db.execute(
            "SELECT access_key_id, secret_access_key FROM access_keys WHERE user_name = 'alice'"
        ).fetchone()
    # The fixture's events are from 2026-11-25: keep them in history whenever this runs.
    assert sorted(p.name for p in (data_dir / "log" / "cursors").iterdir()) == [
        "event-history.cursor",
        "trail-delivery.cursor",
    ]
    server = start_server("--history-retention-days", "36500", data_dir=data_dir)
    assert accounts(server) == {ACCOUNT_ID: ("bootstrap", accounts(server)[ACCOUNT_ID][1])}
    # The event log's cursor files moved into the metadata store.
    assert not (data_dir / "log" / "cursors").exists()
    with sqlite3.connect(data_dir / "meta.db") as db:
        moved = dict(db.execute("SELECT key, value FROM documents WHERE collection = 'log_cursors'"))
    # The fixture's two cursors moved; consumers added since (insights, lake) register their own.
    assert {"event-history", "trail-delivery"} <= set(moved) <= {
        "event-history", "trail-delivery", "insights", "lake"
    } and all(v.isdigit() for v in moved.values()), moved
    listed = server.admin("keys", "list").stdout
    assert alice_id in listed and "\troot\t" in listed
    for credentials in (server.root, Credentials(alice_id, alice_secret)):
        client = server.client(credentials=credentials)
        trail = client.get_trail(Name="legacy-trail")["Trail"]
        assert trail["S3BucketName"] == "legacy-bucket"
        legacy = lookup_all(client, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "legacy"}])
        assert len(legacy) == 20
    # The legacy bucket has no owner: every account may use it.
    _, other_root = create_account(server)
    server.client(credentials=other_root).create_trail(Name="legacy-trail", S3BucketName="legacy-bucket")
    server.stop_cleanly()
    server.start()
    assert accounts(server)[ACCOUNT_ID][0] == "bootstrap"
    assert len(accounts(server)) == 2
