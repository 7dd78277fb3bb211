"""saferun.engine.reaper: the watchdog removes a learner's containers when the learner ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saferun.engine import reaper

# The orphan sweep's listing (before a watchdog is spawned) finds nothing and is not logged:
# these tests follow the watchdog itself (the sweep: test_reaper_orphans.py).
FAKE_DOCKER = """#!/bin/sh
[ "$*" = "ps -a --filter name=saferun-learn- --format {{.Names}}" ] && exit 0
echo "$@" >> "$FAKE_LOG"
case "$1" in ps) echo c1; echo c2;; esac
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tool = tmp_path / "bin" / "docker"
    tool.parent.mkdir()
    tool.write_text(FAKE_DOCKER)
    tool.chmod(0o755)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def _wait_for(path: Path, lines: int) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return path.read_text().splitlines()
        time.sleep(0.05)
    return path.read_text().splitlines() if path.exists() else []


def test_names_share_one_watchdog_that_removes_them_when_released(fake_docker: Path) -> None:
    first, second = reaper.guarded_name(), reaper.guarded_name()
    token = first.removeprefix(reaper.NAME_PREFIX).rsplit("-", 1)[0]
    assert first.endswith("-1") and second == f"{reaper.NAME_PREFIX}{token}-2"
    assert not fake_docker.exists()  # it only waits while we run
    reaper.release()
    assert _wait_for(fake_docker, 2) == [f"ps -aq --filter name={reaper.NAME_PREFIX}{token}-",
                                         "rm -f -v c1 c2"]


def test_the_watchdog_acts_when_its_owner_is_killed(fake_docker: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", (
        "import time; from saferun.engine import reaper; print(reaper.guarded_name(), "
        "flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    name = owner.stdout.readline().strip()
    assert name.startswith(reaper.NAME_PREFIX)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    lines = _wait_for(fake_docker, 2)
    assert lines[0] == f"ps -aq --filter name={name.rsplit('-', 1)[0]}-"
    assert lines[1] == "rm -f -v c1 c2"
