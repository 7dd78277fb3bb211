"""`saferun run` as a drop-in for `docker run`, through click (offline dry-runs)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return CliRunner()


def run(runner: CliRunner, *args: str) -> tuple[int, list[str], str]:
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", *args])
    lines = result.stdout.strip().splitlines()
    return result.exit_code, shlex.split(lines[-1]) if lines else [], result.stderr


def test_docker_flags_and_command_pass_through_hardened(runner: CliRunner) -> None:
    code, argv, _ = run(
        runner,
        "-itd",
        "--rm",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-e",
        "A=1",
        "-h",
        "box",
        "nginx:1.27",
        "nginx",
        "-g",
        "daemon off;",
    )
    assert code == 0
    assert {"--detach", "--interactive", "--tty", "--rm"} <= set(argv)
    assert argv[argv.index("--hostname") + 1] == "box"
    assert argv[-4:] == ["nginx:1.27", "nginx", "-g", "daemon off;"]
    # nginx is found by name: its preset runs it as the nginx user, with no capability.
    assert argv[argv.index("--user") + 1] == "101:101" and "--read-only" in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL" and "--cap-add" not in argv


def test_no_preset_keeps_saferuns_own_defaults(runner: CliRunner) -> None:
    code, argv, _ = run(runner, "--no-preset", "nginx:1.27")
    assert code == 0 and argv[argv.index("--user") + 1] == "65534:65534"
    assert "net.ipv4.ip_unprivileged_port_start=0" not in argv


def test_exit_125_for_refusals_and_bad_flags(runner: CliRunner) -> None:
    for args, needle in (
        (["--privileged", "busybox:1"], "rule 'privileged'"),
        (["--foo", "busybox:1"], "unknown flag: --foo"),
        (["--cpu-count", "2", "busybox:1"], "not supported"),
    ):
        code, _, err = run(runner, *args)
        assert code == 125 and needle in err and "Traceback" not in err


def test_allow_flag_and_label(runner: CliRunner) -> None:
    code, argv, _ = run(
        runner, "--allow", "host-network=metrics exporter, SEC-8", "--net=host", "busybox:1"
    )
    assert code == 0
    assert argv[argv.index("--network") + 1] == "host"
    labels = [argv[i + 1] for i, w in enumerate(argv) if w == "--label"]
    assert 'io.saferun.exceptions={"host-network": "metrics exporter, SEC-8"}' in labels


def test_manifest_file_merged_with_flags(runner: CliRunner) -> None:
    Path("saferun.toml").write_text(
        '[app]\nname = "web"\nimage = "nginx:1.27"\n[resources]\nmemory = "256m"\n'
    )
    code, argv, _ = run(runner, "-f", "saferun.toml", "-m", "128m", "-e", "X=1", "nginx:1.26", "sh")
    assert code == 0
    assert argv[argv.index("--memory") + 1] == "128m" and "X=1" in argv
    assert argv[-2:] == ["nginx:1.26", "sh"]
    code, _, err = run(runner, "-f", "saferun.toml", "--pid", "host")
    assert code == 125 and "host-pid" in err
    code, argv, _ = run(runner, "-e", "Y=2", "saferun.toml", "--", "ls")
    assert code == 0 and argv[-2:] == ["nginx:1.27", "ls"] and "Y=2" in argv


def test_symlinked_bind_source_is_refused_after_resolution(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "data").symlink_to("/etc")
    code, _, err = run(runner, "-v", "./data:/data:ro", "busybox:1")
    assert code == 125 and "resolves to '/etc'" in err and "sensitive-host-mount" in err


def test_json_format_and_help(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["run", "--dry-run", "--offline", "--format", "json", "-p", "80", "busybox:1"]
    )
    body = json.loads(result.stdout)
    assert body["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]
    }
    help_text = runner.invoke(cli, ["run", "--help"]).output
    assert "--allow RULE=REASON" in help_text and "Every `docker run` flag is accepted" in help_text
    assert (
        runner.invoke(
            cli, ["run", "--dry-run", "--offline", "--format", "yaml", "busybox:1"]
        ).exit_code
        == 125  # docker run exits 125 for a usage error
    )
