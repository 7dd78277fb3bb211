"""The scanner gate: which scanner to run, how to read its report, whether to let the image run.

Pure decisions over plain values; saferun.engine.supply_tools runs the scanner (the subprocess
edge). Trivy (`trivy image --format json --quiet IMAGE`) and Grype (`grype docker:IMAGE -o
json`) reports are parsed into one `Vulnerability` type, and the gate blocks every finding
at or above the policy's severity, listing them. A gate that is required never skips
silently: no scanner installed, or a scanner that failed (typically because it could not
download or update its vulnerability database, which needs the network), is a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from saferun.errors import ReportError
from saferun.policy.severity import Severity

SCANNERS = ("trivy", "grype")

# Scanner severities -> ours. Unknown stays None: it never blocks, but it is counted.
_TRIVY = {"LOW": Severity.LOW, "MEDIUM": Severity.MEDIUM, "HIGH": Severity.HIGH,
          "CRITICAL": Severity.CRITICAL}
_GRYPE = {"negligible": Severity.INFO, "low": Severity.LOW, "medium": Severity.MEDIUM,
          "high": Severity.HIGH, "critical": Severity.CRITICAL}

# Phrases in a scanner's error output that mean its vulnerability database is unusable.
DB_FAILURE_MARKERS = ("db", "database", "vulnerability-db", "trivy-db", "listing.json",
                      "ghcr.io/aquasecurity", "toolbox-data.anchore.io")


@dataclass(frozen=True)
class Vulnerability:
    id: str
    package: str
    installed: str
    fixed: str  # "" when no fix is known
    severity: Severity | None  # None: the scanner does not know
    target: str = ""  # where the package was found (Trivy's target, Grype's artifact type)

    def describe(self) -> str:
        fix = f", fixed in {self.fixed}" if self.fixed else ", no fix yet"
        level = self.severity.label if self.severity is not None else "unknown"
        return f"{self.id} ({level}) in {self.package} {self.installed}{fix}"


def parse_trivy(document: Any) -> list[Vulnerability]:
    """Trivy's JSON report (schema 2: {"Results": [...]}; older: a bare list of results)."""
    results = document.get("Results") if isinstance(document, dict) else document
    if not isinstance(results, list):
        raise ReportError("a Trivy report has a Results list")
    found = []
    for result in results:
        if not isinstance(result, dict):
            raise ReportError("a Trivy result is an object")
        for item in result.get("Vulnerabilities") or []:
            found.append(Vulnerability(
                id=str(item.get("VulnerabilityID", "")), package=str(item.get("PkgName", "")),
                installed=str(item.get("InstalledVersion", "")),
                fixed=str(item.get("FixedVersion") or ""),
                severity=_TRIVY.get(str(item.get("Severity", "")).upper()),
                target=str(result.get("Target", ""))))
    return found


def parse_grype(document: Any) -> list[Vulnerability]:
    """Grype's JSON report ({"matches": [{"vulnerability": ..., "artifact": ...}]})."""
    if not isinstance(document, dict) or not isinstance(document.get("matches"), list):
        raise ReportError("a Grype report has a matches list")
    found = []
    for match in document["matches"]:
        vuln, artifact = match.get("vulnerability") or {}, match.get("artifact") or {}
        fix = vuln.get("fix") or {}
        versions = (fix.get("versions") or []) if fix.get("state") == "fixed" else []
        found.append(Vulnerability(
            id=str(vuln.get("id", "")), package=str(artifact.get("name", "")),
            installed=str(artifact.get("version", "")), fixed=", ".join(map(str, versions)),
            severity=_GRYPE.get(str(vuln.get("severity", "")).lower()),
            target=str(artifact.get("type", ""))))
    return found


PARSERS = {"trivy": parse_trivy, "grype": parse_grype}


def parse_report(tool: str, text: str) -> list[Vulnerability]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"{tool} did not print a JSON report ({exc})") from None
    return PARSERS[tool](document)


