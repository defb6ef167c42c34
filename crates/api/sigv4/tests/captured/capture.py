"""Captures SigV4-signed requests from the AWS CLI and boto3 as raw HTTP bytes.

Regenerates the *.http fixtures beside this file:

    python3 -m venv /tmp/sigv4-venv && /tmp/sigv4-venv/bin/pip install awscli boto3
    /tmp/sigv4-venv/bin/python crates/api/sigv4/tests/captured/capture.py

A one-thread server on 127.0.0.1 answers every request with `{}` and saves
the bytes it received; each client is pointed at it in turn. The example keys
are AWS's documentation keys, not real credentials.
"""

import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def serve(listener, captured):
    while True:
        conn, _ = listener.accept()
        with conn:
            raw = read_request(conn)
            if raw == b"STOP":
                return
            captured.append(raw)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                b"x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
            )


def capture(name, run):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    captured = []
    thread = threading.Thread(target=serve, args=(listener, captured))
    thread.start()
    try:
        run(f"http://127.0.0.1:{port}")
    finally:
        with socket.create_connection(("127.0.0.1", port)) as stop:
            stop.sendall(b"STOP")
        thread.join()
        listener.close()
    if len(captured) != 1:
        sys.exit(f"{name}: expected one request, got {len(captured)}")
    with open(os.path.join(HERE, f"{name}.http"), "wb") as out:
        out.write(captured[0])
    print(f"captured {name}.http ({len(captured[0])} bytes)")


def client_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


def awscli_describe_trails(endpoint):
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    subprocess.run(
        [aws, "cloudtrail", "describe-trails", "--endpoint-url", endpoint, "--region", "us-east-1"],
        env=client_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def boto3_client(service, endpoint):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def boto3_create_trail(endpoint):
    boto3_client("cloudtrail", endpoint).create_trail(
        Name="management-events", S3BucketName="opentrail-logs", IsMultiRegionTrail=True
    )


def boto3_put_audit_events(endpoint):
    boto3_client("cloudtrail-data", endpoint).put_audit_events(
        channelArn="arn:aws:cloudtrail:us-east-1:123456789012:channel/01234567-89ab-cdef-0123-456789abcdef",
        externalId="ext id/1",
        auditEvents=[{"id": "event-1", "eventData": '{"version":"1.0","UID":"u"}'}],
    )


if __name__ == "__main__":
    capture("awscli-describe-trails", awscli_describe_trails)
    capture("boto3-create-trail", boto3_create_trail)
    capture("boto3-put-audit-events", boto3_put_audit_events)
