#!/usr/bin/env python3
"""Benchmark: `saferun check` over 1,000 manifests in one process (issue target: well under 2 s).

    .venv/bin/python bench/check_throughput.py [COUNT]

Writes COUNT varied manifests (ports, mounts, capabilities, allowed weakenings, policy
suppressions) to a temporary directory, then times `check_all` on all of them: reading,
validating, planning (with the generated seccomp profile), resolving bind sources,
judging every rule and scoring, plus rendering the table and SARIF output. Prints the
first run (cold: every distinct seccomp profile compiled once) and the best of three.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:  # the saferun of this interpreter (a bench venv measures its install), else the checkout
    import saferun  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))

from saferun.app.check import check_all  # noqa: E402
from saferun.policy.output import render  # noqa: E402

VARIANTS = (
    '',
    '\n[capabilities]\nadd = ["NET_BIND_SERVICE"]\n\n'
    '[[network.ports]]\ncontainer = 80\nhost = 8080\n',
    '\n[[filesystem.mounts]]\ntype = "bind"\nsource = "./data"\ntarget = "/data"\n',
    '\n[security]\npid = "host"\n\n[allow]\nhost-pid = "process monitor for the host"\n',
    '\n[policy]\nignore = { default-bridge = "single-container host, no neighbours" }\n',
    '\n[restart]\npolicy = "on-failure"\nmax_retries = 3\n\n[healthcheck]\ncommand = ["true"]\n',
)


def write_manifests(directory: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        text = (f'[app]\nname = "app{index}"\n'
                f'image = "registry.example/team/app{index}:1.{index}"\n'
                + VARIANTS[index % len(VARIANTS)])
        path = directory / f"app{index}.toml"
        path.write_text(text)
        paths.append(path)
    (directory / "data").mkdir()
    return paths


def measure(count: int) -> tuple[float, float, float]:
    """(first run, best of three, least CPU time of the three) seconds to check COUNT
    manifests; raises on an invalid one. On a shared, loaded host the CPU time of this
    process varies far less than the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = tuple(write_manifests(Path(tmp), count))
        timings, cpu = [], []
        for _ in range(3):
            start, start_cpu = time.perf_counter(), time.process_time()
            reports = check_all(paths, (), ())
            render(reports, "table")
            render(reports, "sarif")
            timings.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    invalid = [r.target for r in reports if not r.valid]
    if invalid:
        raise SystemExit(f"unexpected invalid manifests: {invalid[:3]}")
    return timings[0], min(timings), min(cpu)


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    cold, best, cpu = measure(count)
    print(f"checked {count} manifests in {cold:.3f} s cold ({1000 * cold / count:.2f} ms each, "
          f"{count / cold:.0f}/s), {best:.3f} s best of 3 ({count / best:.0f}/s), "
          f"{cpu:.3f} s CPU ({count / cpu:.0f}/s of CPU time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
