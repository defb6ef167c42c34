"""Channels and PutAuditEvents against the real `opentrail` binary: boto3 `cloudtrail` and
`cloudtrail-data` clients and the AWS CLI through CreateChannel ... DeleteChannel and
PutAuditEvents (checksums, oversized and invalid events, unknown channels, a destination
store that does not ingest, duplicated ids); accepted events are ActivityAuditLog records
in the event log (read with `opentrail log print`), kept across kill -9, never in event
history; channel operations are self-audited with their channel as resource. Every
request/answer case of the channel operations is in tests/scenarios/channels.json.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT_ID,
    OPENTRAIL_BIN,
    OTHER_ACCOUNT_ID,
    OTHER_REGION,
    REGION,
    AwsCliError,
    _child_env,
    error_code,
)

AUDIT_LOG_SELECTORS = [
    {"Name": "channel events", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}
]


def body(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def event_data(uid: str = "u-1", recipient: str = ACCOUNT_ID, **extra) -> str:
    data = {
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": "alice", "details": {"team": "payments"}},
        "userAgent": "my-app/1.0",
        "eventSource": "my-app.example.com",
        "eventName": "Login",
        "eventTime": "2024-05-01T10:00:00Z",
        "UID": uid,
        "recipientAccountId": recipient,
        "sourceIPAddress": "192.0.2.10",
    }
    data.update(extra)
    return json.dumps(data)


def checksum(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def audit_store(ct, name: str = "audit-lake", start: bool = True) -> str:
    return ct.create_event_data_store(
        Name=name,
        AdvancedEventSelectors=AUDIT_LOG_SELECTORS,
        TerminationProtectionEnabled=False,
        StartIngestion=start,
    )["EventDataStoreArn"]


def log_records(server, category: str = "ActivityAuditLog") -> list[dict]:
    """The event log's records of `category`, read with the server stopped."""
    result = subprocess.run(
        [str(OPENTRAIL_BIN), "log", "print", "--data-dir", str(server.data_dir), "--event-category", category],
        capture_output=True,
        text=True,
        timeout=120,
        env=_child_env(),
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_boto3_channel_lifecycle_and_put_audit_events(server):
    ct = server.client()
    data = server.client(service="cloudtrail-data")
    store = audit_store(ct)
    created = body(
        ct.create_channel(
            Name="my-app",
            Source="Custom",
            Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}],
            Tags=[{"Key": "team", "Value": "payments"}],
        )
    )
    channel = created["ChannelArn"]
    assert channel.startswith(f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:channel/")
    assert created == {
        "ChannelArn": channel,
        "Name": "my-app",
        "Source": "Custom",
        "Destinations": [{"Type": "EVENT_DATA_STORE", "Location": store}],
        "Tags": [{"Key": "team", "Value": "payments"}],
    }
    got = body(ct.get_channel(Channel=channel))
    assert got["IngestionStatus"] == {}
    assert got["Destinations"] == created["Destinations"]
    assert body(ct.list_channels())["Channels"] == [{"ChannelArn": channel, "Name": "my-app"}]
    assert ct.list_tags(ResourceIdList=[channel])["ResourceTagList"] == [
        {"ResourceId": channel, "TagsList": [{"Key": "team", "Value": "payments"}]}
    ]

    good = event_data("u-1")
    answer = body(
        data.put_audit_events(
            channelArn=channel,
            auditEvents=[
                {"id": "a1", "eventData": good, "eventDataChecksum": checksum(good)},
                {"id": "a2", "eventData": event_data("u-2")},
                {"id": "bad-sum", "eventData": good, "eventDataChecksum": checksum(good + " ")},
                {"id": "not-json", "eventData": "{oops"},
                {"id": "no-uid", "eventData": json.dumps({k: v for k, v in json.loads(good).items() if k != "UID"})},
                {"id": "other-account", "eventData": event_data(recipient=OTHER_ACCOUNT_ID)},
                {"id": "too-long", "eventData": event_data(pad="x" * (256 * 1024))},
            ],
        )
    )
    assert [s["id"] for s in answer["successful"]] == ["a1", "a2"]
    for entry in answer["successful"]:
        uuid.UUID(entry["eventID"])
    codes = {f["id"]: f["errorCode"] for f in answer["failed"]}
    assert codes == {
        "bad-sum": "InvalidChecksum",
        "not-json": "InvalidData",
        "no-uid": "FieldNotFound",
        "other-account": "InvalidRecipient",
        "too-long": "FieldTooLong",
    }
    assert all(f["errorMessage"] for f in answer["failed"])

    status = ct.get_channel(Channel=channel)["IngestionStatus"]
    assert status["LatestIngestionSuccessEventID"] == answer["successful"][-1]["eventID"]
    assert status["LatestIngestionAttemptEventID"] == "too-long"
    assert status["LatestIngestionErrorCode"] == "FieldTooLong"
    assert "LatestIngestionSuccessTime" in status and "LatestIngestionAttemptTime" in status

    # Duplicated ids refuse the whole call; an unknown or malformed channel too.
    with pytest.raises(ClientError) as e:
        data.put_audit_events(
            channelArn=channel, auditEvents=[{"id": "x", "eventData": good}, {"id": "x", "eventData": good}]
        )
    assert e.value.response["Error"]["Code"] == "DuplicatedAuditEventId"
    assert isinstance(e.value, data.exceptions.DuplicatedAuditEventId)
    missing = channel.rsplit("/", 1)[0] + "/" + str(uuid.uuid4())
    with pytest.raises(data.exceptions.ChannelNotFound):
        data.put_audit_events(channelArn=missing, auditEvents=[{"id": "x", "eventData": good}])
    with pytest.raises(data.exceptions.InvalidChannelARN):
        data.put_audit_events(channelArn="arn:aws:s3:::bucket", auditEvents=[{"id": "x", "eventData": good}])
    # Another region's channel is not found there.
    eu_data = server.client(region=OTHER_REGION, service="cloudtrail-data")
    with pytest.raises(eu_data.exceptions.ChannelNotFound):
        eu_data.put_audit_events(channelArn=channel, auditEvents=[{"id": "x", "eventData": good}])

    # The store cannot go while the channel sends to it.
    assert error_code(ct.delete_event_data_store, EventDataStore=store) == "ChannelExistsForEDSException"
    renamed = body(ct.update_channel(Channel=channel, Name="my-app-2"))
    assert renamed["Name"] == "my-app-2" and renamed["Destinations"] == created["Destinations"]
    ct.delete_channel(Channel=channel)
    assert error_code(ct.get_channel, Channel=channel) == "ChannelNotFoundException"
    with pytest.raises(data.exceptions.ChannelNotFound):
        data.put_audit_events(channelArn=channel, auditEvents=[{"id": "x", "eventData": good}])
    ct.delete_event_data_store(EventDataStore=store)

    # The accepted events are in the event log as Lake stores them, and nothing else is.
    server.stop_cleanly()
    records = log_records(server)
    assert [r["eventID"] for r in records] == [s["eventID"] for s in answer["successful"]]
    first = records[0]
    assert first["eventCategory"] == "ActivityAuditLog"
    assert first["eventType"] == "ActivityLog"
    assert first["eventTime"] == "2024-05-01T10:00:00Z"
    assert first["awsRegion"] == REGION
    assert first["recipientAccountId"] == ACCOUNT_ID
    assert first["metadata"]["channelARN"] == channel
    assert "ingestionTime" in first["metadata"]
    assert first["eventData"] == json.loads(good)
    server.start()


def test_stopped_destination_refuses_every_event(server):
    ct = server.client()
    data = server.client(service="cloudtrail-data")
    stopped = audit_store(ct, "stopped-lake", start=False)
    assert ct.get_event_data_store(EventDataStore=stopped)["Status"] == "STOPPED_INGESTION"
    channel = ct.create_channel(
        Name="to-stopped", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": stopped}]
    )["ChannelArn"]
    answer = data.put_audit_events(
        channelArn=channel, auditEvents=[{"id": "e1", "eventData": event_data()}]
    )
    assert answer["successful"] == []
    assert [(f["id"], f["errorCode"]) for f in answer["failed"]] == [("e1", "IngestionStopped")]
    assert stopped in answer["failed"][0]["errorMessage"]
    assert ct.get_channel(Channel=channel)["IngestionStatus"]["LatestIngestionErrorCode"] == "IngestionStopped"

    # A second, enabled destination takes them.
    enabled = audit_store(ct, "enabled-lake")
    ct.update_channel(
        Channel=channel,
        Destinations=[
            {"Type": "EVENT_DATA_STORE", "Location": stopped},
            {"Type": "EVENT_DATA_STORE", "Location": enabled},
        ],
    )
    answer = data.put_audit_events(channelArn=channel, auditEvents=[{"id": "e2", "eventData": event_data()}])
    assert [s["id"] for s in answer["successful"]] == ["e2"]


def test_calls_over_one_megabyte_or_100_events_are_refused_whole(server):
    ct = server.client()
    data = server.client(service="cloudtrail-data")
    store = audit_store(ct)
    channel = ct.create_channel(
        Name="limits", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}]
    )["ChannelArn"]
    big = event_data(pad="x" * (200 * 1024))
    with pytest.raises(ClientError) as e:
        data.put_audit_events(channelArn=channel, auditEvents=[{"id": f"e{i}", "eventData": big} for i in range(6)])
    assert e.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(ClientError) as e:
        data.put_audit_events(
            channelArn=channel, auditEvents=[{"id": f"e{i}", "eventData": event_data()} for i in range(101)]
        )
    assert e.value.response["Error"]["Code"] == "ValidationException"
    # Nothing of either call was taken.
    assert "LatestIngestionAttemptTime" not in ct.get_channel(Channel=channel)["IngestionStatus"]
    ok = data.put_audit_events(channelArn=channel, auditEvents=[{"id": f"e{i}", "eventData": big} for i in range(4)])
    assert len(ok["successful"]) == 4


