"""`saferun watch`'s signals from the host and the engine (the edge).

Each source runs in its own thread and puts plain tuples on one bounded queue; the
orchestrator (saferun.app.watch) turns them into events. Nothing is lost silently: a
record the kernel dropped (ENOBUFS on the netlink socket, a gap in the audit serial
numbers, the kernel's `lost` counter) or an item the full queue could not take becomes a
("dropped", where, count) item.

- seccomp: the kernel's audit records of type 1326 on the audit netlink multicast group
  (no auditd needed; root). The kernel logs SCMP_ACT_LOG and SCMP_ACT_KILL_* always, and
  an errno refusal only for a filter loaded with SECCOMP_FILTER_FLAG_LOG, which Docker
  20.10 does not pass to runc.
- exec and fork: the kernel's process connector (PROC_EVENT_EXEC/FORK), with
  /proc/PID/exe and /proc/PID/cgroup read the moment the event arrives; a process that is
  already gone is reported with an empty program.
- the engine: GET /events and GET /containers/ID/logs?follow=1 over the local socket
  (HTTP/1.0, so the body streams unchunked until the engine closes it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any
from urllib.parse import quote

from saferun.engine.audit import _HEADER as _AUDIT_HEADER
from saferun.engine.audit import (
    AUDIT_NLGRP_READLOG,
    AUDIT_SECCOMP,
    DEFAULT_RCVBUF,
    NETLINK_AUDIT,
    PROC_EVENT_FORK,
    SO_RCVBUFFORCE,
    SeccompRecord,
    _messages,
    _read_cgroup,
    _unquote,
    check_recording_possible,
    container_cgroup_id,
    kernel_lost_counter,
    open_proc_events,
    parse_record,
    parse_serial,
)
from saferun.learn.watch import OVERFLOW

PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000
KNOWN_MAX = 65536  # container processes whose container the process source remembers
QUEUE_SIZE = 65536
CGROUP_TTL_S = 0.2
RUN_MAX = 4096  # records folded into one queue item
REORDER_S = 0.5  # how long a serial may come late before it counts as dropped
MISSING_MAX = 65536  # serials awaited at once; a larger gap is counted as dropped at once
_STREAM_TIMEOUT_S = 3600.0

Item = tuple[Any, ...]


class Feed:
    """The bounded queue every source writes to, counting what it had to drop."""

    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=size)
        self._dropped = 0
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def put(self, item: Item) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def take_dropped(self) -> int:
        with self._lock:
            count, self._dropped = self._dropped, 0
        return count


def _thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


DATAGRAM_MAX = 1 << 16  # an audit record is at most 8,970 bytes, a process event ~100


def _received(sock: socket.socket, buffer: bytearray,
              overflow: Callable[[], None]) -> Iterator[bytes]:
    """Every datagram waiting on a non-blocking netlink socket; ENOBUFS calls `overflow`.

    Read into one reused buffer: `recv(1 << 20)` allocates a megabyte for each datagram
    (25 µs a call against 0.8 µs in a micro-benchmark here; under a fork loop watch's
    CPU was dominated by thread wake-ups instead, see ProcSource._loop).
    """
    view = memoryview(buffer)
    while True:
        try:
            size = sock.recv_into(buffer)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            overflow()
            continue
        yield bytes(view[:size])


def read_exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


# The fields of a type-1326 record in the kernel's own order (kernel/auditsc.c
# audit_seccomp); anything else goes through audit.parse_record, which matches by name.
_SECCOMP_FAST = re.compile(
    r'audit\((?P<time>[0-9]+\.[0-9]+):(?P<serial>[0-9]+)\): .*? pid=(?P<pid>[0-9]+) '
    r'comm=(?P<comm>"[^"]*"|\S+) exe=(?P<exe>"[^"]*"|\S+) .*?arch=(?P<arch>[0-9a-f]+) '
    r'syscall=(?P<syscall>[0-9]+) .*?code=0x(?P<code>[0-9a-f]+)')


def _serial_of(head: str) -> int | None:
    """`audit(1700000000.123:456` -> 456."""
    _, _, serial = head.rpartition(":")
    return int(serial) if serial.isdigit() else None


def _parse_fast(text: str) -> tuple[int, float, SeccompRecord] | None:
    match = _SECCOMP_FAST.search(text)
    if match is None:
        return None
    comm, exe = match.group("comm"), match.group("exe")
    record = SeccompRecord(
        serial=int(match.group("serial")), pid=int(match.group("pid")),
        comm=comm[1:-1] if comm.startswith('"') else _unquote(comm),
        exe=exe[1:-1] if exe.startswith('"') else _unquote(exe),
        arch=int(match.group("arch"), 16), syscall=int(match.group("syscall")),
        code=int(match.group("code"), 16))
    return record.serial, float(match.group("time")), record


def check_watch_possible() -> None:
    """Refuse (RequirementUnmet) where the kernel's audit records cannot be read."""
    check_recording_possible()


