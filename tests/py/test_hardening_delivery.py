"""Issue 9, delivery: digest keys private from their first byte, log files delivered
exactly once across a crash, `opentrail validate` catching a truncated chain, trail
prefixes validated, webhook targets restricted."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sqlite3
import os
import stat
import subprocess
import threading
import time
import uuid

from conftest import OPENTRAIL_BIN, REGION, _child_env, error_code, trail_arn, wait_for, wait_for_digest_chains_closed



def files_under(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --------------------------------------------------------------------------- item 15


def test_digest_signing_keys_are_never_readable_by_others_even_with_umask_000(start_server):
    """The server runs with umask 000: the signing keys live in the metadata store, whose
    files must still be owner-only, and are never seen with more."""
    old_umask = os.umask(0)
    try:
        server = start_server("--delivery-interval", "1s")
    finally:
        os.umask(old_umask)
    store_files = [server.data_dir / name for name in ("meta.db", "meta.db-wal", "meta.db-shm")]
    seen_open = []
    stop = threading.Event()

    def watch():
        # A local user polling the store's files while keys are written.
        while not stop.is_set():
            for path in [server.data_dir, *store_files]:
                try:
                    mode = stat.S_IMODE(path.lstat().st_mode)
                except FileNotFoundError:
                    continue
                if mode & 0o077:
                    seen_open.append((str(path), oct(mode)))
            time.sleep(0.002)

    def signing_keys():
        db = sqlite3.connect(server.data_dir / "meta.db")
        try:
            return [row[0] for row in
                    db.execute("SELECT key FROM documents WHERE collection = 'signing_keys'")]
        finally:
            db.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        server.create_bucket("keys-bucket")
        client = server.client()
        client.create_trail(Name="signed", S3BucketName="keys-bucket", EnableLogFileValidation=True)
        client.start_logging(Name="signed")
        client.describe_trails()
        # Delivering (its chain open) before it stops: the stop closes the chain with a
        # digest, signed with a new key.
        wait_for(lambda: client.get_trail_status(Name="signed").get("LatestDeliveryTime"), timeout=60,
                 what="a delivered log file")
        client.stop_logging(Name="signed")
        keys = wait_for(signing_keys, timeout=120,
                        what="a signing key (RSA key generation is slow in debug builds)")
        wait_for(lambda: files_under(server.data_dir / "buckets" / "keys-bucket" / "AWSLogs" / server.account_id
                                     / "CloudTrail-Digest"), timeout=60, what="the digest")
    finally:
        stop.set()
        watcher.join()
    assert keys and all(key.startswith(REGION + "/") for key in keys), keys
    assert not (server.data_dir / "keys").exists(), "no key files"
    for path in [server.data_dir, *store_files]:
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            expected = 0o700 if path.is_dir() else 0o600
            assert mode == expected, f"{path} is {oct(mode)}"
    assert not seen_open, f"store paths seen readable by others: {seen_open[:5]}"


# --------------------------------------------------------------------------- item 7

ABORT_AFTER_WRITE = "OPENTRAIL_TEST_ABORT_AFTER_LOG_FILE_WRITE"


def delivered_records(server, bucket):
    root = server.data_dir / "buckets" / bucket / "AWSLogs" / server.account_id / "CloudTrail"
    records = []
    for path in files_under(root):
        records.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
    return records


def opentrail_validate(server, arn, start, *extra):
    return subprocess.run(
        [str(OPENTRAIL_BIN), "validate", "--endpoint", server.endpoint, "--data-dir", str(server.data_dir),
         "--trail-arn", arn, "--start-time", start, "--verbose", *extra],
        capture_output=True, text=True, timeout=120, env=_child_env(),
    )


def utc(delta_seconds=0.0):
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delta_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_crash_between_the_object_write_and_the_commit_delivers_every_event_once(start_server, monkeypatch):
    """The test hook aborts the process right after the first log file reaches the bucket
    (nothing recorded yet, the cursor not committed); after the restart every event is in
    the bucket exactly once and the digests still validate."""
    from test_ingest import post_events, valid_record

    start = utc(-120)
    server = start_server("--delivery-interval", "1s")
    server.create_bucket("once-bucket")
    client = server.client()
    client.create_trail(Name="once", S3BucketName="once-bucket", EnableLogFileValidation=True)
    client.stop_logging(Name="once")
    server.stop_cleanly()

    monkeypatch.setenv(ABORT_AFTER_WRITE, "1")
    server.start()
    monkeypatch.delenv(ABORT_AFTER_WRITE)
    client = server.client()
    client.start_logging(Name="once")
    now = utc()
    ids = [str(uuid.uuid4()) for _ in range(600)]
    for chunk in (ids[:300], ids[300:]):
        records = [valid_record(server.account_id, i, eventTime=now) for i in chunk]
        answer = post_events(server, json.dumps({"Records": records}).encode())
        assert answer.status_code == 200 and not answer.json()["failed"], answer.text
    proc = server.proc
    assert proc.wait(timeout=60) != 0, "the hook aborted the server after its first write"
    server.proc = None
    written = delivered_records(server, "once-bucket")
    assert written, "the file was written before the crash"

    server.start()
    client = server.client()
    wanted = set(ids)

    def all_delivered():
        got = [r["eventID"] for r in delivered_records(server, "once-bucket")]
        return got if wanted <= set(got) else None

    got = wait_for(all_delivered, timeout=60, what="every event delivered after the restart")
    client.stop_logging(Name="once")
    wait_for_digest_chains_closed(server)
    got = [r["eventID"] for r in delivered_records(server, "once-bucket")]
    duplicates = {i for i in got if got.count(i) > 1}
    assert not duplicates, f"{len(duplicates)} events delivered twice, e.g. {sorted(duplicates)[:3]}"
    assert wanted <= set(got)
    digests = server.data_dir / "buckets" / "once-bucket" / "AWSLogs" / server.account_id / "CloudTrail-Digest"
    wait_for(lambda: files_under(digests), what="the final digest")
    result = opentrail_validate(server, trail_arn("once", account=server.account_id), start)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- item 21

UNWRITABLE_PREFIXES = ["../x", "/abs", "a/", "a//b", "./a", "a/../b", "a\tb", "x" * 201]


def test_s3_key_prefixes_that_can_never_be_written_are_refused(server):
    server.create_bucket("prefix-bucket")
    client = server.client()
    for prefix in UNWRITABLE_PREFIXES:
        assert error_code(client.create_trail, Name="prefixed", S3BucketName="prefix-bucket",
                          S3KeyPrefix=prefix) == "InvalidS3PrefixException", prefix
    assert error_code(server.aws, "cloudtrail", "create-trail", "--name", "prefixed", "--s3-bucket-name", "prefix-bucket",
                      "--s3-key-prefix", "../x") == "InvalidS3PrefixException"
    assert client.describe_trails()["trailList"] == []
    client.create_trail(Name="prefixed", S3BucketName="prefix-bucket", S3KeyPrefix="team/audit-logs.v2")
    for prefix in UNWRITABLE_PREFIXES:
        assert error_code(client.update_trail, Name="prefixed", S3KeyPrefix=prefix) == "InvalidS3PrefixException", prefix
    assert client.get_trail(Name="prefixed")["Trail"]["S3KeyPrefix"] == "team/audit-logs.v2"
    client.update_trail(Name="prefixed", S3KeyPrefix="x" * 200)
    client.update_trail(Name="prefixed", S3KeyPrefix="")
    assert "S3KeyPrefix" not in client.get_trail(Name="prefixed")["Trail"]


def test_a_deleted_trails_spooled_files_are_dropped(start_server):
    server = start_server("--delivery-interval", "1s")
    server.create_bucket("gone-bucket")
    client = server.client()
    client.create_trail(Name="doomed", S3BucketName="gone-bucket")
    server.admin("buckets", "delete", "gone-bucket")
    client.start_logging(Name="doomed")
    spool = server.data_dir / "delivery" / "spool"
    for _ in range(3):
        client.get_trail(Name="doomed")
    wait_for(lambda: client.get_trail_status(Name="doomed").get("LatestDeliveryError") == "NoSuchBucket",
             what="a failed delivery")
    wait_for(lambda: list(spool.glob("*.spool")), what="a spooled file")
    client.delete_trail(Name="doomed")
    wait_for(lambda: not list(spool.glob("*.spool")), what="the deleted trail's spool to go")
    # A witness trail: once it has delivered an event made after the restart, delivery has
    # read again everything the restart left unread, and spooled what it would.
    server.create_bucket("witness-bucket")
    client.create_trail(Name="witness", S3BucketName="witness-bucket")
    client.start_logging(Name="witness")
    server.restart()
    client = server.client()
    arn = trail_arn("witness", account=server.account_id)
    client.list_tags(ResourceIdList=[arn])
    wait_for(lambda: any(r["eventName"] == "ListTags" for r in delivered_records(server, "witness-bucket")),
             timeout=60, what="the witness trail to deliver an event made after the restart")
    assert not list(spool.glob("*.spool"))


# --------------------------------------------------------------------------- item 20


def test_validate_reports_a_truncated_chain_and_unlisted_log_files(start_server):
    """Digest windows of 3 s: a chain of several digests. Deleting the newest digests and
    their log files, or adding a log file no digest lists, must fail `opentrail validate`
    (with and without --end-time), which otherwise passes."""
    start = utc(-120)
    server = start_server("--delivery-interval", "1s", "--digest-interval", "3s")
    server.create_bucket("chain-bucket")
    client = server.client()
    client.create_trail(Name="chained", S3BucketName="chain-bucket", EnableLogFileValidation=True)
    client.start_logging(Name="chained")
    arn = trail_arn("chained", account=server.account_id)
    base = server.data_dir / "buckets" / "chain-bucket" / "AWSLogs" / server.account_id
    def four_digests_while_busy():
        client.get_trail(Name="chained")  # events for the windows' log files
        return len(files_under(base / "CloudTrail-Digest")) >= 4

    wait_for(four_digests_while_busy, timeout=120, interval=0.5, what="four digests")
    # While the trail logs, the chain reaches its latest digest: valid.
    result = opentrail_validate(server, arn, start)
    assert result.returncode == 0, result.stdout + result.stderr
    client.stop_logging(Name="chained")
    wait_for_digest_chains_closed(server)
    result = opentrail_validate(server, arn, start)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not listed" not in result.stdout and "truncated" not in result.stdout

    digests = sorted(files_under(base / "CloudTrail-Digest"))
    parsed = [json.loads(gzip.decompress(p.read_bytes())) for p in digests]
    # A log file added inside a digest's window that no digest lists.
    listed_key = next(d for d in parsed if d["logFiles"])["logFiles"][0]["s3Object"]
    window = parsed[len(parsed) // 2]  # inside the chain, away from its ends
    listed_path = server.data_dir / "buckets" / "chain-bucket" / listed_key
    forged = listed_path.with_name(listed_path.name.replace(".json.gz", "").rsplit("_", 1)[0] + "_FORGEDforged0001.json.gz")
    forged.write_bytes(listed_path.read_bytes())
    middle = (dt.datetime.fromisoformat(window["digestStartTime"].replace("Z", "+00:00")).timestamp()
              + dt.datetime.fromisoformat(window["digestEndTime"].replace("Z", "+00:00")).timestamp()) / 2
    os.utime(forged, (middle, middle))
    result = opentrail_validate(server, arn, start)
    assert result.returncode != 0, result.stdout
    assert "FORGEDforged0001.json.gz\tINVALID: not listed in any digest" in result.stdout, result.stdout
    forged.unlink()
    assert opentrail_validate(server, arn, start).returncode == 0

    # The newest digests and the log files they list deleted: the chain is truncated. On a
    # busy machine a digest can be written late, close to the next one, and `validate`
    # rightly accepts a newest digest written within its slack of the latest delivery; so
    # every digest written within 5 s of the newest goes (at least two), and one stays.
    written = [p.stat().st_mtime for p in digests]
    doomed = [i for i, at in enumerate(written) if at >= max(written) - 5]
    doomed = sorted(set(doomed) | {len(digests) - 2, len(digests) - 1})
    assert len(doomed) < len(digests), "every digest was written within 5 s of the newest"
    for path, digest in ((digests[i], parsed[i]) for i in doomed):
        for log in digest["logFiles"]:
            (server.data_dir / "buckets" / "chain-bucket" / log["s3Object"]).unlink()
        path.unlink()
    for extra in ([], ["--end-time", utc()]):
        result = opentrail_validate(server, arn, start, *extra)
        assert result.returncode != 0, (result.stdout, client.get_trail_status(Name="chained"), list(zip([p.name for p in digests], written)))
        assert "digest chain truncated" in result.stdout, result.stdout


# --------------------------------------------------------------------------- item 22


def test_webhooks_to_private_targets_need_allow_private_targets(server):
    topic_arn = server.admin("topics", "create", "hooks").stdout.strip()
    for url in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/", "http://localhost:9/x",
                "http://[::1]:9/x", "http://10.1.2.3/x", "http://192.168.0.10/x", "http://172.16.5.4/x",
                "http://[fd00::1]/x", "http://[fe80::1]/x", "http://0.0.0.0:9/x", "http://[::ffff:127.0.0.1]/x"]:
        result = server.admin("topics", "subscribe", topic_arn, "--webhook", url, check=False)
        assert result.returncode != 0, f"{url} was accepted"
        assert "refused" in result.stderr and "allow private targets" in result.stderr, result.stderr
    assert "webhook" not in server.admin("topics", "list").stdout
    allowed = server.admin("topics", "subscribe", topic_arn, "--webhook", "http://127.0.0.1:9/hook",
                           "--allow-private-targets")
    assert allowed.stdout.startswith(topic_arn + ":")
    assert "webhook http://127.0.0.1:9/hook" in server.admin("topics", "list").stdout


def test_a_webhook_host_is_checked_again_before_each_notification(start_server, tmp_path):
    """A subscription whose host name resolved to a public address (or not at all) when it
    was made, and resolves to loopback now: the notification is refused, not sent."""
    server = start_server("--delivery-interval", "1s")
    topic_arn = server.admin("topics", "create", "rebound").stdout.strip()
    server.admin("topics", "subscribe", topic_arn, "--webhook", "http://127.0.0.1:9/hook", "--allow-private-targets")
    # The registry as an older version (or a host that resolved elsewhere) left it:
    # a loopback name without the allowance. Topics live in the metadata store, which
    # other processes may change while the server runs.
    db = sqlite3.connect(server.data_dir / "meta.db")
    rows = db.execute("SELECT key, value FROM documents WHERE collection = 'sns_topics'").fetchall()
    assert rows, "the topic is in the metadata store"
    for key, value in rows:
        assert '"allow_private_targets":true' in value.replace(" ", ""), value
        topic = json.loads(value)
        for subscription in topic["subscriptions"]:
            subscription["endpoint"].pop("allow_private_targets", None)
            subscription["endpoint"]["url"] = "http://localhost:9/hook"
        db.execute("UPDATE documents SET value = ? WHERE collection = 'sns_topics' AND key = ?",
                   (json.dumps(topic), key))
    db.commit()
    db.close()
    server.create_bucket("rebound-bucket")
    client = server.client()
    client.create_trail(Name="rebound", S3BucketName="rebound-bucket", SnsTopicName="rebound")
    client.start_logging(Name="rebound")
    status = wait_for(lambda: (s := client.get_trail_status(Name="rebound")).get("LatestNotificationError") and s,
                      timeout=60, what="LatestNotificationError")
    assert "loopback" in status["LatestNotificationError"], status
