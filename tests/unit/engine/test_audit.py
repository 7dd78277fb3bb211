"""Parsing recorded audit lines and attributing records to one container's processes."""

from __future__ import annotations

import pytest

from saferun.engine.audit import (
    AUDIT_ARCH_X86_64,
    Capture,
    SeccompRecord,
    container_pids,
    parse_record,
    parse_serial,
    syscall_name,
)

# Real records, as received from the audit multicast group on a Linux 6.18 host (Docker
# 20.10, runc 1.1.5) while a busybox container ran with defaultAction SCMP_ACT_LOG.
RUNC_INIT = (
    'audit(1795929869.415:272): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=25299 '
    'comm="runc:[2:INIT]" exe="/" sig=0 arch=c000003e syscall=257 compat=0 ip=0x40828e '
    "code=0x7ffc0000"
)
LS = (
    'audit(1795929869.435:440): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=25378 '
    'comm="ls" exe="/bin/busybox" sig=0 arch=c000003e syscall=16 compat=0 ip=0x47dbbb '
    "code=0x7ffc0000"
)
OTHER_CONTAINER = (
    'audit(1795929870.611:490): auid=4294967295 uid=65534 gid=65534 ses=4294967295 pid=25824 '
    'comm="syscall_probe" exe="/bin/syscall_probe" sig=0 arch=c000003e syscall=272 compat=0 '
    "ip=0x439d09 code=0x7ffc0000"
)
# The same record as the kernel log prints it when no auditd is connected.
KMSG = (
    "[ 1261.072419] audit: type=1326 audit(1795930198.955:2991): auid=4294967295 uid=65534 "
    'gid=65534 ses=4294967295 pid=25835 comm="sh" exe="/bin/busybox" sig=0 arch=c000003e '
    "syscall=218 compat=0 ip=0x495a3a code=0x7ffc0000"
)
CONTAINER = "d11f712cfb973e3d6f0f9e710cdc373cdcace9bad7a8f4adba3b2e81145b7f1b"
OURS_CGROUP = f"9:name=systemd:/docker/{CONTAINER}\n8:pids:/docker/{CONTAINER}\n"
OTHER_CGROUP = "9:name=systemd:/docker/" + "e" * 64 + "\n"


def test_parses_a_real_record() -> None:
    record = parse_record(RUNC_INIT)
    assert record == SeccompRecord(serial=272, pid=25299, comm="runc:[2:INIT]", exe="/",
                                   arch=AUDIT_ARCH_X86_64, syscall=257, code=0x7FFC0000)
    assert record.name == "openat"
    assert record.action == "log"


def test_maps_numbers_to_names_for_the_records_arch() -> None:
    ls = parse_record(LS)
    assert ls is not None and ls.name == "ioctl" and ls.comm == "ls" and ls.exe == "/bin/busybox"
    probe = parse_record(OTHER_CONTAINER)
    assert probe is not None and probe.name == "unshare"
    assert syscall_name(0x40000003, 11) == "execve"  # i386 numbering
    assert syscall_name(AUDIT_ARCH_X86_64, 0x40000000 | 257) == "openat"  # x32 ABI
    assert syscall_name(AUDIT_ARCH_X86_64, 99999) == "#99999"


def test_parses_the_kernel_log_form() -> None:
    record = parse_record(KMSG)
    assert record is not None and record.serial == 2991 and record.name == "set_tid_address"


def test_actions_and_hex_encoded_names() -> None:
    denied = parse_record(LS.replace("code=0x7ffc0000", "code=0x50001").replace(
        'comm="ls"', "comm=6D7920617070"))
    assert denied is not None and denied.action == "errno" and denied.comm == "my app"
    killed = parse_record(LS.replace("code=0x7ffc0000", "code=0x80000000"))
    assert killed is not None and killed.action == "kill_process"


@pytest.mark.parametrize("text", [
    "",
    "audit(1795929869.415:272): op=set audit_enabled=1",
    LS.replace("syscall=16", "syscall=x"),
    "pid=1 syscall=2 arch=c000003e code=0x7ffc0000",
])
def test_incomplete_text_is_not_a_record(text: str) -> None:
    assert parse_record(text) is None


def test_serial_of_any_record_type() -> None:
    assert parse_serial("audit(1795929869.415:5521): op=add_rule") == 5521
    assert parse_serial("no header") is None


def test_attribution_by_cgroup_and_by_ancestry() -> None:
    cgroups = {25299: OURS_CGROUP, 25378: None, 25379: None, 25824: OTHER_CGROUP, 777: None}
    parents = {25378: 25299, 25379: 25378, 25299: 25280, 25280: 25269, 25824: 25798, 777: 1}
    found = container_pids([25299, 25378, 25379, 25824, 777], cgroups, parents, CONTAINER)
    # 25378/25379 exited before their cgroup was read: their ancestor 25299 is ours.
    assert found == {25299, 25378, 25379}


def test_nearest_known_ancestor_decides() -> None:
    # A process of another container whose parent chain passes through ours is not ours:
    # the first ancestor with a known cgroup decides.
    cgroups = {10: OURS_CGROUP, 20: OTHER_CGROUP, 30: None}
    parents = {30: 20, 20: 10}
    assert container_pids([30], cgroups, parents, CONTAINER) == set()


def test_attribution_survives_a_parent_cycle() -> None:
    # pid reuse can make the fork map cyclic; the walk must end.
    assert container_pids([1, 2], {1: None, 2: None}, {1: 2, 2: 1}, CONTAINER) == set()


def test_capture_keeps_only_the_containers_records() -> None:
    records = [r for r in map(parse_record, (RUNC_INIT, LS, OTHER_CONTAINER)) if r]
    capture = Capture(records=records, cgroups={25299: OURS_CGROUP, 25378: None,
                                                25824: OTHER_CGROUP},
                      parents={25378: 25299})
    assert [r.name for r in capture.records_of(CONTAINER)] == ["openat", "ioctl"]
