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


def test_up_refuses_rules_on_a_rootless_engine_before_touching_it(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """facts.rootless (the engine's security options) stops `up` with 125 before it asks
    the engine about the stack, let alone creates anything."""
    from saferun.engine import host, netns, stacks
    from saferun.model.facts import HostFacts

    rootless = HostFacts(server_version="20.10.24",
                         security_options=frozenset({"seccomp", "rootless"}),
                         runtimes=frozenset({"runc"}))
    monkeypatch.setattr(host, "probe_host_facts", lambda session: (rootless, None))
    monkeypatch.setattr(netns.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    touched: list[str] = []
    monkeypatch.setattr(stacks, "stack_exists", lambda *a: touched.append("exists"))
    monkeypatch.setattr(stacks, "create_network", lambda *a: touched.append("network"))
    (tmp_path / "web.toml").write_text(
        '[app]\nname = "web"\nimage = "busybox:1"\n[network]\negress = "none"\n')
    (tmp_path / "saferun.stack.toml").write_text(
        '[stack]\nname = "shop"\n[services.web]\nmanifest = "web.toml"\n')
    result = CliRunner().invoke(cli, ["up", str(tmp_path)])
    assert result.exit_code == 125, result.output
    assert "rootless" in result.stderr and "fix:" in result.stderr
    assert touched == []
