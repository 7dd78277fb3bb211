"""Issue 19, case 8: the command `--dry-run` prints is the command that would run.

click strips ANSI escapes from output that is not a terminal; the printed line must still
shlex-split to exactly the launched argv, ESC and carriage return included, and agree with
the Engine API body.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli

SOURCE = "/tmp/hostile-a b'c"
ENV = "A=x\ry\x1b]0;title\x07"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return CliRunner()


def test_printed_command_splits_to_the_launched_argv(runner: CliRunner) -> None:
    flags = ["-v", f"{SOURCE}:/data:ro", "-e", ENV, "--label", "k=\x1b[31mred", "nginx:1.25"]
    printed = runner.invoke(cli, ["run", "--dry-run", "--offline", *flags])
    assert printed.exit_code == 0, printed.stderr
    argv = shlex.split(printed.stdout)
    assert f"{SOURCE}:/data:ro" in argv and ENV in argv and "k=\x1b[31mred" in argv
    assert "control characters" in printed.stderr
    body = json.loads(runner.invoke(cli, ["run", "--dry-run", "--offline", "--format", "json",
                                          *flags]).stdout)
    assert ENV in body["Env"]
    assert f"{SOURCE}:/data:ro" in body["HostConfig"]["Binds"]


def test_a_path_with_control_characters_is_refused_naming_the_key(runner: CliRunner) -> None:
    for source in ("/tmp/hostile-a\x1b[2Kb", "/tmp/hostile-a\rb", "/tmp/hostile\u2028x"):
        result = runner.invoke(cli, ["run", "--dry-run", "--offline", "-v", f"{source}:/data",
                                     "nginx:1.25"])
        assert result.exit_code == 125
        assert "filesystem.mounts.0" in result.stderr and repr(source) in result.stderr
