"""`saferun doctor`."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table for people, json (schema saferun.doctor/1) for tools.")
@click.option("--fail-on", type=click.Choice(["info", "low", "medium", "high", "critical"]),
              default="medium", show_default=True,
              help="Exit 1 when a failed check has this severity or higher.")
def doctor(output_format: str, fail_on: str) -> None:
    """Audit the host and the Docker daemon (CIS Docker Benchmark sections 1-3).

    Checks the socket, daemon.json and TLS file modes, TCP listeners, userns-remap,
    live-restore, icc, daemon-wide no-new-privileges and ulimits, logging, seccomp and
    AppArmor/SELinux support, registered runtimes, the engine version and the cgroup
    version. Exit 0 clean, 1 findings at or above --fail-on, 3 engine unavailable.
    """
    from saferun.cli.common import exit_on_error
    from saferun.engine.host import gather_audit
    from saferun.policy.host_checks import FORMATTERS, OutputFormat, Severity, exit_code, run_checks

    with exit_on_error():
        audit = gather_audit()
    findings = run_checks(audit)
    click.echo(FORMATTERS[OutputFormat(output_format)](findings, audit))
    sys.exit(exit_code(findings, Severity(fail_on)))
