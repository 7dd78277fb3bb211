"""`saferun doctor`."""

from __future__ import annotations

import click

from saferun.cli.common import echo_report, exit_on_error, exit_with
from saferun.policy.host_checks import DOCTOR_FORMATS
from saferun.policy.severity import Severity


@click.command()
@click.option("--format", "output_format", type=click.Choice(DOCTOR_FORMATS.choices()),
              default="table", show_default=True,
              help="table for people, json (schema saferun.doctor/1) for tools.")
@click.option("--fail-on", type=click.Choice(Severity.labels()), default="medium",
              show_default=True, help="Exit 1 when a failed check has this severity or higher.")
def doctor(output_format: str, fail_on: str) -> None:
    """Audit the host and the Docker daemon (CIS Docker Benchmark sections 1-3).

    Checks the socket, daemon.json and TLS file modes, TCP listeners, userns-remap,
    live-restore, icc, daemon-wide no-new-privileges and ulimits, logging, seccomp and
    AppArmor/SELinux support, registered runtimes, the engine version and the cgroup
    version. Exit 0 clean, 1 findings at or above --fail-on, 3 engine unavailable.
    """
    from saferun.app.doctor import audit_host

    with exit_on_error():
        report = audit_host()
    echo_report(DOCTOR_FORMATS.formatter(output_format)(report.findings, report.audit) + "\n",
                output_format)
    exit_with(report.exit_code(Severity.parse(fail_on)))
