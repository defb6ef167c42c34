"""Insights end to end with a test clock: a burst of one API produces a Start and an End
event in LookupEvents, delivered under CloudTrail-Insight/ and accepted by the real
`aws cloudtrail validate-logs`; ListInsightsMetricData and ListInsightsData answer."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import time
import uuid

import pytest

from conftest import OPENTRAIL_BIN, REGION, _child_env, error_code, trail_arn, wait_for
from test_delivery import aws_validate_logs, keys
from test_ingest import post_events


def iso(time: dt.datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ")


def call(account: str, time: dt.datetime) -> dict:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": account, "userName": "burst",
                         "arn": f"arn:aws:iam::{account}:user/burst"},
        "eventTime": iso(time),
        "eventSource": "ssm.amazonaws.com",
        "eventName": "SendCommand",
        "awsRegion": REGION,
        "sourceIPAddress": "10.0.0.1",
        "userAgent": "burst-agent",
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "readOnly": False,
        "managementEvent": True,
        "eventCategory": "Management",
        "recipientAccountId": account,
    }


@pytest.fixture
def insights(start_server, moto_server, tmp_path):
    clock = tmp_path / "clock"
    t0 = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    clock.write_text(iso(t0))
    server = start_server(*moto_server.opentrail_args(), "--delivery-interval", "1s",
                          "--insights-test-clock-file", str(clock))
    return server, moto_server, clock, t0


def test_a_burst_starts_and_ends_an_insight_delivered_and_validated(insights):
    server, moto, clock, t0 = insights
    s3 = moto.s3()
    bucket = "insights-bucket"
    s3.create_bucket(Bucket=bucket)
    client = server.client()
    start = iso(t0 - dt.timedelta(minutes=2))
    client.create_trail(Name="watched", S3BucketName=bucket, EnableLogFileValidation=True)
    client.create_trail(Name="plain", S3BucketName=bucket, S3KeyPrefix="plain")
    client.put_insight_selectors(TrailName="watched", InsightSelectors=[
        {"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}])
    client.start_logging(Name="watched")
    client.start_logging(Name="plain")
    wait_for(lambda: "insights enabled" in server.log_text(), what="insights to start for the account")

    # 40 SendCommand calls in each of two minutes: far above a new key's threshold (30).
    burst = [call(server.account_id, t0 + dt.timedelta(seconds=second))
             for second in range(0, 120, 3)] * 1
    burst += [call(server.account_id, t0 + dt.timedelta(seconds=second)) for second in range(1, 120, 3)]
    answer = post_events(server, json.dumps({"Records": burst}).encode()).json()
    assert len(answer["successful"]) == len(burst), answer

    def insight_events():
        pages = client.get_paginator("lookup_events").paginate(
            EventCategory="insight", StartTime=t0 - dt.timedelta(hours=1), EndTime=t0 + dt.timedelta(hours=1))
        return [json.loads(e["CloudTrailEvent"]) for page in pages for e in page["Events"]]

    # Minute by minute: the clock moves, the minutes close, the insight starts then ends.
    for minute in range(1, 12):
        clock.write_text(iso(t0 + dt.timedelta(minutes=minute, seconds=5)))
        if minute == 3:
            started = wait_for(lambda: [e for e in insight_events() if e["insightDetails"]["state"] == "Start"],
                               what="the Start event")
    events = wait_for(lambda: (found := insight_events()) and len(found) == 2 and found, what="Start and End")
    by_state = {e["insightDetails"]["state"]: e for e in events}
    assert set(by_state) == {"Start", "End"}
    assert started[0]["eventID"] == by_state["Start"]["eventID"]
    for event in events:
        assert event["eventType"] == "AwsCloudTrailInsight" and event["eventCategory"] == "Insight"
        assert event["insightDetails"]["eventSource"] == "ssm.amazonaws.com"
        assert event["insightDetails"]["eventName"] == "SendCommand"
        assert event["insightDetails"]["insightType"] == "ApiCallRateInsight"
    assert by_state["Start"]["sharedEventID"] == by_state["End"]["sharedEventID"]
    assert by_state["Start"]["eventTime"] == iso(t0)
    assert by_state["Start"]["insightDetails"]["insightContext"]["statistics"]["insight"]["average"] == 40
    assert by_state["End"]["insightDetails"]["insightContext"]["statistics"]["insightDuration"] == 2

    # Delivered under CloudTrail-Insight/ to the trail with Insights only.
    insight_prefix = f"AWSLogs/{server.account_id}/CloudTrail-Insight/{REGION}/"
    files = wait_for(lambda: (found := keys(s3, bucket, insight_prefix)) and found, what="an Insights log file")
    delivered = []
    for key in keys(s3, bucket, insight_prefix):
        assert key.split("/")[-1].startswith(f"{server.account_id}_CloudTrail-Insight_{REGION}_")
        delivered += json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))["Records"]
    wait_for(lambda: len({r["eventID"] for r in delivered_records(s3, bucket, insight_prefix)}) == 2,
             what="both Insights events delivered")
    assert files
    assert not keys(s3, bucket, f"plain/AWSLogs/{server.account_id}/CloudTrail-Insight/")
    plain = [r for key in keys(s3, bucket, "plain/") if "/CloudTrail/" in key
             for r in json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))["Records"]]
    assert all(r.get("eventType") != "AwsCloudTrailInsight" for r in plain)

    # The counters: one-minute periods, zeros filled in or left out.
    metrics = client.list_insights_metric_data(
        EventSource="ssm.amazonaws.com", EventName="SendCommand", InsightType="ApiCallRateInsight",
        Period=60, StartTime=t0 - dt.timedelta(minutes=2), EndTime=t0 + dt.timedelta(minutes=4),
        DataType="FillWithZeros")
    assert metrics["Values"] == [0, 0, 40, 40, 0, 0]
    assert [t.replace(tzinfo=dt.timezone.utc) for t in metrics["Timestamps"]][2] == t0
    nonzero = client.list_insights_metric_data(
        EventSource="ssm.amazonaws.com", EventName="SendCommand", InsightType="ApiCallRateInsight",
        Period=60, StartTime=t0 - dt.timedelta(minutes=2), EndTime=t0 + dt.timedelta(minutes=4), MaxResults=1)
    assert nonzero["Values"] == [40] and "NextToken" in nonzero
    rest = client.list_insights_metric_data(
        EventSource="ssm.amazonaws.com", EventName="SendCommand", InsightType="ApiCallRateInsight",
        Period=60, StartTime=t0 - dt.timedelta(minutes=2), EndTime=t0 + dt.timedelta(minutes=4), MaxResults=1,
        NextToken=nonzero["NextToken"])
    assert rest["Values"] == [40] and "NextToken" not in rest
    cli = server.aws("cloudtrail", "list-insights-metric-data", "--event-source", "ssm.amazonaws.com", "--event-name",
                     "SendCommand", "--insight-type", "ApiCallRateInsight", "--period", "300",
                     "--start-time", iso(t0 - dt.timedelta(minutes=10)), "--end-time", iso(t0 + dt.timedelta(minutes=10)))
    assert sum(cli["Values"]) == 80 and all(v > 0 for v in cli["Values"])

    # The CLI: the events as a table, the per-minute counts as a chart with the baseline.
    listed = opentrail_cli(server, "insights", "list", "--start-time", iso(t0 - dt.timedelta(hours=1)),
                           "--end-time", iso(t0 + dt.timedelta(hours=1)))
    header, *rows = listed.strip().splitlines()
    assert header.split()[:4] == ["TIME", "STATE", "EVENT", "SOURCE"]
    assert sorted(row.split()[1] for row in rows) == ["End", "Start"]
    start_row = next(row.split() for row in rows if row.split()[1] == "Start")
    assert start_row[0] == iso(t0) and start_row[2:6] == ["ssm.amazonaws.com", "SendCommand", "ApiCallRateInsight", "-"]
    baseline = by_state["Start"]["insightDetails"]["insightContext"]["statistics"]["baseline"]["average"]
    assert float(start_row[6]) == pytest.approx(baseline, abs=1e-4) and float(start_row[7]) == 40
    chart = opentrail_cli(server, "insights", "metrics", "--event-source", "ssm.amazonaws.com",
                          "--event-name", "SendCommand", "--start-time", iso(t0 - dt.timedelta(minutes=2)),
                          "--end-time", iso(t0 + dt.timedelta(minutes=4))).splitlines()
    assert chart[0] == "ssm.amazonaws.com SendCommand ApiCallRateInsight"
    assert chart[1].startswith(f"baseline {baseline:.4f}/min") and f"insight of {iso(t0)}" in chart[1]
    assert chart[2] == "6 periods of 60 s, total 80, largest 40"
    bars = chart[3:]
    assert [line.split()[0] for line in bars] == [iso(t0 + dt.timedelta(minutes=m)) for m in range(-2, 4)]
    assert [line.rsplit(" ", 1)[1] for line in bars] == ["0", "0", "40", "40", "0", "0"]
    assert bars[2].count("█") == 40 and "█" not in bars[0]
    assert "┊" in bars[0]  # the baseline, marked where no bar covers it
    as_json = json.loads(opentrail_cli(server, "insights", "metrics", "--event-source", "ssm.amazonaws.com",
                                       "--event-name", "SendCommand", "--start-time", iso(t0),
                                       "--end-time", iso(t0 + dt.timedelta(minutes=2)), "--output", "json"))
    assert as_json["Values"] == [40, 40] and as_json["BaselineAverage"] == pytest.approx(baseline)

    data = client.list_insights_data(InsightSource=trail_arn("watched", account=server.account_id),
                                     DataType="InsightsEvents", Dimensions={"EventName": "SendCommand"},
                                     StartTime=t0 - dt.timedelta(hours=1), EndTime=t0 + dt.timedelta(hours=1))
    assert len(data["Events"]) == 2

    # The digest chain covers the Insights log files: the real validate-logs accepts them.
    client.stop_logging(Name="watched")
    digest_prefix = f"AWSLogs/{server.account_id}/CloudTrail-Digest/{REGION}/"
    wait_for(lambda: keys(s3, bucket, digest_prefix), what="the final digest")
    listed = set()
    for key in keys(s3, bucket, digest_prefix):
        digest = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        listed |= {f["s3Object"] for f in digest["logFiles"]}
    assert set(keys(s3, bucket, insight_prefix)) <= listed
    result = aws_validate_logs(server, moto, trail_arn("watched", account=server.account_id), start)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INVALID" not in result.stdout


def opentrail_cli(server, *args: str) -> str:
    result = subprocess.run(
        [str(OPENTRAIL_BIN), *args, "--endpoint", server.endpoint, "--data-dir", str(server.data_dir),
         "--region", REGION], capture_output=True, text=True, timeout=60, env=_child_env())
    assert result.returncode == 0, result.stderr
    return result.stdout


def delivered_records(s3, bucket, prefix):
    return [r for key in keys(s3, bucket, prefix)
            for r in json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))["Records"]]


def test_list_insights_metric_data_errors(server):
    client = server.client()
    base = {"EventSource": "ssm.amazonaws.com", "EventName": "SendCommand"}
    assert error_code(client.list_insights_metric_data, InsightType="ApiErrorRateInsight", **base) \
        == "InvalidParameterException"
    assert error_code(client.list_insights_metric_data, InsightType="ApiCallRateInsight", Period=120, **base) \
        == "InvalidParameterException"
    now = dt.datetime.now(dt.timezone.utc)
    assert error_code(client.list_insights_metric_data, InsightType="ApiCallRateInsight", StartTime=now,
                      EndTime=now - dt.timedelta(hours=1), **base) == "InvalidParameterException"
    assert error_code(client.list_insights_metric_data, InsightType="ApiCallRateInsight", NextToken="bogus",
                      **base) == "InvalidParameterException"
    empty = client.list_insights_metric_data(InsightType="ApiCallRateInsight", **base)
    assert empty["Values"] == [] and empty["Timestamps"] == []


def burst_until_start(server, clock, t0):
    """A trail with call-rate Insights, 40 SendCommand calls in each of two minutes from t0,
    the clock moved to the end of the third minute: returns the Start event."""
    client = server.client()
    client.put_insight_selectors(TrailName="watched", InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
    client.start_logging(Name="watched")
    wait_for(lambda: "insights enabled" in server.log_text(), what="insights to start for the account")
    burst = [call(server.account_id, t0 + dt.timedelta(seconds=s)) for s in range(0, 120, 3)]
    burst += [call(server.account_id, t0 + dt.timedelta(seconds=s)) for s in range(1, 120, 3)]
    answer = post_events(server, json.dumps({"Records": burst}).encode()).json()
    assert len(answer["successful"]) == len(burst), answer
    for minute in (1, 2, 3):
        clock.write_text(iso(t0 + dt.timedelta(minutes=minute, seconds=5)))
    started = wait_for(lambda: [e for e in insight_events(server, t0) if e["insightDetails"]["state"] == "Start"],
                       what="the Start event")
    assert len(started) == 1
    return started[0]


def insight_events(server, t0):
    pages = server.client().get_paginator("lookup_events").paginate(
        EventCategory="insight", StartTime=t0 - dt.timedelta(hours=1), EndTime=t0 + dt.timedelta(hours=1))
    return [json.loads(e["CloudTrailEvent"]) for page in pages for e in page["Events"]]


@pytest.mark.parametrize("turn_off", ["stop_logging", "clear_selectors", "delete_trail"])
def test_turning_insights_off_ends_the_open_insight(insights, turn_off):
    server, moto, clock, t0 = insights
    moto.s3().create_bucket(Bucket="insights-bucket")
    client = server.client()
    client.create_trail(Name="watched", S3BucketName="insights-bucket")
    start = burst_until_start(server, clock, t0)
    if turn_off == "stop_logging":
        client.stop_logging(Name="watched")
    elif turn_off == "clear_selectors":
        client.put_insight_selectors(TrailName="watched", InsightSelectors=[])
    else:
        client.delete_trail(Name="watched")
    # AWS's users see an insight end when Insights is turned off; OpenTrail ends it at the
    # first minute not yet judged (the clock is at t0+3m05s: minutes before t0+2m are judged).
    ended = wait_for(lambda: [e for e in insight_events(server, t0) if e["insightDetails"]["state"] == "End"],
                     what="the End event")
    assert len(ended) == 1
    end = ended[0]
    assert end["sharedEventID"] == start["sharedEventID"]
    assert end["eventTime"] == iso(t0 + dt.timedelta(minutes=2))
    statistics = end["insightDetails"]["insightContext"]["statistics"]
    assert statistics["insightDuration"] == 2 and statistics["insight"]["average"] == 40
    # Nothing more once the minutes pass: no second End, no new Start.
    wait_for(lambda: "insights disabled" in server.log_text(), what="insights to stop")
    for minute in range(4, 10):
        clock.write_text(iso(t0 + dt.timedelta(minutes=minute, seconds=5)))
    clock.write_text(iso(t0 + dt.timedelta(minutes=10)))
    post_events(server, json.dumps({"Records": [call(server.account_id, t0 + dt.timedelta(minutes=9))]}).encode())
    server.wait_for_history_caught_up()
    assert sorted(e["insightDetails"]["state"] for e in insight_events(server, t0)) == ["End", "Start"]


@pytest.mark.parametrize("stop", ["restart", "kill9"])
def test_an_insight_started_before_a_restart_ends_once_after_it(insights, stop):
    server, moto, clock, t0 = insights
    moto.s3().create_bucket(Bucket="insights-bucket")
    client = server.client()
    client.create_trail(Name="watched", S3BucketName="insights-bucket")
    start = burst_until_start(server, clock, t0)
    if stop == "restart":
        server.restart()
    else:
        server.kill()
        server.start()
    wait_for(lambda: "insights enabled" in server.log_text(), what="insights to resume")
    for minute in range(4, 12):
        clock.write_text(iso(t0 + dt.timedelta(minutes=minute, seconds=5)))
        time.sleep(0.3)
    ended = wait_for(lambda: [e for e in insight_events(server, t0) if e["insightDetails"]["state"] == "End"],
                     what="the End event after the restart")
    server.wait_for_history_caught_up()
    events = insight_events(server, t0)
    assert sorted(e["insightDetails"]["state"] for e in events) == ["End", "Start"], events
    end = ended[0]
    assert end["sharedEventID"] == start["sharedEventID"]
    assert end["eventTime"] == iso(t0 + dt.timedelta(minutes=2))
    statistics = end["insightDetails"]["insightContext"]["statistics"]
    assert statistics["insightDuration"] == 2 and statistics["insight"]["average"] == 40


def data_call(account: str, time: dt.datetime) -> dict:
    """An S3 GetObject data event (read-only: call-rate Insights on data events count reads too)."""
    record = call(account, time)
    record.update({
        "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "readOnly": True,
        "managementEvent": False, "eventCategory": "Data",
        "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::data-bucket/key"},
                      {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::data-bucket"}],
    })
    return record


S3_DATA_SELECTORS = [{"Name": "objects", "FieldSelectors": [
    {"Field": "eventCategory", "Equals": ["Data"]},
    {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}]


def test_insights_on_data_events_of_a_trail(insights):
    server, moto, clock, t0 = insights
    moto.s3().create_bucket(Bucket="insights-bucket")
    client = server.client()
    client.create_trail(Name="objects", S3BucketName="insights-bucket")
    client.put_event_selectors(TrailName="objects", AdvancedEventSelectors=S3_DATA_SELECTORS)
    put = client.put_insight_selectors(TrailName="objects", InsightSelectors=[
        {"InsightType": "ApiCallRateInsight", "EventCategories": ["Data"]}])
    assert put["InsightSelectors"] == [{"InsightType": "ApiCallRateInsight", "EventCategories": ["Data"]}]
    client.start_logging(Name="objects")
    wait_for(lambda: "insights enabled" in server.log_text(), what="insights to start for the account")

    # 40 GetObject calls in each of two minutes, and as many SendCommand management calls,
    # which this trail neither logs nor analyses.
    burst = [data_call(server.account_id, t0 + dt.timedelta(seconds=s)) for s in range(0, 120, 3)]
    burst += [data_call(server.account_id, t0 + dt.timedelta(seconds=s)) for s in range(1, 120, 3)]
    burst += [call(server.account_id, t0 + dt.timedelta(seconds=s)) for s in range(0, 120, 2)]
    answer = post_events(server, json.dumps({"Records": burst}).encode()).json()
    assert len(answer["successful"]) == len(burst), answer
    for minute in range(1, 12):
        clock.write_text(iso(t0 + dt.timedelta(minutes=minute, seconds=5)))
        time.sleep(0.2)
    events = wait_for(lambda: (found := insight_events(server, t0)) and len(found) == 2 and found,
                      what="the data events' Start and End")
    server.wait_for_history_caught_up()
    events = insight_events(server, t0)
    assert sorted(e["insightDetails"]["state"] for e in events) == ["End", "Start"], events
    for event in events:
        assert event["eventCategory"] == "Insight" and event["eventType"] == "AwsCloudTrailInsight"
        assert event["insightDetails"]["eventSource"] == "s3.amazonaws.com"
        assert event["insightDetails"]["eventName"] == "GetObject"
        assert event["insightDetails"]["insightType"] == "ApiCallRateInsight"
        assert "insightSource" not in event

    # ListInsightsData (event history, category insight) lists them for the trail.
    data = client.list_insights_data(InsightSource=trail_arn("objects", account=server.account_id),
                                     DataType="InsightsEvents", Dimensions={"EventSource": "s3.amazonaws.com"},
                                     StartTime=t0 - dt.timedelta(hours=1), EndTime=t0 + dt.timedelta(hours=1))
    assert sorted(json.loads(e["CloudTrailEvent"])["insightDetails"]["state"] for e in data["Events"]) \
        == ["End", "Start"]

    # ListInsightsMetricData with TrailName: the data events' counts, and the trail's ARN.
    metrics = client.list_insights_metric_data(
        TrailName="objects", EventSource="s3.amazonaws.com", EventName="GetObject",
        InsightType="ApiCallRateInsight", Period=60, StartTime=t0 - dt.timedelta(minutes=1),
        EndTime=t0 + dt.timedelta(minutes=3), DataType="FillWithZeros")
    assert metrics["Values"] == [0, 40, 40, 0]
    assert metrics["TrailARN"] == trail_arn("objects", account=server.account_id)
    cli = server.aws("cloudtrail", "list-insights-metric-data", "--trail-name", "objects",
                     "--event-source", "s3.amazonaws.com", "--event-name", "GetObject",
                     "--insight-type", "ApiCallRateInsight", "--period", "60",
                     "--start-time", iso(t0), "--end-time", iso(t0 + dt.timedelta(minutes=2)))
    assert cli["Values"] == [40, 40]
    # The management calls the trail does not log were not counted.
    unlogged = client.list_insights_metric_data(
        EventSource="ssm.amazonaws.com", EventName="SendCommand", InsightType="ApiCallRateInsight",
        Period=60, StartTime=t0 - dt.timedelta(minutes=1), EndTime=t0 + dt.timedelta(minutes=3))
    assert unlogged["Values"] == []
    # TrailName names a trail with Insights on data events, and an existing one.
    client.create_trail(Name="managed", S3BucketName="insights-bucket")
    client.put_insight_selectors(TrailName="managed", InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
    base = {"EventSource": "s3.amazonaws.com", "EventName": "GetObject", "InsightType": "ApiCallRateInsight"}
    assert error_code(client.list_insights_metric_data, TrailName="managed", **base) == "InvalidParameterException"
    assert error_code(client.list_insights_metric_data, TrailName="nosuchtrail", **base) == "TrailNotFoundException"


def test_insight_selector_rules_for_trails_and_event_data_stores(insights):
    server, moto, _, _ = insights
    moto.s3().create_bucket(Bucket="any-bucket")
    client = server.client()
    client.create_trail(Name="rules", S3BucketName="any-bucket")
    # Data events Insights need the trail to log data events (it logs management only).
    assert error_code(client.put_insight_selectors, TrailName="rules", InsightSelectors=[
        {"InsightType": "ApiErrorRateInsight", "EventCategories": ["Data"]}]) == "InvalidInsightSelectorsException"
    assert error_code(client.put_insight_selectors, TrailName="rules", InsightSelectors=[
        {"InsightType": "ApiCallRateInsight", "EventCategories": ["NetworkActivity"]}]) \
        == "InvalidInsightSelectorsException"
    # Call-rate Insights on management events need write management events logged.
    client.put_event_selectors(TrailName="rules", EventSelectors=[
        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}])
    assert error_code(client.put_insight_selectors, TrailName="rules", InsightSelectors=[
        {"InsightType": "ApiCallRateInsight"}]) == "InvalidInsightSelectorsException"
    client.put_insight_selectors(TrailName="rules", InsightSelectors=[{"InsightType": "ApiErrorRateInsight"}])
    client.put_event_selectors(TrailName="rules", AdvancedEventSelectors=S3_DATA_SELECTORS + [
        {"Name": "management", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}])
    both = client.put_insight_selectors(TrailName="rules", InsightSelectors=[
        {"InsightType": "ApiCallRateInsight", "EventCategories": ["Management", "Data"]},
        {"InsightType": "ApiErrorRateInsight", "EventCategories": ["Data"]}])
    assert client.get_insight_selectors(TrailName="rules")["InsightSelectors"] == both["InsightSelectors"]

    # Event data stores: a source of management events and a destination of Insights events.
    source = client.create_event_data_store(Name="source", TerminationProtectionEnabled=False)["EventDataStoreArn"]
    destination = client.create_event_data_store(
        Name="insights", TerminationProtectionEnabled=False,
        AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Insight"]}]}],
    )["EventDataStoreArn"]
    selectors = [{"InsightType": "ApiCallRateInsight"}]
    assert error_code(client.get_insight_selectors, EventDataStore=source) == "InsightNotEnabledException"
    assert error_code(client.put_insight_selectors, EventDataStore=source, InsightSelectors=selectors) \
        == "InvalidParameterCombinationException"
    assert error_code(client.put_insight_selectors, InsightsDestination=destination, InsightSelectors=selectors) \
        == "InvalidParameterCombinationException"
    assert error_code(client.put_insight_selectors, TrailName="rules", EventDataStore=source,
                      InsightsDestination=destination, InsightSelectors=selectors) \
        == "InvalidParameterCombinationException"
    assert error_code(client.put_insight_selectors, EventDataStore=source, InsightsDestination=source,
                      InsightSelectors=selectors) == "InvalidInsightSelectorsException"
    assert error_code(client.put_insight_selectors, EventDataStore=destination, InsightsDestination=destination,
                      InsightSelectors=selectors) == "InvalidInsightSelectorsException"
    assert error_code(client.put_insight_selectors, EventDataStore=source, InsightsDestination=destination,
                      InsightSelectors=[{"InsightType": "ApiCallRateInsight", "EventCategories": ["Data"]}]) \
        == "InvalidInsightSelectorsException"
    assert error_code(client.put_insight_selectors, EventDataStore="0000aaaa-1111-2222-3333-444455556666",
                      InsightsDestination=destination, InsightSelectors=selectors) == "InvalidParameterException"
    put = server.aws("cloudtrail", "put-insight-selectors", "--event-data-store", source.rsplit("/", 1)[1],
                     "--insights-destination", destination, "--insight-selectors",
                     json.dumps([{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]))
    assert put["EventDataStoreArn"] == source and put["InsightsDestination"] == destination
    got = client.get_insight_selectors(EventDataStore=source)
    assert got["InsightsDestination"] == destination
    assert [s["InsightType"] for s in got["InsightSelectors"]] == ["ApiCallRateInsight", "ApiErrorRateInsight"]
    client.put_insight_selectors(EventDataStore=source, InsightSelectors=[])
    assert error_code(client.get_insight_selectors, EventDataStore=source) == "InsightNotEnabledException"


def test_event_data_store_insights_are_written_into_the_destination_store(insights):
    server, moto, clock, t0 = insights
    client = server.client()
    source = client.create_event_data_store(Name="source", TerminationProtectionEnabled=False)["EventDataStoreArn"]
    destination = client.create_event_data_store(
        Name="insights", TerminationProtectionEnabled=False,
        AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Insight"]}]}],
    )["EventDataStoreArn"]
    client.put_insight_selectors(EventDataStore=source, InsightsDestination=destination,
                                 InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
    wait_for(lambda: "insights enabled" in server.log_text(), what="insights to start for the store")
    burst = [call(server.account_id, t0 + dt.timedelta(seconds=s)) for s in range(0, 120, 3)]
    burst += [call(server.account_id, t0 + dt.timedelta(seconds=s)) for s in range(1, 120, 3)]
    answer = post_events(server, json.dumps({"Records": burst}).encode()).json()
    assert len(answer["successful"]) == len(burst), answer
    for minute in range(1, 12):
        clock.write_text(iso(t0 + dt.timedelta(minutes=minute, seconds=5)))
        time.sleep(0.2)

    store = destination.rsplit("/", 1)[1]
    sql = (f"SELECT eventType, eventCategory, insightSource, insightDetails.state, insightDetails.eventName, "
           f"insightDetails.insightType, sharedEventID, eventTime FROM {store} ORDER BY eventTime")

    def rows():
        query_id = client.start_query(QueryStatement=sql)["QueryId"]
        described = wait_for(lambda: (d := client.describe_query(QueryId=query_id))["QueryStatus"]
                             in ("FINISHED", "FAILED", "CANCELLED", "TIMED_OUT") and d, what="the query")
        assert described["QueryStatus"] == "FINISHED", described
        found = client.get_query_results(QueryId=query_id)["QueryResultRows"]
        return [{k: v for column in row for k, v in column.items()} for row in found]

    found = wait_for(lambda: (r := rows()) and len(r) == 2 and r, what="Start and End in the destination store")
    start, end = found
    for row in found:
        assert row["eventType"] == "AwsCloudTrailInsight" and row["eventCategory"] == "Insight"
        assert row["insightSource"] == source
        assert "SendCommand" in row.values() and "ApiCallRateInsight" in row.values()
    assert "Start" in start.values() and "End" in end.values()
    assert start["sharedEventID"] == end["sharedEventID"]
    assert start["eventTime"].startswith(t0.strftime("%Y-%m-%d %H:%M:%S"))
    # Not event history's, nor the source store's.
    assert insight_events(server, t0) == []
