"""`saferun why CONTAINER [--manifest FILE]`: explain a failure and name the manifest change.

Reads the container's output (read-only-filesystem errors), `docker diff` (what a writable
root was written to) and, with `--manifest`, replays the app with its own seccomp profile
logging instead of refusing, so each refused call is named. Exit 0 nothing found, 1
findings, 2 usage, 3 engine or host unavailable.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from saferun.cli.common import exit_on_error
from saferun.errors import UsageError


@click.command()
@click.argument("container")
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Replay this manifest with seccomp denials logged (root) to name refused calls.")
@click.option("--duration", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="How long the replay keeps the app running.")
def why(container: str, manifest: Path | None, duration: float) -> None:
    """Name the manifest change that would allow each denial CONTAINER ran into."""
    with exit_on_error():
        from saferun.cli.learn import _docker
        from saferun.learn.learning import parse_docker_diff
        from saferun.learn.why import explain

        found = _docker("inspect", container, check=False)
        if found.returncode != 0:
            raise UsageError(f"no container named {container!r}: {found.stderr.strip()}")
        info = json.loads(found.stdout)[0]
        host = info.get("HostConfig") or {}
        writable = [*(host.get("Tmpfs") or {}), *(m.get("Destination", "")
                                                  for m in info.get("Mounts") or [])]
        logs = _docker("logs", container, check=False)
        diff = [] if host.get("ReadonlyRootfs") else parse_docker_diff(
            _docker("diff", container, check=False).stdout)
        denied: tuple[str, ...] = ()
        learned = False
        if manifest is not None:
            denied, learned = _replay(manifest, duration)
        from saferun.profiles.seccomp import load_data

        findings = explain(denied_syscalls=denied, output=logs.stdout + logs.stderr, diff=diff,
                           writable=writable, capability_calls=load_data().capabilities,
                           learned=learned)
        for finding in findings:
            click.echo(finding.line())
        if not findings:
            click.echo(f"saferun: no denial found for {container}"
                       + ("" if manifest else " (add --manifest to replay it with seccomp "
                          "denials logged)"), err=True)
            return
        raise SystemExit(1)


def _replay(manifest: Path, duration: float) -> tuple[tuple[str, ...], bool]:
    from saferun.cli.learn import Workload, check_runtime, diagnose, host_facts
    from saferun.engine.audit import check_recording_possible
    from saferun.inputs.loader import load_manifest

    loaded = load_manifest(manifest)
    check_runtime(loaded)
    check_recording_possible()
    result = diagnose(loaded, host_facts(), Workload(duration=duration), None,
                      lambda line: click.echo(f"saferun: {line}", err=True))
    return tuple(sorted(result.calls)), loaded.seccomp.learned is not None
