"""Real clients for the imitations of the official images, and the /proc facts of a container.

Used by test_official_images_e2e.py (issue 15); written so that other end-to-end tests can
reuse them. Every client takes the address to talk to (the host's 127.0.0.1 for a published
port, or the container's address on the engine's bridge, both on this machine) and bounds
every wait. Nothing here needs a client library except pg8000 (in the test extra):
    HTTP (urllib), Redis (RESP2 over a socket), memcached (text protocol), PostgreSQL
    (pg8000), MariaDB (the image's own `mariadb` client through `docker exec`), MQTT 3.1.1
    (a minimal client below).
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from saferun.model.capabilities import CAPABILITY_BITS
from tests.e2e.preset_clients import Resp

T = TypeVar("T")


class ContainerStopped(AssertionError):
    """The container exited while a client was waiting for its server."""


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def container_state(container: str) -> dict[str, Any]:
    result = _docker("inspect", "--format", "{{json .State}}", container)
    if result.returncode != 0:
        raise AssertionError(f"cannot inspect {container}: {result.stderr.strip()}")
    state: dict[str, Any] = json.loads(result.stdout)
    return state


def logs_tail(container: str, lines: int = 30) -> str:
    result = _docker("logs", "--tail", str(lines), container)
    return (result.stdout + result.stderr).strip()


def wait_for(probe: Callable[[], T], container: str | None = None, timeout: float = 30.0,
             interval: float = 0.3) -> T:
    """Retry `probe` until it returns, for at most `timeout` seconds.

    With `container`, stop early (ContainerStopped, with the container's last log lines)
    as soon as it is no longer running: a crashed server never answers, so there is no
    point in waiting out the timeout.
    """
    deadline = time.monotonic() + timeout
    next_state_check = 0.0
    while True:
        try:
            return probe()
        except Exception as exc:
            now = time.monotonic()
            if container is not None and now >= next_state_check:
                next_state_check = now + 1.0
                state = container_state(container)
                if not state.get("Running"):
                    raise ContainerStopped(
                        f"container exited ({state.get('ExitCode')}) before it served; "
                        f"last log lines:\n{logs_tail(container)}") from exc
            if now >= deadline:
                raise AssertionError(
                    f"no answer within {timeout:.0f} s ({exc!r})"
                    + (f"; last log lines:\n{logs_tail(container)}" if container else "")
                ) from exc
            time.sleep(interval)


def container_address(container: str) -> str:
    """The container's IPv4 address on the engine's bridge (reachable from this host).
    Raises ContainerStopped when the container is no longer running (it has none then)."""
    state = container_state(container)
    if not state.get("Running"):
        raise ContainerStopped(f"container exited ({state.get('ExitCode')}) before it served; "
                               f"last log lines:\n{logs_tail(container)}")
    result = _docker("inspect", "--format",
                     "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container)
    addresses = result.stdout.split()
    if not addresses:
        raise AssertionError(f"{container} has no network address: {result.stderr.strip()}")
    return addresses[0]


# --- HTTP -----------------------------------------------------------------------------

def http_get(host: str, port: int, path: str = "/") -> tuple[int, bytes]:
    """One HTTP GET with urllib: (status, body); error statuses are returned too."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- Redis ----------------------------------------------------------------------------

def Redis(host: str, port: int) -> Resp:  # noqa: N802 - reads as the client it opens
    """A RESP2 connection: the preset tests' client, at any address."""
    return Resp(port, host=host)


def redis_ping(host: str, port: int) -> None:
    with Redis(host, port) as client:
        if client.call("PING") != "PONG":
            raise ConnectionError("no PONG")


def redis_write(host: str, port: int, key: str, value: str) -> dict[str, Any]:
    """SET, GET and a foreground SAVE (the server writes its dump to its data folder)."""
    with Redis(host, port) as client:
        return {"set": client.call("SET", key, value), "get": client.call("GET", key),
                "save": client.call("SAVE")}


def redis_read(host: str, port: int, key: str) -> Any:
    with Redis(host, port) as client:
        return client.call("GET", key)


# --- memcached ------------------------------------------------------------------------

def memcached_set_get(host: str, port: int, key: str, value: bytes) -> tuple[bytes, bytes]:
    """`set` then `get` over the text protocol: (reply to set, value read back)."""
    with socket.create_connection((host, port), timeout=5) as sock:
        stream = sock.makefile("rb")
        sock.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(value), value))
        stored = stream.readline().strip()
        sock.sendall(b"get %s\r\n" % key.encode())
        header = stream.readline().split()
        if header[:1] != [b"VALUE"]:
            return stored, b""
        data = stream.read(int(header[3]) + 2)[:-2]
        if stream.readline().strip() != b"END":
            raise ConnectionError("memcached: no END after the value")
        return stored, data


