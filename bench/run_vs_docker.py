#!/usr/bin/env python3
"""Benchmark: wall time of `saferun run` against `docker run` with the identical hardened flags.

Runs PAIRS pairs (order alternated within each pair to cancel drift), prints both medians
and the ratio. The docker side runs exactly the argv that `saferun run --dry-run` prints
for the same manifest, so both start the same container configuration.

    /tmp/benchvenv/bin/python bench/run_vs_docker.py [--pairs 20] [--runtime gvisor]
                              [--manifest examples/hello/saferun.toml]

Use a NON-editable install (python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip
install .): the plan cache fingerprints saferun's own files, so running from a checkout
that is being edited turns every saferun start into a cache miss.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _machine import provenance

REPO = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--manifest", default=str(REPO / "examples/hello/saferun.toml"))
    parser.add_argument("--runtime", default=None, help="override security.runtime (e.g. gvisor)")
    args = parser.parse_args()

    saferun = [str(Path(sys.executable).with_name("saferun"))]
    if not Path(saferun[0]).exists():
        saferun = [sys.executable, "-m", "saferun"]
    manifest = args.manifest
    if args.runtime:
        text = Path(manifest).read_text() + f'\n[security]\nruntime = "{args.runtime}"\n'
        manifest = str(Path(os.environ.get("TMPDIR", "/tmp")) / "saferun-bench.toml")
        Path(manifest).write_text(text)
    run_saferun = [*saferun, "run", "--rm", manifest, "true"]
    dry = subprocess.run([*saferun, "run", "--dry-run", "--rm", manifest, "true"],
                         check=True, capture_output=True, text=True)
    run_docker = shlex.split(dry.stdout.strip())

    for argv in (run_saferun, run_docker):  # warm caches (image, page cache, plan cache)
        timed(argv)
    saferun_times, docker_times = [], []
    for index in range(args.pairs):
        order = [(run_saferun, saferun_times), (run_docker, docker_times)]
        for argv, sink in order if index % 2 == 0 else reversed(order):
            sink.append(timed(argv))
    s, d = statistics.median(saferun_times), statistics.median(docker_times)
    print(f"measured: {provenance()}")
    print(f"runtime: {args.runtime or 'runc (manifest default)'}")
    print(f"pairs: {args.pairs}")
    print(f"docker run  median: {d * 1000:.1f} ms")
    print(f"saferun run median: {s * 1000:.1f} ms")
    print(f"ratio saferun/docker: {s / d:.3f}")
    per_pair = statistics.median(
        a / b for a, b in zip(saferun_times, docker_times, strict=True))
    print(f"per-pair ratio median: {per_pair:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
