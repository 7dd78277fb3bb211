"""Findings and per-target reports: what check, score and verify hand to the formatters.

Pure. `judge` applies the rule table to a spec and attaches the written reasons that
suppress findings; `exit_code` maps reports to the CLI's codes (0 clean, 1 findings at or
above --fail-on, 2 an input could not be read or validated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from saferun.policy.rules import RULES, Policy, RuleResult, evaluate
from saferun.policy.score import Score, exposure
from saferun.policy.severity import Severity
from saferun.policy.spec import ContainerSpec

# Where a suppression came from; [allow]/[exceptions] weaken what runs, [policy] ignore
# only silences the lint finding.
BY_ALLOW = "[allow]"
BY_EXCEPTIONS = "[exceptions]"
BY_IGNORE = "[policy] ignore"
BY_LABEL = "io.saferun.exceptions label"
WEAKENINGS = frozenset({BY_ALLOW, BY_EXCEPTIONS, BY_LABEL})


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    kind: str = "policy"  # policy | drift | runtime
    suppressed: str | None = None  # the written reason, when suppressed
    suppressed_by: str | None = None

    @property
    def active(self) -> bool:
        return self.suppressed is None


@dataclass(frozen=True)
class TargetReport:
    """Everything found about one manifest, command line or container."""

    target: str
    origin: str  # manifest | docker-run | container
    error: str | None = None
    findings: tuple[Finding, ...] = ()
    score: Score | None = None
    notes: tuple[str, ...] = ()
    results: tuple[RuleResult, ...] = field(default=(), compare=False, repr=False)

    @property
    def valid(self) -> bool:
        return self.error is None


def judge(spec: ContainerSpec, *, policy: Policy | None = None,
          reasons: Mapping[str, tuple[str, str]] | None = None,
          ) -> tuple[tuple[Finding, ...], tuple[RuleResult, ...], Score]:
    """Apply every rule; `reasons` maps rule id -> (where it was given, written reason)."""
    reasons = reasons or {}
    results = evaluate(spec, policy)
    findings = []
    for result in results:
        given = reasons.get(result.rule.id)
        for hit in result.hits:
            findings.append(Finding(
                result.rule.id, hit.severity or result.rule.severity, hit.detail,
                suppressed=given[1] if given else None, suppressed_by=given[0] if given else None))
    return tuple(findings), results, exposure(results)


def label_reasons(spec: ContainerSpec) -> dict[str, tuple[str, str]]:
    """Reasons recorded at launch in the io.saferun.exceptions label, by rule id."""
    from saferun.model.refusals import LEGACY_KEYS

    out = {}
    for key, reason in spec.exceptions.items():
        rule = LEGACY_KEYS.get(key, key)
        if rule in RULES:
            out[rule] = (BY_LABEL, reason)
    return out


def exit_code(reports: Sequence[TargetReport], fail_on: Severity, *,
              allow_exceptions: bool = True) -> int:
    """2 when an input is invalid; 1 when an active finding reaches `fail_on`.

    A finding suppressed by [allow]/[exceptions] (a weakening of what runs) fails whatever
    its severity unless `allow_exceptions`: a pull request that adds one must be looked at.
    [policy] ignore suppressions never fail.
    """
    if any(not r.valid for r in reports):
        return 2
    for report in reports:
        for finding in report.findings:
            if finding.active and finding.severity >= fail_on:
                return 1
            if not allow_exceptions and finding.suppressed_by in WEAKENINGS:
                return 1
    return 0
