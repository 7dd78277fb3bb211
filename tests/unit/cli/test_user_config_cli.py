"""The user config's default team policy reaches `saferun run` (no engine: --offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli


@pytest.fixture(autouse=True)
def no_team_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """$SAFERUN_POLICY unset, and unset again afterwards: `saferun run` puts the config's
    policy into it in this process (a delenv of an unset variable is not undone)."""
    monkeypatch.setenv("SAFERUN_POLICY", "")
    monkeypatch.delenv("SAFERUN_POLICY")


def test_config_policy_is_the_default_team_policy(runner: CliRunner, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    line = ["run", "--dry-run", "--offline", "--restart", "always", "busybox:1.36", "true"]
    assert runner.invoke(cli, line).exit_code == 0
    (tmp_path / "saferun").mkdir()
    (tmp_path / "saferun" / "team.toml").write_text('[policy]\nrefuse = ["restart-always"]\n')
    (tmp_path / "saferun" / "config.toml").write_text('policy = "team.toml"\n')
    refused = runner.invoke(cli, line)
    assert refused.exit_code == 125 and "restart-always" in refused.stderr
    monkeypatch.setenv("SAFERUN_POLICY", "/nonexistent/elsewhere.toml")  # the env var wins
    assert "elsewhere.toml" in runner.invoke(cli, line).stderr


def test_a_missing_config_policy_names_the_config_file_and_its_key(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user set `policy` in config.toml, not $SAFERUN_POLICY: the error says so."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = tmp_path / "saferun" / "config.toml"
    config.parent.mkdir()
    config.write_text('policy = "missing/team.toml"\n')
    missing = tmp_path / "saferun" / "missing" / "team.toml"
    for line, code in ((["run", "--dry-run", "--offline", "busybox:1.36", "true"], 125),
                       (["image", "check", "busybox:1.36"], 2)):
        result = runner.invoke(cli, line)
        assert result.exit_code == code, (line, result.stderr)
        assert (f"policy file {missing}: cannot read it: No such file or directory (the "
                f"default team policy named by the `policy` key of the user config {config})"
                ) in result.stderr, line
        assert f"fix: fix the path in {config}, or remove its `policy` key" in result.stderr
        assert "SAFERUN_POLICY" not in result.stderr and "Traceback" not in result.stderr
