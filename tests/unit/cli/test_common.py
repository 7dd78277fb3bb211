"""cli.common: the one way a command exits with a code (click's ctx.exit, never sys.exit)."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from saferun.cli.common import exit_on_error, exit_with
from saferun.errors import EngineUnavailable, UsageError

CLI = Path(__file__).resolve().parents[3] / "saferun" / "cli"
MODULES = sorted(path.stem for path in CLI.glob("*.py"))


@click.command()
@click.argument("what")
@click.option("--run", is_flag=True)
def probe(what: str, run: bool) -> None:
    with exit_on_error(run=run):
        if what == "usage":
            raise UsageError("bad call", fix="call it well")
        if what == "engine":
            raise EngineUnavailable("no engine")
    exit_with(int(what))


@pytest.mark.parametrize(("args", "code"), [
    (["0"], 0), (["1"], 1), (["usage"], 2), (["engine"], 3),
    (["usage", "--run"], 125), (["engine", "--run"], 125),
])
def test_exit_codes(runner: CliRunner, args: list[str], code: int) -> None:
    result = runner.invoke(probe, args)
    assert result.exit_code == code
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_errors_print_one_message_and_the_fix(runner: CliRunner) -> None:
    result = runner.invoke(probe, ["usage"])
    assert result.stderr == "saferun: bad call\n  fix: call it well\n" and result.stdout == ""


def test_exit_with_needs_a_click_command() -> None:
    with pytest.raises(RuntimeError, match="no active click context"):
        exit_with(1)


@pytest.mark.parametrize("module", MODULES)
def test_commands_never_exit_by_themselves(module: str) -> None:
    tree = ast.parse((CLI / f"{module}.py").read_text())
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Name) and node.id == "SystemExit"), module
        assert not (isinstance(node, ast.Attribute) and node.attr == "exit"
                    and isinstance(node.value, ast.Name) and node.value.id == "sys"), module
