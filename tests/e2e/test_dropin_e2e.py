"""`saferun run` as a drop-in for `docker run` on a real engine: docker's flags, a real
terminal, detached containers, signals, and `init --from-docker-run` round trips."""

from __future__ import annotations

import os
import pty
import select
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_LABEL, docker, inspect, saferun

pytestmark = pytest.mark.e2e

LABEL = f"{E2E_LABEL[0]}={E2E_LABEL[1]}"


def _name() -> str:
    return f"saferun-dropin-{uuid.uuid4().hex[:10]}"


def _read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    seen = b""
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_interactive_shell_through_a_pseudo_terminal(busybox_image: str) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # child: saferun on a real terminal, with docker's own -it and -l flags
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "saferun",
                "run",
                "-it",
                "--rm",
                "-l",
                LABEL,
                busybox_image,
                "sh",
            ],
        )
    deadline = time.monotonic() + 60
    output = _read_until(fd, b"$ ", deadline)  # the prompt of a non-root shell
    os.write(fd, b"id -u; tty; echo typed-$((6*7))\n")
    output += _read_until(fd, b"typed-42", deadline)
    os.write(fd, b"exit 5\n")
    output += _read_until(fd, b"\x00never", time.monotonic() + 10)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"typed-42" in output, output
    assert b"/dev/pts/" in output, output
    assert b"65534" in output, output  # hardened default user, on a bare command line
    assert os.waitstatus_to_exitcode(status) == 5


def test_detached_container_is_hardened_and_docker_stop_works(busybox_image: str) -> None:
    name = _name()
    started = saferun(
        "run",
        "-d",
        "--init",
        "--name",
        name,
        "-l",
        LABEL,
        "-p",
        "8080",
        busybox_image,
        "sleep",
        "300",
    )
    assert started.returncode == 0, started.stderr
    try:
        assert len(started.stdout.strip()) == 64
        state = inspect(name)
        assert state["State"]["Running"] is True
        host = state["HostConfig"]
        assert state["Config"]["User"] == "65534:65534"
        assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
        assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
        began = time.monotonic()
        stopped = docker("stop", "-t", "10", name)
        assert stopped.returncode == 0 and stopped.stdout.strip() == name
        assert time.monotonic() - began < 8  # --init forwarded SIGTERM: no 10 s kill timeout
        after = inspect(name)["State"]
        assert after["Running"] is False and after["ExitCode"] == 143
    finally:
        docker("rm", "-f", name, check=False)


def test_sigterm_to_foreground_run_stops_the_container_with_its_exit_code(
    busybox_image: str,
) -> None:
    name = _name()
    script = "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "saferun",
            "run",
            "--name",
            name,
            "-l",
            LABEL,
            busybox_image,
            "sh",
            "-c",
            script,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while proc.stdout.readline().strip() != "ready":
            assert time.monotonic() < deadline, "container never became ready"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert "got-term" in out, err
        assert proc.returncode == 42
        state = inspect(name)["State"]
        assert state["Running"] is False and state["ExitCode"] == 42
    finally:
        proc.kill()
        docker("rm", "-f", name, check=False)


def test_refused_line_starts_nothing(busybox_image: str) -> None:
    before = set(docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split())
    result = saferun("run", "--privileged", "-l", LABEL, busybox_image, "true")
    assert result.returncode == 125
    assert "refused by rule 'privileged'" in result.stderr and "Traceback" not in result.stderr
    assert set(docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()) == before


def _dry_run(*args: str, cwd: Path) -> list[str]:
    result = saferun("run", "--dry-run", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout.strip().splitlines()[-1])
    identity = ("io.saferun.manifest-sha256=", "io.saferun.manifest-dir=")
    for index in reversed([i for i, w in enumerate(argv) if w.startswith(identity)]):
        del argv[index - 1 : index + 1]
    return argv


