"""Lake query federation against the real `opentrail` binary: EnableFederation publishes an
event data store as an Apache Iceberg table in the lake (ENABLING, then ENABLED), which an
independent reader from PyPI (PyIceberg, over the table's metadata file) reads with exactly
the rows OpenTrail's own StartQuery returns; the table follows new events; a federated
store cannot be deleted; DisableFederation (DISABLING, then DISABLED) removes the table's
metadata but not the data; the state survives a restart; each modelled error through boto3;
the happy path through the AWS CLI.

The events are the test's own ListTrails calls (the server's self-audit events).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from conftest import ACCOUNT_ID, REGION, error_code, wait_for
from test_queries import all_rows, create_store, run_query

pyiceberg_table = pytest.importorskip("pyiceberg.table", reason="pyiceberg is in tests/requirements.txt")

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/federation"
UNKNOWN_STORE = "0000aaaa-1111-2222-3333-444455556666"


def metadata_dir(server, store: str) -> Path:
    return server.data_dir / "lake" / "federation" / store / "metadata"


def federation_status(ct, store: str) -> str | None:
    return ct.get_event_data_store(EventDataStore=store).get("FederationStatus")


def wait_status(ct, store: str, status: str) -> None:
    wait_for(lambda: federation_status(ct, store) == status, timeout=90, what=f"federation {status}")


def lake_rows(ct, store: str) -> set[tuple[str, str, str]]:
    """(eventid, eventname, eventtime) of every ListTrails event, by OpenTrail's own query."""
    query_id, described = run_query(
        ct, f"SELECT eventID, eventName, eventTime FROM {store} WHERE eventName = 'ListTrails'"
    )
    assert described["QueryStatus"] == "FINISHED", described
    rows = set()
    for row in all_rows(ct, query_id):
        cells = {key: value for cell in row for key, value in cell.items()}
        rows.add((cells["eventID"], cells["eventName"], cells["eventTime"]))
    return rows


def wait_lake_rows(ct, store: str, at_least: int) -> set:
    return wait_for(lambda: (lambda r: r if len(r) >= at_least else None)(lake_rows(ct, store)),
                    timeout=90, what=f"{at_least} events in the store")


def iceberg_rows(server, store: str) -> set[tuple[str, str, str]]:
    """The same rows read by PyIceberg from the table's newest metadata (no OpenTrail)."""
    folder = metadata_dir(server, store)
    version = (folder / "version-hint.text").read_text().strip()
    table = pyiceberg_table.StaticTable.from_metadata(str(folder / f"v{version}.metadata.json"))
    from pyiceberg.expressions import EqualTo

    arrow = table.scan(
        row_filter=EqualTo("eventname", "ListTrails"),
        selected_fields=("eventid", "eventname", "eventtime"),
    ).to_arrow()
    rows = set()
    for record in arrow.to_pylist():
        time: datetime.datetime = record["eventtime"]
        rows.add((record["eventid"], record["eventname"], time.strftime("%Y-%m-%d %H:%M:%S.") + f"{time.microsecond // 1000:03d}"))
    return rows


