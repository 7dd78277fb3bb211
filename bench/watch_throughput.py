"""Benchmark: saferun watch's sustained event rate, its memory and its cost to the watched app.

    sudo .venv/bin/python bench/watch_throughput.py [--calls 300000] [--rounds 40]

1. Events per second: a container whose profile logs getppid (`[seccomp] mode = "log"`,
   `deny = ["getppid"]`: every call is let through and logged, so one process can make
   calls as fast as the kernel takes records) runs getppid_loop; watch (--format json)
   must count every call, and the rate is calls over the time from the first to the last
   one watch reported (from the kernel's own timestamps).
2. watch's peak resident memory (VmHWM) over the run.
3. Overhead on a shared, noisy host: the watched app (default profile) runs watch_load,
   a getppid loop (allowed calls: no audit records) and a fork loop (each fork and exit
   is a process event watch reads), timed inside the container by its own CPU time
   (getrusage: a neighbour taking the core shows in wall time, far less in CPU time) and
   by wall time. Many short rounds; each round is one pair, with and without watch
   running, back to back in alternating order, so slow drifts of the host's load fall on
   both halves of a pair. The figure is the geometric mean of the per-round ratios with
   a 95 % bootstrap confidence interval: 2 % is resolved when the interval is narrower.
Not a test: prints Markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import provenance

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.e2e.seccomp_probe import build_probe_image  # noqa: E402

IMAGE = "saferun-test/watch-bench:2"  # :2 adds watch_load
LOGGED = "watch-bench-logged"
PLAIN = "watch-bench-plain"


def _run(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


def _start(directory: Path, name: str, seccomp: str) -> None:
    manifest = directory / f"{name}.toml"
    manifest.write_text(f'[app]\nname = "{name}"\nimage = "{IMAGE}"\ncommand = ["sleep", '
                        f'"3600"]\n[seccomp]\n{seccomp}\n')
    _run(sys.executable, "-m", "saferun", "run", "-d", str(manifest))


class Watch:
    def __init__(self, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "saferun", "watch", name, "--format", "json",
             "--drift-interval", "0"], stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.count = 0
        self.dropped = 0
        self.first: float | None = None
        self.last = 0.0
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            if event["subject"] == "watching":
                self.ready.set()
            if event["kind"] == "dropped":
                self.dropped += event["count"]
            if event["kind"] == "syscall-unlisted" and event["subject"] == "getppid":
                self.count += event["count"]
                if self.first is None:
                    self.first = event["time"]
                self.last = max(self.last, event["time"])

    def peak_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return -1

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def _loop_ns(name: str, calls: int) -> float:
    out = _run("docker", "exec", name, "getppid_loop", str(calls))
    return float(out.split("ns_per_call=")[1])


MODES = ("getppid", "fork")


def _load(name: str, mode: str, count: int) -> tuple[float, float]:
    """(wall ns, CPU ns) per operation of watch_load inside the container."""
    fields = dict(f.split("=") for f in _run("docker", "exec", name, "watch_load", mode,
                                             str(count)).split())
    return float(fields["wall_ns"]), float(fields["cpu_ns"])


def _ci(ratios: list[float], resamples: int = 10_000) -> tuple[float, float, float]:
    """Geometric mean of the ratios and its 95 % bootstrap interval (fixed seed)."""
    logs = [math.log(r) for r in ratios]
    pick = random.Random(18)
    means = sorted(statistics.fmean(pick.choices(logs, k=len(logs)))
                   for _ in range(resamples))
    low, high = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    return math.exp(statistics.fmean(logs)), math.exp(low), math.exp(high)


def _overhead(args: argparse.Namespace) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Per mode and clock ("wall", "cpu"): the (no watch, watch) pairs of every round."""
    counts = {"getppid": args.loop, "fork": args.forks}
    pairs: dict[str, dict[str, list[tuple[float, float]]]] = {
        m: {"wall": [], "cpu": []} for m in MODES}
    for round_number in range(args.rounds):
        measured: dict[bool, dict[str, tuple[float, float]]] = {}
        for watching in ((True, False) if round_number % 2 == 0 else (False, True)):
            watch = Watch(PLAIN) if watching else None
            if watch is not None:
                watch.ready.wait(20)
            time.sleep(args.settle)  # watch's start-up (imports, inspect) or stop is not the cost
            measured[watching] = {m: _load(PLAIN, m, counts[m]) for m in MODES}
            if watch is not None:
                watch.stop()
        for mode in MODES:
            for index, clock in enumerate(("wall", "cpu")):
                pairs[mode][clock].append((measured[False][mode][index],
                                           measured[True][mode][index]))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--loop", type=int, default=4_000_000, help="getppid calls a round")
    parser.add_argument("--forks", type=int, default=4_000, help="forks a round")
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--overhead-only", action="store_true")
    args = parser.parse_args()
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        build_probe_image(IMAGE, (str(REPO / "bench" / "getppid_loop.c"),
                                  str(REPO / "bench" / "watch_load.c")))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as work:
        try:
            _start(Path(work), PLAIN, "")
            rate = None if args.overhead_only else _rate(Path(work), args)
            pairs = _overhead(args)
        finally:
            subprocess.run(["docker", "rm", "-f", LOGGED, PLAIN], capture_output=True)
    load_after = os.getloadavg()
    print(f"measured {provenance()}; load average (1, 5, 15 min) before "
          f"{', '.join(f'{x:.2f}' for x in load_before)}, after "
          f"{', '.join(f'{x:.2f}' for x in load_after)}\n")
    print("| figure | value |\n|---|---|")
    if rate is not None:
        for label, value in rate:
            print(f"| {label} | {value} |")
    unit = {"getppid": "ns/call", "fork": "µs/fork"}
    scale = {"getppid": 1.0, "fork": 1e-3}
    for mode in MODES:
        for clock in ("cpu", "wall"):
            off = [p[0] * scale[mode] for p in pairs[mode][clock]]
            on = [p[1] * scale[mode] for p in pairs[mode][clock]]
            mean, low, high = _ci([p[1] / p[0] for p in pairs[mode][clock]])
            print(f"| {mode} {clock} {unit[mode]}: no watch / watch, medians of "
                  f"{args.rounds} | {statistics.median(off):.1f} / "
                  f"{statistics.median(on):.1f} |")
            print(f"| {mode} {clock}: watch / no watch, geometric mean of the round ratios "
                  f"[95 % CI] | {mean:.4f} [{low:.4f}, {high:.4f}] |")


