"""Image policy: manifest and team policy merge (stricter wins), reading, shared outputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from saferun.app.image_policy import (
    effective_policy,
    image_policy,
    merge_policies,
    read_team_policy,
    refuse_registry,
    start_for_run,
)
from saferun.errors import ImageRefused, ManifestError
from saferun.model.manifest import Manifest, PolicySection
from saferun.model.strict import ValidationError
from saferun.policy.catalogue import rule_kinds
from saferun.policy.image_rules import FileFact, FilesystemSummary, ImageFacts, evaluate_image
from saferun.policy.output import render
from saferun.policy.report import TargetReport, exit_code
from saferun.policy.score import exposure
from saferun.policy.severity import Severity

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "data" / "sarif-schema-2.1.0.json")
                    .read_text())


def section(**policy: object) -> PolicySection:
    # With the rule catalogue, as saferun.inputs validates every manifest it reads.
    return PolicySection.from_data(policy, context={"rule_kinds": rule_kinds()})


def manifest(image: str = "registry.example:5000/team/app:1", **policy: object) -> Manifest:
    return Manifest.from_data({"app": {"name": "app", "image": image}, "policy": policy})


def test_policy_section_validates_the_new_keys() -> None:
    ok = section(registries=["docker.io", "registry.example:5000/team"],
                 scan={"tool": "grype", "fail_on": "critical"},
                 signature={"method": "cosign", "identity": "ci@example.com",
                            "issuer": "https://accounts.example.com"},
                 image={"check": "full", "absent": ["shell"]})
    assert ok.scan is not None and ok.scan.required  # a scan table means a required gate
    for bad in ({"registries": ["Registry.Example"]}, {"registries": ["http://x"]},
                {"scan": {"tool": "clair"}}, {"scan": {"fail_on": "urgent"}},
                {"signature": {"method": "cosign"}},
                {"signature": {"method": "content-trust", "key": "k.pub"}},
                {"signature": {"method": "cosign", "key": "k", "identity": "x",
                               "issuer": "https://i"}},
                {"image": {"absent": ["debugger"]}}, {"image": {"max_layers": 500}},
                {"ignore": {"image-registry": "we trust every registry here"}}):
        with pytest.raises(ValidationError):
            section(**bad)


def test_merge_keeps_the_stricter_value_of_each_key() -> None:
    own = section(registries=["docker.io", "registry.example:5000"],
                  scan={"required": False, "tool": "any", "fail_on": "critical"},
                  image={"check": "config", "fail_on": "high", "absent": ["shell"],
                         "max_size_mb": 300})
    team = section(digest="require", registries=["registry.example:5000/team"],
                   scan={"required": True, "tool": "trivy", "fail_on": "high"},
                   signature={"method": "content-trust"},
                   image={"check": "reference", "fail_on": "medium", "absent": ["compiler"],
                          "max_layers": 20})
    merged = merge_policies(own, team)
    assert merged.digest == "require"
    assert merged.registries == ["registry.example:5000/team"]
    assert (merged.scan.required, merged.scan.tool, merged.scan.fail_on) == (True, "trivy", "high")
    assert merged.signature.method == "content-trust"
    assert merged.image.check == "config" and merged.image.fail_on == "medium"
    assert merged.image.absent == ["compiler", "shell"]
    assert (merged.image.max_size_mb, merged.image.max_layers) == (300, 20)
    assert merge_policies(own, None) is own


def test_merge_refuses_what_it_cannot_order() -> None:
    with pytest.raises(ManifestError, match="no registry is allowed by both"):
        merge_policies(section(registries=["ghcr.io"]), section(registries=["quay.io"]))
    with pytest.raises(ManifestError, match="scan.tool"):
        merge_policies(section(scan={"tool": "grype"}), section(scan={"tool": "trivy"}))
    with pytest.raises(ManifestError, match="signature"):
        merge_policies(section(signature={"method": "cosign", "key": "a.pub"}),
                       section(signature={"method": "cosign", "key": "b.pub"}))


def test_team_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "team-policy.toml"
    path.write_text('[policy]\nregistries = ["registry.example:5000"]\n'
                    'signature = { method = "cosign", key = "keys/cosign.pub" }\n')
    team = read_team_policy(path)
    assert team.signature.key == str(tmp_path / "keys" / "cosign.pub")  # relative to the file
    policy, source = effective_policy(manifest(), str(tmp_path), path)
    assert source == str(path) and policy.registries == ["registry.example:5000"]
    for text, message in (
            ("[policy]\nignore = { default-bridge = \"single host, nothing to isolate\" }\n",
             "only add constraints"),
            ("[app]\nname = \"x\"\n", "one \\[policy\\] table"),
            ("[policy]\nscan = { tool = \"clair\" }\n", "scan.tool"),
            ("[policy\n", "invalid TOML")):
        path.write_text(text)
        with pytest.raises(ManifestError, match=message):
            read_team_policy(path)
    with pytest.raises(ManifestError, match="cannot read"):
        read_team_policy(tmp_path / "missing.toml")


def test_registry_refusal_names_the_rule() -> None:
    allowed = section(registries=["registry.example:5000"])
    refuse_registry("registry.example:5000/team/app:1", allowed)
    with pytest.raises(ImageRefused, match="refused by rule 'image-registry'") as caught:
        refuse_registry("saferun-test/busybox:1", allowed)
    assert "docker.io" in caught.value.message and caught.value.run_exit_code == 125


def test_start_for_run_applies_the_team_digest_requirement(tmp_path: Path) -> None:
    team = tmp_path / "policy.toml"
    team.write_text('[policy]\ndigest = "require"\n')
    with pytest.raises(ManifestError, match="image-digest"):
        start_for_run("registry.example:5000/team/app:1", manifest(), str(tmp_path), team)
    pending = start_for_run("registry.example:5000/team/app:1@sha256:" + "e" * 64, manifest(),
                            str(tmp_path), team)
    decision = pending.finish(engine=False)
    record = json.loads(decision.label)
    assert record["decision"] == "allowed" and record["digest"] == "require"
    assert record["policy_file"] == str(team) and decision.inputs == (str(team),)
    assert not decision.external


def image_report() -> TargetReport:
    facts = ImageFacts("registry.example:5000/team/app:1", user="", healthcheck=None,
                       env=(("API_TOKEN", "ghp_" + "Zz9" * 12),),
                       filesystem=FilesystemSummary(setuid=(FileFact("/bin/su", 0o4755),)))
    policy = image_policy(section(registries=["docker.io"]))
    results = evaluate_image(facts, policy)
    from saferun.policy.report import Finding

    findings = tuple(Finding(r.rule.id, h.severity or r.rule.severity, h.detail)
                     for r in results for h in r.hits)
    return TargetReport(facts.reference, "image", findings=findings, score=exposure(results),
                        results=results)


def test_image_report_shares_json_sarif_and_exit_codes() -> None:
    report = image_report()
    assert {f.rule for f in report.findings} == {
        "image-registry", "image-user-root", "image-healthcheck", "image-secret-config",
        "image-setuid"}
    document = json.loads(render([report], "json"))
    finding = next(f for f in document["results"][0]["findings"] if f["rule"] == "image-setuid")
    assert finding["references"] == ["CIS Docker Benchmark v1.6.0 4.8"]
    sarif = json.loads(render([report], "sarif"))
    jsonschema.validate(sarif, SCHEMA)
    driver = sarif["runs"][0]["tool"]["driver"]
    for result in sarif["runs"][0]["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["locations"][0]["logicalLocations"][0]["kind"] == "resource"
    assert "image-scan" in {r["id"] for r in driver["rules"]}
    for output_format in ("table", "json", "sarif"):  # secrets are masked in every output
        assert "Zz9Zz9" not in render([report], output_format)
    assert exit_code([report], Severity.HIGH) == 1
    assert exit_code([replace(report, findings=())], Severity.LOW) == 0
