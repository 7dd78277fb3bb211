"""The one module that talks to the Docker engine.

Start-up cost matters: `saferun run` sits in front of every container start. Importing the
docker SDK costs about 110 ms (requests, urllib3), a third of a container start, so the
two calls on the launch path (`GET /info` and `GET /images/{ref}/json`) go over the local
unix socket with the standard library. Any other endpoint (tcp://, ssh://, a docker
context) is asked through the docker CLI, which resolves hosts, contexts and TLS exactly as
the `docker run` that follows will. The SDK is imported lazily for everything else.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import urllib.parse
from typing import Any

from saferun.errors import EngineUnavailable, SaferunError

API_VERSION = "v1.41"
DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT_S = 10.0


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=TIMEOUT_S)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT_S)
        sock.connect(self._path)
        self.sock = sock


def local_socket_path() -> str | None:
    """The unix socket of the engine docker would use, or None when the CLI must resolve it."""
    if os.environ.get("DOCKER_CONTEXT"):
        return None
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        if _cli_context_is_custom():
            return None
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return None


def _cli_context_is_custom() -> bool:
    config_dir = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    try:
        with open(os.path.join(config_dir, "config.json"), encoding="utf-8") as handle:
            context = json.load(handle).get("currentContext", "")
    except (OSError, ValueError):
        return False
    return bool(context) and context != "default"


class EngineSession:
    """A short-lived connection for the launch path's few API calls."""

    def __init__(self) -> None:
        self._socket = local_socket_path()
        self._conn: _UnixHTTPConnection | None = None

    def _get(self, path: str) -> tuple[int, bytes]:
        assert self._socket is not None
        if self._conn is None:
            self._conn = _UnixHTTPConnection(self._socket)
        try:
            self._conn.request("GET", f"/{API_VERSION}{path}")
            response = self._conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise _unreachable(f"unix://{self._socket}", str(exc)) from None

    def info(self) -> dict[str, Any]:
        """`docker info` as JSON."""
        if self._socket is None:
            return json.loads(_cli(["info", "--format", "{{json .}}"]))
        status, body = self._get("/info")
        if status != 200:
            raise _unreachable(f"unix://{self._socket}", f"HTTP {status}: {body[:200]!r}")
        return json.loads(body)

    def image_present(self, reference: str) -> bool:
        if self._socket is None:
            try:
                _cli(["image", "inspect", "--format", "{{.Id}}", reference])
                return True
            except SaferunError:
                return False
        status, _ = self._get("/images/" + urllib.parse.quote(reference, safe="") + "/json")
        return status == 200

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _unreachable(endpoint: str, detail: str) -> EngineUnavailable:
    return EngineUnavailable(
        f"cannot reach the Docker engine at {endpoint}: {detail}",
        fix="start the daemon (e.g. `systemctl start docker`, or `dockerd &` as root), or point "
        "DOCKER_HOST at a running engine",
    )


def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        raise EngineUnavailable(
            "the docker command-line client is not installed or not on PATH",
            fix="install the Docker CLI (Debian: apt-get install docker.io)",
        )
    return path


def _cli(args: list[str]) -> str:
    result = subprocess.run([docker_cli(), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise _unreachable(os.environ.get("DOCKER_HOST") or "the current docker context",
                           detail[-1] if detail else f"exit {result.returncode}")
    return result.stdout


def exec_docker_run(argv: list[str], seccomp_profile: str | None) -> None:
    """Replace this process with `docker run`: its TTY, signals and exit code become ours.

    A generated seccomp profile is handed over in an anonymous memory file inherited by
    docker (/proc/self/fd/N): no path on disk, so no window in which another user could swap
    it. `argv` must contain the placeholder SECCOMP_FD_PATH where the path goes.
    """
    if seccomp_profile is not None:
        fd = os.memfd_create("saferun-seccomp", 0)
        os.write(fd, seccomp_profile.encode())
        os.set_inheritable(fd, True)
        argv = [a.replace(SECCOMP_FD_PATH, f"/proc/self/fd/{fd}") for a in argv]
    argv[0] = docker_cli()
    os.execv(argv[0], argv)


SECCOMP_FD_PATH = "@saferun-seccomp-fd@"


def docker_client() -> Any:
    """The docker SDK client, for the commands that need more than the launch path."""
    import docker  # lazily: see the module docstring

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise _unreachable(os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}", str(exc)) from None
    return client