def test_a_federated_store_reads_the_same_in_pyiceberg(server):
    ct = server.client()
    store = create_store(ct, "federated")
    for _ in range(4):
        ct.list_trails()
    expected = wait_lake_rows(ct, store, 4)

    enabled = ct.enable_federation(EventDataStore=store, FederationRoleArn=ROLE)
    assert enabled["EventDataStoreArn"].endswith(f":eventdatastore/{store}")
    assert enabled["FederationStatus"] == "ENABLING"
    assert enabled["FederationRoleArn"] == ROLE
    wait_status(ct, store, "ENABLED")
    got = ct.get_event_data_store(EventDataStore=store)
    assert got["FederationRoleArn"] == ROLE

    # The table's rows are exactly the query's (the query's own audit events are not
    # ListTrails calls, so the set is stable).
    assert iceberg_rows(server, store) == expected == lake_rows(ct, store)
    table_version = int((metadata_dir(server, store) / "version-hint.text").read_text())

    # More events: the table follows.
    for _ in range(3):
        ct.list_trails()
    expected = wait_lake_rows(ct, store, 7)
    wait_for(lambda: iceberg_rows(server, store) == expected, timeout=90, what="the table to follow the store")
    assert int((metadata_dir(server, store) / "version-hint.text").read_text()) > table_version

    # A federated store cannot be deleted.
    assert error_code(ct.delete_event_data_store, EventDataStore=store) == "EventDataStoreFederationEnabledException"
    assert error_code(ct.enable_federation, EventDataStore=store, FederationRoleArn=ROLE) == (
        "EventDataStoreFederationEnabledException"
    )

    # The state survives a restart.
    server.restart()
    ct = server.client()
    assert federation_status(ct, store) == "ENABLED"

    disabled = ct.disable_federation(EventDataStore=store)
    assert disabled["EventDataStoreArn"].endswith(f":eventdatastore/{store}")
    assert disabled["FederationStatus"] in ("DISABLING", "DISABLED")
    wait_status(ct, store, "DISABLED")
    assert "FederationRoleArn" not in ct.get_event_data_store(EventDataStore=store)
    assert not any(metadata_dir(server, store).glob("*")), "table metadata removed"
    # The data stays: OpenTrail still queries it.
    assert lake_rows(ct, store) >= expected
    ct.delete_event_data_store(EventDataStore=store)


def test_errors(server):
    ct = server.client()
    store = create_store(ct, "errors")
    assert error_code(ct.enable_federation, EventDataStore=UNKNOWN_STORE, FederationRoleArn=ROLE) == (
        "EventDataStoreNotFoundException"
    )
    assert error_code(ct.disable_federation, EventDataStore=UNKNOWN_STORE) == "EventDataStoreNotFoundException"
    assert error_code(ct.enable_federation, EventDataStore="bad/id", FederationRoleArn=ROLE) == (
        "EventDataStoreARNInvalidException"
    )
    for role in ("not-a-role", "arn:aws:iam::444455556666:role/other-account", f"arn:aws:iam::{ACCOUNT_ID}:user/u"):
        assert error_code(ct.enable_federation, EventDataStore=store, FederationRoleArn=role) == (
            "InvalidParameterException"
        ), role
    # Disabling a store never federated changes nothing.
    assert ct.disable_federation(EventDataStore=store)["FederationStatus"] == "DISABLED"
    # While a change is under way, another is refused (the writer settles within a second,
    # so the second call may also find it settled).
    ct.enable_federation(EventDataStore=store, FederationRoleArn=ROLE)
    code = error_code(ct.disable_federation, EventDataStore=store) if federation_status(ct, store) == "ENABLING" else None
    assert code in (None, "ConcurrentModificationException")
    wait_status(ct, store, "ENABLED")
    ct.disable_federation(EventDataStore=store)
    wait_status(ct, store, "DISABLED")
    ct.delete_event_data_store(EventDataStore=store)
    assert error_code(ct.enable_federation, EventDataStore=store, FederationRoleArn=ROLE) == (
        "InactiveEventDataStoreException"
    )
    assert error_code(ct.disable_federation, EventDataStore=store) == "InactiveEventDataStoreException"


def test_aws_cli(server):
    ct = server.client()
    store = create_store(ct, "cli")
    enabled = server.aws("cloudtrail", "enable-federation", "--event-data-store", store,
                         "--federation-role-arn", ROLE)
    assert enabled["FederationStatus"] == "ENABLING" and enabled["FederationRoleArn"] == ROLE
    wait_for(lambda: server.aws("cloudtrail", "get-event-data-store", "--event-data-store", store)
             .get("FederationStatus") == "ENABLED", timeout=90, what="ENABLED")
    assert (metadata_dir(server, store) / "version-hint.text").exists()
    disabled = server.aws("cloudtrail", "disable-federation", "--event-data-store", store)
    assert disabled["EventDataStoreArn"].endswith(store)
    wait_for(lambda: server.aws("cloudtrail", "get-event-data-store", "--event-data-store", store)
             .get("FederationStatus") == "DISABLED", timeout=90, what="DISABLED")
    assert error_code(server.aws, "cloudtrail", "enable-federation", "--event-data-store", store,
                      "--federation-role-arn", "nope") == "InvalidParameterException"
