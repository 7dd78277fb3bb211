"""Record the system calls of one container: the only module that touches the kernel's audit
and process-event interfaces.

A container started with a seccomp profile whose default action is SCMP_ACT_LOG makes the
kernel emit one audit record (type 1326) per call outside the profile's allow rules. No
auditd is needed: a root process bound to the audit netlink multicast group receives every
record. Records carry only a pid and a command name, and other containers on the host log
too, so attribution is done here: each recorded pid's cgroup is read the moment its first
record arrives (the container's cgroup path names its id), and the kernel's process
connector reports every fork, so a process that exited before its cgroup could be read is
attributed through its parent.

Records can be lost: the socket buffer overflows (recv fails with ENOBUFS and the audit
serial numbers skip) or the kernel drops them before sending (its `lost` counter, read with
AUDIT_GET, grows). A `Capture` reports every such sign; the caller repeats the run rather
than writing a profile with holes.
"""

from __future__ import annotations

import errno
import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

from saferun.errors import RequirementUnmet

AUDIT_GET = 1000
AUDIT_SECCOMP = 1326
NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_FORK = 0x00000001
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 1
SO_RCVBUFFORCE = 33
# The seccomp action in a record's `code=` field (the filter's return value, masked).
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_LOG = 0x7FFC0000
X32_SYSCALL_BIT = 0x40000000
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_X32 = 0x4000003E
# Large enough for a busy server's burst; SO_RCVBUFFORCE (root) lifts the rmem_max cap.
DEFAULT_RCVBUF = 32 << 20
SETTLE_QUIET_S = 0.3
SETTLE_MAX_S = 3.0

_HEADER = re.compile(r"audit\((?P<time>[0-9]+\.[0-9]+):(?P<serial>[0-9]+)\):")
_FIELD = re.compile(r'(?P<key>[a-z_]+)=(?P<value>"[^"]*"|\S+)')
_ACTIONS = {
    0x00000000: "kill_thread",
    0x80000000: "kill_process",
    0x00030000: "trap",
    0x00050000: "errno",
    0x7FC00000: "user_notif",
    0x7FF00000: "trace",
    SECCOMP_RET_LOG: "log",
    0x7FFF0000: "allow",
}


@dataclass(frozen=True)
class SeccompRecord:
    """One type-1326 audit record: a process made a call its filter logs or refuses."""

    serial: int
    pid: int
    comm: str
    exe: str
    arch: int
    syscall: int
    code: int

    @property
    def action(self) -> str:
        return _ACTIONS.get(self.code & SECCOMP_RET_ACTION_FULL, f"{self.code:#x}")

    @property
    def name(self) -> str:
        return syscall_name(self.arch, self.syscall)


def parse_serial(text: str) -> int | None:
    """The audit serial number of any record, `audit(1700000000.123:456): ...` -> 456."""
    match = _HEADER.search(text)
    return int(match.group("serial")) if match else None


def parse_record(text: str) -> SeccompRecord | None:
    """A record's text (netlink payload, or a kernel log line `audit: type=1326 ...`) -> record.

    Returns None for text that is not a complete seccomp record; the fields are matched by
    name because their order and the optional ones (subj=, exe=) vary between kernels.
    """
    header = _HEADER.search(text)
    if header is None:
        return None
    fields = {m.group("key"): m.group("value") for m in _FIELD.finditer(text[header.end():])}
    try:
        return SeccompRecord(
            serial=int(header.group("serial")),
            pid=int(fields["pid"]),
            comm=_unquote(fields.get("comm", "")),
            exe=_unquote(fields.get("exe", "")),
            arch=int(fields["arch"], 16),
            syscall=int(fields["syscall"]),
            code=int(fields["code"], 16),
        )
    except (KeyError, ValueError):
        return None