def test_channel_errors(server):
    ct = server.client()
    store = audit_store(ct)
    management = ct.create_event_data_store(Name="mgmt", TerminationProtectionEnabled=False)["EventDataStoreArn"]
    dest = [{"Type": "EVENT_DATA_STORE", "Location": store}]
    assert error_code(ct.create_channel, Name="ch-1", Source="Okta", Destinations=dest) == "InvalidSourceException"
    assert (
        error_code(
            ct.create_channel,
            Name="ch-1",
            Source="Custom",
            Destinations=[{"Type": "EVENT_DATA_STORE", "Location": management}],
        )
        == "InvalidEventDataStoreCategoryException"
    )
    assert (
        error_code(
            ct.create_channel,
            Name="ch-1",
            Source="Custom",
            Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store.rsplit("/", 1)[0] + "/" + str(uuid.uuid4())}],
        )
        == "EventDataStoreNotFoundException"
    )
    assert error_code(ct.create_channel, Name="bad name", Source="Custom", Destinations=dest) == "InvalidParameterException"
    ct.create_channel(Name="ch-1", Source="Custom", Destinations=dest)
    assert error_code(ct.create_channel, Name="ch-1", Source="Custom", Destinations=dest) == "ChannelAlreadyExistsException"
    for i in range(2, 26):
        ct.create_channel(Name=f"ch-{i}", Source="Custom", Destinations=dest)
    assert error_code(ct.create_channel, Name="ch-26", Source="Custom", Destinations=dest) == (
        "ChannelMaxLimitExceededException"
    )
    # 25 per region: another region has room.
    eu = server.client(region=OTHER_REGION)
    eu_store = audit_store(eu, "eu-lake")
    eu.create_channel(Name="ch-1", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": eu_store}])
    page = ct.list_channels(MaxResults=10)
    assert len(page["Channels"]) == 10 and "NextToken" in page
    names = [c["Name"] for c in page["Channels"]]
    while "NextToken" in page:
        page = ct.list_channels(MaxResults=10, NextToken=page["NextToken"])
        names += [c["Name"] for c in page["Channels"]]
    assert names == [f"ch-{i}" for i in range(1, 26)]
    assert error_code(ct.get_channel, Channel="arn:aws:s3:::nope") == "ChannelARNInvalidException"
    assert error_code(ct.update_channel, Channel=page["Channels"][0]["ChannelArn"]) == "InvalidParameterException"


def test_aws_cli_channels_and_put_audit_events(server):
    store = server.aws(
        "cloudtrail",
        "create-event-data-store",
        "--name",
        "cli-lake",
        "--no-termination-protection-enabled",
        "--advanced-event-selectors",
        json.dumps(AUDIT_LOG_SELECTORS),
    )["EventDataStoreArn"]
    channel = server.aws(
        "cloudtrail",
        "create-channel",
        "--name",
        "cli-channel",
        "--source",
        "Custom",
        "--destinations",
        json.dumps([{"Type": "EVENT_DATA_STORE", "Location": store}]),
    )["ChannelArn"]
    assert server.aws("cloudtrail", "get-channel", "--channel", channel)["Name"] == "cli-channel"
    assert server.aws("cloudtrail", "list-channels")["Channels"] == [{"ChannelArn": channel, "Name": "cli-channel"}]
    text = event_data("cli-1")
    answer = server.aws(
        "cloudtrail-data",
        "put-audit-events",
        "--channel-arn",
        channel,
        "--external-id",
        "my-external-id",
        "--audit-events",
        json.dumps(
            [
                {"id": "one", "eventData": text, "eventDataChecksum": checksum(text)},
                {"id": "two", "eventData": text, "eventDataChecksum": "bm90IGl0"},
            ]
        ),
    )
    assert [s["id"] for s in answer["successful"]] == ["one"]
    assert [(f["id"], f["errorCode"]) for f in answer["failed"]] == [("two", "InvalidChecksum")]
    with pytest.raises(AwsCliError) as e:
        server.aws(
            "cloudtrail-data",
            "put-audit-events",
            "--channel-arn",
            channel.rsplit("/", 1)[0] + "/" + str(uuid.uuid4()),
            "--audit-events",
            json.dumps([{"id": "one", "eventData": text}]),
        )
    assert e.value.code == "ChannelNotFound"
    updated = server.aws("cloudtrail", "update-channel", "--channel", channel, "--name", "cli-renamed")
    assert updated["Name"] == "cli-renamed"
    server.aws("cloudtrail", "delete-channel", "--channel", channel)
    assert server.aws("cloudtrail", "list-channels")["Channels"] == []


def test_acknowledged_events_survive_kill_9_and_stay_out_of_history(start_server):
    server = start_server()
    ct = server.client()
    data = server.client(service="cloudtrail-data")
    store = audit_store(ct)
    channel = ct.create_channel(
        Name="durable", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}]
    )["ChannelArn"]
    acked = []
    for batch in range(5):
        events = [{"id": f"b{batch}-{i}", "eventData": event_data(f"{batch}-{i}")} for i in range(100)]
        answer = data.put_audit_events(channelArn=channel, auditEvents=events)
        assert answer["failed"] == []
        acked += [s["eventID"] for s in answer["successful"]]
    # PutAuditEvents is not self-audited and its events are not management events: once
    # history has applied the whole log, LookupEvents shows the channel calls only.
    server.wait_for_history_caught_up()
    names = {e["EventName"] for e in ct.lookup_events(MaxResults=50)["Events"]}
    assert "PutAuditEvents" not in names and "Login" not in names
    assert "CreateChannel" in names
    by_channel = ct.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": channel}]
    )["Events"]
    assert [e["EventName"] for e in by_channel] == ["CreateChannel"]
    assert by_channel[0]["Resources"] == [{"ResourceType": "AWS::CloudTrail::Channel", "ResourceName": channel}]

    server.kill()
    stored = [r["eventID"] for r in log_records(server)]
    assert stored == acked
    # The restarted server still knows the channel and takes events again.
    server.start()
    assert server.client().get_channel(Channel=channel)["Name"] == "durable"
    again = server.client(service="cloudtrail-data").put_audit_events(
        channelArn=channel, auditEvents=[{"id": "after", "eventData": event_data("after")}]
    )
    assert [s["id"] for s in again["successful"]] == ["after"]
