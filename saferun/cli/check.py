"""`saferun check`: lint manifests, `docker run` lines and containers, for CI."""

from __future__ import annotations

from pathlib import Path

import click

from saferun.cli.common import echo_report, exit_on_error, exit_with
from saferun.cli.completion import complete_containers, complete_manifests
from saferun.policy.output import CHECK_FORMATS
from saferun.policy.severity import Severity


@click.command()
@click.argument("manifests", nargs=-1, type=click.Path(path_type=Path),
                shell_complete=complete_manifests)
@click.option("--docker-run", "lines", multiple=True, metavar="LINE",
              help='A docker run command line to judge, e.g. '
              '"docker run -p 80:80 nginx:1.27". Repeatable.')
@click.option("--container", "containers", multiple=True, metavar="NAME",
              shell_complete=complete_containers,
              help="A container to judge from docker inspect. Repeatable.")
@click.option("--format", "output_format", type=click.Choice(CHECK_FORMATS.choices()),
              default="table", show_default=True)
@click.option("--fail-on", type=click.Choice(Severity.labels()), default="medium",
              show_default=True,
              help="Exit 1 when an unsuppressed finding has this severity or higher.")
@click.option("--allow-exceptions", is_flag=True,
              help="Do not fail on weakenings a manifest allows with a reason "
              "([allow], [exceptions]).")
def check(manifests: tuple[Path, ...], lines: tuple[str, ...], containers: tuple[str, ...],
          output_format: str, fail_on: str, allow_exceptions: bool) -> None:
    """Check MANIFESTS (and --docker-run lines, --container names) against the policy rules.

    A saferun.stack.toml among MANIFESTS stands for its services' manifests, judged on the
    stack's own network.

    Each rule implements a CIS Docker Benchmark v1.6.0 recommendation (see `saferun
    explain RULE` and docs/policy.md). Exit 0 when clean, 1 when a finding reaches
    --fail-on or a manifest weakens a protection through [allow]/[exceptions] (unless
    --allow-exceptions), 2 when an input is invalid, 3 when the engine is unreachable.
    """
    from saferun.app.check import check_all
    from saferun.policy.report import exit_code

    if not (manifests or lines or containers):
        raise click.UsageError("give at least one MANIFEST, --docker-run LINE or --container NAME")
    with exit_on_error():
        reports = check_all(manifests, lines, containers)
    echo_report(CHECK_FORMATS.formatter(output_format)(reports), output_format)
    exit_with(exit_code(reports, Severity.parse(fail_on), allow_exceptions=allow_exceptions))
