#!/usr/bin/env python3
"""Benchmark: what `saferun run` costs against `docker run` with the identical hardened flags.

One run prints, as paired medians and ratios (order alternated within each pair, all pairs
of a round interleaved in a new seeded order each round, 50 ms between starts, so drift on a
shared host hits every configuration alike):

- cold: a command line saferun has never seen (a fresh `-e SAFERUN_BENCH=<token>` value
  each round) against `docker run` with the same argv; the plan cache's normalised key
  reuses the plan made for another value;
- full: a fresh `--label bench.token=<token>` each round, a flag value that is part of the
  plan, so the whole pipeline runs (validation, planning; only a profile that compiled
  before is not compiled again), in the planning server saferun starts for such starts
  (saferun.app.planner; the warm-up waits for it);
- full, no server: the same with SAFERUN_NO_SERVER=1 (the whole pipeline in the process);
- warm: the exact same command line every round (the plan cache's case);
- no cache: SAFERUN_NO_CACHE=1 (nothing reused at all, not even a compiled profile);
- `saferun run --dry-run` against `docker version` (the floor of any docker CLI call);
- `saferun check` throughput in this process (manifests per second, bench/check_throughput);
- saferun's own time before it execs docker, for cold, full and warm: the same command
  lines with `docker` on PATH replaced by `true` (so only saferun and an exec are timed),
  paired with running `true` itself. On a loaded host this difference varies far less
  than a container start; (docker run median + it) / docker run median is the ratio
  saferun would have with a steady docker.

The docker side runs exactly the argv that `saferun run --dry-run` prints for the same
command line, so both start the same container configuration.

    /tmp/benchvenv/bin/python bench/run_vs_docker.py [--pairs 15] [--runtime gvisor]
        [--manifest examples/hello/saferun.toml] [--name saferun-bench] [--check-count 1000]
        [--only cold,full,fullalone,warm,nocache,dry]

Use a NON-editable install (bench/make_venv.sh): the plan cache fingerprints saferun's own
files, so running from a checkout that is being edited turns every start into a miss.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _machine import provenance, saferun_argv

REPO = Path(__file__).resolve().parents[1]
TOKEN = "@token@"  # replaced by a fresh value for each cold pair
CONFIGS = ("cold", "full", "fullalone", "warm", "nocache", "dry")
SETTLE_S = 0.05  # between starts: the engine finishes the last container's teardown


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def docker_argv(saferun: list[str], args: list[str]) -> list[str]:
    """The `docker run` line saferun would exec for `saferun run ARGS`."""
    dry = subprocess.run([*saferun, "run", "--dry-run", *args], check=True,
                         capture_output=True, text=True)
    return shlex.split(dry.stdout.strip())


def planning_server() -> str | None:
    """The socket of the planning server of the saferun under test (this interpreter's)."""
    # -P: not the checkout in the working directory, the install under test
    found = subprocess.run([sys.executable, "-P", "-c",
                            "from saferun.app.planner import socket_path;"
                            " print(socket_path() or '')"], capture_output=True, text=True,
                           check=True)
    return found.stdout.strip() or None


def stop_server(server: str | None) -> None:
    """Stop the planning server the benchmark started (SIGTERM; it removes its files)."""
    import signal

    try:
        os.kill(int(Path(f"{server}.pid").read_text()), signal.SIGTERM)
    except (OSError, ValueError, TypeError):
        pass


def with_token(argv: list[str], token: str) -> list[str]:
    return [a.replace(TOKEN, token) for a in argv]


def manifest_for(args: argparse.Namespace) -> str:
    if not args.runtime:
        return str(args.manifest)
    text = Path(args.manifest).read_text() + f'\n[security]\nruntime = "{args.runtime}"\n'
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{args.name}.toml"
    path.write_text(text)
    return str(path)


def report(title: str, ours: list[float], theirs: list[float], against: str) -> None:
    s, d = statistics.median(ours), statistics.median(theirs)
    per_pair = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    print(f"| {title} | {len(ours)} | {d * 1000:.1f} ({against}) | {s * 1000:.1f} | "
          f"**{s / d:.3f}** | {per_pair:.3f} |")


def timed_cpu(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, user+system CPU) seconds of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def measure_overhead(pairs: dict[str, tuple[list[str], list[str], dict[str, str]]],
                     wanted: list[str], rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    """saferun's time up to its exec of docker: `docker` on PATH is `true` for these runs.
    -> name: (wall seconds over `true`, CPU seconds of the saferun process)."""
    import shutil
    import tempfile

    names = [n for n in ("cold", "full", "fullalone", "warm") if n in wanted]
    if not names:
        return {}
    with tempfile.TemporaryDirectory() as fake:
        true = shutil.which("true") or "/bin/true"
        os.symlink(true, os.path.join(fake, "docker"))
        extra: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in names}
        for index in range(rounds):
            for name in names[index % len(names):] + names[:index % len(names)]:
                ours, _, run_env = pairs[name]
                env = {**run_env, "PATH": f"{fake}:{run_env.get('PATH', os.defpath)}"}
                argv = with_token(ours, uuid.uuid4().hex)
                if index % 2:
                    base, (mine, cpu) = timed([true]), timed_cpu(argv, env)
                else:
                    (mine, cpu), base = timed_cpu(argv, env), timed([true])
                extra[name][0].append(mine - base)
                extra[name][1].append(cpu)
    return extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--manifest", default=str(REPO / "examples/hello/saferun.toml"))
    parser.add_argument("--runtime", default=None, help="override security.runtime (e.g. gvisor)")
    parser.add_argument("--name", default="saferun-bench", help="container name (and prefix)")
    parser.add_argument("--check-count", type=int, default=1000,
                        help="manifests for the check throughput (0: skip)")
    parser.add_argument("--only", default=",".join(CONFIGS),
                        help=f"comma-separated subset of {', '.join(CONFIGS)}")
    args = parser.parse_args()
    wanted = [c for c in args.only.split(",") if c]
    unknown = set(wanted) - set(CONFIGS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")

    saferun = saferun_argv()
    manifest = manifest_for(args)
    base = ["--rm", "--name", args.name]
    warm_args = [*base, manifest, "true"]
    cold_args = [*base, "-e", f"SAFERUN_BENCH={TOKEN}", manifest, "true"]
    full_args = [*base, "--label", f"bench.token={TOKEN}", manifest, "true"]
    env = dict(os.environ)
    env.pop("SAFERUN_NO_CACHE", None)
    nocache_env = {**env, "SAFERUN_NO_CACHE": "1"}
    alone_env = {**env, "SAFERUN_NO_SERVER": "1"}
    # The docker argv is rendered once per shape; cold pairs substitute their token into it,
    # so rendering it does not warm anything saferun's cold start could then reuse.
    docker_warm = docker_argv(saferun, warm_args)
    docker_cold = docker_argv(saferun, cold_args)
    docker_full = docker_argv(saferun, full_args)
    pairs: dict[str, tuple[list[str], list[str], dict[str, str]]] = {
        "warm": ([*saferun, "run", *warm_args], docker_warm, env),
        "cold": ([*saferun, "run", *cold_args], docker_cold, env),
        "full": ([*saferun, "run", *full_args], docker_full, env),
        "fullalone": ([*saferun, "run", *full_args], docker_full, alone_env),
        "nocache": ([*saferun, "run", *warm_args], docker_warm, nocache_env),
        "dry": ([*saferun, "run", "--dry-run", *warm_args], ["docker", "version"], env),
    }
    for name in wanted:  # warm the image, the page cache and (for "warm") the plan cache
        ours, theirs, run_env = pairs[name]
        timed(with_token(ours, uuid.uuid4().hex), run_env)
        timed(with_token(theirs, uuid.uuid4().hex))
    server = planning_server()
    if "full" in wanted:  # the first full start spawned the server: let it come up and learn
        deadline = time.monotonic() + 30
        while server and not Path(f"{server}.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(3):
            timed(with_token(pairs["full"][0], uuid.uuid4().hex), env)
    samples: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in wanted}
    shuffler = random.Random(16)  # the same orders on every run of the script
    for index in range(args.pairs):
        # Each round runs the configurations in a new order, and each configuration puts
        # its own side first in every other pair: what ran just before a start (a heavy
        # start, a container still being torn down) and which side goes first stay
        # independent (a fixed rotation tied them together).
        for name in shuffler.sample(wanted, len(wanted)):
            ours, theirs, run_env = pairs[name]
            token = uuid.uuid4().hex  # a value no earlier start used
            order = [(with_token(ours, token), run_env, samples[name][0]),
                     (with_token(theirs, token), None, samples[name][1])]
            for argv, run_on, sink in order if index % 2 == 0 else reversed(order):
                time.sleep(SETTLE_S)
                sink.append(timed(argv, run_on))
    overhead = measure_overhead(pairs, wanted, args.pairs)
    stop_server(server)
    load = os.getloadavg()
    print(f"measured: {provenance()}")
    print(f"runtime: {args.runtime or 'runc (manifest default)'}; manifest "
          f"{Path(args.manifest).name}; load average during the run "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    print("| saferun | pairs | reference median ms | saferun median ms | ratio of medians "
          "| median of per-pair ratios |")
    print("|---|---|---|---|---|---|")
    titles = {
        "cold": ("`run`, cold (new env value)", "`docker run`"),
        "full": ("`run`, full path (new flag value)", "`docker run`"),
        "warm": ("`run`, warm (exact repeat)", "`docker run`"),
        "fullalone": ("`run`, full path, SAFERUN_NO_SERVER=1", "`docker run`"),
        "nocache": ("`run`, SAFERUN_NO_CACHE=1", "`docker run`"),
        "dry": ("`run --dry-run`", "`docker version`"),
    }
    for name in wanted:
        report(titles[name][0], *samples[name], titles[name][1])
    if overhead:
        print()
        print("| saferun before exec | pairs | median wall ms over `true` | as a share of the "
              "`docker run` median above | median CPU ms of the saferun process |")
        print("|---|---|---|---|---|")
        for name, (extra, cpu) in overhead.items():
            reference = statistics.median(samples[name][1]) if name in samples else None
            share = f"+{100 * statistics.median(extra) / reference:.1f} %" if reference else "-"
            print(f"| {titles[name][0]} | {len(extra)} | {statistics.median(extra) * 1000:.1f} "
                  f"| {share} | {statistics.median(cpu) * 1000:.1f} |")
    if args.check_count:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from check_throughput import measure

        cold, best, cpu = measure(args.check_count)
        print()
        print(f"`saferun check` in one process, {args.check_count} manifests: "
              f"{args.check_count / cold:.0f} manifests/s cold, "
              f"{args.check_count / best:.0f} manifests/s best of 3, "
              f"{args.check_count / cpu:.0f} manifests per CPU second")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