# --- PostgreSQL -----------------------------------------------------------------------

def postgres_connect(host: str, port: int, password: str, user: str = "postgres",
                     database: str = "postgres") -> Any:
    import pg8000.native

    return pg8000.native.Connection(user=user, password=password, host=host, port=port,
                                    database=database, timeout=10)


def postgres_write(host: str, port: int, password: str, marker: str) -> list[list[Any]]:
    """Create a table, insert rows, select them back."""
    connection = postgres_connect(host, port, password)
    try:
        connection.run("CREATE TABLE srtest (id integer PRIMARY KEY, note text)")
        for i in range(1, 51):
            connection.run("INSERT INTO srtest VALUES (:i, :n)", i=i, n=f"{marker} {i}")
        rows: list[list[Any]] = connection.run(
            "SELECT count(*), max(note) FILTER (WHERE id = 42) FROM srtest")
        return rows
    finally:
        connection.close()


def postgres_read(host: str, port: int, password: str, table: str = "srtest",
                  column: str = "note") -> list[list[Any]]:
    """The row count of `table` and the `column` of its row 42."""
    connection = postgres_connect(host, port, password)
    try:
        rows: list[list[Any]] = connection.run(
            f"SELECT count(*), max({column}) FILTER (WHERE id = 42) FROM {table}")
        return rows
    finally:
        connection.close()


# --- MariaDB (the image's own client) -------------------------------------------------

def mariadb_sql(container: str, sql: str, user: str, password: str, database: str = "",
                port: int = 3306) -> str:
    """Run SQL with the image's `mariadb` client over TCP inside the container: its output
    (tab-separated, no headers). Raises ConnectionError on a non-zero exit."""
    argv = ["exec", "-e", f"MYSQL_PWD={password}", container, "mariadb", "--protocol=tcp",
            "-h127.0.0.1", f"-P{port}", f"-u{user}", "--batch", "--skip-column-names",
            "-e", sql]
    if database:
        argv.append(database)
    result = _docker(*argv, timeout=30)
    if result.returncode != 0:
        raise ConnectionError(f"mariadb client failed ({result.returncode}): "
                              f"{result.stderr.strip()}")
    return result.stdout


# --- MQTT 3.1.1 -----------------------------------------------------------------------

def _mqtt_length(size: int) -> bytes:
    out = bytearray()
    while True:
        byte, size = size % 128, size // 128
        out.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(out)


def _mqtt_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


class Mqtt:
    """A minimal MQTT 3.1.1 client: CONNECT, PUBLISH (QoS 0), SUBSCRIBE, receive PUBLISH."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self._sock = socket.create_connection((host, port), timeout=5)
        variable = _mqtt_string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 30)
        self._send(0x10, variable + _mqtt_string(client_id))
        kind, body = self._receive()
        if kind != 0x20 or len(body) != 2 or body[1] != 0:
            raise ConnectionError(f"MQTT connection refused: {kind:#x} {body!r}")

    def __enter__(self) -> Mqtt:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._send(0xE0, b"")
        finally:
            self._sock.close()

    def _send(self, header: int, body: bytes) -> None:
        self._sock.sendall(bytes([header]) + _mqtt_length(len(body)) + body)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("MQTT connection closed")
            data += chunk
        return data

    def _receive(self) -> tuple[int, bytes]:
        header = self._exactly(1)[0]
        size, shift = 0, 0
        while True:
            byte = self._exactly(1)[0]
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return header, self._exactly(size)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._send(0x30 | (0x01 if retain else 0), _mqtt_string(topic) + payload)

    def subscribe(self, topic: str) -> None:
        self._send(0x82, struct.pack("!H", 1) + _mqtt_string(topic) + b"\x00")
        kind, body = self._receive()
        if kind != 0x90 or body[-1:] == b"\x80":
            raise ConnectionError(f"MQTT subscription refused: {kind:#x} {body!r}")

    def next_message(self) -> tuple[str, bytes, bool]:
        """The next PUBLISH: (topic, payload, retained flag)."""
        while True:
            kind, body = self._receive()
            if kind & 0xF0 != 0x30:
                continue
            length = struct.unpack("!H", body[:2])[0]
            topic = body[2:2 + length].decode()
            rest = body[2 + length:]
            if (kind >> 1) & 0x03:  # QoS 1/2 carry a packet id
                rest = rest[2:]
            return topic, rest, bool(kind & 0x01)


def mqtt_roundtrip(host: str, port: int, topic: str, payload: bytes) -> tuple[str, bytes]:
    """Subscribe with one client, publish (retained) with another, receive it."""
    with Mqtt(host, port, "srtest-sub") as subscriber:
        subscriber.subscribe(topic)
        with Mqtt(host, port, "srtest-pub") as publisher:
            publisher.publish(topic, payload, retain=True)
        got_topic, got, _ = subscriber.next_message()
        return got_topic, got


def mqtt_retained(host: str, port: int, topic: str) -> tuple[bytes, bool] | None:
    """Subscribe and read the retained message the broker hands out at once; None when it
    sends none within the socket's timeout (a broker that lost it)."""
    with Mqtt(host, port, "srtest-late") as subscriber:
        subscriber.subscribe(topic)
        try:
            _, payload, retained = subscriber.next_message()
        except TimeoutError:
            return None
        return payload, retained


