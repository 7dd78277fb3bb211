#!/usr/bin/env python3
"""Benchmark: `saferun up` of a three-service stack against plain `docker run` of the same.

The stack is web, db and cache (busybox listeners; web depends on db) with ingress and
egress rules. The docker side creates a network and runs, one after another, the same
three containers with the hardened argv `saferun run --dry-run` prints for each manifest
without its rules (what a script of `docker run` lines starts). The saferun side is
`saferun up` as a user runs it: three sandboxes, three rulesets installed in their
namespaces, three services. Teardown is not timed. Runs PAIRS pairs (order alternated),
prints both medians, the ratio, and the median time to install one service's rules (as
`up` reports it: nsenter + nft, per service).

    /tmp/benchvenv/bin/python bench/stack_up_vs_docker.py [--pairs 5] [--baseline SAFERUN]

`--baseline` times another saferun install (e.g. an older commit's venv/bin/saferun) in
the same rounds, each round in a rotated order, so a before/after comparison sees the same
load.

Names start with net-bench-; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _machine import provenance, saferun_argv

IMAGE = "saferun-test/busybox:1"
STACK = "net-bench"
SERVICES = {  # name: (command, [network] rules, depends_on)
    "web": (["nc", "-ll", "-p", "8080", "-e", "echo", "web"],
            'egress = ["db:5432"]\n', ["db"]),
    "db": (["nc", "-ll", "-p", "5432", "-e", "echo", "db"],
           'egress = "none"\ningress = ["web:5432"]\n', []),
    "cache": (["nc", "-ll", "-p", "6379", "-e", "echo", "cache"],
              'egress = "none"\ningress = []\n', []),
}


def _quiet(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _write(directory: Path) -> tuple[Path, dict[str, Path]]:
    plain = {}
    stack = [f'[stack]\nname = "{STACK}"\nsandbox_image = "{IMAGE}"\n']
    for name, (command, rules, deps) in SERVICES.items():
        app = f'[app]\nname = "{name}"\nimage = "{IMAGE}"\ncommand = {command!r}\n'.replace(
            "'", '"')
        (directory / f"{name}.toml").write_text(f"{app}\n[network]\n{rules}")
        plain[name] = directory / f"plain-{name}.toml"
        plain[name].write_text(app)
        stack.append(f'[services.{name}]\nmanifest = "{name}.toml"\ndepends_on = {deps!r}\n'
                     .replace("'", '"'))
    path = directory / "saferun.stack.toml"
    path.write_text("\n".join(stack))
    return path, plain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--baseline", help="another saferun executable to time alike")
    args = parser.parse_args()
    saferun = saferun_argv()
    network = f"{STACK}-plain"
    with tempfile.TemporaryDirectory(prefix="net-bench-") as tmp:
        stack, plain = _write(Path(tmp))
        order = ["db", "cache", "web"]  # dependencies first, as up starts them
        docker_lines = []
        for name in order:
            dry = subprocess.run([*saferun, "run", "--dry-run", "-d", "--name",
                                  f"{network}-{name}", "--network", network, str(plain[name])],
                                 check=True, capture_output=True, text=True)
            docker_lines.append(shlex.split(dry.stdout.strip().splitlines()[-1]))

        def run_docker() -> float:
            start = time.perf_counter()
            subprocess.run(["docker", "network", "create", network], check=True,
                           capture_output=True)
            for argv in docker_lines:
                subprocess.run(argv, check=True, capture_output=True)
            elapsed = time.perf_counter() - start
            _quiet(["docker", "rm", "-f", *(f"{network}-{n}" for n in order)])
            _quiet(["docker", "network", "rm", network])
            return elapsed

        rules_ms: list[float] = []

        def timed_up(command: list[str], rules: list[float]) -> float:
            start = time.perf_counter()
            done = subprocess.run([*command, "up", str(stack)], check=True,
                                  capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            rules.extend(float(m) for m in re.findall(r"rules in ([0-9]+) ms", done.stdout))
            _quiet([*command, "down", str(stack)])
            return elapsed

        def run_up() -> float:
            return timed_up(saferun, rules_ms)

        def run_baseline() -> float:
            return timed_up([args.baseline], [])

        try:
            run_docker(), run_up()  # warm: images, page cache
            if args.baseline:
                run_baseline()
            rules_ms.clear()
            ups, dockers, baselines = [], [], []
            rounds = [(run_up, ups), (run_docker, dockers)]
            rounds += [(run_baseline, baselines)] if args.baseline else []
            for index in range(args.pairs):
                turn = index % len(rounds)
                for run, sink in rounds[turn:] + rounds[:turn]:
                    sink.append(run())
        finally:
            _quiet([*saferun, "down", str(stack)])
            if args.baseline:
                _quiet([args.baseline, "down", str(stack)])
            _quiet(["docker", "rm", "-f", *(f"{network}-{n}" for n in order)])
            _quiet(["docker", "network", "rm", network])
    u, d = statistics.median(ups), statistics.median(dockers)
    print(f"measured: {provenance()}")
    print(f"pairs: {args.pairs}")
    print(f"docker network create + 3x docker run median: {d * 1000:.0f} ms")
    print(f"saferun up (3 services, rules) median:        {u * 1000:.0f} ms")
    print(f"ratio up/docker: {u / d:.2f}")
    print(f"per-pair ratio median: "
          f"{statistics.median(a / b for a, b in zip(ups, dockers, strict=True)):.2f}")
    if baselines:
        b = statistics.median(baselines)
        print(f"baseline {args.baseline} median: {b * 1000:.0f} ms, ratio {b / d:.2f}, "
              f"per-pair ratio median "
              f"{statistics.median(x / y for x, y in zip(baselines, dockers, strict=True)):.2f}")
    print(f"rules install per service: median {statistics.median(rules_ms):.1f} ms, "
          f"max {max(rules_ms):.1f} ms ({len(rules_ms)} installs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
