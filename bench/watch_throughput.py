"""Benchmark: saferun watch's sustained event rate, its memory and its cost to the watched app.

    sudo .venv/bin/python bench/watch_throughput.py [--calls 200000] [--rounds 7]

1. Events per second: a container whose profile logs getppid (`[seccomp] mode = "log"`,
   `deny = ["getppid"]`: every call is let through and logged, so one process can make
   calls as fast as the kernel takes records) runs getppid_loop; watch (--format json)
   must count every call, and the rate is calls over the time from the first to the last
   one watch reported (from the kernel's own timestamps).
2. watch's peak resident memory (VmHWM) over the run.
3. Overhead: getppid_loop under the default profile (allowed calls: no records), timed
   inside the container, with and without watch running, in pairs whose order alternates;
   medians and the ratio.
Not a test: prints Markdown for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
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

IMAGE = "saferun-test/watch-bench:1"
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loop", type=int, default=5_000_000)
    args = parser.parse_args()
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        build_probe_image(IMAGE, (str(REPO / "bench" / "getppid_loop.c"),))
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as work:
        try:
            _start(Path(work), LOGGED, 'mode = "log"\ndeny = ["getppid"]')
            _start(Path(work), PLAIN, "")
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
            dropped = watch.dropped
            peak = watch.peak_kb()
            watch.stop()

            with_watch: list[float] = []
            without: list[float] = []
            for round_number in range(args.rounds):
                order = (True, False) if round_number % 2 == 0 else (False, True)
                for watching in order:
                    if watching:
                        plain_watch = Watch(PLAIN)
                        plain_watch.ready.wait(20)
                        time.sleep(3)  # its start-up (imports, inspect) is not the cost
                        with_watch.append(_loop_ns(PLAIN, args.loop))
                        plain_watch.stop()
                    else:
                        without.append(_loop_ns(PLAIN, args.loop))
        finally:
            subprocess.run(["docker", "rm", "-f", LOGGED, PLAIN], capture_output=True)
    on, off = statistics.median(with_watch), statistics.median(without)
    print(f"measured {provenance()}\n")
    print("| figure | value |\n|---|---|")
    print(f"| logged calls made / reported by watch / reported dropped | {args.calls} / "
          f"{counted} / {dropped} |")
    print(f"| events per second (first to last counted, kernel timestamps) | "
          f"{counted / span if span else float('nan'):,.0f} |")
    print(f"| wall time from the loop's start to the last count | {wall:.2f} s |")
    print(f"| logged getppid with no reader: ns/call (the kernel's own rate) | {alone:.0f} "
          f"({1e9 / alone:,.0f} calls/s) |")
    print(f"| watch's CPU while idle (10 s, host busy with other work) | {idle_cpu:.1%} |")
    print(f"| watch's CPU time for them / events per CPU second | {busy_cpu:.2f} s / "
          f"{counted / busy_cpu if busy_cpu else float('nan'):,.0f} |")
    print(f"| watch's peak RSS (VmHWM) | {peak / 1024:.1f} MB |")
    print(f"| getppid ns/call, no watch (median of {args.rounds}) | {off:.1f} "
          f"({min(without):.1f}-{max(without):.1f}) |")
    print(f"| getppid ns/call, watch running (median of {args.rounds}) | {on:.1f} "
          f"({min(with_watch):.1f}-{max(with_watch):.1f}) |")
    print(f"| ratio (watch / no watch) | {on / off:.3f} |")


if __name__ == "__main__":
    main()
