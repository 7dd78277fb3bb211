"""Real clients for the servers of the presets in profiles/: HTTP, Redis (RESP), PostgreSQL.

The E2E test (test_presets_e2e.py) asserts with them, and scripts/learn-presets.py runs the
same calls as the learning workload of `saferun learn`, so the learned seccomp lists cover
exactly what the tests exercise. Run as a module it drives one server:
`python -m tests.e2e.preset_clients KIND PORT` (exit 0 when every answer was right).
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
HOST = "127.0.0.1"
PG_PASSWORD = "saferun-preset-test"  # what the test and the learning runs set; never a secret


def wait_for(probe: Callable[[], T], timeout: float = 60.0) -> T:
    """Retry `probe` until it returns without an OSError-like failure, or raise the last."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except Exception:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.3)


def http(port: int, path: str = "/", data: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP request with urllib: (status, body); error statuses are returned too."""
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Resp:
    """A minimal Redis client speaking RESP2 over a socket (no client library needed)."""

    def __init__(self, port: int, host: str = HOST) -> None:
        self._sock = socket.create_connection((host, port), timeout=5)
        self._file = self._sock.makefile("rb")

    def __enter__(self) -> Resp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def call(self, *args: str) -> Any:
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            raw = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        self._sock.sendall(b"".join(parts))
        return self._read()

    def _read(self) -> Any:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"truncated RESP reply {line!r}")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RuntimeError(f"redis error: {body.decode()}")
        if kind == b":":
            return int(body)
        if kind == b"$":
            size = int(body)
            return None if size < 0 else self._file.read(size + 2)[:-2].decode()
        if kind == b"*":
            return [self._read() for _ in range(int(body))]
        raise ConnectionError(f"unknown RESP reply {line!r}")


def redis_check(port: int) -> dict[str, Any]:
    """PING, SET, GET, INCR, and a BGSAVE that must finish (a forked child writes /data)."""
    client = wait_for(lambda: _ready_resp(port))
    try:
        before = client.call("LASTSAVE")
        result = {
            "ping": client.call("PING"),
            "set": client.call("SET", "saferun:key", "hardened"),
            "get": client.call("GET", "saferun:key"),
            "incr": [client.call("INCR", "saferun:n") for _ in range(3)][-1],
            "bgsave": client.call("BGSAVE"),
        }
        deadline = time.monotonic() + 20
        while client.call("LASTSAVE") == before and time.monotonic() < deadline:
            time.sleep(0.2)
        info = client.call("INFO", "persistence")
        result["rdb_last_bgsave_status"] = _info_field(info, "rdb_last_bgsave_status")
        return result
    finally:
        client.close()


def _ready_resp(port: int) -> Resp:
    client = Resp(port)
    try:
        client.call("PING")
    except Exception:
        client.close()
        raise
    return client


def _info_field(info: str, key: str) -> str | None:
    for line in info.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


def postgres_check(port: int, password: str = PG_PASSWORD) -> dict[str, Any]:
    """Connect over TCP (scram-sha-256), create, write, read, aggregate, checkpoint."""
    import pg8000.native

    connection = wait_for(lambda: pg8000.native.Connection(
        "postgres", host=HOST, port=port, password=password, database="postgres", timeout=10))
    try:
        version = connection.run("SELECT version()")[0][0]
        connection.run("CREATE TABLE IF NOT EXISTS saferun_t (id serial PRIMARY KEY, v text)")
        connection.run("INSERT INTO saferun_t (v) "
                       "SELECT 'row ' || g FROM generate_series(1, 500) g")
        count = connection.run("SELECT count(*) FROM saferun_t")[0][0]
        value = connection.run("SELECT v FROM saferun_t WHERE id = :id", id=42)[0][0]
        sorted_top = connection.run(
            "SELECT v FROM saferun_t ORDER BY md5(v) LIMIT 1")[0][0]
        connection.run("CHECKPOINT")
        return {"version": version, "count": count, "value": value, "sorted": sorted_top}
    finally:
        connection.close()


def nginx_check(port: int) -> dict[str, Any]:
    status, body = wait_for(lambda: http(port, "/"))
    missing, _ = http(port, "/no-such-page")
    return {"status": status, "body": body.decode(errors="replace"), "missing": missing}


def pyweb_check(port: int) -> dict[str, Any]:
    import json

    status, body = wait_for(lambda: http(port, "/"))
    health = http(port, "/health")
    echo = http(port, "/echo", data=b"saferun")
    tmpfile = http(port, "/tmpfile")
    return {"status": status, "json": json.loads(body), "health": health, "echo": echo,
            "tmpfile": tmpfile}


CHECKS: dict[str, Callable[[int], dict[str, Any]]] = {
    "nginx": nginx_check, "official-nginx": nginx_check, "official-httpd": nginx_check,
    "redis": redis_check, "postgres": postgres_check, "python-web": pyweb_check,
}


def main(argv: list[str]) -> int:
    kind, port = argv[0], int(argv[1])
    result = CHECKS[kind](port)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
