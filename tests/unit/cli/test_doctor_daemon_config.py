"""CLI snapshots for `saferun doctor` (audit injected) and `saferun daemon-config`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli
from saferun.engine import host as host_audit
from saferun.errors import EngineUnavailable
from tests.unit.policy.test_host_checks import FAILING, GOOD


def test_doctor_clean_host_exits_0(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_audit, "gather_audit", lambda: GOOD)
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output


def test_doctor_findings_exit_1_and_json(runner: CliRunner,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    weak = FAILING["userns-remap"](GOOD)
    monkeypatch.setattr(host_audit, "gather_audit", lambda: weak)
    result = runner.invoke(cli, ["doctor", "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["schema"] == "saferun.doctor/1"
    assert runner.invoke(cli, ["doctor", "--fail-on", "high"]).exit_code == 0


def test_doctor_engine_unavailable_exits_3(runner: CliRunner,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> None:
        raise EngineUnavailable("cannot reach the Docker engine at unix:///x: refused")
    monkeypatch.setattr(host_audit, "gather_audit", unavailable)
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 3 and "cannot reach" in result.output


def test_daemon_config_prints_without_writing(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    target.write_text('{"debug": true}')
    result = runner.invoke(cli, ["daemon-config", "--merge", str(target)])
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed["debug"] is True and printed["icc"] is False
    assert target.read_text() == '{"debug": true}'  # untouched without --write
    assert "change: icc" in result.stderr


def test_daemon_config_write_keeps_a_backup(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    target.write_text('{"debug": true}')
    os.chmod(target, 0o600)
    result = runner.invoke(cli, ["daemon-config", "--merge", str(target), "--write",
                                 "--runtime", "gvisor"])
    assert result.exit_code == 0, result.output
    written = json.loads(target.read_text())
    assert written["runtimes"]["runsc"]["path"] == "/usr/bin/runsc" and written["debug"] is True
    assert target.stat().st_mode & 0o777 == 0o644
    backups = list(tmp_path.glob("daemon.json.saferun-backup-*"))
    assert len(backups) == 1 and backups[0].read_text() == '{"debug": true}'
    assert backups[0].stat().st_mode & 0o777 == 0o600
    again = runner.invoke(cli, ["daemon-config", "--merge", str(target), "--write",
                                "--runtime", "gvisor"])
    assert "already hardened; nothing written" in again.stderr
    assert len(list(tmp_path.glob("daemon.json.saferun-backup-*"))) == 1


def test_daemon_config_write_new_file_and_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "docker" / "daemon.json"
    assert runner.invoke(cli, ["daemon-config", "--merge", str(target), "--write"]).exit_code == 0
    assert json.loads(target.read_text())["userns-remap"] == "default"
    assert not list(target.parent.glob("*.saferun-backup-*"))
    no_merge = runner.invoke(cli, ["daemon-config", "--write"])
    assert no_merge.exit_code == 2 and "--write needs --merge" in no_merge.output
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad = runner.invoke(cli, ["daemon-config", "--merge", str(broken), "--write"])
    assert bad.exit_code == 2 and "not valid JSON" in bad.output and broken.read_text() == "{"
