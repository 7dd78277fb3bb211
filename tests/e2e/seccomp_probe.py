"""The static syscall probe: build it, put it in an image, run it, parse its lines.

Shared by the seccomp e2e tests and bench/seccomp_compare.py. Images are built FROM the
local busybox image with a two-line Dockerfile in a private temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PROBES_DIR = Path(__file__).resolve().parent / "probes"
BASE_IMAGE = "saferun-test/busybox:1"
HARDENED_FLAGS = (
    "--cap-drop",
    "ALL",
    "--user",
    "65534:65534",
    "--security-opt",
    "no-new-privileges",
)
# The calls the acceptance names; the probe also tries clone3, AF_ALG/AF_VSOCK
# sockets and getpid (which must succeed: the profile is not deny-all).
DANGEROUS = (
    "unshare_user",
    "unshare_mnt",
    "mount",
    "keyctl",
    "bpf",
    "ptrace",
    "perf_event_open",
    "init_module",
    "reboot",
    "swapon",
    "clock_settime",
    "personality",
    "io_uring_setup",
    "userfaultfd",
)
EXTRA = ("clone3", "socket_alg", "socket_vsock")


def build_probe_image(tag: str, sources: tuple[str, ...] = ("syscall_probe.c",)) -> str:
    """gcc -static each C source into /bin/<stem> of an image FROM the busybox image."""
    if shutil.which("gcc") is None:
        raise RuntimeError("gcc is needed to build the static probes")
    with tempfile.TemporaryDirectory(prefix="saferun-probe-") as work:
        context = Path(work)
        copies = []
        for source in sources:
            binary = context / Path(source).stem
            subprocess.run(
                ["gcc", "-static", "-O2", "-Wall", "-o", str(binary), str(PROBES_DIR / source)],
                check=True,
                capture_output=True,
            )
            copies.append(f"COPY {binary.name} /bin/{binary.name}")
        (context / "Dockerfile").write_text("\n".join([f"FROM {BASE_IMAGE}", *copies]) + "\n")
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder needs no buildx
        subprocess.run(
            ["docker", "build", "-q", "-t", tag, str(context)],
            check=True,
            capture_output=True,
            env=env,
        )
    return tag


def remove_image(tag: str) -> None:
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def run_probe(
    image: str,
    security_opts: tuple[str, ...] = (),
    labels: tuple[str, ...] = (),
    names: tuple[str, ...] = (),
) -> dict[str, str]:
    """{probe name: "ok" | "errno=N" | "signal=N"} from one `docker run --rm`."""
    argv = ["docker", "run", "--rm", *HARDENED_FLAGS]
    for opt in security_opts:
        argv += ["--security-opt", opt]
    for label in labels:
        argv += ["--label", label]
    result = subprocess.run(
        [*argv, image, "syscall_probe", *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"probe failed ({result.returncode}): {result.stderr}")
    return parse_probe(result.stdout)


def parse_probe(output: str) -> dict[str, str]:
    seen = {}
    for line in output.splitlines():
        name, _, outcome = line.partition(" ")
        seen[name] = outcome
    return seen