# --- /proc and docker inspect ---------------------------------------------------------

@dataclass(frozen=True)
class ProcStatus:
    pid: int
    name: str
    uids: tuple[int, ...]
    cap_eff: int
    no_new_privs: int
    seccomp: int


def read_status(pid: int, proc: str = "/proc") -> ProcStatus:
    fields: dict[str, str] = {}
    with open(f"{proc}/{pid}/status", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return ProcStatus(pid=pid, name=fields.get("Name", "?"),
                      uids=tuple(int(u) for u in fields["Uid"].split()),
                      cap_eff=int(fields["CapEff"], 16),
                      no_new_privs=int(fields.get("NoNewPrivs", "0")),
                      seccomp=int(fields.get("Seccomp", "0")))


def container_pids(container: str, proc: str = "/proc") -> list[int]:
    """The container's init process (from `docker inspect`) and all its descendants, read
    from /proc/PID/task/TID/children on the host."""
    init = int(container_state(container).get("Pid") or 0)
    if init <= 0:
        raise AssertionError(f"{container} has no running init process")
    found, queue = [], [init]
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        try:
            with open(f"{proc}/{pid}/task/{pid}/children", encoding="ascii") as handle:
                queue.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def capability_bits(names: list[str] | None) -> int:
    mask = 0
    for name in names or []:
        canonical = name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}"
        mask |= 1 << CAPABILITY_BITS[canonical]
    return mask


def root_is_read_only(pid: int, proc: str = "/proc") -> bool:
    """The root the process sees, from its own /proc/PID/mountinfo: the last mount at "/"
    (the visible one) has the `ro` option."""
    from saferun.model.process import facts_from_text

    with open(f"{proc}/{pid}/mountinfo", encoding="utf-8", errors="replace") as handle:
        mounts = handle.read()
    root = facts_from_text(pid, "", "", mounts).mount("/")
    return root is not None and root.read_only


def hardening_problems(container: str, *, root_processes: int = 0) -> list[str]:
    """What is not in force on the container's processes (empty when all is): no process
    runs as uid 0 (up to `root_processes` may, for a preset that documents a root master),
    CapEff holds nothing beyond the capabilities the container was given (HostConfig.CapAdd
    after --cap-drop ALL), NoNewPrivs 1, Seccomp 2 (filter), and a read-only root
    filesystem both in `docker inspect` and in each process's /proc/PID/mountinfo."""
    result = _docker("inspect", "--format", "{{json .HostConfig}}", container)
    host: dict[str, Any] = json.loads(result.stdout)
    problems = []
    if host.get("ReadonlyRootfs") is not True:
        problems.append(f"ReadonlyRootfs is {host.get('ReadonlyRootfs')!r}")
    drops = [d.upper() for d in host.get("CapDrop") or []]
    if "ALL" not in drops:
        problems.append(f"CapDrop is {drops!r}, not ALL")
    allowed = capability_bits(host.get("CapAdd"))
    as_root = []
    for pid in container_pids(container):
        try:
            status = read_status(pid)
            read_only = root_is_read_only(pid)
        except OSError:
            continue  # exited meanwhile
        what = f"pid {pid} ({status.name})"
        if 0 in status.uids:
            as_root.append(f"{what} has uid 0 in {status.uids}")
        if status.cap_eff & ~allowed:
            problems.append(f"{what} CapEff {status.cap_eff:016x} beyond {allowed:016x}")
        if status.no_new_privs != 1:
            problems.append(f"{what} NoNewPrivs {status.no_new_privs}")
        if status.seccomp != 2:
            problems.append(f"{what} Seccomp {status.seccomp}")
        if not read_only:
            problems.append(f"{what} sees a writable root in its mountinfo")
    if len(as_root) > root_processes:
        problems.extend(as_root)
    return problems
