"""CLI behaviour through click's CliRunner: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli

GOOD = '[app]\nname = "web"\nimage = "busybox:1"\ncommand = ["echo", "hi there"]\n'


def write(tmp_path: Path, text: str, name: str = "saferun.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "check", "schema", "profile"):
        assert command in result.output


def test_schema_is_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["schema"])
    schema = json.loads(result.output)
    assert schema["title"] == "saferun manifest"
    assert schema["additionalProperties"] is False


def test_check_exit_codes(runner: CliRunner, tmp_path: Path) -> None:
    good = write(tmp_path, GOOD)
    assert runner.invoke(cli, ["check", str(good)]).exit_code == 0
    bad = write(tmp_path, GOOD + "bogus = 1\n", "bad.toml")
    result = runner.invoke(cli, ["check", str(good), str(bad)])
    assert result.exit_code == 2
    assert "unknown key app.bogus" in result.output
    weakened = write(
        tmp_path,
        GOOD.replace("[app]", '[exceptions]\nrun_as_root = "legacy image needs root"\n\n[app]')
        + 'user = "0"\n',
        "weak.toml",
    )
    result = runner.invoke(cli, ["check", str(weakened)])
    assert result.exit_code == 1 and "legacy image needs root" in result.output
    assert runner.invoke(cli, ["check", "--allow-exceptions", str(weakened)]).exit_code == 0
    data = json.loads(runner.invoke(cli, ["check", "--format", "json", str(bad)]).output)
    assert data["schema"] == "saferun.check/2" and data["results"][0]["valid"] is False


def test_offline_dry_run_prints_a_hardened_command(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(tmp_path, GOOD)
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", str(manifest)])
    assert result.exit_code == 0, result.output
    argv = shlex.split(result.stdout.strip().splitlines()[-1])
    assert argv[:2] == ["docker", "run"] and argv[-3:] == ["busybox:1", "echo", "hi there"]
    assert "--read-only" in argv


def test_offline_dry_run_json_is_an_api_body(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(tmp_path, GOOD)
    result = runner.invoke(
        cli, ["run", "--dry-run", "--offline", "--format", "json", str(manifest)]
    )
    body = json.loads(result.stdout)
    assert body["HostConfig"]["CapDrop"] == ["ALL"]


def test_command_after_manifest_replaces_the_command(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(tmp_path, GOOD)
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", str(manifest), "--", "ls", "-l"])
    assert result.stdout.strip().endswith("busybox:1 ls -l")


def test_bare_image_gets_hardened_defaults(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", "nginx:1.27"])
    assert result.exit_code == 0
    assert "--cap-drop ALL" in result.stdout and result.stdout.strip().endswith("nginx:1.27")


def test_run_manifest_errors_exit_125_without_traceback(runner: CliRunner, tmp_path: Path) -> None:
    manifest = write(tmp_path, GOOD + 'user = "0"\n')
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", str(manifest)])
    assert result.exit_code == 125
    assert "run_as_root" in result.stderr and "Traceback" not in result.output


def test_missing_manifest(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["run", "--dry-run", "--offline"])
    assert result.exit_code == 125 and "manifest not found" in result.stderr


def test_offline_needs_dry_run(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["run", "--offline", str(write(tmp_path, GOOD))])
    assert result.exit_code == 125  # run keeps docker's codes: a usage error is 125


@pytest.mark.parametrize("flag", [[], ["--volumes"], ["-v"]])
def test_down_says_which_anonymous_volumes_it_kept_or_removed(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch, flag: list[str]) -> None:
    from saferun.app import stack

    asked: list[bool] = []

    def down(target: str | None, *, volumes: bool = False) -> stack.DownResult:
        asked.append(volumes)
        return stack.DownResult("shop", ("shop-db",), ("saferun-shop",), ("a" * 64,))

    monkeypatch.setattr(stack, "down", down)
    result = runner.invoke(cli, ["down", *flag, "shop"])
    assert result.exit_code == 0, result.output
    assert asked == [bool(flag)]
    assert "removed shop-db\nremoved saferun-shop\n" in result.output
    if flag:
        assert f"removed volume {'a' * 64}" in result.output
    else:
        assert f"kept volume {'a' * 64} (anonymous: `docker volume rm {'a' * 64}`" in result.output