class SerialGaps:
    """Audit serial numbers that skipped: dropped only if they have not come REORDER_S later.

    The kernel takes a record's serial when it starts the record and queues it when it is
    done, so records made on two CPUs at once can reach the socket out of order (seen
    here: 10,000 calls from two workers gave two gaps of one whose records came next).
    """

    def __init__(self, wait: float = REORDER_S, limit: int = MISSING_MAX) -> None:
        self.last: int | None = None
        self._wait = wait
        self._limit = limit
        self._missing: dict[int, float] = {}  # serial -> when it was missed (oldest first)

    def saw(self, serial: int, now: float) -> int:
        """Note a serial; returns a count dropped at once (a gap too large to wait for)."""
        if self.last is None:
            self.last = serial
            return 0
        if serial <= self.last:  # a late one (or another record of the same event)
            self._missing.pop(serial, None)
            return 0
        gap = serial - self.last - 1
        self.last = serial
        if gap == 0:
            return 0
        if len(self._missing) + gap > self._limit:
            return gap
        for missed in range(serial - gap, serial):
            self._missing[missed] = now
        return 0

    def expired(self, now: float, every: bool = False) -> int:
        """How many awaited serials are now given up (all of them with `every`)."""
        count = 0
        while self._missing:
            serial, missed = next(iter(self._missing.items()))
            if not every and now - missed < self._wait:
                break
            del self._missing[serial]
            count += 1
        return count


