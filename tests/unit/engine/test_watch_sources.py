"""The audit reader of saferun watch on canned netlink messages: folding and gap counting."""

from __future__ import annotations

import errno
import struct
import time

import pytest

from saferun.engine import watch_sources as ws
from saferun.engine.audit import AUDIT_SECCOMP, parse_record

RECORD = ("audit(1796231642.{ms:03d}:{serial}): auid=4294967295 uid=1000 gid=1000 "
          "ses=4294967295 pid={pid} comm=\"loop\" exe=\"/bin/loop\" sig=0 arch=c000003e "
          "syscall=110 compat=0 ip=0x47de07 code=0x7ffc0000")


def _message(msg_type: int, text: str) -> bytes:
    body = text.encode() + b"\0"
    return struct.pack("=IHHII", 16 + len(body), msg_type, 0, 0, 0) + body


ENOBUFS = b"ENOBUFS"  # in a _Socket's datagrams: the kernel dropped records for it


class _Socket:
    def __init__(self, datagrams: list[bytes]) -> None:
        self._datagrams = list(datagrams)

    def recv_into(self, buffer: bytearray) -> int:
        if not self._datagrams:
            raise BlockingIOError
        datagram = self._datagrams.pop(0)
        if datagram == ENOBUFS:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        buffer[:len(datagram)] = datagram
        return len(datagram)


def _drain(datagrams: list[bytes], later: float = 1.0) -> list[tuple[object, ...]]:
    """The items read from `datagrams`, then those given up `later` seconds on."""
    source = object.__new__(ws.AuditSource)
    feed = ws.Feed()
    source._feed = feed
    source._sock = _Socket(datagrams)  # type: ignore[assignment]
    source._serials = ws.SerialGaps()
    source._prepaid = 0
    source._buffer = bytearray(ws.DATAGRAM_MAX)
    source._cgroups = {}
    source.received = 0
    source._drain()
    source._report_missing(time.monotonic() + later)
    items = []
    while not feed.queue.empty():
        items.append(feed.queue.get_nowait())
    return items


def test_a_looping_call_becomes_one_counted_item() -> None:
    items = _drain([_message(AUDIT_SECCOMP, RECORD.format(ms=i, serial=100 + i, pid=4000000))
                    for i in range(50)])
    assert len(items) == 1
    kind, record, _cid, when, count = items[0]
    assert kind == "seccomp" and count == 50 and when == pytest.approx(1796231642.0)
    assert record.name == "getppid" and record.action == "log"


def test_a_gap_in_the_serials_is_a_dropped_count_and_nothing_is_folded_across_it() -> None:
    texts = [RECORD.format(ms=0, serial=10, pid=4000000), RECORD.format(ms=1, serial=11,
             pid=4000000), RECORD.format(ms=2, serial=15, pid=4000000)]
    items = _drain([_message(AUDIT_SECCOMP, t) for t in texts])
    assert [(i[0], i[-1]) for i in items] == [("seccomp", 2), ("seccomp", 1), ("dropped", 3)]
    assert items[2][1] == "audit-socket"
    # not yet given up: a missing serial may still come
    assert [i[0] for i in _drain([_message(AUDIT_SECCOMP, t) for t in texts], later=0)] == \
        ["seccomp", "seccomp"]


def test_records_that_come_out_of_order_are_not_dropped() -> None:
    # made on two CPUs at once: serial 12 reaches the socket before 11
    texts = [RECORD.format(ms=0, serial=s, pid=4000000 + s) for s in (10, 12, 11, 13)]
    items = _drain([_message(AUDIT_SECCOMP, t) for t in texts])
    assert [(i[0], i[-1]) for i in items] == [("seccomp", 1)] * 4


def test_a_gap_too_large_to_wait_for_is_dropped_at_once() -> None:
    gaps = ws.SerialGaps(limit=10)
    assert gaps.saw(1, 0.0) == 0 and gaps.saw(5, 0.0) == 0  # 2, 3, 4 awaited
    assert gaps.saw(100, 0.0) == 94  # would exceed the limit: counted now
    assert gaps.saw(3, 0.1) == 0 and gaps.expired(0.2) == 0
    assert gaps.expired(0.2, every=True) == 2


