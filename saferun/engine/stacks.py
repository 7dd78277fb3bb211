"""The docker side of a stack: its network, sandboxes, containers, and the rollback guard.

Everything a stack creates carries the label io.saferun.stack=NAME, so `down` (and the guard
of an interrupted `up`) finds it all by that label, not by a list kept somewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from saferun.engine.docker_cli import docker, docker_cli
from saferun.model.normalise import is_anonymous_volume
from saferun.model.stack import STACK_LABEL, network_name

T = TypeVar("T")


def create_network(stack: str, session: Any) -> str:
    """The stack's private bridge network; its id."""
    return str(session.create_network(network_name(stack), {STACK_LABEL: stack}))


def stack_exists(stack: str, session: Any) -> bool:
    """Whether anything labelled with the stack is there (an EngineSession asks)."""
    containers, networks = session.labelled_ids(f"{STACK_LABEL}={stack}")
    return bool(containers or networks)


def create_container(argv: list[str], seccomp_profile: str | None = None, *,
                     body: dict[str, Any] | None = None, session: Any = None) -> str:
    """Create a container, not started: through the Engine API with `body` when given and
    the engine is local (a docker process each costs more), else by the rendered
    `docker create ...` argv (which also pulls a missing image). Its id; RequirementUnmet
    with the engine's message when it fails."""
    from saferun.engine.docker_cli import error_text, run_docker
    from saferun.errors import RequirementUnmet

    name = _container_name(argv)
    if body is not None and session is not None:
        created, refused = session.create_container(name, body)
        if created is not None:
            return str(created)
        if refused and "No such image" not in refused:
            raise RequirementUnmet(f"`docker create {name}` failed: {refused}")
    result = run_docker(argv, seccomp_profile, timeout=300)
    if result.returncode != 0:
        raise RequirementUnmet(f"`docker create {name}` failed: {error_text(result.stderr)}")
    return result.stdout.strip().splitlines()[-1]


def start_created(name: str, recreate: Callable[[], object], session: Any) -> bool:
    """Start a created container (an EngineSession asks); whether it had to be made again
    (a container that joined the old one's namespace must be too). RequirementUnmet with
    the engine's message when it does not start."""
    from saferun.errors import RequirementUnmet

    remade = False
    refused = session.start_container(name)
    if refused is not None and _TRANSIENT_START_FAILURE in refused:
        # The runtime's known race under parallel starts (docker/for-linux#647): the
        # container was created but its process never ran. Make it again and start it once.
        remove_container(name)
        recreate()
        remade = True
        refused = session.start_container(name)
    if refused is not None:
        raise RequirementUnmet(f"`docker start {name}` failed: {refused}")
    return remade


def remove_container(name: str) -> None:
    docker("rm", "-f", name, check=False)


_TRANSIENT_START_FAILURE = "cannot start a stopped process"


def _container_name(argv: list[str]) -> str:
    """The --name of a rendered `docker create` line (every stack container has one)."""
    return argv[argv.index("--name") + 1]


def in_parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls at once (the daemon works on them in parallel); their results, in
    order. The first failure is raised once all have ended."""
    from concurrent.futures import ThreadPoolExecutor

    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(len(calls), 8)) as pool:
        futures = [pool.submit(call) for call in calls]
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
    # Volumes docker made for the container itself (an image VOLUME or `-v /path`): `rm -v`
    # removes them, a named volume it leaves alone.
    anonymous_volumes: tuple[str, ...] = ()


def inspect_containers(names: list[str], stack: str) -> list[ContainerState]:
    if not names:
        return []
    result = docker("inspect", *names)
    states = []
    for data in json.loads(result.stdout):
        states.append(_state(data, stack))
    return states


def inspect_each(names: list[str], stack: str, session: Any) -> list[ContainerState]:
    """inspect_containers through an EngineSession (one API call per container over the
    local socket, which costs less than a docker process); RequirementUnmet if one is gone."""
    from saferun.errors import RequirementUnmet

    states = []
    for name in names:
        data = session.container_inspect(name)
        if data is None:
            raise RequirementUnmet(f"container {name} is gone (removed while `up` ran)")
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
        exit_code=int(state.get("ExitCode") or 0),
        anonymous_volumes=tuple(
            str(m["Name"]) for m in data.get("Mounts") or ()
            if m.get("Type") == "volume" and is_anonymous_volume(str(m.get("Name", "")))))


def stack_containers(stack: str) -> list[ContainerState]:
    ids = docker("ps", "-aq", "--filter", f"label={STACK_LABEL}={stack}").stdout.split()
    return inspect_containers(ids, stack)


@dataclass(frozen=True)
class RemovedStack:
    containers: list[str]
    networks: list[str]
    # The services' anonymous volumes: removed with `volumes`, else kept (they may hold data).
    volumes: list[str]


def remove_stack(stack: str, *, volumes: bool = False) -> RemovedStack:
    """Remove every container and network labelled with the stack. A service's anonymous
    volumes go only with `volumes`, as with `docker compose down -v`."""
    states = stack_containers(stack)
    # Services first: a sandbox's namespace is theirs until they are gone.
    ordered = sorted(states, key=lambda c: c.name.endswith("-sandbox"))
    kept_or_removed: list[str] = []
    for container in ordered:
        sandbox = container.name.endswith("-sandbox")
        if not sandbox:
            kept_or_removed.extend(container.anonymous_volumes)
        # -v: a sandbox image's VOLUMEs are never data.
        docker("rm", "-f", *(["-v"] if sandbox or volumes else []), container.name,
               check=False)
    networks = docker("network", "ls", "--format", "{{.Name}}", "--filter",
                      f"label={STACK_LABEL}={stack}").stdout.split()
    for name in networks:
        docker("network", "rm", name, check=False)
    return RemovedStack([c.name for c in ordered], networks, kept_or_removed)


# Run by `python -c`, standard library only: when `up` dies before it commits (SIGKILL, the
# OOM killer, a lost terminal), the read end sees end-of-file without the commit byte and
# removes what the stack has created so far.
# What `up` had in flight (docker clients, API requests the daemon carries on with) may
# still create a container after a first sweep, so the guard sweeps until two in a row
# find nothing (at most ~2 min).
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
        self._stack = stack
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-c", _GUARD, docker_cli(), f"{STACK_LABEL}={stack}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)

    def commit(self) -> None:
        self._finish(b"C")

    def roll_back(self) -> None:
        """Remove what was created now, and wait for it. The caller has seen every docker
        client it started end, so one sweep from here finds all; the guard stays armed
        until it is done, should this process die meanwhile."""
        remove_stack(self._stack)
        self.commit()

    def _finish(self, byte: bytes) -> None:
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            if byte:
                stdin.write(byte)
            stdin.close()
        if byte:
            self._process.wait(timeout=30)
