"""`saferun why CONTAINER [--manifest FILE]`: explain a failure and name the manifest change.

The evidence is gathered and replayed by saferun.app.why. Exit 0 nothing found, 1
findings, 2 usage, 3 engine or host unavailable, 4 the replay could not run.
"""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import exit_on_error, exit_with
from saferun.cli.completion import complete_containers, complete_manifests


@click.command()
@click.argument("container", shell_complete=complete_containers)
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              shell_complete=complete_manifests,
              help="Replay this manifest with seccomp denials logged (root) to name refused calls.")
@click.option("--duration", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="How long the replay keeps the app running.")
def why(container: str, manifest: Path | None, duration: float) -> None:
    """Name the manifest change that would allow each denial CONTAINER ran into.

    Reads its output and docker's start error (read-only filesystem, permission denied,
    operation not permitted, pid files, ports in use) and `docker diff`. With --manifest
    (root) it replays the app with seccomp denials logged, on random host ports so that it
    runs beside the original. Exit 0 nothing found, 1 findings, 2 usage, 3 engine or host
    unavailable, 4 the replay could not run (nothing is concluded from it).
    """
    with exit_on_error():
        from saferun.app.why import why as explain_container

        findings = explain_container(container, manifest, duration,
                                     lambda line: click.echo(f"saferun: {line}", err=True))
        for finding in findings:
            click.echo(finding.line())
        if not findings:
            click.echo(f"saferun: no denial found for {container}"
                       + ("" if manifest else " (add --manifest to replay it with seccomp "
                          "denials logged)"), err=True)
            return
    exit_with(1)