def _rate(work: Path, args: argparse.Namespace) -> list[tuple[str, str]]:
    """Parts 1 and 2: the sustained event rate and watch's memory (Markdown rows)."""
    # log mode denies nothing: it needs a written reason (issue 19)
    _start(work, LOGGED, 'mode = "log"\ndeny = ["getppid"]\n[allow]\n'
                         'seccomp-unconfined = "watch benchmark: log mode on purpose"')
    alone = _loop_ns(LOGGED, args.calls // 4)  # the kernel's rate with no reader
    watch = Watch(LOGGED)
    watch.ready.wait(20)
    time.sleep(2)
    idle_before = _cpu_seconds(watch.proc.pid)
    time.sleep(10)
    idle_cpu = (_cpu_seconds(watch.proc.pid) - idle_before) / 10
    cpu_before = _cpu_seconds(watch.proc.pid)
    started = time.time()
    _loop_ns(LOGGED, args.calls)
    deadline = time.time() + 120
    while watch.count + watch.dropped < args.calls and time.time() < deadline:
        time.sleep(0.2)
    wall = time.time() - started
    busy_cpu = _cpu_seconds(watch.proc.pid) - cpu_before
    counted, span = watch.count, watch.last - (watch.first or watch.last)
    dropped, peak = watch.dropped, watch.peak_kb()
    watch.stop()
    subprocess.run(["docker", "rm", "-f", LOGGED], capture_output=True)
    return [
        ("logged calls made / reported by watch / reported dropped",
         f"{args.calls} / {counted} / {dropped}"),
        ("events per second (first to last counted, kernel timestamps)",
         f"{counted / span if span else float('nan'):,.0f}"),
        ("wall time from the loop's start to the last count", f"{wall:.2f} s"),
        ("logged getppid with no reader: ns/call (the kernel's own rate)",
         f"{alone:.0f} ({1e9 / alone:,.0f} calls/s)"),
        ("watch's CPU while idle (10 s, host busy with other work)", f"{idle_cpu:.1%}"),
        ("watch's CPU time for them / events per CPU second",
         f"{busy_cpu:.2f} s / {counted / busy_cpu if busy_cpu else float('nan'):,.0f}"),
        ("watch's peak RSS (VmHWM)", f"{peak / 1024:.1f} MB"),
    ]


if __name__ == "__main__":
    main()
