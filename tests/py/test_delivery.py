"""Trails that deliver: log files and signed digests in a real S3-compatible server (moto),
verified by the real `aws cloudtrail validate-logs` and by `opentrail validate`, including
after a log file is altered, a digest is altered and a digest is deleted."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import time

import pytest

from conftest import AWS_CLI, OPENTRAIL_BIN, REGION, _child_env, trail_arn, wait_for, wait_for_digest_chains_closed



def keys(s3, bucket, prefix=""):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def aws_validate_logs(server, moto, arn, start, region=REGION):
    env = _child_env(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_path),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_ENDPOINT_URL_S3": moto.endpoint,
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    return subprocess.run(
        [str(AWS_CLI), "cloudtrail", "validate-logs", "--endpoint-url", server.endpoint, "--region", region,
         "--trail-arn", arn, "--start-time", start, "--verbose"],
        capture_output=True, text=True, timeout=120, env=env,
    )


def opentrail_validate(server, moto, arn, start, region=REGION):
    return subprocess.run(
        [str(OPENTRAIL_BIN), "validate", "--endpoint", server.endpoint, "--region", region,
         "--data-dir", str(server.data_dir), *moto.opentrail_args(), "--trail-arn", arn, "--start-time", start,
         "--verbose"],
        capture_output=True, text=True, timeout=120, env=_child_env(),
    )


@pytest.fixture
def delivering(start_server, moto_server):
    server = start_server(*moto_server.opentrail_args(), "--delivery-interval", "1s")
    return server, moto_server


def test_log_files_and_digests_validate_with_the_real_cli(delivering):
    server, moto = delivering
    s3 = moto.s3()
    bucket = "validated-trail-bucket"
    s3.create_bucket(Bucket=bucket)
    client = server.client()
    start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.create_trail(Name="validated", S3BucketName=bucket, S3KeyPrefix="audit", EnableLogFileValidation=True)
    client.start_logging(Name="validated")
    for _ in range(5):
        client.describe_trails()
    log_prefix = f"audit/AWSLogs/{server.account_id}/CloudTrail/{REGION}/"
    wait_for(lambda: keys(s3, bucket, log_prefix), what="a delivered log file")
    status = wait_for(lambda: (s := client.get_trail_status(Name="validated")).get("LatestDeliveryTime") and s,
                      what="LatestDeliveryTime")
    assert "LatestDeliveryError" not in status
    client.stop_logging(Name="validated")
    digest_prefix = f"audit/AWSLogs/{server.account_id}/CloudTrail-Digest/{REGION}/"
    digests = wait_for(lambda: keys(s3, bucket, digest_prefix), what="the final digest")
    logs = keys(s3, bucket, log_prefix)

    # Delivered files: one gzip member holding {"Records":[...]} with our self-audit events.
    for key in logs:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        text = gzip.decompress(body)
        assert text.endswith(b"}\n") and text.count(b"\n") == 1
        records = json.loads(text)["Records"]
        assert all(r["recipientAccountId"] == server.account_id and r["awsRegion"] == REGION for r in records)
        assert {r["eventSource"] for r in records} == {"cloudtrail.amazonaws.com"}
    meta = s3.head_object(Bucket=bucket, Key=digests[-1])["Metadata"]
    assert meta["signature-algorithm"] == "SHA256withRSA" and len(meta["signature"]) == 512

    arn = trail_arn("validated", account=server.account_id)
    cli = aws_validate_logs(server, moto, arn, start)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"{len(digests)}/{len(digests)} digest files valid" in cli.stdout
    assert f"{len(logs)}/{len(logs)} log files valid" in cli.stdout
    ours = opentrail_validate(server, moto, arn, start)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert f"{len(digests)}/{len(digests)} digest files valid" in ours.stdout
    assert f"{len(logs)}/{len(logs)} log files valid" in ours.stdout

    # A log file altered: both report the hash mismatch and fail.
    original = s3.get_object(Bucket=bucket, Key=logs[0])["Body"].read()
    s3.put_object(Bucket=bucket, Key=logs[0], Body=gzip.compress(b'{"Records":[]}\n'))
    for result in (aws_validate_logs(server, moto, arn, start), opentrail_validate(server, moto, arn, start)):
        assert result.returncode != 0
        assert "hash value doesn't match" in result.stdout + result.stderr
    s3.put_object(Bucket=bucket, Key=logs[0], Body=original)
    assert aws_validate_logs(server, moto, arn, start).returncode == 0

    # A digest altered (content changed, signature kept): both fail.
    digest = s3.get_object(Bucket=bucket, Key=digests[-1])
    digest_body, digest_meta = digest["Body"].read(), digest["Metadata"]
    altered = json.loads(gzip.decompress(digest_body))
    altered["logFiles"] = altered["logFiles"][1:]
    s3.put_object(Bucket=bucket, Key=digests[-1], Body=gzip.compress(json.dumps(altered).encode()), Metadata=digest_meta)
    for result in (aws_validate_logs(server, moto, arn, start), opentrail_validate(server, moto, arn, start)):
        assert result.returncode != 0, result.stdout
        assert "INVALID" in result.stdout + result.stderr

    # The digest deleted: both fail, and never report success without digests.
    s3.delete_object(Bucket=bucket, Key=digests[-1])
    cli = aws_validate_logs(server, moto, arn, start)
    ours = opentrail_validate(server, moto, arn, start)
    assert ours.returncode != 0
    assert cli.returncode != 0 or "0/0 digest files valid" in cli.stdout or "No" in cli.stdout, cli.stdout


def test_delivery_errors_are_reported_and_recovered(delivering):
    server, moto = delivering
    s3 = moto.s3()
    bucket = "flaky-trail-bucket"
    s3.create_bucket(Bucket=bucket)
    client = server.client()
    client.create_trail(Name="flaky", S3BucketName=bucket)
    # The bucket disappears after the trail was created: delivery fails, nothing is lost.
    s3.delete_bucket(Bucket=bucket)
    client.start_logging(Name="flaky")
    for _ in range(3):
        client.describe_trails()
    status = wait_for(lambda: (s := client.get_trail_status(Name="flaky")).get("LatestDeliveryError") and s,
                      what="LatestDeliveryError")
    assert status["LatestDeliveryError"] == "NoSuchBucket"
    assert status["LatestDeliveryAttemptTime"]
    s3.create_bucket(Bucket=bucket)
    wait_for(lambda: keys(s3, bucket, f"AWSLogs/{server.account_id}/CloudTrail/"), timeout=60,
             what="delivery after the bucket came back")
    status = wait_for(lambda: (s := client.get_trail_status(Name="flaky")).get("LatestDeliveryTime")
                      and "LatestDeliveryError" not in s and s, timeout=30, what="the error to clear")
    names = set()
    for key in keys(s3, bucket, f"AWSLogs/{server.account_id}/CloudTrail/"):
        records = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))["Records"]
        names.update(r["eventName"] for r in records)
    # Calls made while the bucket was missing were delivered once it came back.
    assert "DescribeTrails" in names


def test_list_public_keys(delivering):
    server, _ = delivering
    client = server.client()
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(Exception) as error:
        client.list_public_keys(StartTime=now, EndTime=now - dt.timedelta(hours=1))
    assert "InvalidTimeRangeException" in str(error.value)
    assert client.list_public_keys()["PublicKeyList"] == [] or all(
        len(k["Fingerprint"]) == 32 for k in client.list_public_keys()["PublicKeyList"]
    )


def test_webhook_notification_after_each_delivered_log_file(start_server, tmp_path):
    import hashlib
    import hmac
    import http.server
    import threading

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        server = start_server("--delivery-interval", "1s")
        server.create_bucket("notified-bucket")
        topic_arn = server.admin("topics", "create", "trail-deliveries").stdout.strip()
        assert topic_arn == f"arn:aws:sns:{REGION}:{server.account_id}:trail-deliveries"
        secret = "a-webhook-secret-of-enough-length"
        server.admin("topics", "subscribe", topic_arn, "--webhook",
                     f"http://127.0.0.1:{hook.server_address[1]}/hook", "--secret", secret,
                     "--allow-private-targets")
        client = server.client()
        client.create_trail(Name="notified", S3BucketName="notified-bucket", SnsTopicName="trail-deliveries")
        client.start_logging(Name="notified")
        client.describe_trails()
        headers, body = wait_for(lambda: received and received[0], what="a webhook notification")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["x-opentrail-signature"] == expected
        assert lowered["x-amz-sns-message-type"] == "Notification"
        envelope = json.loads(body)
        assert envelope["Type"] == "Notification" and envelope["TopicArn"] == topic_arn
        message = json.loads(envelope["Message"])
        assert message["s3Bucket"] == "notified-bucket"
        key = message["s3ObjectKey"][0]
        assert key.startswith(f"AWSLogs/{server.account_id}/CloudTrail/{REGION}/") and key.endswith(".json.gz")
        assert (server.data_dir / "buckets" / "notified-bucket" / key).is_file()
        status = wait_for(lambda: (s := client.get_trail_status(Name="notified")).get("LatestNotificationTime") and s,
                          what="LatestNotificationTime")
        assert status["LatestNotificationAttemptSucceeded"]
        assert "LatestNotificationError" not in status
    finally:
        hook.shutdown()


def delivered_records(s3, bucket, prefix):
    records = []
    for key in keys(s3, bucket, prefix):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        records.extend(json.loads(gzip.decompress(body))["Records"])
    return records


def looked_up_event_ids(client, event_name):
    pages = client.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}]
    )
    return [event["EventId"] for page in pages for event in page["Events"]]


def test_outage_across_a_crash_loses_nothing(delivering):
    """The bucket is gone while events come in, the server is killed (-9) and restarted,
    more events come in, then the bucket returns: every event is delivered exactly once."""
    server, moto = delivering
    s3 = moto.s3()
    bucket = "outage-across-restart"
    s3.create_bucket(Bucket=bucket)
    client = server.client()
    client.create_trail(Name="outage", S3BucketName=bucket)
    s3.delete_bucket(Bucket=bucket)
    client.start_logging(Name="outage")
    for _ in range(10):
        client.get_trail(Name="outage")
    wait_for(lambda: client.get_trail_status(Name="outage").get("LatestDeliveryError") == "NoSuchBucket",
             what="LatestDeliveryError")
    server.kill()
    server.start()
    client = server.client()
    for _ in range(10):
        client.get_trail(Name="outage")
    wait_for(lambda: client.get_trail_status(Name="outage").get("LatestDeliveryError") == "NoSuchBucket",
             what="LatestDeliveryError after the restart")
    # Event history indexes in the background: wait until it shows all 20 calls.
    def all_twenty():
        ids = looked_up_event_ids(client, "GetTrail")
        return ids if len(ids) == 20 else None

    expected = wait_for(all_twenty, timeout=60, what="the 20 GetTrail events in event history")
    s3.create_bucket(Bucket=bucket)
    prefix = f"AWSLogs/{server.account_id}/CloudTrail/{REGION}/"

    def all_delivered():
        ids = [r["eventID"] for r in delivered_records(s3, bucket, prefix) if r["eventName"] == "GetTrail"]
        return ids if set(expected) <= set(ids) else None

    delivered = wait_for(all_delivered, timeout=60, interval=1.0, what="every GetTrail event in the bucket")
    assert sorted(delivered) == sorted(expected), "each event exactly once"
    wait_for(lambda: "LatestDeliveryError" not in client.get_trail_status(Name="outage"), what="the error to clear")


def test_digest_chain_across_windows_validates(start_server, moto_server):
    """Digest windows of 3 s (the hidden --digest-interval) instead of an hour: a chain of
    several digests, each linked to the one before, that the real CLI validates."""
    server = start_server(*moto_server.opentrail_args(), "--delivery-interval", "1s", "--digest-interval", "3s")
    s3 = moto_server.s3()
    bucket = "chained-digests"
    s3.create_bucket(Bucket=bucket)
    client = server.client()
    start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.create_trail(Name="chained", S3BucketName=bucket, EnableLogFileValidation=True)
    client.start_logging(Name="chained")
    digest_prefix = f"AWSLogs/{server.account_id}/CloudTrail-Digest/{REGION}/"
    log_prefix = f"AWSLogs/{server.account_id}/CloudTrail/{REGION}/"

    def three_digests_while_busy():
        client.describe_trails()  # events for the windows' log files
        return len(keys(s3, bucket, digest_prefix)) >= 3

    wait_for(three_digests_while_busy, timeout=120, interval=0.5, what="three digests")
    client.stop_logging(Name="chained")
    # StopLogging closes the chain with a final digest after the trail's last log files;
    # the chain's state file is removed once that digest is written. Only then are the
    # log files and digests final (comparing earlier races with delivery).
    wait_for_digest_chains_closed(server)
    digests = keys(s3, bucket, digest_prefix)
    assert len(digests) >= 3, digests
    bodies = [json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in digests]
    bodies.sort(key=lambda d: d["digestEndTime"])
    assert bodies[0]["previousDigestSignature"] is None
    for older, newer in zip(bodies, bodies[1:]):
        assert newer["previousDigestS3Object"] == older["digestS3Object"]
        assert newer["digestStartTime"] == older["digestEndTime"]
        older_meta = s3.head_object(Bucket=bucket, Key=older["digestS3Object"])["Metadata"]
        assert newer["previousDigestSignature"] == older_meta["signature"]
    listed = {f["s3Object"] for d in bodies for f in d["logFiles"]}
    logs = keys(s3, bucket, log_prefix)
    assert listed == set(logs)

    arn = trail_arn("chained", account=server.account_id)
    for result in (aws_validate_logs(server, moto_server, arn, start),
                   opentrail_validate(server, moto_server, arn, start)):
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{len(digests)}/{len(digests)} digest files valid" in result.stdout, result.stdout
        assert f"{len(logs)}/{len(logs)} log files valid" in result.stdout, result.stdout


def test_quiet_regions_of_a_multi_region_trail_get_chained_digests(start_server, moto_server):
    """A multi-region trail with validation has a digest chain in every region of its
    partition from StartLogging on: a region without any event gets a digest per window
    with an empty logFiles list, each linked to the one before (as CloudTrail delivers
    digests "even when there has been no API activity"), across a kill -9 too, and the real
    CLI validates it."""
    server = start_server(*moto_server.opentrail_args(), "--delivery-interval", "1s", "--digest-interval", "3s")
    s3 = moto_server.s3()
    bucket = "quiet-regions"
    s3.create_bucket(Bucket=bucket)
    client = server.client()
    start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.create_trail(Name="everywhere", S3BucketName=bucket, IsMultiRegionTrail=True,
                        EnableLogFileValidation=True)
    client.start_logging(Name="everywhere")
    quiet = "eu-central-1"
    digest_root = f"AWSLogs/{server.account_id}/CloudTrail-Digest/"

    def two_quiet_digests_while_busy():
        client.describe_trails()  # events, all in the home region
        return len(keys(s3, bucket, f"{digest_root}{quiet}/")) >= 2

    wait_for(two_quiet_digests_while_busy, timeout=120, interval=0.5, what=f"two {quiet} digests")
    # A crash mid-chain: every region's chain goes on from the metadata store, unbroken.
    server.kill()
    server.start()
    client = server.client()
    before = len(keys(s3, bucket, f"{digest_root}{quiet}/"))
    wait_for(lambda: len(keys(s3, bucket, f"{digest_root}{quiet}/")) >= before + 2, timeout=120, interval=0.5,
             what=f"two more {quiet} digests after the restart")
    client.stop_logging(Name="everywhere")
    wait_for_digest_chains_closed(server)

    regions = {key[len(digest_root):].split("/")[0] for key in keys(s3, bucket, digest_root)}
    assert {REGION, quiet, "ap-southeast-2", "sa-east-1", "us-west-2"} <= regions, regions
    assert not any(r.startswith(("cn-", "us-gov-")) for r in regions), "other partitions are not covered"
    assert keys(s3, bucket, f"AWSLogs/{server.account_id}/CloudTrail/{quiet}/") == []
    quiet_digests = keys(s3, bucket, f"{digest_root}{quiet}/")
    bodies = [json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in quiet_digests]
    bodies.sort(key=lambda d: d["digestEndTime"])
    assert all(d["logFiles"] == [] for d in bodies)
    assert all(d["awsAccountId"] == server.account_id for d in bodies)
    assert bodies[0]["previousDigestSignature"] is None
    for older, newer in zip(bodies, bodies[1:]):  # one chain, across the crash too
        older_meta = s3.head_object(Bucket=bucket, Key=older["digestS3Object"])["Metadata"]
        assert newer["previousDigestSignature"] == older_meta["signature"]
        assert newer["digestStartTime"] == older["digestEndTime"]

    arn = trail_arn("everywhere", account=server.account_id)
    n = len(quiet_digests)
    for result in (aws_validate_logs(server, moto_server, arn, start, region=quiet),
                   opentrail_validate(server, moto_server, arn, start, region=quiet)):
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{n}/{n} digest files valid" in result.stdout, result.stdout
        assert "/0 log files valid" in result.stdout or "log files valid" not in result.stdout, result.stdout
    home_logs = keys(s3, bucket, f"AWSLogs/{server.account_id}/CloudTrail/{REGION}/")
    home = aws_validate_logs(server, moto_server, arn, start)
    assert home.returncode == 0, home.stdout + home.stderr
    assert f"{len(home_logs)}/{len(home_logs)} log files valid" in home.stdout, home.stdout
