"""Learning mode on the real engine and kernel: record, write, enforce, explain.

Needs root (the kernel's audit records); skipped without it, except in CI. The nginx tests
use saferun-test/nginx:1, built from Debian packages by scripts/build-debian-images.sh.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pyseccomp
import pytest

from tests.e2e.conftest import IN_CI, REPO, docker, saferun, write_manifest

NGINX_IMAGE = "saferun-test/nginx:1"
WORKLOAD = ["sh", "-c", "ls /; cat /etc/passwd >/dev/null; echo learned-ok"]
# The same calls in a burst of a few thousand records: a tiny audit socket buffer cannot
# hold them however fast the reader is, so the loss is certain, not a race.
BURST = ["sh", "-c", "i=0; while [ $i -lt 40 ]; do ls / >/dev/null; cat /etc/passwd >/dev/null;"
         " i=$((i+1)); done; echo learned-ok"]
DOCKER_DEFAULT = Path(__file__).parent / "data" / "docker-default-allow.txt"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 and not IN_CI,
                                reason="recording system calls needs root")


def _docker_default_count() -> int:
    names = {word for line in DOCKER_DEFAULT.read_text().splitlines()
             if not line.startswith("#") for word in line.split()}
    return sum(1 for n in names if pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, n) >= 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _allowed(manifest: Path) -> set[str]:
    result = saferun("profile", "seccomp", str(manifest))
    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    return {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
            for n in rule["names"]}


@pytest.fixture
def busybox_manifest(e2e_manifest: Any) -> Path:
    path: Path = e2e_manifest({"app": {"name": "learn-bb"}, "seccomp": {"errno": "ENOSYS"}})
    # A comment the rewrite must keep.
    path.write_text("# busybox learning test\n" + path.read_text())
    return path


def test_learn_busybox_then_enforce(busybox_manifest: Path) -> None:
    original = busybox_manifest.read_text()
    learned = saferun("learn", str(busybox_manifest), "--write-manifest", "--verify", "--",
                      *WORKLOAD)
    assert learned.returncode == 0, learned.stderr
    assert "verified: the workload passed" in learned.stderr
    assert "+learned = [" in learned.stdout  # the diff against what was there
    text = busybox_manifest.read_text()
    assert text.startswith("# busybox learning test\n")
    names = tomllib.loads(text)["seccomp"]["learned"]
    assert {"getdents64", "openat"} <= set(names) and "unshare" not in names

    ran = saferun("run", "--rm", str(busybox_manifest), "--", *WORKLOAD)
    assert ran.returncode == 0 and "learned-ok" in ran.stdout, ran.stderr

    # A call the workload never made is refused by the filter: ENOSYS can only come from
    # seccomp here (the kernel itself would answer EPERM without CAP_SYS_ADMIN).
    unshare = saferun("run", "--rm", str(busybox_manifest), "--", "unshare", "-n", "true")
    assert unshare.returncode != 0
    assert "Function not implemented" in unshare.stderr, unshare.stderr
    # mkdir works in /tmp under the base profile, not under the learned one.
    mkdir = saferun("run", "--rm", str(busybox_manifest), "--", "mkdir", "/tmp/x")
    assert mkdir.returncode != 0 and "Operation not permitted" in mkdir.stderr, mkdir.stderr
    control = busybox_manifest.with_name("control.toml")
    control.write_text(original)
    plain = saferun("run", "--rm", str(control), "--", "mkdir", "/tmp/x")
    assert plain.returncode == 0, plain.stderr


def test_lost_records_are_detected_and_the_run_repeated(busybox_manifest: Path,
                                                        tmp_path: Path) -> None:
    output = tmp_path / "profile.json"
    result = saferun("learn", str(busybox_manifest), "--audit-buffer", "256", "-o", str(output),
                     "--", *BURST)
    assert result.returncode == 0, result.stderr
    assert "records were lost" in result.stderr
    assert "repeating the run (attempt 2 of 3)" in result.stderr
    profile = json.loads(output.read_text())
    allowed = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
               for n in rule["names"]}
    assert {"getdents64", "openat", "wait4"} <= allowed  # the repeat recorded the whole run


def test_why_names_a_denied_syscall_by_replaying(e2e_manifest: Any) -> None:
    manifest: Path = e2e_manifest({
        "app": {"name": "why-bb", "command": ["mkdir", "/tmp/x"]},
        # What `saferun learn` recorded for WORKLOAD: no mkdir in it.
        "seccomp": {"learned": [
            "brk", "clone", "dup2", "epoll_ctl", "fcntl", "fstatfs", "getcwd", "getdents64",
            "getgid", "getppid", "getrandom", "getuid", "ioctl", "mprotect", "openat", "prctl",
            "prlimit64", "readlink", "rseq", "sendfile", "set_robust_list", "set_tid_address",
            "setgid", "setuid", "wait4"]},
    })
    name = f"why-bb-{os.getpid()}"
    ran = saferun("run", "--name", name, str(manifest))
    assert ran.returncode != 0 and "Operation not permitted" in ran.stderr
    why = saferun("why", name, "--manifest", str(manifest), "--duration", "2")
    docker("rm", "-f", name, check=False)
    assert why.returncode == 1, why.stderr
    assert 'syscall mkdir denied -> [seccomp] learned += ["mkdir"]' in why.stdout


# --- a real server: nginx from Debian packages ---------------------------------------------


@pytest.fixture(scope="session")
def nginx_image(docker_engine: None) -> str:
    built = subprocess.run(["bash", str(REPO / "scripts" / "build-debian-images.sh")],
                           capture_output=True, text=True, check=False, timeout=1800)
    if built.returncode != 0:
        message = f"cannot build {NGINX_IMAGE}: {built.stderr[-2000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return NGINX_IMAGE


LOAD = textwrap.dedent("""\
    import sys, time, urllib.error, urllib.request
    port, rounds = sys.argv[1], int(sys.argv[2])
    deadline = time.time() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit("nginx never answered")
            time.sleep(0.2)
    for _ in range(rounds):
        for path, want in (("/", 200), ("/index.nginx-debian.html", 200), ("/missing", 404)):
            try:
                code = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).status
            except urllib.error.HTTPError as exc:
                code = exc.code
            if code != want:
                sys.exit(f"{path}: {code}, wanted {want}")
    print("served")
    """)


def _nginx_manifest(directory: Path, port: int, name: str,
                    tmpfs: list[str] | None = None) -> Path:
    document: dict[str, Any] = {
        "app": {"name": name, "image": NGINX_IMAGE, "user": "0:0"},
        "capabilities": {"add": ["NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN",
                                 "DAC_OVERRIDE"]},
        "network": {"ports": [{"container": 80, "host": port}]},
        "exceptions": {"run_as_root": "nginx's master binds :80 and drops to www-data"},
    }
    if tmpfs is not None:
        document["filesystem"] = {"tmpfs": [{"target": t} for t in tmpfs]}
    return write_manifest(directory, document, f"{name}.toml")


def _wait_served(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_learn_nginx_under_load_then_enforce(nginx_image: str, tmp_path: Path) -> None:
    port = _free_port()
    manifest = _nginx_manifest(tmp_path, port, "learn-nginx")
    load = tmp_path / "load.py"
    load.write_text(LOAD)
    learned = saferun("learn", str(manifest), "--write-manifest", "--verify",
                      "--load", f"{sys.executable} {load} {port} 20", timeout=300)
    assert learned.returncode == 0, learned.stderr
    assert "verified: the workload passed" in learned.stderr
    written = tomllib.loads(manifest.read_text())
    assert {"/run", "/var/lib/nginx"} <= {t["target"] for t in written["filesystem"]["tmpfs"]}

    name = f"learn-nginx-{os.getpid()}"
    ran = saferun("run", "-d", "--name", name, str(manifest))
    assert ran.returncode == 0, ran.stderr
    try:
        _wait_served(port)
        served = subprocess.run([sys.executable, str(load), str(port), "20"],
                                capture_output=True, text=True, check=False, timeout=120)
        assert served.returncode == 0, served.stdout + served.stderr
    finally:
        docker("rm", "-f", name, check=False)

    allowed = _allowed(manifest)
    docker_default = _docker_default_count()
    print(f"\nnginx: learned {len(written['seccomp']['learned'])} calls; the enforcing profile "
          f"allows {len(allowed)} names; Docker's default allows {docker_default} on x86_64 "
          f"({len(allowed) / docker_default:.0%})")
    assert len(allowed) * 3 <= docker_default


def test_why_names_the_missing_writable_path(nginx_image: str, tmp_path: Path) -> None:
    port = _free_port()
    manifest = _nginx_manifest(tmp_path, port, "why-nginx", tmpfs=["/tmp", "/run"])
    name = f"why-nginx-{os.getpid()}"
    ran = saferun("run", "-d", "--name", name, str(manifest))
    assert ran.returncode == 0, ran.stderr
    try:
        deadline = time.monotonic() + 15
        while docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true":
            assert time.monotonic() < deadline, "nginx kept running on a read-only root"
            time.sleep(0.2)
        why = saferun("why", name)
    finally:
        docker("rm", "-f", name, check=False)
    assert why.returncode == 1, why.stderr
    assert "write to /var/lib/nginx/body refused -> add a tmpfs at /var/lib/nginx" in why.stdout

    fixed = _nginx_manifest(tmp_path, port, "why-nginx", tmpfs=["/tmp", "/run", "/var/lib/nginx"])
    ran = saferun("run", "-d", "--name", name, str(fixed))
    assert ran.returncode == 0, ran.stderr
    try:
        _wait_served(port)
    finally:
        docker("rm", "-f", name, check=False)


# --- issue 15: fallbacks, health checks, relative binds, why's replay, the watchdog ---------

PYWEB_IMAGE = "saferun-test/pyweb:1"
THREADS = ["python3", "-c", "import threading; t = threading.Thread(target=print, "
           "args=('thread-ok',)); t.start(); t.join()"]


@pytest.fixture(scope="session")
def pyweb_image(docker_engine: None) -> str:
    """A glibc 2.36 image with python3: its threads start through clone3, then clone."""
    if docker("image", "inspect", PYWEB_IMAGE, check=False).returncode != 0:
        built = subprocess.run(["bash", str(REPO / "scripts" / "build-preset-images.sh")],
                               capture_output=True, text=True, check=False, timeout=1800)
        if built.returncode != 0:
            message = f"cannot build {PYWEB_IMAGE}: {built.stderr[-2000:]}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    return PYWEB_IMAGE


def test_learned_threads_keep_the_clone_fallback_and_why_names_it(
        pyweb_image: str, e2e_manifest: Any) -> None:
    manifest: Path = e2e_manifest({"app": {"name": "learn-threads", "image": pyweb_image,
                                           "command": THREADS},
                                   "seccomp": {"errno": "ENOSYS"}})
    learned = saferun("learn", str(manifest), "--write-manifest", "--verify")
    assert learned.returncode == 0, learned.stderr
    assert "fallback: clone added for clone3" in learned.stderr
    assert "verified: the workload passed" in learned.stderr
    names = tomllib.loads(manifest.read_text())["seccomp"]["learned"]
    assert {"clone3", "clone"} <= set(names)

    # The list as learned before fallbacks were paired: clone3 without clone.
    manifest.write_text(manifest.read_text().replace('    "clone",\n', ""))
    name = f"learn-threads-{os.getpid()}"
    ran = saferun("run", "--name", name, str(manifest))
    try:
        assert ran.returncode != 0 and "can't start new thread" in ran.stderr, ran.stderr
        why = saferun("why", name, "--manifest", str(manifest), "--duration", "2")
    finally:
        docker("rm", "-f", name, check=False)
    assert why.returncode == 1, why.stderr
    assert "so libc falls back to clone" in why.stdout
    assert '-> [seccomp] learned += ["clone"]' in why.stdout
    assert 'learned += ["clone3"]' not in why.stdout


def _httpd_manifest(e2e_manifest: Any, port: int, name: str) -> Path:
    path: Path = e2e_manifest({
        "app": {"name": name, "command": ["httpd", "-f", "-p", "8080", "-h", "/data"]},
        "network": {"ports": [{"container": 8080, "host": port}]},
        "filesystem": {"mounts": [{"type": "bind", "source": "./site", "target": "/data",
                                   "read_only": True}]},
        "healthcheck": {"command": ["wget", "-q", "-O-", "http://127.0.0.1:8080/index.html"],
                        "interval": "2s"},
    }, f"{name}.toml")
    (path.parent / "site").mkdir(exist_ok=True)
    (path.parent / "site" / "index.html").write_text("served\n")
    return path


def test_health_check_and_relative_bind_are_learned_as_docker_runs_them(
        e2e_manifest: Any, tmp_path: Path) -> None:
    port = _free_port()
    manifest = _httpd_manifest(e2e_manifest, port, "learn-health")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # From another folder: ./site is the manifest's, as for `saferun run`.
    learned = saferun("learn", str(manifest), "--write-manifest", "--verify", "--duration", "3",
                      cwd=elsewhere)
    assert learned.returncode == 0, learned.stderr
    assert "run 1/1:" in learned.stderr and "healthy" in learned.stderr
    assert "verified: the workload passed under the learned profile (healthy)" in learned.stderr
    names = set(tomllib.loads(manifest.read_text())["seccomp"]["learned"])
    assert {"connect", "socket"} <= names  # the health check's wget (httpd only accepts)

    name = f"learn-health-{os.getpid()}"
    ran = saferun("run", "-d", "--name", name, str(manifest))
    assert ran.returncode == 0, ran.stderr
    try:
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
            if status in ("healthy", "unhealthy"):
                break
            time.sleep(0.5)
        health = docker("inspect", "--format", "{{json .Config.Healthcheck.Test}}", name).stdout
    finally:
        docker("rm", "-f", name, check=False)
    assert json.loads(health)[0] == "CMD-SHELL"
    assert status == "healthy", status  # under the learned profile, through /bin/sh -c


def test_why_replays_beside_the_original_and_a_failed_replay_is_not_silence(
        e2e_manifest: Any) -> None:
    port = _free_port()
    manifest = _httpd_manifest(e2e_manifest, port, "why-port")
    name = f"why-port-{os.getpid()}"
    clash = f"why-port-clash-{os.getpid()}"
    ran = saferun("run", "-d", "--name", name, str(manifest))
    assert ran.returncode == 0, ran.stderr
    try:
        # The original holds the fixed host port: the replay publishes on a random one.
        why = saferun("why", name, "--manifest", str(manifest), "--duration", "1")
        assert why.returncode == 0, why.stdout + why.stderr
        assert "replay with denials logged" in why.stderr
        assert "no denial found" in why.stderr

        # learn keeps the manifest's ports: the daemon's whole error is shown.
        learn = saferun("learn", str(manifest), "--duration", "1", "-o", str(manifest) + ".json")
        assert learn.returncode != 0
        assert "port is already allocated" in learn.stderr, learn.stderr
        assert "docker run --help" not in learn.stderr

        # A second container on the same port fails to start; why names the port.
        second = saferun("run", "-d", "--name", clash, str(manifest))
        assert second.returncode != 0
        named = saferun("why", clash)
        assert named.returncode == 1, named.stderr
        assert f"host port {port} is already in use" in named.stdout
        assert "container = 8080, host = <a free port>" in named.stdout

        # The bind source is gone: the replay cannot start, and says so.
        (manifest.parent / "site" / "index.html").unlink()
        (manifest.parent / "site").rmdir()
        failed = saferun("why", name, "--manifest", str(manifest), "--duration", "1")
        assert failed.returncode == 4, failed.stdout + failed.stderr
        assert "could not run" in failed.stderr and "no denial found" not in failed.stderr
    finally:
        docker("rm", "-f", name, clash, check=False)


def test_a_killed_learner_leaves_no_container(busybox_manifest: Path) -> None:
    learner = subprocess.Popen([sys.executable, "-m", "saferun", "learn", str(busybox_manifest),
                                "--duration", "120", "-o", str(busybox_manifest) + ".json",
                                "--", "sleep", "300"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    label = "label=saferun-e2e"
    container = ""
    deadline = time.monotonic() + 30
    while not container and time.monotonic() < deadline:
        found = docker("ps", "-q", "--filter", "name=saferun-learn-", "--filter", label).stdout
        container = found.split()[0] if found.split() else ""
        time.sleep(0.2)
    assert container, "the learning container never ran"
    learner.kill()  # SIGKILL: no finally, no atexit
    learner.wait()
    killed = time.monotonic()
    while docker("ps", "-aq", "--filter", f"id={container}").stdout.strip():
        assert time.monotonic() - killed < 15, "the learning container outlived its learner"
        time.sleep(0.2)
    print(f"\nlearning container removed {time.monotonic() - killed:.2f} s after SIGKILL")
