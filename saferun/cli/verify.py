"""`saferun verify`."""

from __future__ import annotations

import click

from saferun.cli.common import echo_report, exit_on_error, exit_with
from saferun.cli.completion import complete_running
from saferun.policy.output import CHECK_FORMATS
from saferun.policy.severity import Severity


@click.command()
@click.argument("containers", nargs=-1, shell_complete=complete_running)
@click.option("--all", "every", is_flag=True, help="Verify every running container.")
@click.option("--format", "output_format", type=click.Choice(CHECK_FORMATS.choices()),
              default="table", show_default=True)
@click.option("--fail-on", type=click.Choice(Severity.labels()),
              default="medium", show_default=True,
              help="Exit 1 when a finding or drift has this severity or higher.")
def verify(containers: tuple[str, ...], every: bool, output_format: str, fail_on: str) -> None:
    """Compare running CONTAINERS with their manifests and prove their controls from /proc.

    Drift (the container differs from the manifest whose sha256 it was started with) and
    controls the kernel does not enforce (CapBnd, NoNewPrivs, Seccomp, uid_map, mountinfo
    of the init process) are reported with the id of the rule they break, beside the
    policy findings. Exit 0 clean, 1 findings, 2 no such container, 3 engine unreachable.
    """
    from saferun.app.verify import verify_all
    from saferun.policy.report import exit_code

    if not containers and not every:
        raise click.UsageError("name CONTAINERS or pass --all")
    with exit_on_error():
        reports = verify_all(containers, every)
    echo_report(CHECK_FORMATS.formatter(output_format)(reports), output_format)
    exit_with(exit_code(reports, Severity.parse(fail_on)))
