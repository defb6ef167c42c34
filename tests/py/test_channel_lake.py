"""Channel events and event configuration in CloudTrail Lake, against the real `opentrail`
binary: events sent with boto3's `cloudtrail-data` PutAuditEvents land in the channel's
destination event data stores (and only those) with the Lake integrations schema
(`eventData.*`, `metadata.channelARN`, `eventDataChecksum`), read back with StartQuery /
GetQueryResults in Lake SQL as AWS users write it; a destination that does not ingest takes
none. PutEventConfiguration's ContextKeySelectors add `eventContext` to a store's events.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

from conftest import ACCOUNT_ID, REGION, wait_for
from test_channels import AUDIT_LOG_SELECTORS, checksum, event_data
from test_ingest import post_events, valid_record
from test_queries import TERMINAL

DEADLINE = 90


def store_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def audit_store(ct, name: str, start: bool = True) -> str:
    return ct.create_event_data_store(
        Name=name,
        AdvancedEventSelectors=AUDIT_LOG_SELECTORS,
        TerminationProtectionEnabled=False,
        StartIngestion=start,
    )["EventDataStoreArn"]


def channel(ct, name: str, *stores: str) -> str:
    return ct.create_channel(
        Name=name,
        Source="Custom",
        Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store} for store in stores],
    )["ChannelArn"]


def query(ct, sql: str) -> list:
    """Runs `sql` to the end; its rows as GetQueryResults pages them."""
    query_id = ct.start_query(QueryStatement=sql)["QueryId"]
    described = wait_for(
        lambda: (lambda d: d if d["QueryStatus"] in TERMINAL else None)(ct.describe_query(QueryId=query_id)),
        timeout=DEADLINE,
        what=f"query {query_id} to end",
    )
    assert described["QueryStatus"] == "FINISHED", described
    rows, kwargs = [], {"QueryId": query_id}
    while True:
        page = ct.get_query_results(**kwargs)
        rows.extend(page["QueryResultRows"])
        if not page.get("NextToken"):
            return rows
        kwargs["NextToken"] = page["NextToken"]


def rows_when(ct, sql: str, count: int) -> list:
    """`sql`'s rows once it returns `count` of them (the writer runs about once a second)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        rows = query(ct, sql)
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) == count, rows
            return rows
        time.sleep(0.5)


