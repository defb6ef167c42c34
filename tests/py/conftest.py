"""Black-box fixtures: start the real `opentrail` binary and drive it with real clients.

Every server gets a fresh data dir, binds 127.0.0.1 on port 0 and is stopped by PID with
SIGTERM at teardown; a server that does not exit cleanly fails the test that used it.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

OPENTRAIL_BIN = Path(os.environ.get("OPENTRAIL_BIN") or REPO / "target" / "debug" / "opentrail")
AWS_CLI = Path(os.environ.get("OPENTRAIL_AWS_CLI") or VENV_BIN / "aws")
# AWS's Linux build of the CLI v2 (for `verify-query-results`), see scripts/install-aws-cli-v2.py.
AWS_CLI_V2 = Path(os.environ.get("OPENTRAIL_AWS_CLI_V2") or VENV_BIN.parent / "aws-cli-v2" / "dist" / "aws")
MOTO_SERVER = Path(os.environ.get("OPENTRAIL_MOTO_SERVER") or VENV_BIN / "moto_server")

ACCOUNT_ID = "111122223333"
OTHER_ACCOUNT_ID = "444455556666"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0  # --shutdown-grace (10 s) + the bounded flush (5 s) + a margin
CLI_TIMEOUT = 120.0

# Variables the tests themselves read; everything else named AWS_* or OPENTRAIL_* is
# dropped so that neither a developer's AWS setup nor stray server flags leak in.
_KEPT_ENV = {"OPENTRAIL_BIN", "OPENTRAIL_AWS_CLI", "OPENTRAIL_AWS_CLI_V2", "OPENTRAIL_MOTO_SERVER", "OPENTRAIL_LOG"}


def _scrub_environment() -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "OPENTRAIL_")) and name not in _KEPT_ENV:
            del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    no_proxy = "127.0.0.1,localhost"
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = no_proxy


_scrub_environment()


def trail_arn(name: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"


# --------------------------------------------------------------------------- errors


class AwsCliError(Exception):
    """The AWS CLI exited non-zero; `code` is the AWS error code it printed, if any."""

    def __init__(self, code: str | None, returncode: int, stderr: str):
        super().__init__(f"aws exited {returncode} with error code {code}: {stderr.strip()}")
        self.code = code
        self.returncode = returncode
        self.stderr = stderr


_CLI_ERROR = re.compile(r"An error occurred \(([^)]+)\) when calling the (\w+) operation")


def error_code(call: Callable, *args, **kwargs) -> str:
    """Runs a call that must fail and returns its AWS error code (boto3 or AWS CLI)."""
    try:
        result = call(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    except AwsCliError as e:
        assert e.code is not None, f"the CLI failed without an AWS error code: {e.stderr}"
        return e.code
    pytest.fail(f"expected an AWS error, but the call succeeded with {result!r}")


def wait_for(predicate, timeout=90.0, interval=0.2, what="condition"):
    """Polls `predicate` until it returns something truthy (returned) or `timeout` passes.
    The default deadline is generous: on a busy machine a debug build needs tens of seconds
    for what takes milliseconds when idle (a first digest generates an RSA key)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def digest_chain_ids(server) -> list[str]:
    """The digest chains delivery keeps, as stored in the data dir's metadata store
    (collection `digest_chains`), read with a second SQLite connection as an operator would."""
    with contextlib.closing(sqlite3.connect(server.data_dir / "meta.db", timeout=30)) as db:
        rows = db.execute("SELECT key FROM documents WHERE collection = 'digest_chains' ORDER BY key").fetchall()
    return [key for (key,) in rows]


def wait_for_digest_chains_closed(server, timeout: float = 120.0) -> None:
    """After StopLogging (or DeleteTrail) of every trail with validation on: waits until
    delivery has written the trails' last log files and final digests, which it does
    before it forgets a chain's state. Only then are a bucket's files final."""
    wait_for(lambda: not digest_chain_ids(server), timeout=timeout, what="digest chains to close")


# --------------------------------------------------------------------------- server


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OPENTRAIL_LOG", "info")
    if extra:
        env.update(extra)
    return env


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str


