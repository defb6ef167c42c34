"""SearchSampleQueries, GenerateQuery, resource-based policies and event configuration
against the real `opentrail` binary, with boto3 and the AWS CLI: happy paths and each
modelled error (malformed policies, unknown resources, bad parameters, prompts nothing
fits), and the self-audit records naming the store or channel."""

from __future__ import annotations

import json

import pytest

from conftest import ACCOUNT_ID, REGION, error_code

CT_SELECTORS = [{"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]
AUDIT_LOG_SELECTORS = [
    {"Name": "channel events", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}
]


def body(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def store(ct, name="lake", selectors=CT_SELECTORS) -> str:
    return ct.create_event_data_store(
        Name=name, AdvancedEventSelectors=selectors, TerminationProtectionEnabled=False
    )["EventDataStoreArn"]


def channel_policy(channel: str, **statement) -> str:
    rule = {
        "Sid": "producers",
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::111122223333:root"]},
        "Action": "cloudtrail-data:PutAuditEvents",
        "Resource": channel,
    }
    rule.update(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": [rule]})


def store_policy(arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": ["cloudtrail:StartQuery", "cloudtrail:GetQueryResults", "cloudtrail:GetEventDataStore"],
                    "Resource": arn,
                }
            ],
        }
    )


# --- SearchSampleQueries


def test_search_sample_queries_ranks_and_pages(server):
    ct = server.client()
    answer = body(ct.search_sample_queries(SearchPhrase="failed console logins", MaxResults=5))
    results = answer["SearchResults"]
    assert 1 <= len(results) <= 5
    assert results[0]["Name"] == "Failed console logins"
    assert "$EDS_ID" in results[0]["SQL"] and "ConsoleLogin" in results[0]["SQL"]
    relevance = [r["Relevance"] for r in results]
    assert all(0 < r <= 1 for r in relevance)
    assert relevance == sorted(relevance, reverse=True)
    assert set(results[0]) == {"Name", "Description", "SQL", "Relevance"}

    # Paging walks every match once, with the same order as one big page.
    everything = [r["Name"] for r in ct.search_sample_queries(SearchPhrase="changes", MaxResults=50)["SearchResults"]]
    paged, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = ct.search_sample_queries(SearchPhrase="changes", MaxResults=4, **kwargs)
        paged += [r["Name"] for r in page["SearchResults"]]
        token = page.get("NextToken")
        if not token:
            break
    assert paged == everything and len(paged) > 4

    assert ct.search_sample_queries(SearchPhrase="zzqx wvvy")["SearchResults"] == []


def test_search_sample_queries_errors(server):
    ct = server.client()
    # (boto3 checks lengths itself; the pattern and MaxResults' maximum are the server's.)
    assert error_code(ct.search_sample_queries, SearchPhrase="caf\u00e9 logins") == "InvalidParameterException"
    assert error_code(ct.search_sample_queries, SearchPhrase="logins", MaxResults=51) == "InvalidParameterException"
    assert error_code(ct.search_sample_queries, SearchPhrase="logins", NextToken="nope-token") == "InvalidParameterException"


def test_search_sample_queries_cli(server):
    answer = server.aws("cloudtrail", "search-sample-queries", "--search-phrase", "root user activity")
    assert answer["SearchResults"][0]["Name"] == "Root user activity"
    with pytest.raises(Exception) as raised:
        server.aws("cloudtrail", "search-sample-queries", "--search-phrase", "a" * 1001)
    assert getattr(raised.value, "code", None) == "InvalidParameterException"


# --- Resource-based policies


def test_resource_policies_on_stores_and_channels(server):
    ct = server.client()
    eds = store(ct)
    audit = store(ct, "audit", AUDIT_LOG_SELECTORS)
    channel = ct.create_channel(
        Name="app", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": audit}]
    )["ChannelArn"]

    assert error_code(ct.get_resource_policy, ResourceArn=channel) == "ResourcePolicyNotFoundException"
    policy = channel_policy(channel)
    put = body(ct.put_resource_policy(ResourceArn=channel, ResourcePolicy=policy))
    assert put == {"ResourceArn": channel, "ResourcePolicy": policy}
    assert body(ct.get_resource_policy(ResourceArn=channel)) == put

    eds_policy = store_policy(eds)
    assert body(ct.put_resource_policy(ResourceArn=eds, ResourcePolicy=eds_policy))["ResourcePolicy"] == eds_policy
    assert ct.get_resource_policy(ResourceArn=eds)["ResourcePolicy"] == eds_policy

    ct.delete_resource_policy(ResourceArn=eds)
    assert error_code(ct.get_resource_policy, ResourceArn=eds) == "ResourcePolicyNotFoundException"
    assert error_code(ct.delete_resource_policy, ResourceArn=eds) == "ResourcePolicyNotFoundException"

    # Removed with its resource: a channel made again under the same name starts without one.
    ct.delete_channel(Channel=channel)
    assert error_code(ct.get_resource_policy, ResourceArn=channel) == "ResourceNotFoundException"

    # The calls are audited naming the resource.
    server.wait_for_history_caught_up()
    events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutResourcePolicy"}])["Events"]
    named = {r["ResourceName"] for e in events for r in e.get("Resources", [])}
    assert {channel, eds} <= named


def test_resource_policy_errors(server):
    ct = server.client()
    eds = store(ct)
    audit = store(ct, "audit", AUDIT_LOG_SELECTORS)
    channel = ct.create_channel(
        Name="app", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": audit}]
    )["ChannelArn"]
    malformed = [
        "not json",
        json.dumps({"Statement": []}),
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        channel_policy(channel, Principal=None),
        channel_policy(channel, Action="cloudtrail:StartQuery"),
        channel_policy(channel, Effect="Sometimes"),
        channel_policy(channel, Resource=channel + "x"),
    ]
    for policy in malformed:
        assert error_code(ct.put_resource_policy, ResourceArn=channel, ResourcePolicy=policy) == (
            "ResourcePolicyNotValidException"
        ), policy
    # A store's policy grants query actions, not PutAuditEvents.
    assert error_code(ct.put_resource_policy, ResourceArn=eds, ResourcePolicy=channel_policy(eds)) == (
        "ResourcePolicyNotValidException"
    )

    missing_store = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:eventdatastore/00000000-0000-4000-8000-000000000000"
    dashboard = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:dashboard/exampleDash"
    trail = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/main"
    for arn in (missing_store, dashboard):
        assert error_code(ct.get_resource_policy, ResourceArn=arn) == "ResourceNotFoundException", arn
    for arn in (trail, "arn:aws:s3:::some-bucket"):
        assert error_code(ct.get_resource_policy, ResourceArn=arn) == "ResourceTypeNotSupportedException", arn
    assert error_code(ct.get_resource_policy, ResourceArn="not-an-arn") == "ResourceARNNotValidException"


def dashboard_policy(arn: str, action="cloudtrail:StartDashboardRefresh") -> str:
    """AWS's example: CloudTrail may refresh the dashboard on its schedule."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": action,
                    "Condition": {"StringEquals": {"AWS:SourceArn": arn, "AWS:SourceAccount": ACCOUNT_ID}},
                }
            ],
        }
    )


def test_resource_policies_on_dashboards(server):
    ct = server.client()
    dashboard = ct.create_dashboard(Name="refreshed")["DashboardArn"]
    assert error_code(ct.get_resource_policy, ResourceArn=dashboard) == "ResourcePolicyNotFoundException"
    policy = dashboard_policy(dashboard)
    put = body(ct.put_resource_policy(ResourceArn=dashboard, ResourcePolicy=policy))
    assert put == {"ResourceArn": dashboard, "ResourcePolicy": policy}
    assert body(ct.get_resource_policy(ResourceArn=dashboard)) == put
    # A dashboard's policy grants StartDashboardRefresh only.
    assert error_code(
        ct.put_resource_policy, ResourceArn=dashboard, ResourcePolicy=dashboard_policy(dashboard, "cloudtrail:StartQuery")
    ) == "ResourcePolicyNotValidException"
    # The AWS CLI sees the same policy.
    got = server.aws("cloudtrail", "get-resource-policy", "--resource-arn", dashboard)
    assert got["ResourcePolicy"] == policy
    server.aws("cloudtrail", "delete-resource-policy", "--resource-arn", dashboard)
    assert error_code(ct.get_resource_policy, ResourceArn=dashboard) == "ResourcePolicyNotFoundException"
    server.aws("cloudtrail", "put-resource-policy", "--resource-arn", dashboard, "--resource-policy", policy)

    # Deleting the dashboard deletes its policy: one made again under the name has none.
    ct.delete_dashboard(DashboardId=dashboard)
    assert error_code(ct.get_resource_policy, ResourceArn=dashboard) == "ResourceNotFoundException"
    assert error_code(ct.put_resource_policy, ResourceArn=dashboard, ResourcePolicy=policy) == "ResourceNotFoundException"
    assert ct.create_dashboard(Name="refreshed")["DashboardArn"] == dashboard
    assert error_code(ct.get_resource_policy, ResourceArn=dashboard) == "ResourcePolicyNotFoundException"
    # Another account's or region's dashboard of that name is not the caller's.
    other = dashboard.replace(ACCOUNT_ID, "444455556666")
    assert error_code(ct.get_resource_policy, ResourceArn=other) == "ResourceNotFoundException"


def test_resource_policy_cli(server):
    ct = server.client()
    eds = store(ct)
    policy = store_policy(eds)
    put = server.aws("cloudtrail", "put-resource-policy", "--resource-arn", eds, "--resource-policy", policy)
    assert put["ResourcePolicy"] == policy
    assert server.aws("cloudtrail", "get-resource-policy", "--resource-arn", eds)["ResourceArn"] == eds
    server.aws("cloudtrail", "delete-resource-policy", "--resource-arn", eds)
    with pytest.raises(Exception) as raised:
        server.aws("cloudtrail", "put-resource-policy", "--resource-arn", eds, "--resource-policy", "{not json")
    assert getattr(raised.value, "code", None) == "ResourcePolicyNotValidException"


# --- Event configuration


def test_event_configuration(server):
    ct = server.client()
    eds = store(ct)
    got = body(ct.get_event_configuration(EventDataStore=eds))
    assert got == {"EventDataStoreArn": eds, "MaxEventSize": "Standard", "ContextKeySelectors": []}
    selectors = [{"Type": "TagContext", "Equals": ["team"]}, {"Type": "RequestContext", "Equals": ["aws:SourceVpc"]}]
    put = body(ct.put_event_configuration(EventDataStore=eds, MaxEventSize="Large", ContextKeySelectors=selectors))
    assert put == {"EventDataStoreArn": eds, "MaxEventSize": "Large", "ContextKeySelectors": selectors}
    assert body(ct.get_event_configuration(EventDataStore=eds.rsplit("/", 1)[1])) == put

    cli = server.aws(
        "cloudtrail", "put-event-configuration", "--event-data-store", eds,
        "--max-event-size", "Standard", "--context-key-selectors", "[]",
    )
    assert cli["MaxEventSize"] == "Standard"
    assert server.aws("cloudtrail", "get-event-configuration", "--event-data-store", eds)["ContextKeySelectors"] == []


def test_event_configuration_errors(server):
    ct = server.client()
    eds = store(ct)
    audit = store(ct, "audit", AUDIT_LOG_SELECTORS)
    tag = [{"Type": "TagContext", "Equals": ["team"]}]
    assert error_code(
        ct.put_event_configuration, EventDataStore=eds, MaxEventSize="Standard", ContextKeySelectors=tag
    ) == "InvalidParameterCombinationException"
    assert error_code(
        ct.put_event_configuration, EventDataStore=eds, MaxEventSize="Large", ContextKeySelectors=tag + tag
    ) == "InvalidParameterException"
    assert error_code(
        ct.put_event_configuration, EventDataStore=audit, MaxEventSize="Large", ContextKeySelectors=[]
    ) == "InvalidEventDataStoreCategoryException"
    missing = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:eventdatastore/00000000-0000-4000-8000-000000000000"
    assert error_code(ct.get_event_configuration, EventDataStore=missing) == "EventDataStoreNotFoundException"
    assert error_code(ct.get_event_configuration, EventDataStore="arn:aws:nope") == "EventDataStoreARNInvalidException"
    assert error_code(ct.get_event_configuration, TrailName="t", EventDataStore=eds) == "InvalidParameterCombinationException"
    assert error_code(ct.get_event_configuration) == "InvalidParameterCombinationException"


# --- GenerateQuery


def test_generate_query(server):
    ct = server.client()
    eds = store(ct)
    eds_id = eds.rsplit("/", 1)[1]
    answer = body(
        ct.generate_query(EventDataStores=[eds], Prompt="top 10 users who called DeleteBucket in the last 7 days")
    )
    sql = answer["QueryStatement"]
    assert f"FROM {eds_id}" in sql
    assert "eventName = 'DeleteBucket'" in sql and "LIMIT 10" in sql and "interval '7' day" in sql
    assert answer["QueryAlias"][0].isalpha()
    assert answer["EventDataStoreOwnerAccountId"] == ACCOUNT_ID

    by_id = ct.generate_query(EventDataStores=[eds_id], Prompt="count events by region")["QueryStatement"]
    assert "GROUP BY awsRegion" in by_id

    cli = server.aws(
        "cloudtrail", "generate-query", "--event-data-stores", eds, "--prompt", "failed console logins yesterday"
    )
    assert "ConsoleLogin" in cli["QueryStatement"] and cli["QueryAlias"] != answer["QueryAlias"]


def test_generate_query_errors(server):
    ct = server.client()
    eds = store(ct)
    assert error_code(
        ct.generate_query, EventDataStores=[eds], Prompt="what is the weather like in paris"
    ) == "GenerateResponseException"
    with pytest.raises(Exception) as raised:
        server.aws("cloudtrail", "generate-query", "--event-data-stores", eds, "--prompt", "zzqx wvvy kkkj")
    assert getattr(raised.value, "code", None) == "GenerateResponseException"
    assert error_code(ct.generate_query, EventDataStores=[eds], Prompt="logins \u00e9") == "InvalidParameterException"
    missing = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:eventdatastore/00000000-0000-4000-8000-000000000000"
    assert error_code(ct.generate_query, EventDataStores=[missing], Prompt="count events by region") == (
        "EventDataStoreNotFoundException"
    )
    assert error_code(ct.generate_query, EventDataStores=["arn:aws:bad"], Prompt="count events by region") == (
        "EventDataStoreARNInvalidException"
    )
    ct.delete_event_data_store(EventDataStore=eds)
    assert error_code(ct.generate_query, EventDataStores=[eds], Prompt="count events by region") == (
        "InactiveEventDataStoreException"
    )
