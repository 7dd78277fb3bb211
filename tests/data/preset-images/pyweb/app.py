"""A tiny WSGI web app (standard library only) for the python-web preset's E2E test.

GET /        -> a greeting, JSON
GET /health  -> "ok" (the preset's health check)
POST /echo   -> the request body back, to show request bodies work under the profile
GET /tmpfile -> writes and reads a file in $TMPDIR (the writable tmpfs under a read-only root)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

Start = Callable[[str, list[tuple[str, str]]], object]


def app(environ: dict[str, object], start_response: Start) -> Iterable[bytes]:
    path = str(environ.get("PATH_INFO", "/"))
    method = str(environ.get("REQUEST_METHOD", "GET"))
    if path == "/health":
        return _send(start_response, "200 OK", b"ok\n", "text/plain")
    if path == "/echo" and method == "POST":
        length = int(str(environ.get("CONTENT_LENGTH") or 0))
        body = environ["wsgi.input"].read(length)  # type: ignore[attr-defined]
        return _send(start_response, "200 OK", body, "application/octet-stream")
    if path == "/tmpfile":
        with tempfile.NamedTemporaryFile("w+", delete=True) as handle:
            handle.write("written under a read-only root\n")
            handle.flush()
            handle.seek(0)
            data = handle.read().encode()
        return _send(start_response, "200 OK", data, "text/plain")
    if path == "/":
        body = json.dumps({"app": "pyweb", "uid": os.getuid(), "python": sys.version.split()[0]})
        return _send(start_response, "200 OK", body.encode() + b"\n", "application/json")
    return _send(start_response, "404 Not Found", b"not found\n", "text/plain")


def _send(start_response: Start, status: str, body: bytes, kind: str) -> list[bytes]:
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    with make_server("0.0.0.0", port, app, handler_class=_Quiet) as server:
        print(f"pyweb: listening on :{port}", flush=True)
        server.serve_forever()
