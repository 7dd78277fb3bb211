"""Issue 19 on the real engine: the engine's own seccomp default, networks by ID, orphans.

The default seccomp profile is compared with the default of the Docker version that this
engine reports (tests/unit/profiles/test_engine_default.py does the comparison; here: that
version has its facts file, so CI fails on an engine nobody compared with). A network is
judged by what the engine says it is: the host network by its ID is host-network. A
learning container whose learner and watchdog are killed at once is removed by the next
learner (the watchdog alone is tests/e2e/test_learn_e2e.py's killed-learner test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from saferun.model.manifest import SeccompSection
from saferun.profiles.seccomp import generate_seccomp, render_seccomp_json
from tests.e2e.conftest import E2E_LABEL, docker, saferun
from tests.e2e.seccomp_probe import HARDENED_FLAGS, build_probe_image, parse_probe, remove_image
from tests.unit.profiles.test_engine_default import differences, documented, engine_facts

pytestmark = pytest.mark.usefixtures("docker_engine")


def test_the_running_engines_default_has_been_compared() -> None:
    version = docker("info", "--format", "{{.ServerVersion}}").stdout.strip()
    facts = engine_facts(version)
    assert facts is not None, (
        f"Docker {version}: no tests/data/engine_seccomp facts; write them with "
        "scripts/engine_seccomp_data.py from moby's profiles/seccomp/default.json at that tag")
    assert differences(facts) == documented(facts["version"])


def test_the_engines_own_default_refuses_what_the_facts_say(busybox_image: str,
                                                           tmp_path: Path) -> None:
    """Probed inside containers, never on the host: each call where the facts say the two
    defaults differ, under the engine's own default and under saferun's."""
    arch = docker("info", "--format", "{{.Architecture}}").stdout.strip()
    if arch != "x86_64":
        pytest.skip("the probe uses x86_64 syscall numbers")
    version = docker("info", "--format", "{{.ServerVersion}}").stdout.strip()
    facts = engine_facts(version)
    assert facts is not None
    profile = tmp_path / "hostile-default.json"
    profile.write_text(render_seccomp_json(generate_seccomp(
        SeccompSection(), capabilities=frozenset(), native_arch=arch, runtime="runc")))
    tag = "saferun-test/hostile-engine-probe:e2e"
    build_probe_image(tag, ("engine_default_probe.c",))
    try:
        seen = {}
        for which, opts in (("engine", []), ("saferun", ["--security-opt", f"seccomp={profile}"])):
            ran = docker("run", "--rm", "--label", f"{E2E_LABEL[0]}={E2E_LABEL[1]}",
                         *HARDENED_FLAGS, *opts, tag, "engine_default_probe")
            seen[which] = parse_probe(ran.stdout)
    finally:
        remove_image(tag)
    # EPERM: the profile's default action; ENOSYS: runc's answer for a call newer than the
    # profile knows (cachestat, fchmodat2 under 20.10). The kernel has both: saferun's run
    # gets the kernel's own errno for them.
    refusals = ("errno=1", "errno=38")
    refused = {name for name, outcome in seen["engine"].items() if outcome in refusals}
    allowed_here = {name for name, outcome in seen["saferun"].items() if outcome not in refusals}
    docker_allows = set(facts["unconditional"]) | set(facts["by_argument"])
    assert refused == set(seen["engine"]) - docker_allows - {"getpid"}, seen
    exceptions = {name for name, condition in documented(facts["version"]) if condition == "none"}
    assert refused & allowed_here == exceptions & set(seen["engine"]), seen
    assert seen["saferun"]["io_uring_setup"] == "errno=1" and seen["saferun"]["getpid"] == "ok"


def test_the_host_network_by_its_id_is_refused() -> None:
    host_id = docker("network", "inspect", "--format", "{{.Id}}", "host").stdout.strip()
    for name in (host_id, host_id[:12]):
        result = saferun("run", "--dry-run", "--network", name, "saferun-test/busybox:1")
        assert result.returncode == 125, result.stderr
        assert "host-network" in result.stderr


def test_learn_judges_the_network_as_run_does(e2e_manifest: Any) -> None:
    host_id = docker("network", "inspect", "--format", "{{.Id}}", "host").stdout.strip()
    manifest = e2e_manifest({"app": {"name": "hostile-learn-net"},
                             "network": {"mode": host_id[:12]}})
    result = saferun("learn", str(manifest), "--duration", "1", "-o", str(manifest) + ".json",
                     "--", "true")
    assert result.returncode == 2 and "host-network" in result.stderr, result.stderr


def test_a_bridge_network_by_its_id_is_honoured() -> None:
    name = "hostile-e2e-net"
    docker("network", "rm", name, check=False)
    network_id = docker("network", "create", name).stdout.strip()
    try:
        result = saferun("run", "--dry-run", "--network", network_id[:12],
                         "saferun-test/busybox:1")
        assert result.returncode == 0, result.stderr
        assert f"--network {network_id[:12]}" in result.stdout
    finally:
        docker("network", "rm", name, check=False)


def _watchdog_pids(container_name: str) -> list[int]:
    token_word = container_name.rsplit("-", 1)[0] + "-"
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if token_word.encode() in words:
            pids.append(int(entry.name))
    return pids


def test_a_learner_killed_with_its_watchdog_is_reaped_by_the_next(e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"name": "hostile-learn"}})
    command = [sys.executable, "-m", "saferun", "learn", str(manifest), "--duration", "120",
               "-o", str(manifest) + ".json", "--", "sleep", "300"]
    learner = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    name = ""
    deadline = time.monotonic() + 30
    while not name and time.monotonic() < deadline:
        found = docker("ps", "--format", "{{.Names}}", "--filter", "name=saferun-learn-",
                       "--filter", "label=saferun-e2e").stdout.split()
        name = found[0] if found else ""
        time.sleep(0.2)
    assert name, "the learning container never ran"
    try:
        watchdogs = _watchdog_pids(name)
        assert watchdogs, "no watchdog guards the learning container"
        for pid in [learner.pid, *watchdogs]:  # both at once: no one is left to remove it
            os.kill(pid, signal.SIGKILL)
        learner.wait()
        time.sleep(1)
        assert docker("ps", "-aq", "--filter", f"name={name}").stdout.strip()
        # The next learner sweeps the orphan before it starts its own container.
        nxt = saferun("learn", str(manifest), "--duration", "1", "-o", str(manifest) + ".2.json",
                      "--", "true")
        assert nxt.returncode in (0, 1), nxt.stderr
        assert not docker("ps", "-aq", "--filter", f"name={name}").stdout.strip(), (
            "the orphaned learning container outlived the next learner")
    finally:
        docker("rm", "-f", name, check=False)
