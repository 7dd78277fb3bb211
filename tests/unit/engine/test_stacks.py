"""engine/stacks: a start that hits the runtime's parallel-start race is retried once."""

from __future__ import annotations

import subprocess

import pytest

from saferun.engine import stacks
from saferun.errors import RequirementUnmet

ARGV = ["docker", "run", "--detach", "--name", "s-web-sandbox", "img", "sleep", "1"]
RACE = "docker: Error response from daemon: cannot start a stopped process: unknown.\n"


def _result(code: int, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(ARGV, code, out, err)


def _fake(monkeypatch: pytest.MonkeyPatch, results: list[subprocess.CompletedProcess[str]]
          ) -> list[tuple[str, ...]]:
    removed: list[tuple[str, ...]] = []
    monkeypatch.setattr("saferun.engine.docker_cli.run_docker",
                        lambda argv, profile, timeout: results.pop(0))
    monkeypatch.setattr(stacks, "docker", lambda *args, check=True: removed.append(args))
    return removed


def test_the_race_is_retried_once_after_removing_the_half_made_container(monkeypatch):
    removed = _fake(monkeypatch, [_result(125, err=RACE), _result(0, out="abc123\n")])
    assert stacks.start_detached(ARGV) == "abc123"
    assert removed == [("rm", "-f", "s-web-sandbox")]


def test_a_second_race_is_reported(monkeypatch):
    _fake(monkeypatch, [_result(125, err=RACE), _result(125, err=RACE)])
    with pytest.raises(RequirementUnmet, match="cannot start a stopped process"):
        stacks.start_detached(ARGV)


def test_other_failures_are_not_retried(monkeypatch):
    removed = _fake(monkeypatch, [_result(125, err="docker: invalid reference format.\n")])
    with pytest.raises(RequirementUnmet, match="invalid reference format"):
        stacks.start_detached(ARGV)
    assert removed == []
