"""A fork server: one warm process that answers each request in a child forked from it.

A command-line start pays for its imports and first-time setup on every process (for
`saferun run`'s full path most of its time; the planning itself takes a few
milliseconds). A process that has done that once and forks a child per request answers
in about the time of the work itself, and each child starts from the same clean state:
nothing one request changes (environment, working directory, caches) reaches the next.
Mercurial's chg serves hg the same way.

The wire is a unix stream socket in a directory private to the user, one request per
connection: a 4-byte big-endian length and a marshal document each way. marshal, like
the plan cache's entries, because both ends are this user's own processes: the server
answers only a peer with its own uid (SO_PEERCRED), and a client talks only to a socket
that this user owns. Any failure makes `ask` return a status, never raise: a caller
always has its own way to do the work.

The server forks each child before its request comes: the child breaks copy-on-write
on the server's pages in one call (madvise MADV_POPULATE_WRITE), which a request would
otherwise pay fault by fault (about a thousand, 2-3 ms here), waits for one connection,
tells the server it took it, and answers it while the server forks the next one. A
waiting child dies with its server (PR_SET_PDEATHSIG) and is killed when it stops.

A child tells the server, through a pipe, which modules its request imported that the
server had not; the server imports them between requests, so later children find them
loaded (what a request needs is learned, not listed). Before each fork the server moves
its objects out of the garbage collector's reach (gc.freeze), so a child's collections
do not touch, and copy, the pages it shares with the server.
"""

from __future__ import annotations

import marshal
import os
import stat

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 2 ms here
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MAX_FRAME = 16 << 20
# sun_path holds 108 bytes on Linux; a longer path cannot be bound.
MAX_SOCKET_PATH = 107


def ask(path: str, request: dict[str, Any], timeout: float) -> tuple[str, Any]:
    """Send `request` to the server at `path` -> ("ok", reply), ("absent", None) when no
    server listens there, or ("failed", None) (refused, timed out, garbled)."""
    import _socket  # socket.py costs ~2 ms to import (its enums); the C module is enough

    try:
        info = os.lstat(path)
    except OSError:
        return "absent", None
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        return "failed", None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return "absent", None  # a socket file left by a server that died
        _send(sock, marshal.dumps(request))
        reply = marshal.loads(_receive(sock))
    except (OSError, ValueError, EOFError, TypeError):
        return "failed", None
    finally:
        sock.close()
    return "ok", reply


def _send(sock: Any, data: bytes) -> None:
    sock.sendall(len(data).to_bytes(4, "big") + data)


def _receive(sock: Any) -> bytes:
    head = _exactly(sock, 4)
    size = int.from_bytes(head, "big")
    if size > MAX_FRAME:
        raise ValueError("frame too large")
    return _exactly(sock, size)


