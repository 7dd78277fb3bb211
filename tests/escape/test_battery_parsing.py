"""The battery's parsing and table rendering, without an engine."""

from __future__ import annotations

from tests.escape.battery import ATTEMPTS, BatteryRun, Result, cell, parse, reason, render_table


def test_parse_reads_result_lines_and_reports_the_rest() -> None:
    results, malformed = parse(
        "bpf: blocked (bpf(BPF_PROG_LOAD): EPERM)\n"
        "raw_socket: ALLOWED (socket(AF_INET, SOCK_RAW) succeeded)\n"
        "bpf: ALLOWED (second line for the same attempt)\n"
        "garbage\n"
    )
    assert results == {
        "bpf": Result("blocked", "bpf(BPF_PROG_LOAD): EPERM"),
        "raw_socket": Result("ALLOWED", "socket(AF_INET, SOCK_RAW) succeeded"),
    }
    assert malformed == ["bpf: ALLOWED (second line for the same attempt)", "garbage"]


def test_reason_keeps_errno_or_signal_and_drops_counts() -> None:
    assert reason(Result("blocked", "forked=254 bound=1000: fork failed with EAGAIN")) == "EAGAIN"
    assert reason(Result("blocked", "allocator killed by signal 9 (KILL) after 496 MiB")) \
        == "SIGKILL"
    assert reason(Result("blocked", "uid 65534 ran setuid-root /bin/suid_helper: euid=65534")) \
        == "euid stays 65534"
    assert reason(Result("blocked", "no line: the whole container was OOM-killed (exit 137)")) \
        == "whole container OOM-killed"


def test_cell_marks_allowed_and_missing() -> None:
    assert cell(Result("ALLOWED", "created /x")) == "**ALLOWED**"
    assert cell(Result("blocked", "open /dev/mem: ENOENT")) == "blocked (ENOENT)"
    assert cell(None) == "no result"


def test_table_has_a_row_per_attempt_and_counts_allowed() -> None:
    results = {name: Result("blocked", "x: EPERM") for name in ATTEMPTS}
    results["bpf"] = Result("ALLOWED", "bpf succeeded")
    run = BatteryRun(config="saferun", argvs=[], exit_codes={}, stdout="", stderr="",
                     results=results, mem_available_before=0, mem_available_min=0,
                     mem_available_after=0, host_tasks_before=0, host_tasks_max=0,
                     listener_connections=0)
    table = render_table({"saferun": run})
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(ATTEMPTS)
    assert f"**1 of {len(ATTEMPTS)}**" in table
