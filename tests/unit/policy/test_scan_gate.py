"""Scanner gate decisions over recorded real Trivy and Grype reports (tests/data/scanner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from saferun.errors import ReportError
from saferun.policy.scan_gate import (
    choose_scanner,
    failed_scanner,
    judge_report,
    missing_scanner,
    parse_report,
    scanner_argv,
)
from saferun.policy.severity import Severity

DATA = Path(__file__).resolve().parents[2] / "data" / "scanner"


def report(name: str) -> str:
    return (DATA / name).read_text()


def test_trivy_report_is_parsed() -> None:
    vulns = parse_report("trivy", report("trivy-alpine-jar.json"))
    assert [(v.id, v.severity) for v in vulns] == [
        ("CVE-2020-15999", Severity.MEDIUM), ("CVE-2020-28196", Severity.HIGH),
        ("CVE-2019-12900", Severity.CRITICAL), ("CVE-2018-11771", Severity.MEDIUM),
        ("CVE-2018-1324", Severity.MEDIUM)]
    bz2 = vulns[2]
    assert (bz2.package, bz2.installed, bz2.fixed) == ("libbz2", "1.0.6-r6", "1.0.6-r7")
    assert bz2.target == "teamdojo:latest (alpine 3.9.4)"


def test_grype_report_is_parsed() -> None:
    vulns = parse_report("grype", report("grype-debian-python.json"))
    assert [(v.id, v.package, v.severity) for v in vulns] == [
        ("CVE-2004-0971", "libgssapi-krb5-2", Severity.INFO),  # Negligible
        ("CVE-2021-32626", "redis", Severity.HIGH),
        ("CVE-2021-33574", "libc-bin", Severity.CRITICAL),
        ("CVE-2021-33574", "libc6", Severity.CRITICAL),
        ("GHSA-v6rh-hp5x-86rv", "Django", Severity.HIGH)]
    assert vulns[4].fixed == "3.2.10"
    assert vulns[1].fixed == ""  # state wont-fix: its versions are not fixes


@pytest.mark.parametrize(("name", "tool", "fail_on", "blocked"), [
    ("trivy-alpine-jar.json", "trivy", "critical", ["CVE-2019-12900"]),
    ("trivy-alpine-jar.json", "trivy", "high", ["CVE-2019-12900", "CVE-2020-28196"]),
    ("trivy-alpine-jar.json", "trivy", "medium",
     ["CVE-2019-12900", "CVE-2020-28196", "CVE-2018-11771", "CVE-2018-1324", "CVE-2020-15999"]),
    ("grype-debian-python.json", "grype", "critical", ["CVE-2021-33574", "CVE-2021-33574"]),
    ("grype-debian-python.json", "grype", "high",
     ["CVE-2021-33574", "CVE-2021-33574", "CVE-2021-32626", "GHSA-v6rh-hp5x-86rv"]),
    ("trivy-no-vuln.json", "trivy", "low", []),
])
def test_gate_blocks_at_or_above_the_severity(name: str, tool: str, fail_on: str,
                                              blocked: list[str]) -> None:
    decision = judge_report(tool, parse_report(tool, report(name)), Severity.parse(fail_on))
    assert [v.id for v in decision.blocking] == blocked
    assert decision.allowed is (not blocked)
    assert decision.status == ("blocked" if blocked else "passed")
    if blocked:
        assert f"found {len(blocked)} vulnerabilit" in decision.reason


def test_decision_record_counts_every_severity() -> None:
    decision = judge_report("grype", parse_report("grype", report("grype-debian-python.json")),
                            Severity.CRITICAL)
    assert decision.record()["counts"] == {"critical": 2, "high": 2, "info": 1}
    assert "fixed in" not in decision.blocking[0].describe()
    assert decision.blocking[0].describe().startswith("CVE-2021-33574 (critical) in libc-bin")


@pytest.mark.parametrize(("tool", "text"), [
    ("trivy", "not json"), ("trivy", '{"SchemaVersion": 2}'), ("grype", "[]"),
    ("grype", '{"matches": null}'),
])
def test_unreadable_reports_raise(tool: str, text: str) -> None:
    with pytest.raises(ReportError):
        parse_report(tool, text)


def test_scanner_choice() -> None:
    assert choose_scanner("any", {"grype", "trivy"}) == "trivy"
    assert choose_scanner("any", {"grype"}) == "grype"
    assert choose_scanner("trivy", {"grype"}) is None
    assert choose_scanner("any", set()) is None


def test_scanner_argv_is_a_list_with_json_output() -> None:
    assert scanner_argv("trivy", "app:1") == ["trivy", "image", "--format", "json", "--quiet",
                                              "app:1"]
    assert scanner_argv("grype", "app:1") == ["grype", "docker:app:1", "-o", "json", "--quiet"]


def test_missing_scanner_refuses_when_required_and_never_skips_silently() -> None:
    refused = missing_scanner("any", required=True)
    assert not refused.allowed and refused.status == "refused"
    assert "Trivy or Grype is not installed" in refused.reason
    skipped = missing_scanner("grype", required=False)
    assert skipped.allowed and skipped.status == "skipped" and "Grype" in skipped.reason


def test_scanner_that_cannot_update_its_database_refuses() -> None:
    # Trivy's error when GHCR rate-limits its DB download, as a public write-up recorded it.
    stderr = ("2024-10-29T09:07:18.631+0200\tFATAL\tinit error: DB error: failed to download "
              "vulnerability DB: database download error: OCI repository error: 1 error "
              "occurred:\n\t* GET https://ghcr.io/v2/aquasecurity/trivy-db/manifests/2: "
              "TOOMANYREQUESTS: retry-after: 825.911µs, allowed: 44000/minute\n")
    decision = failed_scanner("trivy", 1, stderr, required=True)
    assert not decision.allowed
    assert "could not update its vulnerability database" in decision.reason
    other = failed_scanner("grype", 2, "unable to load image: no such image", required=False)
    assert other.allowed and other.status == "skipped" and "grype failed" in other.reason
