"""CloudTrail Lake dashboards against the real `opentrail` binary: CreateDashboard,
GetDashboard, ListDashboards, UpdateDashboard, DeleteDashboard and StartDashboardRefresh
through boto3 and the AWS CLI; tags on dashboard ARNs; the managed dashboards; each
modelled error; a refresh whose widget queries run over a store with events and finish
(their results read through DescribeQuery(QueryAlias, RefreshId) and GetQueryResults).
"""

from __future__ import annotations

import time

import boto3
from botocore.config import Config

from conftest import ACCOUNT_ID, REGION, error_code, wait_for

DASHBOARD_ARN_PREFIX = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:dashboard/"
MANAGED = {
    "AWSCloudTrail-Overview",
    "AWSCloudTrail-SecurityMonitoring",
    "AWSCloudTrail-IAMActivity",
    "AWSCloudTrail-ErrorAnalysis",
    "AWSCloudTrail-UserActivity",
}
TERMINAL = {"FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"}


def create_store(ct, name="lake") -> str:
    arn = ct.create_event_data_store(Name=name, TerminationProtectionEnabled=False)["EventDataStoreArn"]
    return arn.rsplit("/", 1)[1]


def widget(store: str, title: str = "Calls") -> dict:
    return {
        "QueryStatement": f"SELECT eventName, COUNT(*) AS calls FROM {store} "
        "WHERE eventTime >= '?' AND eventTime <= '?' GROUP BY eventName ORDER BY calls DESC",
        "QueryParameters": ["$StartTime$", "$EndTime$"],
        "ViewProperties": {"View": "Table", "Title": title},
    }


def widget_query(ct, alias: str, refresh_id: str) -> dict:
    return wait_for(
        lambda: (lambda d: d if d["QueryStatus"] in TERMINAL else None)(
            ct.describe_query(QueryAlias=alias, RefreshId=refresh_id)
        ),
        timeout=90,
        what=f"widget {alias} of refresh {refresh_id} to end",
    )


def unchecked_client(server):
    """A boto3 client that sends what the model's constraints would refuse client-side."""
    return boto3.session.Session(
        aws_access_key_id=server.root.access_key_id,
        aws_secret_access_key=server.root.secret_access_key,
        region_name=REGION,
    ).client(
        "cloudtrail",
        endpoint_url=server.endpoint,
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=False),
    )


def names(listed: list) -> set:
    return {d["DashboardArn"].rsplit("/", 1)[1] for d in listed}


