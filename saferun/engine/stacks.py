"""The docker side of a stack: its network, sandboxes, containers, and the rollback guard.

Everything a stack creates carries the label io.saferun.stack=NAME, so `down` (and the guard
of an interrupted `up`) finds it all by that label, not by a list kept somewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saferun.engine.docker_cli import docker, docker_cli
from saferun.model.stack import STACK_LABEL, network_name


def create_network(stack: str) -> str:
    """The stack's private bridge network; its id."""
    result = docker("network", "create", "--driver", "bridge",
                    "--label", f"{STACK_LABEL}={stack}", network_name(stack))
    return str(result.stdout.strip())


def stack_exists(stack: str) -> bool:
    containers = docker("ps", "-aq", "--filter", f"label={STACK_LABEL}={stack}").stdout.split()
    networks = docker("network", "ls", "-q", "--filter",
                      f"label={STACK_LABEL}={stack}").stdout.split()
    return bool(containers or networks)


def start_detached(argv: list[str], seccomp_profile: str | None = None) -> str:
    """Run a rendered `docker run -d ...` line; the container id. RequirementUnmet with
    docker's message when it does not start."""
    from saferun.engine.docker_cli import error_text, run_docker
    from saferun.errors import RequirementUnmet

    result = run_docker(argv, seccomp_profile, timeout=300)
    if result.returncode != 0 and _TRANSIENT_START_FAILURE in result.stderr:
        # The runtime's known race under parallel starts (docker/for-linux#647): the
        # container was created but its process never ran. Remove it and start it again once.
        docker("rm", "-f", _container_name(argv), check=False)
        result = run_docker(argv, seccomp_profile, timeout=300)
    if result.returncode != 0:
        raise RequirementUnmet(f"`docker run` failed: {error_text(result.stderr)}")
    return result.stdout.strip().splitlines()[-1]


_TRANSIENT_START_FAILURE = "cannot start a stopped process"


def _container_name(argv: list[str]) -> str:
    """The --name of a rendered `docker run` line (every stack container has one)."""
    return argv[argv.index("--name") + 1]


def start_all(runs: Sequence[tuple[list[str], str | None]]) -> list[str]:
    """Several `docker run -d` lines at once (the daemon starts them in parallel); their ids,
    in order. The first failure is raised once all have ended."""
    from concurrent.futures import ThreadPoolExecutor

    if len(runs) == 1:
        return [start_detached(*runs[0])]
    with ThreadPoolExecutor(max_workers=min(len(runs), 8)) as pool:
        futures = [pool.submit(start_detached, argv, seccomp) for argv, seccomp in runs]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


@dataclass(frozen=True)
class ContainerState:
    name: str
    labels: dict[str, str]
    status: str  # running, exited, created, ...
    health: str  # healthy, unhealthy, starting, or "" without a health check
    pid: int
    addresses: tuple[str, ...]  # on the stack network
    exit_code: int


def inspect_containers(names: list[str], stack: str) -> list[ContainerState]:
    if not names:
        return []
    result = docker("inspect", *names)
    states = []
    for data in json.loads(result.stdout):
        states.append(_state(data, stack))
    return states


def _state(data: dict[str, Any], stack: str) -> ContainerState:
    state = data.get("State") or {}
    networks = ((data.get("NetworkSettings") or {}).get("Networks") or {})
    endpoint = networks.get(network_name(stack)) or {}
    addresses = tuple(a for a in (endpoint.get("IPAddress"), endpoint.get("GlobalIPv6Address"))
                      if a)
    health = (state.get("Health") or {}).get("Status", "")
    return ContainerState(
        name=str(data.get("Name", "")).lstrip("/"),
        labels=dict((data.get("Config") or {}).get("Labels") or {}),
        status=str(state.get("Status", "")), health=str(health),
        pid=int(state.get("Pid") or 0), addresses=addresses,
        exit_code=int(state.get("ExitCode") or 0))


def stack_containers(stack: str) -> list[ContainerState]:
    ids = docker("ps", "-aq", "--filter", f"label={STACK_LABEL}={stack}").stdout.split()
    return inspect_containers(ids, stack)


def remove_stack(stack: str) -> tuple[list[str], list[str]]:
    """Remove every container and network labelled with the stack: (containers, networks)."""
    containers = [c.name for c in stack_containers(stack)]
    # Services first: a sandbox's namespace is theirs until they are gone.
    ordered = sorted(containers, key=lambda n: n.endswith("-sandbox"))
    for name in ordered:
        docker("rm", "-f", name, check=False)
    networks = docker("network", "ls", "--format", "{{.Name}}", "--filter",
                      f"label={STACK_LABEL}={stack}").stdout.split()
    for name in networks:
        docker("network", "rm", name, check=False)
    return ordered, networks


# Run by `python -c`, standard library only: when `up` dies before it commits (SIGKILL, the
# OOM killer, a lost terminal), the read end sees end-of-file without the commit byte and
# removes what the stack has created so far.
# The `docker run` clients `up` had started outlive it and may still create a container
# after a first sweep, so the guard sweeps until two in a row find nothing (at most ~2 min).
_GUARD = """\
import subprocess, sys, time
docker, label = sys.argv[1], sys.argv[2]
data = b""
while True:
    chunk = sys.stdin.buffer.read(1)
    if not chunk:
        break
    data += chunk
def sweep():
    ids = subprocess.run([docker, "ps", "-aq", "--filter", "label=" + label],
                         capture_output=True, text=True, timeout=60).stdout.split()
    if ids:
        subprocess.run([docker, "rm", "-f", *ids], capture_output=True, timeout=300)
    nets = subprocess.run([docker, "network", "ls", "-q", "--filter", "label=" + label],
                          capture_output=True, text=True, timeout=60).stdout.split()
    if nets:
        subprocess.run([docker, "network", "rm", *nets], capture_output=True, timeout=60)
    return bool(ids or nets)
if b"C" not in data:
    clean = 0
    for _ in range(120):
        clean = 0 if sweep() else clean + 1
        if clean >= 2:
            break
        time.sleep(1)
"""


class UpGuard:
    """Rolls back a stack whose `up` does not finish: `commit()` when it has."""

    def __init__(self, stack: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-c", _GUARD, docker_cli(), f"{STACK_LABEL}={stack}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)

    def commit(self) -> None:
        self._finish(b"C")

    def roll_back(self) -> None:
        """Remove what was created now, and wait for it."""
        self._finish(b"")
        self._process.wait(timeout=600)

    def _finish(self, byte: bytes) -> None:
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            if byte:
                stdin.write(byte)
            stdin.close()
        if byte:
            self._process.wait(timeout=30)
