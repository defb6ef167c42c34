"""CloudTrail Lake event data stores (control plane) against the real `opentrail` binary:
boto3 and the AWS CLI through create/get/list/update/delete/restore, ingestion and tags;
concurrent creates under the name and per-region rules; the self-audit events of every
store operation (LookupEvents by ResourceType AWS::CloudTrail::EventDataStore); a restart
keeps the stores; `opentrail stores list`. Every request/answer case with its exact shape
is in tests/scenarios/event_data_stores.json.
"""

from __future__ import annotations

import json
import subprocess
import threading

from conftest import ACCOUNT_ID, OTHER_REGION, REGION, error_code, wait_for, _child_env, OPENTRAIL_BIN

EDS_ARN_PREFIX = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:eventdatastore/"
DEFAULT_SELECTORS = [
    {"Name": "Default management events", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
]
S3_SELECTORS = [
    {
        "Name": "s3 writes",
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "readOnly", "Equals": ["false"]},
        ],
    }
]


def body(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


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


def test_boto3_lifecycle(server):
    ct = server.client()
    created = body(ct.create_event_data_store(Name="lake", TagsList=[{"Key": "team", "Value": "sec"}]))
    arn = created["EventDataStoreArn"]
    assert arn.startswith(EDS_ARN_PREFIX)
    store_id = arn.rsplit("/", 1)[1]
    assert len(store_id) == 36 and store_id.count("-") == 4
    assert created["Status"] == "CREATED"
    assert created["AdvancedEventSelectors"] == DEFAULT_SELECTORS
    assert created["RetentionPeriod"] == 366 and created["BillingMode"] == "EXTENDABLE_RETENTION_PRICING"
    assert created["TerminationProtectionEnabled"] is True and created["MultiRegionEnabled"] is True
    # By ARN or by the id that ends it.
    for ref in (arn, store_id):
        got = ct.get_event_data_store(EventDataStore=ref)
        assert got["Name"] == "lake" and got["Status"] == "ENABLED"
        assert got["PartitionKeys"] == [{"Name": "eventTime", "Type": "timestamp"}]
    assert [s["EventDataStoreArn"] for s in ct.list_event_data_stores()["EventDataStores"]] == [arn]
    assert server.client(region=OTHER_REGION).list_event_data_stores()["EventDataStores"] == []

    updated = ct.update_event_data_store(
        EventDataStore=store_id, Name="lake-2", AdvancedEventSelectors=S3_SELECTORS, RetentionPeriod=90,
        TerminationProtectionEnabled=False,
    )
    assert updated["Name"] == "lake-2" and updated["AdvancedEventSelectors"] == S3_SELECTORS
    assert updated["RetentionPeriod"] == 90 and updated["UpdatedTimestamp"] >= updated["CreatedTimestamp"]

    ct.stop_event_data_store_ingestion(EventDataStore=arn)
    assert ct.get_event_data_store(EventDataStore=arn)["Status"] == "STOPPED_INGESTION"
    assert error_code(ct.stop_event_data_store_ingestion, EventDataStore=arn) == "InvalidEventDataStoreStatusException"
    ct.start_event_data_store_ingestion(EventDataStore=arn)
    assert ct.get_event_data_store(EventDataStore=arn)["Status"] == "ENABLED"

    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "prod"}])
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}])
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"] == [
        {"ResourceId": arn, "TagsList": [{"Key": "env", "Value": "prod"}]}
    ]

    ct.delete_event_data_store(EventDataStore=arn)
    assert ct.get_event_data_store(EventDataStore=arn)["Status"] == "PENDING_DELETION"
    assert error_code(ct.update_event_data_store, EventDataStore=arn, RetentionPeriod=30) == "InactiveEventDataStoreException"
    restored = ct.restore_event_data_store(EventDataStore=arn)
    assert restored["Status"] == "ENABLED" and restored["Name"] == "lake-2"
    assert error_code(ct.get_event_data_store, EventDataStore="arn:aws:s3:::bucket") == "EventDataStoreARNInvalidException"


def test_concurrent_creates_hold_the_name_and_region_rules(server):
    clients = [server.client() for _ in range(6)]
    outcomes = concurrently([lambda c=c: c.create_event_data_store(Name="contested") for c in clients])
    assert sorted(outcomes) == ["EventDataStoreAlreadyExistsException"] * 5 + ["ok"]
    clients = [server.client() for _ in range(12)]
    outcomes = concurrently([lambda c=c, i=i: c.create_event_data_store(Name=f"racer-{i}") for i, c in enumerate(clients)])
    assert sorted(outcomes) == ["EventDataStoreMaxLimitExceededException"] * 3 + ["ok"] * 9
    assert len(server.client().list_event_data_stores()["EventDataStores"]) == 10