def test_custom_dashboard_lifecycle(server):
    ct = server.client()
    store = create_store(ct)
    created = ct.create_dashboard(
        Name="ops-dash",
        Widgets=[widget(store)],
        RefreshSchedule={"Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "ENABLED", "TimeOfDay": "01:30"},
        TagsList=[{"Key": "team", "Value": "sec"}],
        TerminationProtectionEnabled=True,
    )
    arn = DASHBOARD_ARN_PREFIX + "ops-dash"
    assert created["DashboardArn"] == arn and created["Name"] == "ops-dash" and created["Type"] == "CUSTOM"
    assert created["TerminationProtectionEnabled"] is True
    assert created["TagsList"] == [{"Key": "team", "Value": "sec"}]
    assert created["RefreshSchedule"]["Frequency"] == {"Unit": "HOURS", "Value": 6}
    assert created["Widgets"][0]["QueryAlias"] == "widget-1"
    assert created["Widgets"][0]["QueryParameters"] == ["$StartTime$", "$EndTime$"]
    assert created["Widgets"][0]["ViewProperties"] == {"View": "Table", "Title": "Calls"}

    got = ct.get_dashboard(DashboardId="ops-dash")
    assert got["DashboardArn"] == arn and got["Type"] == "CUSTOM" and got["Status"] == "CREATED"
    assert got["CreatedTimestamp"] == got["UpdatedTimestamp"]
    assert "LastRefreshId" not in got
    assert ct.get_dashboard(DashboardId=arn)["DashboardArn"] == arn

    listed = ct.list_dashboards()["Dashboards"]
    assert names(listed) == MANAGED | {"ops-dash"}
    assert {d["Type"] for d in listed if d["DashboardArn"] == arn} == {"CUSTOM"}
    assert [d["DashboardArn"] for d in ct.list_dashboards(Type="CUSTOM")["Dashboards"]] == [arn]
    assert names(ct.list_dashboards(Type="MANAGED")["Dashboards"]) == MANAGED
    assert names(ct.list_dashboards(NamePrefix="ops")["Dashboards"]) == {"ops-dash"}
    first = ct.list_dashboards(MaxResults=2)
    assert len(first["Dashboards"]) == 2 and first["NextToken"]
    pages, token = list(first["Dashboards"]), first["NextToken"]
    while token:
        page = ct.list_dashboards(MaxResults=2, NextToken=token)
        pages.extend(page["Dashboards"])
        token = page.get("NextToken")
    assert names(pages) == MANAGED | {"ops-dash"} and len(pages) == 6

    # Tags on the dashboard ARN.
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "env", "Value": "prod"}])
    tags = ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]
    assert tags["ResourceId"] == arn
    assert tags["TagsList"] == [{"Key": "team", "Value": "sec"}, {"Key": "env", "Value": "prod"}]
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "team"}])
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"] == [{"Key": "env", "Value": "prod"}]

    # Termination protection holds until UpdateDashboard lifts it.
    assert error_code(ct.delete_dashboard, DashboardId="ops-dash") == "ConflictException"
    updated = ct.update_dashboard(
        DashboardId=arn,
        Widgets=[widget(store), widget(store, "Again")],
        RefreshSchedule={"Status": "DISABLED"},
        TerminationProtectionEnabled=False,
    )
    assert updated["TerminationProtectionEnabled"] is False and updated["Name"] == "ops-dash"
    assert [w["QueryAlias"] for w in updated["Widgets"]] == ["widget-1", "widget-2"]
    assert updated["RefreshSchedule"] == {"Status": "DISABLED"}
    got = ct.get_dashboard(DashboardId="ops-dash")
    assert got["Status"] == "UPDATED" and got["UpdatedTimestamp"] >= got["CreatedTimestamp"]
    ct.delete_dashboard(DashboardId="ops-dash")
    assert error_code(ct.get_dashboard, DashboardId="ops-dash") == "ResourceNotFoundException"
    assert names(ct.list_dashboards()["Dashboards"]) == MANAGED


