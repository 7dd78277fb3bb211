"""Issue 19, case 12: a learning container has a lifetime of its own, from the run's timeouts.

Without an engine: the bound each workload gets, the lifetime container's arguments, and
that `started` starts it first, joins its pid namespace and removes both (the engine:
tests/e2e/test_learn_lifetime_e2e.py).
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from saferun.app import learn as app_learn
from saferun.app.learn import (
    LIFETIME_MARGIN_S,
    START_WAIT_S,
    STOP_TIMEOUT_S,
    NotStarted,
    Workload,
    started,
    warn_unbounded,
)
from saferun.engine import docker_cli, reaper
from saferun.model.facts import HostFacts
from saferun.model.manifest import Manifest

FACTS = HostFacts(security_options=frozenset({"seccomp"}), runtimes=frozenset({"runc"}))
NAME = f"{reaper.NAME_PREFIX}cafe01234567-3"


def _manifest(**security: str) -> Manifest:
    return Manifest.from_data({"app": {"name": "web", "image": "nginx:1"},
                                    "security": security})


def test_the_bound_is_the_longest_the_run_may_take_by_its_own_timeouts() -> None:
    tail = STOP_TIMEOUT_S + LIFETIME_MARGIN_S
    assert Workload(timeout=7).lifetime_s() == 7 + tail  # docker wait, up to the timeout
    assert Workload(timeout=7, duration=3).lifetime_s() == START_WAIT_S + 3 + tail
    both = Workload(timeout=7, exec_argv=("ls",), load_argv=("true",), duration=3)
    assert both.lifetime_s(health_wait=4) == START_WAIT_S + 7 + 7 + 3 + 4 + tail
    assert Workload(exec_argv=("ls",)).lifetime_s() == START_WAIT_S + 300 + tail


def test_the_lifetime_container_runs_nothing_but_a_sleep_of_the_bound() -> None:
    argv = reaper.lifetime_argv(NAME, "nginx:1", 44.2)
    assert argv[:4] == ["run", "-d", "--rm", "--init"]
    assert argv[argv.index("--name") + 1] == f"{NAME}-life" == reaper.lifetime_name(NAME)
    assert argv[-3:] == ["nginx:1", "sleep", "45"]  # whole seconds, never shorter
    for flag, value in (("--network", "none"), ("--cap-drop", "ALL"), ("--user", "65534:65534"),
                        ("--security-opt", "no-new-privileges"),
                        ("--entrypoint", "/saferun-lifetime/busybox")):
        assert argv[argv.index(flag) + 1] == value
    assert "--read-only" in argv and "--no-healthcheck" in argv
    assert ("type=bind,source=/bin/busybox,target=/saferun-lifetime/busybox,readonly"
            in argv)
    assert "--platform" not in argv
    other = reaper.lifetime_argv(NAME, "nginx:1", 1, platform="linux/arm64")
    assert other[other.index("--platform") + 1] == "linux/arm64"


def test_lifetime_containers_of_dead_learners_are_orphans_too() -> None:
    names = [f"{NAME}-life", NAME, f"{reaper.NAME_PREFIX}cafe01234567-life"]
    assert reaper.orphans(names, set()) == names[:2]
    assert reaper.orphans(names, {"cafe01234567"}) == []


class Engine:
    """Answers docker calls the way a daemon that starts everything would."""

    def __init__(self, refuse: str = "") -> None:
        self.calls: list[list[str]] = []
        self.refuse = refuse

    def docker(self, *args: str, **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        failed = bool(self.refuse) and self.refuse in args
        return subprocess.CompletedProcess(list(args), 125 if failed else 0, "",
                                           "bind source path does not exist" if failed else "")

    def run_docker(self, argv: list[str], *_: Any, **__: Any
                   ) -> subprocess.CompletedProcess[str]:
        return self.docker(*argv)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    fake = Engine()
    monkeypatch.setattr(app_learn, "docker", fake.docker)
    monkeypatch.setattr(docker_cli, "run_docker", fake.run_docker)
    monkeypatch.setattr(reaper, "guarded_name", lambda: NAME)
    return fake


def test_started_joins_its_lifetime_container_and_removes_both(engine: Engine) -> None:
    with started(_manifest(), FACTS, ("true",), lifetime_s=50) as name:
        assert name == NAME
    life, app, *removals = engine.calls
    assert life == reaper.lifetime_argv(NAME, "nginx:1", 50)
    assert app[1] == "run" and app[app.index("--pid") + 1] == f"container:{NAME}-life"
    assert removals == [["rm", "-f", "-v", NAME], ["rm", "-f", "-v", f"{NAME}-life"]]


def test_no_lifetime_container_no_learning_container(engine: Engine) -> None:
    engine.refuse = "--init"
    with pytest.raises(NotStarted, match="busybox-static.*bind source path does not exist"):
        with started(_manifest(), FACTS, ("true",), lifetime_s=50):
            pass  # pragma: no cover (never reached)
    assert [call[0] for call in engine.calls] == ["run", "rm", "rm"]


def test_a_shared_pid_namespace_keeps_its_own_and_says_there_is_no_bound(
        engine: Engine) -> None:
    manifest = _manifest(pid="container:other")
    with started(manifest, FACTS, ("true",), lifetime_s=50):
        pass
    (app, *_removals) = engine.calls
    assert app[app.index("--pid") + 1] == "container:other" and "--init" not in app
    said: list[str] = []
    warn_unbounded(manifest, said.append)
    warn_unbounded(_manifest(), said.append)
    assert len(said) == 1 and "no lifetime bound" in said[0]


def test_a_run_its_bound_ended_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    seen: dict[str, float] = {}

    @contextmanager
    def fake_started(*_: Any, lifetime_s: float) -> Any:
        seen["lifetime"] = lifetime_s
        yield NAME

    running = {NAME: True}
    monkeypatch.setattr(app_learn, "started", fake_started)
    monkeypatch.setattr(app_learn, "docker", Engine().docker)
    monkeypatch.setattr(app_learn, "_drive", lambda *_: (False, "the app exited 137"))
    monkeypatch.setattr(app_learn, "_state", lambda name: (running.get(name, False), 0))
    workload = Workload(timeout=5)
    result = app_learn.run_once(_manifest(), FACTS, workload, record=False)
    assert seen["lifetime"] == workload.lifetime_s()
    assert result.detail == "the app exited 137 (its lifetime bound of 45 s ended it)"
    running[f"{NAME}-life"] = True  # the bound still runs: the app failed on its own
    assert app_learn.run_once(_manifest(), FACTS, workload, record=False).detail == (
        "the app exited 137")
