"""`saferun check`: validate manifests and report the deliberate weakenings they contain."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from saferun.errors import ManifestError, RequirementUnmet
from saferun.facts import HostFacts
from saferun.plan import build_plan

# Checking judges the manifest, not this host: plan against a daemon that has every feature.
IDEAL_FACTS = HostFacts(
    server_version="check",
    security_options=frozenset({"seccomp", "apparmor", "userns"}),
    runtimes=frozenset({"runc", "runsc", "kata"}),
)


@dataclass(frozen=True)
class Finding:
    key: str
    message: str


@dataclass(frozen=True)
class CheckResult:
    path: str
    error: str | None = None
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        return self.error is None


def check_manifest(path: Path) -> CheckResult:
    from saferun.loader import load_manifest

    try:
        manifest = load_manifest(path)
        build_plan(manifest, IDEAL_FACTS)
    except (ManifestError, RequirementUnmet) as exc:
        return CheckResult(str(path), error=exc.render())
    findings = tuple(
        Finding(f"exceptions.{key}", f"protection weakened on purpose: {reason}")
        for key, reason in sorted(manifest.exceptions.items())
    )
    return CheckResult(str(path), findings=findings)


def exit_code(results: list[CheckResult], *, fail_on_exceptions: bool) -> int:
    if any(not r.valid for r in results):
        return 2
    if fail_on_exceptions and any(r.findings for r in results):
        return 1
    return 0
