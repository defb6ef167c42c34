"""Issue 9, delivery: digest keys private from their first byte, log files delivered
exactly once across a crash, `opentrail validate` catching a truncated chain, trail
prefixes validated, webhook targets restricted."""

from __future__ import annotations

import os
import stat
import threading
import time

from conftest import REGION


def wait_for(predicate, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def files_under(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --------------------------------------------------------------------------- item 15


def test_digest_signing_keys_are_never_readable_by_others_even_with_umask_000(start_server):
    """The server runs with umask 000: every directory and file of the key store must
    still be owner-only, and no key file (or its temporary) is ever seen with more."""
    old_umask = os.umask(0)
    try:
        server = start_server("--delivery-interval", "1s")
    finally:
        os.umask(old_umask)
    keys_dir = server.data_dir / "keys"
    seen_open = []
    stop = threading.Event()

    def watch():
        # A local user polling the key directory while keys are written.
        while not stop.is_set():
            for path in [keys_dir, *keys_dir.rglob("*")] if keys_dir.exists() else []:
                try:
                    mode = stat.S_IMODE(path.lstat().st_mode)
                except FileNotFoundError:
                    continue
                if mode & 0o077:
                    seen_open.append((str(path), oct(mode)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        server.create_bucket("keys-bucket")
        client = server.client()
        client.create_trail(Name="signed", S3BucketName="keys-bucket", EnableLogFileValidation=True)
        client.start_logging(Name="signed")
        client.describe_trails()
        client.stop_logging(Name="signed")  # closes the chain: a digest, signed with a new key
        pems = wait_for(lambda: [p for p in files_under(keys_dir) if p.suffix == ".pem"], what="a signing key")
        wait_for(lambda: files_under(server.data_dir / "buckets" / "keys-bucket" / "AWSLogs" / server.account_id
                                     / "CloudTrail-Digest"), what="the digest")
    finally:
        stop.set()
        watcher.join()
    assert pems and all(p.parent.name == REGION for p in pems)
    for path in [keys_dir, *keys_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path} is {oct(mode)}"
    assert not seen_open, f"key store paths seen readable by others: {seen_open[:5]}"
