"""The plan cache makes repeated runs fast but never starts a container from a stale plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import docker, inspect, saferun

pytestmark = pytest.mark.e2e


def test_second_run_hits_and_an_edit_misses(e2e_manifest: Any, tmp_path: Path) -> None:
    env = {**os.environ, "SAFERUN_DEBUG": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("SAFERUN_NO_CACHE", None)
    manifest = e2e_manifest({"app": {"command": ["true"]}, "resources": {"memory": "64m"}})
    args = ("run", "--rm", str(manifest))

    first = saferun(*args, env=env)
    assert first.returncode == 0 and "plan cache miss" in first.stderr
    second = saferun(*args, env=env)
    assert second.returncode == 0 and "plan cache hit" in second.stderr

    # A changed manifest must never reuse the old plan.
    manifest.write_text(manifest.read_text().replace('memory = "64m"', 'memory = "80m"'))
    name_args = (
        "run",
        "-d",
        "--name",
        f"saferun-cache-{os.getpid()}",
        str(manifest),
        "sleep",
        "30",
    )
    third = saferun(*name_args, env=env)
    assert third.returncode == 0, third.stderr
    assert "plan cache miss: no entry" in third.stderr
    container = third.stdout.strip()
    try:
        assert inspect(container)["HostConfig"]["Memory"] == 80 * 1024 * 1024
    finally:
        docker("rm", "-f", container)

    manifest.write_text(manifest.read_text().replace('memory = "80m"', 'memory = "96m"'))
    fourth = saferun(*args, env=env)
    assert "plan cache miss: an input file changed" in fourth.stderr
