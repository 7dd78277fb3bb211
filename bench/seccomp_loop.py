"""Benchmark: the cost of each seccomp profile on a syscall-heavy loop.

    .venv/bin/python bench/seccomp_loop.py [--rounds 9] [--calls 10000000]

A static C program makes N raw getppid() calls in a container and reports ns per call
(timed inside the container, so start-up is excluded). Each round runs every
configuration once, in a rotated order (paired runs: drift on the host hits all of them
alike); medians over rounds and ratios to Docker's default are printed as Markdown, with
the BPF length of each filter as the kernel holds it (read with
PTRACE_SECCOMP_GET_FILTER from a helper container) and as libseccomp compiles saferun's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from _common import docker, provenance, write_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.seccomp_probe import HARDENED_FLAGS, build_probe_image, remove_image  # noqa: E402

BENCH = Path(__file__).resolve().parent


def loop_ns(image: str, opts: tuple[str, ...], calls: int) -> float:
    argv = ["docker", "run", "--rm", *HARDENED_FLAGS]
    for opt in opts:
        argv += ["--security-opt", opt]
    out = subprocess.run(
        [*argv, image, "getppid_loop", str(calls)], check=True, capture_output=True, text=True
    ).stdout
    return float(out.split("ns_per_call=")[1])


def kernel_filter_length(image: str, opts: tuple[str, ...]) -> str:
    """Instructions of the filter(s) the kernel attached to a container started with `opts`."""
    argv = ["run", "-d", "--rm", *HARDENED_FLAGS]
    for opt in opts:
        argv += ["--security-opt", opt]
    target = docker(*argv, image, "sleep", "60").strip()
    try:
        out = docker(
            "run",
            "--rm",
            "--pid",
            f"container:{target}",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "SYS_PTRACE",
            "--security-opt",
            "seccomp=unconfined",
            image,
            "seccomp_filter_len",
            "1",
        )
    finally:
        docker("rm", "-f", target)
    lengths = [
        line.split("instructions=")[1] for line in out.splitlines() if "instructions=" in line
    ]
    return " + ".join(lengths) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=10_000_000)
    args = parser.parse_args()
    tag = f"saferun-bench/loop:{uuid.uuid4().hex[:8]}"
    build_probe_image(tag, (str(BENCH / "getppid_loop.c"), str(BENCH / "seccomp_filter_len.c")))
    try:
        with tempfile.TemporaryDirectory(prefix="saferun-bench-") as work:
            default_opt, default_check = write_profile(Path(work), "default")
            strict_opt, strict_check = write_profile(Path(work), "strict", profile="strict")
            configs = {
                "unconfined (reference)": (("seccomp=unconfined",), "-"),
                "Docker default": ((), "built into dockerd"),
                "saferun default": ((default_opt,), f"{default_check.instructions}"),
                "saferun strict": ((strict_opt,), f"{strict_check.instructions}"),
            }
            samples: dict[str, list[float]] = {name: [] for name in configs}
            names = list(configs)
            for round_ in range(args.rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    samples[name].append(loop_ns(tag, configs[name][0], args.calls))
            lengths = {name: kernel_filter_length(tag, opts) for name, (opts, _) in configs.items()}
    finally:
        remove_image(tag)
    print(render(configs, samples, lengths, args))


def render(
    configs: dict[str, tuple[tuple[str, ...], str]],
    samples: dict[str, list[float]],
    lengths: dict[str, str],
    args: argparse.Namespace,
) -> str:
    base = statistics.median(samples["Docker default"])
    lines = [
        f"Measured {provenance()}; {args.rounds} paired rounds of {args.calls:,} getppid() calls.",
        "",
        (
            "| profile | median ns/call | min–max | ratio to Docker default "
            "| BPF instructions in the kernel | libseccomp compile (linear) |"
        ),        "|---|---|---|---|---|---|",
    ]
    for name, (_, compiled) in configs.items():
        values = samples[name]
        median = statistics.median(values)
        lines.append(
            f"| {name} | {median:.1f} | {min(values):.1f}–{max(values):.1f} | "
            f"{median / base:.3f} | {lengths[name]} | {compiled} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