def test_init_from_docker_run_then_dry_run_reproduces_the_hardened_argv(
    busybox_image: str, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    line = (
        f"--name web-{uuid.uuid4().hex[:6]} -l {LABEL} -p 127.0.0.1:18080:8080 "
        f"-v ./data:/data:ro -e MODE=prod --memory 64m --pids-limit 32 --tmpfs /run:size=1m "
        f"--restart on-failure:2 {busybox_image} sh -c 'echo started; ls /data'"
    )
    name = shlex.split(line)[1]
    written = saferun("init", "--from-docker-run", f"docker run {line}", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "./data" in (tmp_path / "saferun.toml").read_text()
    from_line = _dry_run(*shlex.split(line), cwd=tmp_path)
    from_manifest = _dry_run("--name", name, "saferun.toml", cwd=tmp_path)
    assert from_manifest == from_line
    # ...and the manifest really starts, hardened, with what the line asked for.
    started = saferun("run", "--name", name, "saferun.toml", cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert "started" in started.stdout
        host = inspect(name)["HostConfig"]
        assert host["Memory"] == 64 << 20 and host["PidsLimit"] == 32
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        # -v is a bind as docker sends it (Binds), read-only because the line says :ro
        assert host["Binds"] == [f"{tmp_path / 'data'}:/data:ro"]
    finally:
        docker("rm", "-f", name, check=False)


def test_formerly_refused_flags_run_with_docker_semantics(busybox_image: str,
                                                          tmp_path: Path) -> None:
    """Issue 15 on the real engine: a named user, an anonymous volume, --restart always,
    CPU/IO tuning, --group-add, --domainname, --no-healthcheck, every ulimit."""
    name = f"srtest-{uuid.uuid4().hex[:10]}"
    result = saferun(
        "run", "-d", "--name", name, "-l", LABEL, "-u", "app", "-v", "/data",
        "--restart", "always", "--cpu-shares", "512", "--memory-reservation", "32m",
        "--group-add", "nogroup", "--domainname", "example.org", "--no-healthcheck",
        "--ulimit", "core=0", "--oom-score-adj", "100", busybox_image, "sleep", "30",
        cwd=tmp_path)
    try:
        assert result.returncode == 0, result.stderr
        assert "restart-always" in result.stderr  # honoured, and warned
        data = inspect(name)
        host, config = data["HostConfig"], data["Config"]
        assert config["User"] == "app" and config["Domainname"] == "example.org"
        assert config["Healthcheck"]["Test"] == ["NONE"]
        assert host["RestartPolicy"]["Name"] == "always"
        assert host["CpuShares"] == 512 and host["MemoryReservation"] == 32 << 20
        assert host["GroupAdd"] == ["nogroup"] and host["OomScoreAdj"] == 100
        assert {"Name": "core", "Soft": 0, "Hard": 0} in host["Ulimits"]
        volume = [m for m in data["Mounts"] if m["Destination"] == "/data"]
        assert volume and volume[0]["Type"] == "volume" and volume[0]["RW"]
        assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
        assert data["Name"] == f"/{name}"
    finally:
        docker("rm", "-f", "-v", name, check=False)


def test_volumes_from_a_container_with_a_sensitive_mount_is_refused(busybox_image: str,
                                                                   tmp_path: Path) -> None:
    source = f"srtest-{uuid.uuid4().hex[:10]}"
    docker("create", "--name", source, "-l", LABEL, "-v", "/etc:/host-etc:ro",
           busybox_image, "true")
    try:
        result = saferun("run", "--rm", "--volumes-from", source, busybox_image, "true",
                         cwd=tmp_path)
        assert result.returncode == 125
        assert "sensitive-host-mount" in result.stderr and source in result.stderr
        docker("rm", "-f", source)
        safe = tmp_path / "data"
        safe.mkdir()
        docker("create", "--name", source, "-l", LABEL, "-v", f"{safe}:/data",
               busybox_image, "true")
        result = saferun("run", "--rm", "--volumes-from", f"{source}:ro", busybox_image,
                         "ls", "/data", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    finally:
        docker("rm", "-f", source, check=False)


def test_several_networks_fail_as_docker_fails_on_this_daemon(busybox_image: str,
                                                               tmp_path: Path) -> None:
    version = docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip()
    result = saferun("run", "--dry-run", "--network", "srtest-a", "--network", "srtest-b",
                     busybox_image, cwd=tmp_path)
    if tuple(int(p) for p in version.split(".")) < (1, 44):
        assert result.returncode == 125
        assert "Container cannot be connected to network endpoints" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_a_latest_image_runs_pinned_by_its_id(busybox_image: str, tmp_path: Path) -> None:
    tag = f"srtest-latest-{uuid.uuid4().hex[:8]}"
    docker("tag", busybox_image, f"{tag}:latest")
    name = f"srtest-{uuid.uuid4().hex[:10]}"
    try:
        result = saferun("run", "--name", name, "-l", LABEL, tag, "true", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "image-tag-latest" in result.stderr
        data = inspect(name)
        image_id = docker("image", "inspect", "--format", "{{.Id}}", busybox_image).stdout.strip()
        assert data["Image"] == image_id and data["Config"]["Image"] == image_id
        labels = data["Config"]["Labels"]
        assert labels["io.saferun.image-reference"] == tag
        recorded = labels["io.saferun.image-digest"]  # a repo digest, or the id of a local build
        assert recorded == image_id or "@sha256:" in recorded
    finally:
        docker("rm", "-f", name, check=False)
        docker("rmi", f"{tag}:latest", check=False)
