"""The CloudTrail trail API through boto3, against the real `opentrail` binary.

test_cli.py runs the same scenarios through the AWS CLI.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from conftest import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    OTHER_REGION,
    REGION,
    Credentials,
    error_code,
    trail_arn,
)

BUCKET = "opentrail-logs"
KMS_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:CloudTrail/opentrail:*"
LOG_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/CloudTrail_CloudWatchLogs_Role"

DEFAULT_EVENT_SELECTORS = [
    {
        "ReadWriteType": "All",
        "IncludeManagementEvents": True,
        "DataResources": [],
        "ExcludeManagementEventSources": [],
    }
]
BASIC_SELECTORS = [
    {
        "ReadWriteType": "WriteOnly",
        "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::audited-bucket/"]}],
        "ExcludeManagementEventSources": ["kms.amazonaws.com"],
    },
    {
        "ReadWriteType": "ReadOnly",
        "IncludeManagementEvents": False,
        "DataResources": [{"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]}],
        "ExcludeManagementEventSources": [],
    },
]
ADVANCED_SELECTORS = [
    {
        "Name": "management writes",
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "readOnly", "Equals": ["false"]},
        ],
    },
    {
        "Name": "s3 object data events",
        "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::audited-bucket/"]},
        ],
    },
]


def body(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


@pytest.fixture
def ct(server):
    """A us-east-1 client of a fresh server whose embedded store has BUCKET."""
    server.create_bucket(BUCKET)
    for topic in ("trail-alerts", "alerts"):
        server.admin("topics", "create", topic)
    return server.client()


def make_trail(client, name: str, **kwargs) -> dict:
    kwargs.setdefault("S3BucketName", BUCKET)
    return body(client.create_trail(Name=name, **kwargs))


# ----------------------------------------------------------------- create, get, describe, list, delete


def test_create_trail_returns_its_settings(ct):
    created = make_trail(ct, "basic-trail")
    assert created == {
        "Name": "basic-trail",
        "S3BucketName": BUCKET,
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": False,
        "TrailARN": trail_arn("basic-trail"),
        "LogFileValidationEnabled": False,
        "IsOrganizationTrail": False,
    }


def test_trail_lifecycle_by_name_and_arn(ct):
    make_trail(ct, "lifecycle", S3KeyPrefix="audit/logs")
    arn = trail_arn("lifecycle")
    expected = {
        "Name": "lifecycle",
        "S3BucketName": BUCKET,
        "S3KeyPrefix": "audit/logs",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": False,
        "HomeRegion": REGION,
        "TrailARN": arn,
        "LogFileValidationEnabled": False,
        "HasCustomEventSelectors": False,
        "HasInsightSelectors": False,
        "IsOrganizationTrail": False,
    }
    assert ct.get_trail(Name="lifecycle")["Trail"] == expected
    assert ct.get_trail(Name=arn)["Trail"] == expected
    assert ct.describe_trails()["trailList"] == [expected]
    assert ct.describe_trails(trailNameList=["lifecycle"])["trailList"] == [expected]
    assert ct.describe_trails(trailNameList=[arn])["trailList"] == [expected]
    assert ct.list_trails()["Trails"] == [{"TrailARN": arn, "Name": "lifecycle", "HomeRegion": REGION}]

    ct.delete_trail(Name=arn)
    assert error_code(ct.get_trail, Name="lifecycle") == "TrailNotFoundException"
    assert ct.describe_trails()["trailList"] == []
    assert ct.list_trails()["Trails"] == []
    assert error_code(ct.delete_trail, Name="lifecycle") == "TrailNotFoundException"


def test_create_trail_with_every_option(ct):
    created = make_trail(
        ct,
        "full-options",
        S3KeyPrefix="prefix",
        SnsTopicName="trail-alerts",
        IncludeGlobalServiceEvents=True,
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        CloudWatchLogsLogGroupArn=LOG_GROUP_ARN,
        CloudWatchLogsRoleArn=LOG_ROLE_ARN,
        KmsKeyId=KMS_KEY,
        IsOrganizationTrail=False,
        TagsList=[{"Key": "team", "Value": "security"}],
    )
    assert created == {
        "Name": "full-options",
        "S3BucketName": BUCKET,
        "S3KeyPrefix": "prefix",
        "SnsTopicName": "trail-alerts",
        "SnsTopicARN": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:trail-alerts",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": True,
        "TrailARN": trail_arn("full-options"),
        "LogFileValidationEnabled": True,
        "CloudWatchLogsLogGroupArn": LOG_GROUP_ARN,
        "CloudWatchLogsRoleArn": LOG_ROLE_ARN,
        "KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{KMS_KEY}",
        "IsOrganizationTrail": False,
    }
    trail = ct.get_trail(Name="full-options")["Trail"]
    assert trail == {**created, "HomeRegion": REGION, "HasCustomEventSelectors": False, "HasInsightSelectors": False}
    tags = ct.list_tags(ResourceIdList=[trail_arn("full-options")])["ResourceTagList"]
    assert tags == [{"ResourceId": trail_arn("full-options"), "TagsList": [{"Key": "team", "Value": "security"}]}]


def test_create_trail_twice_is_rejected(ct):
    make_trail(ct, "only-once")
    assert error_code(make_trail, ct, "only-once") == "TrailAlreadyExistsException"
    assert [t["Name"] for t in ct.list_trails()["Trails"]] == ["only-once"]


@pytest.mark.parametrize(
    "name",
    ["ab", "-leading-dash", "trailing-dash-", "has space", "adjacent-_punctuation", "double--dash",
     "192.168.5.4", "x" * 129, "slash/name"],
)
def test_invalid_trail_names(ct, name):
    assert error_code(make_trail, ct, name) == "InvalidTrailNameException"
    assert error_code(ct.get_trail, Name=name) == "InvalidTrailNameException"


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}",
        f"arn:aws:s3:{REGION}:{ACCOUNT_ID}:trail/some-trail",
        f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:eventdatastore-not-a-trail",
        f"arn:aws:cloudtrail:{REGION}:not-an-account:trail/some-trail",
    ],
)
def test_invalid_trail_arns(ct, arn):
    assert error_code(ct.get_trail, Name=arn) == "CloudTrailARNInvalidException"
    assert error_code(ct.get_trail_status, Name=arn) == "CloudTrailARNInvalidException"
    assert error_code(ct.delete_trail, Name=arn) == "CloudTrailARNInvalidException"


def test_unknown_trail_is_not_found_by_every_operation(ct):
    for name in ["no-such-trail", trail_arn("no-such-trail")]:
        assert error_code(ct.get_trail, Name=name) == "TrailNotFoundException"
        assert error_code(ct.get_trail_status, Name=name) == "TrailNotFoundException"
        assert error_code(ct.update_trail, Name=name, S3KeyPrefix="p") == "TrailNotFoundException"
        assert error_code(ct.delete_trail, Name=name) == "TrailNotFoundException"
        assert error_code(ct.start_logging, Name=name) == "TrailNotFoundException"
        assert error_code(ct.stop_logging, Name=name) == "TrailNotFoundException"
        assert error_code(ct.get_event_selectors, TrailName=name) == "TrailNotFoundException"
        assert (
            error_code(ct.put_event_selectors, TrailName=name, EventSelectors=DEFAULT_EVENT_SELECTORS)
            == "TrailNotFoundException"
        )
        assert error_code(ct.get_insight_selectors, TrailName=name) == "TrailNotFoundException"
        assert (
            error_code(ct.put_insight_selectors, TrailName=name, InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
            == "TrailNotFoundException"
        )


def test_arn_of_another_account_is_not_found(ct):
    make_trail(ct, "mine", IsMultiRegionTrail=True)
    foreign = trail_arn("mine", account=OTHER_ACCOUNT_ID)
    assert error_code(ct.get_trail, Name=foreign) == "TrailNotFoundException"
    assert error_code(ct.get_trail_status, Name=foreign) == "TrailNotFoundException"
    assert error_code(ct.get_event_selectors, TrailName=foreign) == "TrailNotFoundException"
    assert error_code(ct.update_trail, Name=foreign, S3KeyPrefix="p") == "TrailNotFoundException"
    assert error_code(ct.start_logging, Name=foreign) == "TrailNotFoundException"
    assert error_code(ct.delete_trail, Name=foreign) == "TrailNotFoundException"
    assert ct.describe_trails(trailNameList=[foreign])["trailList"] == []
    assert error_code(ct.add_tags, ResourceId=foreign, TagsList=[{"Key": "k", "Value": "v"}]) == "ResourceNotFoundException"
    assert error_code(ct.list_tags, ResourceIdList=[foreign]) == "ResourceNotFoundException"
    # The trail itself is untouched.
    assert ct.get_trail(Name="mine")["Trail"]["TrailARN"] == trail_arn("mine")


# ----------------------------------------------------------------- validation of settings


def test_s3_bucket_must_exist_in_the_embedded_store(server):
    ct = server.client()
    assert error_code(make_trail, ct, "needs-bucket", S3BucketName="not-created-yet") == "S3BucketDoesNotExistException"
    server.create_bucket("not-created-yet")
    assert make_trail(ct, "needs-bucket", S3BucketName="not-created-yet")["S3BucketName"] == "not-created-yet"
    assert error_code(ct.update_trail, Name="needs-bucket", S3BucketName="missing-bucket") == "S3BucketDoesNotExistException"
    assert ct.get_trail(Name="needs-bucket")["Trail"]["S3BucketName"] == "not-created-yet"


@pytest.mark.parametrize("bucket", ["Upper-Case-Bucket", "ab", "bad_underscore", "-leading-dash", "192.168.1.1"])
def test_invalid_s3_bucket_names(ct, bucket):
    assert error_code(make_trail, ct, "bucket-check", S3BucketName=bucket) == "InvalidS3BucketNameException"


def test_s3_key_prefix_length(ct):
    assert make_trail(ct, "prefix-200", S3KeyPrefix="p" * 200)["S3KeyPrefix"] == "p" * 200
    assert error_code(make_trail, ct, "prefix-201", S3KeyPrefix="p" * 201) == "InvalidS3PrefixException"
    assert error_code(ct.update_trail, Name="prefix-200", S3KeyPrefix="q" * 201) == "InvalidS3PrefixException"


@pytest.mark.parametrize(
    "settings, code",
    [
        ({"SnsTopicName": "not a topic!"}, "InvalidSnsTopicNameException"),
        ({"SnsTopicName": "no-such-topic"}, "InvalidSnsTopicNameException"),
        ({"SnsTopicName": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:queue"}, "InvalidSnsTopicNameException"),
        ({"KmsKeyId": "not-a-key"}, "InvalidKmsKeyIdException"),
        ({"KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/xyz"}, "InvalidKmsKeyIdException"),
        ({"CloudWatchLogsLogGroupArn": LOG_GROUP_ARN}, "InvalidCloudWatchLogsRoleArnException"),
        ({"CloudWatchLogsRoleArn": LOG_ROLE_ARN}, "InvalidCloudWatchLogsLogGroupArnException"),
        (
            {"CloudWatchLogsLogGroupArn": "arn:aws:logs:us-east-1:111122223333:not-a-group", "CloudWatchLogsRoleArn": LOG_ROLE_ARN},
            "InvalidCloudWatchLogsLogGroupArnException",
        ),
        (
            {"CloudWatchLogsLogGroupArn": LOG_GROUP_ARN, "CloudWatchLogsRoleArn": "arn:aws:iam::111122223333:user/bob"},
            "InvalidCloudWatchLogsRoleArnException",
        ),
        ({"IsMultiRegionTrail": True, "IncludeGlobalServiceEvents": False}, "InvalidParameterCombinationException"),
        ({"IsOrganizationTrail": True}, "OrganizationsNotInUseException"),
    ],
)
def test_invalid_trail_settings(ct, settings, code):
    assert error_code(make_trail, ct, "settings-check", **settings) == code
    assert error_code(ct.get_trail, Name="settings-check") == "TrailNotFoundException"
    make_trail(ct, "settings-check")
    assert error_code(ct.update_trail, Name="settings-check", **settings) == code


def test_update_trail(ct):
    make_trail(ct, "to-update", S3KeyPrefix="old", SnsTopicName="alerts")
    updated = body(
        ct.update_trail(
            Name=trail_arn("to-update"),
            S3KeyPrefix="new/prefix",
            EnableLogFileValidation=True,
            IsMultiRegionTrail=True,
            KmsKeyId="alias/trail-key",
        )
    )
    assert updated == {
        "Name": "to-update",
        "S3BucketName": BUCKET,
        "S3KeyPrefix": "new/prefix",
        "SnsTopicName": "alerts",
        "SnsTopicARN": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:alerts",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": True,
        "TrailARN": trail_arn("to-update"),
        "LogFileValidationEnabled": True,
        "KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/trail-key",
        "IsOrganizationTrail": False,
    }
    assert ct.get_trail(Name="to-update")["Trail"]["S3KeyPrefix"] == "new/prefix"
    # Empty strings clear optional settings.
    cleared = body(ct.update_trail(Name="to-update", S3KeyPrefix="", SnsTopicName="", KmsKeyId=""))
    for member in ["S3KeyPrefix", "SnsTopicName", "SnsTopicARN", "KmsKeyId"]:
        assert member not in cleared
    trail = ct.get_trail(Name="to-update")["Trail"]
    assert "S3KeyPrefix" not in trail and "KmsKeyId" not in trail
    assert trail["IsMultiRegionTrail"] is True and trail["LogFileValidationEnabled"] is True


# ----------------------------------------------------------------- regions


def test_multi_region_trail_is_a_shadow_trail_elsewhere(server, ct):
    make_trail(ct, "everywhere", IsMultiRegionTrail=True)
    make_trail(ct, "home-only")
    eu = server.client(region=OTHER_REGION)

    shadows = eu.describe_trails()["trailList"]
    assert [(t["Name"], t["HomeRegion"], t["TrailARN"]) for t in shadows] == [
        ("everywhere", REGION, trail_arn("everywhere"))
    ]
    assert eu.describe_trails(includeShadowTrails=False)["trailList"] == []
    assert eu.describe_trails(trailNameList=["everywhere"])["trailList"][0]["IsMultiRegionTrail"] is True
    assert eu.get_trail(Name="everywhere")["Trail"]["HomeRegion"] == REGION
    assert eu.get_trail(Name=trail_arn("everywhere"))["Trail"]["Name"] == "everywhere"
    assert eu.get_trail_status(Name="everywhere")["IsLogging"] is False
    assert eu.get_event_selectors(TrailName="everywhere")["EventSelectors"] == DEFAULT_EVENT_SELECTORS

    # ListTrails lists every trail of the account, whatever the caller's region.
    listed = sorted((t["Name"], t["HomeRegion"]) for t in eu.list_trails()["Trails"])
    assert listed == [("everywhere", REGION), ("home-only", REGION)]


def test_single_region_trail_is_invisible_from_other_regions(server, ct):
    make_trail(ct, "home-only")
    eu = server.client(region=OTHER_REGION)
    assert error_code(eu.get_trail, Name="home-only") == "TrailNotFoundException"
    assert error_code(eu.get_trail, Name=trail_arn("home-only")) == "TrailNotFoundException"
    assert error_code(eu.get_trail_status, Name="home-only") == "TrailNotFoundException"
    assert error_code(eu.delete_trail, Name=trail_arn("home-only")) == "TrailNotFoundException"
    assert eu.describe_trails()["trailList"] == []

    # The same name may be used by a trail homed in another region; names resolve per region.
    eu_created = make_trail(eu, "home-only")
    assert eu_created["TrailARN"] == trail_arn("home-only", region=OTHER_REGION)
    assert eu.get_trail(Name="home-only")["Trail"]["HomeRegion"] == OTHER_REGION
    assert ct.get_trail(Name="home-only")["Trail"]["HomeRegion"] == REGION
    assert len(ct.list_trails()["Trails"]) == 2


def test_writes_to_a_multi_region_trail_need_its_home_region(server, ct):
    make_trail(ct, "everywhere", IsMultiRegionTrail=True)
    eu = server.client(region=OTHER_REGION)
    for name in ["everywhere", trail_arn("everywhere")]:
        assert error_code(eu.update_trail, Name=name, S3KeyPrefix="p") == "InvalidHomeRegionException"
        assert error_code(eu.delete_trail, Name=name) == "InvalidHomeRegionException"
        assert error_code(eu.start_logging, Name=name) == "InvalidHomeRegionException"
        assert error_code(eu.stop_logging, Name=name) == "InvalidHomeRegionException"
        assert (
            error_code(eu.put_event_selectors, TrailName=name, AdvancedEventSelectors=ADVANCED_SELECTORS)
            == "InvalidHomeRegionException"
        )
        assert (
            error_code(eu.put_insight_selectors, TrailName=name, InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
            == "InvalidHomeRegionException"
        )
    trail = ct.get_trail(Name="everywhere")["Trail"]
    assert "S3KeyPrefix" not in trail and trail["HasCustomEventSelectors"] is False
    assert ct.get_trail_status(Name="everywhere")["IsLogging"] is False
    # Turned into a single-region trail by its home region, it disappears elsewhere.
    ct.update_trail(Name="everywhere", IsMultiRegionTrail=False)
    assert eu.describe_trails()["trailList"] == []
    assert error_code(eu.get_trail, Name="everywhere") == "TrailNotFoundException"
    ct.delete_trail(Name="everywhere")
    assert ct.list_trails()["Trails"] == []


def test_five_trails_per_region_counting_multi_region_trails(server, ct):
    make_trail(ct, "global-1", IsMultiRegionTrail=True)
    eu = server.client(region=OTHER_REGION)
    for i in range(4):
        make_trail(eu, f"eu-{i}")
    assert error_code(make_trail, eu, "eu-4") == "MaximumNumberOfTrailsExceededException"
    # us-east-1 holds only the multi-region trail so far.
    for i in range(4):
        make_trail(ct, f"us-{i}")
    assert error_code(make_trail, ct, "us-4") == "MaximumNumberOfTrailsExceededException"
    # A multi-region trail would be a sixth trail in both full regions.
    west = server.client(region="us-west-2")
    assert error_code(make_trail, west, "global-2", IsMultiRegionTrail=True) == "MaximumNumberOfTrailsExceededException"
    assert make_trail(west, "west-0")["TrailARN"] == trail_arn("west-0", region="us-west-2")
    # Deleting the multi-region trail frees a slot in every region.
    ct.delete_trail(Name="global-1")
    make_trail(eu, "eu-4")
    make_trail(ct, "us-4")
    assert len(ct.list_trails()["Trails"]) == 11


def test_list_trails_pages_with_next_token(start_server):
    server = start_server("--list-trails-page-size", "2")
    server.create_bucket(BUCKET)
    expected = set()
    for region, names in [(REGION, ["a-trail", "b-trail", "c-trail"]), (OTHER_REGION, ["d-trail", "e-trail"])]:
        client = server.client(region=region)
        for name in names:
            make_trail(client, name)
            expected.add((trail_arn(name, region=region), name, region))

    ct = server.client(region="ap-southeast-2")
    first = ct.list_trails()
    assert len(first["Trails"]) == 2
    assert first["NextToken"]
    seen = [(t["TrailARN"], t["Name"], t["HomeRegion"]) for t in first["Trails"]]
    token = first["NextToken"]
    pages = 1
    while token:
        page = ct.list_trails(NextToken=token)
        assert 1 <= len(page["Trails"]) <= 2
        seen += [(t["TrailARN"], t["Name"], t["HomeRegion"]) for t in page["Trails"]]
        token = page.get("NextToken")
        pages += 1
        assert pages <= 3, "paging does not end"
    assert pages == 3
    assert len(seen) == 5 and set(seen) == expected

    paginated = [t for page in ct.get_paginator("list_trails").paginate() for t in page["Trails"]]
    assert {(t["TrailARN"], t["Name"], t["HomeRegion"]) for t in paginated} == expected


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


def test_concurrent_creates_of_one_name_make_one_trail(server, ct):
    clients = [server.client() for _ in range(6)]
    outcomes = concurrently([lambda c=c: make_trail(c, "contested") for c in clients])
    assert sorted(outcomes) == ["TrailAlreadyExistsException"] * 5 + ["ok"]
    assert [t["Name"] for t in ct.list_trails()["Trails"]] == ["contested"]


def test_concurrent_creates_respect_the_region_limit(server, ct):
    clients = [server.client() for _ in range(8)]
    outcomes = concurrently([lambda c=c, i=i: make_trail(c, f"racer-{i}") for i, c in enumerate(clients)])
    assert sorted(outcomes) == ["MaximumNumberOfTrailsExceededException"] * 3 + ["ok"] * 5
    assert len(ct.list_trails()["Trails"]) == 5


# ----------------------------------------------------------------- tags


def test_tags_keep_their_order(ct):
    make_trail(ct, "tagged", TagsList=[{"Key": "zeta", "Value": "1"}, {"Key": "alpha", "Value": "2"}])
    arn = trail_arn("tagged")
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "mike", "Value": "3"}, {"Key": "bravo", "Value": "4"}])
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "alpha", "Value": "changed"}, {"Key": "no-value"}])
    assert ct.list_tags(ResourceIdList=[arn])["ResourceTagList"] == [
        {
            "ResourceId": arn,
            "TagsList": [
                {"Key": "zeta", "Value": "1"},
                {"Key": "alpha", "Value": "changed"},
                {"Key": "mike", "Value": "3"},
                {"Key": "bravo", "Value": "4"},
                {"Key": "no-value"},
            ],
        }
    ]
    ct.remove_tags(ResourceId=arn, TagsList=[{"Key": "alpha"}, {"Key": "mike", "Value": "3"}])
    tags = ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]
    assert tags == [{"Key": "zeta", "Value": "1"}, {"Key": "bravo", "Value": "4"}, {"Key": "no-value"}]


def test_list_tags_of_several_trails(ct):
    make_trail(ct, "first", TagsList=[{"Key": "n", "Value": "1"}])
    make_trail(ct, "second")
    result = ct.list_tags(ResourceIdList=[trail_arn("second"), trail_arn("first")])["ResourceTagList"]
    assert result == [
        {"ResourceId": trail_arn("second"), "TagsList": []},
        {"ResourceId": trail_arn("first"), "TagsList": [{"Key": "n", "Value": "1"}]},
    ]


def test_fifty_tags_per_trail(ct):
    make_trail(ct, "many-tags")
    arn = trail_arn("many-tags")
    fifty = [{"Key": f"key-{i:02}", "Value": f"value-{i}"} for i in range(50)]
    ct.add_tags(ResourceId=arn, TagsList=fifty[:30])
    ct.add_tags(ResourceId=arn, TagsList=fifty[30:])
    assert error_code(ct.add_tags, ResourceId=arn, TagsList=[{"Key": "one-too-many", "Value": "x"}]) == (
        "TagsLimitExceededException"
    )
    # Replacing the value of an existing key is not a new tag.
    ct.add_tags(ResourceId=arn, TagsList=[{"Key": "key-00", "Value": "replaced"}])
    tags = ct.list_tags(ResourceIdList=[arn])["ResourceTagList"][0]["TagsList"]
    assert tags == [{"Key": "key-00", "Value": "replaced"}] + fifty[1:]
    assert error_code(make_trail, ct, "too-many-tags", TagsList=fifty + [{"Key": "x", "Value": "y"}]) == (
        "TagsLimitExceededException"
    )


@pytest.mark.parametrize(
    "tag",
    [{"Key": "aws:reserved", "Value": "v"}, {"Key": "k" * 129, "Value": "v"}, {"Key": "ok", "Value": "v" * 257},
     {"Key": "semi;colon", "Value": "v"}],
)
def test_invalid_tags(ct, tag):
    make_trail(ct, "tag-rules")
    assert error_code(ct.add_tags, ResourceId=trail_arn("tag-rules"), TagsList=[tag]) == "InvalidTagParameterException"
    assert ct.list_tags(ResourceIdList=[trail_arn("tag-rules")])["ResourceTagList"][0]["TagsList"] == []


def test_tags_of_an_unknown_trail(ct):
    arn = trail_arn("never-created")
    assert error_code(ct.add_tags, ResourceId=arn, TagsList=[{"Key": "k", "Value": "v"}]) == "ResourceNotFoundException"
    assert error_code(ct.remove_tags, ResourceId=arn, TagsList=[{"Key": "k"}]) == "ResourceNotFoundException"
    assert error_code(ct.list_tags, ResourceIdList=[arn]) == "ResourceNotFoundException"


# ----------------------------------------------------------------- event and insight selectors


def test_new_trail_has_the_default_event_selector(ct):
    make_trail(ct, "defaults")
    assert body(ct.get_event_selectors(TrailName="defaults")) == {
        "TrailARN": trail_arn("defaults"),
        "EventSelectors": DEFAULT_EVENT_SELECTORS,
    }


def test_basic_event_selectors_round_trip(ct):
    make_trail(ct, "basic-selectors")
    put = body(ct.put_event_selectors(TrailName="basic-selectors", EventSelectors=BASIC_SELECTORS))
    assert put == {"TrailARN": trail_arn("basic-selectors"), "EventSelectors": BASIC_SELECTORS}
    got = body(ct.get_event_selectors(TrailName=trail_arn("basic-selectors")))
    assert got == {"TrailARN": trail_arn("basic-selectors"), "EventSelectors": BASIC_SELECTORS}
    assert ct.get_trail(Name="basic-selectors")["Trail"]["HasCustomEventSelectors"] is True


def test_putting_one_kind_of_selectors_replaces_the_other(ct):
    make_trail(ct, "switching")
    arn = trail_arn("switching")
    ct.put_event_selectors(TrailName="switching", EventSelectors=BASIC_SELECTORS)
    put = body(ct.put_event_selectors(TrailName=arn, AdvancedEventSelectors=ADVANCED_SELECTORS))
    assert put == {"TrailARN": arn, "AdvancedEventSelectors": ADVANCED_SELECTORS}
    assert body(ct.get_event_selectors(TrailName="switching")) == {
        "TrailARN": arn,
        "AdvancedEventSelectors": ADVANCED_SELECTORS,
    }
    assert ct.describe_trails(trailNameList=[arn])["trailList"][0]["HasCustomEventSelectors"] is True

    ct.put_event_selectors(TrailName="switching", EventSelectors=DEFAULT_EVENT_SELECTORS)
    assert body(ct.get_event_selectors(TrailName="switching")) == {
        "TrailARN": arn,
        "EventSelectors": DEFAULT_EVENT_SELECTORS,
    }
    assert ct.get_trail(Name="switching")["Trail"]["HasCustomEventSelectors"] is False


@pytest.mark.parametrize(
    "selectors",
    [
        {"EventSelectors": BASIC_SELECTORS, "AdvancedEventSelectors": ADVANCED_SELECTORS},
        {"EventSelectors": [DEFAULT_EVENT_SELECTORS[0]] * 6},
        {"EventSelectors": [{"ReadWriteType": "All", "DataResources": [{"Type": "AWS::Not::AType", "Values": []}]}]},
        {"EventSelectors": [{"ExcludeManagementEventSources": ["s3.amazonaws.com"]}]},
        {"AdvancedEventSelectors": [{"Name": "x", "FieldSelectors": [{"Field": "notAField", "Equals": ["y"]}]}]},
        {"AdvancedEventSelectors": [{"Name": "x", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Nonsense"]}]}]},
    ],
    ids=["both-kinds", "six-basic", "bad-data-resource-type", "bad-excluded-source", "unknown-field", "bad-category"],
)
def test_invalid_event_selectors(ct, selectors):
    make_trail(ct, "selector-rules")
    assert error_code(ct.put_event_selectors, TrailName="selector-rules", **selectors) == "InvalidEventSelectorsException"
    assert ct.get_event_selectors(TrailName="selector-rules")["EventSelectors"] == DEFAULT_EVENT_SELECTORS


def test_insight_selectors(ct):
    make_trail(ct, "insightful")
    arn = trail_arn("insightful")
    assert error_code(ct.get_insight_selectors, TrailName="insightful") == "InsightNotEnabledException"
    assert ct.get_trail(Name="insightful")["Trail"]["HasInsightSelectors"] is False

    selectors = [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]
    put = body(ct.put_insight_selectors(TrailName="insightful", InsightSelectors=selectors))
    assert put == {"TrailARN": arn, "InsightSelectors": selectors}
    assert body(ct.get_insight_selectors(TrailName=arn)) == {"TrailARN": arn, "InsightSelectors": selectors}
    assert ct.get_trail(Name="insightful")["Trail"]["HasInsightSelectors"] is True

    for bad in ([{"InsightType": "NotAnInsight"}], [{"InsightType": "ApiCallRateInsight"}] * 2):
        assert error_code(ct.put_insight_selectors, TrailName="insightful", InsightSelectors=bad) == (
            "InvalidInsightSelectorsException"
        )
    assert ct.get_insight_selectors(TrailName="insightful")["InsightSelectors"] == selectors

    ct.put_insight_selectors(TrailName=arn, InsightSelectors=[])
    assert error_code(ct.get_insight_selectors, TrailName="insightful") == "InsightNotEnabledException"
    assert ct.get_trail(Name="insightful")["Trail"]["HasInsightSelectors"] is False


# ----------------------------------------------------------------- logging state


def parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_start_and_stop_logging(ct):
    make_trail(ct, "logging")
    status = ct.get_trail_status(Name="logging")
    assert status["IsLogging"] is False
    assert status["TimeLoggingStarted"] == "" and status["TimeLoggingStopped"] == ""
    assert "StartLoggingTime" not in status

    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ct.start_logging(Name=trail_arn("logging"))
    status = ct.get_trail_status(Name="logging")
    after = dt.datetime.now(dt.timezone.utc)
    assert status["IsLogging"] is True
    started = parse_iso(status["TimeLoggingStarted"])
    assert before - dt.timedelta(seconds=1) <= started <= after
    assert abs((status["StartLoggingTime"] - started).total_seconds()) < 1
    assert status["TimeLoggingStopped"] == ""

    ct.stop_logging(Name="logging")
    status = ct.get_trail_status(Name=trail_arn("logging"))
    assert status["IsLogging"] is False
    stopped = parse_iso(status["TimeLoggingStopped"])
    assert started <= stopped <= dt.datetime.now(dt.timezone.utc)
    assert parse_iso(status["TimeLoggingStarted"]) == started

    ct.start_logging(Name="logging")
    assert ct.get_trail_status(Name="logging")["IsLogging"] is True


# ----------------------------------------------------------------- S3-compatible store (moto)


def test_trail_buckets_in_an_s3_compatible_server(start_server, moto_server):
    server = start_server(*moto_server.opentrail_args())
    s3 = moto_server.s3()
    s3.create_bucket(Bucket="moto-trail-logs")
    ct = server.client()
    assert make_trail(ct, "on-moto", S3BucketName="moto-trail-logs")["S3BucketName"] == "moto-trail-logs"
    assert error_code(make_trail, ct, "missing-on-moto", S3BucketName="moto-no-such-bucket") == (
        "S3BucketDoesNotExistException"
    )
    # A bucket of the embedded store's name does not count: the S3 server is the store.
    server.admin("buckets", "create", "local-only-bucket")
    s3.create_bucket(Bucket="moto-second-bucket")
    ct.update_trail(Name="on-moto", S3BucketName="moto-second-bucket")
    assert ct.get_trail(Name="on-moto")["Trail"]["S3BucketName"] == "moto-second-bucket"
    assert error_code(ct.update_trail, Name="on-moto", S3BucketName="local-only-bucket") == (
        "S3BucketDoesNotExistException"
    )


# ----------------------------------------------------------------- authentication


def test_wrong_secret_is_an_invalid_signature(server, ct):
    root = server.root
    forged = server.client(credentials=Credentials(root.access_key_id, "x" * 40))
    assert error_code(forged.describe_trails) == "InvalidSignatureException"
    assert error_code(forged.create_trail, Name="forged", S3BucketName=BUCKET) == "InvalidSignatureException"
    assert ct.describe_trails()["trailList"] == []


def test_unknown_access_key_is_unrecognized(server):
    stranger = server.client(credentials=Credentials("AKIAUNKNOWNUNKNOWN00", "y" * 40))
    assert error_code(stranger.describe_trails) == "UnrecognizedClientException"


def test_created_key_works_and_deleted_key_is_rejected(server, ct):
    make_trail(ct, "shared")
    key = server.create_key("alice")
    alice = server.client(credentials=Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
    assert [t["Name"] for t in alice.describe_trails()["trailList"]] == ["shared"]
    make_trail(alice, "alices-trail")
    assert ct.get_trail(Name="alices-trail")["Trail"]["TrailARN"] == trail_arn("alices-trail")

    listing = [line.split("\t") for line in server.admin("keys", "list").stdout.splitlines()]
    by_id = {row[0]: row for row in listing}
    assert by_id[key["AccessKeyId"]][1:4] == ["alice", "user", ACCOUNT_ID]
    assert by_id[server.root.access_key_id][1:4] == ["root", "root", ACCOUNT_ID]

    server.admin("keys", "delete", key["AccessKeyId"])
    assert error_code(alice.describe_trails) == "UnrecognizedClientException"
    assert key["AccessKeyId"] not in server.admin("keys", "list").stdout
    assert ct.describe_trails()["trailList"]  # the root key still works
    assert server.admin("keys", "delete", key["AccessKeyId"], check=False).returncode != 0


def test_open_auth_accepts_any_key_but_keeps_the_scope_region(start_server):
    server = start_server("--auth", "open")
    server.create_bucket(BUCKET)
    anyone = server.client(region=OTHER_REGION, credentials=Credentials("AKIAANYONEATALL00000", "whatever"))
    created = make_trail(anyone, "open-trail")
    assert created["TrailARN"] == trail_arn("open-trail", region=OTHER_REGION)
    assert anyone.get_trail(Name="open-trail")["Trail"]["HomeRegion"] == OTHER_REGION
    us = server.client(region=REGION, credentials=Credentials("AKIASOMEONEELSE00000", "other"))
    assert error_code(us.get_trail, Name="open-trail") == "TrailNotFoundException"
    assert [t["TrailARN"] for t in us.list_trails()["Trails"]] == [trail_arn("open-trail", region=OTHER_REGION)]
