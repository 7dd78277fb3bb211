"""`saferun run` skips click (saferun.__main__) and behaves as the click command does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli

REPORT = ("import atexit, sys\n"
          "atexit.register(lambda: print('modules:', 'click' in sys.modules,"
          " 'msgspec' in sys.modules, file=sys.stderr))\n"
          "sys.argv = ['saferun', *sys.argv[1:]]\n"
          "from saferun.__main__ import main\n"
          "main()\n")


def _saferun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", REPORT, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "saferun.toml"
    path.write_text('[app]\nname = "web"\nimage = "busybox:1.36"\n')
    return path


def test_a_start_does_not_import_click_and_prints_what_click_prints(
    manifest: Path, runner: CliRunner
) -> None:
    args = ["run", "--dry-run", "--offline", "-e", "A=1", str(manifest), "true"]
    direct = _saferun(*args)
    assert direct.returncode == 0, direct.stderr
    assert "modules: False True" in direct.stderr  # validated (msgspec), without click
    through_click = runner.invoke(cli, args)
    assert through_click.exit_code == 0
    assert direct.stdout == through_click.stdout


def test_errors_keep_the_message_and_docker_exit_code(manifest: Path, runner: CliRunner) -> None:
    for args in (["run", "--dry-run", "--offline", "--privileged", str(manifest)],
                 ["run", "--bogus", str(manifest)]):
        direct = _saferun(*args)
        through_click = runner.invoke(cli, args)
        assert direct.returncode == through_click.exit_code == 125
        assert direct.stderr.replace("modules: False True\n", "").replace(
            "modules: False False\n", "") == through_click.stderr


def test_help_usage_errors_and_completion_go_through_click(manifest: Path) -> None:
    assert "modules: True" in _saferun("run", "--help").stderr
    usage = _saferun("run", "--offline", str(manifest))
    assert usage.returncode == 125  # docker run's code for a usage error (issue 19 case 6)
    assert "--offline only works with --dry-run" in usage.stderr
    completion = _saferun("run", "--dry-run", "--offline", str(manifest),
                          env={"_SAFERUN_COMPLETE": "bash_complete", "COMP_WORDS": "saferun ru",
                               "COMP_CWORD": "1"})
    assert "modules: True" in completion.stderr
