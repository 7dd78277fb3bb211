#!/usr/bin/env python3
"""Benchmark: how long saferun takes to produce its profiles, against a container start.

    /tmp/benchvenv/bin/python bench/profile_compile.py [--rounds 20]

- seccomp: `saferun.profiles.seccomp_check.generate_checked` for the `default` and `strict` bases
  (generate the profile from the syscall tables, then let libseccomp resolve every name and
  compile the filter for each architecture), in this process;
- AppArmor: render saferun's profile for examples/hello and compile it with
  `apparmor_parser -Q -K -T` (parse and compile, no kernel load, no cache), as
  `saferun profile apparmor --check` does;
- reference: `docker run --rm saferun-test/busybox:1 true` (runc), to put the figures in
  proportion. saferun pays the profile costs on a plan-cache miss only.

Each round runs all four once in a rotated order; medians, min–max and the ratio to the
container start are printed as Markdown. Run it with a NON-editable install.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _machine import REPO, provenance

from saferun.inputs.loader import load_manifest
from saferun.model.manifest import SeccompSection
from saferun.profiles.apparmor import profile_name_for, render_apparmor
from saferun.profiles.seccomp_check import generate_checked

IMAGE = "saferun-test/busybox:1"


def seccomp(profile: str) -> Callable[[], object]:
    def run() -> object:
        return generate_checked(SeccompSection(profile=profile), capabilities=frozenset(),
                                native_arch="x86_64", runtime="runc")
    return run


def apparmor(work: Path) -> Callable[[], object]:
    manifest = load_manifest(REPO / "examples/hello/saferun.toml")

    def run() -> object:
        path = work / "profile"
        path.write_text(render_apparmor(manifest, profile_name=profile_name_for(manifest)))
        return subprocess.run(["apparmor_parser", "-Q", "-K", "-T", str(path)], check=True,
                              capture_output=True)
    return run


def docker_start() -> object:
    return subprocess.run(["docker", "run", "--rm", IMAGE, "true"], check=True,
                          capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="saferun-bench-") as work:
        configs: dict[str, Callable[[], object]] = {
            "seccomp `default`: generate + libseccomp check/compile": seccomp("default"),
            "seccomp `strict`: generate + libseccomp check/compile": seccomp("strict"),
            "AppArmor: render + `apparmor_parser -Q -K -T`": apparmor(Path(work)),
            "reference: `docker run --rm busybox true`": docker_start,
        }
        for call in configs.values():  # warm imports, caches, the page cache
            call()
        samples: dict[str, list[float]] = {name: [] for name in configs}
        names = list(configs)
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                configs[name]()
                samples[name].append(time.perf_counter() - start)
    base = statistics.median(samples[names[-1]])
    _, checked = seccomp("default")()  # type: ignore[misc]
    print(f"Measured {provenance()}; {args.rounds} rotated rounds.")
    print()
    print("| step | median ms | min–max ms | ratio to a container start |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.1f} | {min(values) * 1000:.1f}–"
              f"{max(values) * 1000:.1f} | {median / base:.3f} |")
    print()
    print(f"The default profile as libseccomp compiled it: {checked.as_dict()}")


if __name__ == "__main__":
    main()
