"""Issue 19, case 11 on the real engine: `check`, `export` and `init` judge a network as
`run` does.

The host network's real ID (and a 12-character prefix of it) is host-network for
`check --docker-run`, for `check` of a manifest and for `export` to every target; a bridge
network by its ID stays a bridge network. `init --from-docker-run` refuses the host
network by its ID and writes nothing. With no engine to ask, `check`, `export` and `init`
still work and say that the names were not resolved (`run` itself:
tests/e2e/test_hostile_e2e.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import docker, saferun

pytestmark = pytest.mark.usefixtures("docker_engine")


def _found(report: dict[str, Any]) -> set[str]:
    return {finding["rule"] for finding in report["findings"]}


@pytest.fixture(scope="module")
def host_id() -> str:
    return docker("network", "inspect", "host", "--format", "{{.Id}}").stdout.strip()


def test_check_of_a_docker_run_line_sees_the_host_network_by_its_id(host_id: str) -> None:
    for name in (host_id, host_id[:12]):
        result = saferun("check", "--format", "json", "--docker-run",
                         f"docker run --network {name} saferun-test/busybox:1")
        assert result.returncode == 1, result.stderr
        (report,) = json.loads(result.stdout)["results"]
        assert "host-network" in _found(report)
        assert any("is the engine's host network 'host'" in n for n in report["notes"])


def test_check_and_export_of_a_manifest_on_the_host_network_by_its_id(
        host_id: str, e2e_manifest: Any) -> None:
    manifest = e2e_manifest({"app": {"name": "hostile2-netid"},
                             "network": {"mode": host_id[:12]}})
    checked = saferun("check", "--format", "json", str(manifest))
    assert checked.returncode == 1, checked.stderr
    assert "host-network" in _found(json.loads(checked.stdout)["results"][0])
    for target in ("compose", "kubernetes", "quadlet"):
        exported = saferun("export", str(manifest), "--to", target)
        assert exported.returncode == 2, (target, exported.stdout, exported.stderr)
        assert "refused by rule 'host-network'" in exported.stderr
        assert not exported.stdout


def test_a_bridge_network_by_its_id_stays_a_bridge_network(e2e_manifest: Any) -> None:
    name = "hostile2-e2e-net"
    docker("network", "rm", name, check=False)
    network_id = docker("network", "create", name).stdout.strip()
    try:
        line = saferun("check", "--format", "json", "--docker-run",
                       f"docker run --network {network_id[:12]} saferun-test/busybox:1")
        assert line.returncode == 1, line.stderr
        (report,) = json.loads(line.stdout)["results"]
        assert "host-network" not in _found(report) and len(report["notes"]) == 1, report
        manifest = e2e_manifest({"app": {"name": "hostile2-bridge"},
                                 "network": {"mode": network_id[:12]}})
        exported = saferun("export", str(manifest), "--to", "compose")
        assert exported.returncode == 0, exported.stderr
        assert "warning" not in exported.stderr
    finally:
        docker("network", "rm", name, check=False)


def test_without_an_engine_the_network_is_said_to_be_unresolved(
        host_id: str, e2e_manifest: Any, tmp_path: Path) -> None:
    offline = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    manifest = e2e_manifest({"app": {"name": "hostile2-offline"},
                             "network": {"mode": host_id[:12]}})
    checked = saferun("check", str(manifest), "--docker-run",
                      f"docker run --network {host_id[:12]} saferun-test/busybox:1",
                      env=offline)
    assert checked.returncode == 1, checked.stderr
    assert checked.stdout.count(f"network '{host_id[:12]}' not resolved") == 2, checked.stdout
    assert "HIGH     host-network" not in checked.stdout  # judged by the name alone
    exported = saferun("export", str(manifest), "--to", "compose", env=offline)
    assert exported.returncode == 0, exported.stderr
    assert f"saferun: warning: {manifest}: network '{host_id[:12]}' not resolved" in (
        exported.stderr)


def test_init_refuses_the_host_network_by_its_id(host_id: str, tmp_path: Path) -> None:
    for name in (host_id, host_id[:12]):
        out = tmp_path / "saferun.toml"
        result = saferun("init", "--from-docker-run",
                         f"docker run --network {name} saferun-test/busybox:1", "-o", str(out))
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "refused by rule 'host-network'" in result.stderr
        assert "the engine's host network 'host'" in result.stderr and not out.exists()


def test_init_keeps_a_bridge_network_and_says_when_it_cannot_resolve(
        host_id: str, tmp_path: Path) -> None:
    name = "hostile19-e2e-net"
    docker("network", "rm", name, check=False)
    network_id = docker("network", "create", name).stdout.strip()
    try:
        out = tmp_path / "bridge.toml"
        result = saferun("init", "--from-docker-run",
                         f"docker run --network {network_id[:12]} saferun-test/busybox:1",
                         "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert f'mode = "{network_id[:12]}"' in out.read_text()
        assert "not resolved" not in result.stderr
    finally:
        docker("network", "rm", name, check=False)
    offline = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    out = tmp_path / "offline.toml"
    result = saferun("init", "--from-docker-run",
                     f"docker run --network {host_id[:12]} saferun-test/busybox:1",
                     "-o", str(out), env=offline)
    assert result.returncode == 0, result.stderr
    assert f"network '{host_id[:12]}' not resolved" in result.stderr
    assert "not resolved" in out.read_text()
