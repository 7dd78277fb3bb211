"""The docker run grammar, table-driven: each tricky form docker accepts, read as docker does."""

from __future__ import annotations

import pytest

from saferun.errors import DockerArgsError
from saferun.inputs.dockerargs import (
    DOCKER_RUN,
    DOCKER_RUN_FLAGS,
    parse_docker_run,
    split_command_line,
)


def parse(line: str) -> tuple[list[tuple[str, str]], str | None, list[str]]:
    parsed = parse_docker_run(split_command_line("docker run " + line))
    return list(parsed.flags), parsed.image, list(parsed.command)


GRAMMAR = [
    # (command line after `docker run`, flags, image, command)
    ("-e A=1 -eB=2 img", [("env", "A=1"), ("env", "B=2")], "img", []),
    ("-e=C=3 --env D=4 --env=E=5 img", [("env", "C=3"), ("env", "D=4"), ("env", "E=5")], "img", []),
    ("-p 127.0.0.1:80:80/udp img", [("publish", "127.0.0.1:80:80/udp")], "img", []),
    ("-p 8000-8010:8000-8010 img", [("publish", "8000-8010:8000-8010")], "img", []),
    (
        "--mount type=tmpfs,dst=/x,tmpfs-size=64m img",
        [("mount", "type=tmpfs,dst=/x,tmpfs-size=64m")],
        "img",
        [],
    ),
    ("-v name:/d:ro,z img", [("volume", "name:/d:ro,z")], "img", []),
    ("-itd img", [("interactive", "true"), ("tty", "true"), ("detach", "true")], "img", []),
    ("-itp 80:80 img", [("interactive", "true"), ("tty", "true"), ("publish", "80:80")], "img", []),
    ("-itp80:80 img", [("interactive", "true"), ("tty", "true"), ("publish", "80:80")], "img", []),
    ("--rm=false img", [("rm", "false")], "img", []),
    ("--rm=0 -d=true img", [("rm", "false"), ("detach", "true")], "img", []),
    ("--rm -- img ls", [("rm", "true")], "img", ["ls"]),
    ("-- img --rm -d", [], "img", ["--rm", "-d"]),
    ("img -it --name x sh", [], "img", ["-it", "--name", "x", "sh"]),
    ("img -- sh -c 'echo hi'", [], "img", ["--", "sh", "-c", "echo hi"]),
    ("--name=web -h host1 img", [("name", "web"), ("hostname", "host1")], "img", []),
    ("--net=host --net-alias a img", [("network", "host"), ("network-alias", "a")], "img", []),
    (
        "--health-cmd 'curl -f http://localhost/ || exit 1' img",
        [("health-cmd", "curl -f http://localhost/ || exit 1")],
        "img",
        [],
    ),
    ("-e X img", [("env", "X")], "img", []),
    ("--entrypoint= img", [("entrypoint", "")], "img", []),
    ("", [], None, []),
]


@pytest.mark.parametrize(("line", "flags", "image", "command"), GRAMMAR)
def test_grammar(
    line: str, flags: list[tuple[str, str]], image: str | None, command: list[str]
) -> None:
    assert parse(line) == (flags, image, command)


ERRORS = [
    ("--foo img", "unknown flag: --foo"),
    ("-Z img", "unknown shorthand flag: 'Z' in -Z"),
    ("-dZ img", "unknown shorthand flag: 'Z' in -Z"),
    ("--name", "flag needs an argument: --name"),
    ("-e", "flag needs an argument: 'e' in -e"),
    ("--rm=maybe img", 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool'),
]


@pytest.mark.parametrize(("line", "message"), ERRORS)
def test_errors_read_like_docker(line: str, message: str) -> None:
    with pytest.raises(DockerArgsError) as info:
        parse(line)
    assert message in info.value.message
    assert info.value.run_exit_code == 125


def test_repeated_flags_accumulate_or_replace() -> None:
    parsed = parse_docker_run(["--name", "a", "--name", "b", "-e", "A=1", "-e", "A=2", "img"])
    assert parsed.last("name") == "b"
    assert parsed.values("env") == ["A=1", "A=2"]


def test_the_table_is_the_reference_list() -> None:
    names = {f.name for f in DOCKER_RUN_FLAGS}
    # Long-only flags the issue names explicitly, and the aliases docker still accepts.
    for name in (
        "mount",
        "tmpfs",
        "ulimit",
        "security-opt",
        "sysctl",
        "device",
        "device-cgroup-rule",
        "gpus",
        "health-cmd",
        "health-interval",
        "log-opt",
        "restart",
        "pids-limit",
        "memory-swap",
        "cpus",
        "cpu-shares",
        "userns",
        "pid",
        "ipc",
        "uts",
        "network",
        "net",
        "network-alias",
        "add-host",
        "dns",
        "dns-search",
        "dns-option",
        "init",
        "entrypoint",
        "platform",
        "pull",
        "cidfile",
        "env-file",
        "label-file",
        "use-api-socket",
        "annotation",
        "health-start-interval",
        "cgroupns",
    ):
        assert name in names, name
    shorts = {f.short: f.name for f in DOCKER_RUN_FLAGS if f.short}
    assert shorts == {
        "a": "attach",
        "c": "cpu-shares",
        "d": "detach",
        "e": "env",
        "h": "hostname",
        "i": "interactive",
        "l": "label",
        "m": "memory",
        "p": "publish",
        "P": "publish-all",
        "q": "quiet",
        "t": "tty",
        "u": "user",
        "v": "volume",
        "w": "workdir",
    }
    assert len(DOCKER_RUN_FLAGS) == 106  # 104 in the reference + the hidden --net, --net-alias
    bools = {f.name for f in DOCKER_RUN_FLAGS if f.kind == "bool"}
    assert bools == {
        "detach",
        "disable-content-trust",
        "help",
        "init",
        "interactive",
        "no-healthcheck",
        "oom-kill-disable",
        "privileged",
        "publish-all",
        "quiet",
        "read-only",
        "rm",
        "sig-proxy",
        "tty",
        "use-api-socket",
    }
    assert DOCKER_RUN.long("net") is not None and DOCKER_RUN.long("net").alias_of == "network"


@pytest.mark.parametrize(
    "text",
    [
        "docker run -d nginx",
        "sudo docker run -d nginx",
        "$ docker run -d nginx",
        "docker container run -d nginx",
        "/usr/bin/docker run -d nginx",
        "docker run \\\n  -d \\\n  nginx",
    ],
)
def test_split_command_line_prefixes(text: str) -> None:
    assert split_command_line(text) == ["-d", "nginx"]


def test_split_refuses_other_commands_and_keeps_dollar_words() -> None:
    with pytest.raises(DockerArgsError, match="not a docker run command line"):
        split_command_line("docker exec -it x sh")
    with pytest.raises(DockerArgsError, match="cannot split"):
        split_command_line("docker run 'unterminated")
    assert split_command_line("docker run -v $(pwd):/x img") == ["-v", "$(pwd):/x", "img"]


def test_every_flag_of_the_installed_docker_cli_is_known() -> None:
    """Drift check against `docker run --help` of the client on this machine, when there is one."""
    import re
    import shutil
    import subprocess

    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")
    text = subprocess.run(
        ["docker", "run", "--help"], capture_output=True, text=True, check=False
    ).stdout
    listed = set(re.findall(r"^\s+(?:-\w, )?--([a-z0-9-]+)", text, re.MULTILINE))
    assert listed, text
    assert listed <= {f.name for f in DOCKER_RUN_FLAGS}, listed - {f.name for f in DOCKER_RUN_FLAGS}
