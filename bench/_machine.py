"""Where a benchmark figure was measured: commit, date, machine, engine (for BENCHMARKS.md).

Reads only git, /proc and `docker`, never saferun's own modules, so a benchmark run with a
separate, non-editable install measures that install and not the checkout.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _out(*argv: str) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    return done.stdout.strip()


def provenance() -> str:
    """One line: date, commit, machine, Docker, the Python (and so the saferun) measured.

    With a venv made by bench/make_venv.sh the commit is the one installed there (a
    `git archive` of it); otherwise the checkout's HEAD, marked when the tree has changes.
    """
    recorded = Path(sys.prefix) / "saferun-commit"
    if recorded.exists():
        commit, dirty = f"{recorded.read_text().strip()} (non-editable install)", ""
    else:
        commit = _out("git", "-C", str(REPO), "rev-parse", "--short", "HEAD") or "(no commit)"
        dirty = _out("git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no")
    engine = _out("docker", "info", "--format", "{{.ServerVersion}}")
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{datetime.date.today().isoformat()}, commit {commit}"
        f"{' (working tree with uncommitted changes)' if dirty else ''}, "
        f"{os.cpu_count()} cores ({cpu}), kernel {platform.release()}, Docker {engine}, "
        f"Python {platform.python_version()} at {sys.executable}"
    )


def saferun_argv() -> list[str]:
    """The saferun of the interpreter running the benchmark (e.g. /tmp/benchvenv)."""
    script = Path(sys.executable).with_name("saferun")
    return [str(script)] if script.exists() else [sys.executable, "-m", "saferun"]