def test_aws_cli_lifecycle(server):
    def cli(command: str, *args: str):
        return server.aws("cloudtrail", command, *args)

    created = cli("create-event-data-store", "--name", "cli-store", "--no-termination-protection-enabled",
                  "--retention-period", "30", "--billing-mode", "FIXED_RETENTION_PRICING",
                  "--tags-list", "Key=owner,Value=cli")
    arn = created["EventDataStoreArn"]
    assert created["Status"] == "CREATED" and created["RetentionPeriod"] == 30
    assert created["TagsList"] == [{"Key": "owner", "Value": "cli"}]
    got = cli("get-event-data-store", "--event-data-store", arn)
    assert got["BillingMode"] == "FIXED_RETENTION_PRICING" and got["Status"] == "ENABLED"
    listed = cli("list-event-data-stores")["EventDataStores"]
    assert [s["Name"] for s in listed] == ["cli-store"]
    updated = cli("update-event-data-store", "--event-data-store", arn,
                  "--advanced-event-selectors", json.dumps(S3_SELECTORS), "--no-multi-region-enabled")
    assert updated["AdvancedEventSelectors"] == S3_SELECTORS and updated["MultiRegionEnabled"] is False
    cli("stop-event-data-store-ingestion", "--event-data-store", arn)
    assert cli("get-event-data-store", "--event-data-store", arn)["Status"] == "STOPPED_INGESTION"
    cli("start-event-data-store-ingestion", "--event-data-store", arn)
    cli("add-tags", "--resource-id", arn, "--tags-list", "Key=tier,Value=gold")
    cli("remove-tags", "--resource-id", arn, "--tags-list", "Key=owner")
    tags = cli("list-tags", "--resource-id-list", arn)["ResourceTagList"]
    assert tags == [{"ResourceId": arn, "TagsList": [{"Key": "tier", "Value": "gold"}]}]
    cli("delete-event-data-store", "--event-data-store", arn)
    assert cli("get-event-data-store", "--event-data-store", arn)["Status"] == "PENDING_DELETION"
    assert cli("restore-event-data-store", "--event-data-store", arn)["Status"] == "ENABLED"
    assert error_code(cli, "create-event-data-store", "--name", "cli-store") == "EventDataStoreAlreadyExistsException"
    protected = cli("create-event-data-store", "--name", "protected")["EventDataStoreArn"]
    assert error_code(cli, "delete-event-data-store", "--event-data-store", protected) == (
        "EventDataStoreTerminationProtectedException"
    )


def test_self_audit_names_the_event_data_store(server):
    ct = server.client()
    arn = ct.create_event_data_store(Name="audited", TerminationProtectionEnabled=False)["EventDataStoreArn"]
    store_id = arn.rsplit("/", 1)[1]
    ct.get_event_data_store(EventDataStore=store_id)
    ct.update_event_data_store(EventDataStore=arn, RetentionPeriod=30)
    ct.stop_event_data_store_ingestion(EventDataStore=store_id)
    ct.start_event_data_store_ingestion(EventDataStore=arn)
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "k", "Value": "v"}])
    ct.delete_event_data_store(EventDataStore=arn)
    ct.restore_event_data_store(EventDataStore=arn)
    ct.list_event_data_stores()
    expected = {
        "CreateEventDataStore": "false", "GetEventDataStore": "true", "UpdateEventDataStore": "false",
        "StopEventDataStoreIngestion": "false", "StartEventDataStoreIngestion": "false", "AddTags": "false",
        "DeleteEventDataStore": "false", "RestoreEventDataStore": "false",
    }
    by_type = [{"AttributeKey": "ResourceType", "AttributeValue": "AWS::CloudTrail::EventDataStore"}]

    def recorded():
        events = ct.lookup_events(LookupAttributes=by_type, MaxResults=50)["Events"]
        return events if {e["EventName"] for e in events} >= set(expected) else None

    events = wait_for(recorded, what="the self-audit events of the event data store operations")
    for event in events:
        record = json.loads(event["CloudTrailEvent"])
        assert record["eventSource"] == "cloudtrail.amazonaws.com"
        assert record["eventCategory"] == "Management" and record["managementEvent"] is True
        assert record["resources"] == [{"accountId": ACCOUNT_ID, "type": "AWS::CloudTrail::EventDataStore", "ARN": arn}]
        assert event["Resources"] == [{"ResourceType": "AWS::CloudTrail::EventDataStore", "ResourceName": arn}]
        assert event["ReadOnly"] == expected[event["EventName"]]
    created = next(json.loads(e["CloudTrailEvent"]) for e in events if e["EventName"] == "CreateEventDataStore")
    assert created["requestParameters"]["name"] == "audited"
    assert created["responseElements"]["eventDataStoreArn"] == arn
    # ListEventDataStores names no single store.
    listed = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ListEventDataStores"}])
    assert all("Resources" not in e or e["Resources"] == [] for e in listed["Events"])


def test_restart_keeps_stores_and_stores_list_prints_them(server):
    ct = server.client()
    arn = ct.create_event_data_store(Name="durable", RetentionPeriod=90)["EventDataStoreArn"]
    ct.stop_event_data_store_ingestion(EventDataStore=arn)
    server.restart()
    ct = server.client()
    got = ct.get_event_data_store(EventDataStore=arn)
    assert got["Name"] == "durable" and got["Status"] == "STOPPED_INGESTION" and got["RetentionPeriod"] == 90
    result = subprocess.run(
        [str(OPENTRAIL_BIN), "stores", "list", "--endpoint", server.endpoint,
         "--data-dir", str(server.data_dir), "--region", REGION],
        capture_output=True, text=True, timeout=60, env=_child_env(),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "RETENTION", "ARN"]
    assert lines[1].split() == ["durable", "STOPPED_INGESTION", "90", arn]
    as_json = subprocess.run(
        [str(OPENTRAIL_BIN), "stores", "list", "--endpoint", server.endpoint,
         "--data-dir", str(server.data_dir), "--region", REGION, "--output", "json"],
        capture_output=True, text=True, timeout=60, env=_child_env(),
    )
    assert as_json.returncode == 0, as_json.stderr
    assert [s["EventDataStoreArn"] for s in json.loads(as_json.stdout)["EventDataStores"]] == [arn]