def test_errors(server):
    ct = unchecked_client(server)
    store = create_store(ct)
    ct.create_dashboard(Name="taken")
    assert error_code(ct.create_dashboard, Name="taken") == "ConflictException"
    assert error_code(ct.create_dashboard, Name="ab") == "ValidationException"
    assert error_code(ct.create_dashboard, Name="bad name!") == "ValidationException"
    assert error_code(ct.create_dashboard, Name="AWSCloudTrail-Mine") == "ValidationException"
    assert error_code(ct.create_dashboard, Name="AWSCloudTrail-Highlights") == "UnsupportedOperationException"
    assert error_code(ct.create_dashboard, Name="many", Widgets=[widget(store)] * 11) == "ServiceQuotaExceededException"
    bad_sql = {"QueryStatement": f"DELETE FROM {store}", "ViewProperties": {"View": "Table"}}
    assert error_code(ct.create_dashboard, Name="badsql", Widgets=[bad_sql]) == "InvalidQueryStatementException"
    missing_parameter = {
        "QueryStatement": f"SELECT eventName FROM {store} WHERE eventTime > '?'",
        "ViewProperties": {"View": "Table"},
    }
    assert error_code(ct.create_dashboard, Name="noparam", Widgets=[missing_parameter]) == "InvalidQueryStatementException"
    unknown_store = {
        "QueryStatement": "SELECT eventName FROM 0000aaaa-1111-2222-3333-444455556666",
        "ViewProperties": {"View": "Table"},
    }
    assert error_code(ct.create_dashboard, Name="nostore", Widgets=[unknown_store]) == "EventDataStoreNotFoundException"
    bad_view = dict(widget(store), ViewProperties={"View": "Table", "Title": "no/slash"})
    assert error_code(ct.create_dashboard, Name="badview", Widgets=[bad_view]) == "ValidationException"
    for schedule in (
        {"Frequency": {"Unit": "HOURS", "Value": 2}, "Status": "ENABLED"},
        {"Frequency": {"Unit": "DAYS", "Value": 7}, "Status": "ENABLED"},
        {"Status": "ENABLED"},
        {"Frequency": {"Unit": "DAYS", "Value": 1}, "Status": "ENABLED", "TimeOfDay": "25:00"},
    ):
        assert error_code(ct.create_dashboard, Name="sched", RefreshSchedule=schedule) == "ValidationException", schedule
    assert error_code(ct.create_dashboard, Name="tagged", TagsList=[{"Key": "aws:x", "Value": "y"}]) == "InvalidTagParameterException"
    # Nothing of the refused requests was stored.
    assert names(ct.list_dashboards(Type="CUSTOM")["Dashboards"]) == {"taken"}

    for call in (ct.get_dashboard, ct.delete_dashboard, ct.start_dashboard_refresh):
        assert error_code(call, DashboardId="nosuch") == "ResourceNotFoundException"
    assert error_code(ct.update_dashboard, DashboardId="nosuch", TerminationProtectionEnabled=True) == "ResourceNotFoundException"
    other_account_arn = f"arn:aws:cloudtrail:{REGION}:999999999999:dashboard/taken"
    assert error_code(ct.get_dashboard, DashboardId=other_account_arn) == "ResourceNotFoundException"
    # Another region's dashboards are not the caller's there.
    assert error_code(server.client(region="eu-west-1").get_dashboard, DashboardId="taken") == "ResourceNotFoundException"
    # Managed dashboards can be neither changed nor deleted.
    assert error_code(ct.delete_dashboard, DashboardId="AWSCloudTrail-Overview") == "UnsupportedOperationException"
    assert error_code(
        ct.update_dashboard, DashboardId="AWSCloudTrail-Overview", TerminationProtectionEnabled=True
    ) == "UnsupportedOperationException"
    # Refresh parameters are checked; a managed dashboard needs $EventDataStoreId$.
    assert error_code(
        ct.start_dashboard_refresh, DashboardId="taken", QueryParameterValues={"$Nope$": "x"}
    ) == "ValidationException"
    assert error_code(
        ct.start_dashboard_refresh, DashboardId="taken", QueryParameterValues={"$StartTime$": "yesterday"}
    ) == "ValidationException"
    assert error_code(ct.start_dashboard_refresh, DashboardId="AWSCloudTrail-Overview") == "ValidationException"
    assert error_code(ct.list_dashboards, NextToken="not-a-token") == "InvalidNextTokenException"
    assert error_code(ct.list_dashboards, MaxResults=0) == "ValidationException"


