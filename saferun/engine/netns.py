"""Firewall rules inside a container's network namespace (the one place saferun runs nft).

The host enters the namespace of a service's sandbox (`nsenter --net=/proc/PID/ns/net`) and
loads the ruleset there with `nft -f -`, in one atomic transaction. The rules then belong to
that namespace: the host's own ruleset never changes, and when the namespace's last process
ends (down, a crash, a daemon restart) the kernel frees the rules with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from saferun.errors import RequirementUnmet

_FIX = ("run saferun as root on the Docker host with nftables installed (Debian: apt-get "
        "install nftables util-linux), with a rootful Docker engine")


def check_rules_possible(*, rootless: bool) -> None:
    """Refuse before anything starts when rules could not be installed (fail closed)."""
    missing = [tool for tool in ("nft", "nsenter") if shutil.which(tool) is None]
    if missing:
        raise RequirementUnmet(f"network ingress/egress rules need {' and '.join(missing)}, "
                               "which is not installed or not on PATH", fix=_FIX)
    if os.geteuid() != 0:
        raise RequirementUnmet("network ingress/egress rules are installed in each service's "
                               "network namespace, which needs root", fix=_FIX)
    if rootless:
        raise RequirementUnmet("the Docker engine is rootless: its containers' network "
                               "namespaces are not the host's to enter", fix=_FIX)


def _nsenter(pid: int, *nft_args: str, stdin: str | None = None,
             timeout: float = 20) -> subprocess.CompletedProcess[str]:
    if pid <= 0:
        raise RequirementUnmet(f"no process to enter (pid {pid}): the sandbox is not running")
    argv = ["nsenter", f"--net=/proc/{int(pid)}/ns/net", "nft", *nft_args]
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RequirementUnmet(f"`{' '.join(argv[:3])}` failed: {exc}", fix=_FIX) from None


def install_rules(pid: int, ruleset: str) -> float:
    """Load `ruleset` into the network namespace of process `pid`; the seconds it took.
    RequirementUnmet with nft's message when the kernel refuses it."""
    started = time.perf_counter()
    result = _nsenter(pid, "-f", "-", stdin=ruleset)
    if result.returncode != 0:
        raise RequirementUnmet(f"nft refused the rules for process {pid}: "
                               f"{result.stderr.strip() or result.returncode}", fix=_FIX)
    return time.perf_counter() - started


def read_rules(pid: int, table: str) -> str | None:
    """`nft list table inet TABLE` in that namespace, or None when it is not there."""
    result = _nsenter(pid, "list", "table", "inet", table)
    return result.stdout if result.returncode == 0 else None
