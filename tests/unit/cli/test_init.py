"""`saferun init` through click: files written, never overwritten by accident, round trip."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from saferun.cli import cli

LINE = (
    "-d --name web -p 8080:80 -v data:/data -v ./html:/usr/share/nginx/html:ro -e A=1 "
    "--memory 256m --cpus 0.5 --ulimit nofile=100:200 --tmpfs /run:size=8m "
    "--health-cmd 'curl -f http://localhost/ || exit 1' --restart on-failure:3 "
    "nginx:1.27 nginx -g 'daemon off;'"
)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return CliRunner()


def dry_run(runner: CliRunner, *args: str) -> list[str]:
    result = runner.invoke(cli, ["run", "--dry-run", "--offline", *args])
    assert result.exit_code == 0, result.output
    argv = shlex.split(result.stdout.strip().splitlines()[-1])
    identity = ("io.saferun.manifest-sha256=", "io.saferun.manifest-dir=")
    label = [i for i, w in enumerate(argv) if w.startswith(identity)]
    for index in reversed(label):  # the manifest file's own identity: the expected difference
        del argv[index - 1 : index + 1]
    return argv  # the seccomp profile path is content-addressed: equal profiles, equal paths


def test_round_trip_init_then_dry_run_reproduces_the_hardened_argv(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["init", "--from-docker-run", f"docker run {LINE}"])
    assert result.exit_code == 0, result.output
    assert "wrote saferun.toml" in result.stderr
    from_line = dry_run(runner, *shlex.split(LINE))
    from_manifest = dry_run(runner, "-d", "--name", "web", "saferun.toml")
    assert from_manifest == from_line
    assert "--read-only" in from_line and "127.0.0.1:8080:80/tcp" in from_line


def test_init_refuses_to_overwrite_unless_forced(runner: CliRunner) -> None:
    Path("saferun.toml").write_text("# mine\n")
    result = runner.invoke(cli, ["init", "--from-docker-run", "docker run busybox:1"])
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert Path("saferun.toml").read_text() == "# mine\n"
    assert (
        runner.invoke(
            cli, ["init", "--force", "--from-docker-run", "docker run busybox:1"]
        ).exit_code
        == 0
    )
    assert tomllib.loads(Path("saferun.toml").read_text())["app"]["image"] == "busybox:1"


def test_init_output_option_and_stdout(runner: CliRunner) -> None:
    assert (
        runner.invoke(
            cli, ["init", "-o", "app.toml", "--from-docker-run", "docker run busybox:1"]
        ).exit_code
        == 0
    )
    assert Path("app.toml").is_file()
    result = runner.invoke(
        cli, ["init", "-o", "-", "--from-docker-run", "docker run -p 80 busybox:1"]
    )
    assert tomllib.loads(result.stdout)["network"]["ports"] == [{"container": 80}]


def test_init_refuses_dangerous_lines_unless_allowed(runner: CliRunner) -> None:
    line = "docker run --privileged docker:27-dind"
    result = runner.invoke(cli, ["init", "-o", "-", "--from-docker-run", line])
    assert result.exit_code == 2 and "refused by rule 'privileged'" in result.stderr
    allowed = runner.invoke(
        cli,
        [
            "init",
            "-o",
            "-",
            "--allow",
            "privileged=CI docker-in-docker, SEC-4",
            "--from-docker-run",
            line,
        ],
    )
    assert allowed.exit_code == 0, allowed.output
    assert tomllib.loads(allowed.stdout)["allow"] == {"privileged": "CI docker-in-docker, SEC-4"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "exactly one of"),
        (["--from-docker-run", "docker exec x sh"], "not a docker run command line"),
        (["--from-docker-run", "docker run -d"], "names no image"),
        (
            ["--from-docker-run", "docker run --cpu-count 2 busybox:1"],
            "--cpu-count is not supported",
        ),
    ],
)
def test_init_usage_errors_exit_2(runner: CliRunner, args: list[str], needle: str) -> None:
    result = runner.invoke(cli, ["init", "-o", "-", *args])
    assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.output


def test_init_from_compose_writes_the_stack_and_refuses_by_rule(runner: CliRunner,
                                                               tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx:1.27\n    depends_on: [db]\n"
                       "  db:\n    image: postgres:16\n")
    result = runner.invoke(cli, ["init", "--from-compose", str(compose), "-o", "out"])
    assert result.exit_code == 0, result.output
    stack = tomllib.loads((tmp_path / "out" / "saferun.stack.toml").read_text())
    assert stack["services"]["web"] == {"manifest": "web.toml", "depends_on": ["db"]}
    assert tomllib.loads((tmp_path / "out" / "db.toml").read_text())["app"]["name"] == "db"
    compose.write_text("services:\n  dind:\n    image: docker:27-dind\n    privileged: true\n")
    refused = runner.invoke(cli, ["init", "--from-compose", str(compose), "-o", "bad"])
    assert refused.exit_code == 2 and "refused by rule 'privileged'" in refused.stderr
    assert not (tmp_path / "bad").exists()  # nothing written when a service is refused
