#!/usr/bin/env python3
"""Run the escape battery three ways and write docs/escape-battery.md (or check it).

    .venv/bin/python tests/escape/run_battery.py            # run, then rewrite the page
    .venv/bin/python tests/escape/run_battery.py --check    # run, exit 1 if the table differs
    .venv/bin/python tests/escape/run_battery.py --stdout   # run, print the page

The page is generated entirely by this script from the same code the CI test runs
(tests/escape/battery.py); the test compares the table of its own run with the page's.
Needs a Docker engine with runsc registered, gcc and the local busybox image. The probe
runs only inside containers.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.escape import battery  # noqa: E402

PAGE = battery.REPO / "docs" / "escape-battery.md"

INTRO = """\
# The escape battery

Evidence, not claims: {count} techniques an attacker inside a container uses to reach the
host or to take more than the container was given, each tried for real by one static C
program ([tests/escape/escape_probe.c](../tests/escape/escape_probe.c)) inside a
container, three ways:

- **`docker run` (defaults)**: `docker run IMAGE escape_probe`: root in the container,
  docker's default capabilities and seccomp profile, no PIDs or memory limit.
- **`saferun run` (defaults)**: a manifest with nothing but `app.name`, `app.image` and
  `app.command`, so every protection is saferun's default (uid 65534, no capabilities,
  no-new-privileges, saferun's seccomp profile, read-only root, 512m memory without swap,
  256 PIDs, nofile 1024:4096, bridge network).
- **`saferun run`, gVisor**: the same manifest plus `[security] runtime = "gvisor"` (runsc,
  registered here with `--network=host --oci-seccomp`).

Each attempt prints one line, `NAME: blocked (detail)` or `NAME: ALLOWED (detail)`. An
attempt is ALLOWED when it succeeded, or for calls whose harmless arguments cannot succeed
(`init_module`, `finit_module`, `reboot`) when the kernel's permission check let it
through. Every attempt is chosen to be harmless if it succeeds (the current time and
hostname are written back, `reboot` asks for `LINUX_REBOOT_CMD_CAD_OFF`, `core_pattern`
and `/proc/sysrq-trigger` are opened for writing but nothing is written, the bombs are
bounded) — and still it runs only inside containers. The bombs run in containers of their
own; an attempt whose container ends without its line counts as ALLOWED unless the host
shows it was stopped (docker's `OOMKilled`, or a host task count that rose by less than
the fork bomb's size).

CI runs the battery on every change (`tests/escape/test_escape_battery.py`) and fails if
saferun's defaults let any attempt through, or if gVisor lets through anything but the
documented difference below; it also fails when the table below is not what its own run
produced. Regenerate this page with `.venv/bin/python tests/escape/run_battery.py`.

## Results

"""

READING = """\

## Reading the table

- Docker's defaults already refuse much (its seccomp profile and capability set block
  mounts, namespaces, modules, keyrings, BPF, perf, reboot and the clock), but root in the
  container with docker's default capabilities can still write the image's files, chown
  and chmod other users' files, open raw and packet sockets (and so ARP on the host's
  bridge), create device nodes, ptrace its neighbours and become root again through a
  setuid binary; and without limits a fork bomb, a memory bomb and descriptor exhaustion
  go as far as the host lets them.
- saferun's defaults close each of these: the read-only root (`EROFS`), uid 65534 without
  capabilities (`EPERM`), no-new-privileges (the setuid helper keeps euid 65534), the
  seccomp profile, and the PIDs, memory and nofile limits (`EAGAIN`, the OOM killer's
  `SIGKILL` of the allocating process only, `EMFILE`). The container survives its bombs:
  the fork bomb's and the memory bomb's containers exit 0 after printing their line.
{absent}
- The host-network attempts are refused in every column because all three use a bridge
  network: the container's 127.0.0.1 is its own, and the host's listener on its own
  127.0.0.1 is not reachable through the bridge gateway either. `docker run --network
  host` would change that; saferun refuses `--network host` without an `[allow]` entry.