class AuditSource:
    """Seccomp records: ("seccomp", record, container_id, when, count) from the audit group.

    container_id is "" for a process outside any container, None when the process was
    gone before its cgroup could be read (the orchestrator then asks its ancestry).
    """

    def __init__(self, feed: Feed, rcvbuf: int = DEFAULT_RCVBUF) -> None:
        self._feed = feed
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        self._sock.bind((0, AUDIT_NLGRP_READLOG))
        self._sock.setblocking(False)
        self._buffer = bytearray(DATAGRAM_MAX)
        self._serials = SerialGaps()
        self._prepaid = 0  # losses already reported, one per ENOBUFS, not yet matched to a gap
        self._lost = kernel_lost_counter()
        self._cgroups: dict[tuple[int, str], tuple[str, float]] = {}
        self.received = 0

    def start(self) -> threading.Thread:
        return _thread(self._loop, "watch-audit")

    def _loop(self) -> None:
        next_lost_check = time.monotonic() + 1.0
        while not self._feed.stopping.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.2)
            if ready:
                self._drain()
            self._report_missing(time.monotonic())
            if time.monotonic() >= next_lost_check:
                next_lost_check = time.monotonic() + 1.0
                self._check_kernel_lost()
        self._report_missing(time.monotonic(), every=True)
        self._sock.close()

    def _report_missing(self, now: float, every: bool = False) -> None:
        self._report_gap(self._serials.expired(now, every))

    def _overflowed(self) -> None:
        """ENOBUFS: the kernel dropped at least one record for this socket. The serial gap
        says how many once a later record comes; if none comes (the loss was a burst's
        tail) that gap is never seen, so one is reported now and taken off the gap later."""
        self._prepaid += 1
        self._feed.put(("dropped", OVERFLOW, 1))

    def _report_gap(self, missing: int) -> None:
        reported = min(missing, self._prepaid)
        self._prepaid -= reported
        if missing > reported:
            self._feed.put(("dropped", "audit-socket", missing - reported))

    def _check_kernel_lost(self) -> None:
        lost = kernel_lost_counter()
        if lost is not None and self._lost is not None and lost > self._lost:
            self._feed.put(("dropped", "audit-kernel", lost - self._lost))
        if lost is not None:
            self._lost = lost

    def _drain(self) -> None:
        # ENOBUFS: records were dropped for us; their serials skip, which SerialGaps counts.
        # A looping process sends the same record over and over: consecutive records of one
        # (pid, program, call, action) become one item with their count (at most RUN_MAX).
        run: list[Any] = []  # [record, when, count, the record's text after its header]
        for data in _received(self._sock, self._buffer, self._overflowed):
            for msg_type, body in _messages(data):
                text = body.rstrip(b"\0").decode("utf-8", "replace")
                head, _, rest = text.partition("): ")
                if run and msg_type == AUDIT_SECCOMP and rest == run[3] and run[2] < RUN_MAX:
                    # The same record again (same pid, program, call, address, action): only
                    # its serial is read. A serial that does not follow goes the long way,
                    # which notes the gap.
                    serial = _serial_of(head)
                    if serial is not None and serial == (self._serials.last or 0) + 1:
                        self._serials.last = serial
                        run[2] += 1
                        self.received += 1
                        continue
                parsed = _parse_fast(text) if msg_type == AUDIT_SECCOMP else None
                record: SeccompRecord | None
                if parsed is not None:
                    serial, when, record = parsed
                else:
                    serial = parse_serial(text)
                    record = parse_record(text) if msg_type == AUDIT_SECCOMP else None
                    header = _AUDIT_HEADER.search(text)
                    when = float(header.group("time")) if header else time.time()
                if serial is not None:
                    last = self._serials.last
                    if last is not None and serial != last + 1:
                        self._flush_run(run)  # nothing is folded across a gap
                    self._report_gap(self._serials.saw(serial, time.monotonic()))
                if record is None:
                    continue
                self.received += 1
                self._flush_run(run)
                run[:] = [record, when, 1, rest]
        self._flush_run(run)

    def _flush_run(self, run: list[Any]) -> None:
        if run:
            record, when, count, _key = run
            self._feed.put(("seccomp", record, self._container_of(record), when, count))
            run.clear()

    def _container_of(self, record: Any) -> str | None:
        """"" a host process, None gone before its cgroup could be read, else the id.

        A looping process logs thousands of calls a second: its cgroup is read once per
        CGROUP_TTL_S for the same pid and program, not once per record (a pid reused by
        another program within that time reads its own).
        """
        key = (record.pid, record.exe)
        now = time.monotonic()
        cached = self._cgroups.get(key)
        if cached is not None and now - cached[1] < CGROUP_TTL_S:
            return cached[0]
        cgroup = _read_cgroup(record.pid)
        cid = (container_cgroup_id(cgroup) or "") if cgroup is not None else None
        if cid is not None:
            if len(self._cgroups) >= 4096:
                self._cgroups.clear()
            self._cgroups[key] = (cid, now)
        return cid


