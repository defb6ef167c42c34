"""Table-driven control-plane tests: every scenario of tests/scenarios/*.json is one test.

Each scenario starts the real binary (conftest's `start_server`), then sends its steps as
raw AWS JSON 1.1 requests signed with botocore's SigV4 signer and compares the answer with
the step's expectation: status, `__type` and message for errors; the exact output JSON
(after placeholders, see tests/scenarios/README.md) for successes. The format is the
client-visible contract only, so the tests survive any rewrite of the request pipeline.

Also here: 10,000 random X-Amz-Target values, which must all be UnknownOperationException
and must neither grow the metrics' label set nor reach event history as event names.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from conftest import ACCOUNT_ID, OTHER_ACCOUNT_ID, REGION

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
TARGET_PREFIX = "CloudTrail_20131101."
JSON_11 = "application/x-amz-json-1.1"
DEFAULT_BUCKETS = ["opentrail-logs"]
# Placeholders whose value a run does not know in advance; see the README.
KINDS = {"ANY", "STRING", "TIMESTAMP", "ISO8601"}
INLINE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# --------------------------------------------------------------------------- loading


def load_scenarios() -> list:
    params = []
    names = set()
    for path in sorted(SCENARIO_DIR.glob("*.json")):
        document = json.loads(path.read_text())
        assert set(document) <= {"description", "scenarios"}, f"{path.name}: unknown top-level members"
        for scenario in document["scenarios"]:
            assert set(scenario) <= {"name", "server", "steps"}, f"{path.name}: {scenario.get('name')}"
            test_id = f"{path.stem}/{scenario['name']}"
            assert test_id not in names, f"duplicate scenario {test_id}"
            names.add(test_id)
            params.append(pytest.param(scenario, id=test_id))
    return params


# --------------------------------------------------------------------------- requests


def signed_request(endpoint: str, creds, region: str, target: str | None, body: bytes) -> tuple[dict, bytes]:
    headers = {"Content-Type": JSON_11}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=headers)
    SigV4Auth(BotoCredentials(creds.access_key_id, creds.secret_access_key), "cloudtrail", region).add_auth(request)
    prepared = request.prepare()
    return {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}, body


def call(session: requests.Session, server, region: str, target: str | None, body: bytes) -> requests.Response:
    headers, data = signed_request(server.endpoint, server.root, region, target, body)
    return session.post(server.endpoint + "/", data=data, headers=headers, timeout=60)


# --------------------------------------------------------------------------- matching


class Context:
    def __init__(self, started: float):
        self.started = started
        self.variables: dict[str, object] = {"ACCOUNT": ACCOUNT_ID, "OTHER_ACCOUNT": OTHER_ACCOUNT_ID}

    def substitute(self, value):
        """Input side: `"$name"` becomes the variable's value, `${name}` is replaced inline."""
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, str):
            if value.startswith("$") and not value.startswith("${") and value[1:] in self.variables:
                return self.variables[value[1:]]
            return INLINE.sub(lambda m: str(self._variable(m.group(1))), value)
        return value

    def _variable(self, name: str):
        assert name in self.variables, f"unknown variable ${{{name}}}"
        return self.variables[name]

    def check_kind(self, kind: str, actual, path: str) -> None:
        now = time.time()
        if kind == "ANY":
            return
        if kind == "STRING":
            assert isinstance(actual, str) and actual, f"{path}: expected a non-empty string, got {actual!r}"
            return
        if kind == "TIMESTAMP":
            assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{path}: {actual!r}"
            assert self.started - 5 <= actual <= now + 5, f"{path}: {actual} is not a time of this run"
            return
        if kind == "ISO8601":
            assert isinstance(actual, str), f"{path}: expected an ISO 8601 string, got {actual!r}"
            moment = dt.datetime.fromisoformat(actual.replace("Z", "+00:00")).timestamp()
            assert self.started - 5 <= moment <= now + 5, f"{path}: {actual} is not a time of this run"
            return
        raise AssertionError(f"unknown placeholder kind {kind}")

    def match(self, expected, actual, path: str = "output") -> None:
        if isinstance(expected, str) and expected.startswith("$") and not expected.startswith("${"):
            token = expected[1:]
            if token in KINDS:
                return self.check_kind(token, actual, path)
            if token.startswith("CAPTURE:"):
                name, _, kind = token[len("CAPTURE:"):].partition(":")
                self.check_kind(kind or "ANY", actual, path)
                assert name not in self.variables, f"{path}: ${name} captured twice"
                self.variables[name] = actual
                return
            assert token in self.variables, f"{path}: unknown placeholder {expected}"
            assert actual == self.variables[token], f"{path}: expected {expected}={self.variables[token]!r}, got {actual!r}"
            return
        if isinstance(expected, dict):
            assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
            # "?Member": the member may be absent (state a background task may or may not
            # have reached yet, such as a delivery); when present it must match.
            optional = {key[1:]: value for key, value in expected.items() if key.startswith("?")}
            required = {key: value for key, value in expected.items() if not key.startswith("?")}
            present = set(actual) - set(optional)
            assert set(required) == present, (
                f"{path}: members differ: missing {sorted(set(required) - present)}, "
                f"unexpected {sorted(present - set(required))}"
            )
            for key in required:
                self.match(required[key], actual[key], f"{path}.{key}")
            for key in set(optional) & set(actual):
                self.match(optional[key], actual[key], f"{path}.{key}")
            return
        if isinstance(expected, list):
            assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
            assert len(expected) == len(actual), f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}"
            for index, (e, a) in enumerate(zip(expected, actual)):
                self.match(e, a, f"{path}[{index}]")
            return
        if isinstance(expected, str):
            expected = self.substitute(expected)
        assert type(expected) is type(actual) and expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


