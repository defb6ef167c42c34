"""Records of early eventVersions through the real binary: a 1.0 log file (no eventID,
eventType or recipientAccountId) and a 1.05 ConsoleLogin without recipientAccountId are
imported and ingested, found with LookupEvents by their (derived) eventID, EventName and
Username, and importing them again adds no duplicates."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from conftest import REGION, wait_for
from test_ingest import post_events, run_import


def derived_event_id(record: dict) -> str:
    """The README's derivation, written independently of the server: SHA-256 over the
    canonical JSON (keys sorted, no whitespace), first 16 bytes as a version-8 UUID."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = bytearray(hashlib.sha256(canonical.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def old_records(account: str, when: dt.datetime) -> list[dict]:
    at = lambda minutes: (when + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        # eventVersion 1.0, as CloudTrail delivered it in 2013-14.
        {
            "eventVersion": "1.0",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE",
                             "arn": f"arn:aws:iam::{account}:user/alice", "accountId": account,
                             "accessKeyId": "AKIAEXAMPLEALICE", "userName": "alice"},
            "eventTime": at(0),
            "eventSource": "ec2.amazonaws.com",
            "eventName": "StartInstances",
            "awsRegion": REGION,
            "sourceIPAddress": "205.251.233.176",
            "userAgent": "ec2-api-tools 1.6.12.2",
            "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-ebeaf9e2"}]}},
            "responseElements": {"instancesSet": {"items": [{"instanceId": "i-ebeaf9e2",
                                 "currentState": {"code": 0, "name": "pending"},
                                 "previousState": {"code": 80, "name": "stopped"}}]}},
        },
        {
            "eventVersion": "1.0",
            "userIdentity": {"type": "Root", "principalId": account,
                             "arn": f"arn:aws:iam::{account}:root", "accountId": account},
            "eventTime": at(1),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": REGION,
            "sourceIPAddress": "192.0.2.100",
            "userAgent": "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:24.0) Gecko/20100101 Firefox/24.0",
            "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Success"},
            "additionalEventData": {"MobileVersion": "No", "MFAUsed": "No",
                                    "LoginTo": "https://console.aws.amazon.com/console/home"},
        },
        # A complete 1.05 console sign-in without the (optional) recipientAccountId.
        {
            "eventVersion": "1.05",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLECAROL",
                             "arn": f"arn:aws:iam::{account}:user/carol", "accountId": account,
                             "userName": "carol"},
            "eventTime": at(2),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": REGION,
            "sourceIPAddress": "192.0.2.105",
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6)",
            "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Success"},
            "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home",
                                    "MobileVersion": "No", "MFAUsed": "Yes"},
            "eventID": "3fcfb182-98f8-4744-bd45-10a395ab61cb",
            "eventType": "AwsConsoleSignIn",
        },
    ]


def events(client, key: str, value: str) -> list[dict]:
    return client.lookup_events(LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}],
                                 MaxResults=50)["Events"]


def test_old_event_versions_are_imported_found_and_not_duplicated(start_server, tmp_path):
    server = start_server()
    account = server.account_id
    when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)).replace(microsecond=0)
    records = old_records(account, when)
    ids = [derived_event_id(records[0]), derived_event_id(records[1]), records[2]["eventID"]]
    assert len(set(ids)) == 3

    tree = tmp_path / "AWSLogs" / account / "CloudTrail" / REGION / when.strftime("%Y/%m/%d")
    tree.mkdir(parents=True)
    log_file = tree / f"{account}_CloudTrail_{REGION}_{when:%Y%m%dT%H%MZ}_oldversions.json"
    texts = [json.dumps(r, separators=(",", ":")) for r in records]
    log_file.write_text('{"Records":[' + ",".join(texts) + "]}\n")

    first = run_import(server, tmp_path / "AWSLogs")
    assert first.returncode == 0, first.stderr
    assert "imported 3 events" in first.stderr, first.stderr

    client = server.client()
    for event_id, text in zip(ids, texts):
        found = wait_for(lambda: events(client, "EventId", event_id), what=f"event {event_id}")
        assert [e["EventId"] for e in found] == [event_id]
        # The record is stored as it was sent: no eventID or recipientAccountId added.
        assert found[0]["CloudTrailEvent"] == text
    assert {e["EventId"] for e in events(client, "EventName", "ConsoleLogin")} == set(ids[1:])
    assert [e["EventId"] for e in events(client, "EventName", "StartInstances")] == [ids[0]]
    assert [e["EventId"] for e in events(client, "Username", "alice")] == [ids[0]]
    assert [e["EventId"] for e in events(client, "Username", "carol")] == [ids[2]]

    # Imported again (a fresh import state, so the file is read again) and sent again
    # pretty-printed with members in another order: the same events, no duplicates.
    again = run_import(server, tmp_path / "AWSLogs", "--state-file", str(tmp_path / "fresh-state.json"))
    assert again.returncode == 0, again.stderr
    assert "imported 3 events" in again.stderr, again.stderr
    reordered = [dict(reversed(list(r.items()))) for r in records]
    body = json.dumps({"Records": reordered}, indent=2).encode()
    answer = post_events(server, body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["failed"] == []
    assert [s["eventID"] for s in result["successful"]] == ids

    server.wait_for_history_caught_up()
    assert sorted(e["EventId"] for e in events(client, "EventName", "ConsoleLogin")) == sorted(ids[1:])
    assert [e["EventId"] for e in events(client, "EventName", "StartInstances")] == [ids[0]]
    for event_id in ids:
        assert len(events(client, "EventId", event_id)) == 1


def test_an_old_record_without_an_account_of_its_own_is_refused_with_the_reason(start_server):
    server = start_server()
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    record = old_records(server.account_id, when)[0]
    record["userIdentity"] = {"type": "AWSAccount", "principalId": "AIDAEXAMPLEOTHER",
                              "accountId": server.account_id}
    answer = post_events(server, json.dumps(record).encode())
    assert answer.status_code == 200, answer.text
    failed = answer.json()["failed"]
    assert [f["errorCode"] for f in failed] == ["MissingField"]
    assert "recipientAccountId" in failed[0]["errorMessage"]
    assert "userIdentity.accountId" in failed[0]["errorMessage"]