class ProcSource:
    """Forks and execs of container processes from the process connector.

    ("fork", child, parent, container_id | None) and ("exec", pid, exe, container_id, when).
    Only processes in a container's cgroup (or already gone) are passed on.

    A child forked by a process known to be in a container is in that container too (a
    fork inherits the parent's cgroup), so its cgroup file is not read: a container that
    forks thousands of processes a second costs watch no /proc read for each. Only
    container ids are inherited this way: a host process may move into a container (runc
    puts its init there after forking it), so a host parent's child is read; an exec is
    always read (it is judged), and an exit forgets the pid.
    """

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self._sock = open_proc_events()
        self._buffer = bytearray(DATAGRAM_MAX)
        self._known: dict[int, str] = {}  # pid -> container id (oldest first)

    def start(self) -> threading.Thread:
        return _thread(self._loop, "watch-proc")

    def _loop(self) -> None:
        # Each event is read at once, although a busy host then wakes this thread (and the
        # main one, by the queue) for each: measured 30-40 µs of watch's CPU per fork of a
        # looping app. Reading in batches (a 5 ms pause between reads) cut that 3-fold,
        # but a process exec'd by `docker exec` that makes a refused call and dies within
        # a millisecond was then gone before its cgroup was read, and its denial could not
        # be given to its container: not done.
        while not self._feed.stopping.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.2)
            if ready:
                self._drain()
        self._sock.close()

    def _drain(self) -> None:
        def overflow() -> None:
            self._feed.put(("dropped", "proc-socket", 1))

        for data in _received(self._sock, self._buffer, overflow):
            for _type, body in _messages(data):
                if len(body) < 20 + 24:
                    continue
                what, _cpu, stamp = struct.unpack_from("=IIQ", body, 20)
                if what == PROC_EVENT_FORK and len(body) >= 52:
                    _ppid, parent, child_pid, child = struct.unpack_from("=4I", body, 36)
                    if child_pid != child:
                        continue
                    cid = self._known.get(parent)
                    gone = False
                    if cid is None:
                        cgroup = _read_cgroup(child)
                        cid = container_cgroup_id(cgroup) if cgroup else None
                        gone = cgroup is None
                    self._note(child, cid)
                    if gone or cid is not None:
                        self._feed.put(("fork", child, parent, cid))
                elif what == PROC_EVENT_EXIT:
                    pid, tgid = struct.unpack_from("=2I", body, 36)
                    if pid == tgid:
                        self._known.pop(tgid, None)
                elif what == PROC_EVENT_EXEC:
                    _pid, tgid = struct.unpack_from("=2I", body, 36)
                    exe = read_exe(tgid)
                    cgroup = _read_cgroup(tgid)
                    cid = container_cgroup_id(cgroup) if cgroup else None
                    self._note(tgid, cid)
                    # the event's timestamp is CLOCK_MONOTONIC, as time.monotonic()
                    when = time.time() - (time.monotonic() - stamp / 1e9)
                    self._feed.put(("exec", tgid, exe, cid, when))


    def _note(self, pid: int, cid: str | None) -> None:
        if not cid:
            self._known.pop(pid, None)
            return
        self._known.pop(pid, None)  # re-inserted as the newest
        if len(self._known) >= KNOWN_MAX:
            del self._known[next(iter(self._known))]
        self._known[pid] = cid


# --- the engine ------------------------------------------------------------------------------


def _open_stream(socket_path: str, path: str) -> tuple[socket.socket, bytes]:
    """GET `path` with HTTP/1.0; returns the socket and the body bytes already read."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10.0)
    sock.connect(socket_path)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode("ascii"))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("the engine closed the stream")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        sock.close()
        first = head.split(b"\r\n", 1)[0].decode(errors="replace")
        raise OSError(f"GET {path}: {first}")
    sock.settimeout(_STREAM_TIMEOUT_S)
    return sock, rest


def events_stream(socket_path: str, since: float) -> Iterator[dict[str, Any]]:
    """Container events from `since` on, as the engine's JSON objects (one per line).

    Connects at once (raising OSError if it cannot); the events come as they happen.
    """
    filters = quote(json.dumps({"type": ["container"]}))
    sock, buffer = _open_stream(socket_path, f"/events?since={since:.6f}&filters={filters}")
    return _event_lines(sock, buffer)


def _event_lines(sock: socket.socket, buffer: bytes) -> Iterator[dict[str, Any]]:
    with sock:
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk


def logs_stream(socket_path: str, container_id: str, since: float,
                tty: bool) -> Iterator[str]:
    """The container's output lines from `since` on (stdout and stderr), until it ends.

    Each line starts with the engine's RFC 3339 timestamp of when it was written.
    """
    sock, buffer = _open_stream(
        socket_path, f"/containers/{container_id}/logs?follow=1&stdout=1&stderr=1"
                     f"&timestamps=1&since={since:.6f}")
    text = b""
    with sock:
        while True:
            if tty:
                text += buffer
                buffer = b""
            else:  # multiplexed: 8-byte header (stream, 0, 0, 0, size) per frame
                while len(buffer) >= 8:
                    size = struct.unpack_from(">I", buffer, 4)[0]
                    if len(buffer) < 8 + size:
                        break
                    text += buffer[8:8 + size]
                    buffer = buffer[8 + size:]
            while b"\n" in text:
                line, text = text.split(b"\n", 1)
                yield line.decode("utf-8", "replace")
            if len(text) > 65536:  # a line without end: judge what came so far
                yield text.decode("utf-8", "replace")
                text = b""
            chunk = sock.recv(65536)
            if not chunk:
                if text:
                    yield text.decode("utf-8", "replace")
                return
            buffer += chunk


def follow_events(feed: Feed, socket_path: str, since: float) -> threading.Thread:
    """("docker", message) items; ("engine", "up", "") once connected, ("engine", "down",
    why) when the stream breaks or cannot connect (tried again every second)."""

    def loop() -> None:
        start = since
        while not feed.stopping.is_set():
            try:
                stream = events_stream(socket_path, start)
                feed.put(("engine", "up", ""))
                for message in stream:
                    start = float(message.get("timeNano") or 0) / 1e9 or start
                    feed.put(("docker", message))
            except (OSError, ValueError) as exc:
                feed.put(("engine", "down", str(exc)))
                time.sleep(1.0)
            else:
                feed.put(("engine", "down", "the engine closed the event stream"))
                time.sleep(1.0)

    return _thread(loop, "watch-events")


def follow_logs(feed: Feed, socket_path: str, container_id: str, since: float,
                tty: bool) -> threading.Thread:
    """("output", container_id, line, when) items until the container's log stream ends."""

    def loop() -> None:
        with contextlib.suppress(OSError):
            for line in logs_stream(socket_path, container_id, since, tty):
                stamp, _, text = line.partition(" ")
                feed.put(("output", container_id, text, _rfc3339(stamp)))
        feed.put(("logs-ended", container_id))

    return _thread(loop, f"watch-logs-{container_id[:12]}")


