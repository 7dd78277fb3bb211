"""The launch path's engine client: `GET /info` and `GET /images/{ref}/json`, and little else.

Start-up cost matters: `saferun run` sits in front of every container start, so the calls
on the launch path go over the local unix socket with the standard library alone. Even
`http.client` costs 15 ms to import (it pulls in the email package), so they speak
HTTP/1.0 directly: one request per connection, no chunking, body until close. Any other
endpoint (tcp://, ssh://, a docker context) is asked through the docker CLI
(saferun.engine.docker_cli), which resolves hosts, contexts and TLS exactly as the
`docker run` that follows will. There is no docker SDK: it would cost about 110 ms to
import (requests, urllib3) and resolve endpoints differently from the CLI.
"""

from __future__ import annotations

import os

from saferun.errors import EngineUnavailable, SaferunError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 2 ms here

if TYPE_CHECKING:
    from typing import Any

API_VERSION = "v1.41"
DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT_S = 10.0
_MAX_RESPONSE = 64 << 20
# Characters of a validated image reference; none needs escaping in an API path.
_API_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@")


def _unix_get(socket_path: str, path: str, timeout: float = TIMEOUT_S,
              method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """GET (or `method` with a JSON `body`) over a unix socket with HTTP/1.0; returns
    (status, body)."""
    import socket

    request = f"{method} {path} HTTP/1.0\r\nHost: docker\r\n"
    if body is not None:
        request += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall((request + "\r\n").encode("ascii") + (body or b""))
        chunks, size = [], 0
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_RESPONSE:
                raise OSError("response too large")
    head, sep, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        raise OSError("malformed HTTP response")
    return int(status_line[1]), body


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
        return host[len("unix://") :]
    return None


def _cli_context_is_custom() -> bool:
    config_dir = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    try:
        with open(os.path.join(config_dir, "config.json"), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return False
    if '"currentContext"' not in text:  # the common case, without importing json
        return False
    import json

    try:
        context = json.loads(text).get("currentContext", "")
    except (ValueError, AttributeError):
        return False
    return bool(context) and context != "default"


DEFAULT_PIDFILE = "/var/run/docker.pid"
DAEMON_CONFIGS = ("/etc/docker/daemon.json",)


def daemon_identity() -> str | None:
    """Stat of the local daemon's socket, pidfile and daemon.json, or None if unknown.

    Facts that need a daemon restart to change (security options, cgroup support) cannot
    change while these stay the same: a restart rewrites the pidfile, and `kill -HUP`
    reloads only daemon.json. Runtimes can change on reload; that shows in daemon.json too,
    and a removed runtime makes `docker run` itself fail. Without a pidfile (rootless, a
    custom --pidfile) the caller asks the daemon instead.
    """
    socket_path = local_socket_path()
    if socket_path is None or os.path.realpath(socket_path) != os.path.realpath(DEFAULT_SOCKET):
        return None  # the default pidfile and daemon.json belong to the default daemon only
    parts = []
    for path in (socket_path, DEFAULT_PIDFILE, *DAEMON_CONFIGS):
        try:
            info = os.stat(path)
        except FileNotFoundError:
            if path in (socket_path, DEFAULT_PIDFILE):
                return None
            parts.append(f"{path}:-")
            continue
        parts.append(
            f"{path}:{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"
        )
    return "|".join(parts)


class EngineSession:
    """A short-lived connection for the launch path's few API calls."""

    def __init__(self) -> None:
        self._socket = local_socket_path()
        if self._socket is None:
            check_remote_endpoint()  # tcp:// needs mutual TLS; see saferun.engine.remote

    def _get(self, path: str) -> tuple[int, bytes]:
        assert self._socket is not None
        try:
            return _unix_get(self._socket, f"/{API_VERSION}{path}")
        except (OSError, ValueError) as exc:
            raise _unreachable(f"unix://{self._socket}", str(exc) or type(exc).__name__) from None

    def _get_json(self, path: str, *, missing_ok: bool = False) -> Any:
        """GET an API path over the local socket and parse it; None on 404 if missing_ok."""
        import json

        status, body = self._get(path)
        if status == 404 and missing_ok:
            return None
        if status != 200:
            raise _unreachable(f"unix://{self._socket}", f"HTTP {status}: {body[:200]!r}")
        return json.loads(body)

    def reachable(self) -> None:
        """Raise EngineUnavailable unless the engine answers (`GET /_ping`; through the CLI,
        whose inspect commands answer an absent engine and an absent object alike, `info`)."""
        if self._socket is None:
            self.info()
            return
        status, body = self._get("/_ping")
        if status != 200:
            raise _unreachable(f"unix://{self._socket}", f"HTTP {status}: {body[:200]!r}")

    def info(self) -> dict[str, Any]:
        """`docker info` as JSON."""
        import json

        if self._socket is None:
            from saferun.engine.docker_cli import cli_output

            info = json.loads(cli_output(["info", "--format", "{{json .}}"]))
            if info.get("ServerErrors") or not info.get("ServerVersion"):
                # The CLI can exit 0 with only client-side info (e.g. plain HTTP to a TLS port).
                errors = info.get("ServerErrors") or ["no server information"]
                raise _unreachable(
                    os.environ.get("DOCKER_HOST") or "the current docker context",
                    "; ".join(str(e) for e in errors),
                )
            return dict(info)
        return dict(self._get_json("/info"))

    def image_present(self, reference: str) -> bool:
        if self._socket is None:
            from saferun.engine.docker_cli import cli_output

            try:
                cli_output(["image", "inspect", "--format", "{{.Id}}", reference])
                return True
            except SaferunError:
                return False
        status, _ = self._get(f"/images/{_api_name(reference, 'image reference')}/json")
        return status == 200

    def image_inspect(self, reference: str) -> dict[str, Any] | None:
        """`docker image inspect` as JSON (for `saferun init --image`), or None if absent."""
        if self._socket is None:
            from saferun.engine.docker_cli import cli_json

            return cli_json(["image", "inspect", "--format", "{{json .}}", reference])
        path = f"/images/{_api_name(reference, 'image reference')}/json"
        found = self._get_json(path, missing_ok=True)
        return dict(found) if found is not None else None

    def image_history(self, reference: str) -> list[dict[str, Any]]:
        """`docker image history` as JSON, newest step first (for saferun image check)."""
        import json

        if self._socket is None:
            from saferun.engine.docker_cli import cli_output

            text = cli_output(["image", "history", "--no-trunc", "--format", "{{json .}}",
                               reference])
            return [dict(json.loads(line)) for line in text.splitlines() if line.strip()]
        path = f"/images/{_api_name(reference, 'image reference')}/history"
        return [dict(item) for item in self._get_json(path)]

    def container_inspect(self, name: str) -> dict[str, Any] | None:
        """`docker inspect CONTAINER` as JSON (for `saferun verify`/`check --container`)."""
        if self._socket is None:
            from saferun.engine.docker_cli import cli_json

            return cli_json(["container", "inspect", "--format", "{{json .}}", name])
        found = self._get_json(f"/containers/{_api_name(name, 'container name')}/json",
                               missing_ok=True)
        return dict(found) if found is not None else None

    def volume_inspect(self, name: str) -> dict[str, Any] | None:
        """`docker volume inspect NAME` as JSON, or None when there is no such volume."""
        if self._socket is None:
            from saferun.engine.docker_cli import cli_json

            return cli_json(["volume", "inspect", "--format", "{{json .}}", name])
        found = self._get_json(f"/volumes/{_api_name(name, 'volume name')}", missing_ok=True)
        return dict(found) if found is not None else None

    def network_inspect(self, name: str) -> dict[str, Any] | None:
        """`docker network inspect NAME-OR-ID` as JSON, or None when there is no such network.
        The engine resolves an ID or a unique ID prefix as `docker run --network` does."""
        if self._socket is None:
            from saferun.engine.docker_cli import cli_json

            return cli_json(["network", "inspect", "--format", "{{json .}}", name])
        found = self._get_json(f"/networks/{_api_name(name, 'network name')}", missing_ok=True)
        return dict(found) if found is not None else None

    def _post(self, path: str, payload: Any = None, timeout: float = 300) -> tuple[int, Any]:
        """POST over the local socket: (status, the JSON answer or None)."""
        import json

        assert self._socket is not None
        body = json.dumps(payload).encode() if payload is not None else None
        try:
            status, answer = _unix_get(self._socket, f"/{API_VERSION}{path}", timeout,
                                       method="POST", body=body)
        except (OSError, ValueError) as exc:
            raise _unreachable(f"unix://{self._socket}", str(exc) or type(exc).__name__) from None
        try:
            return status, json.loads(answer) if answer.strip() else None
        except ValueError:
            return status, {"message": answer[:300].decode("utf-8", "replace")}

    def create_network(self, name: str, labels: dict[str, str]) -> str:
        """`docker network create --driver bridge --label ... NAME`: its id. SaferunError
        with the engine's message when it refuses (a name taken, no address pool left)."""
        if self._socket is None:
            from saferun.engine.docker_cli import cli_output

            return cli_output(["network", "create", "--driver", "bridge",
                               *(f"--label={k}={v}" for k, v in labels.items()), name]).strip()
        status, answer = self._post("/networks/create", {
            "Name": _api_name(name, "network name"), "Driver": "bridge",
            "CheckDuplicate": True, "Labels": labels})
        if status != 201:
            raise SaferunError(f"cannot create network {name}: {_message(answer, status)}")
        return str(answer["Id"])

    def create_container(self, name: str, body: dict[str, Any]) -> tuple[str | None, str]:
        """`POST /containers/create?name=NAME` over the local socket: (its id, "") or
        (None, the engine's message). Without one: (None, "") and the caller uses the CLI."""
        if self._socket is None:
            return None, ""
        status, answer = self._post(
            f"/containers/create?name={_api_name(name, 'container name')}", body)
        if status == 201:
            return str(answer["Id"]), ""
        return None, _message(answer, status)

    def start_container(self, name: str) -> str | None:
        """`docker start NAME`; None when it started, else the engine's message."""
        if self._socket is None:
            from saferun.engine.docker_cli import docker, error_text

            result = docker("start", name, check=False, timeout=300)
            return None if result.returncode == 0 else error_text(result.stderr)
        status, answer = self._post(f"/containers/{_api_name(name, 'container name')}/start")
        return None if status in (204, 304) else _message(answer, status)

    def labelled_ids(self, label: str) -> tuple[list[str], list[str]]:
        """(container ids, network ids) carrying `label` (KEY=VALUE), stopped ones too."""
        if self._socket is None:
            from saferun.engine.docker_cli import cli_output

            return (cli_output(["ps", "-aq", "--filter", f"label={label}"]).split(),
                    cli_output(["network", "ls", "-q", "--filter", f"label={label}"]).split())
        import json
        from urllib.parse import quote

        filters = quote(json.dumps({"label": [label]}), safe="")
        containers = self._get_json(f"/containers/json?all=1&filters={filters}")
        networks = self._get_json(f"/networks?filters={filters}")
        return [str(c["Id"]) for c in containers], [str(n["Id"]) for n in networks]

    def running_containers(self) -> list[str]:
        """Names of the running containers (`docker ps`)."""
        if self._socket is None:
            from saferun.engine.docker_cli import cli_output

            return cli_output(["ps", "--format", "{{.Names}}"]).split()
        containers = self._get_json("/containers/json")
        return sorted(str(c["Names"][0]).lstrip("/") for c in containers if c.get("Names"))

    def close(self) -> None:
        """Nothing to release: each request used its own connection."""


def image_save_stream(reference: str) -> Any:
    """A context manager yielding `docker save REFERENCE` as a readable byte stream.

    The tar is never held in memory or written to disk: over the local socket it is the
    body of `GET /images/{name}/get` read as it arrives; otherwise the docker CLI's stdout.
    saferun.engine.image_files reads it with tarfile in stream mode.
    """
    import contextlib

    @contextlib.contextmanager
    def local(socket_path: str) -> Any:
        import socket

        _api_name(reference, "image reference")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(120.0)
            try:
                sock.connect(socket_path)
                sock.sendall(f"GET /{API_VERSION}/images/{reference}/get HTTP/1.0\r\n"
                             "Host: docker\r\n\r\n".encode("ascii"))
                stream = sock.makefile("rb")
                status_line = stream.readline(1024).split()
                while stream.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
            except OSError as exc:
                raise _unreachable(f"unix://{socket_path}", str(exc)) from None
            if len(status_line) < 2 or status_line[1] != b"200":
                detail = stream.read(300).decode("utf-8", "replace").strip()
                raise SaferunError(f"cannot export image {reference!r} from the engine: "
                                   f"{detail or status_line!r}")
            yield stream
        finally:
            sock.close()

    socket_path = local_socket_path()
    if socket_path is None:
        from saferun.engine.docker_cli import save_stream

        return save_stream(reference)
    return local(socket_path)


def _message(answer: Any, status: int) -> str:
    """The engine's error message in an API answer."""
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"])
    return f"HTTP {status}"


def _unreachable(endpoint: str, detail: str) -> EngineUnavailable:
    """saferun.engine.remote.unreachable, imported only when the engine could not be reached."""
    from saferun.engine.remote import unreachable

    return unreachable(endpoint, detail)


def _api_name(value: str, what: str) -> str:
    """A validated reference or name, safe to put in an API path as it is."""
    if not value or value.startswith("-") or not _API_SAFE.issuperset(value):
        raise SaferunError(f"invalid {what} {value!r}")
    return value


def check_remote_endpoint() -> None:
    """Refuse tcp:// without mutual TLS (DOCKER_HOST or the docker context in use)."""
    from saferun.engine import remote

    env = os.environ
    if env.get("DOCKER_HOST") and not env.get("DOCKER_CONTEXT"):
        probe = remote.endpoint_from_env(env, frozenset())
        present = frozenset(
            f for f in remote.TLS_FILES if os.path.isfile(os.path.join(probe.cert_dir, f))
        )
        remote.check_endpoint(remote.endpoint_from_env(env, present), env)
        return
    name = env.get("DOCKER_CONTEXT") or ""
    import json

    from saferun.engine.docker_cli import cli_output

    inspected = json.loads(cli_output(["context", "inspect", *([name] if name else [])]))
    if inspected:
        context = inspected[0]
        endpoint = remote.endpoint_from_context(str(context.get("Name", name)), context)
        remote.check_endpoint(endpoint, env)
