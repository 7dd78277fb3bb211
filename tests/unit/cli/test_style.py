"""Human output: colour only on a terminal and never with NO_COLOR or --no-color; machine
formats untouched; rich never loaded on the run path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli, style

WEAKENED = Path(__file__).resolve().parents[2] / "data" / "export" / "weakened.toml"
ESC = "\x1b["


def test_not_a_terminal_gives_the_plain_table(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(WEAKENED)])
    assert "HIGH" in result.stdout and ESC not in result.stdout


@pytest.mark.parametrize("how", ["tty", "NO_COLOR", "--no-color", "TERM=dumb",
                                 "color = false"])
def test_colour_on_a_terminal_unless_refused(how: str, runner: CliRunner, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(style, "_is_terminal", lambda stream: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no user config but this one
    args = ["check", str(WEAKENED)]
    if how == "color = false":
        (tmp_path / "saferun").mkdir()
        (tmp_path / "saferun" / "config.toml").write_text("color = false\n")
    elif how == "NO_COLOR":
        monkeypatch.setenv("NO_COLOR", "1")
    elif how == "TERM=dumb":
        monkeypatch.setenv("TERM", "dumb")
    elif how == "--no-color":
        args = ["--no-color", *args]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1, result.stderr
    plain = runner.invoke(cli, ["--no-color", "check", str(WEAKENED)]).stdout
    if how == "tty":
        assert f"{ESC}1;31mHIGH" in result.stdout  # bold red
        assert ESC not in plain
    else:
        assert result.stdout == plain and ESC not in result.stdout


def test_machine_formats_are_only_data_even_on_a_terminal(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(style, "_is_terminal", lambda stream: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    for fmt in ("json", "sarif"):
        result = runner.invoke(cli, ["check", "--format", fmt, str(WEAKENED)])
        assert ESC not in result.stdout
        json.loads(result.stdout)


def test_progress_outside_a_terminal_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with style.progress("reading", total=3) as advance:
        advance(completed=2)
    assert capsys.readouterr() == ("", "")
    # what goes above the bar on a terminal is printed as it is (tests/e2e/test_terminal_e2e.py
    # looks at a terminal)
    with style.progress("reading") as advance:
        advance(say="saferun: run 1/2: 40 records", show="+ openat\n")
    assert capsys.readouterr() == ("+ openat\n", "saferun: run 1/2: 40 records\n")


def test_the_run_path_does_not_import_rich() -> None:
    code = ("import sys\nfrom saferun.__main__ import main\n"
            "sys.argv = ['saferun', 'run', '--dry-run', '--offline', 'busybox:1']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('rich loaded' if any(m == 'rich' or m.startswith('rich.') "
            "for m in sys.modules) else 'rich absent', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert "docker run" in result.stdout or "run" in result.stdout, result.stderr
    assert result.stderr.strip().endswith("rich absent"), result.stderr