def _rfc3339(stamp: str) -> float:
    """The engine's `2026-12-02T17:19:38.123456789Z` -> Unix time (now if unreadable)."""
    from datetime import datetime

    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        whole = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return time.time()
    return whole.timestamp() + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def container_action(socket_path: str, container_id: str, action: str) -> str:
    """POST /containers/ID/{stop,kill,pause}; returns the engine's answer in a few words."""
    path = {"stop": "stop?t=2", "kill": "kill", "pause": "pause"}[action]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30.0)
        sock.connect(socket_path)
        sock.sendall(f"POST /containers/{container_id}/{path} HTTP/1.0\r\nHost: docker\r\n"
                     "Content-Length: 0\r\n\r\n".encode("ascii"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    body = data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
    return status.split(" ", 1)[1] + (f": {body}" if body else "") if " " in status else status


class SyslogOutput:
    """Lines to the local syslog socket as syslog(3) writes them: one datagram each,
    `<PRI>Mmm dd hh:mm:ss IDENT[PID]: MESSAGE`, facility daemon.

    Written here rather than with logging's SysLogHandler: a syslog daemon that is away
    must not print a traceback per line. The socket is connected again for the next line;
    a line that still cannot be sent is counted (`failed`), said on stderr the first time.
    """

    FACILITY_DAEMON = 3

    def __init__(self, path: str, ident: str = "saferun-watch") -> None:
        from saferun.errors import RequirementUnmet

        self._path = path
        self._ident = f"{ident}[{os.getpid()}]"
        self.failed = 0
        try:
            self._sock = self._connect()
        except OSError as exc:
            raise RequirementUnmet(f"--syslog: cannot send to the syslog socket {path} "
                                   f"({exc.strerror or exc})",
                                   fix="start the host's syslog daemon or journald (they listen "
                                       "there), or name another socket with --syslog-socket"
                                   ) from None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, severity: int, message: str) -> None:
        stamp = time.strftime("%b %e %H:%M:%S")
        data = (f"<{self.FACILITY_DAEMON * 8 + severity}>{stamp} {self._ident}: "
                f"{message.replace(chr(10), ' ')}").encode("utf-8", "replace")
        for _attempt in range(2):
            try:
                self._sock.send(data)
                return
            except OSError:
                self._sock.close()
                try:
                    self._sock = self._connect()
                except OSError:
                    break
        self.failed += 1
        if self.failed == 1:
            import sys

            sys.stderr.write(f"saferun watch: the syslog socket {self._path} does not take "
                             "lines; the lost ones are counted and it is tried again\n")


def serve_metrics(host: str, port: int, registry: Any) -> None:
    """The Prometheus endpoint (prometheus_client's own HTTP server, in a thread)."""
    from prometheus_client import start_http_server

    from saferun.errors import RequirementUnmet

    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise RequirementUnmet(f"--metrics {host}:{port}: cannot listen there ({exc.strerror})",
                               fix="choose a free port on an address of this host") from None
