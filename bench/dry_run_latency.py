#!/usr/bin/env python3
"""Benchmark: `saferun run --dry-run` latency against `docker version`.

    /tmp/benchvenv/bin/python bench/dry_run_latency.py [--rounds 30] [--manifest M]

Both ask the daemon something and print: `docker version` is the floor of any docker CLI
call (client start plus one API round trip). Since issue 16 the plan cache serves a
repeated `--dry-run` too; run this with SAFERUN_NO_CACHE=1 for saferun's full path (the
figures of 5ba892d in docs/BENCHMARKS.md): import, manifest validation, one `docker info`,
planning, seccomp generation with the libseccomp check, AppArmor rendering, argv
rendering. `--dry-run --offline` is the same without asking the daemon. Each round runs
the three once, in a rotated order (paired runs: drift hits all alike); the script prints
medians, min–max and ratios to `docker version` as Markdown.

Run it with a NON-editable install (python3 -m venv /tmp/benchvenv &&
/tmp/benchvenv/bin/pip install .), so that it measures one fixed version of saferun.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

from _machine import REPO, provenance, saferun_argv


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--manifest", default=str(REPO / "examples/hello/saferun.toml"))
    args = parser.parse_args()
    env = dict(os.environ)
    dry = [*saferun_argv(), "run", "--dry-run", args.manifest]
    offline = [*saferun_argv(), "run", "--dry-run", "--offline", args.manifest]
    configs: dict[str, tuple[list[str], dict[str, str]]] = {
        "docker version": (["docker", "version"], env),
        "saferun run --dry-run": (dry, env),
        "saferun run --dry-run --offline": (offline, env),
    }
    for argv, run_env in configs.values():  # warm the page cache
        timed(argv, run_env)
    samples: dict[str, list[float]] = {name: [] for name in configs}
    names = list(configs)
    for round_ in range(args.rounds):
        for name in names[round_ % 3:] + names[:round_ % 3]:
            samples[name].append(timed(*configs[name]))
    base = statistics.median(samples["docker version"])
    manifest = Path(args.manifest)
    shown = manifest.relative_to(REPO) if manifest.is_relative_to(REPO) else manifest
    print(f"Measured {provenance()}; {args.rounds} rotated rounds, manifest {shown}.")
    print()
    print("| command | median ms | min–max ms | ratio to `docker version` |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median * 1000:.1f} | {min(values) * 1000:.1f}–"
              f"{max(values) * 1000:.1f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
