"""saferun.engine.docker_cli and probe_host_facts without running docker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from saferun.engine import docker_cli
from saferun.engine import host as engine_host
from saferun.errors import EngineUnavailable, RequirementUnmet


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "docker"
    script.write_text('#!/bin/sh\necho "args: $*"\n'
                      '[ "$1" = fail ] && { echo nope >&2; exit 3; }\nexit 0\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    return script


def test_docker_cli_is_found_on_path(fake_docker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert docker_cli.docker_cli() == str(fake_docker)
    monkeypatch.setenv("PATH", str(fake_docker.parent / "nothing"))
    with pytest.raises(EngineUnavailable, match="not installed"):
        docker_cli.docker_cli()


def test_cli_output_and_the_learn_helper(fake_docker: Path) -> None:
    assert docker_cli.cli_output(["ps"]) == "args: ps\n"
    with pytest.raises(EngineUnavailable, match="nope"):
        docker_cli.cli_output(["fail"])
    assert docker_cli.cli_json(["fail"]) is None
    assert docker_cli.docker("fail", "x", check=False).returncode == 3
    with pytest.raises(RequirementUnmet, match="`docker fail x` failed: nope"):
        docker_cli.docker("fail", "x")


def test_the_seccomp_profile_is_handed_over_in_a_memfd(fake_docker: Path) -> None:
    argv = ["docker", "run", f"--security-opt=seccomp={docker_cli.SECCOMP_FD_PATH}", "img"]
    new, fd = docker_cli.seccomp_argv(argv, '{"defaultAction": "SCMP_ACT_ERRNO"}')
    assert fd is not None
    try:
        assert new[0] == str(fake_docker)
        assert new[2] == f"--security-opt=seccomp=/proc/self/fd/{fd}"
        assert os.pread(fd, 100, 0) == b'{"defaultAction": "SCMP_ACT_ERRNO"}'
    finally:
        os.close(fd)
    assert argv[0] == "docker"  # the caller's list is left alone
    plain, none = docker_cli.seccomp_argv(["docker", "run", "img"], None)
    assert none is None and plain == [str(fake_docker), "run", "img"]


def test_run_docker_passes_the_memfd_and_closes_it(fake_docker: Path) -> None:
    fake_docker.write_text('#!/bin/sh\nexec /bin/cat "${1#*=}"\n')
    result = docker_cli.run_docker(["docker", f"x={docker_cli.SECCOMP_FD_PATH}"], "{}",
                                   timeout=10)
    assert result.returncode == 0 and result.stdout == "{}"


class FakeSession:
    def __init__(self) -> None:
        self.closed = False

    def info(self) -> dict[str, Any]:
        return {"ServerVersion": "27.0", "Architecture": "x86_64", "SecurityOptions": []}

    def close(self) -> None:
        self.closed = True


def test_probe_host_facts_uses_the_session_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")  # remote: no local files read
    session = FakeSession()
    facts, info = engine_host.probe_host_facts(session)  # type: ignore[arg-type]
    assert info["ServerVersion"] == "27.0" and not session.closed
    assert facts.kvm_available is None  # a remote engine: /dev/kvm here says nothing


def test_error_text_keeps_the_daemons_whole_message() -> None:
    from saferun.engine.docker_cli import error_text

    stderr = ('docker: Error response from daemon: invalid mount config for type "bind": '
              "bind source path does not exist: /srv/data.\nSee 'docker run --help'.\n")
    assert error_text(stderr) == ('Error response from daemon: invalid mount config for type '
                                  '"bind": bind source path does not exist: /srv/data.')
    assert error_text("", "exit 125") == "exit 125"
