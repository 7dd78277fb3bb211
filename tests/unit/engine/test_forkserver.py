"""saferun.engine.forkserver on real processes: a server in a subprocess, real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from saferun.engine import forkserver

SERVER = """
import os, sys
from saferun.engine.forkserver import serve

touched = 0

def handle(request):
    global touched
    if request.get("raise"):
        raise RuntimeError("boom")
    touched += 1  # a child's change: the next child must not see it
    seen = request.get("module") in sys.modules
    if request.get("module"):
        __import__(request["module"])
    if request.get("sleep"):
        import time
        time.sleep(request["sleep"])
    return {"echo": request, "pid": os.getpid(), "server": os.getppid(), "touched": touched,
            "seen": seen, "uid": os.getuid()}

serve(sys.argv[1], handle, idle_seconds=float(sys.argv[2]))
"""


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # sun_path holds 108 bytes: pytest's tmp_path can be longer than that.
    with tempfile.TemporaryDirectory(prefix="fs-", dir="/tmp") as name:
        os.chmod(name, 0o700)
        yield Path(name)


class Server:
    def __init__(self, directory: Path, idle: float = 30.0) -> None:
        script = directory / "server.py"
        script.write_text(SERVER)
        self.path = str(directory / "s.sock")
        root = str(Path(__file__).resolve().parents[3])
        env = {**os.environ, "PYTHONPATH": root}
        self.log = directory / f"server-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as log:  # a file, not a pipe nobody reads: never blocks
            self.proc = subprocess.Popen([sys.executable, str(script), self.path, str(idle)],
                                         env=env, stderr=log)
        deadline = time.monotonic() + 10
        while not os.path.exists(f"{self.path}.pid"):
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"SIGTERM did not stop the server: {self.log.read_text()}") \
                from None


@pytest.fixture
def server(short_dir: Path) -> Iterator[Server]:
    running = Server(short_dir)
    yield running
    running.stop()


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _wait_for_children(pid: int) -> set[int]:
    deadline = time.monotonic() + 10
    while not (found := _children(pid)):
        assert time.monotonic() < deadline, "no child waits for a request"
        time.sleep(0.01)
    return found


def _wait_until_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"left running: {pids}"
        time.sleep(0.01)


def test_no_server_is_absent(short_dir: Path) -> None:
    assert forkserver.ask(str(short_dir / "none.sock"), {}, 1.0) == ("absent", None)


def test_each_request_is_answered_by_its_own_child_from_a_clean_state(server: Server) -> None:
    replies = [forkserver.ask(server.path, {"n": n}, 5.0) for n in range(3)]
    assert [status for status, _ in replies] == ["ok"] * 3
    bodies = [reply for _, reply in replies]
    assert [b["echo"] for b in bodies] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {b["server"] for b in bodies} == {server.proc.pid}
    children = {b["pid"] for b in bodies}
    assert len(children) == 3 and server.proc.pid not in children
    assert [b["touched"] for b in bodies] == [1, 1, 1]  # no child saw another's change


def test_fifty_concurrent_clients_are_all_answered(server: Server) -> None:
    results: list[tuple[str, object]] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        answer = forkserver.ask(server.path, {"n": n, "sleep": 0.05}, 20.0)
        with lock:
            results.append(answer)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r[1]["echo"]["n"] for r in results if r[0] == "ok") == list(range(50))  # type: ignore[index]


def test_modules_a_child_imported_are_loaded_for_later_children(server: Server) -> None:
    first = forkserver.ask(server.path, {"module": "colorsys"}, 5.0)[1]
    assert first["seen"] is False
    deadline = time.monotonic() + 5
    while True:  # the server imports what it learned between requests
        later = forkserver.ask(server.path, {"module": "colorsys"}, 5.0)[1]
        if later["seen"] or time.monotonic() > deadline:
            break
    assert later["seen"] is True


def test_a_failing_handler_answers_none_and_the_server_goes_on(server: Server) -> None:
    assert forkserver.ask(server.path, {"raise": True}, 5.0) == ("ok", None)
    assert forkserver.ask(server.path, {"n": 1}, 5.0)[0] == "ok"


def test_garbage_and_oversized_frames_do_not_stop_the_server(server: Server) -> None:
    import socket

    for payload in (b"\x00\x00\x00\x05junk!", (forkserver.MAX_FRAME + 1).to_bytes(4, "big")):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(server.path)
            sock.sendall(payload)
            assert sock.recv(16) == b""  # closed without an answer
    assert forkserver.ask(server.path, {"n": 1}, 5.0)[0] == "ok"


def test_a_slow_answer_times_out_as_failed(server: Server) -> None:
    assert forkserver.ask(server.path, {"sleep": 2}, 0.3) == ("failed", None)


def test_the_server_leaves_when_idle_and_removes_its_files(short_dir: Path) -> None:
    idle = Server(short_dir, idle=0.5)
    idle.proc.wait(timeout=10)
    assert idle.proc.returncode == 0
    assert not os.path.exists(idle.path) and not os.path.exists(f"{idle.path}.pid")


def test_sigterm_stops_it_cleanly(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=10)
    assert not os.path.exists(server.path) and not os.path.exists(f"{server.path}.pid")
    assert forkserver.ask(server.path, {}, 1.0) == ("absent", None)


def test_a_second_server_on_the_same_path_leaves_at_once(server: Server, short_dir: Path) -> None:
    script = short_dir / "server.py"
    root = str(Path(__file__).resolve().parents[3])
    second = subprocess.run([sys.executable, str(script), server.path, "30"], timeout=20,
                            env={**os.environ, "PYTHONPATH": root}, check=False)
    assert second.returncode == 0
    assert forkserver.ask(server.path, {"n": 7}, 5.0)[1]["server"] == server.proc.pid


def test_a_socket_left_by_a_dead_server_is_absent_and_replaced(short_dir: Path) -> None:
    dead = Server(short_dir)
    waiting = _wait_for_children(dead.proc.pid)
    dead.proc.kill()  # SIGKILL: no cleanup, the socket file stays
    dead.proc.wait(timeout=10)
    assert os.path.exists(dead.path)
    # The child that was waiting for a request dies with its server (PR_SET_PDEATHSIG):
    # nothing listens on the socket any more.
    _wait_until_gone(waiting)
    assert forkserver.ask(dead.path, {}, 1.0) == ("absent", None)
    os.unlink(f"{dead.path}.pid")
    fresh = Server(short_dir)
    try:
        assert forkserver.ask(fresh.path, {"n": 1}, 5.0)[1]["server"] == fresh.proc.pid
    finally:
        fresh.stop()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make another user's socket")
def test_a_socket_of_another_user_is_never_asked(server: Server) -> None:
    os.chown(server.path, 65534, 65534)
    assert forkserver.ask(server.path, {}, 1.0) == ("failed", None)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_a_peer_of_another_uid_gets_no_answer(server: Server, short_dir: Path) -> None:
    os.chmod(short_dir, 0o755)
    os.chmod(server.path, 0o777)  # let the other user reach the socket: the uid check decides
    probe = (
        "import os, socket, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(5)\n"
        "s.connect(sys.argv[1])\n"
        "try:\n"
        "    s.sendall(b'\\x00\\x00\\x00\\x01N'); print('answered' if s.recv(16) else 'closed')\n"
        "except (ConnectionResetError, BrokenPipeError):\n"
        "    print('closed')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, server.path], capture_output=True,
                            text=True, timeout=20, check=False)
    assert result.stdout.strip() == "closed", result
    assert forkserver.ask(server.path, {"n": 1}, 5.0)[1]["uid"] == 0


def test_spawn_detached_runs_the_program_outside_this_process(short_dir: Path) -> None:
    marker = short_dir / "ran"
    forkserver.spawn_detached(["/bin/sh", "-c", f"echo $PPID $$ > {marker}"])
    deadline = time.monotonic() + 10
    while not marker.exists() or not marker.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    parent, pid = marker.read_text().split()
    assert int(parent) != os.getpid() and int(pid) != os.getpid()


def test_files_of_servers_no_longer_running_are_removed(server: Server, short_dir: Path) -> None:
    old = short_dir / "planner-old.sock"
    for suffix in (".lock", ".spawned", ""):
        Path(f"{old}{suffix}").write_text("")
    running = Path(server.path).name  # s.sock: its lock is held
    forkserver.remove_stale(str(short_dir), "", str(short_dir / "keep.sock"))
    assert not any(Path(f"{old}{suffix}").exists() for suffix in (".lock", ".spawned", ""))
    assert (short_dir / running).exists() and (short_dir / f"{running}.lock").exists()


def test_one_child_waits_ahead_of_each_request_and_leaves_with_the_server(
        server: Server) -> None:
    waiting = _wait_for_children(server.proc.pid)
    assert len(waiting) == 1
    reply = forkserver.ask(server.path, {"n": 1}, 5.0)[1]
    assert reply["pid"] in waiting  # the child forked before the request answered it
    deadline = time.monotonic() + 10
    while not (after := _children(server.proc.pid) - waiting):  # the server forks the next
        assert time.monotonic() < deadline, "no next child"
        time.sleep(0.01)
    server.stop()  # SIGTERM: the server kills the child still waiting
    _wait_until_gone(after)


def test_the_waiting_child_is_killed_when_the_server_goes_idle(short_dir: Path) -> None:
    idle = Server(short_dir, idle=0.5)
    waiting = _wait_for_children(idle.proc.pid)
    idle.proc.wait(timeout=10)
    _wait_until_gone(waiting)
