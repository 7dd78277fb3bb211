"""Issue 19 on the real engine: the engine's own seccomp default, networks by ID.

The default seccomp profile is compared with the default of the Docker version that this
engine reports (tests/unit/profiles/test_engine_default.py does the comparison; here: that
version has its facts file, so CI fails on an engine nobody compared with). A network is
judged by what the engine says it is: the host network by its ID is host-network.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import docker, saferun
from tests.unit.profiles.test_engine_default import differences, documented, engine_facts

pytestmark = pytest.mark.usefixtures("docker_engine")


def test_the_running_engines_default_has_been_compared() -> None:
    version = docker("info", "--format", "{{.ServerVersion}}").stdout.strip()
    facts = engine_facts(version)
    assert facts is not None, (
        f"Docker {version}: no tests/data/engine_seccomp facts; write them with "
        "scripts/engine_seccomp_data.py from moby's profiles/seccomp/default.json at that tag")
    assert differences(facts) == documented(facts["version"])


def test_the_host_network_by_its_id_is_refused() -> None:
    host_id = docker("network", "inspect", "--format", "{{.Id}}", "host").stdout.strip()
    for name in (host_id, host_id[:12]):
        result = saferun("run", "--dry-run", "--network", name, "saferun-test/busybox:1")
        assert result.returncode == 125, result.stderr
        assert "host-network" in result.stderr


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