def test_refresh_runs_the_widget_queries(server):
    ct = server.client()
    store = create_store(ct)
    for _ in range(3):
        ct.list_trails()
    ct.create_dashboard(Name="calls", Widgets=[widget(store), widget(store, "Second")])
    # The Lake writer moves the ListTrails events into the store shortly: refresh until a
    # widget sees them (90 s).
    deadline = time.monotonic() + 90
    rows: list = []
    while time.monotonic() < deadline:
        refresh_id = ct.start_dashboard_refresh(
            DashboardId="calls", QueryParameterValues={"$StartTime$": "2020-01-01", "$EndTime$": "2099-01-01"}
        )["RefreshId"]
        assert refresh_id.isdigit() and 10 <= len(refresh_id) <= 20
        assert ct.get_dashboard(DashboardId="calls")["LastRefreshId"] == refresh_id
        described = [widget_query(ct, alias, refresh_id) for alias in ("widget-1", "widget-2")]
        assert [d["QueryStatus"] for d in described] == ["FINISHED", "FINISHED"], described
        assert "'2020-01-01 00:00:00'" in described[0]["QueryString"]
        assert "'2099-01-01 00:00:00'" in described[0]["QueryString"]
        rows = ct.get_query_results(QueryId=described[0]["QueryId"])["QueryResultRows"]
        if any(row[0] == {"eventName": "ListTrails"} for row in rows):
            break
        time.sleep(1)
    calls = {row[0]["eventName"]: int(row[1]["calls"]) for row in rows}
    assert calls.get("ListTrails", 0) >= 3, rows
    got = ct.get_dashboard(DashboardId="calls")
    assert "LastRefreshFailureReason" not in got
    # Refresh ids only grow; an unknown alias of the refresh is no query.
    later = ct.start_dashboard_refresh(DashboardId="calls")["RefreshId"]
    assert int(later) > int(refresh_id)
    assert error_code(ct.describe_query, QueryAlias="widget-9", RefreshId=later) == "QueryIdNotFoundException"
    widget_query(ct, "widget-1", later)
    widget_query(ct, "widget-2", later)

    # Every managed dashboard's widgets run over the store.
    for name in sorted(MANAGED):
        dashboard = ct.get_dashboard(DashboardId=name)
        assert dashboard["Type"] == "MANAGED" and dashboard["Widgets"]
        refresh_id = ct.start_dashboard_refresh(
            DashboardId=name, QueryParameterValues={"$EventDataStoreId$": store, "$Period$": "hour"}
        )["RefreshId"]
        for w in dashboard["Widgets"]:
            described = widget_query(ct, w["QueryAlias"], refresh_id)
            assert described["QueryStatus"] == "FINISHED", (name, w, described)


def test_dashboards_survive_a_restart(server):
    ct = server.client()
    store = create_store(ct)
    schedule = {"Frequency": {"Unit": "DAYS", "Value": 1}, "Status": "ENABLED", "TimeOfDay": "03:00"}
    ct.create_dashboard(Name="kept", Widgets=[widget(store)], RefreshSchedule=schedule)
    refresh_id = ct.start_dashboard_refresh(DashboardId="kept")["RefreshId"]
    widget_query(ct, "widget-1", refresh_id)
    server.restart()
    ct = server.client()
    got = ct.get_dashboard(DashboardId="kept")
    assert got["RefreshSchedule"] == schedule and got["LastRefreshId"] == refresh_id
    assert widget_query(ct, "widget-1", refresh_id)["QueryStatus"] == "FINISHED"


def test_aws_cli(server):
    def cli(command: str, *args: str):
        return server.aws("cloudtrail", command, *args)

    created = cli("create-dashboard", "--name", "cli-dash", "--termination-protection-enabled")
    assert created["DashboardArn"] == DASHBOARD_ARN_PREFIX + "cli-dash" and created["Type"] == "CUSTOM"
    assert cli("get-dashboard", "--dashboard-id", "cli-dash")["TerminationProtectionEnabled"] is True
    assert DASHBOARD_ARN_PREFIX + "cli-dash" in {d["DashboardArn"] for d in cli("list-dashboards")["Dashboards"]}
    assert error_code(cli, "delete-dashboard", "--dashboard-id", "cli-dash") == "ConflictException"
    cli("update-dashboard", "--dashboard-id", "cli-dash", "--no-termination-protection-enabled")
    refreshed = cli("start-dashboard-refresh", "--dashboard-id", "cli-dash")
    assert refreshed["RefreshId"].isdigit()
    cli("delete-dashboard", "--dashboard-id", "cli-dash")
    assert error_code(cli, "get-dashboard", "--dashboard-id", "cli-dash") == "ResourceNotFoundException"
