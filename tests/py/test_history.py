"""Event history: LookupEvents over self-audit events and ingested/imported AWS events,
through boto3, the AWS CLI and `opentrail events`, with AWS's errors."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

import pytest

from conftest import OPENTRAIL_BIN, REGION, _child_env, error_code
from test_delivery import wait_for
from test_ingest import CONFORMANCE_ACCOUNT, conformance_files, post_events, run_import, valid_record
from test_protocol import raw_call

LONG_RETENTION = ("--history-retention-days", "3650")
JULY_2023 = (dt.datetime(2023, 7, 1, tzinfo=dt.timezone.utc), dt.datetime(2023, 7, 31, tzinfo=dt.timezone.utc))


def all_events(client, **kwargs):
    events, token = [], None
    while True:
        page = client.lookup_events(**kwargs, **({"NextToken": token} if token else {}))
        events.extend(page["Events"])
        token = page.get("NextToken")
        if not token:
            return events


@pytest.fixture
def imported(start_server):
    """A server holding the 2,900 imported AWS events, all indexed."""
    server = start_server(*LONG_RETENTION, account_id=CONFORMANCE_ACCOUNT)
    result = run_import(server, conformance_files()[0].parent)
    assert result.returncode == 0, result.stderr
    client = server.client()
    wait_for(lambda: len(all_events(client, StartTime=JULY_2023[0], EndTime=JULY_2023[1])) == 2900,
             timeout=60, what="all 2,900 imported events indexed")
    return server


def original_records():
    """(raw file text, parsed records) of every conformance file."""
    return [(path.read_text(), json.loads(path.read_text())["Records"]) for path in conformance_files()]


def test_imported_events_round_trip_byte_identically(imported):
    client = imported.client()
    files = original_records()
    wanted = {r["eventID"] for _, records in files for r in records
              if r.get("managementEvent", True) is not False and r["awsRegion"] == REGION}
    found = wait_for(lambda: (e := all_events(client, StartTime=JULY_2023[0], EndTime=JULY_2023[1], MaxResults=50))
                     and len(e) >= len(wanted) and e, timeout=60, what="all imported management events")
    ids = [e["EventId"] for e in found]
    assert len(ids) == len(set(ids)), "duplicates in event history"
    assert set(ids) == wanted
    everything = "".join(text for text, _ in files)
    times = [e["EventTime"] for e in found]
    assert times == sorted(times, reverse=True), "LookupEvents must return newest first"
    for e in found:
        # The original record, byte for byte.
        assert e["CloudTrailEvent"] in everything, e["EventId"]
    # Re-importing (a fresh state file) adds no duplicates.
    again = run_import(imported, conformance_files()[0].parent, "--state-file", str(imported.data_dir / "other.done"))
    assert again.returncode == 0, again.stderr
    imported.wait_for_history_caught_up()
    assert len(all_events(client, StartTime=JULY_2023[0], EndTime=JULY_2023[1])) == len(wanted)


@pytest.mark.parametrize("key", ["EventId", "EventName", "ReadOnly", "Username", "ResourceType",
                                 "ResourceName", "EventSource", "AccessKeyId"])
def test_each_lookup_attribute(imported, key):
    client = imported.client()
    sample = wait_for(lambda: all_events(client, StartTime=JULY_2023[0], EndTime=JULY_2023[1]),
                      what="imported events")
    with_value = []
    for e in sample:
        if key == "EventId":
            with_value.append((e, e["EventId"]))
        elif key == "EventName":
            with_value.append((e, e["EventName"]))
        elif key == "ReadOnly" and "ReadOnly" in e:
            with_value.append((e, e["ReadOnly"]))
        elif key == "Username" and e.get("Username"):
            with_value.append((e, e["Username"]))
        elif key == "ResourceType":
            with_value.extend((e, r["ResourceType"]) for r in e.get("Resources", [])[:1] if r.get("ResourceType"))
        elif key == "ResourceName":
            with_value.extend((e, r["ResourceName"]) for r in e.get("Resources", [])[:1] if r.get("ResourceName"))
        elif key == "EventSource":
            with_value.append((e, e["EventSource"]))
        elif key == "AccessKeyId" and e.get("AccessKeyId"):
            with_value.append((e, e["AccessKeyId"]))
    assert with_value, f"no imported event has a {key}"
    event, value = with_value[len(with_value) // 2]
    matches = all_events(client, StartTime=JULY_2023[0], EndTime=JULY_2023[1],
                         LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
    assert event["EventId"] in {m["EventId"] for m in matches}
    if key == "ReadOnly":
        # Every match really is read-only (or not), whatever form the record uses.
        assert all(str(json.loads(m["CloudTrailEvent"]).get("readOnly")).lower() == value for m in matches)
        assert {e["EventId"] for e, v in with_value if v == value} <= {m["EventId"] for m in matches}
    elif key == "AccessKeyId":
        # Every match was made with that key (the index reads userIdentity.accessKeyId).
        assert all(json.loads(m["CloudTrailEvent"])["userIdentity"].get("accessKeyId") == value for m in matches)
        assert {e["EventId"] for e, v in with_value if v == value} <= {m["EventId"] for m in matches}
    elif key not in ("ResourceType", "ResourceName"):
        assert {m["EventId"] for m in matches} == {e["EventId"] for e, v in with_value if v == value}


def test_lookup_errors(imported):
    client = imported.client()
    two = [{"AttributeKey": "EventName", "AttributeValue": "a"}, {"AttributeKey": "EventSource", "AttributeValue": "b"}]
    assert error_code(client.lookup_events, LookupAttributes=two) == "InvalidLookupAttributesException"
    now = dt.datetime.now(dt.timezone.utc)
    assert error_code(client.lookup_events, StartTime=now, EndTime=now - dt.timedelta(hours=1)) == "InvalidTimeRangeException"
    # botocore refuses MaxResults=0 itself; send it raw.
    raw = raw_call(imported, "LookupEvents", {"MaxResults": 0})
    assert raw.status_code == 400 and raw.json()["__type"] == "InvalidMaxResultsException"
    assert error_code(client.lookup_events, MaxResults=51) == "InvalidMaxResultsException"
    assert error_code(client.lookup_events, NextToken="garbage") == "InvalidNextTokenException"
    page = client.lookup_events(StartTime=JULY_2023[0], EndTime=JULY_2023[1], MaxResults=5)
    assert page.get("NextToken")
    # A token is bound to the query it came from.
    assert error_code(client.lookup_events, StartTime=JULY_2023[0], EndTime=JULY_2023[1], MaxResults=5,
                      NextToken=page["NextToken"],
                      LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "x"}]) == "InvalidNextTokenException"
    assert error_code(client.lookup_events, EventCategory="bogus") in ("InvalidEventCategoryException", "ValidationException")


def lookup_ids(client, key, value, **kwargs):
    return {e["EventId"] for e in all_events(client, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}],
                                             **kwargs)}


def test_resources_are_found_by_name_id_and_arn(imported):
    """ResourceName finds an event by the resource's name or ID (what event history shows) and
    still by its ARN; Resources lists what the request and response name."""
    client = imported.client()
    # The AWS documentation's example: a role looked up by its name.
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    role = "CloudTrail_CloudWatchLogs_Role"
    create_role = valid_record(
        CONFORMANCE_ACCOUNT, "create-cloudwatch-logs-role",
        eventTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"), eventSource="iam.amazonaws.com", eventName="CreateRole",
        userIdentity={"type": "IAMUser", "accountId": CONFORMANCE_ACCOUNT, "userName": "alice",
                      "arn": f"arn:aws:iam::{CONFORMANCE_ACCOUNT}:user/alice", "principalId": "AIDAEXAMPLE"},
        requestParameters={"roleName": role, "path": "/", "assumeRolePolicyDocument": "{}"},
        responseElements={"role": {"roleName": role, "roleId": "AROAEXAMPLE",
                                   "arn": f"arn:aws:iam::{CONFORMANCE_ACCOUNT}:role/{role}"}},
        managementEvent=True, eventCategory="Management", readOnly=False)
    response = post_events(imported, json.dumps({"Records": [create_role]}).encode())
    assert response.status_code == 200 and response.json()["failed"] == [], response.text
    recent = {"StartTime": now - dt.timedelta(hours=1)}
    found = wait_for(lambda: client.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": role}], **recent)["Events"],
        what="role by name")
    assert [e["EventId"] for e in found] == ["create-cloudwatch-logs-role"]
    assert found[0]["Resources"] == [{"ResourceType": "AWS::IAM::Role", "ResourceName": role}]
    assert [e["EventId"] for e in client.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceType", "AttributeValue": "AWS::IAM::Role"}], **recent)["Events"]] \
        == ["create-cloudwatch-logs-role"]

    july = {"StartTime": JULY_2023[0], "EndTime": JULY_2023[1]}
    # A role of the imported AWS logs: by name (CreateRole, GetRole, ... and AssumeRole, which
    # names it by ARN) and by ARN (AssumeRole's roleArn and resources[]).
    role = "stratus-red-team-ec2-get-password-data-role"
    role_arn = f"arn:aws:iam::{CONFORMANCE_ACCOUNT}:role/{role}"
    by_name, by_arn = lookup_ids(client, "ResourceName", role, **july), lookup_ids(client, "ResourceName", role_arn, **july)
    assert {"ff709962-49b6-494d-8198-cdf0f7e8e666", "4bd2a6f6-dddc-49e6-ba7d-08f73e809e64"} <= by_name
    assert "4bd2a6f6-dddc-49e6-ba7d-08f73e809e64" in by_arn and by_arn <= by_name
    assume = client.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventId", "AttributeValue": "4bd2a6f6-dddc-49e6-ba7d-08f73e809e64"}], **july)["Events"][0]
    assert {"ResourceType": "AWS::IAM::Role", "ResourceName": role_arn} in assume["Resources"]
    assert {"ResourceType": "AWS::IAM::AccessKey", "ResourceName": "ASIATFQR7NSC7E2ZIBM2"} in assume["Resources"]

    # A bucket: by name (CreateBucket records no resources[]) and by ARN.
    bucket = "stratus-red-team-ctlr-bucket-zqfsvooxqj"
    by_name = lookup_ids(client, "ResourceName", bucket, **july)
    by_arn = lookup_ids(client, "ResourceName", f"arn:aws:s3:::{bucket}", **july)
    create_bucket = {r["eventID"] for _, records in original_records() for r in records
                     if r["eventName"] == "CreateBucket" and r["requestParameters"]["bucketName"] == bucket}
    assert create_bucket and create_bucket <= by_name
    assert by_arn and by_arn <= by_name and not create_bucket & by_arn
    one = client.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": sorted(by_arn)[0]}],
                               **july)["Events"][0]
    assert one["Resources"] == [{"ResourceType": "AWS::S3::Bucket", "ResourceName": bucket}]

    # An instance by its ID, through the AWS CLI.
    instance = "i-0dbc91f429e48eeed"
    cli = imported.aws("cloudtrail", "lookup-events", "--start-time", "2023-07-01T00:00:00Z",
                       "--end-time", "2023-07-31T00:00:00Z",
                       "--lookup-attributes", f"AttributeKey=ResourceName,AttributeValue={instance}")
    names = {e["EventName"] for e in cli["Events"]}
    assert {"TerminateInstances", "SendCommand", "DescribeInstances"} <= names, names
    terminate = next(e for e in cli["Events"] if e["EventName"] == "TerminateInstances")
    assert terminate["Resources"] == [{"ResourceType": "AWS::EC2::Instance", "ResourceName": instance}]
    assert lookup_ids(client, "ResourceName", f"arn:aws:ec2:us-east-1:{CONFORMANCE_ACCOUNT}:instance/{instance}",
                      **july) <= {e["EventId"] for e in cli["Events"]}


def test_service_identities_have_the_invoking_service_as_username(imported):
    client = imported.client()
    july = {"StartTime": JULY_2023[0], "EndTime": JULY_2023[1]}
    expected = {r["eventID"] for _, records in original_records() for r in records
                if r["userIdentity"].get("type") == "AWSService"
                and r["userIdentity"].get("invokedBy") == "cloudtrail.amazonaws.com"}
    assert len(expected) == 8
    events = all_events(client, LookupAttributes=[
        {"AttributeKey": "Username", "AttributeValue": "cloudtrail.amazonaws.com"}], **july)
    assert {e["EventId"] for e in events} == expected
    assert {e["Username"] for e in events} == {"cloudtrail.amazonaws.com"}
    # An identity of only {accountId, invokedBy} (Secrets Manager deleting secret versions).
    cli = imported.aws("cloudtrail", "lookup-events", "--start-time", "2023-07-01T00:00:00Z",
                       "--end-time", "2023-07-31T00:00:00Z", "--lookup-attributes",
                       "AttributeKey=Username,AttributeValue=secretsmanager.amazonaws.com")
    assert len(cli["Events"]) == 40
    assert {e["EventName"] for e in cli["Events"]} == {"StartSecretVersionDelete", "EndSecretVersionDelete"}


def test_self_audit_events_for_every_operation(start_server):
    server = start_server()
    server.create_bucket("audit-bucket")
    client = server.client()
    client.create_trail(Name="audited", S3BucketName="audit-bucket")
    client.add_tags(ResourceId=f"arn:aws:cloudtrail:{REGION}:{server.account_id}:trail/audited",
                    TagsList=[{"Key": "k", "Value": "v"}])
    client.get_trail_status(Name="audited")
    assert error_code(client.get_trail, Name="missing-trail") == "TrailNotFoundException"
    # The AWS CLI's calls are recorded too.
    server.aws("cloudtrail", "describe-trails")
    names = ["CreateTrail", "AddTags", "GetTrailStatus", "GetTrail", "DescribeTrails"]
    for name in names:
        events = wait_for(lambda: client.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}])["Events"], what=name)
        record = json.loads(events[0]["CloudTrailEvent"])
        assert record["eventSource"] == "cloudtrail.amazonaws.com"
        assert record["eventType"] == "AwsApiCall" and record["managementEvent"] is True
        assert record["recipientAccountId"] == server.account_id and record["awsRegion"] == REGION
        assert record["userIdentity"]["type"] == "Root"
        assert record["userIdentity"]["accessKeyId"] == server.root.access_key_id
        assert events[0]["ReadOnly"] == ("false" if name in ("CreateTrail", "AddTags") else "true")
    failed = json.loads(client.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetTrail"}])["Events"][0]["CloudTrailEvent"])
    assert failed["errorCode"] == "TrailNotFoundException" and failed["errorMessage"]
    created = json.loads(client.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}])["Events"][0]["CloudTrailEvent"])
    assert created["requestParameters"]["name"] == "audited"
    assert created["responseElements"]["trailARN"].endswith(":trail/audited")
    assert created["resources"][0]["ARN"].endswith(":trail/audited")
    # Only the request's region.
    assert server.client(region="eu-west-1").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateTrail"}])["Events"] == []
    # The AWS CLI pages through lookup-events by itself.
    cli = server.aws("cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateTrail")
    assert [e["EventName"] for e in cli["Events"]] == ["CreateTrail"]


def test_events_cli_lookup_and_export(imported, tmp_path):
    base = [str(OPENTRAIL_BIN), "events"]
    common = ["--endpoint", imported.endpoint, "--data-dir", str(imported.data_dir),
              "--start-time", "2023-07-01T00:00:00Z", "--end-time", "2023-07-31T00:00:00Z"]
    wait_for(lambda: imported.client().lookup_events(StartTime=JULY_2023[0], EndTime=JULY_2023[1])["Events"],
             what="imported events")
    table = subprocess.run([*base, "lookup", *common, "--max-items", "5"], capture_output=True, text=True,
                           timeout=60, env=_child_env())
    assert table.returncode == 0, table.stderr
    assert len(table.stdout.strip().splitlines()) == 6
    out = tmp_path / "export.json"
    export = subprocess.run([*base, "export", *common, "--format", "json", "--out", str(out)],
                            capture_output=True, text=True, timeout=120, env=_child_env())
    assert export.returncode == 0, export.stderr
    records = json.loads(out.read_text())["Records"]
    assert records and all("eventID" in r for r in records)
    csv_out = tmp_path / "export.csv"
    export = subprocess.run([*base, "export", *common, "--format", "csv", "--out", str(csv_out)],
                            capture_output=True, text=True, timeout=120, env=_child_env())
    assert export.returncode == 0, export.stderr
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("Event ID,Event time,User name,Event name")
    assert len(lines) == len(records) + 1
