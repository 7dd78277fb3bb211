"""Issue 19, case 12 on the real engine: a learning container has a lifetime of its own.

The learner and its watchdog are SIGKILLed together (the learner's whole process group and
the watchdog's session): no host process is left to remove the container, and it ends
within its bound all the same (saferun.engine.reaper.lifetime_argv). The bound adds no call
to the learned list: a learning run with it learns what one without it learns (the
lifetime container's own calls never reach the recording: docker's default profile, which
logs nothing, and a cgroup of its own).

Needs root (the kernel's audit records); skipped without it, except in CI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from saferun.app.learn import Workload
from tests.e2e.conftest import E2E_LABEL, IN_CI, docker, saferun
from tests.e2e.test_hostile_e2e import _watchdog_pids

pytestmark = [pytest.mark.usefixtures("docker_engine"),
              pytest.mark.skipif(os.geteuid() != 0 and not IN_CI,
                                 reason="recording system calls needs root")]

WORKLOAD = ["sh", "-c", "ls /; cat /etc/passwd >/dev/null; echo learned-ok"]


def _running_learning_container() -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = docker("ps", "--format", "{{.Names}}", "--filter", "name=saferun-learn-",
                       "--filter", f"label={E2E_LABEL[0]}={E2E_LABEL[1]}").stdout.split()
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError("the learning container never ran")


def _state(container: str) -> dict[str, Any]:
    found = docker("inspect", "--format", "{{json .State}}", container, check=False)
    return json.loads(found.stdout) if found.returncode == 0 else {}


def test_a_learner_killed_with_its_watchdog_leaves_a_container_that_ends_in_its_bound(
        e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"name": "hostile2-lifetime"}})
    timeout = 10
    bound = Workload(timeout=timeout).lifetime_s()  # what `learn --timeout 10 -- CMD` gets
    learner = subprocess.Popen(
        [sys.executable, "-m", "saferun", "learn", str(manifest), "--timeout", str(timeout),
         "-o", str(manifest) + ".json", "--", "sleep", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    name = ""
    try:
        name = _running_learning_container()
        life = f"{name}-life"
        started = time.monotonic()  # the lifetime container started before this was seen
        assert docker("ps", "-q", "--filter", f"name={life}").stdout.strip(), "no bound"
        app_pid = _state(name)["Pid"]
        assert (Path("/proc") / str(app_pid)).exists()
        watchdogs = _watchdog_pids(name)
        assert watchdogs, "no watchdog guards the learning container"
        os.killpg(learner.pid, signal.SIGKILL)  # the learner and its docker clients
        for pid in watchdogs:  # in a session of its own: killed too, at once
            os.kill(pid, signal.SIGKILL)
        learner.wait()
        killed = time.monotonic()
        time.sleep(2)
        assert _state(name).get("Running"), "something on the host removed it: not the bound"
        while _state(name).get("Running"):
            assert time.monotonic() - started < bound + 10, (
                f"the learning container outlived its bound of {bound:g} s")
            time.sleep(0.5)
        ended = time.monotonic()
        # It ran until its bound, not until some other end (the learner's own timeout).
        assert ended - started > bound - 5 and ended - killed > timeout, (started, ended)
        assert not (Path("/proc") / str(app_pid)).exists(), "the app's process lives on"
        assert not docker("ps", "-aq", "--filter", f"name={life}").stdout.strip()
        assert _state(name)["ExitCode"] == 137  # killed with its pid namespace
        print(f"\nlearning container ended {ended - killed:.1f} s after the SIGKILL of learner"
              f" and watchdog ({ended - started:.1f} s after it started; bound {bound:g} s)")
    finally:
        if learner.poll() is None:
            os.killpg(learner.pid, signal.SIGKILL)
        if name:
            docker("rm", "-f", "-v", name, f"{name}-life", check=False)


def _learned(manifest: Path) -> tuple[list[str], str]:
    """([seccomp] learned as `learn --write-manifest` writes it, what learn said)."""
    result = saferun("learn", str(manifest), "--write-manifest", "--", *WORKLOAD)
    assert result.returncode == 0, result.stderr
    learned = tomllib.loads(manifest.read_text())["seccomp"]["learned"]
    assert learned
    return learned, result.stderr


def test_the_bound_adds_no_call_to_the_learned_list(e2e_manifest: Any) -> None:
    bounded, said = _learned(e2e_manifest({"app": {"name": "hostile2-bounded"}}, "a.toml"))
    assert "no lifetime bound" not in said
    # The same workload without a bound: in the pid namespace of a container of ours (so
    # the app is not PID 1 there either; only the bound differs).
    holder = "hostile2-pidns"
    docker("rm", "-f", holder, check=False)
    docker("run", "-d", "--name", holder, "--label", f"{E2E_LABEL[0]}={E2E_LABEL[1]}",
           "--network", "none", "saferun-test/busybox:1", "sleep", "300")
    try:
        unbounded, said = _learned(e2e_manifest({"app": {"name": "hostile2-unbounded"},
                                                 "security": {"pid": f"container:{holder}"}},
                                                "b.toml"))
    finally:
        docker("rm", "-f", holder, check=False)
    assert "no lifetime bound of their own" in said
    assert bounded == unbounded