def _exactly(sock: Any, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def serve(path: str, handle: Callable[[Any], Any], *, idle_seconds: float,
          request_timeout: float = 30.0) -> None:
    """Listen at `path` until no request came for `idle_seconds`; answer each in a forked
    child with `handle(request)` (its exceptions answer None). Returns at once when
    another server holds the path's lock. The socket and pid files are removed on return
    if they are still this server's."""
    import fcntl
    import gc
    import signal
    import socket
    import struct

    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return  # another server answers here
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            os.unlink(path)  # a socket left by a server that died (we hold the lock)
        except FileNotFoundError:
            pass
        umask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(umask)
        listener.listen(128)
        mine = os.stat(path).st_ino
        _write_pid(f"{path}.pid")
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
        signal.signal(signal.SIGTERM, _stop)
        listener.settimeout(idle_seconds)  # a waiting child's own bound (see below)
        peer_size = struct.calcsize("3i")
        learned_read, learned_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        # A SIGTERM that comes just before select() blocks (while the server forks, say)
        # runs its handler only when select returns: the wakeup pipe makes it return.
        wake_read, wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(wake_write)
        server, lost = os.getpid(), 0
        while lost < _MAX_LOST_CHILDREN:
            gc.freeze()
            taken_read, taken_write = os.pipe2(os.O_CLOEXEC)
            waiting = os.fork()
            if waiting == 0:
                signal.set_wakeup_fd(-1)
                for fd in (taken_read, learned_read, wake_read, wake_write):
                    os.close(fd)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _wait_for_a_request(server, listener, taken_write, handle, request_timeout,
                                    learned_write, peer_size)  # never returns
            os.close(taken_write)
            try:
                taken = _wait_for_taken(taken_read, wake_read, idle_seconds)
            finally:
                os.close(taken_read)
            if taken is None:
                break  # idle: the waiting child is killed below
            waiting = 0  # it took a connection (b"x") or died before one (b"")
            lost = 0 if taken else lost + 1  # children that keep dying: stop forking them
            _import_learned(learned_read)
            if not _still_mine(path, mine):
                break  # removed or taken over: stop serving a path nobody reaches
    finally:
        if locals().get("wake_write") is not None:
            signal.set_wakeup_fd(-1)
        if locals().get("waiting"):
            try:
                os.kill(waiting, signal.SIGKILL)
            except OSError:
                pass
        listener.close()
        if _still_mine(path, locals().get("mine")):
            for leftover in (path, f"{path}.pid"):
                try:
                    os.unlink(leftover)
                except FileNotFoundError:
                    pass
        os.close(lock)


def _wait_for_taken(taken: int, wake: int, timeout: float) -> bytes | None:
    """What the waiting child wrote: b"x" (it took a connection), b"" (it died first), or
    None when nothing came for `timeout` seconds."""
    import select
    import time

    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([taken, wake], [], [], left)
        if taken in ready:
            return os.read(taken, 1)
        if wake in ready:  # a signal: its handler runs now (SIGTERM's raises)
            try:
                while os.read(wake, 512):
                    pass
            except BlockingIOError:
                pass
    return None


def _wait_for_a_request(server: int, listener: Any, taken: int,
                        handle: Callable[[Any], Any], timeout: float, learned: int,
                        peer_size: int) -> None:
    """A child forked ahead of its request: copy the server's pages now (what a request
    writes would otherwise be copied page by page while the client waits), take one
    connection, tell the server (which then forks the next child), and answer it.

    The server kills a child still waiting when it stops; a child that dies with its
    server (PR_SET_PDEATHSIG) waits without a bound, otherwise only for the idle time."""
    import socket
    import struct

    code = 0
    try:
        if _die_with(server):
            listener.settimeout(None)
        _populate_writable_memory()
        conn, _ = listener.accept()
        os.write(taken, b"x")
        os.close(taken)
        listener.close()
        _pid, uid, _gid = struct.unpack(
            "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, peer_size))
        if uid == os.getuid():
            import signal

            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the work may wait for children
            _answer(conn, handle, timeout, learned)  # never returns
        conn.close()
    except BaseException:  # noqa: BLE001 - a child never returns into the server loop
        code = 1
    os._exit(code)


_MAX_LOST_CHILDREN = 3
_PR_SET_PDEATHSIG = 1
_MADV_POPULATE_WRITE = 23  # Linux 5.14


def _die_with(server: int) -> bool:
    """Ask the kernel to kill this child when the server dies -> whether it will (a
    waiting child must not outlive a server that was killed: SIGKILL, the OOM killer)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != server:
        os._exit(0)  # the server died before prctl: nobody to wait for
    return True


def _populate_writable_memory() -> None:
    """Break copy-on-write on every private writable mapping at once (madvise
    MADV_POPULATE_WRITE, contents unchanged). A kernel without it leaves the pages shared,
    which is only slower."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            lines = maps.readlines()
    except (OSError, AttributeError):
        return
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or not fields[1].startswith("rw") or fields[1][3:4] != "p":
            continue
        if len(fields) > 5 and fields[5].startswith("[") and fields[5] != "[heap]":
            continue  # [stack], [vvar]...: not the server's objects
        low, _, high = fields[0].partition("-")
        start, end = int(low, 16), int(high, 16)
        libc.madvise(start, end - start, _MADV_POPULATE_WRITE)


def _stop(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)  # SIGTERM: leave through serve's cleanup


def _answer(conn: Any, handle: Callable[[Any], Any], timeout: float, learned: int) -> None:
    import sys

    code = 0
    try:
        conn.settimeout(timeout)
        request = marshal.loads(_receive(conn))
        before = set(sys.modules)
        try:
            reply = handle(request)
        except BaseException:  # noqa: BLE001 - the client does the work itself then
            reply = None
        _send(conn, marshal.dumps(reply))
        conn.close()
        new = "\n".join(sorted(set(sys.modules) - before)).encode()
        if new and len(new) < 4000:  # one write below PIPE_BUF: never interleaved
            try:
                os.write(learned, new + b"\0")
            except OSError:
                pass
    except BaseException:  # noqa: BLE001 - a child never returns into the server loop
        code = 1
    os._exit(code)


def _import_learned(pipe: int) -> None:
    """Import what children imported that this process has not (see the module doc)."""
    import importlib
    import sys

    try:
        data = os.read(pipe, 1 << 16)
    except BlockingIOError:
        return
    for record in data.split(b"\0"):
        for name in record.decode(errors="replace").split("\n"):
            if name and name not in sys.modules:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - a module only a child could import
                    pass


def _still_mine(path: str, inode: int | None) -> bool:
    try:
        return inode is not None and os.lstat(path).st_ino == inode
    except OSError:
        return False


def _write_pid(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")


def remove_stale(directory: str, prefix: str, keep: str) -> None:
    """Remove the files of servers at `directory/prefix*` other than `keep` whose lock no
    server holds (servers of an older code version leave their lock and marker files)."""
    import fcntl

    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".lock")):
            continue
        base = os.path.join(directory, name[: -len(".lock")])
        if base == keep:
            continue
        try:
            fd = os.open(f"{base}.lock", os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a server runs there
        try:
            for suffix in ("", ".pid", ".spawned", ".lock"):
                try:
                    os.unlink(base + suffix)
                except FileNotFoundError:
                    pass
        finally:
            os.close(fd)


def spawn_detached(argv: list[str]) -> None:
    """Start `argv` as a daemon of its own session, its stdio on /dev/null, reparented at
    once (double fork), so it never becomes a zombie of the process that spawned it (which
    may exec docker next). Errors are ignored: the caller does not depend on it."""
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.chdir("/")
                os.execv(argv[0], argv)
        except BaseException:  # noqa: BLE001 - nothing to report to
            pass
        os._exit(0)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