STEP_MEMBERS = {"op", "target", "region", "input", "body", "expect", "comment"}


def run_step(session, server, context: Context, index: int, step: dict) -> None:
    if "sleep" in step:
        # Not a request: lets server-clock deadlines shortened by flags pass (e.g.
        # --event-data-store-pending-deletion 1s, then sleep 2).
        assert set(step) == {"sleep"}, f"step {index}: a sleep step has only 'sleep'"
        time.sleep(step["sleep"])
        return
    if "admin" in step:
        # Not a request: an admin command on the data dir while the server runs.
        assert set(step) == {"admin"}, f"step {index}: an admin step has only 'admin'"
        server.admin(*step["admin"])
        return
    assert set(step) <= STEP_MEMBERS, f"step {index}: unknown members {set(step) - STEP_MEMBERS}"
    region = step.get("region", REGION)
    if "target" in step:
        target = context.substitute(step["target"])
    else:
        target = TARGET_PREFIX + step["op"]
    if "body" in step:
        body = step["body"].encode()
    else:
        body = json.dumps(context.substitute(step.get("input", {}))).encode()
    label = f"step {index} ({step.get('op') or step.get('target')} in {region})"
    response = call(session, server, region, target, body)
    assert response.headers.get("Content-Type", "").startswith(JSON_11), f"{label}: {response.headers}"
    try:
        document = response.json()
    except ValueError:
        pytest.fail(f"{label}: answer is not JSON: {response.status_code} {response.text!r}")
    expect = step["expect"]
    assert set(expect) in ({"output"}, {"error"}), f"{label}: expect needs exactly one of output, error"
    if "output" in expect:
        assert response.status_code == 200, f"{label}: expected success, got {response.status_code} {document}"
        try:
            context.match(expect["output"], document)
        except AssertionError as e:
            raise AssertionError(f"{label}: {e}\nanswer: {json.dumps(document)}") from None
        return
    error = expect["error"]
    assert set(error) <= {"code", "message", "status"}, f"{label}: unknown members in error"
    assert response.status_code >= 400, f"{label}: expected {error['code']}, got {response.status_code} {document}"
    assert document.get("__type") == error["code"], f"{label}: expected {error['code']}, got {document}"
    message = document.get("message", document.get("Message"))
    assert isinstance(message, str) and message, f"{label}: error without a message: {document}"
    if "message" in error:
        assert message == context.substitute(error["message"]), f"{label}: message differs: {message!r}"
    if "status" in error:
        assert response.status_code == error["status"], f"{label}: status {response.status_code} {document}"