def _unquote(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        return value[1:-1]
    try:  # audit hex-encodes names with spaces or control characters
        return bytes.fromhex(value).decode("utf-8", "replace")
    except ValueError:
        return value


@cache
def syscall_name(arch: int, number: int) -> str:
    """libseccomp's name for a call number on the record's architecture (`#N` if unknown).

    An x32 process reports the x86_64 audit arch with bit 30 set in the number.
    """
    import pyseccomp

    if arch == AUDIT_ARCH_X86_64 and number & X32_SYSCALL_BIT:
        arch = AUDIT_ARCH_X32
    try:
        return str(pyseccomp.resolve_syscall(arch, number).decode())
    except (ValueError, OSError):
        return f"#{number}"


# --- attribution (pure) --------------------------------------------------------------------


def container_pids(
    pids: Iterable[int],
    cgroups: Mapping[int, str | None],
    parents: Mapping[int, int],
    container_id: str,
) -> set[int]:
    """The recorded pids that belong to the container `container_id` (its full id).

    `cgroups` holds /proc/<pid>/cgroup as read when the process was forked or its first
    record arrived (None: already gone); `parents` maps a process to its parent from fork
    events. A pid whose cgroup is unknown takes the verdict of its nearest ancestor whose
    cgroup is known.
    """
    found: set[int] = set()
    for pid in set(pids):
        current: int | None = pid
        seen: set[int] = set()
        while current is not None and current not in seen:
            seen.add(current)
            text = cgroups.get(current)
            if text is not None:
                if container_id in text:
                    found.add(pid)
                break
            current = parents.get(current)
    return found


# --- the capture ---------------------------------------------------------------------------


@dataclass
class Capture:
    """Everything one recording session received, and every sign of loss."""

    records: list[SeccompRecord] = field(default_factory=list)
    serials: list[int] = field(default_factory=list)  # of every audit record, any type
    cgroups: dict[int, str | None] = field(default_factory=dict)
    parents: dict[int, int] = field(default_factory=dict)
    overflows: int = 0  # ENOBUFS on the audit socket: the kernel dropped records for us
    proc_overflows: int = 0  # ENOBUFS on the process-event socket: ancestry may be missing
    lost_before: int | None = None  # the kernel's audit `lost` counter (None: unreadable)
    lost_after: int | None = None
    rcvbuf: int = 0  # the socket buffer the kernel actually granted

    def records_of(self, container_id: str) -> list[SeccompRecord]:
        """The logged calls of the container's own processes."""
        ours = container_pids((r.pid for r in self.records), self.cgroups, self.parents,
                              container_id)
        return [r for r in self.records if r.pid in ours]


def _netlink_message(msg_type: int, payload: bytes, flags: int = NLM_F_REQUEST) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), msg_type, flags, 0, 0) + payload


def _messages(data: bytes) -> Iterable[tuple[int, bytes]]:
    offset = 0
    while offset + 16 <= len(data):
        length, msg_type, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            break
        yield msg_type, data[offset + 16 : offset + length]
        offset += (length + 3) & ~3


def kernel_lost_counter() -> int | None:
    """The kernel's count of audit records it dropped (AUDIT_GET), or None if unreadable."""
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT) as sock:
            sock.settimeout(2.0)
            sock.bind((0, 0))
            sock.send(_netlink_message(AUDIT_GET, b""))
            for _ in range(4):
                for msg_type, body in _messages(sock.recv(65536)):
                    if msg_type == AUDIT_GET and len(body) >= 32:
                        # struct audit_status: mask enabled failure pid rate_limit
                        # backlog_limit lost backlog ...
                        return int(struct.unpack_from("=8I", body)[6])
                    if msg_type == NLMSG_ERROR and struct.unpack_from("=i", body)[0] != 0:
                        return None
    except OSError:
        return None
    return None


def check_recording_possible() -> None:
    """Refuse, with the reason, where the kernel's audit records cannot be read."""
    if os.geteuid() != 0:
        raise RequirementUnmet(
            "recording system calls needs root: the kernel's audit records are only sent to "
            "processes with CAP_AUDIT_READ, and fork events need CAP_NET_ADMIN",
            fix="run `sudo saferun learn ...` on the Docker host",
        )
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    except OSError as exc:
        raise RequirementUnmet(
            f"this kernel has no audit support (netlink audit socket: {exc.strerror}), so it "
            "cannot report the system calls a container makes",
            fix="use a kernel built with CONFIG_AUDIT (most distribution kernels are)",
        ) from None
    with sock:
        try:
            sock.bind((0, AUDIT_NLGRP_READLOG))
        except OSError as exc:
            raise RequirementUnmet(
                f"cannot subscribe to the kernel's audit records ({exc.strerror}); inside a "
                "container or user namespace they are not available",
                fix="run saferun learn as root on the Docker host itself",
            ) from None


