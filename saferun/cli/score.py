"""`saferun score`: one exposure number and the weighted table behind it."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import echo_report, exit_on_error, exit_with
from saferun.cli.completion import complete_containers, complete_manifests
from saferun.policy.output import SCORE_FORMATS


@click.command()
@click.argument("manifest", required=False, type=click.Path(path_type=Path),
                shell_complete=complete_manifests)
@click.option("--docker-run", "line", metavar="LINE", help="Score a docker run command line.")
@click.option("--container", metavar="NAME", shell_complete=complete_containers,
              help="Score a container from docker inspect.")
@click.option("--format", "output_format", type=click.Choice(SCORE_FORMATS.choices()),
              default="table", show_default=True)
def score(manifest: Path | None, line: str | None, container: str | None,
          output_format: str) -> None:
    """Exposure of one container from 0 (locked down) to 10 (unconfined).

    Like `systemd-analyze security`: every rule contributes badness x weight, normalised to
    10, and the table shows what each item adds. A root-equivalent finding (privileged,
    the Docker socket, a writable host / ...) scores 10. Exit 0, or 2 for an invalid input.
    """
    from saferun.app.check import check_all

    given = [x for x in (manifest, line, container) if x is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of MANIFEST, --docker-run LINE, --container NAME")
    with exit_on_error():
        reports = check_all((manifest,) if manifest else (), (line,) if line else (),
                            (container,) if container else ())
    echo_report(SCORE_FORMATS.formatter(output_format)(reports), output_format)
    exit_with(0 if reports[0].valid else 2)