@pytest.mark.parametrize("scenario", load_scenarios())
def test_scenario(start_server, scenario):
    options = scenario.get("server", {})
    assert set(options) <= {"args", "buckets", "topics"}, f"unknown server options {options}"
    started = time.time()
    server = start_server(*options.get("args", []))
    for bucket in options.get("buckets", DEFAULT_BUCKETS):
        server.create_bucket(bucket)
    for topic in options.get("topics", []):
        server.admin("topics", "create", topic)
    context = Context(started)
    with requests.Session() as session:
        for index, step in enumerate(scenario["steps"]):
            run_step(session, server, context, index, step)


# --------------------------------------------------------------------------- random targets

RANDOM_TARGETS = 10_000
# 61 operations in botocore's model plus the one label every unknown target shares.
MAX_OPERATION_LABELS = 62


def random_targets(count: int) -> tuple[list[str], set[str]]:
    """Random targets, each carrying a random token `Zq...` (10-40 more characters) found
    nowhere else: random suffixes after the CloudTrail prefixes, and random whole targets."""
    rng = random.Random(20261202)
    alphabet = string.ascii_letters + string.digits
    targets, tokens = set(), set()
    while len(targets) < count:
        token = "Zq" + "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 40)))
        kind = rng.randrange(3)
        if kind == 0:
            target = TARGET_PREFIX + token
        elif kind == 1:
            target = "com.amazonaws.cloudtrail.v20131101." + TARGET_PREFIX + token
        else:
            target = token + "." + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        targets.add(target)
        tokens.add(token)
    return sorted(targets), tokens


def tokens_in(text: str, tokens: set[str]) -> set[str]:
    return set(re.findall(r"Zq[A-Za-z0-9]+", text)) & tokens


def operation_labels(metrics: str) -> set[str]:
    return set(re.findall(r'^opentrail_requests_total\{[^}]*operation="((?:[^"\\]|\\.)*)"', metrics, re.M))


def lookup(session, server, start: float, attributes: list | None = None) -> list[dict]:
    events, token = [], None
    while True:
        request = {"StartTime": start - 60, "MaxResults": 50}
        if attributes:
            request["LookupAttributes"] = attributes
        if token:
            request["NextToken"] = token
        response = call(session, server, REGION, TARGET_PREFIX + "LookupEvents", json.dumps(request).encode())
        assert response.status_code == 200, response.text
        page = response.json()
        events += page.get("Events", [])
        token = page.get("NextToken")
        if not token:
            return events


def test_random_targets_are_unknown_operations_and_stay_out_of_metrics_and_history(server):
    targets, tokens = random_targets(RANDOM_TARGETS)
    started = time.time()
    local = threading.local()

    def send(target: str) -> tuple[str, int, str | None]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = call(local.session, server, REGION, target, b"{}")
        try:
            code = response.json().get("__type")
        except ValueError:
            code = None
        return target, response.status_code, code

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(send, targets))
    wrong = [o for o in outcomes if o[1] != 400 or o[2] != "UnknownOperationException"]
    assert not wrong, f"{len(wrong)} targets not answered 400 UnknownOperationException, e.g. {wrong[:5]}"

    metrics = server.metrics()
    labels = operation_labels(metrics)
    assert len(labels) <= MAX_OPERATION_LABELS, (
        f"{len(labels)} distinct operation labels in opentrail_requests_total, e.g. {sorted(labels)[:10]}"
    )
    leaked = tokens_in(metrics, tokens)
    assert not leaked, f"{len(leaked)} random targets appear in /metrics, e.g. {sorted(leaked)[:5]}"

    # A known call after them; once history shows it, history has applied the earlier ones.
    with requests.Session() as session:
        sentinel = call(session, server, REGION, TARGET_PREFIX + "ListTrails", b"{}")
        assert sentinel.status_code == 200, sentinel.text
        by_name = [{"AttributeKey": "EventName", "AttributeValue": "ListTrails"}]
        deadline = time.monotonic() + 60
        while not lookup(session, server, started, by_name):
            assert time.monotonic() < deadline, "the sentinel ListTrails never reached event history"
            time.sleep(0.5)
        names = "\n".join(str(e.get("EventName")) for e in lookup(session, server, started))
    recorded = tokens_in(names, tokens)
    assert not recorded, f"{len(recorded)} random targets recorded as eventName, e.g. {sorted(recorded)[:5]}"