def test_other_records_keep_the_serials_and_split_runs() -> None:
    other = _message(1300, "audit(1796231642.500:21): arch=c000003e syscall=59 success=yes")
    items = _drain([_message(AUDIT_SECCOMP, RECORD.format(ms=0, serial=20, pid=4000000)),
                    other,
                    _message(AUDIT_SECCOMP, RECORD.format(ms=0, serial=22, pid=4000000)),
                    _message(AUDIT_SECCOMP, RECORD.format(ms=0, serial=23, pid=4000001))])
    assert [i[-1] for i in items] == [2, 1]  # the same record around another type: one run
    assert all(i[0] == "seccomp" for i in items)


def test_the_fast_parser_agrees_with_the_learning_parser() -> None:
    for text in (RECORD.format(ms=5, serial=7, pid=12),
                 RECORD.format(ms=5, serial=7, pid=12).replace('comm="loop"', "comm=6120")):
        parsed = ws._parse_fast(text)
        assert parsed is not None and parsed[2] == parse_record(text)


def test_engine_timestamps() -> None:
    assert ws._rfc3339("2026-12-02T17:19:38.250000000Z") == pytest.approx(1796231978.25)


def _proc_event(what: int, *fields: int) -> bytes:
    body = bytes(20) + struct.pack("=IIQ", what, 0, 0) + struct.pack(f"={len(fields)}I", *fields)
    return struct.pack("=IHHII", 16 + len(body), 3, 0, 0, 0) + body


def test_a_child_of_a_container_process_inherits_its_container_without_a_proc_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cid = "c" * 64
    cgroups = {10: f"12:pids:/docker/{cid}\n", 20: "12:pids:/user.slice\n",
               21: f"12:pids:/docker/{cid}\n"}  # 21: runc's child, moved into the container
    reads: list[int] = []

    def read_cgroup(pid: int) -> str | None:
        reads.append(pid)
        return cgroups.get(pid)

    monkeypatch.setattr(ws, "_read_cgroup", read_cgroup)
    monkeypatch.setattr(ws, "read_exe", lambda pid: "/bin/app")
    source = object.__new__(ws.ProcSource)
    feed = ws.Feed()
    source._feed, source._known, source._buffer = feed, {}, bytearray(ws.DATAGRAM_MAX)
    exec_, fork, exit_ = ws.PROC_EVENT_EXEC, ws.PROC_EVENT_FORK, ws.PROC_EVENT_EXIT
    source._sock = _Socket([  # type: ignore[assignment]
        _proc_event(exec_, 10, 10),  # the app: read, in the container
        _proc_event(fork, 10, 10, 11, 11), _proc_event(fork, 11, 11, 12, 12),  # inherited
        _proc_event(fork, 1, 1, 20, 20),  # a host process: read, not passed on
        _proc_event(fork, 20, 20, 21, 21),  # a host parent's child: read (it may move)
        _proc_event(exit_, 11, 11, 0, 0, 10, 10),  # forgotten: its pid may be reused
        _proc_event(fork, 11, 11, 13, 13)])  # pid 11 now unknown, 13 gone: read
    source._drain()
    items = []
    while not feed.queue.empty():
        items.append(feed.queue.get_nowait())
    assert reads == [10, 20, 21, 13]
    assert items[0][:2] == ("exec", 10) and items[0][3] == cid
    assert [i[:4] for i in items[1:]] == [("fork", 11, 10, cid), ("fork", 12, 11, cid),
                                          ("fork", 21, 20, cid), ("fork", 13, 11, None)]


def test_a_socket_overflow_is_a_dropped_count_even_if_no_later_record_shows_a_gap() -> None:
    record = [_message(AUDIT_SECCOMP, RECORD.format(ms=0, serial=s, pid=4000000 + s))
              for s in range(10, 20)]
    # a burst's tail lost: nothing after the overflow reveals a gap, the overflow says >= 1
    items = _drain([record[0], record[1], ENOBUFS])
    assert sorted((i[0], i[-1]) for i in items) == [("dropped", 1), ("seccomp", 1),
                                                    ("seccomp", 1)]
    # records lost in the middle: the gap (3) counts them, less the one reported at once
    items = _drain([record[0], ENOBUFS, record[4], record[5]])
    assert sum(i[-1] for i in items if i[0] == "dropped") == 3
