from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from click.testing import CliRunner

from saferun.app.stack import _levels
from saferun.cli import cli


def _item(name: str, *deps: str) -> Any:
    return SimpleNamespace(member=SimpleNamespace(name=name, depends_on=deps))


def test_levels_start_together_what_does_not_depend_on_each_other() -> None:
    planned = [_item("db"), _item("cache"), _item("api", "db"), _item("web", "api", "cache")]
    levels = [[i.member.name for i in level] for level in _levels(planned)]
    assert levels == [["db", "cache"], ["api"], ["web"]]


def test_up_refuses_an_invalid_stack_with_125_before_the_engine(tmp_path: Path) -> None:
    (tmp_path / "saferun.stack.toml").write_text(
        '[stack]\nname = "shop"\n[services.web]\nmanifest = "web.toml"\n'
        'depends_on = ["db"]\n')
    result = CliRunner().invoke(cli, ["up", str(tmp_path)])
    assert result.exit_code == 125
    assert "depends_on names 'db'" in result.stderr


def test_commands_are_listed() -> None:
    help_text = CliRunner().invoke(cli, ["--help"]).output
    for command in ("up", "down", "ps"):
        assert f"  {command} " in help_text