class Server:
    """One `opentrail serve` process over a data dir; can be stopped, killed and restarted."""

    def __init__(self, data_dir: Path, log_dir: Path, account_id: str, args: list[str], account_flag: bool = True):
        self.data_dir = data_dir
        self.log_dir = log_dir
        # The account the data dir belongs to; passed as --account-id unless account_flag is off.
        self.account_id = account_id
        self.account_flag = account_flag
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.port = 0
        self.startup_lines: list[str] = []
        self._starts = 0

    # ---- lifecycle

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"opentrail-{self._starts}.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def start(self) -> "Server":
        assert self.proc is None, "server already running"
        assert OPENTRAIL_BIN.exists(), f"{OPENTRAIL_BIN} does not exist; run cargo build -p opentrail-server"
        self._starts += 1
        command = [
            str(OPENTRAIL_BIN),
            "serve",
            "--data-dir", str(self.data_dir),
            "--listen", "127.0.0.1:0",
            *(["--account-id", self.account_id] if self.account_flag else []),
            *self.args,
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=_child_env()
            )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream) -> None:
            for raw in stream:
                lines.put(raw.decode(errors="replace").rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        self.startup_lines = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self._abort(f"no 'listening on' line within {START_TIMEOUT}s")
            if line is None:
                self.proc.wait(timeout=STOP_TIMEOUT)
                code = self.proc.returncode
                self.proc = None
                pytest.fail(f"opentrail exited with {code} before listening\n{self.log_text()}")
            self.startup_lines.append(line)
            match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))", line)
            if match:
                self.endpoint, self.port = match.group(1), int(match.group(2))
                break
        self._wait_healthy(deadline)
        return self

    def _abort(self, why: str) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        pytest.fail(f"{why}\n{self.log_text()}")

    def _wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                status, body = http_get(f"{self.endpoint}/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self._abort("GET /health never answered 200")

    def stop(self) -> int:
        """SIGTERM by PID; returns the exit code (asserting nothing)."""
        assert self.proc is not None, "server is not running"
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"opentrail did not exit within {STOP_TIMEOUT}s of SIGTERM\n{self.log_text()}")
        finally:
            if proc.stdout:
                proc.stdout.close()

    def stop_cleanly(self) -> None:
        code = self.stop()
        assert code == 0, f"opentrail exited with {code} after SIGTERM\n{self.log_text()}"

    def kill(self) -> None:
        """SIGKILL by PID: a crash, as far as the data dir can tell."""
        assert self.proc is not None, "server is not running"
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
        if proc.stdout:
            proc.stdout.close()

    def restart(self) -> "Server":
        self.stop_cleanly()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None

    # ---- credentials and admin commands

    @property
    def root(self) -> Credentials:
        parser = configparser.ConfigParser()
        parser.read(self.credentials_path)
        section = parser["default"]
        return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs `opentrail <group> <command> --data-dir D <args...>`."""
        group, command, *rest = args
        result = subprocess.run(
            [str(OPENTRAIL_BIN), group, command, "--data-dir", str(self.data_dir), *rest],
            capture_output=True,
            text=True,
            timeout=60,
            env=_child_env(),
        )
        if check:
            assert result.returncode == 0, f"opentrail {' '.join(args)} failed: {result.stderr}"
        return result

    def create_key(self, user: str) -> dict:
        key = json.loads(self.admin("keys", "create", "--user", user).stdout)
        assert key["UserName"] == user
        assert key["AccountId"] == self.account_id
        return key

    def create_bucket(self, name: str) -> None:
        self.admin("buckets", "create", name)
        assert (self.data_dir / "buckets" / name).is_dir()

    def metrics(self) -> str:
        status, body = http_get(f"{self.endpoint}/metrics")
        assert status == 200
        return body

    def metric(self, name: str) -> float:
        match = re.search(rf"(?m)^{re.escape(name)} (\S+)$", self.metrics())
        assert match, f"no metric {name}"
        return float(match.group(1))

    def wait_for_history_caught_up(self, timeout: float = 90.0) -> None:
        """Waits until event history has applied every record durable in the event log
        now: what LookupEvents will show of them, it shows from then on."""
        end = self.metric("opentrail_event_log_durable_end_offset")
        wait_for(lambda: self.metric("opentrail_history_applied_offset") >= end, timeout=timeout,
                 what="event history to apply the event log")

    # ---- clients

    def client(
        self,
        region: str = REGION,
        credentials: Credentials | None = None,
        service: str = "cloudtrail",
    ):
        """A boto3 client for this server that makes exactly one attempt per call."""
        creds = credentials or self.root
        session = boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            region_name=region,
        )
        return session.client(
            service,
            endpoint_url=self.endpoint,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )

    def aws(
        self,
        *args: str,
        region: str = REGION,
        credentials_file: Path | None = None,
        env: dict[str, str] | None = None,
    ):
        """Runs the real AWS CLI against this server; returns parsed JSON output ({} when
        the command prints nothing) or raises AwsCliError with the AWS error code."""
        return run_aws_cli(
            *args,
            endpoint=self.endpoint,
            region=region,
            credentials_file=credentials_file or self.credentials_path,
            env=env,
        )


def run_aws_cli(
    *args: str,
    endpoint: str,
    region: str,
    credentials_file: Path,
    env: dict[str, str] | None = None,
):
    command = [str(AWS_CLI), *args, "--endpoint-url", endpoint, "--region", region, "--output", "json"]
    child_env = _child_env(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
    )
    if env:
        child_env.update(env)
    result = subprocess.run(command, capture_output=True, text=True, timeout=CLI_TIMEOUT, env=child_env)
    if result.returncode != 0:
        match = _CLI_ERROR.search(result.stderr)
        raise AwsCliError(match.group(1) if match else None, result.returncode, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else {}


class ServerFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.servers: list[Server] = []

    def __call__(
        self,
        *args: str,
        account_id: str = ACCOUNT_ID,
        account_flag: bool = True,
        data_dir: Path | None = None,
        start: bool = True,
    ) -> Server:
        """`data_dir` reuses the data dir of an earlier server (a restart)."""
        index = len(self.servers)
        data_dir = data_dir or self.tmp_path / f"data-{index}"
        log_dir = self.tmp_path / f"logs-{index}"
        log_dir.mkdir(parents=True, exist_ok=True)
        server = Server(data_dir, log_dir, account_id, list(args), account_flag=account_flag)
        self.servers.append(server)
        return server.start() if start else server

    def stop_all(self) -> list[str]:
        problems = []
        for server in self.servers:
            if not server.running:
                continue
            code = server.stop()
            if code != 0:
                problems.append(f"opentrail exited with {code} after SIGTERM\n{server.log_text()}")
        return problems


@pytest.fixture
def start_server(tmp_path):
    """Starts `opentrail serve` with extra flags: `start_server("--auth", "open")`."""
    factory = ServerFactory(tmp_path)
    yield factory
    problems = factory.stop_all()
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def server(start_server) -> Server:
    """A fresh server with the default flags and the account ACCOUNT_ID."""
    return start_server()


# --------------------------------------------------------------------------- moto


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    access_key = "moto-access-key"
    secret_key = "moto-secret-key"
    region = "us-east-1"

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def s3(self):
        return boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        ).client("s3", endpoint_url=self.endpoint, config=Config(s3={"addressing_style": "path"}))

    def opentrail_args(self) -> list[str]:
        return [
            "--object-store", "s3",
            "--s3-endpoint", self.endpoint,
            "--s3-access-key", self.access_key,
            "--s3-secret-key", self.secret_key,
            "--s3-region", self.region,
            "--s3-path-style", "true",
        ]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A real S3-compatible server (moto) on a free loopback port, shared by the session;
    tests use bucket names of their own."""
    assert MOTO_SERVER.exists(), f"{MOTO_SERVER} does not exist; pip install -r tests/requirements.txt"
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    for _attempt in range(3):
        port = free_port()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_child_env(),
            )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if http_get(f"{endpoint}/moto-api/", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            proc.kill()
            proc.wait()
            continue
        try:
            yield MotoServer(endpoint)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return
    pytest.fail(f"moto_server did not start\n{log_path.read_text(errors='replace')[-4000:]}")
