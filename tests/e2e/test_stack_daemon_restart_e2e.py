"""A stack on a private second dockerd that is killed (SIGKILL) and started again.

The rules live in the sandboxes' network namespaces, so nothing of them may outlive the
containers: after the restart no process and no mount on the host holds any of the stack's
namespaces (so the kernel has freed them and their rules), the host's ruleset is as before
`up` once `down` ran (tests/e2e/host_rules.py; the daemon writes no iptables rules, see the
fixture, so what is compared is what saferun could have left), and `ps`/`down` work.
The daemon is this test's own (../shared/ENGINE.md "A second engine"): its bridge, data,
exec root, socket and pidfile; the fixture kills only the pid it started, then removes the
bridge and the directories. The shared daemon is never restarted.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from tests.e2e.conftest import BUSYBOX_IMAGE, SESSION_ID, saferun
from tests.e2e.extra_daemons import ExtraDaemon, running
from tests.e2e.host_rules import leftovers, snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

SOCKET = "unix:///run/docker-stackd.sock"
STACK = f"rs-{SESSION_ID[:8]}"


@pytest.fixture(scope="module")
def engine(busybox_image: str) -> Iterator[ExtraDaemon]:
    daemon = ExtraDaemon(
        name="dockerd-stackd", bridge="br-stackd", bridge_cidr="172.31.246.1/24",
        data_root=Path("/var/lib/docker-stackd"), exec_root=Path("/run/docker-stackd"),
        pidfile=Path("/run/docker-stackd/dockerd.pid"), hosts=[SOCKET],
        # its networks' subnets apart from the shared engine's and the other test daemons'
        address_pool="172.31.240.0/22",
        # A dockerd that manages iptables deletes and recreates the DOCKER chains it shares
        # with the main engine when it starts (libnetwork's removeIPChains), dropping the
        # main engine's port forwards; this test starts its daemon twice. Without it, docker
        # writes nothing to the host for this daemon, so the host diff below is saferun's.
        extra_args=["--iptables=false"],
        client_env={"DOCKER_HOST": SOCKET}, log=Path("/var/log/dockerd-stackd.log"))
    with running(daemon, busybox_image):
        yield daemon


def _write_stack(directory: Path) -> Path:
    services = {"web": ({"egress": ["db:5432"]}, ["db"]),
                "db": ({"ingress": ["web:5432"], "egress": "none"}, [])}
    for name, (network, _) in services.items():
        document = {"app": {"name": name, "image": BUSYBOX_IMAGE,
                            "command": ["nc", "-ll", "-p", "5432", "-e", "echo", name]},
                    "network": network}
        (directory / f"{name}.toml").write_text(tomli_w.dumps(document))
    # No sandbox_image: the default is made on this fresh engine from the host's busybox.
    stack = {"stack": {"name": STACK},
             "services": {n: {"manifest": f"{n}.toml", "depends_on": d}
                          for n, (_, d) in services.items()}}
    path = directory / "saferun.stack.toml"
    path.write_text(tomli_w.dumps(stack))
    return path


def _rules_in(pid: int) -> bool:
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "nft", "list", "table",
                           "inet", "saferun"], capture_output=True, check=False).returncode == 0


def _net_namespace(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _holders(namespaces: set[int]) -> list[str]:
    """Processes in, and mounts of, any of these network namespaces (by inode)."""
    held = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                inode = os.stat(entry / "ns" / "net").st_ino
            except OSError:
                continue  # ended meanwhile
            if inode in namespaces:
                held.append(f"process {entry.name}")
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    held += [line for line in mounts for inode in namespaces if f"net:[{inode}]" in line]
    return held


def test_a_daemon_restart_leaves_nothing_of_the_stack(engine: ExtraDaemon,
                                                      tmp_path: Path) -> None:
    path = _write_stack(tmp_path)
    before = snapshot()
    result = saferun("up", str(path), env=engine.env(), timeout=300)
    try:
        assert result.returncode == 0, result.stderr
        network = engine.docker("network", "inspect", "--format", "{{.Id}}",
                                f"saferun-{STACK}").stdout.strip()
        ours = frozenset({f"br-{network[:12]}"})
        names = [f"{STACK}-{s}{suffix}" for s in ("web", "db") for suffix in ("", "-sandbox")]
        pids = [int(engine.docker("inspect", "--format", "{{.State.Pid}}", n).stdout)
                for n in names]
        namespaces = {_net_namespace(pid) for pid in pids}
        assert len(namespaces) == 2  # each service in its sandbox's namespace
        assert len(_holders(namespaces)) >= 4  # the check sees them while they are held

        engine.kill()
        # Until the daemon is back its containers outlive it (their shims), rules in place.
        assert _rules_in(pids[1]), "the sandbox lost its rules when dockerd died"
        engine.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _holders(namespaces):
            time.sleep(0.5)
        assert _holders(namespaces) == [], "the stack's namespaces outlived the restart"

        ps = saferun("ps", str(path), env=engine.env(), timeout=120)
        assert ps.returncode == 0, ps.stderr
        rows = [line.split("\t") for line in ps.stdout.splitlines()[1:]]
        assert sorted(row[0] for row in rows) == ["db", "web"], ps.stdout
        assert all(row[2] != "running" and row[7] == "- (not running)" for row in rows), ps.stdout
        again = saferun("up", str(path), env=engine.env(), timeout=120)
        assert again.returncode == 125 and "saferun down" in again.stderr  # not a half stack
    finally:
        down = saferun("down", str(path), env=engine.env(), timeout=300)
    assert down.returncode == 0, down.stderr
    assert engine.docker("ps", "-aq", "--filter", f"label=io.saferun.stack={STACK}").stdout == ""
    assert engine.docker("network", "ls", "-q", "--filter",
                         f"label=io.saferun.stack={STACK}").stdout == ""
    assert leftovers(before, snapshot(), ours) == []
