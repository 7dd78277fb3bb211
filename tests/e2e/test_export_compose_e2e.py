"""`saferun export --to compose` then `docker-compose up -d` on the real engine: the service
runs with the same hardening the core's E2E tests check, read from inside the container and
from `docker inspect`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E_LABEL, IN_CI, SESSION_ID, docker, inspect, saferun

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def compose_bin() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if IN_CI:
            pytest.fail("docker-compose is missing (CI=true: install Debian's docker-compose)")
        pytest.skip("docker-compose is not installed")
    return found


@pytest.fixture
def compose_up(compose_bin: str, tmp_path: Path) -> Iterator[Callable[[Path], dict[str, Any]]]:
    """Export a manifest, `docker-compose up -d` it, return the container's inspect data."""
    out = tmp_path / "deploy"
    project = f"saferun-e2e-{SESSION_ID}"

    def run_compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([compose_bin, "-p", project, *args], cwd=out, capture_output=True,
                              text=True, timeout=180, check=False)

    def up(manifest: Path) -> dict[str, Any]:
        exported = saferun("export", str(manifest), "--to", "compose", "--compose-v1",
                           "-o", f"{out}/")
        assert exported.returncode == 0, exported.stderr
        started = run_compose("up", "-d")
        assert started.returncode == 0, started.stderr
        ids = run_compose("ps", "-q").stdout.split()
        assert len(ids) == 1, ids
        return inspect(ids[0])

    yield up
    if out.is_dir():
        down = run_compose("down", "--volumes", "--remove-orphans")
        assert down.returncode == 0, down.stderr


def in_container(container: str, script: str) -> str:
    return docker("exec", container, "sh", "-c", script).stdout


def test_compose_service_runs_hardened(e2e_manifest: Callable[..., Path],
                                       compose_up: Callable[[Path], dict[str, Any]]) -> None:
    manifest = e2e_manifest({
        "app": {"name": "e2e-export", "command": ["sleep", "300"]},
        "network": {"ports": [{"container": 8080}]},
    })
    info = compose_up(manifest)
    container = info["Id"]
    assert info["State"]["Running"] is True
    assert info["Config"]["Labels"][E2E_LABEL[0]] == E2E_LABEL[1]

    # From inside: the same facts the core's E2E tests read.
    assert in_container(container, "id -u").strip() == "65534"
    status = dict(line.split(":\t", 1) for line in
                  in_container(container, "cat /proc/self/status").splitlines() if ":\t" in line)
    assert int(status["CapEff"].strip(), 16) == 0
    assert int(status["CapBnd"].strip(), 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"
    denied = docker("exec", container, "touch", "/probe", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    in_container(container, "touch /tmp/ok")  # the sized tmpfs stays writable
    mounts = in_container(container, "cat /proc/mounts")
    tmp = next(line for line in mounts.splitlines() if line.split()[1] == "/tmp")
    assert {"noexec", "nosuid", "nodev"} <= set(tmp.split()[3].split(","))

    # From docker inspect: the HostConfig the core sets.
    host = info["HostConfig"]
    assert info["Config"]["User"] == "65534:65534"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["ReadonlyRootfs"] is True
    assert host["Privileged"] is False
    assert "no-new-privileges:true" in host["SecurityOpt"]
    seccomp = [o for o in host["SecurityOpt"] if o.startswith("seccomp=")]
    assert len(seccomp) == 1
    written = json.loads((Path(manifest).parent / "deploy" / "e2e-export.seccomp.json").read_text())
    assert json.loads(seccomp[0].removeprefix("seccomp=")) == written
    assert host["Memory"] == 512 * 2**20 and host["MemorySwap"] == 512 * 2**20
    assert host["NanoCpus"] == 10**9
    assert host["PidsLimit"] == 256
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=67108864,mode=1777"}
    assert host["Runtime"] == "runc"
    assert host["RestartPolicy"]["Name"] in ("no", "")
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-file": "3", "max-size": "10m"}}
    bindings = host["PortBindings"]["8080/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