def test_channel_events_are_queryable_in_their_destination_stores(server):
    ct = server.client()
    data = server.client(service="cloudtrail-data")
    first = audit_store(ct, "channel-lake-one")
    second = audit_store(ct, "channel-lake-two")
    stopped = audit_store(ct, "channel-lake-stopped", start=False)
    management = ct.create_event_data_store(Name="management-lake", TerminationProtectionEnabled=False)[
        "EventDataStoreArn"
    ]
    to_first = channel(ct, "to-first", first, stopped)
    to_second = channel(ct, "to-second", second)

    login = event_data(
        "u-1",
        requestParameters={"door": "north", "floor": 3},
        responseElements={"opened": True},
        additionalEventData={"badge": "B-17"},
    )
    failed = event_data("u-2", eventName="Logout", errorCode="Denied", errorMessage="badge expired")
    answer = data.put_audit_events(
        channelArn=to_first,
        auditEvents=[
            {"id": "one", "eventData": login, "eventDataChecksum": checksum(login)},
            {"id": "two", "eventData": failed},
        ],
    )
    assert answer["failed"] == [], answer
    event_ids = {entry["id"]: entry["eventID"] for entry in answer["successful"]}
    other = data.put_audit_events(channelArn=to_second, auditEvents=[{"id": "x", "eventData": event_data("u-3")}])
    assert other["failed"] == [], other

    first_id = store_id(first)
    rows = rows_when(
        ct,
        f"""SELECT eventData.UID, eventData.eventName, eventData.eventSource, eventData.userIdentity.principalId,
                   eventData.userIdentity.details['team'] AS team, eventData.requestParameters['door'] AS door,
                   eventData.requestParameters['floor'] AS floor, eventData.responseElements['opened'] AS opened,
                   element_at(eventData.additionalEventData, 'badge') AS badge, eventData.errorCode,
                   eventData.errorMessage, eventData.sourceIPAddress, eventData.userAgent, eventData.eventTime AS producerTime,
                   metadata.channelARN, eventDataChecksum, eventID, eventTime, eventCategory, eventType,
                   awsRegion, recipientAccountId
            FROM {first_id} ORDER BY eventData.UID""",
        2,
    )
    common = [
        {"eventSource": "my-app.example.com"},
        {"principalId": "alice"},
        {"team": "payments"},
    ]
    assert rows == [
        [{"UID": "u-1"}, {"eventName": "Login"}, *common, {"door": "north"}, {"floor": "3"}, {"opened": "true"},
         {"badge": "B-17"}, {"errorCode": ""}, {"errorMessage": ""}, {"sourceIPAddress": "192.0.2.10"},
         {"userAgent": "my-app/1.0"}, {"producerTime": "2024-05-01T10:00:00Z"}, {"channelARN": to_first},
         {"eventDataChecksum": checksum(login)}, {"eventID": event_ids["one"]},
         {"eventTime": "2024-05-01 10:00:00.000"}, {"eventCategory": "ActivityAuditLog"},
         {"eventType": "ActivityLog"}, {"awsRegion": REGION}, {"recipientAccountId": ACCOUNT_ID}],
        [{"UID": "u-2"}, {"eventName": "Logout"}, *common, {"door": ""}, {"floor": ""}, {"opened": ""},
         {"badge": ""}, {"errorCode": "Denied"}, {"errorMessage": "badge expired"},
         {"sourceIPAddress": "192.0.2.10"}, {"userAgent": "my-app/1.0"},
         {"producerTime": "2024-05-01T10:00:00Z"}, {"channelARN": to_first},
         {"eventDataChecksum": checksum(failed)}, {"eventID": event_ids["two"]},
         {"eventTime": "2024-05-01 10:00:00.000"}, {"eventCategory": "ActivityAuditLog"},
         {"eventType": "ActivityLog"}, {"awsRegion": REGION}, {"recipientAccountId": ACCOUNT_ID}],
    ]
    # metadata.ingestionTime is the time PutAuditEvents took the event.
    [[ingested]] = query(ct, f"SELECT max(metadata.ingestionTime) AS t FROM {first_id}")
    taken = dt.datetime.strptime(ingested["t"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - taken).total_seconds()) < 600

    # Each store holds its own channels' events only.
    assert rows_when(ct, f"SELECT eventData.UID, metadata.channelARN FROM {store_id(second)}", 1) == [
        [{"UID": "u-3"}, {"channelARN": to_second}]
    ]
    assert query(ct, f"SELECT count(*) AS n FROM {store_id(stopped)}") == [[{"n": "0"}]]
    assert query(
        ct, f"SELECT count(*) AS n FROM {store_id(management)} WHERE eventCategory = 'ActivityAuditLog'"
    ) == [[{"n": "0"}]]
    # Lake SQL as AWS users write it: an aggregate per channel.
    assert query(
        ct,
        f"SELECT metadata.channelARN AS channel, count(*) AS events FROM {first_id} "
        f"WHERE eventData.eventSource = 'my-app.example.com' GROUP BY metadata.channelARN",
    ) == [[{"channel": to_first}, {"events": "2"}]]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_context_key_selectors_add_event_context_in_the_lake(server):
    """MaxEventSize is not reachable from here: the event log already refuses records over
    256 KB (`RecordTooLarge`), so the writer's size check is covered by the lake crate's
    tests (crates/engines/lake/tests/channel_events.rs)."""
    ct = server.client()
    standard = ct.create_event_data_store(Name="standard-size", TerminationProtectionEnabled=False)
    large = ct.create_event_data_store(Name="large-size", TerminationProtectionEnabled=False)
    ct.put_event_configuration(EventDataStore=standard["EventDataStoreArn"], MaxEventSize="Standard")
    configured = ct.put_event_configuration(
        EventDataStore=large["EventDataStoreArn"],
        MaxEventSize="Large",
        ContextKeySelectors=[
            {"Type": "RequestContext", "Equals": ["aws:SourceIp", "aws:PrincipalType", "aws:UserAgent"]},
            {"Type": "TagContext", "Equals": ["team"]},
        ],
    )
    assert configured["MaxEventSize"] == "Large"

    run = uuid.uuid4().hex[:8]
    tagged = valid_record(
        server.account_id,
        f"tagged-{run}",
        eventTime=now_iso(),
        eventName="PutBucketTagging",
        userAgent="aws-cli/2.15",
        eventContext={
            "tagContext": {
                "resourceTags": [{"arn": "arn:aws:s3:::b", "tags": {"team": "red", "cost": "7"}}],
            }
        },
    )
    by_service = valid_record(
        server.account_id,
        f"service-{run}",
        eventTime=now_iso(),
        sourceIPAddress="s3.amazonaws.com",
        userIdentity={"type": "AWSService", "invokedBy": "s3.amazonaws.com"},
    )
    response = post_events(server, json.dumps({"Records": [tagged, by_service]}).encode())
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == [], response.text

    large_id = store_id(large["EventDataStoreArn"])
    standard_id = store_id(standard["EventDataStoreArn"])
    ids = f"('tagged-{run}', 'service-{run}')"
    rows = rows_when(
        ct, f"SELECT eventID, eventContext FROM {large_id} WHERE eventID IN {ids} ORDER BY eventID", 2
    )
    assert rows[0] == [{"eventID": f"service-{run}"}, {"eventContext": ""}]
    assert rows[1][0] == {"eventID": f"tagged-{run}"}
    assert json.loads(rows[1][1]["eventContext"]) == {
        "requestContext": {"aws:SourceIp": "10.0.0.1", "aws:PrincipalType": "User", "aws:UserAgent": "aws-cli/2.15"},
        "tagContext": {"resourceTags": [{"arn": "arn:aws:s3:::b", "tags": {"team": "red"}}]},
    }
    assert query(
        ct,
        f"""SELECT json_extract_scalar(eventContext, '$.requestContext["aws:SourceIp"]') AS ip
            FROM {large_id} WHERE eventID = 'tagged-{run}'""",
    ) == [[{"ip": "10.0.0.1"}]]
    # A store without ContextKeySelectors keeps the record as it came.
    [[plain]] = rows_when(ct, f"SELECT eventContext FROM {standard_id} WHERE eventID = 'tagged-{run}'", 1)
    assert json.loads(plain["eventContext"]) == tagged["eventContext"]