class Recorder:
    """Subscribe before the container starts; `stop()` returns the Capture.

    A thread drains both sockets while the workload runs, so the buffer only has to absorb
    bursts. `rcvbuf` forces the audit socket's buffer (tiny values provoke loss in tests).
    """

    def __init__(self, rcvbuf: int | None = None) -> None:
        self._rcvbuf = rcvbuf
        self._capture = Capture()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._audit: socket.socket | None = None
        self._proc: socket.socket | None = None
        self._last_record = time.monotonic()

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        check_recording_possible()
        self._capture.lost_before = kernel_lost_counter()
        self._audit = self._open_audit()
        self._proc = self._open_proc_events()
        self._thread = threading.Thread(target=self._drain_loop, name="saferun-audit", daemon=True)
        self._thread.start()

    def _open_audit(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        if self._rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
        else:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, DEFAULT_RCVBUF)
        self._capture.rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sock.bind((0, AUDIT_NLGRP_READLOG))
        sock.setblocking(False)
        return sock

    def _open_proc_events(self) -> socket.socket:
        return open_proc_events()

    def _drain_loop(self) -> None:
        assert self._audit is not None and self._proc is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._audit, self._proc], [], [], 0.05)
            if self._audit in ready:
                self._drain_audit()
            if self._proc in ready:
                self._drain_proc()

    def _drain_audit(self) -> None:
        assert self._audit is not None
        capture = self._capture
        while True:
            try:
                data = self._audit.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    capture.overflows += 1
                    continue
                raise
            for msg_type, body in _messages(data):
                text = body.rstrip(b"\0").decode("utf-8", "replace")
                serial = parse_serial(text)
                if serial is not None:
                    capture.serials.append(serial)
                if msg_type != AUDIT_SECCOMP:
                    continue
                record = parse_record(text)
                if record is None:
                    continue
                self._last_record = time.monotonic()
                capture.records.append(record)
                cached = capture.cgroups.get(record.pid)
                if cached is None or container_cgroup_id(cached) is None:
                    # Re-read: `docker exec` forks a process on the host before runc moves it
                    # into the container's cgroup, so the cgroup read at fork can be stale.
                    fresh = _read_cgroup(record.pid)
                    if fresh is not None:
                        capture.cgroups[record.pid] = fresh

    def _drain_proc(self) -> None:
        assert self._proc is not None
        while True:
            try:
                data = self._proc.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self._capture.proc_overflows += 1
                    continue
                raise
            for _msg_type, body in _messages(data):
                # cn_msg header (20 bytes), then struct proc_event {what, cpu, timestamp}.
                if len(body) < 20 + 32:
                    continue
                what = struct.unpack_from("=I", body, 20)[0]
                if what != PROC_EVENT_FORK:
                    continue
                _ppid, parent_tgid, child_pid, child_tgid = struct.unpack_from("=4I", body, 36)
                if child_pid == child_tgid:  # a new process, not a thread
                    self._capture.parents[child_tgid] = parent_tgid
                    # Read now: a process that exits right after its first logged call
                    # (a container whose init runs one command) is gone before its record.
                    self._capture.cgroups[child_tgid] = _read_cgroup(child_tgid)

    def settle(self) -> None:
        """Wait until records stop arriving (kauditd delivers them asynchronously)."""
        deadline = time.monotonic() + SETTLE_MAX_S
        time.sleep(SETTLE_QUIET_S)
        while time.monotonic() < deadline and time.monotonic() - self._last_record < SETTLE_QUIET_S:
            time.sleep(0.05)

    def stop(self) -> Capture:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._drain_audit()
            self._drain_proc()
            self._capture.lost_after = kernel_lost_counter()
        for sock in (self._audit, self._proc):
            if sock is not None:
                sock.close()
        self._audit = self._proc = None
        return self._capture


def open_proc_events() -> socket.socket:
    """A non-blocking socket subscribed to the kernel's process events (fork, exec...)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, DEFAULT_RCVBUF)
        sock.bind((0, CN_IDX_PROC))
        # struct cn_msg {idx, val, seq, ack, len, flags} + PROC_CN_MCAST_LISTEN
        body = struct.pack("=IIIIHHI", CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0,
                           PROC_CN_MCAST_LISTEN)
        sock.send(_netlink_message(NLMSG_DONE, body, flags=0))
    except OSError as exc:
        sock.close()
        raise RequirementUnmet(
            f"cannot subscribe to the kernel's process events ({exc.strerror}); saferun "
            "needs them to tell the container's short-lived processes from others",
            fix="use a kernel built with CONFIG_PROC_EVENTS and run as root",
        ) from None
    sock.setblocking(False)
    return sock


def _read_cgroup(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def container_cgroup_id(cgroup_text: str) -> str | None:
    """The 64-hex container id in a /proc/<pid>/cgroup text (cgroup v1 or v2), if any."""
    match = re.search(r"(?:/docker/|docker-)([0-9a-f]{64})", cgroup_text)
    return match.group(1) if match else None
