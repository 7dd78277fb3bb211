"""`saferun why CONTAINER [--manifest FILE]`: explain a failure and name the manifest change.

Reads the container's output and docker's start error (read-only filesystem, permission,
pid file, port and capability errors), `docker diff` (what a writable root was written to)
and, with a manifest, replays the app with its own seccomp profile logging instead of
refusing, so each refused call is named (saferun.app.learn.diagnose). The replay publishes
the manifest's ports on random host ports, so it runs beside the original; a replay that
cannot run is an error (ReplayFailed), never "no denial found". What the evidence means is
decided in saferun.learn.why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saferun.engine.docker_cli import docker
from saferun.errors import ReplayFailed, UsageError
from saferun.learn.why import Finding


@dataclass(frozen=True)
class Replayed:
    denied: tuple[str, ...]
    learned: bool  # the manifest has a learned list (the change goes there)
    allowed: frozenset[str]  # names its profile allows (some only for some arguments)


def why(container: str, manifest: Path | None, duration: float,
        say: Callable[[str], None]) -> list[Finding]:
    """The findings for CONTAINER (a replay of `manifest` reports its progress to `say`)."""
    from saferun.app.learn import guard_lifters
    from saferun.learn.learning import parse_docker_diff
    from saferun.learn.why import Context, explain
    from saferun.profiles.seccomp import load_data

    found = docker("inspect", container, check=False)
    if found.returncode != 0:
        raise UsageError(f"no container named {container!r}: {found.stderr.strip()}")
    info = json.loads(found.stdout)[0]
    host = info.get("HostConfig") or {}
    tmpfs = list(host.get("Tmpfs") or {})
    writable = [*tmpfs, *(m.get("Destination", "") for m in info.get("Mounts") or [])]
    context = Context(writable=writable, tmpfs=tmpfs,
                      user=str((info.get("Config") or {}).get("User") or ""),
                      ports=host_ports(host.get("PortBindings") or {}))
    logs = docker("logs", container, check=False)
    # Why the daemon could not start it (a port already allocated, a bind source missing).
    start_error = str((info.get("State") or {}).get("Error") or "")
    diff = [] if host.get("ReadonlyRootfs") else parse_docker_diff(
        docker("diff", container, check=False).stdout)
    replayed = Replayed((), False, frozenset())
    if manifest is not None:
        replayed = replay(manifest, duration, say)
    data = load_data()
    return list(explain(denied_syscalls=replayed.denied,
                        output="\n".join([start_error, logs.stdout, logs.stderr]), diff=diff,
                        writable=writable, capability_calls=data.capabilities,
                        learned=replayed.learned, allowed=replayed.allowed,
                        fallbacks=data.fallbacks, guards=guard_lifters(), context=context))


def host_ports(bindings: Mapping[str, Any]) -> dict[int, int]:
    """docker's HostConfig.PortBindings ({"80/tcp": [{"HostPort": "8080"}]}) -> {8080: 80}."""
    ports: dict[int, int] = {}
    for spec, binds in bindings.items():
        container = spec.partition("/")[0]
        for bind in binds or ():
            hostport = str((bind or {}).get("HostPort") or "")
            if hostport.isdigit() and container.isdigit() and int(hostport):
                ports[int(hostport)] = int(container)
    return ports


def replay(manifest: Path, duration: float, say: Callable[[str], None]) -> Replayed:
    """The calls MANIFEST's profile denies in a replay (its ports on random host ports)."""
    from saferun.app.learn import (
        NotStarted,
        Workload,
        check_runtime,
        host_facts,
        recorded_run,
        warn_unbounded,
    )
    from saferun.engine.audit import check_recording_possible
    from saferun.inputs.loader import load_manifest
    from saferun.learn.learning import replay_manifest
    from saferun.profiles.seccomp import listed_names

    loaded = load_manifest(manifest)
    check_runtime(loaded)
    warn_unbounded(loaded, say)
    check_recording_possible()
    facts = host_facts()
    workload = Workload(duration=duration, manifest_dir=str(manifest.resolve().parent))
    try:
        result = recorded_run(replay_manifest(loaded), facts, workload, rcvbuf=None,
                              label="replay with denials logged", say=say)
    except NotStarted as exc:
        raise ReplayFailed(
            f"the replay of {manifest} could not run, so its seccomp denials are unknown: "
            f"{exc.message}",
            fix="fix what the daemon refused (the message above is its own), then run "
            "`saferun why` again") from None
    listed = listed_names(loaded.seccomp, capabilities=frozenset(loaded.capabilities.add),
                          native_arch=facts.architecture, runtime=loaded.security.runtime)
    return Replayed(tuple(sorted(result.calls)), loaded.seccomp.learned is not None, listed)
