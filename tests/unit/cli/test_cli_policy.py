"""check/score/explain/pin/run image policy through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli
from saferun.policy.rules import RULES_TABLE

GOOD = '[app]\nname = "web"\nimage = "busybox:1"\n'


def write(tmp_path: Path, text: str, name: str = "saferun.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_hardened_manifest_passes_at_the_default_fail_on(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["check", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "default-bridge" in result.output  # low findings are shown, not failed
    strict = runner.invoke(cli, ["check", "--fail-on", "low", str(write(tmp_path, GOOD))])
    assert strict.exit_code == 1


def test_docker_run_line_fails_and_names_rules(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", "--docker-run",
                                 "docker run --privileged --net=host -v /:/host nginx:1.27"])
    assert result.exit_code == 1
    for rule in ("privileged", "host-network", "sensitive-host-mount", "docker-socket-mount"):
        assert rule in result.output
    assert runner.invoke(cli, ["check", "--docker-run", "ls -l"]).exit_code == 2


def test_untagged_image_is_a_finding_and_a_warning(runner: CliRunner, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = write(tmp_path, GOOD.replace("busybox:1", "busybox"))
    result = runner.invoke(cli, ["check", str(manifest)])
    assert result.exit_code == 1 and "image-tag-latest" in result.output
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", str(manifest)])
    assert result.exit_code == 0 and "image-tag-latest" in result.output  # honoured, warned
    latest = write(tmp_path, GOOD.replace("busybox:1", "busybox:latest"), "latest.toml")
    assert runner.invoke(cli, ["run", "--dry-run", "--offline", str(latest)]).exit_code == 0
    # A team policy turns the warning into a refusal; an [allow] reason lets it through.
    team = tmp_path / "team.toml"
    team.write_text('[policy]\nrefuse = ["image-tag-latest", "restart-always"]\n')
    monkeypatch.setenv("SAFERUN_POLICY", str(team))
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", str(latest)])
    assert result.exit_code == 125 and "refused by rule 'image-tag-latest'" in result.output
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", "--allow",
                                 "image-tag-latest=built locally by CI", str(latest)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", "--restart", "always",
                                 "busybox:1"])
    assert result.exit_code == 125 and "restart-always" in result.output


def test_policy_ignore_needs_a_reason_and_is_kept(runner: CliRunner, tmp_path: Path) -> None:
    text = GOOD.replace("busybox:1", "busybox") + \
        '\n[policy]\nignore = { image-tag-latest = "built locally by CI every run" }\n'
    manifest = write(tmp_path, text)
    result = runner.invoke(cli, ["check", "--format", "json", str(manifest)])
    assert result.exit_code == 0, result.output
    finding = next(f for f in json.loads(result.output)["results"][0]["findings"]
                   if f["rule"] == "image-tag-latest")
    assert finding["suppressed"] == {"by": "[policy] ignore",
                                     "reason": "built locally by CI every run"}
    assert runner.invoke(cli, ["run", "--dry-run", "--offline", str(manifest)]).exit_code == 0
    short = write(tmp_path, text.replace("built locally by CI every run", "ok"), "short.toml")
    result = runner.invoke(cli, ["check", str(short)])
    assert result.exit_code == 2 and "written reason" in result.output
    refusal = write(tmp_path, GOOD + '\n[policy]\nignore = { privileged = "because we must" }\n',
                    "refusal.toml")
    result = runner.invoke(cli, ["check", str(refusal)])
    assert result.exit_code == 2 and "[allow] privileged" in result.output


def test_digest_required_by_policy(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(tmp_path, GOOD + '\n[policy]\ndigest = "require"\n')
    result = runner.invoke(cli, ["check", "--format", "json", str(manifest)])
    assert result.exit_code == 1
    finding = next(f for f in json.loads(result.output)["results"][0]["findings"]
                   if f["rule"] == "image-digest")
    assert finding["severity"] == "high"
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", str(manifest)])
    assert result.exit_code == 125 and "image-digest" in result.output


def test_sarif_output(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["check", "--format", "sarif", str(write(tmp_path, GOOD))])
    document = json.loads(result.output)
    assert document["version"] == "2.1.0"
    assert document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]


def test_score_command(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["score", "--docker-run",
                                 "docker run --privileged -v /:/host --net=host busybox:1"])
    assert result.exit_code == 0 and "10.0 UNSAFE" in result.output
    result = runner.invoke(cli, ["score", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0 and "SAFE" in result.output
    data = json.loads(runner.invoke(cli, ["score", "--format", "json",
                                          str(write(tmp_path, GOOD))]).output)
    assert data["results"][0]["score"]["value"] < 2
    assert runner.invoke(cli, ["score"]).exit_code == 2
    assert runner.invoke(cli, ["score", str(write(tmp_path, "bogus", "bad.toml"))]).exit_code == 2


def test_explain(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["explain", "docker-socket-mount"])
    assert result.exit_code == 0 and "CIS Docker Benchmark v1.6.0 5.32" in result.output
    listing = runner.invoke(cli, ["explain"]).output
    assert all(rule.id in listing for rule in RULES_TABLE)
    result = runner.invoke(cli, ["explain", "host-netwrk"])
    assert result.exit_code == 2 and "did you mean host-network" in result.output


def test_allowed_weakening_fails_unless_allowed(runner: CliRunner, tmp_path: Path) -> None:
    text = GOOD + '\n[security]\npid = "host"\n\n[allow]\nhost-pid = "process monitor needs it"\n'
    manifest = write(tmp_path, text)
    result = runner.invoke(cli, ["check", str(manifest)])
    assert result.exit_code == 1 and "process monitor needs it" in result.output
    assert runner.invoke(cli, ["check", "--allow-exceptions", str(manifest)]).exit_code == 0
