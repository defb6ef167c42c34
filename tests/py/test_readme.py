"""The README's walkthrough, run as written: every shell block the README marks with
`<!-- walkthrough: ... -->` runs in bash against the real binary, with the real AWS CLI
from `.venv`, and must succeed command by command.

Only what has to differ in a test differs: the server listens on port 0 (the README's
walkthrough talks to the default 127.0.0.1:7420, replaced by the bound address), and
`opentrail` on PATH is the binary under test (the README puts `target/release` first,
which does not exist in the test's directory)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import OPENTRAIL_BIN, REGION, REPO, VENV_BIN, _child_env

README = REPO / "README.md"
MARKER = "<!-- walkthrough:"
# The server address the walkthrough uses: `opentrail serve`'s default --listen.
README_ENDPOINT = "http://127.0.0.1:7420"
WALKTHROUGH_TIMEOUT = 600.0


def walkthrough_blocks(readme: str) -> list[str]:
    """The body of each fenced `sh` block right after a walkthrough marker line."""
    lines = readme.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        if not line.startswith(MARKER):
            continue
        assert lines[index + 1] == "```sh", f"README.md:{index + 2}: a walkthrough marker must precede a ```sh block"
        end = lines.index("```", index + 2)
        blocks.append("\n".join(lines[index + 2 : end]))
    return blocks


def test_marked_blocks_are_found():
    readme = "text\n<!-- walkthrough: x -->\n```sh\necho a\necho b\n```\n```sh\nnot marked\n```\n"
    assert walkthrough_blocks(readme) == ["echo a\necho b"]


def test_the_readme_walkthrough_runs_as_written(start_server, tmp_path):
    blocks = walkthrough_blocks(README.read_text())
    assert blocks, "README.md marks no walkthrough block"
    script = "\n\n".join(blocks)
    assert README_ENDPOINT in script, f"the walkthrough no longer talks to {README_ENDPOINT}"

    # The README's layout: the walkthrough runs next to ./opentrail-data.
    workdir = tmp_path / "walkthrough"
    workdir.mkdir()
    server = start_server(data_dir=workdir / "opentrail-data")
    script = script.replace(README_ENDPOINT, server.endpoint)
    assert ":7420" not in script

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "opentrail").symlink_to(OPENTRAIL_BIN.resolve())
    script_path = tmp_path / "walkthrough.sh"
    script_path.write_text("set -x\n" + script + "\n")

    env = _child_env({"PATH": os.pathsep.join([str(bin_dir), str(VENV_BIN), os.environ["PATH"]])})
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(script_path)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=WALKTHROUGH_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"the README walkthrough failed (exit {result.returncode})\n"
        f"--- stderr (commands traced with +)\n{result.stderr[-6000:]}\n--- stdout\n{result.stdout[-3000:]}"
    )

    # What the walkthrough did, read back independently.
    cloudtrail = server.client(region=REGION)
    trail = cloudtrail.get_trail(Name="my-trail")["Trail"]
    assert trail["S3BucketName"] == "my-trail-bucket"
    assert trail["IsMultiRegionTrail"] is True
    assert trail["HasCustomEventSelectors"] is True
    assert cloudtrail.get_trail_status(Name="my-trail")["IsLogging"] is True
    selectors = cloudtrail.get_event_selectors(TrailName="my-trail")["AdvancedEventSelectors"]
    assert [selector["Name"] for selector in selectors] == ["S3 writes"]
    tags = cloudtrail.list_tags(ResourceIdList=[trail["TrailARN"]])["ResourceTagList"][0]["TagsList"]
    assert tags == [{"Key": "team", "Value": "security"}]
    assert (server.data_dir / "buckets" / "my-trail-bucket").is_dir()
