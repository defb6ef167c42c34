"""Shutdown through the real binary: SIGTERM (or Ctrl-C) stops accepting, closes idle
keep-alive connections at once, lets requests in flight finish for at most
`--shutdown-grace`, cuts the rest, flushes and exits 0; nothing acknowledged is lost."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from conftest import ACCOUNT_ID, REGION, wait_for
from test_ingest import post_events, valid_record

# What the server may take after the grace: stopping and flushing event history and
# delivery (bounded by the server at 5 s), plus a margin for a busy machine.
AFTER_GRACE = 5.0 + 10.0


def records(count: int) -> tuple[bytes, list[str]]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    body = json.dumps({"Records": [valid_record(ACCOUNT_ID, event_id) for event_id in ids]}).encode()
    return body, ids


def acknowledge(server, count: int) -> list[str]:
    body, ids = records(count)
    response = post_events(server, body)
    assert response.status_code == 200, response.text
    assert len(response.json()["successful"]) == count, response.text
    return ids


def start_slow_post(server, body: bytes) -> socket.socket:
    """Sends a signed POST /events head with `Expect: 100-continue` and returns once the
    server has started to read the body (it answered 100 Continue): the request is then
    in flight. The caller sends the body, or not."""
    request = AWSRequest(
        method="POST", url=f"{server.endpoint}/events", data=body, headers={"Content-Type": "application/json"}
    )
    root = server.root
    SigV4Auth(BotoCredentials(root.access_key_id, root.secret_access_key), "opentrail", REGION).add_auth(request)
    headers = {k: v for k, v in request.prepare().headers.items() if k.lower() not in ("content-length", "host")}
    head = f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(60)
    sock.sendall(head.encode())
    interim = b""
    while b"\r\n\r\n" not in interim:
        chunk = sock.recv(4096)
        assert chunk, f"the server closed the connection instead of reading the body: {interim!r}"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100"), interim
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return data


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


def wait_for_exit(server, signal_sent_at: float, limit: float) -> int:
    """Waits for the signalled server to exit; fails if it takes longer than `limit`."""
    proc, server.proc = server.proc, None
    try:
        code = proc.wait(timeout=max(limit - (time.monotonic() - signal_sent_at), 0.1))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"opentrail did not exit within {limit}s of the signal\n{server.log_text()}")
    finally:
        if proc.stdout:
            proc.stdout.close()
    return code


def assert_in_history(server, event_ids: list[str]) -> None:
    client = server.client()

    def found(event_id: str) -> bool:
        events = client.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}]
        )["Events"]
        return any(event["EventId"] == event_id for event in events)

    for event_id in event_ids:
        wait_for(lambda: found(event_id), timeout=60, what=f"event {event_id} in LookupEvents")


def test_sigterm_finishes_requests_in_flight_and_closes_idle_connections(start_server):
    grace = 30.0  # long enough that the in-flight request surely finishes inside it
    server = start_server("--shutdown-grace", f"{int(grace)}s")
    acknowledged = acknowledge(server, 20)
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    idle.request("GET", "/health")
    assert idle.getresponse().read()
    body, in_flight_ids = records(50)
    slow = start_slow_post(server, body)
    try:
        slow.sendall(body[: len(body) // 2])
        server.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # While the request is still in flight: no new connections, idle ones closed.
        wait_for(lambda: refuses_connections(server.port), timeout=grace / 2, what="the listener to close")
        assert read_until_closed(idle.sock, timeout=grace / 2) == b"", "an idle connection got an answer"
        assert server.proc.poll() is None, "the server exited before the request in flight finished"
        slow.sendall(body[len(body) // 2 :])
        answer = read_until_closed(slow, timeout=grace)
    finally:
        slow.close()
        idle.close()
    head, _, document = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:2000]
    assert re.search(rb"(?im)^connection: close", head), head
    assert len(json.loads(document)["successful"]) == 50
    assert wait_for_exit(server, signalled, grace + AFTER_GRACE) == 0, server.log_text()
    server.start()
    assert_in_history(server, acknowledged + in_flight_ids)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_short_grace_cuts_requests_still_in_flight(start_server, signum):
    grace = 1.0
    server = start_server("--shutdown-grace", "1s")
    acknowledged = acknowledge(server, 20)
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    idle.request("GET", "/health")
    assert idle.getresponse().read()
    body, _never_sent_whole = records(50)
    slow = start_slow_post(server, body)
    try:
        slow.sendall(body[: len(body) // 2])
        server.proc.send_signal(signum)
        signalled = time.monotonic()
        assert wait_for_exit(server, signalled, grace + AFTER_GRACE) == 0, server.log_text()
        # The body never arrived whole: the request was cut, without an answer.
        assert read_until_closed(slow, timeout=10) == b""
        assert read_until_closed(idle.sock, timeout=10) == b""
    finally:
        slow.close()
        idle.close()
    assert "shutdown grace ended" in server.log_text()
    server.start()
    assert_in_history(server, acknowledged)
