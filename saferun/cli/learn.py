"""`saferun learn MANIFEST [-- WORKLOAD...]`: record what the app calls, write, prove it.

The options are parsed here; the learning itself (runs, recording, verification, the
report) is saferun.app.learn.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from saferun.cli.common import exit_on_error
from saferun.cli.completion import complete_manifests
from saferun.cli.style import progress
from saferun.errors import UsageError


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path),
                shell_complete=complete_manifests)
@click.argument("workload", nargs=-1, type=click.UNPROCESSED)
@click.option("--exec", "exec_cmd", metavar="CMD",
              help="Also run CMD inside the container (docker exec) while the app runs.")
@click.option("--load", "load_cmd", metavar="CMD",
              help="Run CMD on the host beside the container (e.g. requests to a published "
              "port); $SAFERUN_LEARN_CONTAINER names the container.")
@click.option("--duration", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Keep the app running this long while you exercise it.")
@click.option("--runs", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Record this many runs and merge them.")
@click.option("--write-manifest", is_flag=True,
              help="Write the result into MANIFEST (comments kept).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the enforcing seccomp profile to FILE instead.")
@click.option("--verify", is_flag=True, help="Run the workload again enforcing the result.")
@click.option("--minimize-caps", is_flag=True,
              help="Drop each kept capability the workload passes without (one run each; slow).")
@click.option("--timeout", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds a workload may take. Each learning container also ends by "
              "itself within a bound derived from this (docs/learning.md), even if saferun "
              "is killed.")
@click.option("--audit-buffer", type=click.IntRange(min=256), metavar="BYTES",
              help="Force the audit socket's receive buffer of the first attempt "
              "(tests loss handling).")
def learn(manifest: Path, workload: tuple[str, ...], exec_cmd: str | None, load_cmd: str | None,
          duration: float | None, runs: int, write_manifest: bool, output: Path | None,
          verify: bool, minimize_caps: bool, timeout: float, audit_buffer: int | None) -> None:
    """Record the system calls the app makes and write its minimal seccomp allow list.

    Needs root on the Docker host (the kernel's audit records) and the runc runtime.
    Exit 0 learned (and verified), 1 the workload failed, 2 usage, 3 recording impossible.
    """
    with exit_on_error():
        from saferun.app.learn import Workload
        from saferun.app.learn import learn as learn_manifest

        if write_manifest and output is not None:
            raise UsageError("--write-manifest and -o write different things: choose one")
        spec = Workload(command=tuple(workload) or None,
                        exec_argv=tuple(shlex.split(exec_cmd)) if exec_cmd else None,
                        load_argv=tuple(shlex.split(load_cmd)) if load_cmd else None,
                        duration=duration, timeout=timeout)
        with progress(f"learning {manifest.name}: {runs} run(s)") as advance:
            def say(line: str) -> None:
                # the lines stay; the spinner shows the latest with the time
                advance(say=f"saferun: {line}",
                        description=f"learning {manifest.name}: {line[:70]}")

            learn_manifest(manifest, spec, runs=runs, verify=verify,
                           minimize_caps=minimize_caps, rcvbuf=audit_buffer,
                           write_manifest=write_manifest, output=output, say=say,
                           show=lambda text: advance(show=text))
