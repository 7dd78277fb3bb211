"""`saferun why CONTAINER [--manifest FILE]`: explain a failure and name the manifest change.

Reads the container's output (read-only-filesystem errors), `docker diff` (what a writable
root was written to) and, with a manifest, replays the app with its own seccomp profile
logging instead of refusing, so each refused call is named (saferun.app.learn.diagnose).
What the evidence means is decided in saferun.learn.why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from saferun.engine.docker_cli import docker
from saferun.errors import UsageError
from saferun.learn.why import Finding


def why(container: str, manifest: Path | None, duration: float,
        say: Callable[[str], None]) -> list[Finding]:
    """The findings for CONTAINER (a replay of `manifest` reports its progress to `say`)."""
    from saferun.learn.learning import parse_docker_diff
    from saferun.learn.why import explain

    found = docker("inspect", container, check=False)
    if found.returncode != 0:
        raise UsageError(f"no container named {container!r}: {found.stderr.strip()}")
    info = json.loads(found.stdout)[0]
    host = info.get("HostConfig") or {}
    writable = [*(host.get("Tmpfs") or {}), *(m.get("Destination", "")
                                              for m in info.get("Mounts") or [])]
    logs = docker("logs", container, check=False)
    diff = [] if host.get("ReadonlyRootfs") else parse_docker_diff(
        docker("diff", container, check=False).stdout)
    denied: tuple[str, ...] = ()
    learned = False
    if manifest is not None:
        denied, learned = replay(manifest, duration, say)
    from saferun.profiles.seccomp import load_data

    return list(explain(denied_syscalls=denied, output=logs.stdout + logs.stderr, diff=diff,
                        writable=writable, capability_calls=load_data().capabilities,
                        learned=learned))


def replay(manifest: Path, duration: float,
           say: Callable[[str], None]) -> tuple[tuple[str, ...], bool]:
    """(the calls MANIFEST's profile denies in a replay, whether it has a learned list)."""
    from saferun.app.learn import Workload, check_runtime, diagnose, host_facts
    from saferun.engine.audit import check_recording_possible
    from saferun.inputs.loader import load_manifest

    loaded = load_manifest(manifest)
    check_runtime(loaded)
    check_recording_possible()
    result = diagnose(loaded, host_facts(), Workload(duration=duration), None, say)
    return tuple(sorted(result.calls)), loaded.seccomp.learned is not None
