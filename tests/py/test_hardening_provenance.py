"""Provenance of ingested records (issue 9, item 18): records stay byte-identical, and
event history says which key and channel sent each of them (`OpenTrailProvenance`, an
extension member of LookupEvents' Event that AWS SDKs ignore)."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from conftest import REGION, Credentials, wait_for
from test_ingest import post_events, valid_record

BUCKET = "provenance-logs"


def raw_lookup(server, event_id: str, credentials=None) -> list[dict]:
    """LookupEvents as raw JSON (botocore drops members its model does not know)."""
    creds = credentials or server.root
    body = json.dumps({"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": event_id}]}).encode()
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=body,
        headers={"X-Amz-Target": "CloudTrail_20131101.LookupEvents", "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(BotoCredentials(creds.access_key_id, creds.secret_access_key), "cloudtrail", REGION).add_auth(request)
    prepared = request.prepare()
    answer = requests.post(prepared.url, data=body, headers=dict(prepared.headers), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["Events"]


def test_event_history_names_the_key_and_channel_that_sent_each_record(start_server):
    server = start_server("--delivery-interval", "1s")
    server.create_bucket(BUCKET)
    client = server.client()
    client.create_trail(Name="provenance", S3BucketName=BUCKET)
    client.start_logging(Name="provenance")
    alice = server.create_key("alice")
    alice_creds = Credentials(alice["AccessKeyId"], alice["SecretAccessKey"])

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sent = {}
    for sender, creds in (("root", server.root), ("alice", alice_creds)):
        records = [valid_record(server.account_id, str(uuid.uuid4()), eventTime=now, eventName=f"By{sender}")
                   for _ in range(3)]
        # Spacing that a re-serialiser would change: the stored text must stay as sent.
        texts = [json.dumps(record, indent=1) for record in records]
        body = ("{\"Records\":[" + ",".join(texts) + "]}").encode()
        answer = post_events(server, body, credentials=creds)
        assert answer.status_code == 200 and not answer.json()["failed"], answer.text
        sent[sender] = (creds, dict(zip((r["eventID"] for r in records), texts)))

    for sender, (creds, texts) in sent.items():
        for event_id, text in texts.items():
            events = wait_for(lambda: raw_lookup(server, event_id), what=f"{event_id} in LookupEvents")
            assert events[0]["CloudTrailEvent"] == text, "the record is not byte-identical"
            provenance = events[0]["OpenTrailProvenance"]
            assert provenance["AccessKeyId"] == creds.access_key_id
            expected = "root" if sender == "root" else "user/alice"
            assert provenance["Principal"] == f"arn:aws:iam::{server.account_id}:{expected}"
            assert provenance["Channel"] == "opentrail:PutEvents"
            assert provenance["SourceIPAddress"] == "127.0.0.1"

    # AWS SDKs ignore the extension member and see the record as ever.
    root_ids = list(sent["root"][1])
    found = client.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": root_ids[0]}])
    assert found["Events"][0]["EventId"] == root_ids[0]

    # Delivered files hold exactly the records sent, and nothing of the provenance.
    def delivered():
        records = []
        for path in (server.data_dir / "buckets" / BUCKET).rglob("*.json.gz"):
            records += json.loads(gzip.decompress(path.read_bytes()))["Records"]
        return records if {r["eventID"] for r in records} >= {i for _, t in sent.values() for i in t} else None

    records = wait_for(delivered, timeout=60, what="the records in delivered log files")
    ours = [r["eventID"] for r in records if r["eventName"] in ("Byroot", "Byalice")]
    assert sorted(ours) == sorted(i for _, texts in sent.values() for i in texts), "each record delivered once"
    assert not any("OpenTrailProvenance" in r for r in records)

    # Provenance survives a restart (it is stored with the record in event history).
    server.stop_cleanly()
    server.start()
    alice_id = next(iter(sent["alice"][1]))
    assert raw_lookup(server, alice_id)[0]["OpenTrailProvenance"]["AccessKeyId"] == alice_creds.access_key_id
