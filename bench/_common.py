"""Helpers shared by the seccomp benchmark scripts (not tests): profiles and docker calls."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from saferun.model.manifest import SeccompSection  # noqa: E402
from saferun.profiles.seccomp import render_seccomp_json  # noqa: E402
from saferun.profiles.seccomp_check import CheckResult, generate_checked  # noqa: E402


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def native_arch() -> str:
    return docker("info", "--format", "{{.Architecture}}").strip()


def write_profile(directory: Path, name: str, **section: object) -> tuple[str, CheckResult]:
    """Generate and check a saferun profile; -> (`seccomp=PATH` option, libseccomp result)."""
    profile, result = generate_checked(
        SeccompSection(**section),
        capabilities=frozenset(),
        native_arch=native_arch(),
        runtime="runc",
    )
    path = directory / f"{name}.json"
    path.write_text(render_seccomp_json(profile))
    return f"seccomp={path}", result


def provenance() -> str:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    engine = docker("info", "--format", "{{.ServerVersion}} kernel {{.KernelVersion}}").strip()
    date = datetime.date.today().isoformat()
    return f"{date}, commit {commit or '(none yet)'}, Docker {engine}"
