"""`saferun learn` refuses clearly, with the reason, where recording is impossible."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli
from saferun.engine import audit as audit_recorder


def _manifest(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "saferun.toml"
    path.write_text(f'[app]\nname = "web"\nimage = "nginx:1"\n{extra}')
    return path


def test_gvisor_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = _manifest(tmp_path, '[security]\nruntime = "gvisor"\n')
    result = CliRunner().invoke(cli, ["learn", str(path), "--", "true"])
    assert result.exit_code == 2
    assert "cannot be recorded" in result.output and "own kernel" in result.output
    assert "Traceback" not in result.output


def test_not_root_is_refused_with_the_reason(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_recorder.os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["learn", str(_manifest(tmp_path))])
    assert result.exit_code == 3
    assert "needs root" in result.output and "CAP_AUDIT_READ" in result.output


def test_two_outputs_are_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["learn", str(_manifest(tmp_path)), "--write-manifest",
                                      "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 2 and "choose one" in result.output


def test_invalid_manifest_is_exit_2(tmp_path: Path) -> None:
    path = _manifest(tmp_path, '[seccomp]\nmode = "denylist"\nlearned = ["read"]\n')
    result = CliRunner().invoke(cli, ["learn", str(path)])
    assert result.exit_code == 2 and "seccomp.learned" in result.output
