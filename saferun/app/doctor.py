"""`saferun doctor`: gather the host audit at the edge, judge it with the pure host checks."""

from __future__ import annotations

from dataclasses import dataclass

from saferun.policy.host_checks import Finding, HostAudit, exit_code, run_checks
from saferun.policy.severity import Severity


@dataclass(frozen=True)
class DoctorReport:
    audit: HostAudit
    findings: list[Finding]

    def exit_code(self, fail_on: Severity) -> int:
        """0 clean, 1 when a failed check reaches `fail_on`."""
        return exit_code(self.findings, fail_on)


def audit_host() -> DoctorReport:
    """Read the host and the daemon once (EngineUnavailable when it cannot be reached)."""
    from saferun.engine import host

    audit = host.gather_audit()
    return DoctorReport(audit, run_checks(audit))
