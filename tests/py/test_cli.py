"""The CloudTrail trail API through the real AWS CLI (`aws cloudtrail ...`), against the
real `opentrail` binary; the same scenarios as test_boto3.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    OTHER_REGION,
    REGION,
    error_code,
    run_aws_cli,
    trail_arn,
)

BUCKET = "cli-logs"
KMS_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:CloudTrail/cli:*"
LOG_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/CloudTrail_CloudWatchLogs_Role"
DEFAULT_EVENT_SELECTORS = [
    {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [], "ExcludeManagementEventSources": []}
]
BASIC_SELECTORS = [
    {
        "ReadWriteType": "WriteOnly",
        "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::audited-bucket/"]}],
        "ExcludeManagementEventSources": ["kms.amazonaws.com"],
    }
]
ADVANCED_SELECTORS = [
    {
        "Name": "s3 object data events",
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::audited-bucket/"]},
        ],
    }
]


class Cli:
    """`aws cloudtrail <command>` against one server, from a chosen region."""

    def __init__(self, server, region: str = REGION, credentials_file: Path | None = None):
        self.server = server
        self.region = region
        self.credentials_file = credentials_file

    def __call__(self, command: str, *args: str):
        return self.server.aws(
            "cloudtrail", command, *args, region=self.region, credentials_file=self.credentials_file
        )

    def in_region(self, region: str) -> "Cli":
        return Cli(self.server, region, self.credentials_file)

    def create(self, name: str, *args: str, bucket: str = BUCKET) -> dict:
        # "--name=..." so that names starting with a dash reach the server.
        return self("create-trail", f"--name={name}", "--s3-bucket-name", bucket, *args)


@pytest.fixture
def cli(server) -> Cli:
    server.create_bucket(BUCKET)
    return Cli(server)


def tags_of(cli: Cli, arn: str) -> list[dict]:
    return cli("list-tags", "--resource-id-list", arn)["ResourceTagList"][0]["TagsList"]


# ----------------------------------------------------------------- create, get, describe, list, delete


def test_trail_lifecycle_by_name_and_arn(cli):
    arn = trail_arn("cli-trail")
    created = cli.create("cli-trail", "--s3-key-prefix", "audit")
    assert created == {
        "Name": "cli-trail",
        "S3BucketName": BUCKET,
        "S3KeyPrefix": "audit",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": False,
        "TrailARN": arn,
        "LogFileValidationEnabled": False,
        "IsOrganizationTrail": False,
    }
    expected = {
        **created,
        "HomeRegion": REGION,
        "HasCustomEventSelectors": False,
        "HasInsightSelectors": False,
    }
    assert cli("get-trail", "--name", "cli-trail")["Trail"] == expected
    assert cli("get-trail", "--name", arn)["Trail"] == expected
    assert cli("describe-trails")["trailList"] == [expected]
    assert cli("describe-trails", "--trail-name-list", arn)["trailList"] == [expected]
    assert cli("list-trails")["Trails"] == [{"TrailARN": arn, "Name": "cli-trail", "HomeRegion": REGION}]
    assert error_code(cli.create, "cli-trail") == "TrailAlreadyExistsException"

    assert cli("delete-trail", "--name", arn) == {}
    assert error_code(cli, "get-trail", "--name", "cli-trail") == "TrailNotFoundException"
    assert cli("describe-trails")["trailList"] == []


def test_create_trail_with_every_option(cli):
    cli.server.admin("topics", "create", "trail-alerts")
    created = cli.create(
        "cli-full",
        "--s3-key-prefix", "prefix",
        "--sns-topic-name", "trail-alerts",
        "--include-global-service-events",
        "--is-multi-region-trail",
        "--enable-log-file-validation",
        "--cloud-watch-logs-log-group-arn", LOG_GROUP_ARN,
        "--cloud-watch-logs-role-arn", LOG_ROLE_ARN,
        "--kms-key-id", KMS_KEY,
        "--no-is-organization-trail",
        "--tags-list", "Key=team,Value=security", "Key=env,Value=prod",
    )
    assert created == {
        "Name": "cli-full",
        "S3BucketName": BUCKET,
        "S3KeyPrefix": "prefix",
        "SnsTopicName": "trail-alerts",
        "SnsTopicARN": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:trail-alerts",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": True,
        "TrailARN": trail_arn("cli-full"),
        "LogFileValidationEnabled": True,
        "CloudWatchLogsLogGroupArn": LOG_GROUP_ARN,
        "CloudWatchLogsRoleArn": LOG_ROLE_ARN,
        "KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{KMS_KEY}",
        "IsOrganizationTrail": False,
    }
    assert tags_of(cli, trail_arn("cli-full")) == [
        {"Key": "team", "Value": "security"},
        {"Key": "env", "Value": "prod"},
    ]


def test_invalid_names_and_arns(cli):
    for name in ["ab", "-leading-dash", "double--dash", "192.168.5.4", "has space"]:
        assert error_code(cli.create, name) == "InvalidTrailNameException", name
    assert error_code(cli, "get-trail", "--name", "x" * 129) == "InvalidTrailNameException"
    for arn in [f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}", f"arn:aws:s3:{REGION}:{ACCOUNT_ID}:trail/some-trail"]:
        assert error_code(cli, "get-trail", "--name", arn) == "CloudTrailARNInvalidException", arn
        assert error_code(cli, "delete-trail", "--name", arn) == "CloudTrailARNInvalidException", arn


def test_unknown_trail_is_not_found_by_every_operation(cli):
    for name in ["no-such-trail", trail_arn("no-such-trail")]:
        for command in ["get-trail", "get-trail-status", "delete-trail", "start-logging", "stop-logging"]:
            assert error_code(cli, command, "--name", name) == "TrailNotFoundException", (command, name)
    name = trail_arn("no-such-trail")
    assert error_code(cli, "update-trail", "--name", name, "--s3-key-prefix", "p") == "TrailNotFoundException"
    assert error_code(cli, "get-event-selectors", "--trail-name", name) == "TrailNotFoundException"
    assert (
        error_code(cli, "put-event-selectors", "--trail-name", name, "--event-selectors", json.dumps(BASIC_SELECTORS))
        == "TrailNotFoundException"
    )
    assert error_code(cli, "get-insight-selectors", "--trail-name", name) == "TrailNotFoundException"
    assert (
        error_code(
            cli, "put-insight-selectors", "--trail-name", name,
            "--insight-selectors", '[{"InsightType": "ApiCallRateInsight"}]',
        )
        == "TrailNotFoundException"
    )


def test_arn_of_another_account_is_not_found(cli):
    cli.create("mine", "--is-multi-region-trail")
    foreign = trail_arn("mine", account=OTHER_ACCOUNT_ID)
    for command in ["get-trail", "get-trail-status", "start-logging", "delete-trail"]:
        assert error_code(cli, command, "--name", foreign) == "TrailNotFoundException", command
    assert error_code(cli, "get-event-selectors", "--trail-name", foreign) == "TrailNotFoundException"
    assert (
        error_code(cli, "add-tags", "--resource-id", foreign, "--tags-list", "Key=k,Value=v")
        == "ResourceNotFoundException"
    )
    assert cli("get-trail", "--name", "mine")["Trail"]["TrailARN"] == trail_arn("mine")


# ----------------------------------------------------------------- validation of settings


def test_s3_bucket_checks_in_the_embedded_store(server, cli):
    assert error_code(cli.create, "needs-bucket", bucket="not-created-yet") == "S3BucketDoesNotExistException"
    server.create_bucket("not-created-yet")
    assert cli.create("needs-bucket", bucket="not-created-yet")["S3BucketName"] == "not-created-yet"
    assert error_code(cli.create, "bad-bucket", bucket="Bad_Bucket") == "InvalidS3BucketNameException"
    assert (
        error_code(cli, "update-trail", "--name", "needs-bucket", "--s3-bucket-name", "missing-bucket")
        == "S3BucketDoesNotExistException"
    )
    assert cli.create("prefix-200", "--s3-key-prefix", "p" * 200)["S3KeyPrefix"] == "p" * 200
    assert error_code(cli.create, "prefix-201", "--s3-key-prefix", "p" * 201) == "InvalidS3PrefixException"


@pytest.mark.parametrize(
    "args, code",
    [
        (["--sns-topic-name", "not a topic!"], "InvalidSnsTopicNameException"),
        (["--kms-key-id", "not-a-key"], "InvalidKmsKeyIdException"),
        (["--cloud-watch-logs-log-group-arn", LOG_GROUP_ARN], "InvalidCloudWatchLogsRoleArnException"),
        (["--cloud-watch-logs-role-arn", LOG_ROLE_ARN], "InvalidCloudWatchLogsLogGroupArnException"),
        (["--is-multi-region-trail", "--no-include-global-service-events"], "InvalidParameterCombinationException"),
        (["--is-organization-trail"], "OrganizationsNotInUseException"),
    ],
)
def test_invalid_trail_settings(cli, args, code):
    assert error_code(cli.create, "settings-check", *args) == code
    assert cli("list-trails")["Trails"] == []


def test_update_trail(cli):
    cli.create("to-update", "--s3-key-prefix", "old")
    updated = cli(
        "update-trail", "--name", trail_arn("to-update"),
        "--s3-key-prefix", "new/prefix",
        "--enable-log-file-validation",
        "--is-multi-region-trail",
        "--kms-key-id", "alias/trail-key",
    )
    assert updated == {
        "Name": "to-update",
        "S3BucketName": BUCKET,
        "S3KeyPrefix": "new/prefix",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": True,
        "TrailARN": trail_arn("to-update"),
        "LogFileValidationEnabled": True,
        "KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/trail-key",
        "IsOrganizationTrail": False,
    }
    trail = cli("get-trail", "--name", "to-update")["Trail"]
    assert trail["S3KeyPrefix"] == "new/prefix" and trail["IsMultiRegionTrail"] is True
    assert (
        error_code(cli, "update-trail", "--name", "to-update", "--no-include-global-service-events")
        == "InvalidParameterCombinationException"
    )


# ----------------------------------------------------------------- regions


def test_regions(cli):
    cli.create("everywhere", "--is-multi-region-trail")
    cli.create("home-only")
    eu = cli.in_region(OTHER_REGION)

    shadows = eu("describe-trails")["trailList"]
    assert [(t["Name"], t["HomeRegion"]) for t in shadows] == [("everywhere", REGION)]
    assert eu("describe-trails", "--no-include-shadow-trails")["trailList"] == []
    assert eu("get-trail", "--name", "everywhere")["Trail"]["TrailARN"] == trail_arn("everywhere")
    assert eu("get-trail", "--name", trail_arn("everywhere"))["Trail"]["HomeRegion"] == REGION
    assert error_code(eu, "get-trail", "--name", "home-only") == "TrailNotFoundException"
    assert error_code(eu, "get-trail", "--name", trail_arn("home-only")) == "TrailNotFoundException"
    listed = sorted((t["Name"], t["HomeRegion"]) for t in eu("list-trails")["Trails"])
    assert listed == [("everywhere", REGION), ("home-only", REGION)]

    for command in ["delete-trail", "start-logging", "stop-logging"]:
        assert error_code(eu, command, "--name", "everywhere") == "InvalidHomeRegionException", command
    assert (
        error_code(eu, "update-trail", "--name", trail_arn("everywhere"), "--s3-key-prefix", "p")
        == "InvalidHomeRegionException"
    )
    assert (
        error_code(eu, "put-event-selectors", "--trail-name", "everywhere",
                   "--advanced-event-selectors", json.dumps(ADVANCED_SELECTORS))
        == "InvalidHomeRegionException"
    )
    assert (
        error_code(eu, "put-insight-selectors", "--trail-name", "everywhere",
                   "--insight-selectors", '[{"InsightType": "ApiCallRateInsight"}]')
        == "InvalidHomeRegionException"
    )
    assert cli("get-trail-status", "--name", "everywhere")["IsLogging"] is False


def test_five_trails_per_region_counting_multi_region_trails(cli):
    cli.create("global-1", "--is-multi-region-trail")
    eu = cli.in_region(OTHER_REGION)
    for i in range(4):
        eu.create(f"eu-{i}")
    assert error_code(eu.create, "eu-4") == "MaximumNumberOfTrailsExceededException"
    assert error_code(cli.in_region("us-west-2").create, "global-2", "--is-multi-region-trail") == (
        "MaximumNumberOfTrailsExceededException"
    )
    cli("delete-trail", "--name", "global-1")
    assert eu.create("eu-4")["TrailARN"] == trail_arn("eu-4", region=OTHER_REGION)


def test_list_trails_is_paginated_automatically(start_server):
    server = start_server("--list-trails-page-size", "2")
    server.create_bucket(BUCKET)
    cli = Cli(server)
    expected = []
    for region, names in [(REGION, ["a-trail", "b-trail", "c-trail"]), (OTHER_REGION, ["d-trail", "e-trail"])]:
        for name in names:
            cli.in_region(region).create(name)
            expected.append({"TrailARN": trail_arn(name, region=region), "Name": name, "HomeRegion": region})
    listed = cli("list-trails")
    assert "NextToken" not in listed
    assert sorted(listed["Trails"], key=lambda t: t["TrailARN"]) == sorted(expected, key=lambda t: t["TrailARN"])
    # --max-items makes the CLI hand out its own token; following it yields the rest.
    first = cli("list-trails", "--max-items", "3")
    assert len(first["Trails"]) == 3 and first["NextToken"]
    rest = cli("list-trails", "--starting-token", first["NextToken"])
    assert len(rest["Trails"]) == 2
    assert {t["TrailARN"] for t in first["Trails"] + rest["Trails"]} == {t["TrailARN"] for t in expected}


# ----------------------------------------------------------------- tags


def test_tags(cli):
    cli.create("tagged", "--tags-list", "Key=zeta,Value=1", "Key=alpha,Value=2")
    arn = trail_arn("tagged")
    assert cli("add-tags", "--resource-id", arn, "--tags-list", "Key=mike,Value=3", "Key=alpha,Value=changed") == {}
    assert tags_of(cli, arn) == [
        {"Key": "zeta", "Value": "1"},
        {"Key": "alpha", "Value": "changed"},
        {"Key": "mike", "Value": "3"},
    ]
    cli("remove-tags", "--resource-id", arn, "--tags-list", "Key=alpha")
    assert tags_of(cli, arn) == [{"Key": "zeta", "Value": "1"}, {"Key": "mike", "Value": "3"}]
    assert (
        error_code(cli, "add-tags", "--resource-id", arn, "--tags-list", "Key=aws:reserved,Value=v")
        == "InvalidTagParameterException"
    )
    unknown = trail_arn("never-created")
    assert error_code(cli, "list-tags", "--resource-id-list", unknown) == "ResourceNotFoundException"
    assert error_code(cli, "remove-tags", "--resource-id", unknown, "--tags-list", "Key=k") == "ResourceNotFoundException"


def test_fifty_tags_per_trail(cli):
    cli.create("many-tags")
    arn = trail_arn("many-tags")
    fifty = [{"Key": f"key-{i:02}", "Value": f"value-{i}"} for i in range(50)]
    cli("add-tags", "--resource-id", arn, "--tags-list", json.dumps(fifty))
    assert tags_of(cli, arn) == fifty
    assert (
        error_code(cli, "add-tags", "--resource-id", arn, "--tags-list", "Key=one-too-many,Value=x")
        == "TagsLimitExceededException"
    )
    assert len(tags_of(cli, arn)) == 50


# ----------------------------------------------------------------- selectors


def test_event_selectors(cli):
    cli.create("selective")
    arn = trail_arn("selective")
    assert cli("get-event-selectors", "--trail-name", "selective") == {
        "TrailARN": arn,
        "EventSelectors": DEFAULT_EVENT_SELECTORS,
    }
    put = cli("put-event-selectors", "--trail-name", "selective", "--event-selectors", json.dumps(BASIC_SELECTORS))
    assert put == {"TrailARN": arn, "EventSelectors": BASIC_SELECTORS}
    assert cli("get-event-selectors", "--trail-name", arn) == {"TrailARN": arn, "EventSelectors": BASIC_SELECTORS}
    assert cli("get-trail", "--name", "selective")["Trail"]["HasCustomEventSelectors"] is True

    put = cli(
        "put-event-selectors", "--trail-name", arn, "--advanced-event-selectors", json.dumps(ADVANCED_SELECTORS)
    )
    assert put == {"TrailARN": arn, "AdvancedEventSelectors": ADVANCED_SELECTORS}
    assert cli("get-event-selectors", "--trail-name", "selective") == {
        "TrailARN": arn,
        "AdvancedEventSelectors": ADVANCED_SELECTORS,
    }
    bad = [{"Name": "x", "FieldSelectors": [{"Field": "notAField", "Equals": ["y"]}]}]
    assert (
        error_code(cli, "put-event-selectors", "--trail-name", arn, "--advanced-event-selectors", json.dumps(bad))
        == "InvalidEventSelectorsException"
    )
    assert (
        error_code(
            cli, "put-event-selectors", "--trail-name", arn,
            "--event-selectors", json.dumps(BASIC_SELECTORS),
            "--advanced-event-selectors", json.dumps(ADVANCED_SELECTORS),
        )
        == "InvalidEventSelectorsException"
    )
    assert cli("get-event-selectors", "--trail-name", arn)["AdvancedEventSelectors"] == ADVANCED_SELECTORS


def test_insight_selectors(cli):
    cli.create("insightful")
    arn = trail_arn("insightful")
    assert error_code(cli, "get-insight-selectors", "--trail-name", "insightful") == "InsightNotEnabledException"
    selectors = [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]
    put = cli("put-insight-selectors", "--trail-name", "insightful", "--insight-selectors", json.dumps(selectors))
    assert put == {"TrailARN": arn, "InsightSelectors": selectors}
    assert cli("get-insight-selectors", "--trail-name", arn) == {"TrailARN": arn, "InsightSelectors": selectors}
    assert cli("describe-trails")["trailList"][0]["HasInsightSelectors"] is True
    assert (
        error_code(cli, "put-insight-selectors", "--trail-name", arn,
                   "--insight-selectors", '[{"InsightType": "NotAnInsight"}]')
        == "InvalidInsightSelectorsException"
    )


# ----------------------------------------------------------------- logging


def test_start_and_stop_logging(cli):
    cli.create("logging")
    status = cli("get-trail-status", "--name", "logging")
    assert status["IsLogging"] is False
    assert status["TimeLoggingStarted"] == "" and status["TimeLoggingStopped"] == ""
    assert cli("start-logging", "--name", trail_arn("logging")) == {}
    status = cli("get-trail-status", "--name", trail_arn("logging"))
    assert status["IsLogging"] is True
    started = dt.datetime.fromisoformat(status["TimeLoggingStarted"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.timezone.utc) - started) < dt.timedelta(minutes=5)
    assert cli("stop-logging", "--name", "logging") == {}
    status = cli("get-trail-status", "--name", "logging")
    assert status["IsLogging"] is False
    assert dt.datetime.fromisoformat(status["TimeLoggingStopped"].replace("Z", "+00:00")) >= started


# ----------------------------------------------------------------- S3-compatible store (moto)


def test_trail_buckets_in_an_s3_compatible_server(start_server, moto_server):
    server = start_server(*moto_server.opentrail_args())
    moto_server.s3().create_bucket(Bucket="cli-moto-logs")
    cli = Cli(server)
    assert cli.create("on-moto", bucket="cli-moto-logs")["S3BucketName"] == "cli-moto-logs"
    assert error_code(cli.create, "missing", bucket="cli-moto-missing") == "S3BucketDoesNotExistException"
    listed = server.admin("buckets", "list", *moto_server.opentrail_args()).stdout.split()
    assert "cli-moto-logs" in listed and "cli-moto-missing" not in listed


def test_the_object_store_is_an_explicit_choice(server, moto_server):
    """S3 settings without `--object-store s3` (or s3 without an endpoint) fail and say the fix."""
    s3_settings = moto_server.opentrail_args()[2:]  # the --s3-* flags without --object-store s3
    result = server.admin("buckets", "list", *s3_settings, check=False)
    assert result.returncode != 0
    assert "--s3-endpoint" in result.stderr and "add --object-store s3" in result.stderr, result.stderr
    result = server.admin("buckets", "list", "--object-store", "file", "--s3-region", "eu-west-1", check=False)
    assert result.returncode != 0 and "--s3-region given with --object-store file" in result.stderr, result.stderr
    result = server.admin("buckets", "list", "--object-store", "s3", check=False)
    assert result.returncode != 0 and "--object-store s3 needs --s3-endpoint" in result.stderr, result.stderr


# ----------------------------------------------------------------- authentication


def write_credentials(path: Path, access_key_id: str, secret: str) -> Path:
    path.write_text(f"[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n")
    return path


def test_authentication(server, cli, tmp_path):
    root = server.root
    wrong_secret = write_credentials(tmp_path / "wrong-secret", root.access_key_id, "x" * 40)
    assert error_code(Cli(server, credentials_file=wrong_secret), "describe-trails") == "InvalidSignatureException"
    unknown = write_credentials(tmp_path / "unknown", "AKIAUNKNOWNUNKNOWN00", "y" * 40)
    assert error_code(Cli(server, credentials_file=unknown), "describe-trails") == "UnrecognizedClientException"

    key = server.create_key("bob")
    bob_file = write_credentials(tmp_path / "bob", key["AccessKeyId"], key["SecretAccessKey"])
    bob = Cli(server, credentials_file=bob_file)
    assert bob.create("bobs-trail")["TrailARN"] == trail_arn("bobs-trail")
    assert [t["Name"] for t in cli("list-trails")["Trails"]] == ["bobs-trail"]
    server.admin("keys", "delete", key["AccessKeyId"])
    assert error_code(bob, "describe-trails") == "UnrecognizedClientException"


def test_open_auth_accepts_any_key_but_keeps_the_scope_region(start_server, tmp_path):
    server = start_server("--auth", "open")
    server.create_bucket(BUCKET)
    anyone = write_credentials(tmp_path / "anyone", "AKIAANYONEATALL00000", "whatever")
    created = run_aws_cli(
        "cloudtrail", "create-trail", "--name", "open-trail", "--s3-bucket-name", BUCKET,
        endpoint=server.endpoint, region=OTHER_REGION, credentials_file=anyone,
    )
    assert created["TrailARN"] == trail_arn("open-trail", region=OTHER_REGION)
    home = Cli(server, region=REGION, credentials_file=anyone)
    assert error_code(home, "get-trail", "--name", "open-trail") == "TrailNotFoundException"


# ----------------------------------------------------------------- restart


def test_state_survives_a_restart(start_server):
    server = start_server()
    server.create_bucket(BUCKET)
    cli = Cli(server)
    cli.create("durable", "--is-multi-region-trail", "--tags-list", "Key=b,Value=1", "Key=a,Value=2")
    # Management events too: AWS refuses Insights on a trail that does not log them.
    selectors = [*ADVANCED_SELECTORS, {"Name": "management", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]}]}]
    cli("put-event-selectors", "--trail-name", "durable", "--advanced-event-selectors", json.dumps(selectors))
    cli("put-insight-selectors", "--trail-name", "durable", "--insight-selectors", '[{"InsightType": "ApiCallRateInsight"}]')
    cli("start-logging", "--name", "durable")
    trail = cli("get-trail", "--name", "durable")["Trail"]
    status = cli("get-trail-status", "--name", "durable")

    server.restart()
    assert cli("get-trail", "--name", "durable")["Trail"] == trail
    assert cli("get-trail-status", "--name", "durable") == status
    assert tags_of(cli, trail_arn("durable")) == [{"Key": "b", "Value": "1"}, {"Key": "a", "Value": "2"}]
    assert cli("get-event-selectors", "--trail-name", "durable")["AdvancedEventSelectors"] == selectors
    assert cli("get-insight-selectors", "--trail-name", "durable")["InsightSelectors"] == [
        {"InsightType": "ApiCallRateInsight"}
    ]
