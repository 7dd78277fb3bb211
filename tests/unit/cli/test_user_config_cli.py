"""The user config's default team policy reaches `saferun run` (no engine: --offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli


def test_config_policy_is_the_default_team_policy(runner: CliRunner, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFERUN_POLICY", raising=False)
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
