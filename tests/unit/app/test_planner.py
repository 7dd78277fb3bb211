"""saferun.app.planner: when a start asks the planning server, and what a child does."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saferun.app import planner
from saferun.engine import forkserver


@pytest.fixture
def server_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """The server turned on, a short private cache, and the socket calls recorded."""
    cache = Path("/tmp") / f"planner-unit-{os.getpid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("SAFERUN_NO_SERVER", raising=False)
    monkeypatch.delenv("SAFERUN_NO_CACHE", raising=False)
    calls: dict[str, list[Any]] = {"ask": [], "spawn": []}
    answer: list[tuple[str, Any]] = [("absent", None)]

    def ask(path: str, request: dict[str, Any], timeout: float) -> tuple[str, Any]:
        calls["ask"].append((path, request))
        return answer[0]

    monkeypatch.setattr(forkserver, "ask", ask)
    monkeypatch.setattr(forkserver, "spawn_detached", lambda argv: calls["spawn"].append(argv))
    calls["answer"] = answer
    yield calls
    import shutil

    shutil.rmtree(cache, ignore_errors=True)


def test_an_absent_server_is_spawned_once_and_not_again_at_once(
        server_on: dict[str, list[Any]]) -> None:
    argv = ["run", "--label", "a=b", "busybox:1.36", "true"]
    assert planner.fill(argv) is False
    assert planner.fill(argv) is False
    assert len(server_on["ask"]) == 2 and len(server_on["spawn"]) == 1
    spawned = server_on["spawn"][0]
    assert spawned[0] == __import__("sys").executable and "serve_main" in spawned[2]
    path, request = server_on["ask"][0]
    assert path == planner.socket_path()
    assert request["argv"] == argv and request["cwd"] == os.getcwd()
    assert request["env"] == dict(os.environ) and isinstance(request["umask"], int)


def test_only_a_stored_answer_counts(server_on: dict[str, list[Any]]) -> None:
    argv = ["run", "busybox:1.36"]
    for answer, expected in ((("ok", {"stored": True}), True), (("ok", {"stored": False}), False),
                             (("ok", None), False), (("failed", None), False)):
        server_on["answer"][0] = answer
        assert planner.fill(argv) is expected
    assert server_on["spawn"] == []  # a server that answers, or fails, is not replaced


@pytest.mark.parametrize("argv", [["run", "--dry-run", "busybox:1.36"], ["check", "x.toml"], []])
def test_dry_runs_and_other_commands_never_ask(server_on: dict[str, list[Any]],
                                               argv: list[str]) -> None:
    assert planner.fill(argv) is False
    assert server_on["ask"] == [] and server_on["spawn"] == []


@pytest.mark.parametrize("variable", ["SAFERUN_NO_SERVER", "SAFERUN_NO_CACHE"])
def test_turned_off(server_on: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch,
                    variable: str) -> None:
    monkeypatch.setenv(variable, "1")
    assert planner.fill(["run", "busybox:1.36"]) is False
    assert server_on["ask"] == [] and server_on["spawn"] == []


def test_a_socket_path_too_long_for_sun_path_turns_it_off(
        server_on: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/" + "x" * 90)
    assert planner.socket_path() is None
    assert planner.fill(["run", "busybox:1.36"]) is False
    assert server_on["ask"] == []


def test_the_socket_name_follows_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from saferun.app import plancache

    monkeypatch.setattr(plancache, "code_fingerprint", lambda: "a" * 64)
    first = planner.socket_path()
    monkeypatch.setattr(plancache, "code_fingerprint", lambda: "b" * 64)
    assert planner.socket_path() != first


def test_idle_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, expected in (("", 600), ("30", 30), ("2.5", 2.5), ("0", 600), ("x", 600),
                           ("-5", 600)):
        monkeypatch.setenv("SAFERUN_SERVER_IDLE", text)
        assert planner.idle_seconds() == expected


def _child(queue: Any, request: dict[str, Any]) -> None:
    import saferun.app.run as run

    seen: dict[str, Any] = {}

    def fill_plan_cache(args: list[str], *, cwd: str) -> bool:
        seen.update(args=args, cwd=cwd, getcwd=os.getcwd(), env=dict(os.environ),
                    umask=os.umask(0))
        return True

    run.fill_plan_cache = fill_plan_cache  # type: ignore[assignment]
    queue.put((planner._handle(request), seen))


def test_a_child_takes_the_clients_directory_environment_and_umask(tmp_path: Path) -> None:
    request = {"argv": ["run", "--label", "a=b", "busybox:1.36"], "cwd": str(tmp_path),
               "env": {"PATH": "/usr/bin", "ONLY": "this"}, "umask": 0o027}
    context = multiprocessing.get_context("fork")  # the server's children are forks too
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, request))
    process.start()
    reply, seen = queue.get(timeout=30)
    process.join(timeout=30)
    assert reply == {"stored": True}
    assert seen["args"] == ["--label", "a=b", "busybox:1.36"]
    assert seen["cwd"] == seen["getcwd"] == str(tmp_path)
    assert seen["env"] == {"PATH": "/usr/bin", "ONLY": "this"}
    assert seen["umask"] == 0o027


@pytest.mark.parametrize("request_", [
    {"argv": "run x", "cwd": "/", "env": {}, "umask": 0},
    {"argv": ["run"], "cwd": 5, "env": {}, "umask": 0},
    {"argv": ["run"], "cwd": "/", "env": [], "umask": 0},
])
def test_a_malformed_request_is_not_planned(request_: dict[str, Any]) -> None:
    assert planner._handle(request_) == {"stored": False}
