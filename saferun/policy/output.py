"""Formatters for check/score/verify reports: each OutputFormat mapped to a pure function.

table (default, for people), json (for scripts; carries a schema version) and sarif
(SARIF 2.1.0 with rule metadata, for code-scanning tools). Each takes the reports and
returns text; none writes anywhere. CHECK_FORMATS (check, verify, image check) has all
three; SCORE_FORMATS has no sarif (a score is not a list of code-scanning results).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from saferun import __version__
from saferun.policy.catalogue import all_rules
from saferun.policy.formats import UNSUPPORTED, FormatterTable, OutputFormat
from saferun.policy.report import Finding, TargetReport
from saferun.policy.rules import RULES_TABLE, Rule
from saferun.policy.score import Score
from saferun.policy.severity import Severity

JSON_SCHEMA = "saferun.check/2"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning",
               Severity.LOW: "note", Severity.INFO: "note"}
# GitHub code scanning sorts security results by this property (CVSS-like, 0.1-10).
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5",
                     Severity.LOW: "3.0", Severity.INFO: "1.0"}


def pretty_json(document: Any) -> str:
    """json.dumps(document, indent=2) + newline, byte for byte (non-ASCII escaped): the C
    encoder writes it compact and msgspec indents it, as Python's indenting encoder is
    pure Python (a third of `saferun check --format sarif` over 1,000 manifests)."""
    import msgspec

    return msgspec.json.format(json.dumps(document).encode(), indent=2).decode() + "\n"


def _finding_line(finding: Finding) -> str:
    kind = "" if finding.kind == "policy" else f"[{finding.kind}] "
    line = f"  {finding.severity.label.upper():<8} {finding.rule:<24} {kind}{finding.message}"
    if finding.suppressed is not None:
        line += f"\n  {'':<8} {'':<24} suppressed by {finding.suppressed_by}: {finding.suppressed}"
    return line


def format_table(reports: Sequence[TargetReport]) -> str:
    out = []
    for report in reports:
        if report.error:
            out.append(f"{report.target}: INVALID\n  {report.error}")
            continue
        active = [f for f in report.findings if f.active]
        head = f"{report.target}: "
        head += f"{len(active)} finding(s)" if active else "ok"
        suppressed = len(report.findings) - len(active)
        if suppressed:
            head += f", {suppressed} suppressed"
        if report.score is not None:
            head += f"; exposure {report.score.value:.1f} {report.score.rating}"
        out.append(head)
        ordered = sorted(report.findings, key=lambda f: (not f.active, -f.severity, f.rule))
        out.extend(_finding_line(f) for f in ordered)
        out.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(out) + "\n"


def _score_json(score: Score) -> dict[str, Any]:
    return {
        "value": score.value, "rating": score.rating, "weighted": score.raw,
        "unconfined_by": list(score.unconfined_by),
        "items": [{"rule": i.rule, "title": i.title, "weight": i.weight, "badness": i.badness,
                   "share": score.share(i), "explanation": i.explanation} for i in score.items],
    }


def _finding_json(finding: Finding) -> dict[str, Any]:
    rule = all_rules()[finding.rule]
    return {
        "rule": finding.rule, "title": rule.title, "severity": finding.severity.label,
        "kind": finding.kind, "message": finding.message,
        "references": list(rule.references),
        "suppressed": None if finding.active else
        {"by": finding.suppressed_by, "reason": finding.suppressed},
    }


def format_json(reports: Sequence[TargetReport]) -> str:
    document = {
        "schema": JSON_SCHEMA,
        "results": [
            {"target": r.target, "origin": r.origin, "valid": r.valid, "error": r.error,
             "score": _score_json(r.score) if r.score is not None else None,
             "findings": [_finding_json(f) for f in r.findings], "notes": list(r.notes)}
            for r in reports
        ],
    }
    return pretty_json(document)


def sarif_rule(rule: Rule) -> dict[str, Any]:
    """A SARIF reportingDescriptor: the rule's metadata, for the tool's rule list."""
    refs = "; ".join(rule.references) or "saferun rule"
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": f"{rule.rationale} Fix: {rule.fix} ({refs})",
                 "markdown": f"**{rule.title}**\n\n{rule.rationale}\n\n**Fix:** {rule.fix}\n\n"
                             f"References: {refs}. See `{rule.anchor}`."},
        "defaultConfiguration": {"level": SARIF_LEVEL[rule.severity]},
        "properties": {"tags": ["security", "container", *(f"CIS-{s}" for s in rule.cis)],
                       "security-severity": SECURITY_SEVERITY[rule.severity],
                       "severity": rule.severity.label, "weight": rule.weight,
                       "references": list(rule.references)},
    }


def _location(report: TargetReport) -> dict[str, Any]:
    if report.origin == "manifest":
        return {"physicalLocation": {"artifactLocation": {"uri": report.target}}}
    kind = "resource" if report.origin in ("container", "image") else "command"
    return {"logicalLocations": [{"name": report.target, "kind": kind}]}


def _sarif_rules(reports: Sequence[TargetReport]) -> list[Rule]:
    """The container rules, plus the image rules when an image was judged."""
    if not any(r.origin == "image" for r in reports):
        return list(RULES_TABLE)
    from saferun.policy.image_rules import IMAGE_RULES

    return [*RULES_TABLE, *IMAGE_RULES.values()]


def format_sarif(reports: Sequence[TargetReport]) -> str:
    rules = _sarif_rules(reports)
    index = {rule.id: number for number, rule in enumerate(rules)}
    results = []
    for report in reports:
        for finding in report.findings:
            result: dict[str, Any] = {
                "ruleId": finding.rule, "ruleIndex": index[finding.rule],
                "level": SARIF_LEVEL[finding.severity],
                "message": {"text": f"{report.target}: {finding.message}"},
                "locations": [_location(report)],
                "properties": {"kind": finding.kind, "severity": finding.severity.label},
            }
            if not finding.active:
                result["suppressions"] = [{
                    "kind": "inSource" if report.origin == "manifest" else "external",
                    "justification": f"{finding.suppressed_by}: {finding.suppressed}"}]
            results.append(result)
    notifications = [{"level": "error", "message": {"text": f"{r.target}: {r.error}"}}
                     for r in reports if r.error]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "saferun", "version": __version__,
                            "rules": [sarif_rule(rule) for rule in rules]}},
        "results": results,
        "invocations": [{"executionSuccessful": not notifications,
                         "toolExecutionNotifications": notifications}],
    }
    return pretty_json({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]})


ReportsFormatter = Callable[[Sequence[TargetReport]], str]

CHECK_FORMATS: FormatterTable[ReportsFormatter] = FormatterTable("the check report", {
    OutputFormat.TABLE: format_table,
    OutputFormat.JSON: format_json,
    OutputFormat.SARIF: format_sarif,
})


def render(reports: Sequence[TargetReport], output_format: OutputFormat | str) -> str:
    return CHECK_FORMATS.formatter(output_format)(reports)


def score_table(report: TargetReport) -> str:
    """`saferun score`: one number and the weighted items behind it, worst first."""
    if report.error or report.score is None:
        return f"{report.target}: INVALID\n  {report.error}\n"
    score = report.score
    lines = [f"{'':2}{'RULE':<24} {'WEIGHT':>6} {'SHARE':>6}  EXPLANATION"]
    for item in score.items:
        mark = "✗" if item.badness else "✓"
        lines.append(f"{mark:2}{item.rule:<24} {item.weight:>6} {score.share(item):>6.2f}  "
                     f"{item.explanation}")
    lines.append("")
    if score.unconfined_by:
        lines.append(f"unconfined by: {', '.join(score.unconfined_by)} (each alone is "
                     f"root-equivalent on the host, so the score is 10; weighted sum "
                     f"{score.raw:.1f})")
    lines.append(f"→ Overall exposure level for {report.target}: {score.value:.1f} {score.rating}")
    return "\n".join(lines) + "\n"


def format_score_table(reports: Sequence[TargetReport]) -> str:
    return "\n".join(score_table(r) for r in reports)


SCORE_FORMATS: FormatterTable[ReportsFormatter] = FormatterTable("the score report", {
    OutputFormat.TABLE: format_score_table,
    OutputFormat.JSON: format_json,
    OutputFormat.SARIF: UNSUPPORTED,
})


def score_output(reports: Sequence[TargetReport], output_format: OutputFormat | str) -> str:
    return SCORE_FORMATS.formatter(output_format)(reports)
