"""Exported Compose files pass `docker-compose config` (Debian's docker-compose package).

Debian 12's docker-compose is 1.29, so the exports use --compose-v1 (no `cgroup` key); the
default output is checked against the Compose Specification in tests/unit/export/.

`config` parses and validates against Compose's schema and reads every referenced file
(the seccomp profile, env files) without contacting an engine. Skips where docker-compose
is missing, fails in CI (CI=true), where .ci/run must install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.export.cases import CASES, VARIED

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def compose_bin() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if IN_CI:
            pytest.fail("docker-compose is missing (CI=true: install Debian's docker-compose)")
        pytest.skip("docker-compose is not installed")
    return found


def export_and_check(compose_bin: str, manifests: list[Path], out: Path) -> str:
    exported = subprocess.run(
        [sys.executable, "-m", "saferun", "export", *map(str, manifests), "--to", "compose",
         "--compose-v1", "-o", f"{out}/"], capture_output=True, text=True, timeout=120, check=False)
    assert exported.returncode == 0, exported.stderr
    checked = subprocess.run([compose_bin, "config"], cwd=out, capture_output=True, text=True,
                             timeout=120, check=False)
    assert checked.returncode == 0, f"docker-compose config rejected:\n{checked.stderr}"
    return checked.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_compose_config_accepts_each_export(compose_bin: str, case: str, tmp_path: Path) -> None:
    normalised = export_and_check(compose_bin, [CASES[case]], tmp_path)
    assert "no-new-privileges:true" in normalised
    assert "cap_drop:\n    - ALL" in normalised


def test_compose_config_accepts_several_manifests_in_one_file(compose_bin: str,
                                                              tmp_path: Path) -> None:
    normalised = export_and_check(compose_bin, VARIED, tmp_path)
    for name in ("minimal", "web", "db", "worker", "legacy", "Sandboxed_Job"):
        assert f"\n  {name}:\n" in normalised


def test_compose_config_can_fail(compose_bin: str, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x\n    read_only: maybe\n")
    checked = subprocess.run([compose_bin, "config", "-q"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode != 0
