"""boto3 against the real `opentrail` binary: what only botocore shows.

Every request/answer case of the control plane lives in tests/scenarios/*.json (run by
test_scenarios.py). Here: concurrent creates, trail buckets in an S3-compatible server
(moto), and authentication through botocore's own signing (wrong secret, unknown key,
deleted key, open auth). test_cli.py runs the AWS CLI.
"""

from __future__ import annotations

import threading

import pytest

from conftest import (
    ACCOUNT_ID,
    OTHER_REGION,
    REGION,
    Credentials,
    error_code,
    trail_arn,
)

BUCKET = "opentrail-logs"


def body(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


@pytest.fixture
def ct(server):
    """A us-east-1 client of a fresh server whose embedded store has BUCKET."""
    server.create_bucket(BUCKET)
    for topic in ("trail-alerts", "alerts"):
        server.admin("topics", "create", topic)
    return server.client()


def make_trail(client, name: str, **kwargs) -> dict:
    kwargs.setdefault("S3BucketName", BUCKET)
    return body(client.create_trail(Name=name, **kwargs))


# ----------------------------------------------------------------- concurrency


def concurrently(calls) -> list[str]:
    """Runs the calls at once; returns "ok" or the error code of each, in order."""
    outcomes = [""] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index, call):
        barrier.wait()
        try:
            call()
            outcomes[index] = "ok"
        except Exception as e:  # noqa: BLE001 - reported below
            outcomes[index] = getattr(e, "response", {}).get("Error", {}).get("Code") or repr(e)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_concurrent_creates_of_one_name_make_one_trail(server, ct):
    clients = [server.client() for _ in range(6)]
    outcomes = concurrently([lambda c=c: make_trail(c, "contested") for c in clients])
    assert sorted(outcomes) == ["TrailAlreadyExistsException"] * 5 + ["ok"]
    assert [t["Name"] for t in ct.list_trails()["Trails"]] == ["contested"]


def test_concurrent_creates_respect_the_region_limit(server, ct):
    clients = [server.client() for _ in range(8)]
    outcomes = concurrently([lambda c=c, i=i: make_trail(c, f"racer-{i}") for i, c in enumerate(clients)])
    assert sorted(outcomes) == ["MaximumNumberOfTrailsExceededException"] * 3 + ["ok"] * 5
    assert len(ct.list_trails()["Trails"]) == 5


# ----------------------------------------------------------------- S3-compatible store (moto)


def test_trail_buckets_in_an_s3_compatible_server(start_server, moto_server):
    server = start_server(*moto_server.opentrail_args())
    s3 = moto_server.s3()
    s3.create_bucket(Bucket="moto-trail-logs")
    ct = server.client()
    assert make_trail(ct, "on-moto", S3BucketName="moto-trail-logs")["S3BucketName"] == "moto-trail-logs"
    assert error_code(make_trail, ct, "missing-on-moto", S3BucketName="moto-no-such-bucket") == (
        "S3BucketDoesNotExistException"
    )
    # A bucket of the embedded store's name does not count: the S3 server is the store.
    server.admin("buckets", "create", "local-only-bucket")
    s3.create_bucket(Bucket="moto-second-bucket")
    ct.update_trail(Name="on-moto", S3BucketName="moto-second-bucket")
    assert ct.get_trail(Name="on-moto")["Trail"]["S3BucketName"] == "moto-second-bucket"
    assert error_code(ct.update_trail, Name="on-moto", S3BucketName="local-only-bucket") == (
        "S3BucketDoesNotExistException"
    )


# ----------------------------------------------------------------- authentication


def test_wrong_secret_is_an_invalid_signature(server, ct):
    root = server.root
    forged = server.client(credentials=Credentials(root.access_key_id, "x" * 40))
    assert error_code(forged.describe_trails) == "InvalidSignatureException"
    assert error_code(forged.create_trail, Name="forged", S3BucketName=BUCKET) == "InvalidSignatureException"
    assert ct.describe_trails()["trailList"] == []


def test_unknown_access_key_is_unrecognized(server):
    stranger = server.client(credentials=Credentials("AKIAUNKNOWNUNKNOWN00", "y" * 40))
    assert error_code(stranger.describe_trails) == "UnrecognizedClientException"


def test_created_key_works_and_deleted_key_is_rejected(server, ct):
    make_trail(ct, "shared")
    key = server.create_key("alice")
    alice = server.client(credentials=Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
    assert [t["Name"] for t in alice.describe_trails()["trailList"]] == ["shared"]
    make_trail(alice, "alices-trail")
    assert ct.get_trail(Name="alices-trail")["Trail"]["TrailARN"] == trail_arn("alices-trail")

    listing = [line.split("\t") for line in server.admin("keys", "list").stdout.splitlines()]
    by_id = {row[0]: row for row in listing}
    assert by_id[key["AccessKeyId"]][1:4] == ["alice", "user", ACCOUNT_ID]
    assert by_id[server.root.access_key_id][1:4] == ["root", "root", ACCOUNT_ID]

    server.admin("keys", "delete", key["AccessKeyId"])
    assert error_code(alice.describe_trails) == "UnrecognizedClientException"
    assert key["AccessKeyId"] not in server.admin("keys", "list").stdout
    assert ct.describe_trails()["trailList"]  # the root key still works
    assert server.admin("keys", "delete", key["AccessKeyId"], check=False).returncode != 0


def test_open_auth_accepts_any_key_but_keeps_the_scope_region(start_server):
    server = start_server("--auth", "open")
    server.create_bucket(BUCKET)
    anyone = server.client(region=OTHER_REGION, credentials=Credentials("AKIAANYONEATALL00000", "whatever"))
    created = make_trail(anyone, "open-trail")
    assert created["TrailARN"] == trail_arn("open-trail", region=OTHER_REGION)
    assert anyone.get_trail(Name="open-trail")["Trail"]["HomeRegion"] == OTHER_REGION
    us = server.client(region=REGION, credentials=Credentials("AKIASOMEONEELSE00000", "other"))
    assert error_code(us.get_trail, Name="open-trail") == "TrailNotFoundException"
    assert [t["TrailARN"] for t in us.list_trails()["Trails"]] == [trail_arn("open-trail", region=OTHER_REGION)]