"""


# Kernel interfaces the battery opens; `ENOENT` means the path is not in the container.
KERNEL_PATHS = ("/dev/mem", "/dev/kmsg", "/proc/kcore", "/proc/sysrq-trigger",
                "/sys/kernel/uevent_helper")


def absent_note() -> str:
    """Say which of KERNEL_PATHS this host's kernel lacks altogether (a stat on the host:
    where the host has no such file, the container's ENOENT proves nothing about saferun)."""
    missing = [path for path in KERNEL_PATHS if not Path(path).exists()]
    present = [path for path in KERNEL_PATHS if Path(path).exists()]
    note = ("- `ENOENT` for a kernel interface means the path is not there inside the "
            "container. ")
    if present:
        note += (f"Present on this host but absent from every container: "
                 f"{', '.join(present)}. ")
    if missing:
        note += (f"This host's kernel has no {', '.join(missing)} at all, so those rows "
                 "show nothing about the container's confinement here; on a distribution "
                 "kernel docker masks /proc/kcore and /proc/sysrq-trigger (an empty file or "
                 "a read-only bind) and mounts /sys read-only, and the cells read `masked`, "
                 "`EROFS` or `EACCES` instead.")
    return textwrap.fill(note, width=90, subsequent_indent="  ")


def _item(text: str) -> str:
    return textwrap.fill(text, width=90, initial_indent="- ", subsequent_indent="  ")


def gvisor_section() -> str:
    lines = ["", "## Where gVisor differs", ""]
    for name, why in battery.GVISOR_ALLOWED.items():
        lines.append(_item(f"`{name}` is ALLOWED under gVisor: {why}"))
    for name, why in battery.GVISOR_NOTES.items():
        lines.append(_item(f"`{name}` is blocked under gVisor, differently: {why}"))
    lines.append("")
    return "\n".join(lines)


def provenance() -> str:
    def out(*argv: str) -> str:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"

    commit = out("git", "-C", str(battery.REPO), "rev-parse", "--short", "HEAD")
    engine = out("docker", "info", "--format", "{{.ServerVersion}}, kernel {{.KernelVersion}}")
    runsc = out("runsc", "--version")
    today = datetime.date.today().isoformat()
    return textwrap.fill(f"Measured {today} on commit {commit} (plus the working tree), "
                         f"Docker {engine}, {runsc}.", width=90)


def page(runs: Mapping[str, battery.BatteryRun]) -> str:
    raw = []
    for config, run in runs.items():
        raw += [f"### {battery.CONFIGS[config]}", "", "```", run.stdout.rstrip(), "```", ""]
    return "\n".join([
        INTRO.format(count=len(battery.ATTEMPTS)) + battery.render_table(runs),
        READING.format(absent=absent_note()) + gvisor_section(),
        "## The run that wrote this page",
        "",
        "Not compared by the test (counts, pids and addresses vary from run to run).",
        "",
        provenance(),
        "",
        *(_item(line[2:]) for line in battery.host_summary(runs)),
        "",
        *raw,
    ]).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the table differs")
    parser.add_argument("--stdout", action="store_true", help="print the page, write nothing")
    args = parser.parse_args()
    tag = f"saferun-test/escape:{uuid.uuid4().hex[:8]}"
    label = ("saferun-escape", uuid.uuid4().hex[:12])
    battery.build_image(tag)
    try:
        runs = battery.run_all(tag, label)
    finally:
        battery.remove_image(tag)
    text = page(runs)
    if args.check:
        committed = battery.extract_table(PAGE.read_text())
        if committed != battery.extract_table(text):
            print(f"{PAGE} is out of date; this run gives:\n{battery.render_table(runs)}",
                  file=sys.stderr)
            return 1
        return 0
    if args.stdout:
        sys.stdout.write(text)
    else:
        PAGE.write_text(text)
        print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
