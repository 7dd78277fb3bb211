"""Formatters: every format renders; SARIF validates against the SARIF 2.1.0 schema.

tests/data/sarif-schema-2.1.0.json is the published SARIF 2.1.0 schema (2.1.0-rtm.5, the
OASIS standard's final schema as served by SchemaStore), vendored from the MIT-licensed
npm package @microsoft/jest-sarif 1.0.0-beta.0 (lib/schemas/sarif-2.1.0-rtm.5.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from saferun.app.check import check_docker_run
from saferun.policy.output import CHECK_FORMATS, JSON_SCHEMA, OutputFormat, render, score_output
from saferun.policy.report import BY_IGNORE, Finding, TargetReport
from saferun.policy.rules import RULES_TABLE
from saferun.policy.severity import Severity

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "data" / "sarif-schema-2.1.0.json")
                    .read_text())


def reports() -> list[TargetReport]:
    loose = check_docker_run("docker run --privileged -p 80:80 nginx")
    suppressed = TargetReport("app/saferun.toml", "manifest", findings=(
        Finding("default-bridge", Severity.LOW, "on docker0", suppressed="one-off batch job",
                suppressed_by=BY_IGNORE),
        Finding("cap-not-allowed", Severity.HIGH, "capabilities: +NET_ADMIN", kind="drift")))
    broken = TargetReport("bad.toml", "manifest", error="invalid manifest (1 problem)")
    return [loose, suppressed, broken]


def test_every_format_has_a_formatter() -> None:
    assert CHECK_FORMATS.supported == tuple(OutputFormat)
    for member in OutputFormat:
        assert render(reports(), member).strip()


def test_sarif_validates_and_carries_rule_metadata() -> None:
    document = json.loads(render(reports(), "sarif"))
    jsonschema.validate(document, SCHEMA)
    driver = document["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == [r.id for r in RULES_TABLE]
    privileged = next(r for r in driver["rules"] if r["id"] == "privileged")
    assert "CIS Docker Benchmark v1.6.0 5.5" in privileged["properties"]["references"]
    assert privileged["defaultConfiguration"]["level"] == "error"
    results = document["runs"][0]["results"]
    for result in results:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    ignored = next(r for r in results if r["ruleId"] == "default-bridge"
                   and "suppressions" in r)
    assert "one-off batch job" in ignored["suppressions"][0]["justification"]


def test_sarif_schema_rejects_a_broken_log() -> None:
    document = json.loads(render(reports(), "sarif"))
    document["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)


def test_json_has_a_schema_version_and_suppression_reasons() -> None:
    data = json.loads(render(reports(), "json"))
    assert data["schema"] == JSON_SCHEMA
    loose, suppressed, broken = data["results"]
    assert loose["score"]["value"] == 10.0 and not broken["valid"]
    assert suppressed["findings"][0]["suppressed"] == {"by": BY_IGNORE,
                                                       "reason": "one-off batch job"}
    assert suppressed["findings"][1]["kind"] == "drift"


def test_table_keeps_reasons_and_errors() -> None:
    text = render(reports(), "table")
    assert "suppressed by [policy] ignore: one-off batch job" in text
    assert "bad.toml: INVALID" in text and "[drift]" in text


def test_score_table_explains_each_item() -> None:
    text = score_output(reports()[:1], "table")
    assert "Overall exposure level" in text and "unconfined by: privileged" in text
    assert text.count("✗") + text.count("✓") == len([r for r in RULES_TABLE if r.check])
