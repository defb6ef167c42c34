"""Events through POST /events and the API arrive in the right trails' files and only
there: a matrix over selector kinds, regions, global service events and prefixes."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from pathlib import Path

from conftest import OTHER_REGION, REGION
from test_delivery import wait_for
from test_ingest import post_events

BUCKET = "matrix-bucket"


def event(account, source, name, region, *, read_only, management=True, resources=None):
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    record = {
        "eventVersion": "1.10",
        "userIdentity": {"type": "IAMUser", "accountId": account, "userName": "matrix",
                         "arn": f"arn:aws:iam::{account}:user/matrix"},
        "eventTime": now,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "10.1.2.3",
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": management,
        "recipientAccountId": account,
        "eventCategory": "Management" if management else "Data",
    }
    if resources:
        record["resources"] = resources
    return record


def delivered(bucket_dir: Path, prefix: str, account: str) -> dict[str, list[tuple[str, dict]]]:
    """eventID -> [(key, record)] of every log file under the trail's prefix."""
    root = bucket_dir / prefix / "AWSLogs" / account / "CloudTrail" if prefix else bucket_dir / "AWSLogs" / account / "CloudTrail"
    found: dict[str, list[tuple[str, dict]]] = {}
    for path in sorted(root.rglob("*.json.gz")) if root.exists() else []:
        key = str(path.relative_to(bucket_dir))
        raw = gzip.decompress(path.read_bytes())
        assert raw.endswith(b"]}\n") and raw.count(b"\n") == 1, key
        for record in json.loads(raw)["Records"]:
            found.setdefault(record["eventID"], []).append((key, record))
    return found


def test_selector_region_and_global_matrix(start_server):
    server = start_server("--delivery-interval", "1s")
    server.create_bucket(BUCKET)
    us, eu = server.client(region=REGION), server.client(region=OTHER_REGION)
    account = server.account_id
    us.create_trail(Name="mgmt-only", S3BucketName=BUCKET, S3KeyPrefix="mgmt")
    us.create_trail(Name="no-global", S3BucketName=BUCKET, S3KeyPrefix="noglobal", IncludeGlobalServiceEvents=False)
    us.create_trail(Name="s3-data", S3BucketName=BUCKET, S3KeyPrefix="data", IsMultiRegionTrail=True)
    us.put_event_selectors(TrailName="s3-data", EventSelectors=[{
        "ReadWriteType": "All", "IncludeManagementEvents": False,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket-x/"]}],
    }])
    eu.create_trail(Name="writes", S3BucketName=BUCKET, S3KeyPrefix="writes", IsMultiRegionTrail=True)
    eu.put_event_selectors(TrailName="writes", AdvancedEventSelectors=[{
        "Name": "management writes",
        "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                           {"Field": "readOnly", "Equals": ["false"]}],
    }])
    for name, client in [("mgmt-only", us), ("no-global", us), ("s3-data", us), ("writes", eu)]:
        client.start_logging(Name=name)

    run = event(account, "ec2.amazonaws.com", "RunInstances", REGION, read_only=False)
    describe_eu = event(account, "ec2.amazonaws.com", "DescribeInstances", OTHER_REGION, read_only=True)
    iam = event(account, "iam.amazonaws.com", "CreateUser", REGION, read_only=False)
    get_x = event(account, "s3.amazonaws.com", "GetObject", REGION, read_only=True, management=False,
                  resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bucket-x/reports/a.csv"},
                             {"accountId": account, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::bucket-x"}])
    put_y = event(account, "s3.amazonaws.com", "PutObject", OTHER_REGION, read_only=False, management=False,
                  resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bucket-y/b.csv"}])
    other_account = event("999988887777", "ec2.amazonaws.com", "RunInstances", REGION, read_only=False)
    records = [run, describe_eu, iam, get_x, put_y, other_account]
    answer = post_events(server, json.dumps({"Records": records}).encode()).json()
    assert len(answer["successful"]) == len(records), answer

    expected = {
        "mgmt": {run["eventID"], iam["eventID"]},
        "noglobal": {run["eventID"]},
        "data": {get_x["eventID"]},
        "writes": {run["eventID"], iam["eventID"]},
    }
    ours = {r["eventID"] for r in records}
    bucket_dir = server.data_dir / "buckets" / BUCKET

    def complete():
        return all(expected[p] <= set(delivered(bucket_dir, p, account)) for p in expected)

    wait_for(complete, timeout=60, what="every expected event delivered")
    # Stop logging, so every open file is written, then look at everything delivered.
    for name, client in [("mgmt-only", us), ("no-global", us), ("s3-data", us), ("writes", eu)]:
        client.stop_logging(Name=name)
    for prefix, wanted in expected.items():
        found = delivered(bucket_dir, prefix, account)
        assert set(found) & ours == wanted, prefix
        for event_id in wanted:
            assert len(found[event_id]) == 1, f"{event_id} delivered more than once to {prefix}"
            key, record = found[event_id][0]
            region = record["awsRegion"]
            assert key.startswith(f"{prefix}/AWSLogs/{account}/CloudTrail/{region}/"), key
            assert f"{account}_CloudTrail_{region}_" in key
    # The API's own events are management events: the default-selector trail has them too.
    api_events = {r["eventName"] for _, [(_, r), *_] in delivered(bucket_dir, "mgmt", account).items()
                  if r["eventSource"] == "cloudtrail.amazonaws.com"}
    assert {"StartLogging", "PutEventSelectors"} & api_events
    # ... but the data-only trail does not.
    assert all(r["eventSource"] == "s3.amazonaws.com"
               for entries in delivered(bucket_dir, "data", account).values() for _, r in entries)


def test_stop_and_start_logging_boundaries(start_server):
    import time

    server = start_server("--delivery-interval", "1s")
    server.create_bucket(BUCKET)
    client = server.client()
    account = server.account_id
    client.create_trail(Name="boundary", S3BucketName=BUCKET)
    # A witness that logs throughout: once it has delivered an event, delivery has read
    # (and routed, or not) every record before it.
    client.create_trail(Name="witness", S3BucketName=BUCKET, S3KeyPrefix="witness")
    client.start_logging(Name="witness")
    bucket_dir = server.data_dir / "buckets" / BUCKET

    before = event(account, "ec2.amazonaws.com", "RunInstances", REGION, read_only=False)
    post_events(server, json.dumps(before).encode())
    client.start_logging(Name="boundary")
    time.sleep(1.1)  # event times have whole seconds: the next event is strictly after the start
    during = event(account, "ec2.amazonaws.com", "StopInstances", REGION, read_only=False)
    post_events(server, json.dumps(during).encode())
    wait_for(lambda: during["eventID"] in delivered(bucket_dir, "", account), what="the event while logging")
    client.stop_logging(Name="boundary")
    after = event(account, "ec2.amazonaws.com", "TerminateInstances", REGION, read_only=False)
    post_events(server, json.dumps(after).encode())
    marker = event(account, "ec2.amazonaws.com", "DescribeInstances", REGION, read_only=False)
    post_events(server, json.dumps(marker).encode())
    wait_for(lambda: marker["eventID"] in delivered(bucket_dir, "witness", account), timeout=60,
             what="delivery to read past the event after StopLogging")
    found = delivered(bucket_dir, "", account)
    assert during["eventID"] in found
    assert before["eventID"] not in found, "an event from before StartLogging was delivered"
    assert after["eventID"] not in found, "an event from after StopLogging was delivered"