def choose_scanner(wanted: str, installed: Iterable[str]) -> str | None:
    """`trivy`/`grype`: that one if installed; `any`: Trivy, else Grype; None: none usable."""
    have = set(installed)
    candidates = SCANNERS if wanted == "any" else (wanted,)
    return next((tool for tool in candidates if tool in have), None)


def scanner_argv(tool: str, image: str) -> list[str]:
    """The scanner's command line: JSON to stdout, progress off, the local engine's image."""
    if tool == "trivy":
        return ["trivy", "image", "--format", "json", "--quiet", image]
    return ["grype", f"docker:{image}", "-o", "json", "--quiet"]


@dataclass(frozen=True)
class ScanDecision:
    """What the gate decided. `allowed` False stops saferun run (exit 125)."""

    allowed: bool
    status: str  # passed | blocked | refused | skipped
    reason: str
    tool: str | None = None
    blocking: tuple[Vulnerability, ...] = field(default=())
    counts: tuple[tuple[str, int], ...] = ()  # severity label -> number found

    def record(self) -> dict[str, Any]:
        """The decision as kept in the container's io.saferun.image-policy label."""
        return {"status": self.status, "tool": self.tool, "reason": self.reason,
                "blocking": [v.id for v in self.blocking][:20], "counts": dict(self.counts)}


def _counts(vulns: list[Vulnerability]) -> tuple[tuple[str, int], ...]:
    labels = [v.severity.label if v.severity is not None else "unknown" for v in vulns]
    return tuple((label, labels.count(label)) for label in
                 ("critical", "high", "medium", "low", "info", "unknown") if label in labels)


def judge_report(tool: str, vulns: list[Vulnerability], fail_on: Severity) -> ScanDecision:
    """Block every vulnerability at or above `fail_on`; list them, worst first."""
    blocking = sorted((v for v in vulns if v.severity is not None and v.severity >= fail_on),
                      key=lambda v: (-(v.severity or 0), v.id, v.package))
    unique = tuple(dict.fromkeys(blocking))
    counts = _counts(vulns)
    if unique:
        return ScanDecision(False, "blocked",
                            f"{tool} found {len(unique)} vulnerabilit"
                            f"{'y' if len(unique) == 1 else 'ies'} at or above "
                            f"{fail_on.label}", tool, unique, counts)
    return ScanDecision(True, "passed", f"{tool}: nothing at or above {fail_on.label} "
                        f"({len(vulns)} below)", tool, (), counts)


def missing_scanner(wanted: str, required: bool) -> ScanDecision:
    names = "Trivy or Grype" if wanted == "any" else wanted.capitalize()
    if required:
        return ScanDecision(False, "refused", f"the scan gate is required and {names} is not "
                            "installed; saferun does not skip a required scan")
    return ScanDecision(True, "skipped", f"{names} is not installed; scan skipped "
                        "([policy] scan.required = false)")


def failed_scanner(tool: str, returncode: int, stderr: str, required: bool) -> ScanDecision:
    """A scanner that exited non-zero: its database could not be updated, or another error."""
    tail = " ".join(stderr.strip().splitlines()[-3:])[-400:] or f"exit {returncode}"
    lowered = tail.lower()
    what = ("could not update its vulnerability database" if any(
        marker in lowered for marker in DB_FAILURE_MARKERS) else "failed")
    reason = f"{tool} {what} (exit {returncode}): {tail}"
    if required:
        return ScanDecision(False, "refused", f"the scan gate is required and {reason}", tool)
    return ScanDecision(True, "skipped", f"{reason}; scan skipped ([policy] scan.required = "
                        "false)", tool)


def unreadable_report(tool: str, problem: str, required: bool) -> ScanDecision:
    if required:
        return ScanDecision(False, "refused", f"the scan gate is required and {problem}", tool)
    return ScanDecision(True, "skipped", f"{problem}; scan skipped", tool)
